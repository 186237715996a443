//! Desired state, pure: the Kubernetes objects of a rollout group and its tenants, as typed
//! k8s-openapi values in a stable order.
//!
//! **Architecture invariant:** this module does no IO. Secret values are never read here: a
//! Servicekonto Secret is rendered without data and carries the reference it is resolved from
//! at apply time ([`SecretSource`]).

pub mod chart;
mod platform;
mod tenant;

pub use tenant::{server_name, tls_secret_name};
pub mod values;

use crate::tenant::{Environment, Group, Placement, Protocol, SecretRef, Tenant};
use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::autoscaling::v2::HorizontalPodAutoscaler;
use k8s_openapi::api::core::v1::{ConfigMap, Namespace, Secret, Service, ServiceAccount};
use k8s_openapi::api::networking::v1::{Ingress, NetworkPolicy};
use k8s_openapi::api::policy::v1::PodDisruptionBudget;
use k8s_openapi::api::rbac::v1::{Role, RoleBinding};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use serde::Serialize;
use std::collections::BTreeMap;

/// Name of the shared portal-server Deployment, Service, ServiceAccount, Role and RoleBinding.
pub const PORTAL: &str = "portal";
/// Secret with the group role's database credentials (created by `db provision`).
pub const DB_SECRET: &str = "portal-db";
/// The container port of the portal server's public listener (named `http`).
pub const CONTAINER_PORT: i32 = 8080;
/// The container port of the operations listener (named `ops`): `/healthz`, `/readyz`, `/metrics`
/// and the identity endpoint. Also the Service's `ops` port; never routed by an Ingress.
pub const OPS_PORT: i32 = 9090;
/// Where the pod mounts the Servicekonto key Secrets: the server's `--secrets-dir`, laid out as
/// `servicekonto::keys` expects (`<group>/<tenant>.saml-<env>.{key,crt}.pem`).
pub const SECRETS_MOUNT: &str = "/etc/portalctl/secrets";
/// `app.kubernetes.io/name` of everything portalctl renders.
pub const APP_NAME: &str = "serviceportal";
/// Label naming the rollout group.
pub const GROUP_LABEL: &str = "portalctl.dev/group";
/// Label naming the tenant on per-tenant objects.
pub const TENANT_LABEL: &str = "portalctl.dev/tenant";
/// Label that tells one portal-server Deployment's pods from another's (selector label).
pub const SERVER_LABEL: &str = "portalctl.dev/server";
/// Annotation on a Servicekonto Secret naming where its value comes from.
pub const SECRET_SOURCE_ANNOTATION: &str = "portalctl.dev/secret-source";
/// Data key of a tenant's ConfigMap.
pub const TENANT_JSON: &str = "tenant.json";
/// Data key of the Servicekonto Secret.
pub const SERVICEKONTO_KEY: &str = "credentials";

/// Cluster-specific settings that are not part of the tenant files. Defaults suit an
/// ingress-nginx + cert-manager + external-dns cluster.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Options {
    /// Replicas of each portal-server Deployment (HPA minimum, too).
    pub replicas: i32,
    /// HPA maximum.
    pub max_replicas: i32,
    /// HPA target CPU utilisation in percent.
    pub cpu_target_percent: i32,
    pub cpu_request: String,
    pub memory_request: String,
    pub cpu_limit: String,
    pub memory_limit: String,
    /// `spec.ingressClassName` of the Ingresses.
    pub ingress_class: String,
    /// Namespace of the ingress controller: the only source of traffic to the portal pods.
    pub ingress_namespace: String,
    /// cert-manager ClusterIssuer named in the Ingress annotation.
    pub cluster_issuer: String,
    /// PostgreSQL host, port and database the portal server connects to.
    pub database_host: String,
    pub database_port: u16,
    pub database_name: String,
    /// Namespaces whose pods may reach the operations port (Prometheus, an in-cluster `portalctl status`).
    pub ops_namespaces: Vec<String>,
    /// Annotations of every tenant Ingress besides cert-manager's and external-dns's: what the
    /// ingress controller enforces before a request reaches the server (body size, timeouts, rate limits).
    pub ingress_annotations: BTreeMap<String, String>,
    /// Image of the portal server instead of the group's `defaults.image` (`render --image`), e.g.
    /// pinned by the digest `cargo xtask image` printed: `registry/portalctl@sha256:…`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub image: Option<String>,
}

