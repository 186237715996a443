//! The Kubernetes edge: kubeconfig and context handling like kubectl, a client with retries,
//! server-side apply under one field manager, dry-run for diffs, listing by labels, deletion,
//! and waiting for readiness.
//!
//! **API boundary:** everything here talks to an API server over HTTP through a kubeconfig —
//! the same path for every cluster, the tests' included. What to apply comes from
//! [`crate::render`]; what differs is computed by the pure [`diff`] module.

pub mod diff;
pub mod progress;
pub mod retry;
pub mod retry_after;
pub mod secrets;
pub mod state;
pub mod wait;

use crate::render::{Object, ObjectKey};
use k8s_openapi::api::core::v1::Namespace;
use kube::api::{ApiResource, DeleteParams, DynamicObject, ListParams, Patch, PatchParams};
use kube::config::{KubeConfigOptions, Kubeconfig};
use kube::{Api, Client, Config};
use retry::RetryPolicy;
use std::path::PathBuf;
use std::time::Duration;

/// The one field manager portalctl applies under.
pub const FIELD_MANAGER: &str = "portalctl";

/// What can go wrong at the cluster edge.
#[derive(Debug, Clone, thiserror::Error)]
pub enum Error {
    #[error("cannot load kubeconfig {path}: {message}")]
    Kubeconfig { path: String, message: String },
    #[error("no kubeconfig found ({message}) and not running inside a cluster; pass --kubeconfig or set KUBECONFIG")]
    NoConfig { message: String },
    #[error("cannot create a Kubernetes client for {server} (context {context}): {message}")]
    Client { server: String, context: String, message: String },
    #[error("cannot reach the Kubernetes API server at {server} (context {context}): {message}")]
    Unreachable { server: String, context: String, message: String },
    #[error("{action} {object}: {message}")]
    Api { action: &'static str, object: String, message: String, code: Option<u16> },
    #[error("Servicekonto secret of tenant {tenant} ({reference}): {message}")]
    Secret { tenant: String, reference: String, message: String },
    #[error("timed out after {timeout:?} waiting for: {}", .waiting.join(", "))]
    Timeout { timeout: Duration, waiting: Vec<String> },
}

pub type Result<T, E = Error> = std::result::Result<T, E>;

impl Error {
    /// True when the cluster could not be reached or configured at all (exit code 3).
    pub fn is_unavailable(&self) -> bool {
        matches!(
            self,
            Error::Kubeconfig { .. } | Error::NoConfig { .. } | Error::Client { .. } | Error::Unreachable { .. }
        )
    }

