//! Checking bindings against their identity providers: SAML IdP metadata (reachable, parses,
//! has a redirect SSO endpoint and signing certificates) or OIDC discovery plus JWKS; and the
//! remaining validity of every IdP certificate found.

use super::bundid;
use super::metadata::{cert_info, parse_idp_metadata};
use super::{http_get_text, oidc, Error};
use crate::tenant::{Environment, Protocol, Provider, Tenant};
use base64::Engine as _;
use futures::stream::{self, StreamExt as _};
use serde::Serialize;
use std::collections::HashMap;
use std::sync::Arc;
use time::{Duration, OffsetDateTime};

/// Outcome of one binding's check, worst last.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Status {
    Ok,
    /// A certificate expires within the minimum validity (or has expired while another is valid).
    Warning,
    /// The metadata is invalid or every certificate has expired.
    Invalid,
    /// The IdP could not be reached.
    Unreachable,
}

impl Status {
    pub fn as_str(self) -> &'static str {
        match self {
            Status::Ok => "ok",
            Status::Warning => "warning",
            Status::Invalid => "invalid",
            Status::Unreachable => "unreachable",
        }
    }
}

/// One IdP certificate.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct CertReport {
    pub subject: String,
    #[serde(with = "time::serde::rfc3339")]
    pub not_after: OffsetDateTime,
    pub days_left: i64,
}

/// The check of one tenant's binding.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Report {
    pub tenant: String,
    pub group: String,
    pub provider: String,
    /// The metadata URL or issuer checked.
    pub source: String,
    pub status: Status,
    pub certificates: Vec<CertReport>,
    pub message: String,
}

/// What one fetch of a source found (shared by every tenant bound to it).
#[derive(Debug, Clone)]
struct SourceResult {
    status: Status,
    certificates: Vec<CertReport>,
    message: String,
    /// SAML: the entity ID the metadata names.
    entity_id: Option<String>,
}

/// Check every bound tenant; sources shared by several tenants are fetched once.
pub async fn check_all(
    http: &reqwest::Client,
    tenants: &[&Tenant],
    min_validity: Duration,
    now: OffsetDateTime,
) -> Vec<Report> {
    let mut sources: Vec<(Protocol, String)> = Vec::new();
    for t in tenants {
        if let Some(src) = source_of(t) {
            if !sources.contains(&src) {
                sources.push(src);
            }
        }
    }
    let results: HashMap<String, Arc<SourceResult>> = stream::iter(sources)
        .map(|src| async move {
            let r = check_source(http, src.0, &src.1, min_validity, now).await;
            (key(&src), Arc::new(r))
        })
        .buffer_unordered(8)
        .collect()
        .await;
    tenants
        .iter()
        .map(|t| {
            let provider = t.servicekonto.as_ref().map(|b| b.provider.as_str().to_string()).unwrap_or_default();
            match source_of(t) {
                Some(src) => {
                    let r = &results[&key(&src)];
                    let (status, message) = match wrong_bundid_environment(t, r.entity_id.as_deref()) {
                        Some(why) => (Status::Invalid, why),
                        None => (r.status, r.message.clone()),
                    };
                    Report {
                        tenant: t.slug.clone(),
                        group: t.group.clone(),
                        provider,
                        source: src.1,
                        status,
                        certificates: r.certificates.clone(),
                        message,
                    }
                }
                None => Report {
                    tenant: t.slug.clone(),
                    group: t.group.clone(),
                    provider,
                    source: String::new(),
                    status: Status::Invalid,
                    certificates: Vec::new(),
                    message: match &t.servicekonto {
                        None => "no Servicekonto binding".into(),
                        Some(b) if b.protocol == Protocol::Saml => "servicekonto.idpMetadataUrl is not set".into(),
                        Some(_) => "servicekonto.issuer is not set".into(),
                    },
                },
            }
        })
        .collect()
}

