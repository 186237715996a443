//! Tenant discovery without restart: a [`TenantSource`] is polled and the registry swapped
//! when the tenants changed. An invalid change keeps the last good state and is logged. The
//! Kubernetes source keeps its ConfigMaps current with a watch (kube's reflector) and says when
//! they changed; a poll of it reads the reflector's store, not the API server.

use super::registry::Registry;
use super::site::Site;
use std::collections::BTreeMap;
use std::future::Future;
use std::path::{Path, PathBuf};
use std::pin::Pin;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

pub type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// Where tenants come from. `poll` returns `Ok(None)` when nothing changed since the last call.
pub trait TenantSource: Send {
    /// Short description for logs (`directory tenants/`, `kubernetes namespace portal-krz`).
    fn describe(&self) -> String;
    fn poll(&mut self) -> BoxFuture<'_, Result<Option<Vec<Site>>, String>>;
    /// Resolves when the source knows that something changed (a source that cannot tell never resolves, and is
    /// only polled at the interval).
    fn changed(&mut self) -> BoxFuture<'_, ()> {
        Box::pin(std::future::pending())
    }
}

/// The `--tenants` directory: re-read when any file's mtime or size changes (or a file appears
/// or disappears). Every tenant file is judged on its own, as `portalctl validate` judges it: a
/// tenant whose file (or group file) has errors keeps its last good configuration, or is not
/// served if it never had one, and does not hold back the reloads of the others.
pub struct Directory {
    dir: PathBuf,
    last: Option<Vec<(PathBuf, SystemTime, u64)>>,
    /// Tenant file → the configuration last loaded from it without errors.
    last_good: BTreeMap<String, Site>,
}

/// One load of the directory: the tenants to serve and the files that could not be loaded.
#[derive(Debug, Default)]
pub struct Loaded {
    pub sites: Vec<Site>,
    /// `file: first error (kept on its last good configuration | not served)`.
    pub broken: Vec<String>,
}

impl Directory {
    pub fn new(dir: impl Into<PathBuf>) -> Directory {
        Directory { dir: dir.into(), last: None, last_good: BTreeMap::new() }
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

    /// Load and validate the directory now, tenant file by tenant file. Only a directory that
    /// cannot be read at all is an error.
    pub fn load(&mut self) -> Result<Loaded, String> {
        let files = crate::tenant::read_dir(&self.dir).map_err(|e| e.to_string())?;
        let built = crate::tenant::build(&files);
        let mut errors: BTreeMap<&str, String> = BTreeMap::new();
        for d in built.diagnostics.iter().filter(|d| d.severity == crate::diagnostics::Severity::Error) {
            errors.entry(d.position.file.as_str()).or_insert_with(|| d.to_string());
        }
        let group_error = |tenant_file: &str| {
            let group_file = Path::new(tenant_file).with_file_name("group.yaml");
            errors.get(group_file.to_string_lossy().as_ref()).cloned()
        };
        let healthy: BTreeMap<&str, &crate::tenant::Tenant> = built
            .catalog
            .tenants
            .iter()
            .filter(|t| !errors.contains_key(t.source.as_str()) && group_error(&t.source).is_none())
            .map(|t| (t.source.as_str(), t))
            .collect();
        let mut next = BTreeMap::new();
        let mut broken = Vec::new();
        for f in files.iter().filter(|f| !is_group_file(&f.path)) {
            if let Some(t) = healthy.get(f.path.as_str()) {
                next.insert(f.path.clone(), Site::from_tenant(t));
                continue;
            }
            let why = errors
                .get(f.path.as_str())
                .cloned()
                .or_else(|| group_error(&f.path))
                .unwrap_or_else(|| format!("{}: not loaded", f.path));
            match self.last_good.get(&f.path) {
                Some(old) => {
                    next.insert(f.path.clone(), old.clone());
                    broken.push(format!("{why} (tenant {} kept on its last good configuration)", old.slug));
                }
                None => broken.push(format!("{why} (not served)")),
            }
        }
        self.last_good = next;
        Ok(Loaded { sites: self.last_good.values().cloned().collect(), broken })
    }
}

fn is_group_file(path: &str) -> bool {
    Path::new(path).file_name().is_some_and(|n| n == "group.yaml")
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
            let mut d = Directory { dir: self.dir.clone(), last: None, last_good: std::mem::take(&mut self.last_good) };
            let (d, loaded) = tokio::task::spawn_blocking(move || {
                let loaded = d.load();
                (d, loaded)
            })
            .await
            .map_err(|e| e.to_string())?;
            self.last_good = d.last_good;
            let loaded = loaded?;
            for b in &loaded.broken {
                tracing::error!(source = %self.describe(), problem = %b, "invalid tenant file");
            }
            Ok(Some(loaded.sites))
        })
    }
}

