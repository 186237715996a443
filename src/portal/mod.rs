//! The bundled portal server (`portalctl serve`): one process serving every tenant's citizen
//! portal, chosen by the Host header. Pages come from tera templates embedded in the binary;
//! content comes from the tenant's own schema, read in a transaction that has switched to the
//! tenant's role so that PostgreSQL itself keeps tenants apart.
//!
//! **Architecture invariant:** a request is served for exactly one tenant resolved from its
//! Host header, or gets a plain 404 naming no tenant. There is no default tenant.

pub mod db;
pub mod error;
pub mod feedback;
pub mod http;
pub mod legal;
pub mod members;
pub mod metrics;
pub mod ops;
pub mod pages;
pub mod registry;
pub mod search;
pub mod site;
pub mod source;
pub mod templates;

use crate::servicekonto::ServicekontoState;
use axum::body::{Body, Bytes};
use axum::extract::{FromRef, FromRequestParts, Request, State};
use axum::http::request::Parts;
use axum::http::{header, HeaderName, HeaderValue, StatusCode};
use axum::middleware::{self, Next};
use axum::response::{Html, IntoResponse, Response};
use axum::Router;
use error::AppError;
use registry::Registry;
use site::{CurrentUser, Site};
use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, RwLock};
use std::time::{Duration, Instant};
use tower_http::request_id::{MakeRequestUuid, PropagateRequestIdLayer, SetRequestIdLayer};
use tower_http::trace::TraceLayer;

pub use db::Pools;

