//! The login routes the portal server mounts: `/anmelden` (start), `/anmelden/oidc/callback`,
//! `/anmelden/saml/acs` (POST), `/abmelden`, `/anmelden/status`.
//!
//! The tenant comes from the Host header through [`TenantLookup`]; everything else from
//! [`ServicekontoState`] (via `FromRef`), so the routes fit into any router state.

use super::keys::{KeyPaths, SpKeys};
use super::metadata::{self, IdpMetadata, ACS_PATH, OIDC_CALLBACK_PATH};
use super::oidc::{self, Discovery};
use super::saml;
use super::session::{Pending, Session, SessionStore, PENDING_TTL, SESSION_TTL};
use super::trust;
use super::{Error, Result};
use crate::tenant::{Binding, Protocol, SecretRef, Tenant, TrustLevel};
use axum::extract::{FromRef, Query, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Form, Json, Router};
use jsonwebtoken::jwk::JwkSet;
use serde::Deserialize;
use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Instant;
use time::OffsetDateTime;

/// Name of the session cookie.
pub const SESSION_COOKIE: &str = "portal_session";
/// Name of the cookie that binds an OIDC login in progress to the browser.
pub const LOGIN_COOKIE: &str = "portal_login";
/// How long fetched IdP metadata, discovery documents and JWKS are reused.
pub const IDP_CACHE_TTL: std::time::Duration = std::time::Duration::from_secs(600);
/// Clock skew tolerated in SAML time checks.
pub const CLOCK_SKEW: time::Duration = time::Duration::seconds(90);

/// Resolves the tenant of a request from its Host header. The portal's registry implements it.
pub trait TenantLookup: Send + Sync {
    /// The tenant serving `host` (the raw Host header value, possibly with a port), if any.
    fn tenant_for_host(&self, host: &str) -> Option<Arc<Tenant>>;
}

/// The current time (replaceable in tests).
pub trait Clock: Send + Sync {
    fn now(&self) -> OffsetDateTime;
}

/// The system clock.
#[derive(Debug, Clone, Copy, Default)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> OffsetDateTime {
        OffsetDateTime::now_utc()
    }
}

#[derive(Default)]
struct Caches {
    saml: Mutex<HashMap<String, (Arc<IdpMetadata>, Instant)>>,
    oidc: Mutex<HashMap<String, (Arc<Discovery>, Instant)>>,
    jwks: Mutex<HashMap<String, (Arc<JwkSet>, Instant)>>,
}

fn cached<T>(map: &Mutex<HashMap<String, (Arc<T>, Instant)>>, key: &str) -> Option<Arc<T>> {
    let m = map.lock().unwrap_or_else(|p| p.into_inner());
    m.get(key).filter(|(_, at)| at.elapsed() < IDP_CACHE_TTL).map(|(v, _)| v.clone())
}

fn store<T>(map: &Mutex<HashMap<String, (Arc<T>, Instant)>>, key: &str, v: Arc<T>) {
    map.lock().unwrap_or_else(|p| p.into_inner()).insert(key.to_string(), (v, Instant::now()));
}

/// What the login handlers need. Cheap to clone; put it into the server state and provide
/// `impl FromRef<AppState> for ServicekontoState`.
#[derive(Clone)]
pub struct ServicekontoState {
    /// Where SP keys (`<group>/<tenant>.saml-<env>.key.pem`) and OIDC client secrets live.
    pub secrets_dir: PathBuf,
    pub sessions: SessionStore,
    pub http: reqwest::Client,
    pub clock: Arc<dyn Clock>,
    pub tenants: Arc<dyn TenantLookup>,
    /// Set the `Secure` flag on cookies. Off only for plain-http tests on localhost.
    pub secure_cookies: bool,
    /// Scheme of the tenant's public URL (`https`; `http` only in tests).
    pub public_scheme: &'static str,
    /// Port of the tenant's public URL when not the scheme's default (tests).
    pub public_port: Option<u16>,
    caches: Arc<Caches>,
}

impl std::fmt::Debug for ServicekontoState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ServicekontoState")
            .field("secrets_dir", &self.secrets_dir)
            .field("secure_cookies", &self.secure_cookies)
            .finish_non_exhaustive()
    }
}

