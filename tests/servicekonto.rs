//! Servicekonto login end to end against real identity providers started here: a SAML IdP
//! built with npm `samlify` (tests/idp/saml.js) and npm `oidc-provider` (tests/idp/oidc.js),
//! driven over real HTTP through a minimal axum app that mounts `servicekonto::routes()`.
//!
//! Needs node and `npm ci --prefix tests/idp` (done by `.ci/run`).

mod support;

use axum::extract::FromRef;
use axum::routing::get;
use axum::Router;
use base64::Engine as _;
use portalctl::servicekonto::keys::{self, SpKeys};
use portalctl::servicekonto::metadata::{self, SpMetadataParams};
use portalctl::servicekonto::{routes, ServicekontoState, TenantLookup};
use portalctl::servicekonto::{saml, samples};
use portalctl::tenant::{self, SourceFile, Tenant};
use reqwest::StatusCode;
use sha2::Digest as _;
use std::collections::HashMap;
use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;
use support::idp::{start_node, NodeIdp};

const SAML_HOST: &str = "service.detmold.test";
const OIDC_HOST: &str = "service.espelkamp.test";
const CLIENT_ID: &str = "portal-espelkamp";

/// Host → tenant, as the portal's registry would resolve it (port and case ignored).
struct Lookup(HashMap<String, Arc<Tenant>>);

impl TenantLookup for Lookup {
    fn tenant_for_host(&self, host: &str) -> Option<Arc<Tenant>> {
        let host = host.rsplit_once(':').map_or(host, |(h, _)| h).to_ascii_lowercase();
        self.0.get(&host).cloned()
    }
}

/// The portal server's state stands in for any state that provides a ServicekontoState.
#[derive(Clone)]
struct AppState {
    servicekonto: ServicekontoState,
}

impl FromRef<AppState> for ServicekontoState {
    fn from_ref(s: &AppState) -> ServicekontoState {
        s.servicekonto.clone()
    }
}

fn build_tenants(secret_file: &Path) -> (Tenant, Tenant) {
    let group = r#"apiVersion: portalctl.dev/v1alpha1
kind: RolloutGroup
metadata:
  name: e2e
spec:
  displayName: "End-to-end test group"
  waves:
    - name: pilot
"#;
    let saml = format!(
        r#"apiVersion: portalctl.dev/v1alpha1
kind: Tenant
metadata:
  name: detmold
spec:
  displayName: "Stadt Detmold"
  ags: "05766020"
  kind: stadt
  parent: "05766"
  wave: pilot
  hostnames:
    - {SAML_HOST}
  servicekonto:
    provider: bundid
    environment: integration
    trustLevel: substantiell
    idpMetadataUrl: https://idp.invalid/metadata
    onlineServiceId: e2e-online-service
"#
    );
    let oidc = format!(
        r#"apiVersion: portalctl.dev/v1alpha1
kind: Tenant
metadata:
  name: espelkamp
spec:
  displayName: "Stadt Espelkamp"
  ags: "05770008"
  kind: stadt
  parent: "05770"
  wave: pilot
  hostnames:
    - {OIDC_HOST}
  servicekonto:
    provider: oidc
    trustLevel: substantiell
    issuer: https://oidc.invalid
    clientId: {CLIENT_ID}
    credentials:
      file: {}
"#,
        secret_file.display()
    );
    let files = [("group", group.to_string()), ("detmold", saml), ("espelkamp", oidc)].map(|(stem, text)| SourceFile {
        path: format!("tenants/e2e/{stem}.yaml"),
        group_dir: "e2e".into(),
        stem: stem.into(),
        text,
    });
    let built = tenant::build(&files);
    assert_eq!(built.error_count(), 0, "{:#?}", built.diagnostics);
    let t = |slug: &str| built.catalog.tenant(slug).unwrap().clone();
    (t("detmold"), t("espelkamp"))
}

struct Env {
    secrets: tempfile::TempDir,
    _saml_idp: NodeIdp,
    _oidc_idp: NodeIdp,
    saml_idp_port: u16,
    oidc_idp_port: u16,
    port: u16,
    addr: SocketAddr,
    tenants: Vec<Arc<Tenant>>,
}

impl Env {
    async fn start() -> Env {
        let secrets = tempfile::tempdir().unwrap();
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let port = addr.port();

        let client_secret = "e2e-client-secret-0123456789abcdef";
        let secret_file = secrets.path().join("oidc-client-secret");
        std::fs::write(&secret_file, format!("{client_secret}\n")).unwrap();
        let (mut saml_tenant, mut oidc_tenant) = build_tenants(&secret_file);

        // Our SP key pair and metadata, as `portalctl servicekonto metadata` would produce them.
        let (sp_keys, generated) =
            keys::load_or_generate(secrets.path(), &saml_tenant, portalctl::tenant::Environment::Integration).unwrap();
        assert!(generated);
        let base_url = format!("http://{SAML_HOST}:{port}");
        let sp_md =
            metadata::sp_metadata(&SpMetadataParams::for_tenant(&saml_tenant, &base_url, &sp_keys).unwrap()).unwrap();
        let sp_md_path = secrets.path().join("sp-metadata.xml");
        std::fs::write(&sp_md_path, sp_md).unwrap();

        // The IdP's own signing key pair.
        let now = time::OffsetDateTime::now_utc();
        let idp_keys =
            SpKeys::self_signed("Test IdP", "Test", now - time::Duration::hours(1), now + time::Duration::days(90))
                .unwrap();
        let idp_key = secrets.path().join("idp.key.pem");
        let idp_cert = secrets.path().join("idp.crt.pem");
        std::fs::write(&idp_key, idp_keys.private_key_pem().unwrap()).unwrap();
        std::fs::write(&idp_cert, &idp_keys.cert_pem).unwrap();

        let saml_idp = start_node(
            "saml.js",
            &[
                ("SP_METADATA", sp_md_path.display().to_string()),
                ("IDP_KEY", idp_key.display().to_string()),
                ("IDP_CERT", idp_cert.display().to_string()),
            ],
        );
        let oidc_idp = start_node(
            "oidc.js",
            &[
                ("CLIENT_ID", CLIENT_ID.to_string()),
                ("CLIENT_SECRET", client_secret.to_string()),
                ("REDIRECT_URIS", format!("http://{OIDC_HOST}:{port}/anmelden/oidc/callback")),
            ],
        );
        let saml_idp_port = saml_idp.port;
        let oidc_idp_port = oidc_idp.port;
        // The tenant model accepts http IdP URLs only on loopback; point the bindings at the local IdPs.
        saml_tenant.servicekonto.as_mut().unwrap().idp_metadata_url =
            Some(format!("http://127.0.0.1:{saml_idp_port}/metadata"));
        oidc_tenant.servicekonto.as_mut().unwrap().issuer = Some(format!("http://127.0.0.1:{oidc_idp_port}"));

        let tenants = vec![Arc::new(saml_tenant), Arc::new(oidc_tenant)];
        let lookup = Lookup(HashMap::from([
            (SAML_HOST.to_string(), tenants[0].clone()),
            (OIDC_HOST.to_string(), tenants[1].clone()),
        ]));
        let state =
            ServicekontoState::new(secrets.path().to_path_buf(), Arc::new(lookup)).insecure_http_for_tests(port);
        let app: Router = Router::new()
            .route("/", get(|| async { "Startseite" }))
            .merge(routes::<AppState>())
            .with_state(AppState { servicekonto: state });
        tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
        Env { secrets, _saml_idp: saml_idp, _oidc_idp: oidc_idp, saml_idp_port, oidc_idp_port, port, addr, tenants }
    }

