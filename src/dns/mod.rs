//! DNS for tenants: the records each tenant's hostnames need (plan, pure) and whether the world agrees (check, IO).
//!
//! Every hostname of a tenant must resolve to the group's ingress — as A/AAAA records when the ingress has an IP
//! address, as a CNAME when it has a hostname (a cloud load balancer).

use crate::tenant::Tenant;
use hickory_resolver::config::{ConnectionConfig, NameServerConfig, ResolverConfig};
use hickory_resolver::net::runtime::TokioRuntimeProvider;
use hickory_resolver::TokioResolver;
use serde::Serialize;
use std::net::{IpAddr, SocketAddr};
use std::time::Duration;

/// Time to live of planned records.
pub const DEFAULT_TTL: u32 = 3600;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("ingress target {0:?} is neither an IP address nor a valid host name")]
    BadTarget(String),
    #[error("cannot set up the DNS resolver")]
    Resolver(#[source] hickory_resolver::net::NetError),
}

pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Where a group's hostnames must point.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(untagged)]
pub enum Target {
    Ip(IpAddr),
    Host(String),
}

impl Target {
    pub fn parse(s: &str) -> Result<Target> {
        if let Ok(ip) = s.parse::<IpAddr>() {
            return Ok(Target::Ip(ip));
        }
        crate::names::parse_hostname(s).map(|h| Target::Host(h.ascii)).map_err(|_| Error::BadTarget(s.to_string()))
    }
}

impl std::fmt::Display for Target {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Target::Ip(ip) => write!(f, "{ip}"),
            Target::Host(h) => write!(f, "{h}"),
        }
    }
}

/// One record a tenant needs.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Record {
    pub tenant: String,
    pub name: String,
    #[serde(rename = "type")]
    pub kind: &'static str,
    pub value: String,
    pub ttl: u32,
}

/// The records for every hostname of the given tenants (pure).
pub fn plan<'a>(tenants: impl IntoIterator<Item = &'a Tenant>, target: &Target) -> Vec<Record> {
    let mut out = Vec::new();
    for t in tenants {
        for h in &t.hostnames {
            let (kind, value) = match target {
                Target::Ip(IpAddr::V4(ip)) => ("A", ip.to_string()),
                Target::Ip(IpAddr::V6(ip)) => ("AAAA", ip.to_string()),
                Target::Host(host) => ("CNAME", format!("{host}.")),
            };
            out.push(Record { tenant: t.slug.clone(), name: h.clone(), kind, value, ttl: DEFAULT_TTL });
        }
    }
    out
}

/// The records as a zone-file snippet (absolute names), one comment line per tenant.
pub fn zone_snippet(records: &[Record]) -> String {
    let width = records.iter().map(|r| r.name.len() + 1).max().unwrap_or(0);
    let mut s = String::new();
    let mut last = "";
    for r in records {
        if r.tenant != last {
            s.push_str(&format!("; {}\n", r.tenant));
            last = &r.tenant;
        }
        s.push_str(&format!("{:<width$} {:>5} IN {:<5} {}\n", format!("{}.", r.name), r.ttl, r.kind, r.value));
    }
    s
}

/// The result of resolving one planned record.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct CheckResult {
    pub tenant: String,
    pub name: String,
    pub expected: String,
    /// What the name resolved to (addresses), empty when nothing.
    pub found: Vec<String>,
    pub ok: bool,
    /// One line for people when not ok, e.g. "DNS: service.hille.de has no A/AAAA record".
    #[serde(skip_serializing_if = "Option::is_none")]
    pub problem: Option<String>,
}

/// A resolver: the system's, or explicit name servers (`127.0.0.1:5353`) — e.g. the authoritative servers of the zone.
pub fn resolver(nameservers: &[SocketAddr]) -> Result<TokioResolver> {
    let provider = TokioRuntimeProvider::default();
    let mut builder = if nameservers.is_empty() {
        TokioResolver::builder(provider).map_err(Error::Resolver)?
    } else {
        let servers = nameservers
            .iter()
            .map(|sa| {
                let mut udp = ConnectionConfig::udp();
                udp.port = sa.port();
                let mut tcp = ConnectionConfig::tcp();
                tcp.port = sa.port();
                let mut ns = NameServerConfig::udp_and_tcp(sa.ip());
                ns.connections = vec![udp, tcp];
                ns
            })
            .collect();
        TokioResolver::builder_with_config(ResolverConfig::from_name_servers(servers), provider)
    };
    let opts = builder.options_mut();
    opts.timeout = Duration::from_secs(2);
    opts.attempts = 2;
    opts.cache_size = 0;
    builder.build().map_err(Error::Resolver)
}