impl ServicekontoState {
    /// Production settings: https URLs on the tenant's canonical hostname, secure cookies.
    pub fn new(secrets_dir: PathBuf, tenants: Arc<dyn TenantLookup>) -> ServicekontoState {
        ServicekontoState {
            secrets_dir,
            sessions: SessionStore::new(),
            http: super::http_client(),
            clock: Arc::new(SystemClock),
            tenants,
            secure_cookies: true,
            public_scheme: "https",
            public_port: None,
            caches: Arc::new(Caches::default()),
        }
    }

    /// Plain http on `port` of the tenant's hostname without `Secure` cookies: local tests only.
    pub fn insecure_http_for_tests(mut self, port: u16) -> ServicekontoState {
        self.secure_cookies = false;
        self.public_scheme = "http";
        self.public_port = Some(port);
        self
    }

    /// Replace the clock.
    pub fn with_clock(mut self, clock: Arc<dyn Clock>) -> ServicekontoState {
        self.clock = clock;
        self
    }

    /// The tenant's public base URL, e.g. `https://service.detmold.de`.
    pub fn base_url(&self, tenant: &Tenant) -> String {
        match self.public_port {
            Some(p) => format!("{}://{}:{p}", self.public_scheme, tenant.primary_hostname()),
            None => format!("{}://{}", self.public_scheme, tenant.primary_hostname()),
        }
    }

    /// SAML IdP metadata of a binding (cached for [`IDP_CACHE_TTL`]).
    pub async fn idp_metadata(&self, url: &str) -> Result<Arc<IdpMetadata>> {
        if let Some(m) = cached(&self.caches.saml, url) {
            return Ok(m);
        }
        let text = super::http_get_text(&self.http, url).await?;
        let md = Arc::new(metadata::parse_idp_metadata(&text)?);
        store(&self.caches.saml, url, md.clone());
        Ok(md)
    }

    async fn discovery(&self, issuer: &str) -> Result<Arc<Discovery>> {
        if let Some(d) = cached(&self.caches.oidc, issuer) {
            return Ok(d);
        }
        let d = Arc::new(oidc::discover(&self.http, issuer).await?);
        store(&self.caches.oidc, issuer, d.clone());
        Ok(d)
    }

    async fn jwks(&self, uri: &str, refresh: bool) -> Result<Arc<JwkSet>> {
        if !refresh {
            if let Some(j) = cached(&self.caches.jwks, uri) {
                return Ok(j);
            }
        }
        let j = Arc::new(oidc::fetch_jwks(&self.http, uri).await?);
        store(&self.caches.jwks, uri, j.clone());
        Ok(j)
    }

    fn sp_keys(&self, tenant: &Tenant, binding: &Binding) -> Result<SpKeys> {
        SpKeys::read(&KeyPaths::current(&self.secrets_dir, tenant, binding.environment))
    }

    /// The OIDC client secret: from the referenced environment variable or file, else from
    /// `<secrets>/<group>/<tenant>.oidc-client-secret` (where a mounted Secret or local mode puts it).
    fn client_secret(&self, tenant: &Tenant, binding: &Binding) -> Result<String> {
        let err = |reason: String| Error::ClientSecret { tenant: tenant.slug.clone(), reason };
        let read = |path: PathBuf| {
            std::fs::read_to_string(&path)
                .map(|s| s.trim().to_string())
                .map_err(|e| err(format!("cannot read {}: {e}", path.display())))
        };
        match &binding.credentials {
            Some(SecretRef { env: Some(var), .. }) => {
                std::env::var(var).map_err(|_| err(format!("environment variable {var} is not set")))
            }
            Some(SecretRef { file: Some(path), .. }) => read(PathBuf::from(path)),
            _ => read(self.secrets_dir.join(&tenant.group).join(format!("{}.oidc-client-secret", tenant.slug))),
        }
    }
}

/// The login routes, for any router state that can provide a [`ServicekontoState`].
pub fn routes<S>() -> Router<S>
where
    S: Clone + Send + Sync + 'static,
    ServicekontoState: FromRef<S>,
{
    Router::new()
        .route("/anmelden", get(start))
        .route(OIDC_CALLBACK_PATH, get(oidc_callback))
        .route(ACS_PATH, post(saml_acs))
        .route("/anmelden/status", get(status))
        .route("/abmelden", get(logout).post(logout))
}

/// A failed login step, shown as a short German page; details go to the log only.
#[derive(Debug)]
enum LoginError {
    UnknownHost,
    NoBinding,
    BadRequest(String),
    Rejected(String),
    TrustTooLow {
        have: TrustLevel,
        need: TrustLevel,
    },
    Unavailable(String),
    /// The server is at its bound for this kind of work (503, retry later).
    Busy(String),
    Internal(String),
}