    pub(crate) fn api(action: &'static str, object: impl ToString, err: &kube::Error) -> Error {
        let code = match err {
            kube::Error::Api(s) => Some(s.code),
            _ => None,
        };
        Error::Api { action, object: object.to_string(), message: describe(err), code }
    }
}

/// A one-line description of a kube error with its causes.
pub fn describe(err: &kube::Error) -> String {
    match err {
        kube::Error::Api(s) => {
            let reason = if s.reason.is_empty() { String::new() } else { format!("{} ", s.reason) };
            format!("{reason}({}): {}", s.code, s.message)
        }
        other => {
            let mut s = other.to_string();
            let mut source = std::error::Error::source(other);
            while let Some(e) = source {
                let m = e.to_string();
                if !s.contains(&m) {
                    s.push_str(": ");
                    s.push_str(&m);
                }
                source = e.source();
            }
            s
        }
    }
}

/// How to find the cluster, like kubectl: `--kubeconfig`, then `KUBECONFIG`, then
/// `~/.kube/config`, then the in-cluster service account.
#[derive(Debug, Clone, Default)]
pub struct ConnectOptions {
    pub kubeconfig: Option<PathBuf>,
    /// Context to use instead of the kubeconfig's current context.
    pub context: Option<String>,
    /// Timeout of one HTTP request.
    pub request_timeout: Duration,
    pub retry: RetryPolicy,
}

/// A connected client and where it points.
#[derive(Clone)]
pub struct Cluster {
    pub client: Client,
    /// The API server URL.
    pub server: String,
    /// The kubeconfig context (or `in-cluster`).
    pub context: String,
    pub retry: RetryPolicy,
    /// Which kinds the cluster serves (`apiVersion/kind` → answer), asked once per connection.
    served: std::sync::Arc<std::sync::Mutex<std::collections::HashMap<String, bool>>>,
}

async fn load_config(opts: &ConnectOptions) -> Result<(Config, String)> {
    let kco = KubeConfigOptions { context: opts.context.clone(), ..Default::default() };
    let (kubeconfig, path) = match &opts.kubeconfig {
        Some(path) => {
            let kc = Kubeconfig::read_from(path)
                .map_err(|e| Error::Kubeconfig { path: path.display().to_string(), message: chain(&e) })?;
            (kc, path.display().to_string())
        }
        None => match Kubeconfig::read() {
            Ok(kc) => (kc, std::env::var("KUBECONFIG").unwrap_or_else(|_| "~/.kube/config".into())),
            Err(e) => {
                if opts.context.is_none() {
                    if let Ok(cfg) = Config::incluster() {
                        return Ok((cfg, "in-cluster".into()));
                    }
                }
                return Err(Error::NoConfig { message: chain(&e) });
            }
        },
    };
    let context = opts.context.clone().or_else(|| kubeconfig.current_context.clone()).unwrap_or_default();
    let config = Config::from_custom_kubeconfig(kubeconfig, &kco)
        .await
        .map_err(|e| Error::Kubeconfig { path: format!("{path} (context {context})"), message: chain(&e) })?;
    Ok((config, context))
}

fn chain(e: &dyn std::error::Error) -> String {
    let mut s = e.to_string();
    let mut source = e.source();
    while let Some(inner) = source {
        let m = inner.to_string();
        if !s.contains(&m) {
            s.push_str(": ");
            s.push_str(&m);
        }
        source = inner.source();
    }
    s
}

impl Cluster {
    /// Load the configuration, build a client and check that the API server answers
    /// (any HTTP answer counts: only an unreachable server is an error here).
    pub async fn connect(opts: &ConnectOptions) -> Result<Cluster> {
        let (mut config, context) = load_config(opts).await?;
        let server = config.cluster_url.to_string().trim_end_matches('/').to_string();
        let timeout = if opts.request_timeout.is_zero() { Duration::from_secs(30) } else { opts.request_timeout };
        config.connect_timeout = Some(timeout.min(Duration::from_secs(10)));
        config.read_timeout = Some(timeout);
        config.write_timeout = Some(timeout);
        // Retries are ours (RetryPolicy: backoff with jitter, also for 500 and dropped connections).
        config.default_retry = false;
        let client = kube::client::ClientBuilder::try_from(config)
            .map_err(|e| Error::Client { server: server.clone(), context: context.clone(), message: describe(&e) })?
            .with_layer(&retry_after::RetryAfterLayer)
            .build();
        let cluster = Cluster { client, server, context, retry: opts.retry.clone(), served: Default::default() };
        cluster.probe().await?;
        Ok(cluster)
    }

    async fn probe(&self) -> Result<()> {
        let api: Api<Namespace> = Api::all(self.client.clone());
        let probe = RetryPolicy { attempts: self.retry.attempts.min(3), ..self.retry.clone() };
        match probe.run(|| api.get_opt("default")).await {
            Ok(_) => Ok(()),
            Err(kube::Error::Api(s)) if s.code != 429 && s.code < 500 => Ok(()),
            Err(e) => Err(Error::Unreachable {
                server: self.server.clone(),
                context: self.context.clone(),
                message: describe(&e),
            }),
        }
    }

    fn api(&self, ar: &ApiResource, namespace: Option<&str>) -> Api<DynamicObject> {
        match namespace {
            Some(ns) => Api::namespaced_with(self.client.clone(), ns, ar),
            None => Api::all_with(self.client.clone(), ar),
        }
    }

    /// Server-side apply one object (its JSON, with apiVersion and kind).
    pub async fn apply(&self, key: &ObjectKey, body: &serde_json::Value, mode: ApplyMode) -> Result<DynamicObject> {
        let ar = api_resource(key);
        let api = self.api(&ar, key.namespace.as_deref());
        let mut pp = PatchParams::apply(FIELD_MANAGER);
        pp.force = mode.force_conflicts;
        pp.dry_run = mode.dry_run;
        let action = if mode.dry_run { "dry-run apply" } else { "apply" };
        let patch = Patch::Apply(body);
        self.retry.run(|| api.patch(&key.name, &pp, &patch)).await.map_err(|e| Error::api(action, key, &e))
    }

    /// The live object, if it exists.
    pub async fn get(&self, key: &ObjectKey) -> Result<Option<DynamicObject>> {
        let ar = api_resource(key);
        let api = self.api(&ar, key.namespace.as_deref());
        self.retry.run(|| api.get_opt(&key.name)).await.map_err(|e| Error::api("get", key, &e))
    }

