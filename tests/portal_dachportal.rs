//! A group's Dachportal in the portal server, against a real PostgreSQL: its home page lists the member portals from
//! the tenant catalogue (name and link); its search finds its own services and its members' published services, each
//! linked to the member's own portal, read under the member's role; its other pages show nothing of its members'
//! content — its own queries run under its own role, which cannot read theirs.

mod support;

use axum::body::Body;
use axum::http::{Request, StatusCode};
use portalctl::portal::{self, registry::Registry, AppState, Options};
use std::process::Stdio;
use std::sync::Arc;
use std::time::{Duration, Instant};
use support::{TestEnv, TestTenant, CONTENT_A, CONTENT_B};
use tower::ServiceExt;

/// Content words of the members (espelkamp, detmold) that the Dachportal's own pages must never show.
const MEMBER_CONTENT: &[&str] = &[
    "Hundeanmeldung",
    "Hundesteuer",
    "Alphaweg",
    "Steuern und Zoll",
    "Hund und Haustier",
    "Bootsliegeplatz",
    "Hafenamt",
    "Betakai",
    "Wassersport",
    "Mobilität",
];

/// The Dachportal's own content.
const CONTENT_REGION: &str = r#"
categories:
  - { id: wirtschaft, title: "Wirtschaft und Gründung" }
lebenslagen:
  - { id: gruendung, title: "Unternehmen gründen", description: "Von der Idee zum Betrieb" }
services:
  - id: gruendungsberatung
    title: "Gründungsberatung der Region"
    summary: "Die regionale Wirtschaftsförderung berät Gründerinnen und Gründer."
    description: "Beratung zu Förderprogrammen der Region."
    category: wirtschaft
    lebenslagen: [gruendung]
    office: "Regionale Wirtschaftsförderung"
    published: true
"#;

fn dachportal_yaml(t: &TestTenant, members: Option<&[&str]>) -> String {
    let hosts: String = t.hostnames.iter().map(|h| format!("    - {h}\n")).collect();
    let members = match members {
        Some(m) => format!("  members: [{}]\n", m.join(", ")),
        None => String::new(),
    };
    format!(
        "apiVersion: portalctl.dev/v1alpha1\nkind: Tenant\nmetadata:\n  name: {slug}\nspec:\n  displayName: \
         \"Serviceportal Testregion\"\n  kind: dachportal\n  wave: main\n  hostnames:\n{hosts}  theme:\n    \
         primaryColor: \"#1b5e20\"\n    accentColor: \"#1b5e20\"\n  database:\n    schema: {schema}\n{members}  \
         goLive:\n    published: true\n{legal}",
        slug = t.slug,
        schema = t.schema,
        legal = support::LEGAL_FIXTURE,
    )
}

/// Members espelkamp and detmold with their content, and the Dachportal `region` with its own.
async fn env_with_dachportal() -> Option<(TestEnv, TestTenant)> {
    let mut env = TestEnv::new(&["espelkamp", "detmold"]).await?;
    env.import("espelkamp", CONTENT_A).await;
    env.import("detmold", CONTENT_B).await;
    let sfx = env.group.trim_start_matches('g').to_string();
    let region = TestTenant {
        slug: "region".into(),
        hostnames: vec!["service.region.test".into(), format!("region-{sfx}.localhost")],
        schema: format!("t_{sfx}_region"),
    };
    let c = support::connect(&env.url).await;
    env.provision(&c, &region).await;
    // Dropped with the other test roles.
    env.tenants.push(region.clone());
    std::fs::write(env.group_dir().join("region.yaml"), dachportal_yaml(&region, None)).unwrap();
    env.import("region", CONTENT_REGION).await;
    Some((env, region))
}

async fn get(state: &AppState, host: &str, uri: &str) -> (StatusCode, String) {
    let req = Request::builder().uri(uri).header("host", host).body(Body::empty()).unwrap();
    let res = portal::app(state.clone()).oneshot(req).await.unwrap();
    let status = res.status();
    let body = axum::body::to_bytes(res.into_body(), 10 << 20).await.unwrap();
    (status, String::from_utf8(body.to_vec()).unwrap())
}

fn assert_none(body: &str, words: &[&str], what: &str) {
    for w in words {
        assert!(!body.contains(w), "{what} shows {w:?}:\n{body}");
    }
}

