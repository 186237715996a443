//! Throughput of the test cluster under a portalctl-like load: 396 tenants × (ConfigMap, Secret, Ingress) applied
//! with bounded concurrency, then the same again as a no-op, which must change nothing. Ignored by default (the
//! figures are printed, and depend on the machine's load); run with
//! `cargo test -p portalctl-testcluster --test throughput -- --ignored --nocapture`.

use std::time::Instant;

use futures::StreamExt;
use kube::api::{Api, DynamicObject, Patch, PatchParams};
use kube::config::{KubeConfigOptions, Kubeconfig};
use kube::core::{ApiResource, GroupVersionKind};
use kube::{Client, Config};
use portalctl_testcluster::TestCluster;
use serde_json::json;

const TENANTS: usize = 396;
const CONCURRENCY: usize = 16;

fn objects(i: usize) -> Vec<(ApiResource, DynamicObject)> {
    let slug = format!("tenant-{i:03}");
    let labels = json!({"app.kubernetes.io/managed-by": "portalctl", "portalctl.dev/tenant": slug});
    let docs = [
        (
            GroupVersionKind::gvk("", "v1", "ConfigMap"),
            "configmaps",
            json!({"apiVersion": "v1", "kind": "ConfigMap",
            "metadata": {"name": format!("{slug}-tenant"), "labels": labels}, "data": {"tenant.json": "{}"}}),
        ),
        (
            GroupVersionKind::gvk("", "v1", "Secret"),
            "secrets",
            json!({"apiVersion": "v1", "kind": "Secret",
            "metadata": {"name": format!("{slug}-servicekonto"), "labels": labels}, "stringData": {"k": "v"}}),
        ),
        (
            GroupVersionKind::gvk("networking.k8s.io", "v1", "Ingress"),
            "ingresses",
            json!({
            "apiVersion": "networking.k8s.io/v1", "kind": "Ingress",
            "metadata": {"name": slug, "labels": labels},
            "spec": {"rules": [{"host": format!("{slug}.example.org"), "http": {"paths": [{"path": "/",
                "pathType": "Prefix", "backend": {"service": {"name": "portal", "port": {"number": 80}}}}]}}]}}),
        ),
    ];
    docs.into_iter()
        .map(|(gvk, plural, doc)| {
            (ApiResource::from_gvk_with_plural(&gvk, plural), serde_json::from_value(doc).unwrap())
        })
        .collect()
}

async fn apply_all(client: &Client) {
    let started = Instant::now();
    let work: Vec<_> = (0..TENANTS).flat_map(objects).collect();
    let n = work.len();
    futures::stream::iter(work)
        .for_each_concurrent(CONCURRENCY, |(ar, obj)| {
            let api: Api<DynamicObject> = Api::namespaced_with(client.clone(), "portal", &ar);
            async move {
                let name = obj.metadata.name.clone().unwrap();
                api.patch(&name, &PatchParams::apply("portalctl"), &Patch::Apply(&obj)).await.unwrap();
            }
        })
        .await;
    let secs = started.elapsed().as_secs_f64();
    println!("{n} applies in {secs:.2} s ({:.0} requests/s)", n as f64 / secs);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "measurement; run explicitly"]
async fn apply_396_tenants_then_noop() {
    let cluster = TestCluster::start().await.unwrap();
    let kubeconfig = Kubeconfig::read_from(cluster.kubeconfig_path()).unwrap();
    let config = Config::from_custom_kubeconfig(kubeconfig, &KubeConfigOptions::default()).await.unwrap();
    let client = Client::try_from(config).unwrap();
    let ns = serde_json::from_value(json!({"metadata": {"name": "portal"}})).unwrap();
    Api::<k8s_openapi::api::core::v1::Namespace>::all(client.clone()).create(&Default::default(), &ns).await.unwrap();

    apply_all(&client).await;
    // Let the controllers settle (ingress status) so the second pass measures a pure no-op.
    tokio::time::sleep(std::time::Duration::from_millis(300)).await;
    let rv = cluster.resource_version();
    apply_all(&client).await;
    assert_eq!(cluster.resource_version(), rv, "a no-op apply changed something");
    cluster.shutdown().await;
}