    /// A browser: cookies on, redirects manual, both tenant hosts resolved to the test server.
    /// One environment for all tests (starting the IdPs costs seconds), served from its own
    /// runtime thread so that it outlives each test's runtime.
    fn shared() -> &'static Env {
        static ENV: std::sync::OnceLock<Env> = std::sync::OnceLock::new();
        ENV.get_or_init(|| {
            let (tx, rx) = std::sync::mpsc::channel();
            std::thread::spawn(move || {
                let rt = tokio::runtime::Runtime::new().unwrap();
                rt.block_on(async move {
                    tx.send(Env::start().await).unwrap();
                    std::future::pending::<()>().await;
                });
            });
            rx.recv().expect("the test environment failed to start")
        })
    }

    fn browser(&self) -> reqwest::Client {
        reqwest::Client::builder()
            .cookie_store(true)
            .redirect(reqwest::redirect::Policy::none())
            .resolve(SAML_HOST, self.addr)
            .resolve(OIDC_HOST, self.addr)
            .build()
            .unwrap()
    }

    fn url(&self, host: &str, path: &str) -> String {
        format!("http://{host}:{}{path}", self.port)
    }

    /// The SAML IdP's HTTP-Redirect single sign-on endpoint (BundID's Shibboleth path), followed by `rest`.
    fn saml_sso_url(&self, rest: &str) -> String {
        format!("http://127.0.0.1:{}/idp/profile/SAML2/Redirect/SSO{rest}", self.saml_idp_port)
    }

    /// The SAML IdP's HTTP-POST single sign-on endpoint (the one BundID documents).
    fn saml_post_sso_url(&self) -> String {
        format!("http://127.0.0.1:{}/idp/profile/SAML2/POST/SSO", self.saml_idp_port)
    }

    /// What the SAML IdP received: its record of the AuthnRequest with this ID.
    async fn idp_request(&self, id: &str) -> serde_json::Value {
        let url = format!("http://127.0.0.1:{}/requests", self.saml_idp_port);
        let all: Vec<serde_json::Value> = reqwest::get(url).await.unwrap().json().await.unwrap();
        all.into_iter().find(|r| r["id"] == id).unwrap_or_else(|| panic!("the IdP received no request {id}"))
    }
}

