//! The portal server through its router (`oneshot`, no port) against a real PostgreSQL:
//! tenant by Host header, isolation between tenants, pages, search. The operations endpoints
//! (their own listener) are tested in tests/portal_ops.rs.

mod support;

use axum::body::Body;
use axum::http::{Request, StatusCode};
use portalctl::portal::{self, registry::Registry, AppState};
use support::{TestEnv, CONTENT_A, CONTENT_B};
use tower::ServiceExt;

struct Harness {
    env: TestEnv,
    state: AppState,
}

async fn harness() -> Option<Harness> {
    let env = TestEnv::new(&["espelkamp", "detmold"]).await?;
    env.import("espelkamp", CONTENT_A).await;
    env.import("detmold", CONTENT_B).await;
    let state = env.app_state(portal::pool(&env.portal_url, 4).unwrap());
    assert_eq!(state.registry().len(), 2);
    Some(Harness { env, state })
}

impl Harness {
    async fn get(&self, host: &str, uri: &str) -> (StatusCode, String) {
        let req = Request::builder().uri(uri).header("host", host).body(Body::empty()).unwrap();
        let res = portal::app(self.state.clone()).oneshot(req).await.unwrap();
        let status = res.status();
        let body = axum::body::to_bytes(res.into_body(), 10 << 20).await.unwrap();
        (status, String::from_utf8(body.to_vec()).unwrap())
    }
    fn host(&self, slug: &str, i: usize) -> String {
        self.env.tenant(slug).hostnames[i].clone()
    }
}

/// Words only tenant B (detmold) has.
const B_WORDS: &[&str] = &["Bootsliegeplatz", "Hafenamt", "Betakai", "Wassersport", "Detmold", "Mobilität"];
/// Words only tenant A (espelkamp) has.
const A_WORDS: &[&str] = &["Hundeanmeldung", "Alphaweg", "Hundesteuer", "Espelkamp", "Steuern und Zoll"];

fn assert_none(body: &str, words: &[&str], what: &str) {
    for w in words {
        assert!(!body.contains(w), "{what} shows {w:?}:\n{body}");
    }
}

#[tokio::test]
async fn pages_are_served_per_host_and_never_leak() {
    let Some(h) = harness().await else { return };
    let a = h.host("espelkamp", 0);
    let b_alias = h.host("detmold", 1);

    let (s, home) = h.get(&a, "/").await;
    assert_eq!(s, StatusCode::OK);
    assert!(home.contains("<html lang=\"de\">"));
    assert!(home.contains("Stadt Espelkamp"));
    assert!(home.contains("href=\"#inhalt\""), "skip link");
    assert!(home.contains("Hund und Haustier") && home.contains("Steuern und Zoll"), "{home}");
    assert!(
        !home.contains("<style") && !home.contains("<script") && !home.contains(" style="),
        "inline style or script"
    );
    let theme = home.split("href=\"/static/theme.css?v=").nth(1).and_then(|s| s.split('"').next()).expect("theme link");
    let (s, css) = h.get(&a, &format!("/static/theme.css?v={theme}")).await;
    assert_eq!(s, StatusCode::OK);
    assert!(css.contains("--primary: #004b87"), "theme colour as CSS custom property: {css}");
    let (s, css) = h.get(&a, "/static/portal.css").await;
    assert!(s == StatusCode::OK && css.contains(".skip-link"), "{css}");
    // No identity provider configured for these tenants: no login button, and /anmelden says so in the
    // tenant's own layout.
    assert!(!home.contains("href=\"/anmelden\""), "login button without an identity provider");
    let (s, login) = h.get(&a, "/anmelden").await;
    assert_eq!(s, StatusCode::NOT_FOUND);
    assert!(login.contains("Anmeldung nicht verfügbar") && login.contains("/static/portal.css"), "{login}");
    assert!(login.contains("Stadt Espelkamp") && login.contains("<main id=\"inhalt\""), "themed: {login}");
    assert!(home.contains("<a href=\"/impressum\">Impressum</a>"), "the imprint in the footer: {home}");
    assert_none(&home, B_WORDS, "A's home");

    let (_, az) = h.get(&a, "/leistungen").await;
    assert!(az.contains("Hundeanmeldung"));
    assert!(!az.contains("Alphageheim"), "unpublished service listed");
    assert_none(&az, B_WORDS, "A's A-Z");

    // B through its alias, with a port and in upper case.
    let (s, home_b) = h.get(&format!("{}:8443", b_alias.to_uppercase()), "/").await;
    assert_eq!(s, StatusCode::OK);
    assert!(home_b.contains("Wassersport"));
    assert_none(&home_b, A_WORDS, "B's home");
    let (_, az_b) = h.get(&b_alias, "/leistungen").await;
    assert!(az_b.contains("Bootsliegeplatz mieten"));
    assert_none(&az_b, A_WORDS, "B's A-Z");

    // A's service is not reachable on B's host, and vice versa.
    let (s, _) = h.get(&a, "/leistungen/hundeanmeldung").await;
    assert_eq!(s, StatusCode::OK);
    let (s, body) = h.get(&b_alias, "/leistungen/hundeanmeldung").await;
    assert_eq!(s, StatusCode::NOT_FOUND);
    assert_none(&body, A_WORDS, "B's 404");
    let (s, _) = h.get(&a, "/leistungen/bootsliegeplatz").await;
    assert_eq!(s, StatusCode::NOT_FOUND);
    let (s, _) = h.get(&a, "/leistungen/geheimentwurf").await;
    assert_eq!(s, StatusCode::NOT_FOUND, "unpublished service page");

    let (_, fac) = h.get(&a, "/einrichtungen").await;
    assert!(fac.contains("Rathaus Espelkamp Alphaweg"));
    assert_none(&fac, B_WORDS, "A's facilities");
    let (_, staff) = h.get(&b_alias, "/ansprechpartner").await;
    assert!(staff.contains("Hafenamt, Team Liegeplätze"));
    assert_none(&staff, A_WORDS, "B's staff");
}

