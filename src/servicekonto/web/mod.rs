//! The login routes the portal server mounts: `/anmelden` (start), `/anmelden/oidc/callback`,
//! `/anmelden/saml/acs` (POST), `/abmelden` (GET: a page with the logout button; POST: logout),
//! `/anmelden/status`.
//!
//! The tenant comes from the Host header through [`TenantLookup`]; everything else from
//! [`ServicekontoState`] (via `FromRef`), so the routes fit into any router state. Sessions and
//! logins in progress live in the [`LoginStore`] (PostgreSQL in the server), so that any
//! replica can finish any login.
//!
//! - [`cookies`]: cookie names and attributes (`__Host-` over https, the login cookie).
//! - [`redirect`]: where the browser may go after login.
//! - [`saml_login`], [`oidc_login`]: the two protocols' start and finish.
//! - [`logout`]: logout by POST with a cross-site check.
//! - `error`: a failed step as a short page for the citizen (carrying a `portal::error::ErrorPage`, which the portal
//!   shows in the tenant's layout), details to the log.

pub mod cookies;
mod error;
pub mod logout;
pub mod oidc_login;
pub mod redirect;
pub mod saml_login;

pub use cookies::{LOGIN_COOKIE, LOGIN_COOKIE_HTTP, SESSION_COOKIE, SESSION_COOKIE_HTTP};