fn location(resp: &reqwest::Response) -> String {
    resp.headers().get("location").expect("a redirect").to_str().unwrap().to_string()
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

fn form_action(html: &str) -> String {
    let start = html.find("action=\"").unwrap() + "action=\"".len();
    let end = start + html[start..].find('"').unwrap();
    html_unescape(&html[start..end])
}

/// The IdP's auto-post form after starting a SAML login (with extra scenario parameters for the IdP).
struct SamlForm {
    action: String,
    saml_response: String,
    relay_state: Option<String>,
}

async fn saml_form(env: &Env, browser: &reqwest::Client, idp_extra: &str) -> SamlForm {
    saml_form_from(env, browser, "/anmelden?next=/konto", idp_extra).await
}

async fn saml_form_from(env: &Env, browser: &reqwest::Client, start: &str, idp_extra: &str) -> SamlForm {
    let request = saml_request_form(env, browser, start).await;
    let resp = request.post_to_idp(idp_extra).await;
    let status = resp.status();
    let html = resp.text().await.unwrap();
    assert_eq!(status, StatusCode::OK, "the IdP rejected our AuthnRequest: {html}");
    SamlForm {
        action: form_action(&html),
        saml_response: form_field(&html, "SAMLResponse").expect("SAMLResponse in the form"),
        relay_state: form_field(&html, "RelayState"),
    }
}

/// Our HTTP-POST binding page: the form the browser posts to the IdP (BundID profile).
struct RequestForm {
    action: String,
    saml_request: String,
    relay_state: Option<String>,
}

impl RequestForm {
    /// The AuthnRequest's XML.
    fn xml(&self) -> String {
        String::from_utf8(base64::engine::general_purpose::STANDARD.decode(&self.saml_request).unwrap()).unwrap()
    }

    /// Post the form to the IdP as the browser would, with scenario parameters (`&level=…`) in the URL's query.
    async fn post_to_idp(&self, idp_extra: &str) -> reqwest::Response {
        let extra = idp_extra.trim_start_matches('&');
        let url = if extra.is_empty() { self.action.clone() } else { format!("{}?{extra}", self.action) };
        let mut fields = vec![("SAMLRequest", self.saml_request.clone())];
        if let Some(r) = &self.relay_state {
            fields.push(("RelayState", r.clone()));
        }
        reqwest::Client::new().post(url).form(&fields).send().await.unwrap()
    }
}

/// Start a login at `start` on the BundID tenant: the page of the HTTP-POST binding, checked to
/// work under its Content-Security-Policy (the auto-submit script allowed by its hash only, a
/// visible button without script).
async fn saml_request_form(env: &Env, browser: &reqwest::Client, start: &str) -> RequestForm {
    let resp = browser.get(env.url(SAML_HOST, start)).send().await.unwrap();
    assert_eq!(resp.status(), StatusCode::OK, "the HTTP-POST binding's page");
    let csp = resp.headers().get("content-security-policy").expect("a CSP").to_str().unwrap().to_string();
    assert_eq!(resp.headers().get("cache-control").unwrap(), "no-store");
    let html = resp.text().await.unwrap();
    let script = {
        let start = html.find("<script>").expect("the auto-submit script") + "<script>".len();
        &html[start..start + html[start..].find("</script>").unwrap()]
    };
    let hash = base64::engine::general_purpose::STANDARD.encode(sha2::Sha256::digest(script.as_bytes()));
    assert!(csp.contains(&format!("script-src 'sha256-{hash}'")), "{csp}");
    assert!(!csp.contains("unsafe-inline") && csp.contains("default-src 'none'"), "{csp}");
    assert_eq!(html.matches("<script").count(), 1, "{html}");
    let form = &html[html.find("<form id=\"saml-post\"").expect("the form")..];
    assert!(form.contains("<button type=\"submit\">"), "a button without script: {html}");
    let request = RequestForm {
        action: form_action(form),
        saml_request: form_field(form, "SAMLRequest").expect("SAMLRequest in the form"),
        relay_state: form_field(form, "RelayState"),
    };
    assert_eq!(request.action, env.saml_post_sso_url());
    request
}

impl SamlForm {
    /// The ID of the AuthnRequest the response answers (its InResponseTo).
    fn request_id(&self) -> String {
        let xml =
            String::from_utf8(base64::engine::general_purpose::STANDARD.decode(&self.saml_response).unwrap()).unwrap();
        let start = xml.find("InResponseTo=\"").unwrap() + "InResponseTo=\"".len();
        xml[start..start + xml[start..].find('"').unwrap()].to_string()
    }
}

async fn post_acs(browser: &reqwest::Client, form: &SamlForm) -> reqwest::Response {
    let mut fields = vec![("SAMLResponse", form.saml_response.clone())];
    if let Some(r) = &form.relay_state {
        fields.push(("RelayState", r.clone()));
    }
    browser.post(&form.action).form(&fields).send().await.unwrap()
}

async fn status(env: &Env, browser: &reqwest::Client, host: &str) -> (StatusCode, serde_json::Value) {
    let resp = browser.get(env.url(host, "/anmelden/status")).send().await.unwrap();
    let code = resp.status();
    (code, resp.json().await.unwrap())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn saml_login_against_samlify_idp() {
    let env = Env::shared();
    let browser = env.browser();

    // Not logged in yet.
    assert_eq!(status(env, &browser, SAML_HOST).await.0, StatusCode::UNAUTHORIZED);

    let form = saml_form(env, &browser, "").await;
    assert_eq!(form.action, env.url(SAML_HOST, "/anmelden/saml/acs"));
    assert_eq!(form.relay_state.as_deref(), Some("/konto"));
    let resp = post_acs(&browser, &form).await;
    assert_eq!(resp.status(), StatusCode::SEE_OTHER, "{}", resp.text().await.unwrap());
    assert_eq!(location(&resp), "/konto");
    let cookies: Vec<&str> = resp.headers().get_all("set-cookie").iter().map(|v| v.to_str().unwrap()).collect();
    let cookie = cookies.iter().find(|c| c.starts_with("portal_session=")).expect("session cookie");
    assert!(cookie.contains("HttpOnly") && cookie.contains("SameSite=Lax") && cookie.contains("Path=/"), "{cookie}");
    assert!(cookies.iter().any(|c| c.starts_with("portal_login=;") && c.contains("Max-Age=0")), "{cookies:?}");

    let (code, body) = status(env, &browser, SAML_HOST).await;
    assert_eq!(code, StatusCode::OK, "{body}");
    assert_eq!(body["name"], "Erika Mustermann");
    assert_eq!(body["trustLevel"], "substantiell");
    assert_eq!(body["protocol"], "saml");
    assert_eq!(body["tenant"], "detmold");
    // Of the citizen's attributes only the name is kept: no birthdate, address or bPK2 in the session.
    let shown = body.to_string();
    assert!(!shown.contains("1964-08-12") && !shown.contains("bpk2-test") && !shown.contains("51147"), "{shown}");

    // The session belongs to this tenant only.
    assert_eq!(status(env, &browser, OIDC_HOST).await.0, StatusCode::UNAUTHORIZED);

    // A response is accepted once.
    let replay = post_acs(&env.browser(), &form).await;
    assert_eq!(replay.status(), StatusCode::BAD_REQUEST);

    // GET /abmelden changes nothing: it shows the logout button.
    let resp = browser.get(env.url(SAML_HOST, "/abmelden")).send().await.unwrap();
    assert_eq!(resp.status(), StatusCode::OK);
    let page = resp.text().await.unwrap();
    assert!(page.contains("<form method=\"post\" action=\"/abmelden\">"), "{page}");
    assert_eq!(status(env, &browser, SAML_HOST).await.0, StatusCode::OK);

    // Logout (POST from the tenant's own page) ends the session.
    let resp = logout(env, &browser, SAML_HOST).await;
    assert_eq!(resp.status(), StatusCode::SEE_OTHER);
    assert!(resp.headers().get("set-cookie").unwrap().to_str().unwrap().contains("Max-Age=0"));
    assert_eq!(status(env, &browser, SAML_HOST).await.0, StatusCode::UNAUTHORIZED);
}

/// POST /abmelden as a page of the tenant would send it (with its Origin).
async fn logout(env: &Env, browser: &reqwest::Client, host: &str) -> reqwest::Response {
    browser
        .post(env.url(host, "/abmelden"))
        .header("origin", format!("http://{host}:{}", env.port))
        .header("sec-fetch-site", "same-origin")
        .send()
        .await
        .unwrap()
}

/// Login CSRF: an attacker's own valid response, posted into a victim's browser, logs nobody
/// in — without our login cookie, and with the cookie of the victim's own login in progress.
/// The login it answers stays usable by the browser that started it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn saml_responses_are_bound_to_the_browser_that_started_the_login() {
    let env = Env::shared();
    let attacker = env.browser();
    let form = saml_form(env, &attacker, "").await;

    let victim = env.browser();
    let resp = post_acs(&victim, &form).await;
    assert_eq!(resp.status(), StatusCode::BAD_REQUEST, "no login cookie");
    assert_eq!(status(env, &victim, SAML_HOST).await.0, StatusCode::UNAUTHORIZED);

    let _own = saml_form(env, &victim, "").await;
    let resp = post_acs(&victim, &form).await;
    assert_eq!(resp.status(), StatusCode::FORBIDDEN, "answers another browser's request");
    assert_eq!(status(env, &victim, SAML_HOST).await.0, StatusCode::UNAUTHORIZED);

    let resp = post_acs(&attacker, &form).await;
    assert_eq!(resp.status(), StatusCode::SEE_OTHER, "{}", resp.text().await.unwrap());
    assert_eq!(status(env, &attacker, SAML_HOST).await.0, StatusCode::OK);
}

/// A post that names the login in progress but fails verification (here: the signature
/// removed) does not use that login up: the real response is accepted afterwards.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unverified_response_does_not_consume_the_login_in_progress() {
    let env = Env::shared();
    let browser = env.browser();
    let form = saml_form(env, &browser, "").await;
    let xml =
        String::from_utf8(base64::engine::general_purpose::STANDARD.decode(&form.saml_response).unwrap()).unwrap();
    assert!(xml.contains("<ds:Signature"), "{xml}");
    let mut unsigned = xml.clone();
    while let Some(start) = unsigned.find("<ds:Signature") {
        let end = unsigned.find("</ds:Signature>").unwrap() + "</ds:Signature>".len();
        unsigned.replace_range(start..end, "");
    }
    assert!(unsigned.contains("InResponseTo=\""));
    let forged = SamlForm {
        saml_response: base64::engine::general_purpose::STANDARD.encode(unsigned),
        action: form.action.clone(),
        relay_state: form.relay_state.clone(),
    };
    let resp = post_acs(&browser, &forged).await;
    assert_eq!(resp.status(), StatusCode::FORBIDDEN);
    let resp = post_acs(&browser, &form).await;
    assert_eq!(resp.status(), StatusCode::SEE_OTHER, "{}", resp.text().await.unwrap());
    assert_eq!(status(env, &browser, SAML_HOST).await.0, StatusCode::OK);
}

