//! The tenant registry: hostname → tenant, swapped atomically when discovery finds a change.
//! Lookups never block and never fall back to a default tenant.

use super::site::Site;
use arc_swap::ArcSwap;
use std::collections::HashMap;
use std::sync::Arc;

/// One consistent view of all tenants.
#[derive(Debug, Default)]
pub struct Snapshot {
    by_host: HashMap<String, Arc<Site>>,
    sites: Vec<Arc<Site>>,
}

impl Snapshot {
    /// Build the host map. A hostname claimed by two tenants is served by neither (and reported).
    pub fn build(sites: Vec<Site>) -> (Snapshot, Vec<String>) {
        Snapshot::build_with(sites, false)
    }

    /// As [`Snapshot::build`]; with `local_hostnames`, every tenant also answers on
    /// `<slug>.localhost` (local mode: `*.localhost` resolves to the loopback interface).
    pub fn build_with(sites: Vec<Site>, local_hostnames: bool) -> (Snapshot, Vec<String>) {
        let mut problems = Vec::new();
        let sites: Vec<Arc<Site>> = sites.into_iter().map(Arc::new).collect();
        let mut by_host: HashMap<String, Arc<Site>> = HashMap::new();
        let mut clashes = Vec::new();
        for s in &sites {
            let local = local_hostnames.then(|| format!("{}.localhost", s.slug));
            for h in s.hostnames.iter().chain(local.as_ref()) {
                let h = h.to_ascii_lowercase();
                if let Some(other) = by_host.get(&h) {
                    if other.slug != s.slug {
                        problems.push(format!(
                            "hostname {h} is declared by tenants {} and {}; serving neither on it",
                            other.slug, s.slug
                        ));
                        clashes.push(h.clone());
                    }
                    continue;
                }
                by_host.insert(h, s.clone());
            }
        }
        for h in clashes {
            by_host.remove(&h);
        }
        (Snapshot { by_host, sites }, problems)
    }

    pub fn sites(&self) -> &[Arc<Site>] {
        &self.sites
    }
}

/// Normalise a Host header: lower case, port and a trailing root dot removed. `None` if empty
/// or not a plausible host name.
pub fn normalize_host(raw: &str) -> Option<String> {
    let raw = raw.trim();
    let host = if raw.starts_with('[') {
        // IPv6 literal: never a tenant hostname.
        return None;
    } else {
        match raw.rsplit_once(':') {
            Some((h, port)) if port.chars().all(|c| c.is_ascii_digit()) => h,
            Some(_) => return None,
            None => raw,
        }
    };
    let host = host.strip_suffix('.').unwrap_or(host);
    if host.is_empty() || host.len() > 253 || !host.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'.')
    {
        return None;
    }
    Some(host.to_ascii_lowercase())
}

/// The live registry, shared by all requests.
#[derive(Debug, Default)]
pub struct Registry {
    current: ArcSwap<Snapshot>,
    local_hostnames: bool,
    /// The listening port in local mode (0: not known yet), for links between tenants' local hostnames.
    local_port: std::sync::atomic::AtomicU16,
}

impl Registry {
    pub fn new() -> Registry {
        Registry::default()
    }

    /// A registry that additionally serves every tenant on `<slug>.localhost` (local mode).
    pub fn with_local_hostnames() -> Registry {
        Registry { local_hostnames: true, ..Registry::default() }
    }

    /// Record the port a local-mode server listens on (ignored outside local mode).
    pub fn set_local_port(&self, port: u16) {
        self.local_port.store(port, std::sync::atomic::Ordering::Relaxed);
    }

    /// In local mode, once known: the port on which every tenant answers as `<slug>.localhost`.
    pub fn local_port(&self) -> Option<u16> {
        let port = self.local_port.load(std::sync::atomic::Ordering::Relaxed);
        (self.local_hostnames && port != 0).then_some(port)
    }

    /// Replace all tenants at once; returns problems found while building the host map.
    pub fn replace(&self, sites: Vec<Site>) -> Vec<String> {
        let (snap, problems) = Snapshot::build_with(sites, self.local_hostnames);
        self.current.store(Arc::new(snap));
        problems
    }

