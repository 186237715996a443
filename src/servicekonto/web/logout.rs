//! Logout: only by POST, and only from the tenant's own pages.
//!
//! `GET /abmelden` changes nothing; it shows a page with the logout button (a form). `POST
//! /abmelden` is refused (403) when the browser says the request is cross-site
//! (`Sec-Fetch-Site` other than `same-origin`) or sends an `Origin` other than the one the
//! request was addressed to. A POST with neither header (older browsers, scripts) must carry the
//! form's token, derived from the session, which another site cannot read.

use super::cookies::{self, Kind};
use super::{page, redirect, session_of, tenant_of, LoginError, ServicekontoState};
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::Response;
use base64::Engine as _;
use sha2::{Digest, Sha256};

/// Name of the form field with the logout token.
pub const TOKEN_FIELD: &str = "csrf";

/// The logout token of a session token (base64url of SHA-256 over a fixed label and the token).
pub fn token(session_token: &str) -> String {
    let digest = Sha256::new().chain_update(b"portalctl logout\0").chain_update(session_token.as_bytes()).finalize();
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(digest)
}

/// `GET /abmelden`: the logout button (or a note that nobody is logged in).
async fn page_handler(sk: &ServicekontoState, headers: &HeaderMap) -> Result<Response, LoginError> {
    let tenant = tenant_of(sk, headers)?;
    Ok(match session_of(sk, headers, &tenant).await {
        Some((sid, s)) => page(
            StatusCode::OK,
            "Abmelden",
            &format!(
                "<p>Sie sind angemeldet als {}.</p><form method=\"post\" action=\"/abmelden\">\
                 <input type=\"hidden\" name=\"{TOKEN_FIELD}\" value=\"{}\"><button type=\"submit\">Abmelden</button></form>\
                 <p><a href=\"/\">Zur Startseite</a></p>",
                crate::servicekonto::xml::escape(&s.name),
                token(&sid)
            ),
        ),
        None => page(
            StatusCode::OK,
            "Abmelden",
            "<p>Sie sind nicht angemeldet.</p><p><a href=\"/\">Zur Startseite</a></p>",
        ),
    })
}

pub(super) async fn page_get(State(sk): State<ServicekontoState>, headers: HeaderMap) -> Result<Response, LoginError> {
    page_handler(&sk, &headers).await
}

/// Whether a state-changing request comes from the page it was addressed to: `Ok(true)` when
/// the browser says so, `Ok(false)` when it says nothing, an error when it says otherwise.
pub(crate) fn same_origin(sk: &ServicekontoState, headers: &HeaderMap) -> Result<bool, LoginError> {
    let text = |name: &str| headers.get(name).map(|v| v.to_str().unwrap_or("\u{fffd}"));
    let site = text("sec-fetch-site");
    if let Some(site) = site.filter(|s| *s != "same-origin") {
        return Err(LoginError::CrossSite(format!("Sec-Fetch-Site: {site}")));
    }
    let host = headers.get(header::HOST).and_then(|h| h.to_str().ok()).unwrap_or("");
    let ours = format!("{}://{}", sk.public_scheme, host.to_ascii_lowercase());
    match text("origin") {
        Some(o) if o.eq_ignore_ascii_case(&ours) => Ok(true),
        Some(o) => Err(LoginError::CrossSite(format!("Origin {o:?}, expected {ours:?}"))),
        None => Ok(site.is_some()),
    }
}

/// `POST /abmelden`: end the session, clear its cookie, back to the home page.
pub(super) async fn logout(
    State(sk): State<ServicekontoState>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, LoginError> {
    let tenant = tenant_of(&sk, &headers)?;
    let vouched = same_origin(&sk, &headers)?;
    if let Some((sid, _)) = session_of(&sk, &headers, &tenant).await {
        if !vouched {
            let sent = url::form_urlencoded::parse(&body).find(|(k, _)| k == TOKEN_FIELD).map(|(_, v)| v.into_owned());
            if sent.as_deref() != Some(token(&sid).as_str()) {
                return Err(LoginError::CrossSite("logout without Origin, Sec-Fetch-Site or token".into()));
            }
        }
        sk.sessions.remove_session(&tenant.group, &sid).await.map_err(super::store_error)?;
        tracing::info!(tenant = %tenant.slug, "citizen logged out");
    }
    let mut resp = redirect("/");
    resp.headers_mut().append(header::SET_COOKIE, cookies::set(&sk, Kind::Session, "", 0));
    Ok(resp)
}