/// A source whose tenants are served only once their database is: the tenant's role exists and
/// the server's login may `SET ROLE` to it, and its schema is at the latest migration. A tenant
/// file that appears before `portalctl up` (or `db provision` and `db migrate`) has set up its
/// database is held back — its hostnames answer 404 as before it existed, never 500 — and is
/// checked again at every poll until it is ready. A tenant once found ready stays served.
pub struct Gated {
    inner: Box<dyn TenantSource>,
    pool: super::db::Pools,
    /// The inner source's latest tenants.
    all: Option<Vec<Site>>,
    /// Schemas found ready.
    ready: std::collections::HashSet<String>,
    /// Schemas held back, with the reason last logged.
    held: BTreeMap<String, String>,
    /// What was last handed out.
    last: Option<Vec<Site>>,
}

impl Gated {
    pub fn new(inner: Box<dyn TenantSource>, pool: super::db::Pools) -> Gated {
        Gated { inner, pool, all: None, ready: Default::default(), held: BTreeMap::new(), last: None }
    }
}

/// Which of `schemas` are ready, and why each other one is not. A schema is ready when its role
/// exists and a read as the tenant — the request path itself, [`super::db::read`] — finds it at
/// the latest migration. Errors: the database could not be asked.
async fn check_ready(
    pool: &super::db::Pools,
    schemas: Vec<String>,
) -> Result<(Vec<String>, Vec<(String, String)>), String> {
    let client = pool.get("").await.map_err(|e| format!("database: {e}"))?;
    let rows = client
        .query(
            "SELECT s, EXISTS (SELECT 1 FROM pg_roles WHERE rolname = s) FROM unnest($1::text[]) AS u(s)",
            &[&schemas],
        )
        .await
        .map_err(|e| format!("database: {e}"))?;
    drop(client);
    let mut not = Vec::new();
    let mut candidates = Vec::new();
    for r in rows {
        let (schema, role): (String, bool) = (r.get(0), r.get(1));
        if role {
            candidates.push(schema);
        } else {
            not.push((schema.clone(), format!("database role {schema} does not exist yet")));
        }
    }
    const VERSION: super::db::Stmt<'static> =
        super::db::Stmt::plain("SELECT coalesce(max(version), 0) FROM schema_migrations");
    let versions = futures::future::join_all(
        candidates.iter().map(|schema| async move { super::db::read(pool, schema, &[VERSION]).await }),
    )
    .await;
    let mut ready = Vec::new();
    let latest = crate::db::migrations::LATEST;
    for (schema, v) in candidates.into_iter().zip(versions) {
        match v.map(|rows| rows.first().and_then(|r| r.first()).map(|r| r.get::<_, i32>(0))) {
            Ok(Some(v)) if v >= latest => ready.push(schema),
            Ok(v) => not.push((schema.clone(), format!("schema {schema} at migration {} of {latest}", v.unwrap_or(0)))),
            Err(e) => not.push((schema.clone(), format!("schema {schema} not readable as its role yet: {e}"))),
        }
    }
    Ok((ready, not))
}

impl TenantSource for Gated {
    fn describe(&self) -> String {
        self.inner.describe()
    }

    /// The inner source's changes (the ConfigMap watch) wake the gate too.
    fn changed(&mut self) -> BoxFuture<'_, ()> {
        self.inner.changed()
    }

    fn poll(&mut self) -> BoxFuture<'_, Result<Option<Vec<Site>>, String>> {
        Box::pin(async move {
            if let Some(sites) = self.inner.poll().await? {
                self.all = Some(sites);
            } else if self.held.is_empty() {
                return Ok(None);
            }
            let Some(all) = &self.all else { return Ok(None) };
            let unchecked: Vec<String> =
                all.iter().map(|s| s.schema.clone()).filter(|s| !self.ready.contains(s)).collect();
            if !unchecked.is_empty() {
                let (ready, not) = match check_ready(&self.pool, unchecked).await {
                    Ok(r) => r,
                    Err(e) => {
                        // The database cannot be asked at all: serve every known tenant (its
                        // requests answer 503 with Retry-After until the database is back) rather
                        // than hide them all behind the unknown-host 404; check again next poll.
                        if self.held.insert(String::new(), e.clone()).as_ref() != Some(&e) {
                            tracing::warn!(error = %e, "cannot check which tenants' databases are ready; serving all");
                        }
                        let out = all.clone();
                        if self.last.as_ref() == Some(&out) {
                            return Ok(None);
                        }
                        self.last = Some(out.clone());
                        return Ok(Some(out));
                    }
                };
                self.ready.extend(ready);
                let held: BTreeMap<String, String> = not.into_iter().collect();
                for (schema, why) in &held {
                    if self.held.get(schema) != Some(why) {
                        tracing::warn!(
                            schema = %schema, reason = %why,
                            "tenant not served yet: its database is not set up (portalctl up, or db provision and db migrate)"
                        );
                    }
                }
                self.held = held;
            } else {
                self.held.clear();
            }
            let out: Vec<Site> = all.iter().filter(|s| self.ready.contains(&s.schema)).cloned().collect();
            if self.last.as_ref() == Some(&out) {
                return Ok(None);
            }
            self.last = Some(out.clone());
            Ok(Some(out))
        })
    }
}

