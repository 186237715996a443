//! The fixed table of API resources the test cluster serves, and the discovery documents built from it.

use serde_json::{json, Value};

/// One served API resource (a kind in one group/version).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ResourceType {
    /// API group; empty for the core group.
    pub group: &'static str,
    pub version: &'static str,
    /// Plural, lower-case resource name used in URLs.
    pub plural: &'static str,
    pub kind: &'static str,
    pub namespaced: bool,
    /// Whether the resource has a `/status` subresource.
    pub status: bool,
    /// Which names are accepted for objects of this kind.
    pub name_rule: NameRule,
}

/// Name validation rule, as in the real API server.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NameRule {
    /// RFC 1123 subdomain (most kinds).
    Subdomain,
    /// RFC 1123 label (namespaces).
    Label,
    /// RFC 1035 label (services).
    Label1035,
}

impl ResourceType {
    /// `v1` or `group/version`, as in `apiVersion`.
    pub fn api_version(&self) -> String {
        if self.group.is_empty() {
            self.version.to_string()
        } else {
            format!("{}/{}", self.group, self.version)
        }
    }
}

const fn rt(
    group: &'static str,
    version: &'static str,
    plural: &'static str,
    kind: &'static str,
    namespaced: bool,
    status: bool,
    name_rule: NameRule,
) -> ResourceType {
    ResourceType { group, version, plural, kind, namespaced, status, name_rule }
}

/// Every resource the test cluster serves.
pub const RESOURCES: &[ResourceType] = &[
    rt("", "v1", "namespaces", "Namespace", false, true, NameRule::Label),
    rt("", "v1", "configmaps", "ConfigMap", true, false, NameRule::Subdomain),
    rt("", "v1", "secrets", "Secret", true, false, NameRule::Subdomain),
    rt("", "v1", "services", "Service", true, true, NameRule::Label1035),
    rt("", "v1", "serviceaccounts", "ServiceAccount", true, false, NameRule::Subdomain),
    rt("apps", "v1", "deployments", "Deployment", true, true, NameRule::Subdomain),
    rt("policy", "v1", "poddisruptionbudgets", "PodDisruptionBudget", true, true, NameRule::Subdomain),
    rt("autoscaling", "v2", "horizontalpodautoscalers", "HorizontalPodAutoscaler", true, true, NameRule::Subdomain),
    rt("networking.k8s.io", "v1", "ingresses", "Ingress", true, true, NameRule::Subdomain),
    rt("networking.k8s.io", "v1", "networkpolicies", "NetworkPolicy", true, false, NameRule::Subdomain),
    rt("rbac.authorization.k8s.io", "v1", "roles", "Role", true, false, NameRule::Subdomain),
    rt("rbac.authorization.k8s.io", "v1", "rolebindings", "RoleBinding", true, false, NameRule::Subdomain),
    rt("cert-manager.io", "v1", "certificates", "Certificate", true, true, NameRule::Subdomain),
];

/// Look a resource up by group, version and plural.
pub fn find(group: &str, version: &str, plural: &str) -> Option<&'static ResourceType> {
    RESOURCES.iter().find(|r| r.group == group && r.version == version && r.plural == plural)
}

/// Look a resource up by kind (`ConfigMap`) or plural (`configmaps`), case-insensitively.
pub fn find_by_kind(kind: &str) -> Option<&'static ResourceType> {
    RESOURCES.iter().find(|r| r.kind.eq_ignore_ascii_case(kind) || r.plural.eq_ignore_ascii_case(kind))
}

/// Whether any resource is served under this group/version.
pub fn serves_group_version(group: &str, version: &str) -> bool {
    RESOURCES.iter().any(|r| r.group == group && r.version == version)
}

fn groups() -> Vec<(&'static str, &'static str)> {
    let mut out: Vec<(&'static str, &'static str)> = Vec::new();
    for r in RESOURCES.iter().filter(|r| !r.group.is_empty()) {
        if !out.contains(&(r.group, r.version)) {
            out.push((r.group, r.version));
        }
    }
    out
}

/// `GET /api`: the core group's versions.
pub fn core_versions() -> Value {
    json!({
        "kind": "APIVersions",
        "versions": ["v1"],
        "serverAddressByClientCIDRs": [{"clientCIDR": "0.0.0.0/0", "serverAddress": "127.0.0.1"}]
    })
}