impl IntoResponse for LoginError {
    fn into_response(self) -> Response {
        let (status, title, text) = match &self {
            LoginError::UnknownHost => {
                (StatusCode::NOT_FOUND, "Nicht gefunden", "Diese Adresse ist hier nicht bekannt.".to_string())
            }
            LoginError::NoBinding => (
                StatusCode::NOT_FOUND,
                "Anmeldung nicht verfügbar",
                "Für dieses Portal ist keine Anmeldung mit einem Servicekonto eingerichtet.".to_string(),
            ),
            LoginError::BadRequest(why) => {
                tracing::warn!(reason = %why, "login request rejected");
                (
                    StatusCode::BAD_REQUEST,
                    "Anmeldung fehlgeschlagen",
                    "Die Anmeldung konnte nicht zugeordnet werden. Bitte starten Sie die Anmeldung erneut.".to_string(),
                )
            }
            LoginError::Rejected(why) => {
                tracing::warn!(reason = %why, "identity provider response rejected");
                (
                    StatusCode::FORBIDDEN,
                    "Anmeldung fehlgeschlagen",
                    "Die Antwort des Servicekontos konnte nicht bestätigt werden. Bitte versuchen Sie es erneut."
                        .to_string(),
                )
            }
            LoginError::TrustTooLow { have, need } => (
                StatusCode::FORBIDDEN,
                "Vertrauensniveau nicht ausreichend",
                format!(
                    "Ihre Anmeldung hat das Vertrauensniveau „{}“. Für dieses Portal ist mindestens „{}“ nötig, \
                     zum Beispiel mit der Online-Ausweisfunktion. Sie wurden nicht angemeldet.",
                    trust::name(*have),
                    trust::name(*need)
                ),
            ),
            LoginError::Unavailable(why) => {
                tracing::error!(reason = %why, "identity provider unavailable");
                (
                    StatusCode::BAD_GATEWAY,
                    "Servicekonto nicht erreichbar",
                    "Das Servicekonto ist gerade nicht erreichbar. Bitte versuchen Sie es später erneut.".to_string(),
                )
            }
            LoginError::Busy(why) => {
                tracing::warn!(reason = %why, "login refused: server busy");
                (
                    StatusCode::SERVICE_UNAVAILABLE,
                    "Anmeldung ausgelastet",
                    "Gerade melden sich sehr viele Menschen an. Bitte versuchen Sie es in einigen Sekunden erneut."
                        .to_string(),
                )
            }
            LoginError::Internal(why) => {
                tracing::error!(reason = %why, "login failed");
                (
                    StatusCode::INTERNAL_SERVER_ERROR,
                    "Fehler",
                    "Bei der Anmeldung ist ein Fehler aufgetreten.".to_string(),
                )
            }
        };
        let body = format!(
            "<!DOCTYPE html>\n<html lang=\"de\"><head><meta charset=\"utf-8\"><meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\
             <title>{title}</title></head><body><main><h1>{title}</h1><p>{}</p><p><a href=\"/\">Zur Startseite</a></p></main></body></html>\n",
            super::xml::escape(&text)
        );
        let mut resp =
            (status, [(header::CONTENT_TYPE, "text/html; charset=utf-8"), (header::CACHE_CONTROL, "no-store")], body)
                .into_response();
        if matches!(self, LoginError::Busy(_)) {
            resp.headers_mut().insert(header::RETRY_AFTER, HeaderValue::from_static("5"));
        }
        resp
    }
}

fn internal(e: Error) -> LoginError {
    match e {
        Error::Http { .. } | Error::InsecureUrl { .. } | Error::Discovery { .. } | Error::Metadata(_) => {
            LoginError::Unavailable(e.to_string())
        }
        other => LoginError::Internal(other.to_string()),
    }
}

fn host_of(headers: &HeaderMap) -> Option<&str> {
    headers.get(header::HOST).and_then(|h| h.to_str().ok())
}

fn tenant_of(sk: &ServicekontoState, headers: &HeaderMap) -> Result<Arc<Tenant>, LoginError> {
    host_of(headers).and_then(|h| sk.tenants.tenant_for_host(h)).ok_or(LoginError::UnknownHost)
}

fn cookie<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|kv| kv.trim().split_once('='))
        .find(|(k, _)| *k == name)
        .map(|(_, v)| v)
}