#[tokio::test]
async fn service_page_shows_everything_a_citizen_needs() {
    let Some(h) = harness().await else { return };
    let (s, page) = h.get(&h.host("espelkamp", 0), "/leistungen/hundeanmeldung").await;
    assert_eq!(s, StatusCode::OK);
    for needle in
        ["<h1>Hundeanmeldung</h1>", "Zuständige Stelle", "Steueramt", "gebührenfrei", "Chipnummer", "substantiell"]
    {
        assert!(page.contains(needle), "missing {needle:?}:\n{page}");
    }
}

#[tokio::test]
async fn unknown_host_gets_a_plain_404_naming_no_tenant() {
    let Some(h) = harness().await else { return };
    for host in ["service.unbekannt.de", "127.0.0.1:8080", "", "espelkamp", "[::1]:80"] {
        let (s, body) = h.get(host, "/").await;
        assert_eq!(s, StatusCode::NOT_FOUND, "{host}");
        assert_none(&body, A_WORDS, host);
        assert_none(&body, B_WORDS, host);
        let (s, _) = h.get(host, "/suche?q=Hund").await;
        assert_eq!(s, StatusCode::NOT_FOUND);
        let (s, _) = h.get(host, "/.well-known/portalctl/identity").await;
        assert_eq!(s, StatusCode::NOT_FOUND);
    }
}