#[tokio::test]
async fn the_dachportal_lists_its_members_and_searches_their_published_services() {
    let Some((env, region)) = env_with_dachportal().await else { return };
    let registry = Arc::new(Registry::new());
    let sites = portal::source::Directory::new(env.dir.path()).load().expect("test tenants load").sites;
    assert_eq!(sites.len(), 3);
    assert!(registry.replace(sites).is_empty());
    let pool = portal::pool(&env.portal_url, 4).unwrap();
    let state = AppState::new(registry, pool, Options { home_cache_ttl: Duration::ZERO, ..Options::default() });
    let host = &region.hostnames[0];

    let (s, home) = get(&state, host, "/").await;
    assert_eq!(s, StatusCode::OK);
    assert!(home.contains("<h1>Willkommen im Serviceportal Testregion</h1>"), "{home}");
    assert!(home.contains("<title>Startseite – Serviceportal Testregion</title>"), "{home}");
    assert!(home.contains("Die Serviceportale der Region"), "{home}");
    for (name, href) in
        [("Stadt Espelkamp", "https://service.espelkamp.test/"), ("Stadt Detmold", "https://service.detmold.test/")]
    {
        assert!(home.contains(&format!("<a href=\"{href}\"><strong>{name}</strong>")), "{name} not linked:\n{home}");
    }
    assert!(!home.contains("localhost"), "no local links outside local mode:\n{home}");
    // Its own content, and none of the members'.
    assert!(home.contains("Unternehmen gründen") && home.contains("Wirtschaft und Gründung"), "{home}");
    assert_none(&home, MEMBER_CONTENT, "the Dachportal's home");

    let (_, az) = get(&state, host, "/leistungen").await;
    assert!(az.contains("Gründungsberatung der Region"), "{az}");
    assert_none(&az, MEMBER_CONTENT, "the Dachportal's A-Z");
    for path in ["/leistungen/hundeanmeldung", "/leistungen/bootsliegeplatz", "/lebenslagen/haustiere"] {
        let (s, body) = get(&state, host, path).await;
        assert_eq!(s, StatusCode::NOT_FOUND, "{path}");
        assert_none(&body, MEMBER_CONTENT, path);
    }
    let (_, found) = get(&state, host, "/suche?q=Gr%C3%BCndung").await;
    assert!(
        found.contains("<a class=\"result-title\" href=\"/leistungen/gruendungsberatung\">"),
        "own search:\n{found}"
    );

    // The search also finds the members' published services, each linked to the service page on the member's portal.
    for (q, link) in [
        ("Hundeanmeldung", "href=\"https://service.espelkamp.test/leistungen/hundeanmeldung\">Hundeanmeldung – Stadt Espelkamp</a>"),
        ("Hund", "href=\"https://service.espelkamp.test/leistungen/hundeanmeldung\">Hundeanmeldung – Stadt Espelkamp</a>"),
        ("Bootsliegeplatz", "href=\"https://service.detmold.test/leistungen/bootsliegeplatz\">Bootsliegeplatz mieten – Stadt Detmold</a>"),
    ] {
        let (s, body) = get(&state, host, &format!("/suche?q={q}")).await;
        assert_eq!(s, StatusCode::OK);
        assert!(body.contains(link), "search for {q}:\n{body}");
    }
    // Only published services: not a member's unpublished draft, facilities or staff.
    for q in ["Alphageheim", "Alphaweg", "Hafenmeisterei", "Betakai"] {
        let (s, body) = get(&state, host, &format!("/suche?q={q}")).await;
        assert_eq!(s, StatusCode::OK);
        assert!(body.contains("Keine Ergebnisse"), "search for {q}:\n{body}");
        assert!(!body.contains("service.espelkamp.test") && !body.contains("service.detmold.test"), "{body}");
    }
    // A member's own search is its own: no Dachportal or other member content.
    let (_, own) = get(&state, &env.tenant("detmold").hostnames[0], "/suche?q=Gr%C3%BCndung").await;
    assert!(!own.contains("Gründungsberatung der Region") && !own.contains("service.espelkamp.test"), "{own}");

    // The members' pages are unchanged: no member list, none of the Dachportal's content.
    let (_, espelkamp) = get(&state, &env.tenant("espelkamp").hostnames[0], "/").await;
    assert!(espelkamp.contains("Hund und Haustier"));
    assert!(!espelkamp.contains("Die Serviceportale der Region") && !espelkamp.contains("Unternehmen gründen"));

    // A member takes a service off its portal: the Dachportal no longer finds it.
    let c = support::connect(&env.url).await;
    let espelkamp_schema = &env.tenant("espelkamp").schema;
    c.batch_execute(&format!("UPDATE {espelkamp_schema}.service SET published = false WHERE id = 'hundeanmeldung'"))
        .await
        .unwrap();
    let (_, body) = get(&state, host, "/suche?q=Hundeanmeldung").await;
    assert!(!body.contains("service.espelkamp.test/leistungen/hundeanmeldung"), "{body}");
}

