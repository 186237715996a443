//! SAML 2.0 login: a signed AuthnRequest at `/anmelden` — by HTTP-POST (a small page whose form
//! the browser posts to the IdP) for the BundID profile, by HTTP-Redirect for other IdPs that
//! offer it — and the response by HTTP-POST at the ACS.
//!
//! The ACS refuses, before anything of the response is parsed, a tenant that does not log in
//! with SAML and a browser without the login cookie set at `/anmelden` (a response posted into
//! a browser that did not start this login — login CSRF). The login in progress is read, the
//! response fully verified against it, and only then taken (single use, also across
//! replicas): a forged or unsigned post cannot use up a citizen's login in progress.

use super::cookies::{self, Kind};
use super::{
    finish_login, internal, page, redirect, store_error, tenant_of, Identity, LoginError, LoginStart, ServicekontoState,
};
use super::{ACS_PATH, CLOCK_SKEW};
use crate::portal::templates::escape_html as escape;
use crate::servicekonto::bundid::RequestExtension;
use crate::servicekonto::metadata::SsoBinding;
use crate::servicekonto::saml;
use crate::servicekonto::session::Pending;
use crate::tenant::{Protocol, Provider};
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::Response;
use base64::Engine as _;
use sha2::{Digest, Sha256};

/// The one script of the HTTP-POST page: it submits the form. The page's
/// Content-Security-Policy allows exactly this script by its hash ([`post_page_csp`]); without
/// script the citizen presses the form's button.
pub const AUTO_SUBMIT_SCRIPT: &str = "document.getElementById(\"saml-post\").submit();";

/// The Content-Security-Policy of the HTTP-POST page: the portal's policy plus `script-src`
/// with the SHA-256 hash of [`AUTO_SUBMIT_SCRIPT`] (no `'unsafe-inline'`).
pub fn post_page_csp() -> String {
    let hash = base64::engine::general_purpose::STANDARD.encode(Sha256::digest(AUTO_SUBMIT_SCRIPT.as_bytes()));
    format!("{}; script-src 'sha256-{hash}'", crate::portal::http::CONTENT_SECURITY_POLICY)
}

/// Start: the AuthnRequest (its ID remembered under the login cookie's hash), sent to the IdP by
/// the binding the profile and the IdP's metadata choose ([`crate::servicekonto::metadata::IdpMetadata::sso_endpoint`]).
pub(super) async fn start(
    sk: &ServicekontoState,
    LoginStart { tenant, binding, base, next, min_level, now }: LoginStart<'_>,
) -> Result<(Response, Pending), LoginError> {
    let url = binding.idp_metadata_url.as_deref().ok_or(LoginError::NoBinding)?;
    let entity_id = binding.entity_id.as_deref().ok_or(LoginError::NoBinding)?;
    let idp = sk.idp_metadata(url).await.map_err(internal)?;
    let (sso_binding, destination) = idp.sso_endpoint(binding.provider == Provider::Bundid).ok_or_else(|| {
        LoginError::Unavailable(format!("{url}: no SingleSignOnService for HTTP-Redirect or HTTP-POST"))
    })?;
    let keys = sk.sp_keys(tenant, binding).map_err(internal)?;
    let acs_url = format!("{base}{ACS_PATH}");
    let id = format!("_{}", hex(&rand::random::<[u8; 20]>()));
    let params = saml::AuthnRequestParams {
        id: &id,
        entity_id,
        acs_url: &acs_url,
        destination,
        min_level,
        extension: RequestExtension::of(binding, &tenant.display_name),
        relay_state: relay_state(&next),
        now,
    };
    let resp = match sso_binding {
        SsoBinding::Redirect => redirect(&saml::redirect_url(&params, &keys).map_err(internal)?.url),
        SsoBinding::Post => post_page(&saml::post_form(&params, &keys).map_err(internal)?),
    };
    let pending = Pending::Saml { tenant: tenant.slug.clone(), request_id: id.clone(), acs_url, next, min_level };
    Ok((resp, pending))
}

