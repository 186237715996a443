//! Waiting until applied objects are ready: a Deployment is Available, an Ingress has a
//! load-balancer address, and the cert-manager Certificate of its TLS Secret is Ready. Where
//! cert-manager is installed (the cluster serves `certificates.cert-manager.io`) a Certificate
//! that does not exist yet is not ready: cert-manager has not created it; where it is not, there
//! is no Certificate to wait for.
//!
//! Readiness is read with one LIST per kind and namespace (label-selected to portalctl's or the group's objects)
//! for all pending objects at once, not with one GET per object: a [`Poller`] runs these rounds of LISTs and
//! concurrent waiters (the tenants of a rollout wave) share them.

use super::{Cluster, Error, Result};
use crate::render::{Object, ObjectKey};
use kube::api::DynamicObject;
use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// Selects every object portalctl applies (the label of `render::common_labels`).
pub const MANAGED_SELECTOR: &str = "app.kubernetes.io/managed-by=portalctl";

/// How often a waiter polls: rounds of LISTs start at most this often.
pub const POLL_INTERVAL: Duration = Duration::from_millis(500);

/// What must be ready before a tenant counts as deployed.
pub fn readiness_checks(objects: &[&Object]) -> Vec<ObjectKey> {
    let mut out = Vec::new();
    for o in objects {
        match o {
            Object::Deployment(_) => out.push(o.key()),
            Object::Ingress(i) => {
                out.push(o.key());
                for tls in i.spec.iter().flat_map(|s| s.tls.iter().flatten()) {
                    if let Some(secret) = &tls.secret_name {
                        out.push(ObjectKey {
                            api_version: "cert-manager.io/v1",
                            kind: "Certificate",
                            namespace: o.key().namespace,
                            name: secret.clone(),
                        });
                    }
                }
            }
            _ => {}
        }
    }
    out
}

fn condition_true(obj: &DynamicObject, kind: &str) -> bool {
    obj.data["status"]["conditions"]
        .as_array()
        .is_some_and(|cs| cs.iter().any(|c| c["type"] == kind && c["status"] == "True"))
}

/// Whether one object is ready; a missing object is not.
pub fn is_ready(key: &ObjectKey, live: Option<&DynamicObject>) -> bool {
    let Some(obj) = live else { return false };
    match key.kind {
        "Deployment" => {
            let generation = obj.metadata.generation.unwrap_or(0);
            let observed = obj.data["status"]["observedGeneration"].as_i64().unwrap_or(generation);
            observed >= generation && condition_true(obj, "Available")
        }
        "Ingress" => obj.data["status"]["loadBalancer"]["ingress"].as_array().is_some_and(|a| !a.is_empty()),
        "Certificate" => condition_true(obj, "Ready"),
        _ => true,
    }
}

/// One LIST that reads the readiness of several objects: a kind in a namespace, label-selected.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct ListQuery {
    /// The kind (`name` empty) in its namespace.
    pub kind: ObjectKey,
    pub selector: String,
}

/// The LISTs that read the readiness of `keys`: one per kind and namespace, in a stable order. `selector` selects
/// portalctl's (or one group's) objects; Certificates are created by cert-manager, not by portalctl, and carry none
/// of its labels, so they are listed unselected (as `status` does).
pub fn list_queries(keys: &[ObjectKey], selector: &str) -> Vec<ListQuery> {
    let mut out: Vec<ListQuery> = keys
        .iter()
        .map(|k| ListQuery {
            kind: ObjectKey {
                api_version: k.api_version,
                kind: k.kind,
                namespace: k.namespace.clone(),
                name: String::new(),
            },
            selector: if k.kind == "Certificate" { String::new() } else { selector.to_string() },
        })
        .collect();
    out.sort();
    out.dedup();
    out
}

/// What one round of LISTs saw.
pub struct Snapshot {
    /// When the round started: it shows every change made before.
    pub started: Instant,
    /// Kinds the cluster does not serve (no cert-manager: no Certificate to wait for).
    unserved: Vec<ListQuery>,
    live: HashMap<ObjectKey, DynamicObject>,
}

impl Snapshot {
    fn kind_unserved(&self, key: &ObjectKey) -> bool {
        self.unserved.iter().any(|q| q.kind.api_version == key.api_version && q.kind.kind == key.kind)
    }

    /// The object as listed, if it exists.
    pub fn get(&self, key: &ObjectKey) -> Option<&DynamicObject> {
        self.live.get(key)
    }

    /// Whether `key` is ready by [`is_ready`]; an object of a kind the cluster does not serve counts as ready.
    pub fn ready(&self, key: &ObjectKey) -> bool {
        self.kind_unserved(key) || is_ready(key, self.get(key))
    }
}

