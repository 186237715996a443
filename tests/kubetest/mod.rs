//! The Kubernetes API server of the tests: a real control plane, started by `cargo xtask cluster up` (`.ci/run` does
//! it) or any other cluster, whose kubeconfig is in `PORTALCTL_E2E_KUBECONFIG`. Every test works in namespaces of
//! its own (a random suffix), so tests run in parallel and re-runs on a long-lived cluster do not collide.
//!
//! What the simulated parts of `cargo xtask cluster` (KWOK) do and how tests steer them: an Ingress gets an address
//! unless annotated `sim.portalctl.dev/hold-address` ([`Kube::hold_ingress`]); a namespace with a `pods: 0`
//! ResourceQuota never gets pods, so its Deployments never become Available ([`Kube::forbid_pods`]).
//! Faults come from [`proxy::FaultProxy`] in front of the API server.

#![allow(dead_code)]

pub mod proxy;

use k8s_openapi::api::core::v1::{ConfigMap, Namespace, ResourceQuota, ServiceAccount};
use k8s_openapi::api::networking::v1::Ingress;
use kube::api::{Api, DeleteParams, DynamicObject, ListParams, Patch, PatchParams, PostParams};
use kube::config::{KubeConfigOptions, Kubeconfig};
use kube::discovery::ApiResource;
use serde_json::json;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

/// The field manager the tests use for what they set up themselves (never portalctl's).
pub const TEST_MANAGER: &str = "portalctl-tests";

/// The annotation that keeps KWOK from giving an Ingress an address.
pub const HOLD_ADDRESS: &str = "sim.portalctl.dev/hold-address";

/// The kubeconfig of the test cluster; `None` (the test prints why and returns) outside CI when there is none.
pub fn kubeconfig() -> Option<PathBuf> {
    match std::env::var_os("PORTALCTL_E2E_KUBECONFIG").filter(|v| !v.is_empty()) {
        Some(p) => Some(PathBuf::from(p)),
        None => {
            assert!(
                std::env::var("CI").map_or(true, |v| v != "true"),
                "PORTALCTL_E2E_KUBECONFIG is not set in CI (.ci/run starts `cargo xtask cluster up`)"
            );
            eprintln!("skipped: PORTALCTL_E2E_KUBECONFIG is not set (eval $(cargo xtask cluster up) and export it)");
            None
        }
    }
}

/// A namespace name unique to this test run: `<prefix>-<6 random letters>`.
pub fn namespace(prefix: &str) -> String {
    use rand::Rng;
    let mut r = rand::rng();
    let sfx: String = (0..6).map(|_| char::from(b'a' + r.random_range(0..26u8))).collect();
    format!("{prefix}-{sfx}")
}

/// A client of the test cluster.
#[derive(Clone)]
pub struct Kube {
    pub client: kube::Client,
    pub kubeconfig: PathBuf,
}

impl Kube {
    pub async fn connect(kubeconfig: &Path) -> Kube {
        let kc = Kubeconfig::read_from(kubeconfig).expect("read the test kubeconfig");
        let config = kube::Config::from_custom_kubeconfig(kc, &KubeConfigOptions::default()).await.expect("kubeconfig");
        Kube { client: kube::Client::try_from(config).expect("client"), kubeconfig: kubeconfig.to_path_buf() }
    }

    /// Create the namespace (server-side apply under the tests' manager; portalctl's apply of it later merges).
    pub async fn ensure_namespace(&self, ns: &str) {
        let api: Api<Namespace> = Api::all(self.client.clone());
        let body = json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": ns}});
        api.patch(ns, &PatchParams::apply(TEST_MANAGER), &Patch::Apply(&body)).await.expect("create namespace");
    }

    /// Delete the namespace (the real namespace controller removes what is in it).
    pub async fn delete_namespace(&self, ns: &str) {
        let api: Api<Namespace> = Api::all(self.client.clone());
        let _ = api.delete(ns, &DeleteParams::background()).await;
    }

    /// Names of the tenant ConfigMaps (`<slug>-tenant`) in a namespace, as slugs, sorted.
    pub async fn tenant_slugs(&self, ns: &str) -> Vec<String> {
        let api: Api<ConfigMap> = Api::namespaced(self.client.clone(), ns);
        let mut v: Vec<String> = api
            .list(&ListParams::default())
            .await
            .expect("list ConfigMaps")
            .items
            .into_iter()
            .filter_map(|c| c.metadata.name.and_then(|n| n.strip_suffix("-tenant").map(String::from)))
            .collect();
        v.sort();
        v
    }

    /// `kind/name → resourceVersion` of every object of portalctl's kinds in a namespace (and the namespace).
    pub async fn resource_versions(&self, ns: &str) -> BTreeMap<String, String> {
        let mut out = BTreeMap::new();
        for key in portalctl::cluster::namespaced_kinds() {
            let (kind, ar) = (key.kind, portalctl::cluster::api_resource(&key));
            let api: Api<DynamicObject> = Api::namespaced_with(self.client.clone(), ns, &ar);
            for o in api.list(&ListParams::default()).await.expect("list").items {
                out.insert(
                    format!("{kind}/{}", o.metadata.name.unwrap_or_default()),
                    o.metadata.resource_version.unwrap_or_default(),
                );
            }
        }
        let nsapi: Api<Namespace> = Api::all(self.client.clone());
        let n = nsapi.get(ns).await.expect("namespace");
        out.insert(format!("Namespace/{ns}"), n.metadata.resource_version.unwrap_or_default());
        out
    }

