//! The group-level objects: namespace, RBAC, the shared portal-server Deployment and what
//! keeps it available and contained (Service, PodDisruptionBudget, HPA, NetworkPolicy).

use super::{
    common_labels, image_version, meta, saml_environment, saml_secret_name, Object, Options, CONTAINER_PORT, DB_SECRET,
    OPS_PORT, PORTAL, SECRETS_MOUNT, SERVER_LABEL,
};
use crate::servicekonto::keys::KeyPaths;
use crate::tenant::{Group, Tenant};
use k8s_openapi::api::apps::v1::{Deployment, DeploymentSpec};
use k8s_openapi::api::autoscaling::v2::{
    CrossVersionObjectReference, HorizontalPodAutoscaler, HorizontalPodAutoscalerSpec, MetricSpec, MetricTarget,
    ResourceMetricSource,
};
use k8s_openapi::api::core::v1::{
    Capabilities, Container, ContainerPort, EmptyDirVolumeSource, EnvVar, EnvVarSource, HTTPGetAction, KeyToPath,
    Namespace, PodSecurityContext, PodSpec, PodTemplateSpec, Probe, ProjectedVolumeSource, ResourceRequirements,
    SeccompProfile, SecretKeySelector, SecretProjection, SecurityContext, Service, ServiceAccount, ServicePort,
    ServiceSpec, Volume, VolumeMount, VolumeProjection,
};
use k8s_openapi::api::networking::v1::{
    NetworkPolicy, NetworkPolicyEgressRule, NetworkPolicyIngressRule, NetworkPolicyPeer, NetworkPolicyPort,
    NetworkPolicySpec,
};
use k8s_openapi::api::policy::v1::{PodDisruptionBudget, PodDisruptionBudgetSpec};
use k8s_openapi::api::rbac::v1::{PolicyRule, Role, RoleBinding, RoleRef, Subject};
use k8s_openapi::apimachinery::pkg::api::resource::Quantity;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::LabelSelector;
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;
use std::collections::BTreeMap;

/// Component label of the portal-server objects.
pub const SERVER_COMPONENT: &str = "server";
/// Name of the pod volume holding the Servicekonto keys.
pub const SECRETS_VOLUME: &str = "servicekonto";
/// UID and GID the portal server runs as; the group also owns the mounted keys (`fsGroup`).
const RUN_AS: i64 = 65532;
/// File mode of the mounted keys: owner and group may read (0440).
const KEY_FILE_MODE: i32 = 0o440;