fn set_cookie(sk: &ServicekontoState, name: &str, value: &str, path: &str, max_age: i64) -> HeaderValue {
    let secure = if sk.secure_cookies { "; Secure" } else { "" };
    HeaderValue::from_str(&format!("{name}={value}; Path={path}; Max-Age={max_age}; HttpOnly; SameSite=Lax{secure}"))
        .expect("cookie values are URL-safe tokens")
}

fn redirect(location: &str) -> Response {
    (StatusCode::SEE_OTHER, [(header::LOCATION, location), (header::CACHE_CONTROL, "no-store")]).into_response()
}

/// A local path to return to after login: must start with one `/` (no open redirect).
fn safe_next(next: Option<&str>) -> String {
    match next {
        Some(n) if n.starts_with('/') && !n.starts_with("//") && !n.contains('\\') && n.len() < 512 => n.to_string(),
        _ => "/".to_string(),
    }
}

#[derive(Debug, Deserialize)]
struct StartQuery {
    next: Option<String>,
}

async fn start(
    State(sk): State<ServicekontoState>,
    headers: HeaderMap,
    Query(q): Query<StartQuery>,
) -> Result<Response, LoginError> {
    let tenant = tenant_of(&sk, &headers)?;
    let binding = tenant.servicekonto.as_ref().ok_or(LoginError::NoBinding)?;
    let now = sk.clock.now();
    let base = sk.base_url(&tenant);
    let next = safe_next(q.next.as_deref());
    match binding.protocol {
        Protocol::Saml => {
            let url = binding.idp_metadata_url.as_deref().ok_or(LoginError::NoBinding)?;
            let entity_id = binding.entity_id.as_deref().ok_or(LoginError::NoBinding)?;
            let idp = sk.idp_metadata(url).await.map_err(internal)?;
            let keys = sk.sp_keys(&tenant, binding).map_err(internal)?;
            let acs_url = format!("{base}{ACS_PATH}");
            let id = format!("_{}", hex(&rand::random::<[u8; 20]>()));
            let req = saml::redirect_url(
                &saml::AuthnRequestParams {
                    id: &id,
                    entity_id,
                    acs_url: &acs_url,
                    destination: &idp.sso_redirect,
                    min_level: binding.trust_level,
                    relay_state: Some(&next),
                    now,
                },
                &keys,
            )
            .map_err(internal)?;
            sk.sessions.put_pending(
                req.id.clone(),
                Pending::Saml { tenant: tenant.slug.clone(), request_id: req.id.clone(), acs_url },
                now,
            );
            Ok(redirect(&req.url))
        }
        Protocol::Oidc => {
            let issuer = binding.issuer.as_deref().ok_or(LoginError::NoBinding)?;
            let client_id = binding.client_id.as_deref().ok_or(LoginError::NoBinding)?;
            let d = sk.discovery(issuer).await.map_err(internal)?;
            let state = oidc::random_token();
            let nonce = oidc::random_token();
            let code_verifier = oidc::random_token();
            let redirect_uri = format!("{base}{OIDC_CALLBACK_PATH}");
            let url = oidc::authorization_url(
                &d,
                &oidc::AuthParams {
                    client_id,
                    redirect_uri: &redirect_uri,
                    state: &state,
                    nonce: &nonce,
                    code_verifier: &code_verifier,
                    min_level: binding.trust_level,
                },
            )
            .map_err(internal)?;
            let login_key = oidc::random_token();
            sk.sessions.put_pending(
                login_key.clone(),
                Pending::Oidc { tenant: tenant.slug.clone(), state, nonce, code_verifier, redirect_uri, next },
                now,
            );
            let mut resp = redirect(&url);
            resp.headers_mut().append(
                header::SET_COOKIE,
                set_cookie(&sk, LOGIN_COOKIE, &login_key, "/anmelden", PENDING_TTL.whole_seconds()),
            );
            Ok(resp)
        }
    }
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

#[derive(Debug, Deserialize)]
struct CallbackQuery {
    code: Option<String>,
    state: Option<String>,
    error: Option<String>,
}

async fn oidc_callback(
    State(sk): State<ServicekontoState>,
    headers: HeaderMap,
    Query(q): Query<CallbackQuery>,
) -> Result<Response, LoginError> {
    let tenant = tenant_of(&sk, &headers)?;
    let binding = tenant.servicekonto.as_ref().ok_or(LoginError::NoBinding)?;
    let now = sk.clock.now();
    let login_key = cookie(&headers, LOGIN_COOKIE)
        .ok_or_else(|| LoginError::BadRequest("callback without the login cookie".into()))?;
    let Some(Pending::Oidc { tenant: slug, state, nonce, code_verifier, redirect_uri, next }) =
        sk.sessions.take_pending(login_key, now)
    else {
        return Err(LoginError::BadRequest("no OIDC login in progress for this browser".into()));
    };
    if slug != tenant.slug {
        return Err(LoginError::BadRequest(format!("login was started for tenant {slug}, not {}", tenant.slug)));
    }
    if !constant_time_eq(q.state.as_deref().unwrap_or("").as_bytes(), state.as_bytes()) {
        return Err(LoginError::BadRequest("state does not match the login request".into()));
    }
    if let Some(e) = q.error {
        return Err(LoginError::Rejected(format!("the provider returned error {e:?}")));
    }
    let code = q.code.ok_or_else(|| LoginError::BadRequest("callback without code".into()))?;
    let issuer = binding.issuer.as_deref().ok_or(LoginError::NoBinding)?;
    let client_id = binding.client_id.as_deref().ok_or(LoginError::NoBinding)?;
    let secret = sk.client_secret(&tenant, binding).map_err(internal)?;
    let d = sk.discovery(issuer).await.map_err(internal)?;
    let id_token = oidc::exchange_code(&sk.http, &d, client_id, &secret, &code, &redirect_uri, &code_verifier)
        .await
        .map_err(|e| LoginError::Rejected(e.to_string()))?;
    let jwks = sk.jwks(&d.jwks_uri, false).await.map_err(internal)?;
    let verified = match oidc::verify_id_token(&id_token, &jwks, issuer, client_id, &nonce) {
        Err(Error::IdToken(m)) if m.starts_with("no key") => {
            let jwks = sk.jwks(&d.jwks_uri, true).await.map_err(internal)?;
            oidc::verify_id_token(&id_token, &jwks, issuer, client_id, &nonce)
        }
        other => other,
    }
    .map_err(|e| LoginError::Rejected(e.to_string()))?;
    let mut resp = finish_login(
        &sk,
        &tenant,
        binding,
        Identity {
            subject: verified.subject,
            given_name: verified.given_name,
            family_name: verified.family_name,
            trust_level: verified.trust_level,
            protocol: "oidc",
        },
        &next,
    )?;
    resp.headers_mut().append(header::SET_COOKIE, set_cookie(&sk, LOGIN_COOKIE, "", "/anmelden", 0));
    Ok(resp)
}

fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "PascalCase")]
struct AcsForm {
    #[serde(rename = "SAMLResponse")]
    saml_response: String,
    relay_state: Option<String>,
}