/// The ACS of a tenant that logs in with OIDC answers 404 without looking at the body.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_acs_of_an_oidc_tenant_parses_nothing() {
    let env = Env::shared();
    let resp = env
        .browser()
        .post(env.url(OIDC_HOST, "/anmelden/saml/acs"))
        .form(&[("SAMLResponse", "bm90IHhtbA==")])
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::NOT_FOUND);
}

/// The place to return to after login is checked at /anmelden: `/%09/evil.example/` (which
/// browsers read as `//evil.example/`) ends on the home page, also through the whole login.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redirect_targets_with_control_characters_end_on_the_home_page() {
    let env = Env::shared();
    for next in ["/%09/evil.example/", "/%0a/evil.example/", "/%5cevil.example", "/%2F%2Fevil.example"] {
        let browser = env.browser();
        let form = saml_form_from(env, &browser, &format!("/anmelden?next={next}"), "").await;
        assert_eq!(form.relay_state.as_deref(), Some("/"), "{next}");
        // Whatever RelayState comes back, the target checked at the start is used.
        let form = SamlForm { relay_state: Some("/\t/evil.example/".into()), ..form };
        let resp = post_acs(&browser, &form).await;
        assert_eq!(resp.status(), StatusCode::SEE_OTHER, "{next}");
        assert_eq!(location(&resp), "/", "{next}");
    }
}

/// A RelayState is at most 80 bytes (SAML bindings §3.5.3): a longer return path is not sent along, and the login
/// still ends there, because the path checked at the start is kept with the login in progress.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_return_path_longer_than_a_relay_state_is_kept_but_not_sent() {
    let env = Env::shared();
    let browser = env.browser();
    let short = "/leistungen/personalausweis";
    let request = saml_request_form(env, &browser, &format!("/anmelden?next={short}")).await;
    assert_eq!(request.relay_state.as_deref(), Some(short));
    let long = format!("/suche?q={}", "a".repeat(100));
    let form = saml_form_from(env, &browser, &format!("/anmelden?next={long}"), "").await;
    assert_eq!(form.relay_state, None);
    let resp = post_acs(&browser, &form).await;
    assert_eq!(resp.status(), StatusCode::SEE_OTHER);
    assert_eq!(location(&resp), long);
}

/// Logout only by POST, and only from the tenant's own pages: cross-site posts (by Origin or
/// Sec-Fetch-Site) and posts without either header or the form's token change nothing.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn logout_refuses_cross_site_requests() {
    let env = Env::shared();
    let browser = env.browser();
    let form = saml_form(env, &browser, "").await;
    assert_eq!(post_acs(&browser, &form).await.status(), StatusCode::SEE_OTHER);
    let url = env.url(SAML_HOST, "/abmelden");
    let attempts = [
        vec![("origin", "https://evil.example".to_string())],
        vec![("origin", "null".to_string())],
        vec![("origin", format!("http://{OIDC_HOST}:{}", env.port))],
        vec![("sec-fetch-site", "cross-site".to_string())],
        vec![("sec-fetch-site", "same-site".to_string()), ("origin", format!("http://{SAML_HOST}:{}", env.port))],
        vec![],
    ];
    for headers in attempts {
        let mut req = browser.post(&url);
        for (k, v) in &headers {
            req = req.header(*k, v);
        }
        let resp = req.send().await.unwrap();
        assert_eq!(resp.status(), StatusCode::FORBIDDEN, "{headers:?}");
        assert_eq!(status(env, &browser, SAML_HOST).await.0, StatusCode::OK, "still logged in after {headers:?}");
    }
    // Without Origin and Sec-Fetch-Site (older browsers), the token of the logout page suffices.
    let page = browser.get(&url).send().await.unwrap().text().await.unwrap();
    let token = form_field(&page, "csrf").expect("token in the logout form");
    let resp = browser.post(&url).form(&[("csrf", token)]).send().await.unwrap();
    assert_eq!(resp.status(), StatusCode::SEE_OTHER);
    assert_eq!(status(env, &browser, SAML_HOST).await.0, StatusCode::UNAUTHORIZED);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn saml_rejects_tampered_misaddressed_expired_and_weak_responses() {
    let env = Env::shared();

    // Only local paths are kept as the place to return to (no open redirect).
    let browser = env.browser();
    let request = saml_request_form(env, &browser, "/anmelden?next=//evil.example/x").await;
    assert_eq!(request.relay_state.as_deref(), Some("/"));

    // Tampered: the signed assertion's content changed after signing.
    let browser = env.browser();
    let mut form = saml_form(env, &browser, "").await;
    let xml =
        String::from_utf8(base64::engine::general_purpose::STANDARD.decode(&form.saml_response).unwrap()).unwrap();
    assert!(xml.contains(">Erika<"));
    form.saml_response = base64::engine::general_purpose::STANDARD.encode(xml.replace(">Erika<", ">Eve<"));
    let resp = post_acs(&browser, &form).await;
    assert_eq!(resp.status(), StatusCode::FORBIDDEN);
    assert_eq!(status(env, &browser, SAML_HOST).await.0, StatusCode::UNAUTHORIZED);

    // Signed, but for another SP.
    let browser = env.browser();
    let form = saml_form(env, &browser, "&audience=https%3A%2F%2Fservice.other.test%2Fsaml%2Fmetadata").await;
    let resp = post_acs(&browser, &form).await;
    assert_eq!(resp.status(), StatusCode::FORBIDDEN);
    assert_eq!(status(env, &browser, SAML_HOST).await.0, StatusCode::UNAUTHORIZED);

    // Signed, but expired.
    let browser = env.browser();
    let form = saml_form(env, &browser, "&expired=1").await;
    let resp = post_acs(&browser, &form).await;
    assert_eq!(resp.status(), StatusCode::FORBIDDEN);
    assert_eq!(status(env, &browser, SAML_HOST).await.0, StatusCode::UNAUTHORIZED);

    // Valid, but below the tenant's required trust level: a clear page, no session.
    let browser = env.browser();
    let form = saml_form(env, &browser, "&level=STORK-QAA-Level-1").await;
    let resp = post_acs(&browser, &form).await;
    assert_eq!(resp.status(), StatusCode::FORBIDDEN);
    assert!(resp.headers().get("set-cookie").is_none());
    let page = resp.text().await.unwrap();
    assert!(page.contains("Vertrauensniveau") && page.contains("substantiell"), "{page}");
    assert_eq!(status(env, &browser, SAML_HOST).await.0, StatusCode::UNAUTHORIZED);

    // Garbage and unsolicited responses.
    let resp = browser
        .post(env.url(SAML_HOST, "/anmelden/saml/acs"))
        .form(&[("SAMLResponse", "bm90IHhtbA==")])
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::BAD_REQUEST);
}

