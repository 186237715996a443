//! What a fresh control plane gets before tests run on it: the IngressClass `nginx`, cert-manager's Certificate CRD
//! (a minimal one, see [`certificate_crd`]), one KWOK node; then a smoke Deployment proves that the controller
//! manager, the scheduler and KWOK work together (it becomes Available) before `up` returns.

use anyhow::{bail, Context, Result};
use kube::api::{ApiResource, DeleteParams, DynamicObject, Patch, PatchParams};
use kube::config::{KubeConfigOptions, Kubeconfig};
use kube::{Api, Client, Config};
use serde_json::{json, Value};
use std::path::Path;
use std::time::{Duration, Instant};

const MANAGER: &str = "portalctl-cluster";

/// The name of the simulated node.
pub const NODE: &str = "kwok-node-0";

pub fn resource(group: &str, version: &str, kind: &str, plural: &str) -> ApiResource {
    ApiResource {
        group: group.into(),
        version: version.into(),
        api_version: if group.is_empty() { version.into() } else { format!("{group}/{version}") },
        kind: kind.into(),
        plural: plural.into(),
    }
}

pub async fn client(kubeconfig: &Path) -> Result<Client> {
    let kc = Kubeconfig::read_from(kubeconfig)?;
    let config = Config::from_custom_kubeconfig(kc, &KubeConfigOptions::default()).await?;
    Ok(Client::try_from(config)?)
}

pub async fn apply(client: &Client, ar: &ApiResource, ns: Option<&str>, body: Value) -> Result<DynamicObject> {
    let api: Api<DynamicObject> = match ns {
        Some(ns) => Api::namespaced_with(client.clone(), ns, ar),
        None => Api::all_with(client.clone(), ar),
    };
    let name = body["metadata"]["name"].as_str().context("object without a name")?.to_string();
    api.patch(&name, &PatchParams::apply(MANAGER).force(), &Patch::Apply(&body))
        .await
        .with_context(|| format!("apply {} {name}", ar.kind))
}

