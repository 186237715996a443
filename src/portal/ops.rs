//! Operations endpoints: liveness, readiness, Prometheus metrics, and the identity endpoint
//! `portalctl status` uses to verify that a hostname serves the right tenant.

use super::db::Stmt;
use super::error::AppError;
use super::{AppState, TenantCtx};
use axum::extract::State;
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use serde::Serialize;

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/healthz", get(healthz))
        .route("/readyz", get(readyz))
        .route("/metrics", get(metrics))
        .route("/.well-known/portalctl/identity", get(identity))
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

async fn identity(State(state): State<AppState>, ctx: TenantCtx) -> Result<Response, AppError> {
    let counts = state
        .read_one(
            &ctx.site,
            Stmt::plain(
                "SELECT (SELECT count(*) FROM service WHERE published), (SELECT count(*) FROM facility WHERE published),
                        (SELECT count(*) FROM staff WHERE published), to_regclass('schema_migrations') IS NOT NULL",
            ),
        )
        .await?;
    let Some(counts) = counts.first() else { return Err(AppError::Read(super::db::Error::NoRow)) };
    let migration_version: i32 = if counts.get::<_, bool>(3) {
        let v = state
            .read_one(&ctx.site, Stmt::plain("SELECT coalesce(max(version), 0)::int FROM schema_migrations"))
            .await?;
        v.first().map(|r| r.get(0)).unwrap_or(0)
    } else {
        0
    };
    let id = Identity {
        tenant: ctx.site.slug.clone(),
        group: ctx.site.group.clone(),
        version: env!("CARGO_PKG_VERSION"),
        migration_version,
        published: Published { services: counts.get(0), facilities: counts.get(1), staff: counts.get(2) },
    };
    Ok(([(header::CACHE_CONTROL, "no-store")], Json(id)).into_response())
}