/// The HTTP-POST binding's page (SAML bindings §3.5.4): a form with `SAMLRequest` and
/// `RelayState` that posts to the IdP, submitted by [`AUTO_SUBMIT_SCRIPT`] or by its button.
/// Shown in the tenant's layout like the other pages of the login routes.
fn post_page(form: &saml::PostForm) -> Response {
    let relay = form
        .relay_state
        .as_deref()
        .map(|r| format!("<input type=\"hidden\" name=\"RelayState\" value=\"{}\">", escape(r)))
        .unwrap_or_default();
    let inner = format!(
        "<p>Sie werden zur Anmeldung an Ihr Servicekonto weitergeleitet. Falls das nicht von selbst geschieht, \
         wählen Sie „Weiter zum Servicekonto“.</p>\
         <form id=\"saml-post\" method=\"post\" action=\"{}\">\
         <input type=\"hidden\" name=\"SAMLRequest\" value=\"{}\">{relay}\
         <button type=\"submit\">Weiter zum Servicekonto</button></form>\
         <script>{AUTO_SUBMIT_SCRIPT}</script>",
        escape(&form.action),
        escape(&form.saml_request),
    );
    let mut resp = page(StatusCode::OK, "Weiterleitung zum Servicekonto", &inner);
    if let Ok(csp) = HeaderValue::from_str(&post_page_csp()) {
        resp.headers_mut().insert(header::CONTENT_SECURITY_POLICY, csp);
    }
    resp
}

/// The RelayState sent along: the return path where it fits the binding's limit of 80 bytes (SAML
/// bindings §3.4.3 and §3.5.3), else none. The ACS never trusts it: the return path checked at the
/// start is kept with the login in progress.
fn relay_state(next: &str) -> Option<&str> {
    (next.len() <= saml::RELAY_STATE_MAX).then_some(next)
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// `POST /anmelden/saml/acs`. The place to return to is the one checked and stored at
/// `/anmelden`; the posted RelayState is not trusted for it.
pub(super) async fn acs(
    State(sk): State<ServicekontoState>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, LoginError> {
    let tenant = tenant_of(&sk, &headers)?;
    let binding = tenant.servicekonto.as_ref().filter(|b| b.protocol == Protocol::Saml).ok_or(LoginError::NoBinding)?;
    let login_token = cookies::read(&sk, &headers, Kind::Login)
        .ok_or_else(|| LoginError::BadRequest("SAML response without the login cookie of this browser".into()))?;
    let now = sk.clock.now();
    let pending = sk.sessions.pending(&tenant.group, login_token, now).await.map_err(store_error)?;
    let Some(Pending::Saml { tenant: slug, request_id, acs_url, next, min_level }) = pending else {
        return Err(LoginError::BadRequest("no SAML login in progress for this browser".into()));
    };
    if slug != tenant.slug {
        return Err(LoginError::BadRequest(format!("login was started for tenant {slug}, not {}", tenant.slug)));
    }
    let saml_response = url::form_urlencoded::parse(&body)
        .find(|(k, _)| k == "SAMLResponse")
        .map(|(_, v)| v.into_owned())
        .ok_or_else(|| LoginError::BadRequest("POST without SAMLResponse".into()))?;
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
    let identity = saml::Verifier::global().validate(saml_response, expectations).await.map_err(|e| match e {
        saml::SamlError::Busy => LoginError::Busy(e.to_string()),
        e if e.is_malformed() => LoginError::BadRequest(format!("tenant {}: {e}", tenant.slug)),
        e => LoginError::Rejected(format!("tenant {}: {e}", tenant.slug)),
    })?;
    // Verified: now use the login up. Another replica (or a second tab) may have been first.
    if sk.sessions.take_pending(&tenant.group, login_token, now).await.map_err(store_error)?.is_none() {
        return Err(LoginError::BadRequest("the login in progress was already finished".into()));
    }
    finish_login(
        &sk,
        &tenant,
        binding,
        Identity {
            subject: identity.subject,
            attributes: identity.attributes,
            trust_level: identity.trust_level,
            protocol: "saml",
        },
        min_level,
        &next,
    )
    .await
}
