//! The Servicekonto binding: citizen login through a state's citizen account (the federal
//! BundID and other SAML 2.0 accounts, or OpenID Connect providers), per tenant.
//!
//! - [`bundid`]: the BundID profile: environments, the `akdb` request extension, attributes by OID.
//! - [`keys`]: SP key pairs and certificates per tenant and environment (files, mode 0600).
//! - [`metadata`]: SP metadata for the IdP operator; parsing IdP metadata.
//! - [`saml`], [`xml`], [`xmldsig`], [`xmlenc`]: AuthnRequest (HTTP-Redirect, signed) and
//!   Response validation (HTTP-POST; enveloped XML signature with exclusive c14n; encrypted
//!   assertions), with a bounded, non-recursive parser and off-thread verification.
//! - [`samples`]: a well-formed Response and hostile shapes, for tests, fuzzing and benchmarks.
//! - [`oidc`]: authorization code flow with PKCE, ID token verification.
//! - [`check`]: IdP metadata/discovery reachability and certificate expiry.
//! - [`rebind`]: moving a group to another provider, editing tenant files minimally.
//! - [`web`]: the axum routes (`/anmelden`, `/abmelden`, …) the portal server mounts.
//!
//! **Invariant:** key material and client secrets are never printed, logged or written to
//! tenant files.

pub mod bundid;
pub mod check;
pub mod keys;
pub mod metadata;
pub mod oidc;
pub mod rebind;
pub mod saml;
pub mod samples;
pub mod session;
pub mod trust;
pub mod web;
pub mod xml;
pub mod xmldsig;
pub mod xmlenc;

pub use session::{LoginStore, Session};
pub use web::{routes, Clock, ServicekontoState, SystemClock, TenantLookup};

use std::path::{Path, PathBuf};
use std::time::Duration;

/// Default secrets directory in local mode.
pub const DEFAULT_SECRETS_DIR: &str = ".portalctl/secrets";

pub type Result<T, E = Error> = std::result::Result<T, E>;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("tenant {tenant} has no SAML Servicekonto binding")]
    NotSaml { tenant: String },
    #[error("tenant {tenant} has no Servicekonto binding")]
    NoBinding { tenant: String },
    #[error("tenant {tenant}: servicekonto.{field} is not set")]
    MissingField { tenant: String, field: &'static str },
    #[error("cannot access {path}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("key file {path}: {reason}")]
    KeyFile { path: PathBuf, reason: String },
    #[error("cryptography: {0}")]
    Crypto(String),
    #[error("template: {0}")]
    Template(String),
    #[error("IdP metadata: {0}")]
    Metadata(String),
    #[error("certificate: {0}")]
    Certificate(String),
    #[error("{url}: {reason}")]
    Http { url: String, reason: String },
    #[error("{url}: only https is allowed (http only for 127.0.0.1/localhost)")]
    InsecureUrl { url: String },
    #[error("OIDC discovery at {url}: {reason}")]
    Discovery { url: String, reason: String },
    #[error("ID token rejected: {0}")]
    IdToken(String),
    #[error("client secret of tenant {tenant}: {reason}")]
    ClientSecret { tenant: String, reason: String },
    #[error("{path}: {reason}")]
    Edit { path: String, reason: String },
    #[error("the edited tenant files do not validate:\n{0}")]
    Invalid(String),
    #[error("{0}")]
    Rebind(String),
}

impl Error {
    pub(crate) fn io(path: &Path, source: std::io::Error) -> Error {
        Error::Io { path: path.to_path_buf(), source }
    }
}

/// Whether a URL may be fetched: https anywhere, http only on the loopback interface.
pub fn url_allowed(url: &url::Url) -> bool {
    match url.scheme() {
        "https" => true,
        "http" => matches!(
            url.host(),
            Some(url::Host::Domain("localhost"))
                | Some(url::Host::Ipv4(std::net::Ipv4Addr::LOCALHOST))
                | Some(url::Host::Ipv6(std::net::Ipv6Addr::LOCALHOST))
        ),
        _ => false,
    }
}

/// An HTTP client for IdP endpoints: rustls, timeouts, redirects only to allowed URLs.
pub fn http_client() -> reqwest::Client {
    reqwest::Client::builder()
        .use_rustls_tls()
        .connect_timeout(Duration::from_secs(5))
        .timeout(Duration::from_secs(15))
        .redirect(reqwest::redirect::Policy::custom(|attempt| {
            if attempt.previous().len() >= 5 {
                attempt.error("too many redirects")
            } else if url_allowed(attempt.url()) {
                attempt.follow()
            } else {
                attempt.error("redirect to a URL that is not https")
            }
        }))
        .user_agent(concat!("portalctl/", env!("CARGO_PKG_VERSION")))
        .build()
        .expect("static reqwest configuration")
}

/// The full chain of an error, for messages.
pub(crate) fn error_chain(e: &dyn std::error::Error) -> String {
    let mut s = e.to_string();
    let mut cur = e.source();
    while let Some(c) = cur {
        let m = c.to_string();
        if !s.contains(&m) {
            s.push_str(": ");
            s.push_str(&m);
        }
        cur = c.source();
    }
    s
}

/// GET a URL (allowed schemes only) and return the body text.
pub async fn http_get_text(http: &reqwest::Client, url: &str) -> Result<String> {
    let parsed = url::Url::parse(url).map_err(|e| Error::Http { url: url.to_string(), reason: e.to_string() })?;
    if !url_allowed(&parsed) {
        return Err(Error::InsecureUrl { url: url.to_string() });
    }
    let resp =
        http.get(parsed).send().await.map_err(|e| Error::Http { url: url.to_string(), reason: error_chain(&e) })?;
    let status = resp.status();
    if !status.is_success() {
        return Err(Error::Http { url: url.to_string(), reason: format!("HTTP {status}") });
    }
    resp.text().await.map_err(|e| Error::Http { url: url.to_string(), reason: error_chain(&e) })
}

/// GET a URL and parse JSON.
pub async fn http_get_json<T: serde::de::DeserializeOwned>(http: &reqwest::Client, url: &str) -> Result<T> {
    let text = http_get_text(http, url).await?;
    serde_json::from_str(&text)
        .map_err(|e| Error::Http { url: url.to_string(), reason: format!("not valid JSON: {e}") })
}