/// The Dachportal's role is as confined as any tenant's: switched to it, the group role reads its own schema and
/// is refused every member's.
#[tokio::test]
async fn the_dachportal_role_cannot_read_member_schemas() {
    let Some((env, region)) = env_with_dachportal().await else { return };
    let mut c = support::connect(&env.portal_url).await;
    let tx = c.transaction().await.unwrap();
    portalctl::content::store::enter_tenant(&tx, &region.schema, Some(&region.schema)).await.unwrap();
    let n: i64 = tx.query_one("SELECT count(*) FROM service", &[]).await.unwrap().get(0);
    assert_eq!(n, 1);
    for member in ["espelkamp", "detmold"] {
        let schema = &env.tenant(member).schema;
        tx.batch_execute("SAVEPOINT probe").await.unwrap();
        let err = tx.query(&format!("SELECT * FROM {schema}.service"), &[]).await.unwrap_err();
        assert!(format!("{err:?}").contains("permission denied"), "{member}: {err:?}");
        tx.batch_execute("ROLLBACK TO SAVEPOINT probe").await.unwrap();
    }
}

/// In local mode (`serve --local-hostnames`) the links go to the members' `<slug>.localhost` form on the server's
/// port, and they lead to the member; a `members:` list is followed without a restart.
#[tokio::test(flavor = "multi_thread")]
async fn local_mode_links_members_on_localhost_and_follows_the_member_list() {
    let Some((env, region)) = env_with_dachportal().await else { return };
    let (port, ops_port) = (support::free_port(), support::free_port());
    let log = env.dir.path().join("server.log");
    let child = env
        .portalctl()
        .args(["serve", "--listen", &format!("127.0.0.1:{port}"), "--poll-interval", "1", "--home-cache-ms", "0"])
        .args(["--ops-listen", &format!("127.0.0.1:{ops_port}")])
        .arg("--local-hostnames")
        .env("DATABASE_URL", &env.portal_url)
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(&log).unwrap())
        .spawn()
        .expect("start portalctl serve");
    let server = support::Server { child, port, ops_port, log };
    server.wait_ready();
    let get = |host: &str, path: &str| support::get(port, host, path);
    let home = get("region.localhost", "/").unwrap();
    assert_eq!(home.status, 200);
    let espelkamp_link = format!("<a href=\"http://espelkamp.localhost:{port}/\">");
    let detmold_link = format!("<a href=\"http://detmold.localhost:{port}/\">");
    assert!(home.body.contains(&espelkamp_link) && home.body.contains(&detmold_link), "{}", home.body);
    assert!(home.body.contains("service.espelkamp.test"), "the canonical hostname is shown");
    // The link leads to the member.
    let member = get(&format!("espelkamp.localhost:{port}"), "/").unwrap();
    assert!(member.status == 200 && member.body.contains("Stadt Espelkamp"), "{}", member.body);
    // So do the search results of the members' services.
    let found = get("region.localhost", "/suche?q=Hundeanmeldung").unwrap();
    let result = format!("href=\"http://espelkamp.localhost:{port}/leistungen/hundeanmeldung\"");
    assert!(found.body.contains(&result), "{}", found.body);
    let page = get(&format!("espelkamp.localhost:{port}"), "/leistungen/hundeanmeldung").unwrap();
    assert_eq!(page.status, 200, "{}", page.body);

    // Only detmold from now on.
    std::fs::write(env.group_dir().join("region.yaml"), dachportal_yaml(&region, Some(&["detmold"]))).unwrap();
    let deadline = Instant::now() + Duration::from_secs(15);
    loop {
        let body = get(&region.hostnames[0], "/").unwrap().body;
        if !body.contains("Stadt Espelkamp") {
            assert!(body.contains(&detmold_link), "{body}");
            break;
        }
        assert!(Instant::now() < deadline, "the member list did not follow the file:\n{body}");
        std::thread::sleep(Duration::from_millis(200));
    }
}
