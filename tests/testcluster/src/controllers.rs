//! Simulated controllers (test infrastructure, no scheduling happens): Deployments become Available a configurable
//! delay after their last spec change, Ingresses get a load-balancer address, Certificates become Ready, and HPAs and
//! PDBs get a plausible status. Controllers can be paused per object name.

use std::collections::{BTreeSet, HashMap};
use std::sync::Arc;
use std::time::{Duration, Instant};

use serde_json::{json, Value};
use tokio::sync::watch;

use crate::resources;
use crate::server::{lock, now_rfc3339, Shared};
use crate::store::{Store, WriteOptions};

/// The field manager controllers write status under.
pub const CONTROLLER_MANAGER: &str = "testcluster-controllers";

/// How often the controllers look at the store.
const TICK: Duration = Duration::from_millis(20);

/// Controller configuration and per-object bookkeeping.
#[derive(Debug)]
pub(crate) struct ControllerSettings {
    pub readiness_delay: Duration,
    pub load_balancer_ip: String,
    /// Object names (any kind, any namespace) whose controllers do nothing.
    pub paused: BTreeSet<String>,
    /// Deployments forced ready (true) or unready (false), by (namespace, name).
    pub forced: HashMap<(String, String), bool>,
    /// When each Deployment's current generation was first seen, by (namespace, name).
    seen: HashMap<(String, String), (i64, Instant)>,
    /// Deployments still waiting for their readiness delay.
    waiting: BTreeSet<Target>,
    /// The store's resourceVersion at the last tick; later changes are looked at.
    last_seen: u64,
    /// Look at every object at the next tick (after a change of settings).
    pub resync: bool,
}

/// (kind, namespace, name) of a controlled object.
type Target = (&'static str, String, String);

impl ControllerSettings {
    pub fn new(readiness_delay: Duration) -> ControllerSettings {
        ControllerSettings {
            readiness_delay,
            load_balancer_ip: "192.0.2.10".into(),
            paused: BTreeSet::new(),
            forced: HashMap::new(),
            seen: HashMap::new(),
            waiting: BTreeSet::new(),
            last_seen: 0,
            resync: true,
        }
    }
}

/// Run the controllers until `shutdown` flips to true.
pub(crate) async fn run(shared: Arc<Shared>, mut shutdown: watch::Receiver<bool>) {
    let mut interval = tokio::time::interval(TICK);
    interval.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = interval.tick() => reconcile(&shared, Instant::now()),
            _ = shutdown.changed() => return,
        }
    }
}

/// Remove timestamps so that statuses can be compared by meaning.
fn strip_times(v: &Value) -> Value {
    match v {
        Value::Object(m) => Value::Object(
            m.iter()
                .filter(|(k, _)| {
                    !matches!(k.as_str(), "lastTransitionTime" | "lastUpdateTime" | "notBefore" | "notAfter")
                })
                .map(|(k, v)| (k.clone(), strip_times(v)))
                .collect(),
        ),
        Value::Array(a) => Value::Array(a.iter().map(strip_times).collect()),
        other => other.clone(),
    }
}

fn condition(kind: &str, ok: bool, reason: &str, message: &str, now: &str) -> Value {
    json!({"type": kind, "status": if ok { "True" } else { "False" }, "reason": reason, "message": message,
        "lastUpdateTime": now, "lastTransitionTime": now})
}

fn int_at(obj: &Value, pointer: &str, default: i64) -> i64 {
    obj.pointer(pointer).and_then(Value::as_i64).unwrap_or(default)
}

/// Whether a Deployment's current status shows a rollout from an Available earlier generation: its old pods keep
/// it Available while the new ones are not ready yet.
fn rolling_out(obj: &Value) -> bool {
    let status = obj.get("status").unwrap_or(&Value::Null);
    let available = status
        .get("conditions")
        .and_then(Value::as_array)
        .is_some_and(|c| c.iter().any(|c| c["type"] == "Available" && c["status"] == "True"));
    available
        && (int_at(status, "/observedGeneration", 0) != int_at(obj, "/metadata/generation", 1)
            || int_at(status, "/updatedReplicas", 0) < int_at(obj, "/spec/replicas", 1))
}

