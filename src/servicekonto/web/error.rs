//! A failed login step: a short German page for the citizen (with the right status code);
//! the details go to the log only.

use crate::servicekonto::{trust, Error};
use crate::tenant::TrustLevel;
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};

/// A failed login step, shown as a short German page; details go to the log only.
#[derive(Debug)]
pub(crate) enum LoginError {
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
    /// A state-changing request that did not come from the tenant's own pages.
    CrossSite(String),
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
            LoginError::CrossSite(why) => {
                tracing::warn!(reason = %why, "cross-site request refused");
                (
                    StatusCode::FORBIDDEN,
                    "Anfrage abgelehnt",
                    "Diese Anfrage kam nicht von den Seiten dieses Portals und wurde nicht ausgeführt.".to_string(),
                )
            }
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
        let busy = matches!(self, LoginError::Busy(_));
        let mut resp = page(
            status,
            title,
            &format!("<p>{}</p><p><a href=\"/\">Zur Startseite</a></p>", crate::servicekonto::xml::escape(&text)),
        );
        if busy {
            resp.headers_mut().insert(axum::http::header::RETRY_AFTER, axum::http::HeaderValue::from_static("5"));
        }
        resp
    }
}

/// A short German page of the login routes: `title` (plain text) and `inner` (HTML, escaped by the caller).
pub(crate) fn page(status: StatusCode, title: &str, inner: &str) -> Response {
    let escaped = crate::servicekonto::xml::escape(title);
    let body = format!(
        "<!DOCTYPE html>\n<html lang=\"de\"><head><meta charset=\"utf-8\"><meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\
         <title>{escaped}</title></head><body><main><h1>{escaped}</h1>{inner}</main></body></html>\n"
    );
    let mut resp =
        (status, [(header::CONTENT_TYPE, "text/html; charset=utf-8"), (header::CACHE_CONTROL, "no-store")], body)
            .into_response();
    // The portal shows it in the tenant's layout when the host names a tenant.
    resp.extensions_mut().insert(crate::portal::error::ErrorPage { title: title.to_string(), html: inner.to_string() });
    resp
}

pub(crate) fn internal(e: Error) -> LoginError {
    match e {
        Error::Http { .. } | Error::InsecureUrl { .. } | Error::Discovery { .. } | Error::Metadata(_) => {
            LoginError::Unavailable(e.to_string())
        }
        other => LoginError::Internal(other.to_string()),
    }
}

pub(crate) fn store_error(e: crate::servicekonto::session::Error) -> LoginError {
    LoginError::Internal(e.to_string())
}