#[tokio::test]
async fn search_is_ranked_typo_tolerant_isolated_and_safe() {
    let Some(h) = harness().await else { return };
    let a = h.host("espelkamp", 0);
    let b = h.host("detmold", 1);

    let (s, res) = h.get(&a, "/suche?q=Hund+anmelden").await;
    assert_eq!(s, StatusCode::OK);
    assert!(res.contains("class=\"result-title\" href=\"/leistungen/hundeanmeldung\""), "{res}");
    assert!(res.contains("<mark>"), "snippet highlights: {res}");

    // Typo: trigram similarity.
    let (_, res) = h.get(&a, "/suche?q=Hundeanmeldng").await;
    assert!(res.contains("href=\"/leistungen/hundeanmeldung\""), "typo not found: {res}");

    // Staff and facilities are searched too.
    let (_, res) = h.get(&a, "/suche?q=Hundemarke").await;
    assert!(res.contains("/ansprechpartner#team-hund"), "{res}");
    let (_, res) = h.get(&a, "/suche?q=Alphaweg").await;
    assert!(res.contains("/einrichtungen#rathaus-alpha"), "{res}");

    // Isolation: A never finds B's content, whatever the query.
    for q in ["Bootsliegeplatz", "Hafenamt", "Betakai", "Bootsliegeplatzz", "Liegeplatz"] {
        let (_, res) = h.get(&a, &format!("/suche?q={q}")).await;
        assert!(res.contains("Keine Ergebnisse"), "{q} on A: {res}");
        assert_none(&res.replace(&format!("„{q}“"), ""), &["Bootsliegeplatz mieten", "Hafenamt Betakai"], q);
    }
    let (_, res) = h.get(&b, "/suche?q=Bootsliegeplatz").await;
    assert!(res.contains("/leistungen/bootsliegeplatz"));
    let (_, res) = h.get(&b, "/suche?q=Hundeanmeldung").await;
    assert!(res.contains("Keine Ergebnisse"), "{res}");

    // Unpublished content is not found.
    let (_, res) = h.get(&a, "/suche?q=Alphageheim").await;
    assert!(res.contains("Keine Ergebnisse"), "{res}");

    // Empty query: a friendly page, no error.
    let (s, res) = h.get(&a, "/suche?q=+++").await;
    assert_eq!(s, StatusCode::OK);
    assert!(res.contains("Geben Sie oben einen Suchbegriff ein"));
    let (s, _) = h.get(&a, "/suche").await;
    assert_eq!(s, StatusCode::OK);

    // Hostile queries: quotes, backslashes, markup, operators, a 10 kB string.
    let long = "Hund".repeat(2500);
    for q in [
        "%22%27%5C%3Cscript%3Ealert(1)%3C/script%3E",
        "%27%3B+DROP+TABLE+service%3B--",
        "%5C%5C%5C",
        "%21%26%7C%3A*%28%29",
        "-%22%22%22%22-or-%3Cb%3E",
        long.as_str(),
    ] {
        let (s, res) = h.get(&a, &format!("/suche?q={q}")).await;
        assert_eq!(s, StatusCode::OK, "{q}");
        assert!(!res.contains("<script>alert"), "unescaped markup for {q}");
        assert!(res.len() < 200_000, "query echoed uncapped");
    }
    // The table still exists.
    let (_, res) = h.get(&a, "/suche?q=Hund").await;
    assert!(res.contains("/leistungen/hundeanmeldung"));
}

#[tokio::test]
async fn logged_in_user_is_shown_in_the_layout() {
    let Some(h) = harness().await else { return };
    let mut req = Request::builder().uri("/").header("host", h.host("espelkamp", 0)).body(Body::empty()).unwrap();
    req.extensions_mut()
        .insert(portal::site::CurrentUser { name: "Erika Mustermann".into(), trust_level: "substantiell".into() });
    let res = portal::app(h.state.clone()).oneshot(req).await.unwrap();
    let body = String::from_utf8(axum::body::to_bytes(res.into_body(), 1 << 20).await.unwrap().to_vec()).unwrap();
    assert!(body.contains("class=\"user-name\">Erika Mustermann<"), "{body}");
    assert!(!body.contains("href=\"/anmelden\""));
}

/// PostgreSQL itself keeps tenants apart: the group role, switched to A's role, cannot read B.
#[tokio::test]
async fn database_enforces_isolation() {
    let Some(h) = harness().await else { return };
    let a = &h.env.tenant("espelkamp").schema;
    let b = &h.env.tenant("detmold").schema;
    let mut c = support::connect(&h.env.portal_url).await;
    // NOINHERIT: without SET ROLE the group role reads nothing.
    let err = c.query(&format!("SELECT * FROM {a}.service"), &[]).await.unwrap_err();
    assert!(
        err.to_string().contains("permission denied") || format!("{err:?}").contains("permission denied"),
        "{err:?}"
    );
    let tx = c.transaction().await.unwrap();
    portalctl::content::store::enter_tenant(&tx, a, Some(a)).await.unwrap();
    let n: i64 = tx.query_one("SELECT count(*) FROM service", &[]).await.unwrap().get(0);
    assert_eq!(n, 2);
    let err = tx.query(&format!("SELECT * FROM {b}.service"), &[]).await.unwrap_err();
    assert!(format!("{err:?}").contains("permission denied"), "{err:?}");
}

