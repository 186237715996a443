//! Operations endpoints on their own listener (`portalctl serve --ops-listen`): liveness,
//! readiness, Prometheus metrics, and the identity endpoint `portalctl status` uses to verify
//! that a hostname serves the right tenant.
//!
//! **Architecture invariant:** none of these paths is routed on the public listener ([`super::app`]):
//! there a tenant host gets its ordinary 404 page and an unknown host the 404 naming no tenant.
//! The ops listener is reached only from inside the cluster (the Service's `ops` port, admitted by
//! the NetworkPolicy from the monitoring namespaces) or on loopback in local mode.

use super::db::Stmt;
use super::error::AppError;
use super::site::Site;
use super::AppState;
use axum::extract::{Query, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use serde::{Deserialize, Serialize};
use std::sync::Arc;

/// Path of the identity endpoint (on the ops listener).
pub const IDENTITY_PATH: &str = "/.well-known/portalctl/identity";

/// The operations application: the endpoints below, a bare 404 for anything else.
pub fn app(state: AppState) -> Router {
    Router::new()
        .route("/healthz", get(healthz))
        .route("/readyz", get(readyz))
        .route("/metrics", get(metrics))
        .route(IDENTITY_PATH, get(identity))
        .fallback(|| async { (StatusCode::NOT_FOUND, "not found\n") })
        .with_state(state)
}

/// Serve [`app`] on `listener` until `stop` turns true, with the same connection limits,
/// timeouts and security headers as the public listener (but no request limit: a probe must
/// not be shed under load).
pub async fn serve(
    listener: tokio::net::TcpListener,
    state: AppState,
    limits: super::http::Limits,
    mut stop: tokio::sync::watch::Receiver<bool>,
) {
    let app = app(state).layer(axum::middleware::from_fn(super::http::security_headers));
    super::http::serve(listener, app, &limits, async move {
        let _ = stop.wait_for(|s| *s).await;
    })
    .await
}

async fn healthz() -> &'static str {
    "ok\n"
}

/// Ready when the database answers (on the probe's own connection, within a second) and at
/// least one tenant is loaded.
async fn readyz(State(state): State<AppState>) -> Response {
    let tenants = state.registry().len();
    let db = state.pool().ping(std::time::Duration::from_secs(1)).await;
    match (db, tenants) {
        (Ok(()), n) if n > 0 => (StatusCode::OK, format!("ready: {n} tenants\n")).into_response(),
        (Ok(()), _) => (StatusCode::SERVICE_UNAVAILABLE, "not ready: no tenants loaded\n").into_response(),
        (Err(e), _) => {
            tracing::warn!(error = %e, "readiness: database unreachable");
            (StatusCode::SERVICE_UNAVAILABLE, "not ready: database unreachable\n").into_response()
        }
    }
}

async fn metrics(State(state): State<AppState>) -> Response {
    let body = state.metrics().render(state.registry().len());
    ([(header::CONTENT_TYPE, "text/plain; version=0.0.4; charset=utf-8")], body).into_response()
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct Identity {
    tenant: String,
    group: String,
    version: &'static str,
    migration_version: i32,
    published: Published,
}

#[derive(Serialize)]
struct Published {
    services: i64,
    facilities: i64,
    staff: i64,
}

/// `?host=<hostname>`: the tenant to report on; without it, the request's Host header.
#[derive(Deserialize)]
struct IdentityQuery {
    host: Option<String>,
}

/// The tenant a hostname names, with what it has published; 404 (naming no tenant) for a
/// hostname no tenant claims.
async fn identity(
    State(state): State<AppState>,
    Query(q): Query<IdentityQuery>,
    headers: HeaderMap,
) -> Result<Response, AppError> {
    let host = q.host.as_deref().or_else(|| headers.get(header::HOST).and_then(|h| h.to_str().ok()));
    let Some(site) = host.and_then(|h| state.registry().resolve(h)) else {
        return Ok((StatusCode::NOT_FOUND, [(header::CACHE_CONTROL, "no-store")], "no tenant has this hostname\n")
            .into_response());
    };
    identity_of(&state, &site).await
}

async fn identity_of(state: &AppState, site: &Arc<Site>) -> Result<Response, AppError> {
    let counts = state
        .read_one(
            site,
            Stmt::plain(
                "SELECT (SELECT count(*) FROM service WHERE published), (SELECT count(*) FROM facility WHERE published),
                        (SELECT count(*) FROM staff WHERE published), to_regclass('schema_migrations') IS NOT NULL",
            ),
        )
        .await?;
    let Some(counts) = counts.first() else { return Err(AppError::Read(super::db::Error::NoRow)) };
    let migration_version: i32 = if counts.get::<_, bool>(3) {
        let v =
            state.read_one(site, Stmt::plain("SELECT coalesce(max(version), 0)::int FROM schema_migrations")).await?;
        v.first().map(|r| r.get(0)).unwrap_or(0)
    } else {
        0
    };
    let id = Identity {
        tenant: site.slug.clone(),
        group: site.group.clone(),
        version: env!("CARGO_PKG_VERSION"),
        migration_version,
        published: Published { services: counts.get(0), facilities: counts.get(1), staff: counts.get(2) },
    };
    Ok(([(header::CACHE_CONTROL, "no-store")], Json(id)).into_response())
}
