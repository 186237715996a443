//! OpenID Connect login: authorization code flow with PKCE (S256), `state` and `nonce`.
//!
//! The login in progress is stored under the login cookie's hash, so the callback works only
//! in the browser that started the login; it is taken (single use, also across replicas) only
//! after the state matched, the code was exchanged and the ID token verified.

use super::cookies::{self, Kind};
use super::OIDC_CALLBACK_PATH;
use super::{
    finish_login, internal, redirect, store_error, tenant_of, Identity, LoginError, LoginStart, ServicekontoState,
};
use crate::servicekonto::bundid::CitizenAttributes;
use crate::servicekonto::oidc;
use crate::servicekonto::session::Pending;
use crate::servicekonto::Error;
use crate::tenant::Protocol;
use axum::extract::{Query, State};
use axum::http::HeaderMap;
use axum::response::Response;
use serde::Deserialize;

/// Start: the authorization request (state, nonce and PKCE verifier remembered under the login
/// cookie's hash) and the redirect to the provider.
pub(super) async fn start(
    sk: &ServicekontoState,
    LoginStart { tenant, binding, base, next, min_level, .. }: LoginStart<'_>,
) -> Result<(Response, Pending), LoginError> {
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
            min_level,
        },
    )
    .map_err(internal)?;
    let pending =
        Pending::Oidc { tenant: tenant.slug.clone(), state, nonce, code_verifier, redirect_uri, next, min_level };
    Ok((redirect(&url), pending))
}

#[derive(Debug, Deserialize)]
pub(super) struct CallbackQuery {
    code: Option<String>,
    state: Option<String>,
    error: Option<String>,
}

/// `GET /anmelden/oidc/callback`.
pub(super) async fn callback(
    State(sk): State<ServicekontoState>,
    headers: HeaderMap,
    Query(q): Query<CallbackQuery>,
) -> Result<Response, LoginError> {
    let tenant = tenant_of(&sk, &headers)?;
    let binding = tenant.servicekonto.as_ref().filter(|b| b.protocol == Protocol::Oidc).ok_or(LoginError::NoBinding)?;
    let now = sk.clock.now();
    let login_token = cookies::read(&sk, &headers, Kind::Login)
        .ok_or_else(|| LoginError::BadRequest("callback without the login cookie".into()))?;
    let pending = sk.sessions.pending(&tenant.group, login_token, now).await.map_err(store_error)?;
    let Some(Pending::Oidc { tenant: slug, state, nonce, code_verifier, redirect_uri, next, min_level }) = pending
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
        // The provider ended this login: it cannot be finished any more.
        let _ = sk.sessions.take_pending(&tenant.group, login_token, now).await;
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
    if sk.sessions.take_pending(&tenant.group, login_token, now).await.map_err(store_error)?.is_none() {
        return Err(LoginError::BadRequest("the login in progress was already finished".into()));
    }
    finish_login(
        &sk,
        &tenant,
        binding,
        Identity {
            subject: verified.subject,
            attributes: CitizenAttributes {
                given_name: verified.given_name,
                surname: verified.family_name,
                ..CitizenAttributes::default()
            },
            trust_level: verified.trust_level,
            protocol: "oidc",
        },
        min_level,
        &next,
    )
    .await
}

fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}