/// The ingress-nginx annotations rendered by default (see docs/kubernetes.md, "What the Ingress does").
pub fn default_ingress_annotations() -> BTreeMap<String, String> {
    [
        // Largest request body: a SAML POST (at most 512 KiB of response, form-encoded) fits.
        ("nginx.ingress.kubernetes.io/proxy-body-size", "1m"),
        ("nginx.ingress.kubernetes.io/proxy-connect-timeout", "5"),
        ("nginx.ingress.kubernetes.io/proxy-read-timeout", "30"),
        ("nginx.ingress.kubernetes.io/proxy-send-timeout", "30"),
        // Per client address and controller replica.
        ("nginx.ingress.kubernetes.io/limit-rps", "20"),
        ("nginx.ingress.kubernetes.io/limit-connections", "20"),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_string(), v.to_string()))
    .collect()
}

impl Default for Options {
    fn default() -> Self {
        Options {
            replicas: 2,
            max_replicas: 10,
            cpu_target_percent: 70,
            cpu_request: "100m".into(),
            memory_request: "128Mi".into(),
            cpu_limit: "1".into(),
            memory_limit: "512Mi".into(),
            ingress_class: "nginx".into(),
            ingress_namespace: "ingress-nginx".into(),
            cluster_issuer: "letsencrypt-prod".into(),
            database_host: "postgres".into(),
            database_port: 5432,
            database_name: "serviceportal".into(),
            ops_namespaces: vec!["monitoring".into()],
            ingress_annotations: default_ingress_annotations(),
            image: None,
        }
    }
}

/// Name of the Secret holding a tenant's SAML SP key pair for one environment (type
/// `kubernetes.io/tls`: keys `tls.key`, `tls.crt`). Created out of band, never rendered.
pub fn saml_secret_name(slug: &str, env: Environment) -> String {
    format!("{slug}-saml-{}", crate::servicekonto::keys::env_name(env))
}

/// The environment of a tenant's SAML binding, if it logs in with SAML.
pub fn saml_environment(t: &Tenant) -> Option<Environment> {
    t.servicekonto.as_ref().filter(|b| b.protocol == Protocol::Saml).map(|b| b.environment)
}

/// Where a Secret's value comes from at apply time.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub enum SecretSource {
    /// An environment variable of the applying process.
    Env(String),
    /// A file readable by the applying process.
    File(String),
}

impl SecretSource {
    /// `env:NAME` / `file:PATH`, as written into the annotation.
    pub fn describe(&self) -> String {
        match self {
            SecretSource::Env(v) => format!("env:{v}"),
            SecretSource::File(p) => format!("file:{p}"),
        }
    }

    /// The source of a reference, or `None` for a `secretKeyRef` (used as is, nothing to render).
    pub fn of(r: &SecretRef) -> Option<SecretSource> {
        if let Some(e) = &r.env {
            Some(SecretSource::Env(e.clone()))
        } else {
            r.file.as_ref().map(|f| SecretSource::File(f.clone()))
        }
    }
}

/// One Kubernetes object of the desired state.
// Objects are built once and kept in one Vec; boxing the large variants would buy nothing.
#[allow(clippy::large_enum_variant)]
#[derive(Debug, Clone, PartialEq)]
pub enum Object {
    Namespace(Namespace),
    ServiceAccount(ServiceAccount),
    Role(Role),
    RoleBinding(RoleBinding),
    NetworkPolicy(NetworkPolicy),
    ConfigMap(ConfigMap),
    /// A Secret without data, and where its data comes from.
    Secret(Secret, SecretSource),
    Service(Service),
    Deployment(Deployment),
    PodDisruptionBudget(PodDisruptionBudget),
    HorizontalPodAutoscaler(HorizontalPodAutoscaler),
    Ingress(Ingress),
}