/// The group-level objects; `shared` are the tenants the shared Deployment serves.
pub(super) fn objects(group: &Group, shared: &[&Tenant], options: &Options) -> Vec<Object> {
    let ns = group.namespace.as_str();
    let version = image_version(super::image(group, options));
    let labels = |component: &str| common_labels(&group.name, &version, component);
    let server = labels(SERVER_COMPONENT);
    let mut out = vec![
        Object::Namespace(Namespace { metadata: meta(ns, None, labels("namespace")), ..Default::default() }),
        Object::ServiceAccount(ServiceAccount {
            metadata: meta(PORTAL, Some(ns), server.clone()),
            automount_service_account_token: Some(true),
            ..Default::default()
        }),
        Object::Role(Role {
            metadata: meta(PORTAL, Some(ns), server.clone()),
            rules: Some(vec![PolicyRule {
                api_groups: Some(vec![String::new()]),
                resources: Some(vec!["configmaps".into()]),
                verbs: ["get", "list", "watch"].map(String::from).to_vec(),
                ..Default::default()
            }]),
        }),
        Object::RoleBinding(RoleBinding {
            metadata: meta(PORTAL, Some(ns), server.clone()),
            role_ref: RoleRef {
                api_group: "rbac.authorization.k8s.io".into(),
                kind: "Role".into(),
                name: PORTAL.into(),
            },
            subjects: Some(vec![Subject {
                kind: "ServiceAccount".into(),
                name: PORTAL.into(),
                namespace: Some(ns.to_string()),
                ..Default::default()
            }]),
        }),
        network_policy(group, &server, options),
        Object::PodDisruptionBudget(PodDisruptionBudget {
            metadata: meta(PORTAL, Some(ns), server.clone()),
            spec: Some(PodDisruptionBudgetSpec {
                min_available: Some(IntOrString::Int(1)),
                selector: Some(selector(&group.name, PORTAL)),
                ..Default::default()
            }),
            ..Default::default()
        }),
        Object::HorizontalPodAutoscaler(HorizontalPodAutoscaler {
            metadata: meta(PORTAL, Some(ns), server.clone()),
            spec: Some(HorizontalPodAutoscalerSpec {
                scale_target_ref: CrossVersionObjectReference {
                    api_version: Some("apps/v1".into()),
                    kind: "Deployment".into(),
                    name: PORTAL.into(),
                },
                min_replicas: Some(options.replicas),
                max_replicas: options.max_replicas,
                metrics: Some(vec![MetricSpec {
                    type_: "Resource".into(),
                    resource: Some(ResourceMetricSource {
                        name: "cpu".into(),
                        target: MetricTarget {
                            type_: "Utilization".into(),
                            average_utilization: Some(options.cpu_target_percent),
                            ..Default::default()
                        },
                    }),
                    ..Default::default()
                }]),
                ..Default::default()
            }),
            ..Default::default()
        }),
    ];
    out.extend(server_objects(group, PORTAL, server, shared, options));
    out
}

/// Labels that select the pods of one portal-server Deployment.
pub(super) fn selector_labels(group: &str, server: &str) -> BTreeMap<String, String> {
    BTreeMap::from([
        ("app.kubernetes.io/name".to_string(), super::APP_NAME.to_string()),
        ("app.kubernetes.io/instance".to_string(), group.to_string()),
        (SERVER_LABEL.to_string(), server.to_string()),
    ])
}

fn selector(group: &str, server: &str) -> LabelSelector {
    LabelSelector { match_labels: Some(selector_labels(group, server)), ..Default::default() }
}

/// The projected volume of the SAML SP key Secrets of `tenants`, each mapped to the file names
/// the server opens under its `--secrets-dir` ([`KeyPaths::current`]); `None` when no tenant
/// logs in with SAML. Every source is optional: a tenant whose Secret does not exist yet cannot
/// log anyone in, but does not keep the pods (and so every other tenant) from starting; the
/// kubelet adds the files once the Secret appears.
pub(crate) fn secrets_volume(tenants: &[&Tenant]) -> Option<Volume> {
    let sources: Vec<VolumeProjection> = tenants
        .iter()
        .filter_map(|t| saml_environment(t).map(|env| (t, env)))
        .map(|(t, env)| {
            let paths = KeyPaths::current(std::path::Path::new(""), t, env);
            let item = |key: &str, path: &std::path::Path| KeyToPath {
                key: key.into(),
                path: path.to_string_lossy().into_owned(),
                mode: None,
            };
            VolumeProjection {
                secret: Some(SecretProjection {
                    name: saml_secret_name(&t.slug, env),
                    items: Some(vec![item("tls.key", &paths.key), item("tls.crt", &paths.cert)]),
                    optional: Some(true),
                }),
                ..Default::default()
            }
        })
        .collect();
    (!sources.is_empty()).then(|| Volume {
        name: SECRETS_VOLUME.into(),
        projected: Some(ProjectedVolumeSource { sources: Some(sources), default_mode: Some(KEY_FILE_MODE) }),
        ..Default::default()
    })
}

