//! The login's cookies: names, reading them from a request, and their `Set-Cookie` lines.
//!
//! Over https (production) the names carry the `__Host-` prefix, which browsers accept only
//! with `Secure`, `Path=/` and no `Domain`: the cookie is then bound to the exact host that set
//! it and cannot be planted by a sibling subdomain. The local plain-http mode
//! ([`ServicekontoState::insecure_http_for_tests`](super::ServicekontoState::insecure_http_for_tests))
//! uses the bare names without `Secure`, as browsers refuse both there.
//!
//! - The **session** cookie is `HttpOnly; SameSite=Lax`.
//! - The **login** cookie binds a login in progress to the browser that started it at
//!   `/anmelden`; the ACS and the OIDC callback require it. The SAML HTTP-POST binding
//!   arrives as a cross-site POST from the IdP, which carries only `SameSite=None` cookies, so
//!   over https it is `SameSite=None; Secure` (plain http: no SameSite attribute, as `None`
//!   requires `Secure`). It lives as long as a login may take.

use super::ServicekontoState;
use axum::http::{header, HeaderMap, HeaderValue};

/// Name of the session cookie over https.
pub const SESSION_COOKIE: &str = "__Host-portal_session";
/// Name of the login cookie over https.
pub const LOGIN_COOKIE: &str = "__Host-portal_login";
/// Name of the session cookie in the local plain-http mode.
pub const SESSION_COOKIE_HTTP: &str = "portal_session";
/// Name of the login cookie in the local plain-http mode.
pub const LOGIN_COOKIE_HTTP: &str = "portal_login";

/// Which of the two cookies.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Session,
    Login,
}

/// The cookie's name under the server's settings.
pub fn name(sk: &ServicekontoState, kind: Kind) -> &'static str {
    match (kind, sk.secure_cookies) {
        (Kind::Session, true) => SESSION_COOKIE,
        (Kind::Login, true) => LOGIN_COOKIE,
        (Kind::Session, false) => SESSION_COOKIE_HTTP,
        (Kind::Login, false) => LOGIN_COOKIE_HTTP,
    }
}

/// The value of cookie `kind` in a request, if present and shaped like one of our tokens
/// (43 characters of base64url: anything else cannot be ours and is not looked up).
pub fn read<'a>(sk: &ServicekontoState, headers: &'a HeaderMap, kind: Kind) -> Option<&'a str> {
    let name = name(sk, kind);
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|kv| kv.trim().split_once('='))
        .find(|(k, _)| *k == name)
        .map(|(_, v)| v)
        .filter(|v| v.len() == 43 && v.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_'))
}

/// `Set-Cookie` for cookie `kind` with `value` for `max_age` seconds (0 with an empty value: delete).
pub fn set(sk: &ServicekontoState, kind: Kind, value: &str, max_age: i64) -> HeaderValue {
    let name = name(sk, kind);
    let attrs = match (kind, sk.secure_cookies) {
        (Kind::Session, true) => "; HttpOnly; SameSite=Lax; Secure",
        (Kind::Session, false) => "; HttpOnly; SameSite=Lax",
        (Kind::Login, true) => "; HttpOnly; SameSite=None; Secure",
        (Kind::Login, false) => "; HttpOnly",
    };
    HeaderValue::from_str(&format!("{name}={value}; Path=/; Max-Age={max_age}{attrs}"))
        .expect("cookie values are URL-safe tokens")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::servicekonto::TenantLookup;
    use crate::tenant::Tenant;
    use std::sync::Arc;

    struct Nobody;

    impl TenantLookup for Nobody {
        fn tenant_for_host(&self, _: &str) -> Option<Arc<Tenant>> {
            None
        }
    }

    fn https() -> ServicekontoState {
        ServicekontoState::new("unused".into(), Arc::new(Nobody))
    }

    #[test]
    fn over_https_cookies_are_host_prefixed_and_the_login_cookie_crosses_sites() {
        let sk = https();
        let token = "A".repeat(43);
        assert_eq!(
            set(&sk, Kind::Session, &token, 60).to_str().unwrap(),
            format!("__Host-portal_session={token}; Path=/; Max-Age=60; HttpOnly; SameSite=Lax; Secure")
        );
        assert_eq!(
            set(&sk, Kind::Login, &token, 900).to_str().unwrap(),
            format!("__Host-portal_login={token}; Path=/; Max-Age=900; HttpOnly; SameSite=None; Secure")
        );
        let http = https().insecure_http_for_tests(8080);
        let login = set(&http, Kind::Login, &token, 900);
        assert_eq!(login.to_str().unwrap(), format!("portal_login={token}; Path=/; Max-Age=900; HttpOnly"));
    }

    #[test]
    fn only_our_cookie_name_and_token_shape_are_read() {
        let sk = https();
        let token = "b".repeat(43);
        let headers = |v: &str| {
            let mut h = HeaderMap::new();
            h.insert(header::COOKIE, HeaderValue::from_str(v).unwrap());
            h
        };
        let h = headers(&format!("portal_session=x; __Host-portal_session={token}"));
        assert_eq!(read(&sk, &h, Kind::Session), Some(token.as_str()));
        assert_eq!(
            read(&sk, &headers(&format!("portal_session={token}")), Kind::Session),
            None,
            "bare name over https"
        );
        assert_eq!(read(&sk, &headers("__Host-portal_session=short"), Kind::Session), None);
        assert_eq!(read(&sk, &headers(&format!("__Host-portal_login={token}")), Kind::Session), None);
    }
}
