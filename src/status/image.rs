//! Which portal-server image a group runs, as the cluster shows it: what the group's Deployments ask
//! for (their pod templates) and what their pods run, by digest where the reference or the container
//! runtime names one. Pure: objects in (as the API server returns them), a summary out.

use serde::Serialize;
use serde_json::Value;
use std::collections::{BTreeMap, BTreeSet};

/// The image of a group's portal server.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct GroupImage {
    /// The image the group's Deployments ask for (their pod templates), as written: by digest
    /// (`registry/portalctl@sha256:…`) where it is one. `None` when they ask for different images.
    pub reference: Option<String>,
    /// The digest (`sha256:…`) `reference` names, if it is by digest.
    pub digest: Option<String>,
    /// What the pods run: each image with the number of its pods, most pods first.
    pub running: Vec<RunningImage>,
    /// Not one image throughout: the Deployments ask for different images, or pods run another
    /// image than asked for (a rollout in progress, paused or stuck half-way).
    pub mixed: bool,
}

/// One image the pods of a group run.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct RunningImage {
    pub image: String,
    /// Its digest: from the reference, or from the container runtime's `imageID`.
    pub digest: Option<String>,
    /// Pods running it.
    pub pods: usize,
}

/// The digest a reference names (`…@sha256:<64 hex digits>`), if any.
pub fn digest_of(reference: &str) -> Option<&str> {
    let (_, digest) = reference.rsplit_once('@')?;
    let hex = digest.strip_prefix("sha256:")?;
    (hex.len() == 64 && hex.bytes().all(|b| b.is_ascii_hexdigit())).then_some(digest)
}

/// The portal container of a pod spec: the first one (the server is the only container).
fn container(pod_spec: &Value) -> &Value {
    &pod_spec["containers"][0]
}

impl GroupImage {
    /// From the group's Deployments and their pods; `None` when the group has no Deployment.
    /// Pods being deleted, or finished, run nothing and are left out.
    pub fn observe(deployments: &[Value], pods: &[Value]) -> Option<GroupImage> {
        let asked: BTreeSet<&str> =
            deployments.iter().filter_map(|d| container(&d["spec"]["template"]["spec"])["image"].as_str()).collect();
        if asked.is_empty() {
            return None;
        }
        let mut running: BTreeMap<&str, RunningImage> = BTreeMap::new();
        for pod in pods {
            let gone = !pod["metadata"]["deletionTimestamp"].is_null()
                || matches!(pod["status"]["phase"].as_str(), Some("Succeeded" | "Failed"));
            let c = container(&pod["spec"]);
            let Some(image) = c["image"].as_str().filter(|_| !gone) else { continue };
            let runtime = pod["status"]["containerStatuses"]
                .as_array()
                .and_then(|cs| cs.iter().find(|s| s["name"] == c["name"]))
                .and_then(|s| s["imageID"].as_str())
                .and_then(digest_of);
            let entry = running.entry(image).or_insert_with(|| RunningImage {
                image: image.to_string(),
                digest: None,
                pods: 0,
            });
            entry.pods += 1;
            if entry.digest.is_none() {
                entry.digest = digest_of(image).or(runtime).map(String::from);
            }
        }
        let every: BTreeSet<&str> = asked.iter().copied().chain(running.keys().copied()).collect();
        let mut running: Vec<RunningImage> = running.into_values().collect();
        running.sort_by(|a, b| b.pods.cmp(&a.pods).then_with(|| a.image.cmp(&b.image)));
        let reference = (asked.len() == 1).then(|| asked.iter().next().map(|s| s.to_string())).flatten();
        Some(GroupImage {
            digest: reference.as_deref().and_then(digest_of).map(String::from),
            reference,
            running,
            mixed: every.len() > 1,
        })
    }

    /// One line for people: "registry/portalctl@sha256:… (2 pods)", or, when mixed, which pods run
    /// what.
    pub fn describe(&self) -> String {
        self.describe_in(&ENGLISH)
    }

    /// [`GroupImage::describe`] in German, for reports.
    pub fn describe_de(&self) -> String {
        self.describe_in(&GERMAN)
    }

    fn describe_in(&self, w: &Words) -> String {
        let pods = |n: usize| if n == 1 { w.one_pod.to_string() } else { format!("{n} {}", w.pods) };
        if !self.mixed {
            let image = self.reference.as_deref().unwrap_or_default();
            return match self.running.first() {
                Some(r) => format!("{image} ({}{})", pods(r.pods), runtime_digest(r, image)),
                None => format!("{image} ({})", w.no_pods),
            };
        }
        let running: Vec<String> = self
            .running
            .iter()
            .map(|r| format!("{}{}{}{}", pods(r.pods), w.running, r.image, runtime_digest(r, &r.image)))
            .collect();
        let running = if running.is_empty() { w.no_pods.to_string() } else { running.join(", ") };
        match &self.reference {
            Some(asked) => format!("{}: {running}; {}{asked}{}", w.mixed, w.asks, w.in_progress),
            None => format!("{}: {running}; {}", w.mixed, w.differ),
        }
    }
}

