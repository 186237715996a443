//! Values for the Helm chart `charts/serviceportal`, generated from a group and its tenants so
//! that the chart and `portalctl render` describe the same objects from one source of truth.

use super::tenant::tenant_json;
use super::{saml_environment, Options, SecretSource};
use crate::tenant::{Group, Placement, Tenant};
use serde_json::{json, Map, Value};

/// Split an image reference into repository and tag (`latest` when it has none).
pub fn split_image(image: &str) -> (String, String) {
    if let Some((repo, digest)) = image.split_once('@') {
        return (repo.to_string(), format!("@{digest}"));
    }
    let slash = image.rfind('/').map_or(0, |i| i + 1);
    match image[slash..].rfind(':') {
        Some(i) => (image[..slash + i].to_string(), image[slash + i + 1..].to_string()),
        None => (image.to_string(), "latest".to_string()),
    }
}

/// The chart values for a group: the chart's settings plus every tenant of the group.
pub fn helm_values(group: &Group, tenants: &[&Tenant], options: &Options) -> Value {
    let (repository, tag) = split_image(super::image(group, options));
    let mut tenants: Vec<&Tenant> = tenants.iter().copied().filter(|t| t.group == group.name).collect();
    tenants.sort_by(|a, b| a.slug.cmp(&b.slug));
    let mut map = Map::new();
    for t in tenants {
        let source = t.servicekonto.as_ref().and_then(|b| b.credentials.as_ref()).and_then(SecretSource::of);
        let config: Value = serde_json::from_str(&tenant_json(t)).expect("tenant JSON parses");
        map.insert(
            t.slug.clone(),
            json!({
                "hostnames": t.hostnames,
                "placement": match t.placement { Placement::Shared => "shared", Placement::Dedicated => "dedicated" },
                "servicekontoSecretSource": source.map(|s| s.describe()).unwrap_or_default(),
                "samlEnvironment": saml_environment(t).map(crate::servicekonto::keys::env_name).unwrap_or_default(),
                "config": config,
            }),
        );
    }
    json!({
        "group": group.name,
        "namespace": { "create": true },
        "image": { "repository": repository, "tag": tag, "pullPolicy": "IfNotPresent" },
        "replicaCount": options.replicas,
        "resources": {
            "requests": { "cpu": options.cpu_request, "memory": options.memory_request },
            "limits": { "cpu": options.cpu_limit, "memory": options.memory_limit },
        },
        "autoscaling": {
            "maxReplicas": options.max_replicas,
            "targetCPUUtilizationPercentage": options.cpu_target_percent,
        },
        "ingress": {
            "className": options.ingress_class,
            "clusterIssuer": options.cluster_issuer,
            "controllerNamespace": options.ingress_namespace,
            "annotations": options.ingress_annotations,
        },
        "ops": { "namespaces": options.ops_namespaces },
        "database": {
            "host": options.database_host,
            "port": options.database_port,
            "name": options.database_name,
        },
        "tenants": Value::Object(map),
    })
}

#[cfg(test)]
mod tests {
    use super::split_image;

    #[test]
    fn images_split_into_repository_and_tag() {
        assert_eq!(split_image("portalctl/portalctl:0.1.0"), ("portalctl/portalctl".into(), "0.1.0".into()));
        assert_eq!(split_image("registry:5000/portal"), ("registry:5000/portal".into(), "latest".into()));
        assert_eq!(split_image("r:5000/p:1.2"), ("r:5000/p".into(), "1.2".into()));
    }
}
