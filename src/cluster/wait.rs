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