async fn saml_acs(
    State(sk): State<ServicekontoState>,
    headers: HeaderMap,
    Form(form): Form<AcsForm>,
) -> Result<Response, LoginError> {
    let tenant = tenant_of(&sk, &headers)?;
    let binding = tenant.servicekonto.as_ref().ok_or(LoginError::NoBinding)?;
    let now = sk.clock.now();
    let in_response_to = saml::peek_in_response_to(&form.saml_response).ok_or_else(|| {
        LoginError::BadRequest("SAMLResponse without InResponseTo (IdP-initiated login is not accepted)".into())
    })?;
    let Some(Pending::Saml { tenant: slug, request_id, acs_url }) = sk.sessions.take_pending(&in_response_to, now)
    else {
        return Err(LoginError::BadRequest("the response answers no login request in progress".into()));
    };
    if slug != tenant.slug {
        return Err(LoginError::BadRequest(format!("login was started for tenant {slug}, not {}", tenant.slug)));
    }
    let url = binding.idp_metadata_url.as_deref().ok_or(LoginError::NoBinding)?;
    let entity_id = binding.entity_id.as_deref().ok_or(LoginError::NoBinding)?;
    let idp = sk.idp_metadata(url).await.map_err(internal)?;
    let sp_keys = sk.sp_keys(&tenant, binding).map_err(internal)?;
    let expectations = saml::Expectations {
        entity_id: entity_id.to_string(),
        acs_url,
        request_id,
        idp,
        sp_key: Some(sp_keys.private_key),
        allow_legacy_cbc: binding.allow_legacy_cbc,
        now,
        skew: CLOCK_SKEW,
    };
    let identity = saml::Verifier::global().validate(form.saml_response, expectations).await.map_err(|e| match e {
        saml::SamlError::Busy => LoginError::Busy(e.to_string()),
        e if e.is_malformed() => LoginError::BadRequest(format!("tenant {}: {e}", tenant.slug)),
        e => LoginError::Rejected(format!("tenant {}: {e}", tenant.slug)),
    })?;
    let next = safe_next(form.relay_state.as_deref());
    finish_login(
        &sk,
        &tenant,
        binding,
        Identity {
            subject: identity.subject,
            given_name: identity.given_name,
            family_name: identity.family_name,
            trust_level: identity.trust_level,
            protocol: "saml",
        },
        &next,
    )
}