    /// The tenant a Host header names, if exactly one does.
    pub fn resolve(&self, host_header: &str) -> Option<Arc<Site>> {
        let host = normalize_host(host_header)?;
        self.current.load().by_host.get(&host).cloned()
    }

    pub fn snapshot(&self) -> Arc<Snapshot> {
        self.current.load_full()
    }

    pub fn len(&self) -> usize {
        self.current.load().sites.len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// The Servicekonto login finds its tenant (with the binding) through the registry.
impl crate::servicekonto::TenantLookup for Registry {
    fn tenant_for_host(&self, host: &str) -> Option<Arc<crate::tenant::Tenant>> {
        self.resolve(host)?.tenant.0.clone()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::portal::site::{Links, SiteTheme};

    fn site(slug: &str, hosts: &[&str]) -> Site {
        Site {
            slug: slug.into(),
            group: "g".into(),
            display_name: slug.into(),
            hostnames: hosts.iter().map(|h| h.to_string()).collect(),
            theme: SiteTheme {
                primary_color: "#004b87".into(),
                on_primary_color: "#ffffff".into(),
                text_color: "#1a1a1a".into(),
                background_color: "#ffffff".into(),
                accent_color: "#005ea8".into(),
                logo: None,
                font: "Arial".into(),
            },
            schema: format!("t_{slug}"),
            published: true,
            links: Links::default(),
            legal: Default::default(),
            members: Vec::new(),
            tenant: Default::default(),
        }
    }

    #[test]
    fn host_normalisation() {
        assert_eq!(normalize_host("Service.Espelkamp.DE:8080").as_deref(), Some("service.espelkamp.de"));
        assert_eq!(normalize_host("service.espelkamp.de.").as_deref(), Some("service.espelkamp.de"));
        assert_eq!(normalize_host("[::1]:80"), None);
        assert_eq!(normalize_host(""), None);
        assert_eq!(normalize_host("a b"), None);
        assert_eq!(normalize_host("host:x"), None);
    }

    #[test]
    fn resolves_aliases_and_never_defaults() {
        let r = Registry::new();
        assert!(r.replace(vec![site("a", &["service.a.de", "a.localhost"]), site("b", &["service.b.de"])]).is_empty());
        assert_eq!(r.resolve("A.LOCALHOST:3000").unwrap().slug, "a");
        assert_eq!(r.resolve("service.b.de").unwrap().slug, "b");
        assert!(r.resolve("service.c.de").is_none());
        assert!(r.resolve("127.0.0.1:8080").is_none());
    }

    #[test]
    fn clashing_hostname_serves_nobody() {
        let r = Registry::new();
        let problems = r.replace(vec![site("a", &["x.de", "a.de"]), site("b", &["x.de"])]);
        assert_eq!(problems.len(), 1, "{problems:?}");
        assert!(r.resolve("x.de").is_none());
        assert_eq!(r.resolve("a.de").unwrap().slug, "a");
    }

    #[test]
    fn local_hostnames_alias_every_tenant_only_when_asked() {
        let plain = Registry::new();
        plain.replace(vec![site("a", &["service.a.de"]), site("b", &["service.b.de"])]);
        assert!(plain.resolve("a.localhost:8080").is_none());
        let local = Registry::with_local_hostnames();
        local.replace(vec![site("a", &["service.a.de"]), site("b", &["service.b.de"])]);
        assert_eq!(local.resolve("a.localhost:8080").unwrap().slug, "a");
        assert_eq!(local.resolve("B.localhost").unwrap().slug, "b");
        assert_eq!(local.resolve("service.a.de").unwrap().slug, "a");
        assert!(local.resolve("c.localhost").is_none());
        assert!(local.resolve("localhost:8080").is_none());
        // The canonical hostname stays the declared one.
        assert_eq!(local.resolve("a.localhost").unwrap().hostnames, vec!["service.a.de".to_string()]);
    }
}