macro_rules! each {
    ($self:expr, $o:ident => $e:expr) => {
        match $self {
            Object::Namespace($o) => $e,
            Object::ServiceAccount($o) => $e,
            Object::Role($o) => $e,
            Object::RoleBinding($o) => $e,
            Object::NetworkPolicy($o) => $e,
            Object::ConfigMap($o) => $e,
            Object::Secret($o, _) => $e,
            Object::Service($o) => $e,
            Object::Deployment($o) => $e,
            Object::PodDisruptionBudget($o) => $e,
            Object::HorizontalPodAutoscaler($o) => $e,
            Object::Ingress($o) => $e,
        }
    };
}

/// What identifies an object in a cluster.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
pub struct ObjectKey {
    pub api_version: &'static str,
    pub kind: &'static str,
    pub namespace: Option<String>,
    pub name: String,
}

impl std::fmt::Display for ObjectKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match &self.namespace {
            Some(ns) => write!(f, "{} {ns}/{}", self.kind, self.name),
            None => write!(f, "{} {}", self.kind, self.name),
        }
    }
}

fn key_of<K: k8s_openapi::Resource + k8s_openapi::Metadata<Ty = ObjectMeta>>(o: &K) -> ObjectKey {
    ObjectKey {
        api_version: K::API_VERSION,
        kind: K::KIND,
        namespace: o.metadata().namespace.clone(),
        name: o.metadata().name.clone().unwrap_or_default(),
    }
}

impl Object {
    pub fn key(&self) -> ObjectKey {
        each!(self, o => key_of(o))
    }

    pub fn metadata(&self) -> &ObjectMeta {
        each!(self, o => &o.metadata)
    }

    /// The tenant this object belongs to, from its label.
    pub fn tenant(&self) -> Option<&str> {
        self.metadata().labels.as_ref()?.get(TENANT_LABEL).map(String::as_str)
    }

    /// Where the data of a Secret comes from.
    pub fn secret_source(&self) -> Option<&SecretSource> {
        match self {
            Object::Secret(_, s) => Some(s),
            _ => None,
        }
    }

    /// The object as JSON, with `apiVersion` and `kind`.
    pub fn to_json(&self) -> serde_json::Value {
        each!(self, o => serde_json::to_value(o).expect("k8s-openapi objects serialize"))
    }

    /// Apply order: what others depend on comes first (the namespace, RBAC, configuration).
    fn rank(&self) -> u8 {
        match self {
            Object::Namespace(_) => 0,
            Object::NetworkPolicy(_) => 1,
            Object::ServiceAccount(_) => 2,
            Object::Secret(..) => 3,
            Object::ConfigMap(_) => 4,
            Object::Role(_) => 5,
            Object::RoleBinding(_) => 6,
            Object::Service(_) => 7,
            Object::Deployment(_) => 8,
            Object::HorizontalPodAutoscaler(_) => 9,
            Object::PodDisruptionBudget(_) => 10,
            Object::Ingress(_) => 11,
        }
    }
}

/// The objects of one group, in apply order (kind, then namespace and name).
#[derive(Debug, Clone, Default)]
pub struct DesiredState {
    pub objects: Vec<Object>,
}

