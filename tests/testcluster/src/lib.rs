//! Test infrastructure, not a Kubernetes implementation: a small in-memory stand-in for the Kubernetes API server
//! that speaks the real REST API over HTTP, so that portalctl's production path (kubeconfig → kube client → HTTP
//! → server-side apply) can be tested where no real cluster is available.
//!
//! It serves discovery, get/list (label selectors)/create/replace/delete, server-side apply with field ownership
//! and dry-run, merge patches, `/status` subresources, watches, real `Status` errors, and a global
//! `resourceVersion`; simulated controllers make Deployments Available, give Ingresses an address and make
//! Certificates Ready; faults (429, 500, delays, dropped connections, namespaces that refuse writes) can be injected
//! at runtime. See `README.md` for what it does not do.
//!
//! ```no_run
//! # async fn demo() -> portalctl_testcluster::Result<()> {
//! let cluster = portalctl_testcluster::TestCluster::start().await?;
//! let kubeconfig = cluster.kubeconfig_path(); // hand this to the code under test
//! # let _ = kubeconfig;
//! cluster.shutdown().await;
//! # Ok(())
//! # }
//! ```

pub mod controllers;
pub mod faults;
pub mod resources;
pub mod selector;
pub mod server;
pub mod ssa;
pub mod status;
pub mod store;
pub mod watches;

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde_json::Value;
use tokio::sync::watch;
use tokio::task::JoinHandle;

use crate::controllers::ControllerSettings;
pub use crate::faults::{Fault, FaultRule, Faults};
use crate::server::{lock, Shared};
pub use crate::server::{RequestRecord, TOKEN};
use crate::store::Store;

/// Environment variable naming the kubeconfig of a real cluster to run the end-to-end suite against.
pub const E2E_KUBECONFIG_ENV: &str = "PORTALCTL_E2E_KUBECONFIG";

/// The cluster an end-to-end test runs against: a real one when [`E2E_KUBECONFIG_ENV`] is set, else a fresh
/// [`TestCluster`].
#[derive(Debug)]
pub enum E2eCluster {
    /// A real cluster, reached through this kubeconfig (its current context).
    Real { kubeconfig: PathBuf },
    /// The in-memory stand-in.
    Standin(TestCluster),
}

impl E2eCluster {
    /// Pick the cluster from the environment; starts a stand-in with default options when the variable is unset.
    pub async fn from_env() -> Result<E2eCluster> {
        match std::env::var_os(E2E_KUBECONFIG_ENV).filter(|v| !v.is_empty()) {
            Some(path) => Ok(E2eCluster::Real { kubeconfig: PathBuf::from(path) }),
            None => Ok(E2eCluster::Standin(TestCluster::start().await?)),
        }
    }

    /// [`E2eCluster::from_env`] for synchronous tests: a stand-in gets a runtime of its own.
    pub fn from_env_blocking() -> Result<E2eCluster> {
        match std::env::var_os(E2E_KUBECONFIG_ENV).filter(|v| !v.is_empty()) {
            Some(path) => Ok(E2eCluster::Real { kubeconfig: PathBuf::from(path) }),
            None => Ok(E2eCluster::Standin(TestCluster::start_blocking()?)),
        }
    }

    pub fn kubeconfig_path(&self) -> &Path {
        match self {
            E2eCluster::Real { kubeconfig } => kubeconfig,
            E2eCluster::Standin(cluster) => cluster.kubeconfig_path(),
        }
    }

    /// The stand-in, for tests that inject faults or inspect requests (skip them on a real cluster).
    pub fn standin(&self) -> Option<&TestCluster> {
        match self {
            E2eCluster::Real { .. } => None,
            E2eCluster::Standin(cluster) => Some(cluster),
        }
    }
}

/// The name of the context (and cluster) in the generated kubeconfig.
pub const CONTEXT: &str = "testcluster";

/// Errors starting or using the test cluster.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("could not bind 127.0.0.1:{port}")]
    Bind {
        port: u16,
        #[source]
        source: std::io::Error,
    },
    #[error("could not write the kubeconfig {}", path.display())]
    Kubeconfig {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("could not start a runtime for the test cluster")]
    Runtime {
        #[source]
        source: std::io::Error,
    },
    #[error("the test cluster does not serve kind {0:?}")]
    UnknownKind(String),
}

