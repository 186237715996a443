//! The per-tenant objects: Ingress, ConfigMap, the Servicekonto Secret when its value comes
//! from the applying process, and for `placement: dedicated` the tenant's own Deployment.

use super::{
    common_labels, image_version, meta, platform, Object, Options, SecretSource, PORTAL, SECRET_SOURCE_ANNOTATION,
    TENANT_JSON, TENANT_LABEL,
};
use crate::tenant::{Group, Placement, Tenant};
use k8s_openapi::api::core::v1::{ConfigMap, Secret};
use k8s_openapi::api::networking::v1::{
    HTTPIngressPath, HTTPIngressRuleValue, Ingress, IngressBackend, IngressRule, IngressServiceBackend, IngressSpec,
    IngressTLS, ServiceBackendPort,
};
use std::collections::BTreeMap;

/// Component label of a tenant's objects (its dedicated server uses `server`).
pub const TENANT_COMPONENT: &str = "tenant";

/// Name of the Deployment and Service serving a tenant.
pub fn server_name(t: &Tenant) -> String {
    match t.placement {
        Placement::Shared => PORTAL.to_string(),
        Placement::Dedicated => format!("{PORTAL}-{}", t.slug),
    }
}

/// Name of the tenant's TLS Secret (issued by cert-manager).
pub fn tls_secret_name(slug: &str) -> String {
    format!("{slug}-tls")
}

/// The tenant as its ConfigMap carries it: pretty JSON with keys sorted, so that the Helm
/// chart's `toPrettyJson` of the same values yields the same text.
pub fn tenant_json(t: &Tenant) -> String {
    let value = sort_keys(serde_json::to_value(t).expect("a tenant serializes"));
    serde_json::to_string_pretty(&value).expect("JSON values serialize")
}

fn sort_keys(v: serde_json::Value) -> serde_json::Value {
    match v {
        serde_json::Value::Object(map) => {
            let mut entries: Vec<_> = map.into_iter().collect();
            entries.sort_by(|a, b| a.0.cmp(&b.0));
            serde_json::Value::Object(entries.into_iter().map(|(k, v)| (k, sort_keys(v))).collect())
        }
        serde_json::Value::Array(a) => serde_json::Value::Array(a.into_iter().map(sort_keys).collect()),
        other => other,
    }
}

pub(super) fn objects(group: &Group, t: &Tenant, options: &Options) -> Vec<Object> {
    let ns = t.namespace.as_str();
    let version = image_version(super::image(group, options));
    let labels = |component: &str| {
        let mut l = common_labels(&group.name, &version, component);
        l.insert(TENANT_LABEL.to_string(), t.slug.clone());
        l
    };
    let server = server_name(t);
    let mut out = vec![
        Object::ConfigMap(ConfigMap {
            metadata: meta(&format!("{}-tenant", t.slug), Some(ns), labels(TENANT_COMPONENT)),
            data: Some(BTreeMap::from([(TENANT_JSON.to_string(), tenant_json(t))])),
            ..Default::default()
        }),
        ingress(t, &server, labels(TENANT_COMPONENT), options),
    ];
    if let Some(source) = t.servicekonto.as_ref().and_then(|b| b.credentials.as_ref()).and_then(SecretSource::of) {
        let mut m = meta(&format!("{}-servicekonto", t.slug), Some(ns), labels(TENANT_COMPONENT));
        m.annotations = Some(BTreeMap::from([(SECRET_SOURCE_ANNOTATION.to_string(), source.describe())]));
        out.push(Object::Secret(Secret { metadata: m, type_: Some("Opaque".into()), ..Default::default() }, source));
    }
    if t.placement == Placement::Dedicated {
        out.extend(platform::server_objects(group, &server, labels(platform::SERVER_COMPONENT), &[t], options));
    }
    out
}

fn ingress(t: &Tenant, service: &str, labels: BTreeMap<String, String>, options: &Options) -> Object {
    let mut m = meta(&t.slug, Some(&t.namespace), labels);
    let mut annotations = options.ingress_annotations.clone();
    annotations.insert("cert-manager.io/cluster-issuer".to_string(), options.cluster_issuer.clone());
    annotations.insert("external-dns.alpha.kubernetes.io/hostname".to_string(), t.hostnames.join(","));
    m.annotations = Some(annotations);
    let backend = IngressBackend {
        service: Some(IngressServiceBackend {
            name: service.to_string(),
            port: Some(ServiceBackendPort { name: Some("http".into()), number: None }),
        }),
        ..Default::default()
    };
    let rules = t
        .hostnames
        .iter()
        .map(|h| IngressRule {
            host: Some(h.clone()),
            http: Some(HTTPIngressRuleValue {
                paths: vec![HTTPIngressPath {
                    path: Some("/".into()),
                    path_type: "Prefix".into(),
                    backend: backend.clone(),
                }],
            }),
        })
        .collect();
    Object::Ingress(Ingress {
        metadata: m,
        spec: Some(IngressSpec {
            ingress_class_name: Some(options.ingress_class.clone()),
            rules: Some(rules),
            tls: Some(vec![IngressTLS {
                hosts: Some(t.hostnames.clone()),
                secret_name: Some(tls_secret_name(&t.slug)),
            }]),
            ..Default::default()
        }),
        ..Default::default()
    })
}
