//! One error type for request handlers: the client sees a bare 500 page, the log gets
//! the whole chain.

use axum::http::StatusCode;
use axum::response::{Html, IntoResponse, Response};
use std::fmt::Write as _;

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

impl IntoResponse for AppError {
    fn into_response(self) -> Response {
        tracing::error!(error = %chain(&self), "request failed");
        (
            StatusCode::INTERNAL_SERVER_ERROR,
            Html("<!doctype html><html lang=\"de\"><title>Fehler</title><h1>Ein interner Fehler ist aufgetreten.</h1><p>Bitte versuchen Sie es später erneut.</p></html>"),
        )
            .into_response()
    }
}