/// `Result` with this crate's [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Options for starting a [`TestCluster`].
#[derive(Debug, Clone)]
pub struct TestClusterBuilder {
    readiness_delay: Duration,
    port: u16,
    load_balancer_ip: String,
}

impl Default for TestClusterBuilder {
    fn default() -> Self {
        TestClusterBuilder {
            readiness_delay: Duration::from_millis(200),
            port: 0,
            load_balancer_ip: "192.0.2.10".into(),
        }
    }
}

impl TestClusterBuilder {
    /// How long after its last spec change a Deployment becomes Available (default 200 ms).
    pub fn readiness_delay(mut self, delay: Duration) -> Self {
        self.readiness_delay = delay;
        self
    }

    /// Port on 127.0.0.1 (default 0: any free port).
    pub fn port(mut self, port: u16) -> Self {
        self.port = port;
        self
    }

    /// Address Ingresses get in `status.loadBalancer.ingress[0].ip` (default 192.0.2.10, TEST-NET-1).
    pub fn load_balancer_ip(mut self, ip: &str) -> Self {
        self.load_balancer_ip = ip.to_string();
        self
    }

    /// Bind, write the kubeconfig into a temporary directory, and start serving and the controllers.
    pub async fn start(self) -> Result<TestCluster> {
        let listener = tokio::net::TcpListener::bind(("127.0.0.1", self.port))
            .await
            .map_err(|source| Error::Bind { port: self.port, source })?;
        let addr = listener.local_addr().map_err(|source| Error::Bind { port: self.port, source })?;
        let mut settings = ControllerSettings::new(self.readiness_delay);
        settings.load_balancer_ip = self.load_balancer_ip;
        let shared = Arc::new(Shared {
            store: Mutex::new(Store::new(&server::now_rfc3339())),
            faults: Faults::default(),
            log: Mutex::new(Vec::new()),
            controllers: Mutex::new(settings),
            changes: watch::channel(0).0,
        });
        let url = format!("http://{addr}");
        let dir = tempfile::tempdir().map_err(|source| Error::Kubeconfig { path: std::env::temp_dir(), source })?;
        let kubeconfig = dir.path().join("kubeconfig.yaml");
        write_kubeconfig(&url, &kubeconfig)?;
        let (stop, stopped) = watch::channel(false);
        let tasks = vec![
            tokio::spawn(server::serve(listener, shared.clone(), stopped.clone())),
            tokio::spawn(controllers::run(shared.clone(), stopped)),
        ];
        Ok(TestCluster { url, addr, shared, _dir: dir, kubeconfig, stop, tasks, runtime: None })
    }

    /// Start on a runtime of its own, for synchronous tests (e.g. ones that run the `portalctl` binary with
    /// `std::process::Command`, which would block a test's own runtime). Must not be called from async code.
    pub fn start_blocking(self) -> Result<TestCluster> {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .thread_name("testcluster")
            .enable_all()
            .build()
            .map_err(|source| Error::Runtime { source })?;
        let mut cluster = runtime.block_on(self.start())?;
        cluster.runtime = Some(runtime);
        Ok(cluster)
    }
}

/// A running test cluster. Dropping it stops the server; [`TestCluster::shutdown`] also waits for that.
#[derive(Debug)]
pub struct TestCluster {
    url: String,
    addr: SocketAddr,
    shared: Arc<Shared>,
    _dir: tempfile::TempDir,
    kubeconfig: PathBuf,
    stop: watch::Sender<bool>,
    tasks: Vec<JoinHandle<()>>,
    /// The runtime of [`TestClusterBuilder::start_blocking`].
    runtime: Option<tokio::runtime::Runtime>,
}

/// Write a kubeconfig for a cluster at `url`: cluster and context named `testcluster`, a user with [`TOKEN`],
/// default namespace `default`.
pub fn write_kubeconfig(url: &str, path: &Path) -> Result<()> {
    let text = format!(
        "apiVersion: v1\nkind: Config\nclusters:\n- name: {CONTEXT}\n  cluster:\n    server: {url}\n\
         contexts:\n- name: {CONTEXT}\n  context:\n    cluster: {CONTEXT}\n    user: testcluster-user\n    \
         namespace: default\ncurrent-context: {CONTEXT}\nusers:\n- name: testcluster-user\n  user:\n    \
         token: {TOKEN}\npreferences: {{}}\n"
    );
    std::fs::write(path, text).map_err(|source| Error::Kubeconfig { path: path.to_path_buf(), source })
}