/// A portal-server Deployment named `name` (mounting the SAML keys of `tenants`, the tenants it
/// serves) and its Service of the same name.
pub(super) fn server_objects(
    group: &Group,
    name: &str,
    labels: BTreeMap<String, String>,
    tenants: &[&Tenant],
    options: &Options,
) -> Vec<Object> {
    let ns = group.namespace.as_str();
    let mut pod_labels = labels.clone();
    pod_labels.extend(selector_labels(&group.name, name));
    let q = |s: &str| Quantity(s.to_string());
    let probe = |path: &str, delay: i32| Probe {
        http_get: Some(HTTPGetAction {
            path: Some(path.into()),
            port: IntOrString::String("ops".into()),
            ..Default::default()
        }),
        initial_delay_seconds: Some(delay),
        period_seconds: Some(10),
        timeout_seconds: Some(2),
        failure_threshold: Some(3),
        ..Default::default()
    };
    let secret_env = |env: &str, key: &str| EnvVar {
        name: env.into(),
        value_from: Some(EnvVarSource {
            secret_key_ref: Some(SecretKeySelector { name: DB_SECRET.into(), key: key.into(), optional: None }),
            ..Default::default()
        }),
        ..Default::default()
    };
    let keys = secrets_volume(tenants);
    let mut mounts = vec![VolumeMount { name: "tmp".into(), mount_path: "/tmp".into(), ..Default::default() }];
    let mut volumes =
        vec![Volume { name: "tmp".into(), empty_dir: Some(EmptyDirVolumeSource::default()), ..Default::default() }];
    if let Some(keys) = keys {
        mounts.push(VolumeMount {
            name: SECRETS_VOLUME.into(),
            mount_path: SECRETS_MOUNT.into(),
            read_only: Some(true),
            ..Default::default()
        });
        volumes.push(keys);
    }
    let container = Container {
        name: "portal".into(),
        image: Some(super::image(group, options).to_string()),
        image_pull_policy: Some("IfNotPresent".into()),
        command: Some(vec!["portalctl".into()]),
        args: Some(
            [
                "serve",
                "--listen",
                &format!("0.0.0.0:{CONTAINER_PORT}"),
                "--ops-listen",
                &format!("0.0.0.0:{OPS_PORT}"),
                "--tenant-source",
                "kubernetes",
                "--secrets-dir",
                SECRETS_MOUNT,
            ]
            .map(String::from)
            .to_vec(),
        ),
        ports: Some(vec![
            ContainerPort {
                name: Some("http".into()),
                container_port: CONTAINER_PORT,
                protocol: Some("TCP".into()),
                ..Default::default()
            },
            ContainerPort {
                name: Some("ops".into()),
                container_port: OPS_PORT,
                protocol: Some("TCP".into()),
                ..Default::default()
            },
        ]),
        env: Some(vec![
            secret_env("DATABASE_USER", "username"),
            secret_env("DATABASE_PASSWORD", "password"),
            EnvVar {
                name: "DATABASE_URL".into(),
                value: Some(format!(
                    "postgres://$(DATABASE_USER):$(DATABASE_PASSWORD)@{}:{}/{}",
                    options.database_host, options.database_port, options.database_name
                )),
                ..Default::default()
            },
        ]),
        resources: Some(ResourceRequirements {
            requests: Some(BTreeMap::from([
                ("cpu".to_string(), q(&options.cpu_request)),
                ("memory".to_string(), q(&options.memory_request)),
            ])),
            limits: Some(BTreeMap::from([
                ("cpu".to_string(), q(&options.cpu_limit)),
                ("memory".to_string(), q(&options.memory_limit)),
            ])),
            ..Default::default()
        }),
        liveness_probe: Some(probe("/healthz", 5)),
        readiness_probe: Some(probe("/readyz", 2)),
        security_context: Some(SecurityContext {
            allow_privilege_escalation: Some(false),
            read_only_root_filesystem: Some(true),
            run_as_non_root: Some(true),
            capabilities: Some(Capabilities { drop: Some(vec!["ALL".into()]), ..Default::default() }),
            ..Default::default()
        }),
        volume_mounts: Some(mounts),
        ..Default::default()
    };
    let deployment = Deployment {
        metadata: super::meta(name, Some(ns), labels.clone()),
        spec: Some(DeploymentSpec {
            replicas: Some(options.replicas),
            selector: selector(&group.name, name),
            template: PodTemplateSpec {
                metadata: Some(k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta {
                    labels: Some(pod_labels),
                    ..Default::default()
                }),
                spec: Some(PodSpec {
                    service_account_name: Some(PORTAL.into()),
                    security_context: Some(PodSecurityContext {
                        run_as_non_root: Some(true),
                        run_as_user: Some(RUN_AS),
                        run_as_group: Some(RUN_AS),
                        fs_group: Some(RUN_AS),
                        seccomp_profile: Some(SeccompProfile { type_: "RuntimeDefault".into(), ..Default::default() }),
                        ..Default::default()
                    }),
                    containers: vec![container],
                    volumes: Some(volumes),
                    ..Default::default()
                }),
            },
            ..Default::default()
        }),
        ..Default::default()
    };
    let service = Service {
        metadata: super::meta(name, Some(ns), labels),
        spec: Some(ServiceSpec {
            selector: Some(selector_labels(&group.name, name)),
            ports: Some(vec![
                ServicePort {
                    name: Some("http".into()),
                    port: 80,
                    target_port: Some(IntOrString::String("http".into())),
                    protocol: Some("TCP".into()),
                    ..Default::default()
                },
                // Cluster-internal only: no Ingress routes it, the NetworkPolicy admits the ops namespaces.
                ServicePort {
                    name: Some("ops".into()),
                    port: OPS_PORT,
                    target_port: Some(IntOrString::String("ops".into())),
                    protocol: Some("TCP".into()),
                    ..Default::default()
                },
            ]),
            ..Default::default()
        }),
        ..Default::default()
    };
    vec![Object::Deployment(deployment), Object::Service(service)]
}