/// Label carried by every tenant ConfigMap.
pub const TENANT_LABEL: &str = "portalctl.dev/tenant";

/// ConfigMaps labelled `portalctl.dev/tenant` in the pod's namespace, key `tenant.json`, kept current by a watch
/// (kube's reflector: one LIST, then WATCH; a dropped watch is resumed, a too old resourceVersion re-listed, with
/// backoff). A ConfigMap is parsed again only when its resourceVersion changed.
pub struct Kubernetes {
    reader: kube::runtime::reflector::Store<k8s_openapi::api::core::v1::ConfigMap>,
    /// Bumped by the watch task on every event.
    events: tokio::sync::watch::Receiver<u64>,
    task: tokio::task::JoinHandle<()>,
    namespace: String,
    /// ConfigMap name → (resourceVersion, the tenant it held, or why it held none).
    parsed: BTreeMap<String, (String, Result<Site, String>)>,
    last_good: BTreeMap<String, Site>,
    last_version: Option<Vec<(String, String)>>,
}

/// How long the first LIST may take before the source reports an error (and is asked again at the next poll).
const FIRST_LIST_TIMEOUT: Duration = Duration::from_secs(30);

/// After a change, wait this long for more before reading the store: a rollout changes many ConfigMaps at once.
const SETTLE: Duration = Duration::from_millis(200);

impl Kubernetes {
    /// Connect like every portalctl command ([`crate::cluster::Cluster::connect`]: the kubeconfig, else the in-cluster
    /// service account) and watch the client's namespace (in a pod: its own).
    pub async fn connect() -> Result<Kubernetes, String> {
        let cluster = crate::cluster::Cluster::connect(&crate::cluster::ConnectOptions::default())
            .await
            .map_err(|e| format!("kubernetes client: {e}"))?;
        let client = cluster.client;
        let namespace = std::fs::read_to_string("/var/run/secrets/kubernetes.io/serviceaccount/namespace")
            .map(|s| s.trim().to_string())
            .unwrap_or_else(|_| client.default_namespace().to_string());
        Ok(Kubernetes::watch(client, namespace))
    }

    /// Start watching the tenant ConfigMaps of `namespace`.
    pub fn watch(client: kube::Client, namespace: String) -> Kubernetes {
        use futures::StreamExt;
        use kube::runtime::{reflector, watcher, WatchStreamExt};
        let api: kube::Api<k8s_openapi::api::core::v1::ConfigMap> = kube::Api::namespaced(client, &namespace);
        let (reader, writer) = reflector::store();
        let (tx, events) = tokio::sync::watch::channel(0u64);
        let stream = reflector(writer, watcher(api, watcher::Config::default().labels(TENANT_LABEL))).default_backoff();
        let ns = namespace.clone();
        let task = tokio::spawn(async move {
            let mut stream = std::pin::pin!(stream);
            while let Some(event) = stream.next().await {
                match event {
                    Ok(_) => tx.send_modify(|n| *n = n.wrapping_add(1)),
                    Err(e) => tracing::warn!(namespace = %ns, error = %e, "watching tenant ConfigMaps; retrying"),
                }
            }
        });
        Kubernetes {
            reader,
            events,
            task,
            namespace,
            parsed: BTreeMap::new(),
            last_good: BTreeMap::new(),
            last_version: None,
        }
    }
}

impl Drop for Kubernetes {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl TenantSource for Kubernetes {
    fn describe(&self) -> String {
        format!("kubernetes configmaps -l {TENANT_LABEL} in namespace {} (watch)", self.namespace)
    }