    /// Objects of one kind in a namespace matching a label selector, with their labels.
    pub async fn list(&self, kind: &ObjectKey, namespace: &str, selector: &str) -> Result<Vec<Listed>> {
        let mut out: Vec<Listed> = self
            .list_objects(kind, namespace, selector)
            .await?
            .into_iter()
            .map(|o| Listed {
                key: ObjectKey {
                    api_version: kind.api_version,
                    kind: kind.kind,
                    namespace: o.metadata.namespace.or_else(|| Some(namespace.to_string())),
                    name: o.metadata.name.unwrap_or_default(),
                },
                labels: o.metadata.labels.unwrap_or_default(),
            })
            .collect();
        out.sort_by(|a, b| a.key.cmp(&b.key));
        Ok(out)
    }

    /// Whole objects of one kind in a namespace matching a label selector (one LIST request).
    pub async fn list_objects(&self, kind: &ObjectKey, namespace: &str, selector: &str) -> Result<Vec<DynamicObject>> {
        let ar = api_resource(kind);
        let api = self.api(&ar, Some(namespace));
        let lp = ListParams::default().labels(selector);
        let list = self
            .retry
            .run(|| api.list(&lp))
            .await
            .map_err(|e| Error::api("list", format!("{} in {namespace} ({selector})", kind.kind), &e))?;
        Ok(list.items)
    }

    /// Delete one object; an object that is already gone counts as deleted.
    pub async fn delete(&self, key: &ObjectKey) -> Result<()> {
        let ar = api_resource(key);
        let api = self.api(&ar, key.namespace.as_deref());
        let dp = DeleteParams::foreground();
        match self.retry.run(|| api.delete(&key.name, &dp)).await {
            Ok(_) => Ok(()),
            Err(kube::Error::Api(s)) if s.code == 404 => Ok(()),
            Err(e) => Err(Error::api("delete", key, &e)),
        }
    }
}

impl Cluster {
    /// Apply objects with their resolved Secret values: Namespaces first (everything else lives in them), then the
    /// rest, `concurrency` at a time. When a batch has failures the next one is not started. `on_done` hears about
    /// every object; the failures are returned, sorted.
    pub async fn apply_all(
        &self,
        objects: &[&Object],
        secrets: &std::collections::BTreeMap<ObjectKey, Vec<u8>>,
        mode: ApplyMode,
        concurrency: usize,
        on_done: &(dyn Fn(&ObjectKey, &Result<()>) + Sync),
    ) -> Vec<(ObjectKey, Error)> {
        use futures::stream::{self, StreamExt};
        let (first, rest): (Vec<&Object>, Vec<&Object>) =
            objects.iter().copied().partition(|o| matches!(o, Object::Namespace(_)));
        let mut failures = Vec::new();
        for batch in [first, rest] {
            let futures: Vec<_> = batch.into_iter().map(|o| self.apply_one(o, secrets, mode, on_done)).collect();
            let results: Vec<(ObjectKey, Result<()>)> =
                stream::iter(futures).buffer_unordered(concurrency.max(1)).collect().await;
            failures.extend(results.into_iter().filter_map(|(k, r)| r.err().map(|e| (k, e))));
            if !failures.is_empty() {
                break;
            }
        }
        failures.sort_by(|a, b| a.0.cmp(&b.0));
        failures
    }