/// Reads readiness in rounds of LISTs shared by concurrent waiters. A caller asks for a snapshot that started
/// after a given moment (after its own apply); callers that queue while a round runs are served by the next one,
/// and a new round starts at most once per `interval`. A failed round is shared too: the waiters it was for get its
/// error (each LIST was already retried) instead of each trying again at once.
pub struct Poller {
    cluster: Cluster,
    selector: String,
    interval: Duration,
    last: tokio::sync::Mutex<Option<Round>>,
}

struct Round {
    started: Instant,
    queries: Vec<ListQuery>,
    result: Result<Arc<Snapshot>>,
}

impl Poller {
    pub fn new(cluster: Cluster, selector: impl Into<String>, interval: Duration) -> Poller {
        Poller { cluster, selector: selector.into(), interval, last: tokio::sync::Mutex::new(None) }
    }

    /// A snapshot of (at least) the kinds of `keys`, from a round that started at or after `since`.
    pub async fn read(&self, keys: &[ObjectKey], since: Instant) -> Result<Arc<Snapshot>> {
        let mut queries = list_queries(keys, &self.selector);
        let mut last = self.last.lock().await;
        if let Some(prev) = last.as_ref() {
            if prev.started >= since && queries.iter().all(|q| prev.queries.contains(q)) {
                return prev.result.clone();
            }
            // Keep listing what the others wait for, so that one round serves them all.
            queries.extend(prev.queries.iter().cloned());
            queries.sort();
            queries.dedup();
            tokio::time::sleep_until((prev.started + self.interval).into()).await;
        }
        let started = Instant::now();
        let result = self.round(&queries, started).await.map(Arc::new);
        *last = Some(Round { started, queries, result: result.clone() });
        result
    }

    async fn round(&self, queries: &[ListQuery], started: Instant) -> Result<Snapshot> {
        let mut unserved = Vec::new();
        for q in queries {
            if q.kind.kind == "Certificate" && !self.cluster.serves(&q.kind).await? {
                unserved.push(q.clone());
            }
        }
        let lists =
            futures::future::try_join_all(queries.iter().filter(|q| !unserved.contains(q)).map(|q| async move {
                match &q.kind.namespace {
                    Some(ns) => Ok((q, self.cluster.list_objects(&q.kind, ns, &q.selector).await?)),
                    None => Err(Error::Api {
                        action: "list",
                        object: q.kind.kind.to_string(),
                        message: "readiness is read per namespace; the object has none".into(),
                        code: None,
                    }),
                }
            }))
            .await?;
        let mut live = HashMap::new();
        for (q, items) in lists {
            for o in items {
                let key = ObjectKey {
                    api_version: q.kind.api_version,
                    kind: q.kind.kind,
                    namespace: q.kind.namespace.clone(),
                    name: o.metadata.name.clone().unwrap_or_default(),
                };
                live.insert(key, o);
            }
        }
        Ok(Snapshot { started, unserved, live })
    }
}

impl Cluster {
    /// Whether the cluster serves the kind of `key` (a LIST of at most one object in its namespace is answered).
    /// Asked once per kind and connection.
    pub async fn serves(&self, key: &ObjectKey) -> Result<bool> {
        let id = format!("{}/{}", key.api_version, key.kind);
        if let Some(known) = self.served.lock().expect("not poisoned").get(&id) {
            return Ok(*known);
        }
        let ar = super::api_resource(key);
        let api: kube::Api<DynamicObject> = match &key.namespace {
            Some(ns) => kube::Api::namespaced_with(self.client.clone(), ns, &ar),
            None => kube::Api::all_with(self.client.clone(), &ar),
        };
        let lp = kube::api::ListParams::default().limit(1);
        let served = match self.retry.run(|| api.list(&lp)).await {
            Ok(_) => true,
            Err(kube::Error::Api(s)) if s.code == 404 => false,
            Err(e) => {
                return Err(Error::api(
                    "list",
                    format!("{} in {}", key.kind, key.namespace.as_deref().unwrap_or("")),
                    &e,
                ))
            }
        };
        self.served.lock().expect("not poisoned").insert(id, served);
        Ok(served)
    }