use super::bundid::CitizenAttributes;
use super::keys::{KeyPaths, SpKeys};
use super::metadata::{self, IdpMetadata, ACS_PATH, OIDC_CALLBACK_PATH};
use super::oidc::{self, Discovery};
use super::session::{LoginStore, Session, SESSION_TTL};
use super::trust;
use super::{Error, Result};
use crate::tenant::{Binding, Protocol, SecretRef, Tenant, TrustLevel};
use axum::extract::{FromRef, Query, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use cookies::Kind;
pub(crate) use error::{internal, page, store_error, LoginError};
use jsonwebtoken::jwk::JwkSet;
use serde::Deserialize;
use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Instant;
use time::OffsetDateTime;

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
    /// Sessions and logins in progress: [`LoginStore::postgres`] in the server.
    pub sessions: LoginStore,
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
            sessions: LoginStore::memory(),
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

    /// Keep sessions and logins in progress in `store` (the server: [`LoginStore::postgres`]).
    pub fn with_store(mut self, store: LoginStore) -> ServicekontoState {
        self.sessions = store;
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

    /// The tenant's public base URL as the browser reached it: [`Self::base_url`], except that
    /// in the local plain-http mode the port is the one in the request's Host header (so that
    /// the login works through a local reverse proxy in front of several servers).
    pub fn base_url_for(&self, tenant: &Tenant, headers: &HeaderMap) -> String {
        let port = host_of(headers).and_then(|h| h.rsplit_once(':')).and_then(|(_, p)| p.parse::<u16>().ok());
        match (self.secure_cookies, port) {
            (false, Some(p)) => format!("{}://{}:{p}", self.public_scheme, tenant.primary_hostname()),
            _ => self.base_url(tenant),
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
        .route(OIDC_CALLBACK_PATH, get(oidc_login::callback))
        .route(ACS_PATH, post(saml_login::acs))
        .route("/anmelden/status", get(status))
        .route("/abmelden", get(logout::page_get).post(logout::logout))
}

fn host_of(headers: &HeaderMap) -> Option<&str> {
    headers.get(header::HOST).and_then(|h| h.to_str().ok())
}

pub(crate) fn tenant_of(sk: &ServicekontoState, headers: &HeaderMap) -> Result<Arc<Tenant>, LoginError> {
    host_of(headers).and_then(|h| sk.tenants.tenant_for_host(h)).ok_or(LoginError::UnknownHost)
}

pub(crate) fn redirect(location: &str) -> Response {
    (StatusCode::SEE_OTHER, [(header::LOCATION, location), (header::CACHE_CONTROL, "no-store")]).into_response()
}

#[derive(Debug, Deserialize)]
struct StartQuery {
    next: Option<String>,
    /// A service that needs more than the tenant's minimum (e.g. `hoch`) asks for it here; a
    /// lower value than the binding's changes nothing.
    #[serde(rename = "trustLevel")]
    trust_level: Option<TrustLevel>,
}

/// What a protocol needs to start a login: the tenant and its binding, the tenant's base URL,
/// the checked return path and the trust level asked for. The protocol answers with the response
/// that sends the browser to the IdP and the login in progress, which [`start`] stores.
pub(super) struct LoginStart<'a> {
    pub tenant: &'a Tenant,
    pub binding: &'a Binding,
    pub base: &'a str,
    pub next: String,
    pub min_level: TrustLevel,
    pub now: time::OffsetDateTime,
}

/// `GET /anmelden?next=/pfad`: start a login with the tenant's protocol. A new login cookie
/// binds it to this browser; the login in progress is stored under that cookie's hash.
async fn start(
    State(sk): State<ServicekontoState>,
    headers: HeaderMap,
    Query(q): Query<StartQuery>,
) -> Result<Response, LoginError> {
    let tenant = tenant_of(&sk, &headers)?;
    let binding = tenant.servicekonto.as_ref().ok_or(LoginError::NoBinding)?;
    let base = sk.base_url_for(&tenant, &headers);
    let base_url = url::Url::parse(&base).map_err(|e| LoginError::Internal(format!("base URL {base}: {e}")))?;
    let next = redirect::local_target(&base_url, q.next.as_deref());
    let min_level = q.trust_level.map_or(binding.trust_level, |l| l.max(binding.trust_level));
    let now = sk.clock.now();
    let login = LoginStart { tenant: &tenant, binding, base: &base, next, min_level, now };
    let (mut resp, pending) = match binding.protocol {
        Protocol::Saml => saml_login::start(&sk, login).await?,
        Protocol::Oidc => oidc_login::start(&sk, login).await?,
    };
    let login_token = oidc::random_token();
    sk.sessions.put_pending(&tenant.group, &login_token, pending, now).await.map_err(store_error)?;
    resp.headers_mut().append(
        header::SET_COOKIE,
        cookies::set(&sk, Kind::Login, &login_token, super::session::PENDING_TTL.whole_seconds()),
    );
    Ok(resp)
}

/// The citizen as an IdP asserted them, after every check. Personal data: never logged.
pub(crate) struct Identity {
    pub subject: String,
    pub attributes: CitizenAttributes,
    pub trust_level: TrustLevel,
    pub protocol: &'static str,
}

/// Create the session (if the trust level reaches `min_level`, the binding's or a service's
/// higher one), set its cookie, clear the login cookie and send the browser to `next` (already
/// checked by [`redirect::local_target`]). Of the citizen's attributes the session keeps the
/// name only; the others are not stored.
pub(crate) async fn finish_login(
    sk: &ServicekontoState,
    tenant: &Tenant,
    binding: &Binding,
    id: Identity,
    min_level: TrustLevel,
    next: &str,
) -> Result<Response, LoginError> {
    let need = min_level.max(binding.trust_level);
    if id.trust_level < need {
        tracing::info!(tenant = %tenant.slug, have = trust::name(id.trust_level), need = trust::name(need), "login below the required trust level");
        return Err(LoginError::TrustTooLow { have: id.trust_level, need });
    }
    let now = sk.clock.now();
    let CitizenAttributes { given_name, surname: family_name, .. } = id.attributes;
    let name = match (&given_name, &family_name) {
        (Some(g), Some(f)) => format!("{g} {f}"),
        (Some(n), None) | (None, Some(n)) => n.clone(),
        (None, None) => "Bürgerin/Bürger".to_string(),
    };
    let session = Session {
        tenant: tenant.slug.clone(),
        name,
        given_name,
        family_name,
        trust_level: id.trust_level,
        protocol: id.protocol,
        subject: id.subject,
        expires: now + SESSION_TTL,
    };
    let sid = sk.sessions.create_session(&tenant.group, session, now).await.map_err(store_error)?;
    tracing::info!(tenant = %tenant.slug, protocol = id.protocol, "citizen logged in");
    let mut resp = redirect(next);
    let h = resp.headers_mut();
    h.append(header::SET_COOKIE, cookies::set(sk, Kind::Session, &sid, SESSION_TTL.whole_seconds()));
    h.append(header::SET_COOKIE, cookies::set(sk, Kind::Login, "", 0));
    Ok(resp)
}

/// The request's session token and its valid session of `tenant`, if any. A store that cannot
/// be read counts as no session (logged).
pub(crate) async fn session_of(
    sk: &ServicekontoState,
    headers: &HeaderMap,
    tenant: &Tenant,
) -> Option<(String, Session)> {
    let s = session_for(sk, headers, &tenant.group, &tenant.slug).await?;
    Some((cookies::read(sk, headers, Kind::Session)?.to_string(), s))
}

/// The valid session of a request for the tenant `slug` of `group` (from the session cookie),
/// if any. The portal server uses it to show the logged-in citizen on every page; a store that
/// cannot be read counts as no session (logged).
pub async fn session_for(sk: &ServicekontoState, headers: &HeaderMap, group: &str, slug: &str) -> Option<Session> {
    let sid = cookies::read(sk, headers, Kind::Session)?;
    match sk.sessions.session(group, sid, sk.clock.now()).await {
        Ok(s) => s.filter(|s| s.tenant == slug),
        Err(e) => {
            tracing::warn!(tenant = %slug, error = %e, "reading the session failed");
            None
        }
    }
}

async fn status(State(sk): State<ServicekontoState>, headers: HeaderMap) -> Result<Response, LoginError> {
    let tenant = tenant_of(&sk, &headers)?;
    let mut resp = match session_of(&sk, &headers, &tenant).await {
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
