//! One error type for request handlers: the client sees a bare error page — 503 with
//! `Retry-After` when the database or the pool is unavailable for now, 500 otherwise — and
//! the log gets the whole chain, rate-limited per kind ([`LogLimiter`]) so that an outage
//! writes a few lines rather than one per request.

use axum::http::{header, StatusCode};
use axum::response::{Html, IntoResponse, Response};
use std::collections::HashMap;
use std::fmt::Write as _;
use std::sync::{LazyLock, Mutex};
use std::time::{Duration, Instant};
use tokio_postgres::error::SqlState;

#[derive(Debug, thiserror::Error)]
pub enum AppError {
    #[error("database: {0}")]
    Db(#[from] tokio_postgres::Error),
    #[error("database pool: {0}")]
    Pool(#[from] deadpool_postgres::PoolError),
    #[error("template: {0}")]
    Template(#[from] tera::Error),
    #[error("content: {0}")]
    Content(#[from] crate::content::Error),
    #[error(transparent)]
    Read(#[from] super::db::Error),
}

/// What an error page says, kept in the response's extensions so that the portal can show it in the tenant's
/// layout ([`super::themed_errors`]) when the request named a tenant; otherwise the plain page is sent as it is.
#[derive(Debug, Clone)]
pub struct ErrorPage {
    /// Plain text.
    pub title: String,
    /// HTML, escaped by whoever made it.
    pub html: String,
}

/// A plain, valid German error page (no tenant known), carrying its [`ErrorPage`] for theming.
pub fn plain_page(status: StatusCode, title: &str, html: &str) -> Response {
    let escaped = super::templates::escape_html(title);
    let body = format!(
        "<!doctype html>\n<html lang=\"de\"><head><meta charset=\"utf-8\">\
         <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\"><title>{escaped}</title></head>\
         <body><main><h1>{escaped}</h1>{html}</main></body></html>\n"
    );
    let mut res = (status, [(header::CACHE_CONTROL, "no-store")], Html(body)).into_response();
    res.extensions_mut().insert(ErrorPage { title: title.to_string(), html: html.to_string() });
    res
}

/// Seconds a client is asked to wait (`Retry-After`) when the server is unavailable for now.
pub const RETRY_AFTER_SECS: u64 = 5;

impl AppError {
    /// The database or the pool is unavailable for now (unreachable, shutting down, no
    /// connection free in time, a statement or lock timeout): the client should come back
    /// later; nothing is wrong with its request.
    pub fn is_unavailable(&self) -> bool {
        match self {
            AppError::Db(e) | AppError::Read(super::db::Error::Db(e)) => db_unavailable(e),
            AppError::Pool(e) | AppError::Read(super::db::Error::Pool(e)) => pool_unavailable(e),
            _ => false,
        }
    }
}

fn pool_unavailable(e: &deadpool_postgres::PoolError) -> bool {
    use deadpool_postgres::PoolError;
    match e {
        PoolError::Timeout(_) | PoolError::Closed => true,
        PoolError::Backend(e) => db_unavailable(e),
        _ => false,
    }
}

fn db_unavailable(e: &tokio_postgres::Error) -> bool {
    if e.is_closed() {
        return true;
    }
    match e.code() {
        Some(code) => {
            [
                SqlState::QUERY_CANCELED,
                SqlState::LOCK_NOT_AVAILABLE,
                SqlState::ADMIN_SHUTDOWN,
                SqlState::CRASH_SHUTDOWN,
                SqlState::CANNOT_CONNECT_NOW,
                SqlState::TOO_MANY_CONNECTIONS,
            ]
            .contains(code)
                || code.code().starts_with("08")
        }
        // No SQLSTATE: the connection itself failed (refused, reset, timed out).
        None => std::error::Error::source(e).is_some_and(|s| s.is::<std::io::Error>()),
    }
}

/// The error and all its sources on one line.
pub fn chain(err: &dyn std::error::Error) -> String {
    let mut s = err.to_string();
    let mut src = err.source();
    while let Some(e) = src {
        let _ = write!(s, ": {e}");
        src = e.source();
    }
    s
}

/// What [`LogLimiter::check`] decided for one occurrence.
#[derive(Debug, PartialEq, Eq)]
pub enum LogDecision {
    /// Log it, saying how many of the same kind were left out since the last one logged.
    Log { suppressed: u64 },
    /// Leave it out (it is counted).
    Suppress,
}

/// Rate limit for repeated log lines: per kind, the first occurrence in each interval is
/// logged (with the count of those left out before it); the others are only counted.
pub struct LogLimiter {
    interval: Duration,
    kinds: Mutex<HashMap<&'static str, (Instant, u64)>>,
}

impl LogLimiter {
    pub fn new(interval: Duration) -> LogLimiter {
        LogLimiter { interval, kinds: Mutex::new(HashMap::new()) }
    }

    pub fn check(&self, kind: &'static str) -> LogDecision {
        self.check_at(kind, Instant::now())
    }

    fn check_at(&self, kind: &'static str, now: Instant) -> LogDecision {
        let mut kinds = self.kinds.lock().unwrap_or_else(|e| e.into_inner());
        match kinds.get_mut(kind) {
            Some((logged, suppressed)) if now.duration_since(*logged) < self.interval => {
                *suppressed += 1;
                LogDecision::Suppress
            }
            Some((logged, suppressed)) => {
                let n = std::mem::take(suppressed);
                *logged = now;
                LogDecision::Log { suppressed: n }
            }
            None => {
                kinds.insert(kind, (now, 0));
                LogDecision::Log { suppressed: 0 }
            }
        }
    }
}

/// The request error log's limiter: one line per kind every 10 seconds.
pub static ERROR_LOG: LazyLock<LogLimiter> = LazyLock::new(|| LogLimiter::new(Duration::from_secs(10)));

/// 503 with `Retry-After`: the server cannot answer now.
pub fn unavailable() -> Response {
    let mut res = plain_page(
        StatusCode::SERVICE_UNAVAILABLE,
        "Vorübergehend nicht verfügbar",
        "<p>Das Serviceportal ist vorübergehend nicht verfügbar. Bitte versuchen Sie es in wenigen Sekunden erneut.</p>",
    );
    res.headers_mut().insert(header::RETRY_AFTER, RETRY_AFTER_SECS.into());
    res
}

impl IntoResponse for AppError {
    fn into_response(self) -> Response {
        if self.is_unavailable() {
            if let LogDecision::Log { suppressed } = ERROR_LOG.check("database unavailable") {
                tracing::warn!(error = %chain(&self), suppressed, "request failed: database unavailable");
            }
            return unavailable();
        }
        if let LogDecision::Log { suppressed } = ERROR_LOG.check("request failed") {
            tracing::error!(error = %chain(&self), suppressed, "request failed");
        }
        plain_page(
            StatusCode::INTERNAL_SERVER_ERROR,
            "Fehler",
            "<p>Ein interner Fehler ist aufgetreten. Bitte versuchen Sie es später erneut.</p>",
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn repeated_errors_are_logged_once_per_interval_with_a_count() {
        let l = LogLimiter::new(Duration::from_secs(10));
        let t0 = Instant::now();
        assert_eq!(l.check_at("a", t0), LogDecision::Log { suppressed: 0 });
        for i in 1..1000 {
            assert_eq!(l.check_at("a", t0 + Duration::from_millis(i)), LogDecision::Suppress);
        }
        assert_eq!(l.check_at("b", t0), LogDecision::Log { suppressed: 0 }, "kinds are counted apart");
        assert_eq!(l.check_at("a", t0 + Duration::from_secs(10)), LogDecision::Log { suppressed: 999 });
        assert_eq!(l.check_at("a", t0 + Duration::from_secs(11)), LogDecision::Suppress);
    }

    #[test]
    fn pool_timeouts_are_unavailable_and_other_errors_are_not() {
        use deadpool_postgres::{PoolError, TimeoutType};
        assert!(AppError::Pool(PoolError::Timeout(TimeoutType::Wait)).is_unavailable());
        assert!(AppError::Read(super::super::db::Error::Pool(PoolError::Closed)).is_unavailable());
        assert!(!AppError::Read(super::super::db::Error::NoRow).is_unavailable());
        let res = AppError::Pool(PoolError::Timeout(TimeoutType::Wait)).into_response();
        assert_eq!(res.status(), StatusCode::SERVICE_UNAVAILABLE);
        assert_eq!(res.headers()[header::RETRY_AFTER], "5");
    }
}