fn network_policy(group: &Group, labels: &BTreeMap<String, String>, options: &Options) -> Object {
    let port = |p: i32, proto: &str| NetworkPolicyPort {
        port: Some(IntOrString::Int(p)),
        protocol: Some(proto.into()),
        ..Default::default()
    };
    let pods = BTreeMap::from([
        ("app.kubernetes.io/name".to_string(), super::APP_NAME.to_string()),
        ("app.kubernetes.io/instance".to_string(), group.name.clone()),
    ]);
    let namespace = |name: &str| NetworkPolicyPeer {
        namespace_selector: Some(LabelSelector {
            match_labels: Some(BTreeMap::from([("kubernetes.io/metadata.name".to_string(), name.to_string())])),
            ..Default::default()
        }),
        ..Default::default()
    };
    // The public port only from the ingress controller; the operations port only from the
    // monitoring namespaces (the kubelet's probes come from the node, which policies do not govern).
    let mut ingress = vec![NetworkPolicyIngressRule {
        from: Some(vec![namespace(&options.ingress_namespace)]),
        ports: Some(vec![port(CONTAINER_PORT, "TCP")]),
    }];
    if !options.ops_namespaces.is_empty() {
        ingress.push(NetworkPolicyIngressRule {
            from: Some(options.ops_namespaces.iter().map(|n| namespace(n)).collect()),
            ports: Some(vec![port(OPS_PORT, "TCP")]),
        });
    }
    Object::NetworkPolicy(NetworkPolicy {
        metadata: meta(PORTAL, Some(&group.namespace), labels.clone()),
        spec: Some(NetworkPolicySpec {
            pod_selector: Some(LabelSelector { match_labels: Some(pods), ..Default::default() }),
            policy_types: Some(vec!["Ingress".into(), "Egress".into()]),
            ingress: Some(ingress),
            egress: Some(vec![
                NetworkPolicyEgressRule { ports: Some(vec![port(53, "UDP"), port(53, "TCP")]), to: None },
                NetworkPolicyEgressRule { ports: Some(vec![port(5432, "TCP")]), to: None },
                NetworkPolicyEgressRule { ports: Some(vec![port(443, "TCP")]), to: None },
            ]),
        }),
    })
}
