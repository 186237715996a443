//! Tenant discovery without restart: a [`TenantSource`] is polled and the registry swapped
//! when the tenants changed. An invalid change keeps the last good state and is logged.

use super::registry::Registry;
use super::site::Site;
use std::future::Future;
use std::path::PathBuf;
use std::pin::Pin;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

pub type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// Where tenants come from. `poll` returns `Ok(None)` when nothing changed since the last call.
pub trait TenantSource: Send {
    /// Short description for logs (`directory tenants/`, `kubernetes namespace portal-krz`).
    fn describe(&self) -> String;
    fn poll(&mut self) -> BoxFuture<'_, Result<Option<Vec<Site>>, String>>;
}

/// The `--tenants` directory: re-read when any file's mtime or size changes (or a file appears
/// or disappears); every file must validate, as for `portalctl validate`.
pub struct Directory {
    dir: PathBuf,
    last: Option<Vec<(PathBuf, SystemTime, u64)>>,
}

impl Directory {
    pub fn new(dir: impl Into<PathBuf>) -> Directory {
        Directory { dir: dir.into(), last: None }
    }

    fn fingerprint(&self) -> Vec<(PathBuf, SystemTime, u64)> {
        let mut out = Vec::new();
        let Ok(groups) = std::fs::read_dir(&self.dir) else { return out };
        for g in groups.flatten() {
            let Ok(files) = std::fs::read_dir(g.path()) else { continue };
            for f in files.flatten() {
                if let Ok(m) = f.metadata() {
                    out.push((f.path(), m.modified().unwrap_or(SystemTime::UNIX_EPOCH), m.len()));
                }
            }
        }
        out.sort();
        out
    }

    /// Load and validate the directory now.
    pub fn load(&self) -> Result<Vec<Site>, String> {
        let built = crate::tenant::load_dir(&self.dir).map_err(|e| e.to_string())?;
        if built.error_count() > 0 {
            let errors: Vec<String> = built
                .diagnostics
                .iter()
                .filter(|d| d.severity == crate::diagnostics::Severity::Error)
                .map(|d| d.to_string())
                .collect();
            return Err(format!("{} error(s) in {}: {}", errors.len(), self.dir.display(), errors.join("; ")));
        }
        Ok(built.catalog.tenants.iter().map(Site::from_tenant).collect())
    }
}

impl TenantSource for Directory {
    fn describe(&self) -> String {
        format!("directory {}", self.dir.display())
    }

    fn poll(&mut self) -> BoxFuture<'_, Result<Option<Vec<Site>>, String>> {
        Box::pin(async move {
            let fp = self.fingerprint();
            if self.last.as_ref() == Some(&fp) {
                return Ok(None);
            }
            // Remember the fingerprint even on failure: the broken state is reported once,
            // and the next edit is picked up.
            self.last = Some(fp);
            let dir = Directory { dir: self.dir.clone(), last: None };
            tokio::task::spawn_blocking(move || dir.load()).await.map_err(|e| e.to_string())?.map(Some)
        })
    }
}

/// Label carried by every tenant ConfigMap.
pub const TENANT_LABEL: &str = "portalctl.dev/tenant";

/// ConfigMaps labelled `portalctl.dev/tenant` in the pod's namespace, key `tenant.json`.
pub struct Kubernetes {
    api: kube::Api<k8s_openapi::api::core::v1::ConfigMap>,
    namespace: String,
    last_good: std::collections::BTreeMap<String, Site>,
    last_version: Option<Vec<(String, String)>>,
}

impl Kubernetes {
    /// Connect with the in-cluster configuration (or the local kubeconfig) and use its namespace.
    pub async fn connect() -> Result<Kubernetes, String> {
        let client = kube::Client::try_default().await.map_err(|e| format!("kubernetes client: {e}"))?;
        let namespace = std::fs::read_to_string("/var/run/secrets/kubernetes.io/serviceaccount/namespace")
            .map(|s| s.trim().to_string())
            .unwrap_or_else(|_| client.default_namespace().to_string());
        Ok(Kubernetes {
            api: kube::Api::namespaced(client, &namespace),
            namespace,
            last_good: Default::default(),
            last_version: None,
        })
    }
}

impl TenantSource for Kubernetes {
    fn describe(&self) -> String {
        format!("kubernetes configmaps -l {TENANT_LABEL} in namespace {}", self.namespace)
    }

    fn poll(&mut self) -> BoxFuture<'_, Result<Option<Vec<Site>>, String>> {
        Box::pin(async move {
            let lp = kube::api::ListParams::default().labels(TENANT_LABEL);
            let list = self.api.list(&lp).await.map_err(|e| format!("listing tenant configmaps: {e}"))?;
            let mut version: Vec<(String, String)> = list
                .items
                .iter()
                .map(|cm| {
                    (
                        cm.metadata.name.clone().unwrap_or_default(),
                        cm.metadata.resource_version.clone().unwrap_or_default(),
                    )
                })
                .collect();
            version.sort();
            if self.last_version.as_ref() == Some(&version) {
                return Ok(None);
            }
            self.last_version = Some(version);
            let mut next = std::collections::BTreeMap::new();
            for cm in &list.items {
                let name = cm.metadata.name.clone().unwrap_or_default();
                let parsed = cm
                    .data
                    .as_ref()
                    .and_then(|d| d.get("tenant.json"))
                    .ok_or_else(|| "no data key tenant.json".to_string())
                    .and_then(|t| Site::from_json(t));
                match parsed {
                    Ok(site) => {
                        next.insert(name, site);
                    }
                    Err(e) => {
                        tracing::error!(configmap = %name, error = %e, "invalid tenant ConfigMap; keeping its last good state");
                        if let Some(old) = self.last_good.get(&name) {
                            next.insert(name, old.clone());
                        }
                    }
                }
            }
            self.last_good = next;
            Ok(Some(self.last_good.values().cloned().collect()))
        })
    }
}

/// Poll `source` every `interval` and swap the registry on change, until `stop` fires.
pub async fn watch(
    mut source: Box<dyn TenantSource>,
    registry: Arc<Registry>,
    interval: Duration,
    mut stop: tokio::sync::watch::Receiver<bool>,
) {
    loop {
        match source.poll().await {
            Ok(Some(sites)) => apply(&registry, sites, &source.describe()),
            Ok(None) => {}
            Err(e) => {
                tracing::error!(source = %source.describe(), error = %e, "tenant discovery failed; keeping the last good tenants")
            }
        }
        tokio::select! {
            _ = tokio::time::sleep(interval) => {}
            _ = stop.changed() => return,
        }
    }
}

/// Install a new set of tenants and log what changed.
pub fn apply(registry: &Registry, sites: Vec<Site>, from: &str) {
    let before = registry.snapshot();
    let old: std::collections::HashMap<&str, &Site> = before.sites().iter().map(|s| (s.slug.as_str(), &**s)).collect();
    let added = sites.iter().filter(|s| !old.contains_key(s.slug.as_str())).count();
    let changed = sites.iter().filter(|s| old.get(s.slug.as_str()).is_some_and(|o| *o != *s)).count();
    let kept: std::collections::HashSet<&str> = sites.iter().map(|s| s.slug.as_str()).collect();
    let removed = old.keys().filter(|k| !kept.contains(*k)).count();
    let n = sites.len();
    for p in registry.replace(sites) {
        tracing::warn!(problem = %p, "tenant hostnames");
    }
    if added + changed + removed > 0 {
        tracing::info!(source = %from, tenants = n, added, changed, removed, "tenants loaded");
    }
}