    async fn apply_one(
        &self,
        o: &Object,
        secrets: &std::collections::BTreeMap<ObjectKey, Vec<u8>>,
        mode: ApplyMode,
        on_done: &(dyn Fn(&ObjectKey, &Result<()>) + Sync),
    ) -> (ObjectKey, Result<()>) {
        let key = o.key();
        let body = apply_body(o, secrets.get(&key).map(Vec::as_slice));
        let r = self.apply(&key, &body, mode).await.map(|_| ());
        on_done(&key, &r);
        (key, r)
    }
}

/// An object found by [`Cluster::list`].
#[derive(Debug, Clone)]
pub struct Listed {
    pub key: ObjectKey,
    pub labels: std::collections::BTreeMap<String, String>,
}

/// How an apply is done.
#[derive(Debug, Clone, Copy, Default)]
pub struct ApplyMode {
    /// Server-side dry run: nothing is persisted.
    pub dry_run: bool,
    /// Take over fields owned by another manager (`--force-conflicts`).
    pub force_conflicts: bool,
}

/// The API resource (group, version, plural) of a kind portalctl handles.
pub fn api_resource(key: &ObjectKey) -> ApiResource {
    use k8s_openapi::api::apps::v1::Deployment;
    use k8s_openapi::api::autoscaling::v2::HorizontalPodAutoscaler;
    use k8s_openapi::api::core::v1::{ConfigMap, Pod, Secret, Service, ServiceAccount};
    use k8s_openapi::api::networking::v1::{Ingress, NetworkPolicy};
    use k8s_openapi::api::policy::v1::PodDisruptionBudget;
    use k8s_openapi::api::rbac::v1::{Role, RoleBinding};
    match key.kind {
        "Namespace" => ApiResource::erase::<Namespace>(&()),
        "ServiceAccount" => ApiResource::erase::<ServiceAccount>(&()),
        "Role" => ApiResource::erase::<Role>(&()),
        "RoleBinding" => ApiResource::erase::<RoleBinding>(&()),
        "NetworkPolicy" => ApiResource::erase::<NetworkPolicy>(&()),
        "ConfigMap" => ApiResource::erase::<ConfigMap>(&()),
        "Secret" => ApiResource::erase::<Secret>(&()),
        "Service" => ApiResource::erase::<Service>(&()),
        "Deployment" => ApiResource::erase::<Deployment>(&()),
        // Listed only (`status`: which image the replicas run).
        "Pod" => ApiResource::erase::<Pod>(&()),
        "PodDisruptionBudget" => ApiResource::erase::<PodDisruptionBudget>(&()),
        "HorizontalPodAutoscaler" => ApiResource::erase::<HorizontalPodAutoscaler>(&()),
        "Ingress" => ApiResource::erase::<Ingress>(&()),
        "Certificate" => ApiResource {
            group: "cert-manager.io".into(),
            version: "v1".into(),
            api_version: "cert-manager.io/v1".into(),
            kind: "Certificate".into(),
            plural: "certificates".into(),
        },
        other => panic!("portalctl does not handle kind {other}"),
    }
}

/// A key for a kind, to list objects of it.
pub fn kind_key(api_version: &'static str, kind: &'static str) -> ObjectKey {
    ObjectKey { api_version, kind, namespace: None, name: String::new() }
}

/// Every kind portalctl writes into a group's namespace (what a no-op re-run must leave alone).
pub fn namespaced_kinds() -> Vec<ObjectKey> {
    vec![
        kind_key("v1", "ConfigMap"),
        kind_key("v1", "Secret"),
        kind_key("v1", "Service"),
        kind_key("v1", "ServiceAccount"),
        kind_key("apps/v1", "Deployment"),
        kind_key("networking.k8s.io/v1", "Ingress"),
        kind_key("networking.k8s.io/v1", "NetworkPolicy"),
        kind_key("policy/v1", "PodDisruptionBudget"),
        kind_key("autoscaling/v2", "HorizontalPodAutoscaler"),
        kind_key("rbac.authorization.k8s.io/v1", "Role"),
        kind_key("rbac.authorization.k8s.io/v1", "RoleBinding"),
    ]
}

/// The kinds that carry per-tenant objects (what offboard and prune look at).
pub fn tenant_kinds() -> Vec<ObjectKey> {
    vec![
        kind_key("networking.k8s.io/v1", "Ingress"),
        kind_key("apps/v1", "Deployment"),
        kind_key("v1", "Service"),
        kind_key("v1", "ConfigMap"),
        kind_key("v1", "Secret"),
    ]
}

/// The names portalctl gives a tenant's objects, per kind: only these are ever deleted on its
/// behalf (a tenant's DB credentials Secret `<slug>-db` is not).
pub fn is_tenant_object_name(kind: &str, name: &str, slug: &str) -> bool {
    match kind {
        "Ingress" => name == slug,
        "ConfigMap" => name == format!("{slug}-tenant"),
        "Secret" => name == format!("{slug}-servicekonto"),
        "Deployment" | "Service" => name == format!("{}-{slug}", crate::render::PORTAL),
        _ => false,
    }
}

/// The JSON to apply for an object: Secrets get their data, resolved now.
pub fn apply_body(object: &Object, resolved: Option<&[u8]>) -> serde_json::Value {
    let mut body = object.to_json();
    if let (Object::Secret(..), Some(bytes)) = (object, resolved) {
        let data = serde_json::to_value(k8s_openapi::ByteString(bytes.to_vec())).expect("bytes serialize");
        body["data"] = serde_json::json!({ crate::render::SERVICEKONTO_KEY: data });
    }
    body
}
