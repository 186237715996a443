//! What the last apply of a group declared, kept in the ConfigMap `portalctl-state` in the
//! group's namespace, and the guard that stops a prune from deleting most of a group.

use super::{ApplyMode, Cluster, Result};
use crate::render::{common_labels, ObjectKey};
use k8s_openapi::api::core::v1::ConfigMap;
use std::collections::BTreeMap;

/// Name of the state ConfigMap.
pub const STATE_CONFIGMAP: &str = "portalctl-state";

/// The record of the last apply.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AppliedState {
    /// Tenant slugs, sorted.
    pub tenants: Vec<String>,
    pub applied_at: String,
    pub version: String,
}

fn key(namespace: &str) -> ObjectKey {
    ObjectKey {
        api_version: "v1",
        kind: "ConfigMap",
        namespace: Some(namespace.to_string()),
        name: STATE_CONFIGMAP.into(),
    }
}

impl Cluster {
    /// The last applied state of a group, if one was recorded.
    pub async fn read_state(&self, namespace: &str) -> Result<Option<AppliedState>> {
        let Some(obj) = self.get(&key(namespace)).await? else { return Ok(None) };
        let data = obj.data.get("data").cloned().unwrap_or_default();
        let field = |k: &str| data.get(k).and_then(|v| v.as_str()).unwrap_or_default().to_string();
        let tenants = field("tenants").lines().map(str::trim).filter(|l| !l.is_empty()).map(str::to_string).collect();
        Ok(Some(AppliedState { tenants, applied_at: field("applied-at"), version: field("portalctl-version") }))
    }

    /// Record the tenants just applied.
    pub async fn write_state(&self, group: &str, namespace: &str, tenants: &[String]) -> Result<()> {
        let now =
            time::OffsetDateTime::now_utc().format(&time::format_description::well_known::Rfc3339).unwrap_or_default();
        let version = env!("CARGO_PKG_VERSION");
        let mut sorted = tenants.to_vec();
        sorted.sort();
        let cm = ConfigMap {
            metadata: crate::render::meta(STATE_CONFIGMAP, Some(namespace), common_labels(group, version, "state")),
            data: Some(BTreeMap::from([
                ("tenants".to_string(), sorted.join("\n")),
                ("applied-at".to_string(), now),
                ("portalctl-version".to_string(), version.to_string()),
            ])),
            ..Default::default()
        };
        let body = serde_json::to_value(&cm).expect("ConfigMap serializes");
        self.apply(&key(namespace), &body, ApplyMode { dry_run: false, force_conflicts: true }).await?;
        Ok(())
    }
}

/// Why a prune is refused without `--force`, or `None` when it may go ahead.
///
/// `previous` is the number of tenants of the last apply; `threshold_percent` the largest
/// shrink allowed (50 = the declared set may lose at most half of its tenants).
pub fn prune_refusal(previous: usize, declared: usize, threshold_percent: u32) -> Option<String> {
    if declared == 0 {
        return Some(format!(
            "the group declares no tenants (the last apply had {previous}); refusing to prune everything"
        ));
    }
    if previous == 0 || declared >= previous {
        return None;
    }
    let shrink = (previous - declared) as f64 * 100.0 / previous as f64;
    (shrink > f64::from(threshold_percent)).then(|| {
        format!(
            "the declared tenants shrank from {previous} to {declared} ({shrink:.0} % > --prune-threshold {threshold_percent} %)"
        )
    })
}

#[cfg(test)]
mod tests {
    use super::prune_refusal;

    #[test]
    fn empty_or_mass_shrink_is_refused() {
        assert!(prune_refusal(10, 0, 50).is_some());
        assert!(prune_refusal(0, 0, 50).is_some());
        assert!(prune_refusal(10, 4, 50).is_some(), "lost 60 %");
        assert!(prune_refusal(10, 5, 50).is_none(), "lost exactly 50 %");
        assert!(prune_refusal(10, 9, 50).is_none());
        assert!(prune_refusal(10, 9, 5).is_some(), "a stricter threshold");
        assert!(prune_refusal(0, 3, 50).is_none(), "first apply");
        assert!(prune_refusal(3, 7, 50).is_none(), "grew");
    }
}
