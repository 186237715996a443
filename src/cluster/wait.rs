//! Waiting until applied objects are ready: a Deployment is Available, an Ingress has a
//! load-balancer address, and the cert-manager Certificate of its TLS Secret is Ready. Where
//! cert-manager is installed (the cluster serves `certificates.cert-manager.io`) a Certificate
//! that does not exist yet is not ready: cert-manager has not created it; where it is not, there
//! is no Certificate to wait for.

use super::{Cluster, Error, Result};
use crate::render::{Object, ObjectKey};
use kube::api::DynamicObject;
use std::time::{Duration, Instant};

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

    /// Poll until every object is ready or the timeout passes.
    pub async fn wait_ready(&self, mut pending: Vec<ObjectKey>, timeout: Duration) -> Result<()> {
        let start = Instant::now();
        if let Some(cert) = pending.iter().find(|k| k.kind == "Certificate").cloned() {
            if !self.serves(&cert).await? {
                pending.retain(|k| k.kind != "Certificate");
            }
        }
        loop {
            let mut still = Vec::new();
            for key in pending {
                let live = self.get(&key).await?;
                if !is_ready(&key, live.as_ref()) {
                    still.push(key);
                }
            }
            if still.is_empty() {
                return Ok(());
            }
            if start.elapsed() >= timeout {
                return Err(Error::Timeout { timeout, waiting: still.iter().map(ToString::to_string).collect() });
            }
            pending = still;
            tokio::time::sleep(Duration::from_millis(500)).await;
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