#[tokio::test]
async fn registry_follows_directory_changes_and_keeps_last_good_state() {
    use portal::source::TenantSource;
    let Some(h) = harness().await else { return };
    let mut dir = portal::source::Directory::new(h.env.dir.path());
    let registry = Registry::new();
    let from = dir.describe();
    let first = dir.poll().await.unwrap().expect("first poll loads");
    assert!(portal::source::apply(&registry, first, &from, portal::source::DEFAULT_MAX_REMOVAL));
    assert!(dir.poll().await.unwrap().is_none(), "unchanged directory reloaded");
    let a = h.env.tenant("espelkamp").clone();
    let b = h.env.tenant("detmold").clone();
    let espelkamp_before = registry.resolve(&a.hostnames[0]).expect("espelkamp served");

    // A broken edit of one tenant keeps that tenant on its last good configuration, and does
    // not hold back an edit of another tenant made at the same time.
    let path = h.env.group_dir().join("espelkamp.yaml");
    std::fs::write(&path, "apiVersion: portalctl.dev/v1alpha1\nkind: Tenant\nmetadata: {name: espelkamp}\nspec: {}\n")
        .unwrap();
    h.env.write_tenant(&b, "#1b5e20");
    let sites = dir.poll().await.unwrap().expect("the change is loaded");
    assert!(portal::source::apply(&registry, sites, &from, portal::source::DEFAULT_MAX_REMOVAL));
    let espelkamp = registry.resolve(&a.hostnames[0]).expect("espelkamp still served");
    assert_eq!(*espelkamp, *espelkamp_before, "espelkamp kept its last good configuration");
    assert_eq!(registry.resolve(&b.hostnames[0]).expect("detmold served").theme.primary_color, "#1b5e20");

    // A server that starts while a file is broken serves the healthy tenants and names the broken one.
    let mut fresh = portal::source::Directory::new(h.env.dir.path());
    let loaded = fresh.load().expect("a readable directory loads");
    assert_eq!(loaded.sites.iter().map(|s| s.slug.as_str()).collect::<Vec<_>>(), ["detmold"]);
    assert_eq!(loaded.broken.len(), 1, "{:?}", loaded.broken);
    assert!(
        loaded.broken[0].contains("espelkamp.yaml") && loaded.broken[0].contains("not served"),
        "{:?}",
        loaded.broken
    );

    // The directory emptied for a moment (a checkout, a moved folder): the reload that would
    // drop every tenant is refused, and the tenants stay.
    let group_dir = h.env.group_dir();
    let moved = h.env.dir.path().join("moved-away");
    std::fs::rename(&group_dir, &moved).unwrap();
    let sites = dir.poll().await.unwrap().expect("the change is seen");
    assert!(sites.is_empty());
    assert!(
        !portal::source::apply(&registry, sites, &from, portal::source::DEFAULT_MAX_REMOVAL),
        "mass removal refused"
    );
    assert!(registry.resolve(&a.hostnames[0]).is_some() && registry.resolve(&b.hostnames[0]).is_some());
    std::fs::rename(&moved, &group_dir).unwrap();
}