/// A BundID binding whose IdP metadata is BundID's other environment: logins would go to the
/// registration the tenant is not bound to.
fn wrong_bundid_environment(t: &Tenant, entity_id: Option<&str>) -> Option<String> {
    let b = t.servicekonto.as_ref().filter(|b| b.provider == Provider::Bundid)?;
    let entity_id = entity_id?;
    let other = [Environment::Integration, Environment::Production]
        .into_iter()
        .find(|e| *e != b.environment && bundid::idp_entity_id(*e) == entity_id)?;
    Some(format!(
        "the IdP metadata is BundID's {} environment ({entity_id}), the binding's environment is {} ({})",
        other.as_str(),
        b.environment.as_str(),
        bundid::idp_entity_id(b.environment)
    ))
}

fn key(src: &(Protocol, String)) -> String {
    format!("{:?} {}", src.0, src.1)
}

fn source_of(t: &Tenant) -> Option<(Protocol, String)> {
    let b = t.servicekonto.as_ref()?;
    match b.protocol {
        Protocol::Saml => b.idp_metadata_url.clone().map(|u| (Protocol::Saml, u)),
        Protocol::Oidc => b.issuer.clone().map(|u| (Protocol::Oidc, u)),
    }
}

fn unreachable_or_invalid(e: Error) -> SourceResult {
    let status = match e {
        Error::Http { .. } => Status::Unreachable,
        _ => Status::Invalid,
    };
    SourceResult { status, certificates: Vec::new(), message: e.to_string(), entity_id: None }
}

async fn check_source(
    http: &reqwest::Client,
    protocol: Protocol,
    source: &str,
    min_validity: Duration,
    now: OffsetDateTime,
) -> SourceResult {
    let mut entity_id = None;
    let ders: Vec<Vec<u8>> = match protocol {
        Protocol::Saml => {
            let text = match http_get_text(http, source).await {
                Ok(t) => t,
                Err(e) => return unreachable_or_invalid(e),
            };
            match parse_idp_metadata(&text) {
                Ok(md) => {
                    entity_id = Some(md.entity_id);
                    md.signing_certs
                }
                Err(e) => {
                    return SourceResult {
                        status: Status::Invalid,
                        certificates: Vec::new(),
                        message: e.to_string(),
                        entity_id: None,
                    }
                }
            }
        }
        Protocol::Oidc => {
            let d = match oidc::discover(http, source).await {
                Ok(d) => d,
                Err(e) => return unreachable_or_invalid(e),
            };
            let jwks = match oidc::fetch_jwks(http, &d.jwks_uri).await {
                Ok(j) => j,
                Err(e) => return unreachable_or_invalid(e),
            };
            if jwks.keys.is_empty() {
                return SourceResult {
                    status: Status::Invalid,
                    certificates: Vec::new(),
                    message: format!("{}: the JWKS holds no keys", d.jwks_uri),
                    entity_id: None,
                };
            }
            // Certificates only where the JWKS carries them (x5c); bare keys do not expire.
            jwks.keys
                .iter()
                .filter_map(|k| k.common.x509_chain.as_ref().and_then(|c| c.first()))
                .filter_map(|b64| base64::engine::general_purpose::STANDARD.decode(b64).ok())
                .collect()
        }
    };
    let mut certificates = Vec::new();
    for der in &ders {
        match cert_info(der) {
            Ok(info) => certificates.push(CertReport {
                subject: info.subject,
                not_after: info.not_after,
                days_left: (info.not_after - now).whole_days(),
            }),
            Err(e) => {
                return SourceResult { status: Status::Invalid, certificates, message: e.to_string(), entity_id };
            }
        }
    }
    SourceResult { entity_id, ..assess(certificates, min_validity, now, protocol) }
}