    fn changed(&mut self) -> BoxFuture<'_, ()> {
        Box::pin(async move {
            if self.events.changed().await.is_err() {
                // The watch task ended (it does not, short of a panic): fall back to the poll interval.
                std::future::pending::<()>().await;
            }
            tokio::time::sleep(SETTLE).await;
        })
    }

    fn poll(&mut self) -> BoxFuture<'_, Result<Option<Vec<Site>>, String>> {
        Box::pin(async move {
            tokio::time::timeout(FIRST_LIST_TIMEOUT, self.reader.wait_until_ready())
                .await
                .map_err(|_| format!("no answer to the first LIST of tenant configmaps within {FIRST_LIST_TIMEOUT:?}"))?
                .map_err(|e| format!("watching tenant configmaps: {e}"))?;
            self.events.mark_unchanged();
            let items = self.reader.state();
            let mut version: Vec<(String, String)> = items
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
            let mut parsed = BTreeMap::new();
            for cm in &items {
                let name = cm.metadata.name.clone().unwrap_or_default();
                let rv = cm.metadata.resource_version.clone().unwrap_or_default();
                let site = match self.parsed.remove(&name) {
                    Some((old_rv, site)) if old_rv == rv => site,
                    _ => cm
                        .data
                        .as_ref()
                        .and_then(|d| d.get("tenant.json"))
                        .ok_or_else(|| "no data key tenant.json".to_string())
                        .and_then(|t| Site::from_json(t)),
                };
                parsed.insert(name, (rv, site));
            }
            self.parsed = parsed;
            let mut next = BTreeMap::new();
            for (name, (_, site)) in &self.parsed {
                match site {
                    Ok(site) => {
                        next.insert(name.clone(), site.clone());
                    }
                    Err(e) => {
                        tracing::error!(configmap = %name, error = %e, "invalid tenant ConfigMap; keeping its last good state");
                        if let Some(old) = self.last_good.get(name) {
                            next.insert(name.clone(), old.clone());
                        }
                    }
                }
            }
            self.last_good = next;
            Ok(Some(self.last_good.values().cloned().collect()))
        })
    }
}

/// The largest share of the served tenants that one reload may remove (`serve
/// --reload-max-removal`): a directory emptied for a moment by a checkout, or a namespace
/// being torn down, must not take every portal offline.
pub const DEFAULT_MAX_REMOVAL: f64 = 0.5;

/// Poll `source` every `interval` and whenever it reports a change, swap the registry on change, until `stop`
/// fires.
pub async fn watch(
    mut source: Box<dyn TenantSource>,
    registry: Arc<Registry>,
    interval: Duration,
    max_removal: f64,
    mut stop: tokio::sync::watch::Receiver<bool>,
) {
    loop {
        match source.poll().await {
            Ok(Some(sites)) => {
                apply(&registry, sites, &source.describe(), max_removal);
            }
            Ok(None) => {}
            Err(e) => {
                tracing::error!(source = %source.describe(), error = %e, "tenant discovery failed; keeping the last good tenants")
            }
        }
        tokio::select! {
            _ = tokio::time::sleep(interval) => {}
            _ = source.changed() => {}
            _ = stop.changed() => return,
        }
    }
}

/// Install a new set of tenants and log what changed. A set that would remove more than
/// `max_removal` of the tenants served now (and at least two) is refused and logged as an
/// error; the server keeps serving what it has. Returns whether the set was installed.
pub fn apply(registry: &Registry, sites: Vec<Site>, from: &str, max_removal: f64) -> bool {
    let before = registry.snapshot();
    let old: std::collections::HashMap<&str, &Site> = before.sites().iter().map(|s| (s.slug.as_str(), &**s)).collect();
    let added = sites.iter().filter(|s| !old.contains_key(s.slug.as_str())).count();
    let changed = sites.iter().filter(|s| old.get(s.slug.as_str()).is_some_and(|o| *o != *s)).count();
    let kept: std::collections::HashSet<&str> = sites.iter().map(|s| s.slug.as_str()).collect();
    let removed = old.keys().filter(|k| !kept.contains(*k)).count();
    if removed >= 2 && removed as f64 > max_removal * old.len() as f64 {
        tracing::error!(
            source = %from, serving = old.len(), would_remove = removed, max_share = max_removal,
            "refusing a reload that removes this many tenants at once; still serving the previous tenants \
             (restart the server to accept the removal)"
        );
        return false;
    }
    let n = sites.len();
    for p in registry.replace(sites) {
        tracing::warn!(problem = %p, "tenant hostnames");
    }
    if added + changed + removed > 0 {
        tracing::info!(source = %from, tenants = n, added, changed, removed, "tenants loaded");
    }
    true
}