impl TestCluster {
    /// A builder for non-default options.
    pub fn builder() -> TestClusterBuilder {
        TestClusterBuilder::default()
    }

    /// Start with default options on a free port.
    pub async fn start() -> Result<TestCluster> {
        TestClusterBuilder::default().start().await
    }

    /// Start with default options on a runtime of its own, for synchronous tests; see
    /// [`TestClusterBuilder::start_blocking`].
    pub fn start_blocking() -> Result<TestCluster> {
        TestClusterBuilder::default().start_blocking()
    }

    /// Base URL, e.g. `http://127.0.0.1:41234`.
    pub fn url(&self) -> &str {
        &self.url
    }

    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// Path of the generated kubeconfig (lives as long as the cluster).
    pub fn kubeconfig_path(&self) -> &Path {
        &self.kubeconfig
    }

    /// Handle for injecting faults.
    pub fn faults(&self) -> Faults {
        self.shared.faults.clone()
    }

    /// Every request served so far, in order.
    pub fn requests(&self) -> Vec<RequestRecord> {
        lock(&self.shared.log).clone()
    }

    /// Forget the request log.
    pub fn clear_requests(&self) {
        lock(&self.shared.log).clear();
    }

    /// All stored objects of a kind (`"Deployment"` or `"deployments"`), across namespaces, ordered by
    /// (namespace, name).
    pub fn objects(&self, kind: &str) -> Result<Vec<Value>> {
        let rt = resources::find_by_kind(kind).ok_or_else(|| Error::UnknownKind(kind.to_string()))?;
        Ok(lock(&self.shared.store).objects(rt, None))
    }

    /// One stored object; `namespace` is ignored for cluster-scoped kinds.
    pub fn object(&self, kind: &str, namespace: &str, name: &str) -> Result<Option<Value>> {
        let rt = resources::find_by_kind(kind).ok_or_else(|| Error::UnknownKind(kind.to_string()))?;
        let ns = if rt.namespaced { namespace } else { "" };
        Ok(lock(&self.shared.store).get(rt, ns, name).ok())
    }

    /// The current global resourceVersion.
    pub fn resource_version(&self) -> u64 {
        lock(&self.shared.store).resource_version()
    }

    /// Change how long Deployments take to become Available after a spec change.
    pub fn set_readiness_delay(&self, delay: Duration) {
        let mut c = lock(&self.shared.controllers);
        c.readiness_delay = delay;
        c.resync = true;
    }

    /// Force a Deployment Available (`true`) or unavailable (`false`) regardless of the delay.
    pub fn set_ready(&self, namespace: &str, name: &str, ready: bool) {
        let mut c = lock(&self.shared.controllers);
        c.forced.insert((namespace.to_string(), name.to_string()), ready);
        c.resync = true;
    }

    /// Return a Deployment to the delay-based readiness.
    pub fn clear_ready(&self, namespace: &str, name: &str) {
        let mut c = lock(&self.shared.controllers);
        c.forced.remove(&(namespace.to_string(), name.to_string()));
        c.resync = true;
    }

    /// Stop the simulated controllers for objects with this name (any kind and namespace): their status freezes.
    pub fn pause_controllers(&self, name: &str) {
        lock(&self.shared.controllers).paused.insert(name.to_string());
    }

    pub fn resume_controllers(&self, name: &str) {
        let mut c = lock(&self.shared.controllers);
        c.paused.remove(name);
        c.resync = true;
    }

    /// Stop serving and wait for the server and controllers to finish. (Synchronous tests just drop the cluster.)
    pub async fn shutdown(mut self) {
        let _ = self.stop.send(true);
        for task in self.tasks.drain(..) {
            let _ = task.await;
        }
    }
}

impl Drop for TestCluster {
    fn drop(&mut self) {
        let _ = self.stop.send(true);
        for task in &self.tasks {
            task.abort();
        }
        if let Some(runtime) = self.runtime.take() {
            runtime.shutdown_background();
        }
    }
}