/// Judge a source by its certificates. Pure.
fn assess(
    certificates: Vec<CertReport>,
    min_validity: Duration,
    now: OffsetDateTime,
    protocol: Protocol,
) -> SourceResult {
    let limit = now + min_validity;
    let valid = certificates.iter().filter(|c| c.not_after > now).count();
    let soon: Vec<&CertReport> = certificates.iter().filter(|c| c.not_after <= limit).collect();
    let (status, message) = if !certificates.is_empty() && valid == 0 {
        (Status::Invalid, "every IdP signing certificate has expired".to_string())
    } else if let Some(c) = soon.first() {
        (
            Status::Warning,
            format!("certificate {:?} expires in {} day(s) ({})", c.subject, c.days_left, c.not_after.date()),
        )
    } else if certificates.is_empty() {
        (Status::Ok, if protocol == Protocol::Oidc { "JWKS keys without certificates".into() } else { String::new() })
    } else {
        (Status::Ok, format!("{} certificate(s) valid beyond {} day(s)", certificates.len(), min_validity.whole_days()))
    };
    SourceResult { status, certificates, message, entity_id: None }
}

/// Parse a duration like `30d`, `12h` or `90m`.
pub fn parse_min_validity(s: &str) -> Result<Duration, String> {
    let s = s.trim();
    let (num, unit) = s.split_at(s.find(|c: char| !c.is_ascii_digit()).unwrap_or(s.len()));
    let n: i64 = num.parse().map_err(|_| format!("{s:?} is not a duration like 30d, 12h or 90m"))?;
    match unit {
        "d" | "" => Ok(Duration::days(n)),
        "h" => Ok(Duration::hours(n)),
        "m" => Ok(Duration::minutes(n)),
        _ => Err(format!("{s:?}: unknown unit {unit:?}; use d, h or m")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cert(days: i64, now: OffsetDateTime) -> CertReport {
        CertReport { subject: format!("CN={days}"), not_after: now + Duration::days(days), days_left: days }
    }

    #[test]
    fn expiry_within_the_window_warns_and_all_expired_is_invalid() {
        let now = OffsetDateTime::now_utc();
        let w = Duration::days(30);
        assert_eq!(assess(vec![cert(90, now)], w, now, Protocol::Saml).status, Status::Ok);
        let r = assess(vec![cert(90, now), cert(10, now)], w, now, Protocol::Saml);
        assert_eq!(r.status, Status::Warning);
        assert!(r.message.contains("10 day"), "{}", r.message);
        assert_eq!(assess(vec![cert(-1, now)], w, now, Protocol::Saml).status, Status::Invalid);
    }

    #[test]
    fn bundid_metadata_of_the_other_environment_is_invalid() {
        let file = |stem: &str, text: String| crate::tenant::SourceFile {
            path: format!("tenants/lippe/{stem}.yaml"),
            group_dir: "lippe".into(),
            stem: stem.into(),
            text,
        };
        let group = "apiVersion: portalctl.dev/v1alpha1\nkind: RolloutGroup\nmetadata:\n  name: lippe\nspec:\n  displayName: Lippe\n  waves:\n    - name: pilot\n";
        let tenant = "apiVersion: portalctl.dev/v1alpha1\nkind: Tenant\nmetadata:\n  name: detmold\nspec:\n  displayName: \"Stadt Detmold\"\n  ags: \"05766020\"\n  kind: stadt\n  parent: \"05766\"\n  hostnames: [service.detmold.de]\n  servicekonto:\n    provider: bundid\n    environment: integration\n    idpMetadataUrl: https://metadata.example/bundid.xml\n";
        let built = crate::tenant::build(&[file("group", group.into()), file("detmold", tenant.into())]);
        assert_eq!(built.error_count(), 0, "{:#?}", built.diagnostics);
        let t = built.catalog.tenant("detmold").unwrap();
        let why = wrong_bundid_environment(t, Some("https://id.bund.de/idp")).unwrap();
        assert!(why.contains("production") && why.contains("https://int.id.bund.de/idp"), "{why}");
        assert_eq!(wrong_bundid_environment(t, Some("https://int.id.bund.de/idp")), None);
        assert_eq!(wrong_bundid_environment(t, Some("http://127.0.0.1:8080/metadata")), None);
    }

    #[test]
    fn min_validity_units() {
        assert_eq!(parse_min_validity("30d").unwrap(), Duration::days(30));
        assert_eq!(parse_min_validity("12h").unwrap(), Duration::hours(12));
        assert!(parse_min_validity("30x").is_err());
        assert!(parse_min_validity("d").is_err());
    }
}