/// The status a Deployment should have: ready (all replicas updated and available), rolling out (an earlier
/// generation still serves: Available, but no replica updated yet), or not available at all.
pub(crate) fn deployment_status(obj: &Value, ready: bool, now: &str) -> Value {
    let replicas = int_at(obj, "/spec/replicas", 1);
    let generation = int_at(obj, "/metadata/generation", 1);
    let rolling = !ready && rolling_out(obj);
    let (updated, available) = match (ready, rolling) {
        (true, _) => (replicas, replicas),
        (false, true) => (0, int_at(obj, "/status/availableReplicas", replicas).min(replicas)),
        (false, false) => (replicas, 0),
    };
    let available_condition = if ready || rolling {
        condition("Available", true, "MinimumReplicasAvailable", "Deployment has minimum availability.", now)
    } else {
        let message = "Deployment does not have minimum availability.";
        condition("Available", false, "MinimumReplicasUnavailable", message, now)
    };
    let progressing = if ready {
        condition("Progressing", true, "NewReplicaSetAvailable", "ReplicaSet has successfully progressed.", now)
    } else {
        condition("Progressing", true, "ReplicaSetUpdated", "ReplicaSet is progressing.", now)
    };
    let mut status = json!({
        "observedGeneration": generation,
        "replicas": replicas,
        "updatedReplicas": updated,
        "readyReplicas": available,
        "availableReplicas": available,
        "conditions": [available_condition, progressing],
    });
    if replicas > available {
        status["unavailableReplicas"] = json!(replicas - available);
    }
    status
}

const CONTROLLED: [&str; 5] =
    ["Deployment", "Ingress", "Certificate", "HorizontalPodAutoscaler", "PodDisruptionBudget"];

/// Objects to look at this tick: everything after a resync, otherwise those changed (or deleted) since the last tick
/// plus the Deployments still waiting to become Available.
fn targets(settings: &mut ControllerSettings, store: &Store) -> BTreeSet<Target> {
    let mut out = BTreeSet::new();
    let changed = if settings.resync { None } else { store.events_since(settings.last_seen) };
    match changed {
        Some(events) => {
            for e in events.filter(|e| CONTROLLED.contains(&e.resource.kind)) {
                let name = e.object.pointer("/metadata/name").and_then(Value::as_str).unwrap_or_default();
                out.insert((e.resource.kind, e.namespace.clone(), name.to_string()));
            }
            out.extend(settings.waiting.iter().cloned());
        }
        None => {
            for kind in CONTROLLED {
                let rt = resources::find_by_kind(kind).expect("controlled kinds are served");
                for obj in store.objects(rt, None) {
                    let s = |p: &str| obj.pointer(p).and_then(Value::as_str).unwrap_or_default().to_string();
                    out.insert((rt.kind, s("/metadata/namespace"), s("/metadata/name")));
                }
            }
        }
    }
    settings.resync = false;
    settings.last_seen = store.resource_version();
    out
}