/// A Servicekonto session (as the login creates it) shows the citizen's name and trust level
/// in the page header of its own tenant only; the login routes are mounted on tenant hosts
/// and answer 404 on a host no tenant claims.
#[tokio::test]
async fn servicekonto_session_shows_the_user_in_the_header() {
    use portalctl::servicekonto::{web::SESSION_COOKIE, Session};
    use portalctl::tenant::TrustLevel;
    let Some(h) = harness().await else { return };
    let now = time::OffsetDateTime::now_utc();
    let session = Session {
        tenant: "espelkamp".into(),
        name: "Erika Mustermann".into(),
        given_name: Some("Erika".into()),
        family_name: Some("Mustermann".into()),
        trust_level: TrustLevel::Substantiell,
        protocol: "oidc",
        subject: "sub-4711".into(),
        expires: now + time::Duration::hours(1),
    };
    let sid = h.state.servicekonto().sessions.create_session(&h.env.group, session, now).await.unwrap();
    let get = |host: String, uri: &'static str, cookie: Option<String>| {
        let state = h.state.clone();
        async move {
            let mut req = Request::builder().uri(uri).header("host", host);
            if let Some(c) = cookie {
                req = req.header("cookie", c);
            }
            let res = portal::app(state).oneshot(req.body(Body::empty()).unwrap()).await.unwrap();
            let status = res.status();
            let body = axum::body::to_bytes(res.into_body(), 10 << 20).await.unwrap();
            (status, String::from_utf8(body.to_vec()).unwrap())
        }
    };
    let cookie = Some(format!("{SESSION_COOKIE}={sid}"));
    let (s, home) = get(h.host("espelkamp", 0), "/", cookie.clone()).await;
    assert_eq!(s, StatusCode::OK);
    assert!(home.contains("Erika Mustermann"), "name in the header:\n{home}");
    assert!(home.contains("substantiell"), "trust level in the header");
    assert!(home.contains("method=\"post\" action=\"/abmelden\""), "logout button (a POST form)");
    assert!(!home.contains("href=\"/abmelden\""), "no logout by GET link");

    // Without the cookie, and with the cookie on another tenant: nobody is logged in.
    let (_, anon) = get(h.host("espelkamp", 0), "/", None).await;
    assert!(!anon.contains("Erika Mustermann") && !anon.contains("action=\"/abmelden\""));
    let (_, other) = get(h.host("detmold", 0), "/", cookie.clone()).await;
    assert!(!other.contains("Erika Mustermann"), "a session is valid only on its own tenant");

    // The status endpoint of the mounted login routes sees the session.
    let (s, status) = get(h.host("espelkamp", 0), "/anmelden/status", cookie.clone()).await;
    assert_eq!(s, StatusCode::OK, "{status}");
    assert!(status.contains("Erika Mustermann"));

    // Login routes on a host no tenant claims: 404, naming no tenant, plain but valid.
    let (s, body) = get("unknown.example.org".into(), "/anmelden", None).await;
    assert_eq!(s, StatusCode::NOT_FOUND);
    assert!(!body.contains("Espelkamp") && !body.contains("Detmold"));
    assert!(
        body.contains("<meta charset=\"utf-8\">") && body.contains("<main>") && !body.contains("portal.css"),
        "{body}"
    );
}