    /// Make sure the Ingress `name` in `ns` never gets an address: create it first, annotated, under the tests'
    /// field manager (portalctl's apply adds its own fields beside the annotation, as on a shared cluster).
    pub async fn hold_ingress(&self, ns: &str, name: &str) {
        self.ensure_namespace(ns).await;
        let api: Api<Ingress> = Api::namespaced(self.client.clone(), ns);
        let body = json!({"apiVersion": "networking.k8s.io/v1", "kind": "Ingress",
            "metadata": {"name": name, "namespace": ns, "annotations": {HOLD_ADDRESS: "test"}},
            "spec": {"defaultBackend": {"service": {"name": "held", "port": {"number": 80}}}}});
        api.patch(name, &PatchParams::apply(TEST_MANAGER), &Patch::Apply(&body)).await.expect("hold Ingress");
    }

    /// Let the held Ingress get its address: the tests' manager gives up its fields (annotation, backend).
    pub async fn release_ingress(&self, ns: &str, name: &str) {
        let api: Api<Ingress> = Api::namespaced(self.client.clone(), ns);
        let body = json!({"apiVersion": "networking.k8s.io/v1", "kind": "Ingress", "metadata": {"name": name, "namespace": ns}});
        api.patch(name, &PatchParams::apply(TEST_MANAGER), &Patch::Apply(&body)).await.expect("release Ingress");
    }

    /// A `pods: 0` ResourceQuota: the ReplicaSets of the namespace cannot create pods, Deployments never become
    /// Available.
    pub async fn forbid_pods(&self, ns: &str) {
        self.ensure_namespace(ns).await;
        let api: Api<ResourceQuota> = Api::namespaced(self.client.clone(), ns);
        let body = json!({"apiVersion": "v1", "kind": "ResourceQuota", "metadata": {"name": "no-pods", "namespace": ns},
            "spec": {"hard": {"pods": "0"}}});
        api.patch("no-pods", &PatchParams::apply(TEST_MANAGER), &Patch::Apply(&body)).await.expect("quota");
    }

    /// A kubeconfig for a ServiceAccount (token from the TokenRequest API) that may read everything and create
    /// Namespaces, but write nothing inside them: writes there are 403 Forbidden by the real RBAC authorizer.
    pub async fn read_only_kubeconfig(&self, dir: &Path) -> PathBuf {
        let sa_ns = namespace("e2e-readonly");
        self.ensure_namespace(&sa_ns).await;
        let sa_api: Api<ServiceAccount> = Api::namespaced(self.client.clone(), &sa_ns);
        let sa =
            json!({"apiVersion": "v1", "kind": "ServiceAccount", "metadata": {"name": "reader", "namespace": sa_ns}});
        sa_api.patch("reader", &PatchParams::apply(TEST_MANAGER), &Patch::Apply(&sa)).await.expect("ServiceAccount");
        let rbac = |kind: &str, plural: &str| ApiResource {
            group: "rbac.authorization.k8s.io".into(),
            version: "v1".into(),
            api_version: "rbac.authorization.k8s.io/v1".into(),
            kind: kind.into(),
            plural: plural.into(),
        };
        let role_name = format!("{sa_ns}-reader");
        let roles: Api<DynamicObject> = Api::all_with(self.client.clone(), &rbac("ClusterRole", "clusterroles"));
        let role = json!({"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "ClusterRole", "metadata": {"name": role_name},
            "rules": [{"apiGroups": ["*"], "resources": ["*"], "verbs": ["get", "list", "watch"]},
                      {"apiGroups": [""], "resources": ["namespaces"], "verbs": ["create", "patch", "update"]}]});
        roles.patch(&role_name, &PatchParams::apply(TEST_MANAGER), &Patch::Apply(&role)).await.expect("ClusterRole");
        let bindings: Api<DynamicObject> =
            Api::all_with(self.client.clone(), &rbac("ClusterRoleBinding", "clusterrolebindings"));
        let binding = json!({"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "ClusterRoleBinding", "metadata": {"name": role_name},
            "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": role_name},
            "subjects": [{"kind": "ServiceAccount", "name": "reader", "namespace": sa_ns}]});
        bindings.patch(&role_name, &PatchParams::apply(TEST_MANAGER), &Patch::Apply(&binding)).await.expect("binding");
        let req = k8s_openapi::api::authentication::v1::TokenRequest {
            spec: k8s_openapi::api::authentication::v1::TokenRequestSpec {
                expiration_seconds: Some(3600),
                ..Default::default()
            },
            ..Default::default()
        };
        let token = sa_api
            .create_token_request("reader", &PostParams::default(), &req)
            .await
            .expect("TokenRequest")
            .status
            .expect("token")
            .token;
        let text = std::fs::read_to_string(&self.kubeconfig).unwrap();
        let mut kc: serde_json::Value = serde_saphyr::from_str(&text).unwrap();
        for user in kc["users"].as_array_mut().expect("users") {
            user["user"] = json!({ "token": token });
        }
        let path = dir.join("kubeconfig-readonly");
        std::fs::write(&path, serde_json::to_string(&kc).unwrap()).unwrap();
        path
    }
}

/// Poll `check` until it is true or `timeout` passes (then panic naming `what`).
pub async fn eventually<F, Fut>(what: &str, timeout: Duration, mut check: F)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let t = Instant::now();
    while !check().await {
        assert!(t.elapsed() < timeout, "{what}: not within {timeout:?}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}