struct Identity {
    subject: String,
    given_name: Option<String>,
    family_name: Option<String>,
    trust_level: TrustLevel,
    protocol: &'static str,
}

fn finish_login(
    sk: &ServicekontoState,
    tenant: &Tenant,
    binding: &Binding,
    id: Identity,
    next: &str,
) -> Result<Response, LoginError> {
    if id.trust_level < binding.trust_level {
        tracing::info!(tenant = %tenant.slug, have = trust::name(id.trust_level), need = trust::name(binding.trust_level), "login below the required trust level");
        return Err(LoginError::TrustTooLow { have: id.trust_level, need: binding.trust_level });
    }
    let now = sk.clock.now();
    let name = match (&id.given_name, &id.family_name) {
        (Some(g), Some(f)) => format!("{g} {f}"),
        (Some(n), None) | (None, Some(n)) => n.clone(),
        (None, None) => "Bürgerin/Bürger".to_string(),
    };
    let session = Session {
        tenant: tenant.slug.clone(),
        name,
        given_name: id.given_name,
        family_name: id.family_name,
        trust_level: id.trust_level,
        protocol: id.protocol,
        subject: id.subject,
        expires: now + SESSION_TTL,
    };
    let sid = sk.sessions.create(session, now);
    tracing::info!(tenant = %tenant.slug, protocol = id.protocol, "citizen logged in");
    let mut resp = redirect(next);
    resp.headers_mut()
        .append(header::SET_COOKIE, set_cookie(sk, SESSION_COOKIE, &sid, "/", SESSION_TTL.whole_seconds()));
    Ok(resp)
}

fn session_of(sk: &ServicekontoState, headers: &HeaderMap, tenant: &Tenant) -> Option<(String, Session)> {
    let sid = cookie(headers, SESSION_COOKIE)?;
    let s = sk.sessions.get(sid, sk.clock.now())?;
    (s.tenant == tenant.slug).then(|| (sid.to_string(), s))
}

/// The valid session of a request for the tenant `slug` (from the session cookie), if any. The
/// portal server uses it to show the logged-in citizen on every page.
pub fn session_for(sk: &ServicekontoState, headers: &HeaderMap, slug: &str) -> Option<Session> {
    let sid = cookie(headers, SESSION_COOKIE)?;
    sk.sessions.get(sid, sk.clock.now()).filter(|s| s.tenant == slug)
}

async fn status(State(sk): State<ServicekontoState>, headers: HeaderMap) -> Result<Response, LoginError> {
    let tenant = tenant_of(&sk, &headers)?;
    let mut resp = match session_of(&sk, &headers, &tenant) {
        Some((_, s)) => Json(serde_json::json!({
            "name": s.name,
            "givenName": s.given_name,
            "familyName": s.family_name,
            "trustLevel": s.trust_level,
            "protocol": s.protocol,
            "tenant": s.tenant,
            "expires": s.expires.format(&time::format_description::well_known::Rfc3339).unwrap_or_default(),
        }))
        .into_response(),
        None => (StatusCode::UNAUTHORIZED, Json(serde_json::json!({"error": "nicht angemeldet"}))).into_response(),
    };
    resp.headers_mut().insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    Ok(resp)
}

async fn logout(State(sk): State<ServicekontoState>, headers: HeaderMap) -> Result<Response, LoginError> {
    let tenant = tenant_of(&sk, &headers)?;
    if let Some((sid, _)) = session_of(&sk, &headers, &tenant) {
        sk.sessions.remove(&sid);
        tracing::info!(tenant = %tenant.slug, "citizen logged out");
    }
    let mut resp = redirect("/");
    resp.headers_mut().append(header::SET_COOKIE, set_cookie(&sk, SESSION_COOKIE, "", "/", 0));
    Ok(resp)
}
