//! Logins with several replicas, the way a cluster runs the portal: two `portalctl serve`
//! processes on one database behind a round-robin nginx (loopback only, its config in a
//! temporary directory), against the real local identity providers of `tests/idp`.
//!
//! A SAML and an OIDC login are begun through one backend and finished through the other
//! (nginx's `X-Backend` header shows which one answered), a logout through one is honoured by
//! the other, two replicas racing to finish the same login let exactly one win, and after a
//! restart of both backends the session still holds. Also: the login store's tables are
//! readable by the group role only, and hold token hashes, never tokens.
//!
//! Needs PostgreSQL (`.ci/postgres.sh`), node with `npm ci --prefix tests/idp`, and nginx
//! (Debian `nginx-light`).

mod support;

use portalctl::servicekonto::keys::{self, SpKeys};
use portalctl::servicekonto::metadata::{self, SpMetadataParams};
use reqwest::StatusCode;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};
use support::idp::start_node;
use support::{free_port, Server, TestEnv};

const CLIENT_ID: &str = "portal-espelkamp";
const CLIENT_SECRET: &str = "replica-client-secret-0123456789abcdef";

/// nginx in front of the backends; stopped on drop.
struct Nginx {
    child: Child,
    port: u16,
}

impl Drop for Nginx {
    fn drop(&mut self) {
        let _ = Command::new("kill").arg("-TERM").arg(self.child.id().to_string()).status();
        let deadline = Instant::now() + Duration::from_secs(5);
        while Instant::now() < deadline && matches!(self.child.try_wait(), Ok(None)) {
            std::thread::sleep(Duration::from_millis(50));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn start_nginx(dir: &Path, port: u16, backends: &[u16]) -> Nginx {
    let nginx = ["/usr/sbin/nginx", "nginx"]
        .into_iter()
        .find(|n| Command::new(n).arg("-v").stderr(Stdio::null()).status().is_ok_and(|s| s.success()))
        .expect("nginx is not installed (apt-get install nginx-light)");
    let dir = dir.join("nginx");
    std::fs::create_dir_all(&dir).unwrap();
    let servers: String = backends.iter().map(|p| format!("server 127.0.0.1:{p} max_fails=0; ")).collect();
    let conf = format!(
        "worker_processes 1;\ndaemon off;\npid {d}/nginx.pid;\nerror_log {d}/error.log;\n\
         events {{ worker_connections 256; }}\n\
         http {{\n  access_log off;\n  client_body_temp_path {d}/body; proxy_temp_path {d}/proxy;\n  \
         fastcgi_temp_path {d}/fastcgi; uwsgi_temp_path {d}/uwsgi; scgi_temp_path {d}/scgi;\n  \
         upstream portal {{ {servers}}}\n  \
         server {{\n    listen 127.0.0.1:{port};\n    location / {{\n      proxy_pass http://portal;\n      \
         proxy_set_header Host $http_host;\n      proxy_next_upstream off;\n      \
         add_header X-Backend $upstream_addr always;\n    }}\n  }}\n}}\n",
        d = dir.display()
    );
    let path = dir.join("nginx.conf");
    std::fs::write(&path, conf).unwrap();
    let child = Command::new(nginx)
        .arg("-p")
        .arg(&dir)
        .arg("-e")
        .arg(dir.join("error.log"))
        .arg("-c")
        .arg(&path)
        .stderr(Stdio::null())
        .spawn()
        .expect("start nginx");
    let nginx = Nginx { child, port };
    eventually("nginx listens", || std::net::TcpStream::connect(("127.0.0.1", port)).is_ok());
    nginx
}

fn eventually(what: &str, mut check: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(20);
    while Instant::now() < deadline {
        if check() {
            return;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    panic!("timed out waiting until {what}");
}

/// The Servicekonto binding appended to a tenant file of the test environment.
fn bind(env: &TestEnv, slug: &str, binding: &str) {
    let path = env.group_dir().join(format!("{slug}.yaml"));
    let text = std::fs::read_to_string(&path).unwrap();
    let base = text.split("  servicekonto:\n").next().unwrap().to_string();
    std::fs::write(&path, format!("{base}  servicekonto:\n{binding}")).unwrap();
}

fn location(resp: &reqwest::Response) -> String {
    resp.headers().get("location").expect("a redirect").to_str().unwrap().to_string()
}

fn backend(resp: &reqwest::Response) -> String {
    resp.headers().get("x-backend").expect("nginx names the backend").to_str().unwrap().to_string()
}

fn html_unescape(s: &str) -> String {
    s.replace("&quot;", "\"").replace("&lt;", "<").replace("&gt;", ">").replace("&#39;", "'").replace("&amp;", "&")
}

fn form_field(html: &str, name: &str) -> Option<String> {
    let marker = format!("name=\"{name}\" value=\"");
    let start = html.find(&marker)? + marker.len();
    let end = start + html[start..].find('"')?;
    Some(html_unescape(&html[start..end]))
}

struct Cluster {
    env: TestEnv,
    secrets: PathBuf,
    saml_host: String,
    oidc_host: String,
    backends: [u16; 2],
    servers: Vec<Server>,
    nginx: Nginx,
    oidc_idp_port: u16,
    _idps: Vec<support::idp::NodeIdp>,
}

impl Cluster {
    async fn start() -> Option<Cluster> {
        let env = TestEnv::new(&["detmold", "espelkamp"]).await?;
        let saml_host = env.tenant("detmold").hostnames[0].clone();
        let oidc_host = env.tenant("espelkamp").hostnames[0].clone();
        let secrets = env.dir.path().join("servicekonto-secrets");
        std::fs::create_dir_all(&secrets).unwrap();
        let (front, backends) = (free_port(), [free_port(), free_port()]);
        let public = |host: &str| format!("http://{host}:{front}");

        // SAML: the tenant's binding (IdP URL filled in below), SP keys and metadata with the
        // public (nginx) URL, the IdP's own key pair.
        bind(&env, "detmold", "    provider: bundid\n    environment: integration\n    trustLevel: substantiell\n    idpMetadataUrl: http://127.0.0.1:9/metadata\n");
        let built = portalctl::tenant::load_dir(env.dir.path()).unwrap();
        assert_eq!(built.error_count(), 0, "{:#?}", built.diagnostics);
        let detmold = built.catalog.tenant("detmold").unwrap().clone();
        let (sp_keys, _) =
            keys::load_or_generate(&secrets, &detmold, portalctl::tenant::Environment::Integration).unwrap();
        let base = public(&saml_host);
        let sp_md = metadata::sp_metadata(&SpMetadataParams::for_tenant(&detmold, &base, &sp_keys).unwrap()).unwrap();
        std::fs::write(secrets.join("sp-metadata.xml"), sp_md).unwrap();
        let now = time::OffsetDateTime::now_utc();
        let idp_keys =
            SpKeys::self_signed("Test IdP", "Test", now - time::Duration::hours(1), now + time::Duration::days(90))
                .unwrap();
        std::fs::write(secrets.join("idp.key.pem"), idp_keys.private_key_pem().unwrap()).unwrap();
        std::fs::write(secrets.join("idp.crt.pem"), &idp_keys.cert_pem).unwrap();
        let saml_idp = start_node(
            "saml.js",
            &[
                ("SP_METADATA", secrets.join("sp-metadata.xml").display().to_string()),
                ("IDP_KEY", secrets.join("idp.key.pem").display().to_string()),
                ("IDP_CERT", secrets.join("idp.crt.pem").display().to_string()),
            ],
        );
        bind(
            &env,
            "detmold",
            &format!(
                "    provider: bundid\n    environment: integration\n    trustLevel: substantiell\n    idpMetadataUrl: http://127.0.0.1:{}/metadata\n",
                saml_idp.port
            ),
        );

        // OIDC.
        let secret_file = secrets.join("oidc-client-secret");
        std::fs::write(&secret_file, CLIENT_SECRET).unwrap();
        let oidc_idp = start_node(
            "oidc.js",
            &[
                ("CLIENT_ID", CLIENT_ID.to_string()),
                ("CLIENT_SECRET", CLIENT_SECRET.to_string()),
                ("REDIRECT_URIS", format!("{}/anmelden/oidc/callback", public(&oidc_host))),
            ],
        );
        bind(
            &env,
            "espelkamp",
            &format!(
                "    provider: oidc\n    trustLevel: substantiell\n    issuer: http://127.0.0.1:{}\n    clientId: {CLIENT_ID}\n    credentials:\n      file: {}\n",
                oidc_idp.port,
                secret_file.display()
            ),
        );
        let oidc_idp_port = oidc_idp.port;
        let mut cluster = Cluster {
            nginx: start_nginx(env.dir.path(), front, &backends),
            env,
            secrets,
            saml_host,
            oidc_host,
            backends,
            servers: Vec::new(),
            oidc_idp_port,
            _idps: vec![saml_idp, oidc_idp],
        };
        cluster.start_backends();
        Some(cluster)
    }

    fn start_backends(&mut self) {
        let secrets = self.secrets.display().to_string();
        let args = ["--insecure-http-cookies", "--secrets-dir", &secrets];
        self.servers = self.backends.iter().map(|p| self.env.start_server_on(*p, &args)).collect();
    }

    fn restart_backends(&mut self) {
        for s in &mut self.servers {
            assert!(s.terminate().success());
        }
        self.servers.clear();
        self.start_backends();
    }

    /// A browser: cookies on, redirects manual, the tenant hosts resolved to loopback (the
    /// port in each URL picks nginx or one backend directly).
    fn browser(&self) -> reqwest::Client {
        let lo: SocketAddr = "127.0.0.1:0".parse().unwrap();
        reqwest::Client::builder()
            .cookie_store(true)
            .redirect(reqwest::redirect::Policy::none())
            .resolve(&self.saml_host, lo)
            .resolve(&self.oidc_host, lo)
            .build()
            .unwrap()
    }

    /// URL through nginx.
    fn url(&self, host: &str, path: &str) -> String {
        format!("http://{host}:{}{path}", self.nginx.port)
    }

    /// URL of backend `i` directly.
    fn direct(&self, i: usize, host: &str, path: &str) -> String {
        format!("http://{host}:{}{path}", self.backends[i])
    }

    /// The session status on each backend directly.
    async fn status_on_both(&self, browser: &reqwest::Client, host: &str) -> [StatusCode; 2] {
        let mut out = [StatusCode::IM_A_TEAPOT; 2];
        for (i, o) in out.iter_mut().enumerate() {
            *o = browser.get(self.direct(i, host, "/anmelden/status")).send().await.unwrap().status();
        }
        out
    }

    fn logs(&self) -> String {
        self.servers.iter().map(|s| s.log_text()).collect::<Vec<_>>().join("\n---\n")
    }
}

/// Start a SAML login through nginx; returns the backend that started it and the IdP's form
/// (action, SAMLResponse).
async fn saml_begin(c: &Cluster, browser: &reqwest::Client) -> (String, String, String) {
    saml_begin_with(c, browser, "").await
}

/// As [`saml_begin`], with extra scenario parameters for the IdP (e.g. the level it asserts).
async fn saml_begin_with(c: &Cluster, browser: &reqwest::Client, idp_extra: &str) -> (String, String, String) {
    let resp = browser.get(c.url(&c.saml_host, "/anmelden?next=/konto")).send().await.unwrap();
    assert_eq!(resp.status(), StatusCode::OK, "{}", c.logs());
    let started_on = backend(&resp);
    // The server's own policy, extended by the hash of the page's one script.
    let csp = resp.headers().get("content-security-policy").unwrap().to_str().unwrap().to_string();
    assert!(csp.starts_with("default-src 'none'") && csp.contains("; script-src 'sha256-"), "{csp}");
    // The BundID profile posts the AuthnRequest: the form of our page, as the browser submits it.
    let page = resp.text().await.unwrap();
    let form = &page[page.find("<form id=\"saml-post\"").expect("the HTTP-POST binding's form")..];
    let to_idp = {
        let start = form.find("action=\"").unwrap() + "action=\"".len();
        format!(
            "{}?{}",
            html_unescape(&form[start..start + form[start..].find('"').unwrap()]),
            idp_extra.trim_start_matches('&')
        )
    };
    let fields: Vec<(&str, String)> =
        ["SAMLRequest", "RelayState"].into_iter().filter_map(|k| Some((k, form_field(form, k)?))).collect();
    let resp = reqwest::Client::new().post(&to_idp).form(&fields).send().await.unwrap();
    let html = resp.text().await.unwrap();
    let action = {
        let start = html.find("action=\"").expect("the IdP's form") + "action=\"".len();
        html_unescape(&html[start..start + html[start..].find('"').unwrap()])
    };
    (started_on, action, form_field(&html, "SAMLResponse").expect("SAMLResponse"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn logins_sessions_and_logouts_work_across_two_replicas() {
    let Some(mut c) = Cluster::start().await else { return };

    // SAML: begun through one backend, finished through the other.
    let citizen = c.browser();
    let (started_on, action, saml_response) = saml_begin(&c, &citizen).await;
    assert_eq!(action, c.url(&c.saml_host, "/anmelden/saml/acs"));
    let resp = citizen.post(&action).form(&[("SAMLResponse", saml_response.as_str())]).send().await.unwrap();
    let finished_on = backend(&resp);
    assert_eq!(resp.status(), StatusCode::SEE_OTHER, "{}\n{}", resp.text().await.unwrap(), c.logs());
    assert_eq!(location(&resp), "/konto");
    assert_ne!(started_on, finished_on, "round robin: the ACS post reached the other backend");
    assert_eq!(c.status_on_both(&citizen, &c.saml_host).await, [StatusCode::OK; 2]);
    // The portal's pages show the citizen's name (BundID's OIDs 2.5.4.42, 2.5.4.4) and trust level.
    let page = citizen.get(c.url(&c.saml_host, "/")).send().await.unwrap().text().await.unwrap();
    assert!(page.contains(r#"<strong class="user-name">Erika Mustermann</strong>"#), "{page}");
    assert!(page.contains(r#"title="Vertrauensniveau">substantiell<"#), "{page}");

    // Below the tenant's minimum (substantiell): refused on a page in the tenant's own layout.
    let weak = c.browser();
    let (_, action, saml_response) = saml_begin_with(&c, &weak, "&level=STORK-QAA-Level-1").await;
    let resp = weak.post(&action).form(&[("SAMLResponse", saml_response.as_str())]).send().await.unwrap();
    assert_eq!(resp.status(), StatusCode::FORBIDDEN);
    assert_eq!(resp.headers().get("cache-control").unwrap(), "no-store");
    let page = resp.text().await.unwrap();
    assert!(page.contains("<h1>Vertrauensniveau nicht ausreichend</h1>") && page.contains("„substantiell“"), "{page}");
    assert!(page.contains("/static/portal.css") && page.contains("Stadt Detmold"), "not themed: {page}");
    assert_eq!(c.status_on_both(&weak, &c.saml_host).await, [StatusCode::UNAUTHORIZED; 2]);

    // OIDC: begun through one backend, the callback through the other.
    let oidc_citizen = c.browser();
    let resp = oidc_citizen.get(c.url(&c.oidc_host, "/anmelden?next=/antraege")).send().await.unwrap();
    assert_eq!(resp.status(), StatusCode::SEE_OTHER, "{}", c.logs());
    let started_on = backend(&resp);
    let mut next = location(&resp);
    let idp = format!("http://127.0.0.1:{}", c.oidc_idp_port);
    let callback = c.url(&c.oidc_host, "/anmelden/oidc/callback");
    for _ in 0..10 {
        if next.starts_with(&callback) {
            break;
        }
        let url = if next.starts_with('/') { format!("{idp}{next}") } else { next };
        let resp = oidc_citizen.get(&url).send().await.unwrap();
        assert!(resp.status().is_redirection(), "{url}: {}", resp.status());
        next = location(&resp);
    }
    assert!(next.starts_with(&callback), "{next}");
    let resp = oidc_citizen.get(&next).send().await.unwrap();
    let finished_on = backend(&resp);
    assert_eq!(resp.status(), StatusCode::SEE_OTHER, "{}\n{}", resp.text().await.unwrap(), c.logs());
    assert_eq!(location(&resp), "/antraege");
    assert_ne!(started_on, finished_on, "round robin: the callback reached the other backend");
    assert_eq!(c.status_on_both(&oidc_citizen, &c.oidc_host).await, [StatusCode::OK; 2]);

    // Two replicas racing to finish the same SAML login: exactly one wins.
    let racer = c.browser();
    let (_, _, saml_response) = saml_begin(&c, &racer).await;
    let post = |i: usize| {
        racer
            .post(c.direct(i, &c.saml_host, "/anmelden/saml/acs"))
            .form(&[("SAMLResponse", saml_response.clone())])
            .send()
    };
    let (a, b) = tokio::join!(post(0), post(1));
    let mut codes = [a.unwrap().status(), b.unwrap().status()];
    codes.sort();
    assert_eq!(codes, [StatusCode::SEE_OTHER, StatusCode::BAD_REQUEST], "{}", c.logs());

    // Logout through one backend is honoured by the other.
    let resp = citizen
        .post(c.url(&c.saml_host, "/abmelden"))
        .header("origin", format!("http://{}:{}", c.saml_host, c.nginx.port))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::SEE_OTHER);
    assert_eq!(c.status_on_both(&citizen, &c.saml_host).await, [StatusCode::UNAUTHORIZED; 2]);

    // A restart of both backends logs no one out.
    c.restart_backends();
    assert_eq!(c.status_on_both(&oidc_citizen, &c.oidc_host).await, [StatusCode::OK; 2]);
    let resp = oidc_citizen.get(c.url(&c.oidc_host, "/anmelden/status")).send().await.unwrap();
    let body: serde_json::Value = resp.json().await.unwrap();
    assert_eq!(body["name"], "Erika Mustermann");
    assert_eq!(body["protocol"], "oidc");

    // The store: token hashes only, readable by the group role, by no tenant role.
    let admin = support::connect(&c.env.url).await;
    let schema = portalctl::db::login_schema(&c.env.group).unwrap();
    let rows = admin.query(&format!("SELECT id_hash, data FROM {schema}.login_session"), &[]).await.unwrap();
    assert_eq!(rows.len(), 2, "the racer's and the OIDC citizen's sessions");
    let tenant_roles: Vec<String> = ["detmold", "espelkamp"].iter().map(|s| c.env.tenant(s).schema.clone()).collect();
    for r in &rows {
        assert_eq!(r.get::<_, Vec<u8>>(0).len(), 32, "SHA-256");
        // BundID delivered birthdate, address, e-mail and bPK2: none of it is stored.
        let data: String = r.get(1);
        for personal in ["1964-08-12", "Heidestraße", "51147", "erika.mustermann@example.org", "bpk2-test"] {
            assert!(!data.contains(personal), "{personal} stored in {data}");
        }
    }
    let group = support::connect(&c.env.portal_url).await;
    group.query(&format!("SELECT count(*) FROM {schema}.login_session"), &[]).await.unwrap();
    for tenant_role in tenant_roles {
        let err = admin
            .batch_execute(&format!(
                "BEGIN; SET LOCAL ROLE {tenant_role}; SELECT count(*) FROM {schema}.login_session; COMMIT"
            ))
            .await
            .expect_err("a tenant role must not read the login store");
        assert_eq!(err.code().map(|c| c.code()), Some("42501"), "{err}");
        admin.batch_execute("ROLLBACK").await.unwrap();
    }
}

/// The PostgreSQL store itself, as the server's group role: two stores (two replicas) share
/// every session and login in progress; a login is taken once; expired rows are invisible and
/// swept; groups do not see each other's state.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_postgres_login_store_is_shared_single_use_and_expiring() {
    use portalctl::servicekonto::session::{Pending, PENDING_TTL, SESSION_TTL, SWEEP_INTERVAL};
    use portalctl::servicekonto::{LoginStore, Session};
    let Some(env) = TestEnv::new(&["detmold"]).await else { return };
    let a = LoginStore::postgres(portalctl::portal::pool(&env.portal_url, 2).unwrap());
    let b = LoginStore::postgres(portalctl::portal::pool(&env.portal_url, 2).unwrap());
    let g = env.group.as_str();
    let now = time::OffsetDateTime::now_utc();
    let pending = Pending::Saml {
        tenant: "detmold".into(),
        request_id: "_r1".into(),
        acs_url: "https://service.detmold.test/anmelden/saml/acs".into(),
        next: "/konto".into(),
        min_level: portalctl::tenant::TrustLevel::Hoch,
    };
    a.put_pending(g, "login-token-1", pending.clone(), now).await.unwrap();
    assert_eq!(b.pending(g, "login-token-1", now).await.unwrap(), Some(pending.clone()), "seen by the other");
    assert_eq!(b.pending(g, "login-token-2", now).await.unwrap(), None);
    let (x, y) = tokio::join!(a.take_pending(g, "login-token-1", now), b.take_pending(g, "login-token-1", now));
    assert_eq!([x.unwrap().is_some(), y.unwrap().is_some()].iter().filter(|t| **t).count(), 1, "taken exactly once");

    let session = Session {
        tenant: "detmold".into(),
        name: "Erika Mustermann".into(),
        given_name: Some("Erika".into()),
        family_name: Some("Mustermann".into()),
        trust_level: portalctl::tenant::TrustLevel::Substantiell,
        protocol: "saml",
        subject: "sub-1".into(),
        expires: now + SESSION_TTL,
    };
    let token = a.create_session(g, session, now).await.unwrap();
    let seen = b.session(g, &token, now).await.unwrap().expect("seen by the other");
    assert_eq!((seen.name.as_str(), seen.subject.as_str(), seen.protocol), ("Erika Mustermann", "sub-1", "saml"));
    assert!(b.session(g, &token, now + SESSION_TTL).await.unwrap().is_none(), "expired");

    // Expired rows are swept by the next write after the sweep interval.
    a.put_pending(g, "login-token-3", pending.clone(), now).await.unwrap();
    let later = now + SESSION_TTL + PENDING_TTL + SWEEP_INTERVAL;
    b.put_pending(g, "login-token-4", pending, later).await.unwrap();
    let admin = support::connect(&env.url).await;
    let schema = portalctl::db::login_schema(g).unwrap();
    let count = |table: &'static str| {
        let (admin, schema) = (&admin, &schema);
        async move {
            admin.query_one(&format!("SELECT count(*) FROM {schema}.{table}"), &[]).await.unwrap().get::<_, i64>(0)
        }
    };
    assert_eq!(count("login_session").await, 0, "the expired session was swept");
    assert_eq!(count("login_pending").await, 1, "only the fresh login in progress is left");

    // Logout removes a session for every replica.
    let token = a.create_session(g, seen_session(now), now).await.unwrap();
    b.remove_session(g, &token).await.unwrap();
    assert!(a.session(g, &token, now).await.unwrap().is_none());
}

fn seen_session(now: time::OffsetDateTime) -> portalctl::servicekonto::Session {
    portalctl::servicekonto::Session {
        tenant: "detmold".into(),
        name: "n".into(),
        given_name: None,
        family_name: None,
        trust_level: portalctl::tenant::TrustLevel::Hoch,
        protocol: "oidc",
        subject: "s".into(),
        expires: now + portalctl::servicekonto::session::SESSION_TTL,
    }
}