/// Resolve every planned record (concurrently, bounded) and compare with what it should be.
/// For a CNAME target the name must resolve to the same addresses as the target.
pub async fn check(resolver: &TokioResolver, records: &[Record]) -> Vec<CheckResult> {
    use futures::stream::{self, StreamExt};
    let target_addrs = match records.first() {
        Some(r) if r.kind == "CNAME" => lookup(resolver, r.value.trim_end_matches('.')).await.ok(),
        _ => None,
    };
    stream::iter(records)
        .map(|r| {
            let target_addrs = target_addrs.clone();
            async move {
                let found = lookup(resolver, &r.name).await;
                judge(r, found, target_addrs.as_deref())
            }
        })
        .buffered(32)
        .collect()
        .await
}

async fn lookup(resolver: &TokioResolver, name: &str) -> Result<Vec<String>, String> {
    let fqdn = format!("{name}.");
    match resolver.lookup_ip(fqdn.as_str()).await {
        Ok(l) => {
            let mut v: Vec<String> = l.iter().map(|ip| ip.to_string()).collect();
            v.sort();
            v.dedup();
            Ok(v)
        }
        Err(e) if e.is_no_records_found() || e.is_nx_domain() => Ok(Vec::new()),
        Err(e) => Err(e.to_string()),
    }
}

/// Compare what was found with the plan (pure).
fn judge(r: &Record, found: Result<Vec<String>, String>, cname_addrs: Option<&[String]>) -> CheckResult {
    let mut res = CheckResult {
        tenant: r.tenant.clone(),
        name: r.name.clone(),
        expected: r.value.clone(),
        found: Vec::new(),
        ok: false,
        problem: None,
    };
    match found {
        Err(e) => res.problem = Some(format!("DNS: {} could not be resolved ({e})", r.name)),
        Ok(found) if found.is_empty() => res.problem = Some(format!("DNS: {} has no A/AAAA record", r.name)),
        Ok(found) => {
            let ok = match (r.kind, cname_addrs) {
                ("CNAME", Some(addrs)) => !addrs.is_empty() && found.iter().all(|f| addrs.contains(f)),
                ("CNAME", None) => false,
                _ => found.iter().any(|f| f == &r.value) && found.len() == 1,
            };
            if !ok {
                res.problem = Some(format!("DNS: {} points to {}, expected {}", r.name, found.join(", "), r.value));
            }
            res.ok = ok;
            res.found = found;
        }
    }
    res
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tenants() -> crate::tenant::Catalog {
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tenants");
        crate::tenant::load_dir(&dir).unwrap().catalog
    }

    #[test]
    fn plan_and_zone_snippet() {
        let c = tenants();
        let t: Vec<&Tenant> = ["detmold", "espelkamp"].iter().map(|s| c.tenant(s).unwrap()).collect();
        let recs = plan(t.iter().copied(), &Target::parse("192.0.2.10").unwrap());
        assert_eq!(recs.len(), 2);
        assert_eq!(
            (recs[0].name.as_str(), recs[0].kind, recs[0].value.as_str()),
            ("service.detmold.de", "A", "192.0.2.10")
        );
        let zone = zone_snippet(&recs);
        assert_eq!(zone, "; detmold\nservice.detmold.de.    3600 IN A     192.0.2.10\n; espelkamp\nservice.espelkamp.de.  3600 IN A     192.0.2.10\n");
        let cname = plan(t.iter().copied(), &Target::parse("lb.krz.example").unwrap());
        assert_eq!((cname[0].kind, cname[0].value.as_str()), ("CNAME", "lb.krz.example."));
        assert!(Target::parse("not a host").is_err());
    }

    #[test]
    fn judging_names_the_problem() {
        let r = Record {
            tenant: "hille".into(),
            name: "service.hille.de".into(),
            kind: "A",
            value: "192.0.2.10".into(),
            ttl: 1,
        };
        assert!(judge(&r, Ok(vec!["192.0.2.10".into()]), None).ok);
        let missing = judge(&r, Ok(vec![]), None);
        assert_eq!(missing.problem.as_deref(), Some("DNS: service.hille.de has no A/AAAA record"));
        let wrong = judge(&r, Ok(vec!["198.51.100.7".into()]), None);
        assert_eq!(wrong.problem.as_deref(), Some("DNS: service.hille.de points to 198.51.100.7, expected 192.0.2.10"));
        let extra = judge(&r, Ok(vec!["192.0.2.10".into(), "198.51.100.7".into()]), None);
        assert!(!extra.ok, "a stray second address is a mismatch");
    }
}