/// Errors of setting the server up (request errors are [`AppError`]).
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("invalid database URL: {0}")]
    DatabaseUrl(#[source] tokio_postgres::Error),
    #[error("cannot create the database pool: {0}")]
    Pool(String),
    #[error("cannot listen on {addr} (another server there? choose another address with --listen or --ops-listen)")]
    Listen { addr: String, source: std::io::Error },
    #[error("tenants: {0}")]
    Tenants(String),
    #[error("{0}")]
    Templates(String),
    #[error("server: {0}")]
    Serve(#[source] std::io::Error),
}

pub type Result<T, E = Error> = std::result::Result<T, E>;

/// `max_size` connections for the group role (`portal_<group>`), which is a member of every
/// tenant role, sharded by tenant (see [`Pools`]), with the default [`db::ReadLimits`].
pub fn pool(database_url: &str, max_size: usize) -> Result<Pools> {
    pool_with(database_url, max_size, db::ReadLimits::default())
}

/// As [`pool`], with the given read limits.
pub fn pool_with(database_url: &str, max_size: usize, limits: db::ReadLimits) -> Result<Pools> {
    let cfg: tokio_postgres::Config = database_url.parse().map_err(Error::DatabaseUrl)?;
    let make = |size: usize| {
        let mgr = deadpool_postgres::Manager::from_config(
            cfg.clone(),
            tokio_postgres::NoTls,
            deadpool_postgres::ManagerConfig { recycling_method: deadpool_postgres::RecyclingMethod::Fast },
        );
        deadpool_postgres::Pool::builder(mgr)
            .max_size(size)
            .runtime(deadpool_postgres::Runtime::Tokio1)
            .wait_timeout(Some(limits.wait_timeout))
            .create_timeout(Some(Duration::from_secs(5)))
            .build()
            .map_err(|e| e.to_string())
    };
    Pools::new(make, max_size, limits.clone()).map_err(Error::Pool)
}

/// A rendered anonymous home page, ready to be sent: when and for which tenant configuration
/// it was rendered, the bytes, their ETag.
pub struct CachedPage {
    rendered_at: Instant,
    site: Arc<Site>,
    body: Bytes,
    etag: HeaderValue,
    /// A request is rendering its successor in the background.
    refreshing: AtomicBool,
}

impl CachedPage {
    fn new(site: Arc<Site>, html: String) -> CachedPage {
        use std::hash::{Hash as _, Hasher as _};
        let mut h = std::collections::hash_map::DefaultHasher::new();
        html.hash(&mut h);
        let etag = HeaderValue::from_str(&format!("\"{:016x}\"", h.finish())).expect("hex is a valid header value");
        CachedPage {
            rendered_at: Instant::now(),
            site,
            body: Bytes::from(html),
            etag,
            refreshing: AtomicBool::new(false),
        }
    }

    /// 200 with the page, or 304 when `if_none_match` names its ETag.
    pub fn response(&self, if_none_match: Option<&HeaderValue>) -> Response {
        let not_modified = if_none_match.and_then(|v| v.to_str().ok()).is_some_and(|v| {
            v.split(',').map(str::trim).any(|t| t == "*" || t.strip_prefix("W/").unwrap_or(t) == self.etag)
        });
        let (status, body) = if not_modified {
            (StatusCode::NOT_MODIFIED, Body::empty())
        } else {
            (StatusCode::OK, Body::from(self.body.clone()))
        };
        let mut res = Response::new(body);
        *res.status_mut() = status;
        let h = res.headers_mut();
        h.insert(header::CONTENT_TYPE, HeaderValue::from_static("text/html; charset=utf-8"));
        h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
        h.insert(header::ETAG, self.etag.clone());
        res
    }
}

struct Inner {
    registry: Arc<Registry>,
    pool: Pools,
    tera: tera::Tera,
    metrics: metrics::Metrics,
    home_ttl: Duration,
    home_cache: RwLock<HashMap<String, Arc<CachedPage>>>,
    servicekonto: ServicekontoState,
    feedback: feedback::Limiter,
}

/// Shared by all requests.
#[derive(Clone)]
pub struct AppState(Arc<Inner>);

/// Tunables of the server.
#[derive(Debug, Clone)]
pub struct Options {
    /// How long a rendered home page is reused as it is (zero: never). A page older than this
    /// is re-rendered in the background by the next request, which (like any other request
    /// until the new page is ready) still gets the old page; a page older than twice this is
    /// never served. A published change therefore shows on the home page at the latest
    /// 2 × TTL after it was made, under steady traffic about TTL after.
    pub home_cache_ttl: Duration,
    /// How many feedback submissions are accepted per client address and per tenant.
    pub feedback: feedback::Limits,
}

impl Default for Options {
    fn default() -> Self {
        Options { home_cache_ttl: Duration::from_secs(2), feedback: feedback::Limits::default() }
    }
}

impl AppState {
    /// With the Servicekonto login reading keys from the default secrets directory.
    pub fn new(registry: Arc<Registry>, pool: Pools, options: Options) -> AppState {
        let sk = ServicekontoState::new(crate::servicekonto::DEFAULT_SECRETS_DIR.into(), registry.clone());
        AppState::with_servicekonto(registry, pool, options, sk)
    }

    /// With a given Servicekonto configuration (its tenant lookup should be `registry`).
    pub fn with_servicekonto(
        registry: Arc<Registry>,
        pool: Pools,
        options: Options,
        servicekonto: ServicekontoState,
    ) -> AppState {
        AppState(Arc::new(Inner {
            registry,
            pool,
            tera: templates::tera(),
            metrics: metrics::Metrics::default(),
            home_ttl: options.home_cache_ttl,
            home_cache: RwLock::new(HashMap::new()),
            servicekonto,
            feedback: feedback::Limiter::new(options.feedback),
        }))
    }

    /// The same state rendering with `tera` (see [`templates::tera_with_overrides`]); before the state is shared.
    pub fn with_templates(mut self, tera: tera::Tera) -> AppState {
        Arc::get_mut(&mut self.0).expect("templates are set before the state is shared").tera = tera;
        self
    }

    pub fn servicekonto(&self) -> &ServicekontoState {
        &self.0.servicekonto
    }

    /// The rate limits of feedback submissions.
    pub fn feedback_limiter(&self) -> &feedback::Limiter {
        &self.0.feedback
    }

    pub fn registry(&self) -> &Registry {
        &self.0.registry
    }

    pub fn pool(&self) -> &Pools {
        &self.0.pool
    }

    pub fn tera(&self) -> &tera::Tera {
        &self.0.tera
    }

    pub fn metrics(&self) -> &metrics::Metrics {
        &self.0.metrics
    }

    /// Read as the request's tenant: see [`db::read`].
    pub async fn read(&self, site: &Site, stmts: &[db::Stmt<'_>]) -> Result<Vec<Vec<tokio_postgres::Row>>, AppError> {
        Ok(db::read(&self.0.pool, &site.schema, stmts).await?)
    }

    /// The rows of a single statement, read as the request's tenant.
    pub async fn read_one(&self, site: &Site, stmt: db::Stmt<'_>) -> Result<Vec<tokio_postgres::Row>, AppError> {
        Ok(self.read(site, &[stmt]).await?.pop().unwrap_or_default())
    }

    /// The anonymous home page of the request's tenant: from the cache (keyed by tenant slug,
    /// and only for this very tenant configuration), refreshed in the background once older
    /// than the TTL, rendered now when missing or older than twice the TTL.
    pub async fn home_page(&self, ctx: &TenantCtx) -> Result<Arc<CachedPage>, AppError> {
        let ttl = self.0.home_ttl;
        if ttl.is_zero() {
            return Ok(Arc::new(CachedPage::new(ctx.site.clone(), pages::render_home(self, ctx).await?)));
        }
        let cached = {
            let cache = self.0.home_cache.read().unwrap_or_else(|e| e.into_inner());
            cache.get(ctx.site.slug.as_str()).filter(|p| Arc::ptr_eq(&p.site, &ctx.site)).cloned()
        };
        if let Some(page) = cached {
            let age = page.rendered_at.elapsed();
            if age < ttl {
                return Ok(page);
            }
            if age < 2 * ttl {
                if !page.refreshing.swap(true, Ordering::AcqRel) {
                    let (state, site, old) = (self.clone(), ctx.site.clone(), page.clone());
                    tokio::spawn(async move {
                        let ctx = TenantCtx { site, user: None };
                        if let Err(e) = state.render_and_store_home(&ctx).await {
                            if let error::LogDecision::Log { suppressed } = error::ERROR_LOG.check("home page refresh")
                            {
                                tracing::warn!(tenant = %ctx.site.slug, error = %error::chain(&e), suppressed, "home page refresh failed");
                            }
                            old.refreshing.store(false, Ordering::Release);
                        }
                    });
                }
                return Ok(page);
            }
        }
        self.render_and_store_home(ctx).await
    }

    async fn render_and_store_home(&self, ctx: &TenantCtx) -> Result<Arc<CachedPage>, AppError> {
        let page = Arc::new(CachedPage::new(ctx.site.clone(), pages::render_home(self, ctx).await?));
        let mut cache = self.0.home_cache.write().unwrap_or_else(|e| e.into_inner());
        cache.insert(ctx.site.slug.clone(), page.clone());
        Ok(page)
    }
}

impl FromRef<AppState> for ServicekontoState {
    fn from_ref(s: &AppState) -> ServicekontoState {
        s.0.servicekonto.clone()
    }
}

/// Put the logged-in citizen (a valid Servicekonto session of this very tenant) into the
/// request's extensions, where [`TenantCtx`] picks it up for the layout.
async fn current_user(State(state): State<AppState>, mut req: Request, next: Next) -> Response {
    let site = match req.extensions().get::<Resolved>() {
        Some(Resolved(site)) => site.clone(),
        None => req.headers().get(header::HOST).and_then(|h| h.to_str().ok()).and_then(|h| state.registry().resolve(h)),
    };
    if let Some(site) = site {
        let session =
            crate::servicekonto::web::session_for(state.servicekonto(), req.headers(), &site.group, &site.slug).await;
        if let Some(s) = session {
            let trust_level = crate::servicekonto::trust::name(s.trust_level).to_string();
            req.extensions_mut().insert(CurrentUser { name: s.name, trust_level });
        }
    }
    next.run(req).await
}

/// The page for a hostname that no tenant claims: names no tenant.
pub fn unknown_host() -> Response {
    (
        StatusCode::NOT_FOUND,
        [(header::CACHE_CONTROL, "no-store")],
        Html(
            "<!doctype html>\n<html lang=\"de\"><head><meta charset=\"utf-8\">\
             <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\"><title>Nicht gefunden</title></head>\
             <body><main><h1>Nicht gefunden</h1><p>Unter dieser Adresse wird kein Serviceportal angeboten.</p></main></body></html>\n",
        ),
    )
        .into_response()
}

/// The tenant of a request (from its Host header) and the logged-in user, if any.
pub struct TenantCtx {
    pub site: Arc<Site>,
    pub user: Option<CurrentUser>,
}

/// Host header of a request (or the URI's authority, for HTTP/2).
fn host_of(parts: &Parts) -> Option<&str> {
    parts.headers.get(header::HOST).and_then(|h| h.to_str().ok()).or_else(|| parts.uri.host())
}

/// The tenant a request's Host header names (or none), looked up once per request by the
/// outermost middleware and kept in the request's extensions.
#[derive(Clone)]
struct Resolved(Option<Arc<Site>>);

impl FromRequestParts<AppState> for TenantCtx {
    type Rejection = Response;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, Self::Rejection> {
        let site = match parts.extensions.get::<Resolved>() {
            Some(Resolved(site)) => site.clone(),
            None => host_of(parts).and_then(|h| state.registry().resolve(h)),
        };
        let site = site.ok_or_else(unknown_host)?;
        let user = parts.extensions.get::<CurrentUser>().cloned();
        Ok(TenantCtx { site, user })
    }
}

async fn fallback(State(state): State<AppState>, ctx: TenantCtx) -> Response {
    pages::not_found(&state, &ctx.site, ctx.user.as_ref())
}

/// Resolve the request's tenant once (for everything after), count every response by tenant
/// and status, and time it.
async fn track(State(state): State<AppState>, mut req: Request, next: Next) -> Response {
    let start = Instant::now();
    let site = host_of_request(&req).and_then(|h| state.registry().resolve(h));
    req.extensions_mut().insert(Resolved(site.clone()));
    let res = next.run(req).await;
    let tenant = site.as_ref().map(|s| s.slug.as_str()).unwrap_or("");
    state.metrics().record(tenant, res.status().as_u16(), start.elapsed());
    res
}

/// As [`host_of`], for a whole request.
fn host_of_request(req: &Request) -> Option<&str> {
    req.headers().get(header::HOST).and_then(|h| h.to_str().ok()).or_else(|| req.uri().host())
}

/// A request whose path is not clean UTF-8 (a NUL byte, another control character, invalid
/// UTF-8 once percent-decoded) names nothing we serve: 404 before any handler or query.
async fn reject_unclean_paths(State(state): State<AppState>, req: Request, next: Next) -> Response {
    if http::path_is_clean(req.uri().path()) {
        return next.run(req).await;
    }
    match req.extensions().get::<Resolved>() {
        Some(Resolved(Some(site))) => pages::not_found(&state, site, req.extensions().get::<CurrentUser>()),
        _ => unknown_host(),
    }
}

/// Error pages (500, 503, the login's pages such as "Anmeldung nicht verfügbar") in the layout of the tenant the
/// request named; for a host no tenant claims they stay plain.
async fn themed_errors(State(state): State<AppState>, req: Request, next: Next) -> Response {
    let site = match req.extensions().get::<Resolved>() {
        Some(Resolved(Some(site))) => Some(site.clone()),
        _ => None,
    };
    let user = req.extensions().get::<CurrentUser>().cloned();
    let res = next.run(req).await;
    let Some(site) = site else { return res };
    match res.extensions().get::<error::ErrorPage>().cloned() {
        Some(page) => pages::themed_error(&state, &site, user.as_ref(), res, &page),
        None => res,
    }
}

/// The public application with the default [`http::RequestLimits`].
pub fn app(state: AppState) -> Router {
    app_with(state, &http::RequestLimits::default())
}

/// The public application: pages and the Servicekonto login routes under `/anmelden`, under
/// the request limits, every response with the security headers. The operations endpoints are
/// not part of it; they are [`ops::app`], on their own listener.
pub fn app_with(state: AppState, limits: &http::RequestLimits) -> Router {
    let x_request_id = HeaderName::from_static("x-request-id");
    let limited = Router::new()
        .merge(pages::routes())
        // Citizens' feedback (`/rueckmeldung`), the only form that writes to a tenant's schema.
        .merge(feedback::routes())
        // The legal pages (`/impressum`, `/datenschutz`, `/barrierefreiheit`, `/leichte-sprache`, `/gebaerdensprache`).
        .merge(legal::routes())
        // The Servicekonto login (`/anmelden/...`, `/abmelden`) on every tenant host; its message pages carry an
        // `ErrorPage` and are shown in the tenant's layout like every error page.
        .merge(crate::servicekonto::routes())
        .fallback(fallback);
    Router::new()
        .merge(http::request_limits(limited, limits))
        .layer(middleware::from_fn_with_state(state.clone(), reject_unclean_paths))
        .layer(middleware::from_fn_with_state(state.clone(), themed_errors))
        .layer(middleware::from_fn_with_state(state.clone(), current_user))
        .layer(middleware::from_fn_with_state(state.clone(), track))
        .layer(PropagateRequestIdLayer::new(x_request_id.clone()))
        .layer(
            TraceLayer::new_for_http()
                .make_span_with(|req: &Request| {
                    let id = req.headers().get("x-request-id").and_then(|v| v.to_str().ok()).unwrap_or("");
                    let host = req.headers().get(header::HOST).and_then(|v| v.to_str().ok()).unwrap_or("");
                    tracing::debug_span!("request", request_id = %id, host = %host, method = %req.method(), path = %req.uri().path())
                })
                // Not a line per 5xx response: the errors behind them are logged where they
                // happen, rate-limited (`error::ERROR_LOG`).
                .on_failure(()),
        )
        .layer(SetRequestIdLayer::new(x_request_id, MakeRequestUuid))
        .layer(middleware::from_fn(http::security_headers))
        .with_state(state)
}

/// Where `serve` finds tenants.
pub enum SourceKind {
    Directory(std::path::PathBuf),
    Kubernetes,
}

/// Configuration of `portalctl serve`.
pub struct ServeConfig {
    pub listen: String,
    /// Where the operations endpoints listen ([`ops::app`]); never on `listen`.
    pub ops_listen: String,
    pub database_url: String,
    pub source: SourceKind,
    pub poll_interval: Duration,
    pub pool_size: usize,
    pub read_limits: db::ReadLimits,
    pub options: Options,
    pub limits: http::Limits,
    pub request_limits: http::RequestLimits,
    /// Where the Servicekonto SP keys and OIDC client secrets live.
    pub secrets_dir: std::path::PathBuf,
    /// Plain-http cookies and login URLs on the listening port (local use only).
    pub insecure_http_cookies: bool,
    /// Serve every tenant additionally on `<slug>.localhost`.
    pub local_hostnames: bool,
    /// The largest share of the served tenants one reload may remove ([`source::DEFAULT_MAX_REMOVAL`]).
    pub max_reload_removal: f64,
    /// Templates replacing the embedded ones of the same name ([`templates::tera_with_overrides`]).
    pub templates_dir: Option<std::path::PathBuf>,
}

/// Run the server until SIGTERM or Ctrl-C, then finish in-flight requests (at most for the
/// shutdown timeout).
pub async fn serve(config: ServeConfig) -> Result<()> {
    let registry = Arc::new(if config.local_hostnames { Registry::with_local_hostnames() } else { Registry::new() });
    let pool = pool_with(&config.database_url, config.pool_size, config.read_limits.clone())?;
    let inner: Box<dyn source::TenantSource> = match &config.source {
        SourceKind::Directory(dir) => {
            // Only an unreadable directory stops the start; a broken file keeps only its own
            // tenant offline (reported by the first poll).
            source::Directory::new(dir).load().map_err(Error::Tenants)?;
            Box::new(source::Directory::new(dir))
        }
        SourceKind::Kubernetes => Box::new(source::Kubernetes::connect().await.map_err(Error::Tenants)?),
    };
    // A tenant is served once its database is set up, never before (no 500 for a new tenant).
    let mut source: Box<dyn source::TenantSource> = Box::new(source::Gated::new(inner, pool.clone()));
    if let Ok(Some(sites)) = source.poll().await {
        source::apply(&registry, sites, &source.describe(), 1.0);
    }
    let listener = tokio::net::TcpListener::bind(&config.listen)
        .await
        .map_err(|source| Error::Listen { addr: config.listen.clone(), source })?;
    if let Ok(addr) = listener.local_addr() {
        registry.set_local_port(addr.port());
    }
    // Sessions and logins in progress in PostgreSQL: any replica finishes any login.
    let mut sk = ServicekontoState::new(config.secrets_dir.clone(), registry.clone())
        .with_store(crate::servicekonto::LoginStore::postgres(pool.clone()));
    if config.insecure_http_cookies {
        let port = listener.local_addr().map(|a| a.port()).map_err(Error::Serve)?;
        sk = sk.insecure_http_for_tests(port);
    }
    let schemas = registry.snapshot().sites().iter().map(|s| s.schema.clone()).collect();
    tokio::spawn(search::warm(pool.clone(), schemas));
    let mut state = AppState::with_servicekonto(registry.clone(), pool, config.options.clone(), sk);
    if let Some(dir) = &config.templates_dir {
        state = state.with_templates(templates::tera_with_overrides(dir).map_err(Error::Templates)?);
    }
    let ops_listener = tokio::net::TcpListener::bind(&config.ops_listen)
        .await
        .map_err(|source| Error::Listen { addr: config.ops_listen.clone(), source })?;
    let ops_addr = ops_listener.local_addr().map(|a| a.to_string()).unwrap_or_else(|_| config.ops_listen.clone());
    let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
    let ops = tokio::spawn(ops::serve(ops_listener, state.clone(), config.limits.clone(), stop_rx.clone()));
    let watcher =
        tokio::spawn(source::watch(source, registry.clone(), config.poll_interval, config.max_reload_removal, stop_rx));
    let addr = listener.local_addr().map(|a| a.to_string()).unwrap_or_else(|_| config.listen.clone());
    tracing::info!(listen = %addr, ops_listen = %ops_addr, tenants = registry.len(), version = env!("CARGO_PKG_VERSION"), "portal server started");
    http::serve(listener, app_with(state, &config.request_limits), &config.limits, shutdown_signal()).await;
    let _ = stop_tx.send(true);
    let _ = watcher.await;
    let _ = ops.await;
    tracing::info!("portal server stopped");
    Ok(())
}

async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! {
        _ = ctrl_c => tracing::info!("Ctrl-C received; shutting down"),
        _ = term => tracing::info!("SIGTERM received; shutting down"),
    }
}