fn reconcile(shared: &Shared, now: Instant) {
    let stamp = now_rfc3339();
    let mut settings = lock(&shared.controllers);
    let mut store = lock(&shared.store);
    let opts = WriteOptions { manager: CONTROLLER_MANAGER, dry_run: false, now: &stamp };
    let mut wrote = false;
    for (kind, ns, name) in targets(&mut settings, &store) {
        let rt = resources::find_by_kind(kind).expect("controlled kinds are served");
        let key = (kind, ns.clone(), name.clone());
        let Ok(obj) = store.get(rt, &ns, &name) else {
            settings.waiting.remove(&key);
            settings.seen.remove(&(ns, name));
            continue;
        };
        if settings.paused.contains(&name) {
            settings.waiting.remove(&key);
            continue;
        }
        let generation = int_at(&obj, "/metadata/generation", 1);
        let desired = match kind {
            "Deployment" => {
                let dkey = (ns.clone(), name.clone());
                let since = match settings.seen.get(&dkey) {
                    Some((g, at)) if *g == generation => *at,
                    _ => {
                        settings.seen.insert(dkey.clone(), (generation, now));
                        now
                    }
                };
                let ready = match settings.forced.get(&dkey) {
                    Some(forced) => *forced,
                    None => {
                        let ready = now.duration_since(since) >= settings.readiness_delay;
                        if ready {
                            settings.waiting.remove(&key);
                        } else {
                            settings.waiting.insert(key.clone());
                        }
                        ready
                    }
                };
                deployment_status(&obj, ready, &stamp)
            }
            "Ingress" => json!({"loadBalancer": {"ingress": [{"ip": settings.load_balancer_ip}]}}),
            "Certificate" => json!({
                "conditions": [{"type": "Ready", "status": "True", "reason": "Ready",
                    "message": "Certificate is up to date and has not expired", "lastTransitionTime": stamp,
                    "observedGeneration": generation}],
                "notBefore": stamp,
                "notAfter": "2099-01-01T00:00:00Z",
            }),
            "HorizontalPodAutoscaler" => {
                let replicas = int_at(&obj, "/spec/minReplicas", 1);
                json!({"observedGeneration": generation, "currentReplicas": replicas, "desiredReplicas": replicas,
                    "conditions": [condition("AbleToScale", true, "ReadyForNewScale",
                        "recommended size matches current size", &stamp)]})
            }
            _ => {
                let expected = 1;
                json!({"observedGeneration": generation, "currentHealthy": expected, "desiredHealthy": expected,
                    "disruptionsAllowed": 0, "expectedPods": expected,
                    "conditions": [{"type": "DisruptionAllowed", "status": "False", "reason": "InsufficientPods",
                        "message": "", "lastTransitionTime": stamp, "observedGeneration": generation}]})
            }
        };
        let current = obj.get("status").cloned().unwrap_or(Value::Null);
        if strip_times(&current) != strip_times(&desired) {
            // The object exists (we just read it under the same lock), so this cannot fail.
            wrote |= store.set_status(rt, &ns, &name, desired, opts).is_ok();
        }
    }
    drop(store);
    drop(settings);
    if wrote {
        shared.notify();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn deployment_status_reflects_readiness() {
        let dep = json!({"metadata": {"generation": 3}, "spec": {"replicas": 2}});
        let ready = deployment_status(&dep, true, "t");
        assert_eq!(ready["readyReplicas"], 2);
        assert_eq!(ready["observedGeneration"], 3);
        assert_eq!(ready["conditions"][0]["status"], "True");
        assert!(ready.get("unavailableReplicas").is_none());
        let unready = deployment_status(&dep, false, "t");
        assert_eq!(unready["availableReplicas"], 0);
        assert_eq!(unready["unavailableReplicas"], 2);
        assert_eq!(unready["conditions"][0]["status"], "False");

        // A new generation of an Available Deployment rolls out: still Available, nothing updated yet.
        let mut next = dep.clone();
        next["status"] = ready;
        next["metadata"]["generation"] = json!(4);
        let rolling = deployment_status(&next, false, "t");
        assert_eq!(rolling["observedGeneration"], 4);
        assert_eq!(rolling["updatedReplicas"], 0);
        assert_eq!(rolling["availableReplicas"], 2);
        assert_eq!(rolling["conditions"][0]["status"], "True");
        assert_eq!(rolling["conditions"][1]["reason"], "ReplicaSetUpdated");
        // ... and stays so until ready.
        next["status"] = rolling.clone();
        assert_eq!(strip_times(&deployment_status(&next, false, "u")), strip_times(&rolling));
        assert_eq!(deployment_status(&next, true, "u")["updatedReplicas"], 2);
        assert_eq!(strip_times(&deployment_status(&dep, true, "a")), strip_times(&deployment_status(&dep, true, "b")));
    }
}