impl DesiredState {
    /// Objects of one tenant only.
    pub fn of_tenant<'a>(&'a self, slug: &'a str) -> impl Iterator<Item = &'a Object> + 'a {
        self.objects.iter().filter(move |o| o.tenant() == Some(slug))
    }

    /// Deterministic multi-document YAML. Secrets carry a comment naming their reference.
    pub fn to_yaml(&self) -> String {
        // Serializing is the expensive part for large groups: split it across the CPUs, then
        // join the pieces in order (the result does not depend on the split).
        let threads = std::thread::available_parallelism().map_or(1, |n| n.get()).min(8);
        let chunk = self.objects.len().div_ceil(threads).max(256);
        let pieces: Vec<Vec<String>> = std::thread::scope(|scope| {
            let handles: Vec<_> = self
                .objects
                .chunks(chunk)
                .map(|part| scope.spawn(move || part.iter().map(object_yaml).collect::<Vec<String>>()))
                .collect();
            handles.into_iter().map(|h| h.join().expect("YAML serialization does not panic")).collect()
        });
        let mut out = String::with_capacity(pieces.iter().flatten().map(|p| p.len() + 4).sum());
        for (i, doc) in pieces.iter().flatten().enumerate() {
            if i > 0 {
                out.push_str("---\n");
            }
            out.push_str(doc);
        }
        out
    }
}

/// One object as a YAML document (no `---`).
pub fn object_yaml(o: &Object) -> String {
    let mut out = String::new();
    if let Some(src) = o.secret_source() {
        out.push_str(&format!("# Secret data is resolved from {} at apply time and never rendered.\n", src.describe()));
    }
    // Straight from the typed object: the same text as going through JSON, without building a tree.
    let yaml = each!(o, typed => serde_saphyr::to_string(typed));
    out.push_str(&yaml.expect("k8s-openapi objects serialize as YAML"));
    out
}

/// Labels every object of a group carries.
pub fn common_labels(group: &str, version: &str, component: &str) -> BTreeMap<String, String> {
    BTreeMap::from([
        ("app.kubernetes.io/name".to_string(), APP_NAME.to_string()),
        ("app.kubernetes.io/instance".to_string(), group.to_string()),
        ("app.kubernetes.io/managed-by".to_string(), "portalctl".to_string()),
        ("app.kubernetes.io/version".to_string(), version.to_string()),
        ("app.kubernetes.io/component".to_string(), component.to_string()),
        (GROUP_LABEL.to_string(), group.to_string()),
    ])
}

/// The portal-server image of a group: `options.image` when given, else the group's.
pub fn image<'a>(group: &'a Group, options: &'a Options) -> &'a str {
    options.image.as_deref().unwrap_or(&group.image)
}

/// The tag of an image reference (`latest` when it has none; the digest when pinned by one).
pub fn image_version(image: &str) -> String {
    if let Some((_, digest)) = image.split_once('@') {
        return digest.replace(':', "-").chars().take(63).collect();
    }
    let last = image.rsplit('/').next().unwrap_or(image);
    match last.split_once(':') {
        Some((_, tag)) => tag.to_string(),
        None => "latest".to_string(),
    }
}

/// Build the desired state of a group from its tenants (those of other groups are ignored).
pub fn render(group: &Group, tenants: &[&Tenant], options: &Options) -> DesiredState {
    let mut tenants: Vec<&Tenant> = tenants.iter().copied().filter(|t| t.group == group.name).collect();
    tenants.sort_by(|a, b| a.slug.cmp(&b.slug));
    let shared: Vec<&Tenant> = tenants.iter().copied().filter(|t| t.placement == Placement::Shared).collect();
    let mut objects = platform::objects(group, &shared, options);
    for t in &tenants {
        objects.extend(tenant::objects(group, t, options));
    }
    objects.sort_by_cached_key(|o| {
        let k = o.key();
        (o.rank(), k.namespace, k.name)
    });
    DesiredState { objects }
}

/// The metadata shared by the builders.
pub(crate) fn meta(name: &str, namespace: Option<&str>, labels: BTreeMap<String, String>) -> ObjectMeta {
    ObjectMeta {
        name: Some(name.to_string()),
        namespace: namespace.map(str::to_string),
        labels: Some(labels),
        ..Default::default()
    }
}

#[cfg(test)]
mod tests;
