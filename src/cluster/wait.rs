//! Waiting until applied objects are ready: a Deployment is Available, an Ingress has a
//! load-balancer address, and the cert-manager Certificate of its TLS Secret (when cert-manager
//! created one) is Ready.

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

/// Whether one object is ready; a missing Certificate counts as ready (no cert-manager).
pub fn is_ready(key: &ObjectKey, live: Option<&DynamicObject>) -> bool {
    let Some(obj) = live else { return key.kind == "Certificate" };
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
    /// Poll until every object is ready or the timeout passes.
    pub async fn wait_ready(&self, mut pending: Vec<ObjectKey>, timeout: Duration) -> Result<()> {
        let start = Instant::now();
        loop {
            let mut still = Vec::new();
            for key in pending {
                let live = match self.get(&key).await {
                    Ok(live) => live,
                    // The Certificate kind may not be installed at all.
                    Err(Error::Api { code: Some(404), .. }) if key.kind == "Certificate" => None,
                    Err(e) => return Err(e),
                };
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

        assert!(is_ready(&key("Certificate"), None), "no cert-manager: nothing to wait for");
        let pending = json!({"apiVersion": "cert-manager.io/v1", "kind": "Certificate", "metadata": {"name": "x"},
            "status": {"conditions": [{"type": "Ready", "status": "False"}]}});
        assert!(!is_ready(&key("Certificate"), Some(&obj(pending))));
    }
}