#[tokio::test]
async fn error_pages_are_shown_in_the_tenants_layout() {
    let Some(env) = TestEnv::new(&["espelkamp"]).await else { return };
    // A pool that reaches no database: every read fails as unavailable (503).
    let state = env.app_state(portal::pool("postgres://nobody@127.0.0.1:1/none", 2).unwrap());
    let host = env.tenant("espelkamp").hostnames[0].clone();
    let req = Request::builder().uri("/leistungen").header("host", &host).body(Body::empty()).unwrap();
    let res = portal::app(state.clone()).oneshot(req).await.unwrap();
    assert_eq!(res.status(), StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(res.headers()["retry-after"], "5");
    assert!(res.headers()["content-security-policy"].to_str().unwrap().contains("frame-ancestors 'none'"));
    let body = String::from_utf8(axum::body::to_bytes(res.into_body(), 1 << 20).await.unwrap().to_vec()).unwrap();
    assert!(body.contains("vorübergehend nicht verfügbar"), "{body}");
    assert!(body.contains("Stadt Espelkamp") && body.contains("/static/portal.css"), "themed: {body}");
    assert!(body.contains("<a class=\"skip-link\" href=\"#inhalt\">"), "{body}");
    // Without a tenant the same error stays plain, naming nobody.
    let req = Request::builder().uri("/leistungen").header("host", "service.unbekannt.de").body(Body::empty()).unwrap();
    let res = portal::app(state).oneshot(req).await.unwrap();
    assert_eq!(res.status(), StatusCode::NOT_FOUND);
    let body = String::from_utf8(axum::body::to_bytes(res.into_body(), 1 << 20).await.unwrap().to_vec()).unwrap();
    assert!(!body.contains("Espelkamp") && body.contains("<title>Nicht gefunden</title>"), "{body}");
}

/// The legal pages: served as themed pages from the tenant file, linked from the footer of every page (404 page
/// included), Leichte Sprache and DGS from the start page; an external page is linked instead of served; every value
/// escaped.
#[tokio::test]
async fn legal_pages_are_served_and_linked_from_every_page() {
    let Some(env) = TestEnv::new(&["espelkamp", "detmold"]).await else { return };
    env.import("espelkamp", CONTENT_A).await;
    env.import("detmold", CONTENT_B).await;
    // Detmold: its Impressum is an external page, and its Leichte Sprache text tries markup.
    let file = env.group_dir().join("detmold.yaml");
    let text = std::fs::read_to_string(&file).unwrap();
    let text = text
        .replace("    imprint:\n", "    imprint:\n      url: \"https://www.example.org/impressum\"\n")
        .replace("Hier finden Sie Hilfe in Leichter Sprache.", "<script>alert(1)</script> Hilfe");
    std::fs::write(&file, text).unwrap();
    let state = env.app_state(portal::pool(&env.portal_url, 4).unwrap());
    let h = Harness { env, state };
    let a = h.host("espelkamp", 0);
    let b = h.host("detmold", 0);

    let footer_links = [
        "<a href=\"/impressum\">Impressum</a>",
        "<a href=\"/datenschutz\">Datenschutz</a>",
        "<a href=\"/barrierefreiheit\">Barrierefreiheit</a>",
        "<a href=\"/leichte-sprache\">Leichte Sprache</a>",
        "<a href=\"/gebaerdensprache\">Gebärdensprache</a>",
    ];
    for path in
        ["/", "/leistungen", "/einrichtungen", "/ansprechpartner", "/suche?q=Hund", "/impressum", "/gibt-es-nicht"]
    {
        let (_, page) = h.get(&a, path).await;
        let footer = &page[page.find("<footer").unwrap_or_else(|| panic!("{path}: no footer"))..];
        assert!(footer.contains("aria-label=\"Rechtliches\""), "{path}");
        for l in footer_links {
            assert!(footer.contains(l), "{path}: footer without {l}:\n{footer}");
        }
    }
    // § 4 BITV 2.0: the start page leads to Leichte Sprache and DGS.
    let (_, home) = h.get(&a, "/").await;
    let main = &home[home.find("<main").unwrap()..home.find("<footer").unwrap()];
    assert!(main.contains("href=\"/leichte-sprache\"") && main.contains("href=\"/gebaerdensprache\""), "{main}");

    let (s, imprint) = h.get(&a, "/impressum").await;
    assert_eq!(s, StatusCode::OK);
    for want in ["<h1>Impressum</h1>", "Musterstraße 1<br>12345 Musterstadt", "href=\"mailto:info@example.org\""] {
        assert!(imprint.contains(want), "{want}: {imprint}");
    }
    let (_, privacy) = h.get(&a, "/datenschutz").await;
    assert!(privacy.contains("<h2>Zweck der Verarbeitung</h2>"), "{privacy}");
    let (_, statement) = h.get(&a, "/barrierefreiheit").await;
    for want in [
        "<h1>Erklärung zur Barrierefreiheit</h1>",
        "teilweise vereinbar",
        "<li>Einige PDF-Formulare sind noch nicht barrierefrei.</li>",
        "href=\"mailto:barrierefreiheit@example.org\"",
        "href=\"https://www.example.org/schlichtungsstelle\"",
        // The feedback mechanism the statement must name: the portal's own form as well.
        "<a href=\"/rueckmeldung\">Feedback / Barriere melden</a>",
    ] {
        assert!(statement.contains(want), "{want}: {statement}");
    }
    let (_, dgs) = h.get(&a, "/gebaerdensprache").await;
    assert!(dgs.contains("href=\"https://www.example.org/dgs.mp4\""), "{dgs}");

    // Detmold: the external Impressum is linked, not served; the markup is text.
    let (_, home) = h.get(&b, "/").await;
    assert!(home.contains("<a href=\"https://www.example.org/impressum\">Impressum</a>"), "{home}");
    let (s, _) = h.get(&b, "/impressum").await;
    assert_eq!(s, StatusCode::NOT_FOUND);
    let (_, easy) = h.get(&b, "/leichte-sprache").await;
    assert!(
        easy.contains("&lt;script&gt;alert(1)&lt;&#x2F;script&gt; Hilfe")
            || easy.contains("&lt;script&gt;alert(1)&lt;/script&gt; Hilfe"),
        "{easy}"
    );
    assert!(!easy.contains("<script>alert"), "{easy}");
}

/// A service that needs the trust level "hoch" offers the login with the Online-Ausweis on its
/// page — `/anmelden?trustLevel=hoch` returning to the page — when the tenant has an identity
/// provider; a citizen logged in below "hoch" is told to log in again with it. Services at a
/// lower level, and tenants without an identity provider, offer no such login.
#[tokio::test]
async fn service_pages_offer_the_online_ausweis_login_where_a_service_needs_hoch() {
    const HOCH: &str = r#"
services:
  - id: meldebescheinigung
    title: "Meldebescheinigung"
    summary: "Die Meldebescheinigung bestätigt Ihre Wohnung."
    office: "Bürgerbüro"
    trustLevel: hoch
    published: true
"#;
    let Some(env) = support::TestEnv::new(&["espelkamp", "detmold"]).await else { return };
    // detmold logs in with BundID; espelkamp has no identity provider.
    let path = env.group_dir().join("detmold.yaml");
    let text = std::fs::read_to_string(&path).unwrap();
    std::fs::write(
        &path,
        format!(
            "{text}  servicekonto:\n    provider: bundid\n    environment: integration\n    trustLevel: substantiell\n    \
             idpMetadataUrl: https://int.id.bund.de/idp/shibboleth\n"
        ),
    )
    .unwrap();
    env.import("espelkamp", HOCH).await;
    env.import("detmold", CONTENT_B).await;
    env.import("detmold", HOCH).await;
    let state = env.app_state(portal::pool(&env.portal_url, 4).unwrap());
    let get = |host: String, uri: &'static str, user: Option<&str>| {
        let state = state.clone();
        let user =
            user.map(|level| portal::site::CurrentUser { name: "Erika Mustermann".into(), trust_level: level.into() });
        async move {
            let mut req = Request::builder().uri(uri).header("host", host).body(Body::empty()).unwrap();
            if let Some(u) = user {
                req.extensions_mut().insert(u);
            }
            let res = portal::app(state).oneshot(req).await.unwrap();
            assert_eq!(res.status(), StatusCode::OK, "{uri}");
            String::from_utf8(axum::body::to_bytes(res.into_body(), 10 << 20).await.unwrap().to_vec()).unwrap()
        }
    };
    let (espelkamp, detmold) =
        (env.tenant("espelkamp").hostnames[0].clone(), env.tenant("detmold").hostnames[0].clone());
    const LINK: &str = "href=\"/anmelden?trustLevel=hoch&amp;next=%2Fleistungen%2Fmeldebescheinigung\"";

    // No identity provider: the level is named, but there is no login to offer.
    let page = get(espelkamp, "/leistungen/meldebescheinigung", None).await;
    assert!(page.contains("hoch (Online-Ausweis)"), "{page}");
    assert!(!page.contains("/anmelden") && !page.contains("Mit Online-Ausweis anmelden"), "{page}");

    // An identity provider and a service at a lower level: the header's login only.
    let page = get(detmold.clone(), "/leistungen/bootsliegeplatz", None).await;
    assert!(page.contains("href=\"/anmelden\""), "the header's login button: {page}");
    assert!(!page.contains("trustLevel=hoch") && !page.contains("Mit Online-Ausweis anmelden"), "{page}");

    // An identity provider and a service that needs "hoch": the Online-Ausweis login back to this page.
    let page = get(detmold.clone(), "/leistungen/meldebescheinigung", None).await;
    assert!(page.contains("hoch (Online-Ausweis)") && page.contains("verlangt das Vertrauensniveau „hoch“"), "{page}");
    assert!(page.contains(&format!("<a class=\"button\" {LINK}>Mit Online-Ausweis anmelden</a>")), "{page}");

    // Logged in below "hoch": told to log in again with the Online-Ausweis.
    let page = get(detmold.clone(), "/leistungen/meldebescheinigung", Some("substantiell")).await;
    assert!(
        page.contains("mit dem Vertrauensniveau „substantiell“ angemeldet") && page.contains("erneut an"),
        "{page}"
    );
    assert!(page.contains(LINK), "{page}");

    // Logged in with the Online-Ausweis: nothing more to do.
    let page = get(detmold, "/leistungen/meldebescheinigung", Some("hoch")).await;
    assert!(page.contains("Sie sind mit dem Online-Ausweis angemeldet"), "{page}");
    assert!(!page.contains("trustLevel=hoch"), "{page}");
}