/// Follow the IdP's redirects until it sends the browser back to our callback.
async fn oidc_until_callback(env: &Env, browser: &reqwest::Client) -> String {
    let resp = browser.get(env.url(OIDC_HOST, "/anmelden?next=/antraege")).send().await.unwrap();
    assert_eq!(resp.status(), StatusCode::SEE_OTHER);
    let mut next = location(&resp);
    assert!(next.starts_with(&format!("http://127.0.0.1:{}/", env.oidc_idp_port)), "{next}");
    assert!(next.contains("code_challenge_method=S256") && next.contains("nonce=") && next.contains("state="));
    for _ in 0..10 {
        if next.starts_with(&env.url(OIDC_HOST, "/anmelden/oidc/callback")) {
            return next;
        }
        let url = if next.starts_with('/') { format!("http://127.0.0.1:{}{next}", env.oidc_idp_port) } else { next };
        let resp = browser.get(&url).send().await.unwrap();
        assert!(resp.status().is_redirection(), "{url}: {} {}", resp.status(), resp.text().await.unwrap());
        next = location(&resp);
    }
    panic!("the OIDC provider never redirected back to the callback");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn oidc_login_against_oidc_provider() {
    let env = Env::shared();
    let browser = env.browser();
    let callback = oidc_until_callback(env, &browser).await;
    assert!(callback.contains("code="), "{callback}");
    let resp = browser.get(&callback).send().await.unwrap();
    assert_eq!(resp.status(), StatusCode::SEE_OTHER, "{}", resp.text().await.unwrap());
    assert_eq!(location(&resp), "/antraege");

    let (code, body) = status(env, &browser, OIDC_HOST).await;
    assert_eq!(code, StatusCode::OK, "{body}");
    assert_eq!(body["name"], "Erika Mustermann");
    assert_eq!(body["trustLevel"], "substantiell");
    assert_eq!(body["protocol"], "oidc");

    // The code was used; the same callback again finds no login in progress.
    let resp = browser.get(&callback).send().await.unwrap();
    assert_eq!(resp.status(), StatusCode::BAD_REQUEST);

    let resp = logout(env, &browser, OIDC_HOST).await;
    assert_eq!(resp.status(), StatusCode::SEE_OTHER);
    assert_eq!(status(env, &browser, OIDC_HOST).await.0, StatusCode::UNAUTHORIZED);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn oidc_rejects_state_mismatch_and_foreign_callbacks() {
    let env = Env::shared();

    // State changed on the way back.
    let browser = env.browser();
    let callback = oidc_until_callback(env, &browser).await;
    let mut url = url::Url::parse(&callback).unwrap();
    let pairs: Vec<(String, String)> = url
        .query_pairs()
        .map(|(k, v)| {
            let v = if k == "state" { format!("{v}x") } else { v.into_owned() };
            (k.into_owned(), v)
        })
        .collect();
    url.query_pairs_mut().clear().extend_pairs(pairs);
    let resp = browser.get(url.as_str()).send().await.unwrap();
    assert_eq!(resp.status(), StatusCode::BAD_REQUEST);
    assert_eq!(status(env, &browser, OIDC_HOST).await.0, StatusCode::UNAUTHORIZED);

    // A callback delivered to another browser (no login cookie) is refused.
    let browser = env.browser();
    let callback = oidc_until_callback(env, &browser).await;
    let stranger = env.browser();
    let resp = stranger.get(&callback).send().await.unwrap();
    assert_eq!(resp.status(), StatusCode::BAD_REQUEST);
    assert_eq!(status(env, &stranger, OIDC_HOST).await.0, StatusCode::UNAUTHORIZED);

    // Unknown hosts get nothing.
    let resp = reqwest::Client::new().get(format!("http://127.0.0.1:{}/anmelden", env.port)).send().await.unwrap();
    assert_eq!(resp.status(), StatusCode::NOT_FOUND);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn check_validates_both_real_identity_providers() {
    use portalctl::servicekonto::check::{check_all, Status};
    let env = Env::shared();
    let tenants: Vec<&Tenant> = env.tenants.iter().map(|t| t.as_ref()).collect();
    let now = time::OffsetDateTime::now_utc();
    let http = portalctl::servicekonto::http_client();
    let reports = check_all(&http, &tenants, time::Duration::days(30), now).await;
    assert_eq!(reports.len(), 2);
    let saml = &reports[0];
    assert_eq!((saml.tenant.as_str(), saml.status), ("detmold", Status::Ok), "{saml:?}");
    assert_eq!(saml.certificates.len(), 1);
    assert!((88..=90).contains(&saml.certificates[0].days_left), "{saml:?}");
    let oidc = &reports[1];
    assert_eq!((oidc.tenant.as_str(), oidc.status), ("espelkamp", Status::Ok), "{oidc:?}");
    assert_eq!(oidc.source, format!("http://127.0.0.1:{}", env.oidc_idp_port));

    // With a 100-day minimum the IdP's 90-day certificate warns.
    let reports = check_all(&http, &tenants[..1], time::Duration::days(100), now).await;
    assert_eq!(reports[0].status, Status::Warning);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn saml_login_with_encrypted_assertions() {
    let env = Env::shared();
    // AES-CBC (XML Encryption 1.0) is refused unless the tenant sets allowLegacyCbc (this one does not).
    let browser = env.browser();
    let form = saml_form(env, &browser, "&encrypt=cbc").await;
    let resp = post_acs(&browser, &form).await;
    assert_eq!(resp.status(), StatusCode::FORBIDDEN);
    assert_eq!(status(env, &browser, SAML_HOST).await.0, StatusCode::UNAUTHORIZED);

    for mode in ["gcm"] {
        let browser = env.browser();
        let form = saml_form(env, &browser, &format!("&encrypt={mode}")).await;
        let xml =
            String::from_utf8(base64::engine::general_purpose::STANDARD.decode(&form.saml_response).unwrap()).unwrap();
        assert!(xml.contains("EncryptedAssertion") && !xml.contains("Mustermann"), "{mode}: {xml}");
        let resp = post_acs(&browser, &form).await;
        assert_eq!(resp.status(), StatusCode::SEE_OTHER, "{mode}: {}", resp.text().await.unwrap());
        let (code, body) = status(env, &browser, SAML_HOST).await;
        assert_eq!(code, StatusCode::OK, "{mode}: {body}");
        assert_eq!(body["name"], "Erika Mustermann");

        // A changed ciphertext does not log anyone in.
        let browser = env.browser();
        let form = saml_form(env, &browser, &format!("&encrypt={mode}")).await;
        let xml =
            String::from_utf8(base64::engine::general_purpose::STANDARD.decode(&form.saml_response).unwrap()).unwrap();
        let start = xml.rfind("<xenc:CipherValue>").expect("xenc prefix") + "<xenc:CipherValue>".len() + 40;
        let flipped = if &xml[start..start + 1] == "A" { "B" } else { "A" };
        let tampered = format!("{}{flipped}{}", &xml[..start], &xml[start + 1..]);
        let form = SamlForm { saml_response: base64::engine::general_purpose::STANDARD.encode(tampered), ..form };
        let resp = post_acs(&browser, &form).await;
        assert_eq!(resp.status(), StatusCode::FORBIDDEN, "{mode}");
        assert_eq!(status(env, &browser, SAML_HOST).await.0, StatusCode::UNAUTHORIZED);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hostile_saml_documents_get_a_400_and_the_server_lives_on() {
    let env = Env::shared();
    // Answering a real login in progress, so that the document reaches the full validation:
    // 40,000 nested elements once aborted the whole process (stack overflow), a namespace bomb
    // of 127 KB took 9.4 s and 1.3 GiB.
    let hostile: [fn(&str) -> String; 2] =
        [|irt| samples::deep_nesting(40_000, irt), |irt| samples::namespace_bomb(2000, 2900, irt)];
    for make in hostile {
        let browser = env.browser();
        let mut form = saml_form(env, &browser, "").await;
        let irt = saml::peek_in_response_to(&form.saml_response).expect("InResponseTo");
        form.saml_response = base64::engine::general_purpose::STANDARD.encode(make(&irt));
        let resp = post_acs(&browser, &form).await;
        assert_eq!(resp.status(), StatusCode::BAD_REQUEST);
        assert_eq!(status(env, &browser, SAML_HOST).await.0, StatusCode::UNAUTHORIZED, "still serving");
    }
}

/// The file of rollout group `e2e` (one wave, `pilot`), for the tests that build tenants from text.
fn e2e_group_file() -> SourceFile {
    SourceFile {
        path: "tenants/e2e/group.yaml".into(),
        group_dir: "e2e".into(),
        stem: "group".into(),
        text: "apiVersion: portalctl.dev/v1alpha1\nkind: RolloutGroup\nmetadata:\n  name: e2e\nspec:\n  \
               displayName: \"E2E\"\n  waves:\n    - name: pilot\n"
            .into(),
    }
}

/// The file of a Stadt of group `e2e` with the given AGS and `servicekonto` section (indented YAML).
fn e2e_tenant_file(slug: &str, ags: &str, servicekonto: &str) -> SourceFile {
    SourceFile {
        path: format!("tenants/e2e/{slug}.yaml"),
        group_dir: "e2e".into(),
        stem: slug.into(),
        text: format!(
            "apiVersion: portalctl.dev/v1alpha1\nkind: Tenant\nmetadata:\n  name: {slug}\nspec:\n  displayName: \
             \"Stadt {slug}\"\n  ags: \"{ags}\"\n  kind: stadt\n  parent: \"{}\"\n  wave: pilot\n  hostnames:\n    - \
             service.{slug}.test\n  servicekonto:\n{servicekonto}",
            &ags[..5]
        ),
    }
}

#[test]
fn allow_legacy_cbc_is_an_opt_in_for_saml_bindings_only() {
    let secret = tempfile::NamedTempFile::new().unwrap();
    let (saml, oidc) = build_tenants(secret.path());
    assert!(!saml.servicekonto.unwrap().allow_legacy_cbc && !oidc.servicekonto.unwrap().allow_legacy_cbc);

    let group = e2e_group_file();
    let built = tenant::build(&[
        group,
        e2e_tenant_file("detmold", "05766020", "    provider: bundid\n    idpMetadataUrl: https://idp.example/metadata\n    allowLegacyCbc: true\n"),
        e2e_tenant_file(
            "espelkamp",
            "05770008",
            "    provider: oidc\n    issuer: https://oidc.example\n    clientId: x\n    credentials: { env: X }\n    allowLegacyCbc: true\n",
        ),
    ]);
    assert!(built.catalog.tenant("detmold").unwrap().servicekonto.as_ref().unwrap().allow_legacy_cbc);
    let codes = servicekonto_codes(&built.diagnostics);
    assert_eq!(codes, [("servicekonto-legacy-cbc", "espelkamp")], "{:#?}", built.diagnostics);
}

/// The AuthnRequest of a `provider: bundid` tenant follows BundID's profile, as the IdP (which
/// refuses anything else) recorded it: the akdb extension with the attributes by OID and the
/// display information, and the tenant's minimum level as `Comparison="minimum"`. The IdP
/// answers with those OIDs, and the portal's session holds the name and trust level.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bundid_profile_request_and_attributes_by_oid() {
    let env = Env::shared();
    let browser = env.browser();
    let form = saml_form(env, &browser, "").await;
    let seen = env.idp_request(&form.request_id()).await;
    assert_eq!(seen["issuer"], "https://service.detmold.test/saml/metadata/integration", "{seen}");
    assert_eq!(seen["binding"], "post", "BundID's documented endpoint is …/SAML2/POST/SSO");
    assert_eq!(seen["comparison"], "minimum");
    assert_eq!(seen["level"], "STORK-QAA-Level-3");
    assert_eq!(seen["organizationDisplayName"], "Stadt Detmold");
    assert_eq!(seen["onlineServiceId"], "e2e-online-service");
    let requested: Vec<(String, bool)> = seen["attributes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| (a["name"].as_str().unwrap().to_string(), a["required"].as_bool().unwrap()))
        .collect();
    let expected: Vec<(String, bool)> = [
        ("urn:oid:2.5.4.42", true),
        ("urn:oid:2.5.4.4", true),
        ("urn:oid:1.2.40.0.10.2.1.1.55", false),
        ("urn:oid:2.5.4.16", false),
        ("urn:oid:2.5.4.17", false),
        ("urn:oid:2.5.4.7", false),
        ("urn:oid:0.9.2342.19200300.100.1.3", false),
        ("urn:oid:1.3.6.1.4.1.25484.494450.3", true),
        ("urn:oid:1.2.40.0.10.2.1.1.261.94", true),
    ]
    .map(|(n, r)| (n.to_string(), r))
    .into();
    assert_eq!(requested, expected);

    // The response carries BundID's OIDs, and the ACS maps them.
    let xml =
        String::from_utf8(base64::engine::general_purpose::STANDARD.decode(&form.saml_response).unwrap()).unwrap();
    for oid in
        ["urn:oid:1.2.40.0.10.2.1.1.55", "urn:oid:1.3.6.1.4.1.25484.494450.3", "urn:oid:1.2.40.0.10.2.1.1.261.94"]
    {
        assert!(xml.contains(&format!("Name=\"{oid}\"")), "{oid} missing in {xml}");
    }
    let resp = post_acs(&browser, &form).await;
    assert_eq!(resp.status(), StatusCode::SEE_OTHER, "{}", resp.text().await.unwrap());
    let (code, body) = status(env, &browser, SAML_HOST).await;
    assert_eq!(code, StatusCode::OK);
    assert_eq!((body["name"].as_str(), body["trustLevel"].as_str()), (Some("Erika Mustermann"), Some("substantiell")));
}

/// A service that needs "hoch" asks for it at /anmelden: the request names STORK-QAA-Level-4, and
/// a login at "substantiell" is refused with a clear page even though the tenant's minimum is met.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_service_may_require_a_higher_trust_level_than_the_tenant() {
    let env = Env::shared();
    let browser = env.browser();
    let start = "/anmelden?next=/leistungen/personalausweis&trustLevel=hoch";
    let form = saml_form_from(env, &browser, start, "&level=STORK-QAA-Level-3").await;
    assert_eq!(env.idp_request(&form.request_id()).await["level"], "STORK-QAA-Level-4");
    let resp = post_acs(&browser, &form).await;
    assert_eq!(resp.status(), StatusCode::FORBIDDEN);
    let page = resp.text().await.unwrap();
    assert!(page.contains("Vertrauensniveau nicht ausreichend") && page.contains("„hoch“"), "{page}");
    assert_eq!(status(env, &browser, SAML_HOST).await.0, StatusCode::UNAUTHORIZED);

    // With the Online-Ausweis (level 4) the same login succeeds.
    let form = saml_form_from(env, &browser, start, "&level=STORK-QAA-Level-4").await;
    let resp = post_acs(&browser, &form).await;
    assert_eq!(resp.status(), StatusCode::SEE_OTHER);
    assert_eq!(location(&resp), "/leistungen/personalausweis");
    assert_eq!(status(env, &browser, SAML_HOST).await.1["trustLevel"], "hoch");

    // Asking for less than the tenant's minimum changes nothing.
    let browser = env.browser();
    let form = saml_form_from(env, &browser, "/anmelden?trustLevel=basisregistrierung", "").await;
    assert_eq!(env.idp_request(&form.request_id()).await["level"], "STORK-QAA-Level-3");
}

/// The BundID tenant's AuthnRequest goes by HTTP-POST with an enveloped signature: the IdP
/// (samlify) verifies it with the certificate of our SP metadata and refuses it changed after
/// signing, without its signature, or signed with another key.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_idp_refuses_changed_and_unsigned_post_requests() {
    let env = Env::shared();
    let browser = env.browser();
    let request = saml_request_form(env, &browser, "/anmelden?next=/konto").await;
    let xml = request.xml();
    let sig_start = xml.find("<ds:Signature").expect("an enveloped signature");
    let sig_end = xml.find("</ds:Signature>").unwrap() + "</ds:Signature>".len();
    assert!(xml[..sig_start].ends_with("</saml:Issuer>"), "the signature follows the Issuer: {xml}");
    let id = {
        let start = xml.find(" ID=\"").unwrap() + " ID=\"".len();
        xml[start..start + xml[start..].find('"').unwrap()].to_string()
    };
    let unsigned = format!("{}{}", &xml[..sig_start], &xml[sig_end..]);
    let other_key = SpKeys::read(&keys::KeyPaths {
        key: env.secrets.path().join("idp.key.pem"),
        cert: env.secrets.path().join("idp.crt.pem"),
    })
    .unwrap();
    let foreign = portalctl::servicekonto::xmldsig::sign_enveloped(
        &format!("{}<!--SIG-->{}", &xml[..sig_start], &xml[sig_end..]),
        &id,
        "<!--SIG-->",
        &other_key.private_key,
    )
    .unwrap();
    let forgeries = [
        ("changed", xml.replace("Stadt Detmold", "Stadt Irgendwo")),
        ("level lowered", xml.replace("STORK-QAA-Level-3", "STORK-QAA-Level-1")),
        ("unsigned", unsigned),
        ("signed with another key", foreign),
    ];
    for (what, forged) in forgeries {
        assert_ne!(forged, xml, "{what}");
        let form = RequestForm {
            action: request.action.clone(),
            saml_request: base64::engine::general_purpose::STANDARD.encode(forged),
            relay_state: request.relay_state.clone(),
        };
        let resp = form.post_to_idp("").await;
        assert_eq!(resp.status(), StatusCode::BAD_REQUEST, "{what}");
        let text = resp.text().await.unwrap();
        assert!(text.contains("AuthnRequest rejected") && text.to_lowercase().contains("signature"), "{what}: {text}");
    }
    // The request as we signed it is accepted, by the POST binding.
    let resp = request.post_to_idp("").await;
    assert_eq!(resp.status(), StatusCode::OK, "{}", resp.text().await.unwrap());
    assert_eq!(env.idp_request(&id).await["binding"], "post");
}

/// The IdP behaves like BundID: a correctly signed AuthnRequest without the akdb extension is refused.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_bundid_idp_refuses_a_request_without_the_extension() {
    let env = Env::shared();
    let tenant = &env.tenants[0];
    let keys =
        SpKeys::read(&keys::KeyPaths::current(env.secrets.path(), tenant, tenant::Environment::Integration)).unwrap();
    let binding = tenant.servicekonto.as_ref().unwrap();
    let sso = env.saml_sso_url("");
    let post_sso = env.saml_post_sso_url();
    let acs = env.url(SAML_HOST, "/anmelden/saml/acs");
    let params = |id, extension| saml::AuthnRequestParams {
        id,
        entity_id: binding.entity_id.as_deref().unwrap(),
        acs_url: &acs,
        destination: if id.starts_with("_post") { &post_sso } else { &sso },
        min_level: binding.trust_level,
        extension,
        relay_state: Some("/"),
        now: time::OffsetDateTime::now_utc(),
    };
    let plain = saml::redirect_url(&params("_without-extension", None), &keys).unwrap();
    let resp = reqwest::get(&plain.url).await.unwrap();
    assert_eq!(resp.status(), StatusCode::BAD_REQUEST);
    let text = resp.text().await.unwrap();
    assert!(text.contains("BundID profile") && text.contains("Extensions"), "{text}");
    assert!(env.idp_request("_without-extension").await["refused"].as_str().unwrap().contains("Extensions"));

    // The same request with the extension is accepted.
    let ext = portalctl::servicekonto::bundid::RequestExtension::of(binding, &tenant.display_name);
    let with = saml::redirect_url(&params("_with-extension", ext.clone()), &keys).unwrap();
    let resp = reqwest::get(&with.url).await.unwrap();
    assert_eq!(resp.status(), StatusCode::OK, "{}", resp.text().await.unwrap());

    // The same by HTTP-POST: the signature verifies, the profile is checked all the same.
    let post = |form: saml::PostForm| RequestForm {
        action: form.action,
        saml_request: form.saml_request,
        relay_state: form.relay_state,
    };
    let plain = post(saml::post_form(&params("_post-without-extension", None), &keys).unwrap());
    let resp = plain.post_to_idp("").await;
    assert_eq!(resp.status(), StatusCode::BAD_REQUEST);
    assert!(resp.text().await.unwrap().contains("BundID profile"));
    let seen = env.idp_request("_post-without-extension").await;
    assert_eq!(seen["binding"], "post");
    assert!(seen["refused"].as_str().unwrap().contains("Extensions"), "{seen}");
    let with = post(saml::post_form(&params("_post-with-extension", ext), &keys).unwrap());
    let resp = with.post_to_idp("").await;
    assert_eq!(resp.status(), StatusCode::OK, "{}", resp.text().await.unwrap());
}

#[test]
fn the_bundid_profile_is_validated_per_environment() {
    let group = e2e_group_file();
    let built = tenant::build(&[
        group,
        // Production metadata for an integration binding.
        e2e_tenant_file("detmold", "05766020", "    provider: bundid\n    environment: integration\n    idpMetadataUrl: https://id.bund.de/idp/shibboleth\n"),
        // The former name `live` still reads as production; the tenant's own attribute list.
        e2e_tenant_file(
            "lemgo",
            "05766044",
            "    provider: bundid\n    environment: live\n    idpMetadataUrl: https://id.bund.de/idp/shibboleth\n    requestedAttributes:\n      - { name: bpk2, required: true }\n      - { name: mail }\n",
        ),
        // BundID fields on another provider, and an attribute requested twice.
        e2e_tenant_file(
            "espelkamp",
            "05770008",
            "    provider: saml\n    idpMetadataUrl: https://idp.example/metadata\n    onlineServiceId: x\n",
        ),
        e2e_tenant_file(
            "minden",
            "05770024",
            "    provider: bundid\n    requestedAttributes: [{ name: mail }, { name: mail, required: true }]\n",
        ),
    ]);
    let codes = servicekonto_codes(&built.diagnostics);
    assert_eq!(
        codes,
        [
            ("servicekonto-environment", "detmold"),
            ("servicekonto-bundid", "espelkamp"),
            ("servicekonto-bundid", "minden"),
        ],
        "{:#?}",
        built.diagnostics
    );
    let lemgo = built.catalog.tenants.iter().find(|t| t.slug == "lemgo").unwrap().servicekonto.clone().unwrap();
    assert_eq!(lemgo.environment, tenant::Environment::Production);
    assert_eq!(lemgo.entity_id.as_deref(), Some("https://service.lemgo.test/saml/metadata"));
    let names: Vec<(&str, bool)> = lemgo.requested_attributes.iter().map(|a| (a.name.as_str(), a.required)).collect();
    assert_eq!(names, [("bpk2", true), ("mail", false)]);
}

/// The diagnostics of a build as (code, tenant), leaving out the legal pages' warnings that every
/// fixture without `spec.legal` gets (they are tested in tests/errors.rs).
fn servicekonto_codes(diagnostics: &[portalctl::diagnostics::Diagnostic]) -> Vec<(&str, &str)> {
    diagnostics
        .iter()
        .filter(|d| !d.code.starts_with("legal-"))
        .map(|d| (d.code, d.tenant.as_deref().unwrap_or("")))
        .collect()
}