/// `GET /apis`: all named groups.
pub fn group_list() -> Value {
    let groups: Vec<Value> = groups()
        .into_iter()
        .map(|(group, version)| {
            let gv = json!({"groupVersion": format!("{group}/{version}"), "version": version});
            json!({"name": group, "versions": [gv.clone()], "preferredVersion": gv})
        })
        .collect();
    json!({"kind": "APIGroupList", "apiVersion": "v1", "groups": groups})
}

/// `GET /api/v1` or `GET /apis/<group>/<version>`: the resources of one group/version.
pub fn resource_list(group: &str, version: &str) -> Value {
    let mut resources = Vec::new();
    for r in RESOURCES.iter().filter(|r| r.group == group && r.version == version) {
        resources.push(json!({
            "name": r.plural,
            "singularName": r.kind.to_ascii_lowercase(),
            "namespaced": r.namespaced,
            "kind": r.kind,
            "verbs": ["create", "delete", "get", "list", "patch", "update", "watch"],
        }));
        if r.status {
            resources.push(json!({
                "name": format!("{}/status", r.plural),
                "singularName": "",
                "namespaced": r.namespaced,
                "kind": r.kind,
                "verbs": ["get", "patch", "update"],
            }));
        }
    }
    let group_version = if group.is_empty() { version.to_string() } else { format!("{group}/{version}") };
    json!({"kind": "APIResourceList", "apiVersion": "v1", "groupVersion": group_version, "resources": resources})
}

/// Aggregated discovery (`apidiscovery.k8s.io/v2`): `GET /api` (`core` true) or `GET /apis` with the
/// `as=APIGroupDiscoveryList` Accept header.
pub fn aggregated(core: bool) -> Value {
    let mut group_versions: Vec<(&str, &str)> = if core { vec![("", "v1")] } else { groups() };
    group_versions.dedup();
    let items: Vec<Value> = group_versions
        .into_iter()
        .map(|(group, version)| {
            let resources: Vec<Value> = RESOURCES
                .iter()
                .filter(|r| r.group == group && r.version == version)
                .map(|r| {
                    let gvk = json!({"group": r.group, "version": r.version, "kind": r.kind});
                    let subresources: Vec<Value> = if r.status {
                        vec![json!({"subresource": "status", "responseKind": gvk, "verbs": ["get", "patch", "update"]})]
                    } else {
                        Vec::new()
                    };
                    json!({
                        "resource": r.plural,
                        "responseKind": gvk,
                        "scope": if r.namespaced { "Namespaced" } else { "Cluster" },
                        "singularResource": r.kind.to_ascii_lowercase(),
                        "verbs": ["create", "delete", "get", "list", "patch", "update", "watch"],
                        "subresources": subresources,
                    })
                })
                .collect();
            json!({"metadata": {"name": group},
                "versions": [{"version": version, "resources": resources, "freshness": "Current"}]})
        })
        .collect();
    json!({"kind": "APIGroupDiscoveryList", "apiVersion": "apidiscovery.k8s.io/v2", "metadata": {}, "items": items})
}

/// `GET /version`.
pub fn version_info() -> Value {
    json!({
        "major": "1",
        "minor": "33",
        "gitVersion": "v1.33.0-portalctl-testcluster",
        "gitCommit": "0000000000000000000000000000000000000000",
        "gitTreeState": "clean",
        "buildDate": "2025-01-01T00:00:00Z",
        "goVersion": "none",
        "compiler": "none",
        "platform": "linux/amd64"
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lookup_by_kind_and_plural() {
        assert_eq!(find_by_kind("Deployment").unwrap().group, "apps");
        assert_eq!(find_by_kind("ingresses").unwrap().kind, "Ingress");
        assert!(find_by_kind("Pod").is_none());
    }

    #[test]
    fn discovery_lists_status_subresources() {
        let list = resource_list("apps", "v1");
        let names: Vec<&str> =
            list["resources"].as_array().unwrap().iter().map(|r| r["name"].as_str().unwrap()).collect();
        assert_eq!(names, ["deployments", "deployments/status"]);
        let groups = group_list();
        assert!(groups["groups"].as_array().unwrap().iter().any(|g| g["name"] == "cert-manager.io"));
        assert!(!serves_group_version("apps", "v1beta1"));
    }
}