    /// Poll until every object is ready or the timeout passes: one LIST per kind and namespace each round.
    pub async fn wait_ready(&self, mut pending: Vec<ObjectKey>, timeout: Duration) -> Result<()> {
        let start = Instant::now();
        let poller = Poller::new(self.clone(), MANAGED_SELECTOR, POLL_INTERVAL);
        loop {
            let snap = poller.read(&pending, Instant::now()).await?;
            pending.retain(|k| !snap.ready(k));
            if pending.is_empty() {
                return Ok(());
            }
            if start.elapsed() >= timeout {
                return Err(Error::Timeout { timeout, waiting: pending.iter().map(ToString::to_string).collect() });
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn obj(v: serde_json::Value) -> DynamicObject {
        serde_json::from_value(v).unwrap()
    }

    fn key(kind: &'static str) -> ObjectKey {
        ObjectKey { api_version: "v1", kind, namespace: Some("ns".into()), name: "x".into() }
    }

    fn at(api_version: &'static str, kind: &'static str, ns: &str, name: &str) -> ObjectKey {
        ObjectKey { api_version, kind, namespace: Some(ns.into()), name: name.into() }
    }

    #[test]
    fn one_list_per_kind_and_namespace() {
        let keys = vec![
            at("networking.k8s.io/v1", "Ingress", "nrw", "detmold"),
            at("cert-manager.io/v1", "Certificate", "nrw", "detmold-tls"),
            at("apps/v1", "Deployment", "nrw", "portal"),
            at("networking.k8s.io/v1", "Ingress", "nrw", "espelkamp"),
            at("cert-manager.io/v1", "Certificate", "nrw", "espelkamp-tls"),
            at("networking.k8s.io/v1", "Ingress", "sh", "kiel"),
        ];
        let q = list_queries(&keys, "portalctl.dev/group=nrw");
        let got: Vec<(&str, &str, &str)> =
            q.iter().map(|q| (q.kind.kind, q.kind.namespace.as_deref().unwrap(), q.selector.as_str())).collect();
        assert_eq!(
            got,
            [
                ("Deployment", "nrw", "portalctl.dev/group=nrw"),
                ("Certificate", "nrw", ""),
                ("Ingress", "nrw", "portalctl.dev/group=nrw"),
                ("Ingress", "sh", "portalctl.dev/group=nrw"),
            ],
            "five objects in nrw are read with three LISTs; Certificates carry no portalctl labels"
        );
        assert!(q.iter().all(|q| q.kind.name.is_empty()));
        assert!(list_queries(&[], "x").is_empty());
    }

    #[test]
    fn a_snapshot_answers_by_the_readiness_rules() {
        let ingress = at("networking.k8s.io/v1", "Ingress", "nrw", "detmold");
        let cert = at("cert-manager.io/v1", "Certificate", "nrw", "detmold-tls");
        let live =
            obj(json!({"apiVersion": "networking.k8s.io/v1", "kind": "Ingress", "metadata": {"name": "detmold"},
            "status": {"loadBalancer": {"ingress": [{"ip": "192.0.2.10"}]}}}));
        let queries = list_queries(&[ingress.clone(), cert.clone()], "s");
        let mut snap =
            Snapshot { started: Instant::now(), unserved: vec![], live: HashMap::from([(ingress.clone(), live)]) };
        assert!(snap.ready(&ingress));
        assert!(!snap.ready(&cert), "a Certificate cert-manager has not created yet is not ready");
        snap.unserved = queries.iter().filter(|q| q.kind.kind == "Certificate").cloned().collect();
        assert!(snap.ready(&cert), "no cert-manager, no Certificate to wait for");
    }

    #[test]
    fn readiness_rules() {
        let available = json!({"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "x", "generation": 2},
            "status": {"observedGeneration": 2, "conditions": [{"type": "Available", "status": "True"}]}});
        assert!(is_ready(&key("Deployment"), Some(&obj(available.clone()))));
        let mut stale = available.clone();
        stale["metadata"]["generation"] = json!(3);
        assert!(!is_ready(&key("Deployment"), Some(&obj(stale))), "the new spec is not rolled out yet");
        let mut unavailable = available;
        unavailable["status"]["conditions"][0]["status"] = json!("False");
        assert!(!is_ready(&key("Deployment"), Some(&obj(unavailable))));
        assert!(!is_ready(&key("Deployment"), None));

        let ingress = json!({"apiVersion": "networking.k8s.io/v1", "kind": "Ingress", "metadata": {"name": "x"},
            "status": {"loadBalancer": {"ingress": [{"ip": "192.0.2.10"}]}}});
        assert!(is_ready(&key("Ingress"), Some(&obj(ingress))));
        let bare =
            json!({"apiVersion": "networking.k8s.io/v1", "kind": "Ingress", "metadata": {"name": "x"}, "status": {}});
        assert!(!is_ready(&key("Ingress"), Some(&obj(bare))));

        assert!(!is_ready(&key("Certificate"), None), "cert-manager has not created it yet");
        let pending = json!({"apiVersion": "cert-manager.io/v1", "kind": "Certificate", "metadata": {"name": "x"},
            "status": {"conditions": [{"type": "Ready", "status": "False"}]}});
        assert!(!is_ready(&key("Certificate"), Some(&obj(pending))));
    }
}