/// ", sha256:…" when the runtime named a digest the reference does not show.
fn runtime_digest(r: &RunningImage, shown: &str) -> String {
    match &r.digest {
        Some(d) if !shown.contains(d.as_str()) => format!(", {d}"),
        _ => String::new(),
    }
}

/// The words of [`GroupImage::describe`] in one language.
struct Words {
    one_pod: &'static str,
    pods: &'static str,
    no_pods: &'static str,
    /// Between the pod count and the image of a mixed group.
    running: &'static str,
    mixed: &'static str,
    asks: &'static str,
    in_progress: &'static str,
    differ: &'static str,
}

const ENGLISH: Words = Words {
    one_pod: "1 pod",
    pods: "pods",
    no_pods: "no pods running",
    running: " ",
    mixed: "mixed",
    asks: "the Deployment asks for ",
    in_progress: " (a rollout in progress?)",
    differ: "the group's Deployments ask for different images",
};

const GERMAN: Words = Words {
    one_pod: "1 Pod",
    pods: "Pods",
    no_pods: "kein Pod läuft",
    running: " mit ",
    mixed: "uneinheitlich",
    asks: "verlangt ist ",
    in_progress: " (Rollout im Gang?)",
    differ: "die Deployments der Gruppe verlangen verschiedene Images",
};

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    const A: &str =
        "registry.example/portalctl@sha256:aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa";
    const B: &str =
        "registry.example/portalctl@sha256:bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb";

    fn deployment(image: &str) -> Value {
        json!({"spec": {"template": {"spec": {"containers": [{"name": "portal", "image": image}]}}}})
    }

    fn pod(image: &str) -> Value {
        json!({"metadata": {}, "spec": {"containers": [{"name": "portal", "image": image}]},
               "status": {"phase": "Running", "containerStatuses": [{"name": "portal", "image": image}]}})
    }

    #[test]
    fn one_image_by_digest() {
        let img = GroupImage::observe(&[deployment(A)], &[pod(A), pod(A)]).unwrap();
        assert_eq!(img.reference.as_deref(), Some(A));
        assert_eq!(img.digest.as_deref(), Some(&A[A.len() - 71..]));
        assert!(!img.mixed);
        assert_eq!(img.running, [RunningImage { image: A.into(), digest: img.digest.clone(), pods: 2 }]);
        assert_eq!(img.describe(), format!("{A} (2 pods)"));
        let json = serde_json::to_value(&img).unwrap();
        assert_eq!(json["running"][0]["pods"], 2);
        assert_eq!(json["mixed"], false);
        assert_eq!(GroupImage::observe(&[], &[pod(A)]), None, "no Deployment, nothing to say");
    }

    #[test]
    fn replicas_running_different_images_are_said() {
        // A rollout half-way: the template asks for B; two old pods run A, one new pod B; a deleted one is gone.
        let mut leaving = pod(A);
        leaving["metadata"]["deletionTimestamp"] = json!("2026-11-29T21:00:00Z");
        let img = GroupImage::observe(&[deployment(B)], &[pod(A), pod(B), pod(A), leaving]).unwrap();
        assert!(img.mixed);
        assert_eq!(img.reference.as_deref(), Some(B));
        let running: Vec<(&str, usize)> = img.running.iter().map(|r| (r.image.as_str(), r.pods)).collect();
        assert_eq!(running, [(A, 2), (B, 1)]);
        assert_eq!(
            img.describe(),
            format!("mixed: 2 pods {A}, 1 pod {B}; the Deployment asks for {B} (a rollout in progress?)")
        );
        assert!(img.describe_de().starts_with("uneinheitlich: 2 Pods mit "), "{}", img.describe_de());
        // A paused rollout: the template changed, every pod still runs the old image.
        assert!(GroupImage::observe(&[deployment(B)], &[pod(A)]).unwrap().mixed);
        // Two Deployments (a dedicated tenant) asking for different images.
        let img = GroupImage::observe(&[deployment(A), deployment(B)], &[]).unwrap();
        assert!(img.mixed && img.reference.is_none());
    }

    #[test]
    fn a_tag_is_shown_with_the_digest_the_runtime_pulled() {
        let tag = "registry.example/portalctl:0.1.0";
        let mut p = pod(tag);
        let id = format!("registry.example/portalctl@{}", &A[A.len() - 71..]);
        p["status"]["containerStatuses"][0]["imageID"] = json!(id);
        let img = GroupImage::observe(&[deployment(tag)], &[p]).unwrap();
        assert_eq!(img.digest, None, "the reference is a tag");
        assert_eq!(img.running[0].digest.as_deref(), Some(&A[A.len() - 71..]));
        assert_eq!(img.describe(), format!("{tag} (1 pod, {})", &A[A.len() - 71..]));
        assert_eq!(digest_of("portalctl@sha256:abc"), None);
    }
}