/// Poll `check` every 100 ms until it returns true.
async fn until<F, Fut>(what: &str, timeout: Duration, mut check: F) -> Result<Duration>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let t = Instant::now();
    while !check().await {
        if t.elapsed() > timeout {
            bail!("{what} not reached within {timeout:?}");
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    Ok(t.elapsed())
}

/// Before KWOK starts (its stage for Certificates needs the kind, in the OpenAPI v3 document too): the CRD and the
/// IngressClass.
pub async fn install(kubeconfig: &Path) -> Result<()> {
    let client = client(kubeconfig).await?;
    let crds = resource("apiextensions.k8s.io", "v1", "CustomResourceDefinition", "customresourcedefinitions");
    apply(&client, &crds, None, certificate_crd()).await?;
    apply(
        &client,
        &resource("networking.k8s.io", "v1", "IngressClass", "ingressclasses"),
        None,
        json!({"apiVersion": "networking.k8s.io/v1", "kind": "IngressClass",
               "metadata": {"name": "nginx"}, "spec": {"controller": "k8s.io/ingress-nginx"}}),
    )
    .await?;
    let crd_api: Api<DynamicObject> = Api::all_with(client.clone(), &crds);
    until("Certificate CRD Established", Duration::from_secs(30), || async {
        crd_api.get_opt("certificates.cert-manager.io").await.ok().flatten().is_some_and(|o| {
            o.data["status"]["conditions"]
                .as_array()
                .is_some_and(|cs| cs.iter().any(|c| c["type"] == "Established" && c["status"] == "True"))
        })
    })
    .await?;
    until("cert-manager.io/v1 in the OpenAPI v3 document", Duration::from_secs(30), || async {
        let req = http::Request::get("/openapi/v3").body(Vec::new()).expect("a valid request");
        client.request_text(req).await.is_ok_and(|t| t.contains("apis/cert-manager.io/v1"))
    })
    .await?;
    Ok(())
}

/// After the controllers and KWOK started: the KWOK node, and a smoke Deployment.
pub async fn verify(kubeconfig: &Path) -> Result<()> {
    let client = client(kubeconfig).await?;
    let nodes = resource("", "v1", "Node", "nodes");
    apply(
        &client,
        &nodes,
        None,
        json!({"apiVersion": "v1", "kind": "Node",
               "metadata": {"name": NODE,
                            "annotations": {"kwok.x-k8s.io/node": "fake", "node.alpha.kubernetes.io/ttl": "0"},
                            "labels": {"type": "kwok", "kubernetes.io/hostname": NODE, "kubernetes.io/os": "linux",
                                       "kubernetes.io/arch": "amd64"}},
               "spec": {}}),
    )
    .await?;

    let node_api: Api<DynamicObject> = Api::all_with(client.clone(), &nodes);
    until("node Ready (KWOK)", Duration::from_secs(60), || async {
        node_api.get_opt(NODE).await.ok().flatten().is_some_and(|o| {
            o.data["status"]["conditions"]
                .as_array()
                .is_some_and(|cs| cs.iter().any(|c| c["type"] == "Ready" && c["status"] == "True"))
        })
    })
    .await?;

    // The smoke test: a Deployment in the default namespace becomes Available (needs the controller manager, the
    // scheduler and KWOK), then goes.
    let deployments = resource("apps", "v1", "Deployment", "deployments");
    let sa = resource("", "v1", "ServiceAccount", "serviceaccounts");
    let sa_api: Api<DynamicObject> = Api::namespaced_with(client.clone(), "default", &sa);
    until("ServiceAccount default/default (controller manager)", Duration::from_secs(60), || async {
        sa_api.get_opt("default").await.ok().flatten().is_some()
    })
    .await?;
    apply(
        &client,
        &deployments,
        Some("default"),
        json!({"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "cluster-smoke", "namespace": "default"},
               "spec": {"replicas": 1, "selector": {"matchLabels": {"app": "cluster-smoke"}},
                        "template": {"metadata": {"labels": {"app": "cluster-smoke"}},
                                     "spec": {"containers": [{"name": "none", "image": "registry.invalid/none:0"}]}}}}),
    )
    .await?;
    let dep_api: Api<DynamicObject> = Api::namespaced_with(client.clone(), "default", &deployments);
    until("smoke Deployment Available", Duration::from_secs(60), || async {
        dep_api.get_opt("cluster-smoke").await.ok().flatten().is_some_and(|o| {
            o.data["status"]["availableReplicas"] == 1
                && o.data["status"]["conditions"]
                    .as_array()
                    .is_some_and(|cs| cs.iter().any(|c| c["type"] == "Available" && c["status"] == "True"))
        })
    })
    .await?;
    dep_api.delete("cluster-smoke", &DeleteParams::background()).await?;
    Ok(())
}

/// cert-manager's `Certificate` (cert-manager.io/v1), cut down to the fields portalctl and the simulated
/// ingress-shim use. cert-manager's own CRD YAML is not in any package registry reachable here (it ships as a
/// release asset), so this is a minimal structural schema written from cert-manager's API reference: unknown fields
/// are pruned and wrong types rejected, like the real CRD would for these fields.
pub fn certificate_crd() -> Value {
    let string = json!({"type": "string"});
    let condition = json!({"type": "object", "required": ["status", "type"], "properties": {
        "lastTransitionTime": {"type": "string", "format": "date-time"}, "message": string, "observedGeneration": {"type": "integer", "format": "int64"},
        "reason": string, "status": {"type": "string", "enum": ["True", "False", "Unknown"]}, "type": string}});
    json!({
        "apiVersion": "apiextensions.k8s.io/v1",
        "kind": "CustomResourceDefinition",
        "metadata": {"name": "certificates.cert-manager.io", "labels": {"app.kubernetes.io/name": "cert-manager"}},
        "spec": {
            "group": "cert-manager.io",
            "names": {"kind": "Certificate", "listKind": "CertificateList", "plural": "certificates",
                      "singular": "certificate", "shortNames": ["cert", "certs"], "categories": ["cert-manager"]},
            "scope": "Namespaced",
            "versions": [{
                "name": "v1", "served": true, "storage": true,
                "subresources": {"status": {}},
                "additionalPrinterColumns": [
                    {"jsonPath": ".status.conditions[?(@.type==\"Ready\")].status", "name": "Ready", "type": "string"},
                    {"jsonPath": ".spec.secretName", "name": "Secret", "type": "string"}],
                "schema": {"openAPIV3Schema": {"type": "object", "required": ["spec"], "properties": {
                    "apiVersion": string, "kind": string, "metadata": {"type": "object"},
                    "spec": {"type": "object", "required": ["issuerRef", "secretName"], "properties": {
                        "secretName": string,
                        "commonName": string,
                        "dnsNames": {"type": "array", "items": string},
                        "duration": string,
                        "renewBefore": string,
                        "usages": {"type": "array", "items": string},
                        "issuerRef": {"type": "object", "required": ["name"], "properties": {
                            "group": string, "kind": string, "name": string}}}},
                    "status": {"type": "object", "properties": {
                        "conditions": {"type": "array", "items": condition,
                                       "x-kubernetes-list-map-keys": ["type"], "x-kubernetes-list-type": "map"},
                        "notAfter": {"type": "string", "format": "date-time"},
                        "notBefore": {"type": "string", "format": "date-time"},
                        "renewalTime": {"type": "string", "format": "date-time"},
                        "revision": {"type": "integer"}}}}}}
            }]
        }
    })
}
