//! The test cluster driven by the real kube client through the generated kubeconfig, as portalctl will use it.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::core::v1::{ConfigMap, Namespace};
use k8s_openapi::api::networking::v1::Ingress;
use kube::api::{Api, DeleteParams, ListParams, Patch, PatchParams, PostParams};
use kube::config::{KubeConfigOptions, Kubeconfig};
use kube::core::{DynamicObject, GroupVersionKind};
use kube::{Client, Config, Discovery};
use portalctl_testcluster::{Fault, FaultRule, TestCluster};
use serde_json::json;

const MANAGER: &str = "portalctl";

async fn config(cluster: &TestCluster) -> Config {
    let kubeconfig = Kubeconfig::read_from(cluster.kubeconfig_path()).expect("kubeconfig parses");
    Config::from_custom_kubeconfig(kubeconfig, &KubeConfigOptions::default()).await.expect("kubeconfig resolves")
}

async fn client(cluster: &TestCluster) -> Client {
    Client::try_from(config(cluster).await).expect("client builds")
}

/// A client without kube's built-in retry of 429/503/504, to see injected faults directly.
async fn client_without_retry(cluster: &TestCluster) -> Client {
    let mut config = config(cluster).await;
    config.default_retry = false;
    Client::try_from(config).expect("client builds")
}

async fn create_namespace(client: &Client, name: &str) {
    let ns: Namespace = serde_json::from_value(json!({"metadata": {"name": name}})).unwrap();
    Api::<Namespace>::all(client.clone()).create(&PostParams::default(), &ns).await.expect("namespace created");
}

fn config_map(name: &str, labels: serde_json::Value, data: serde_json::Value) -> ConfigMap {
    serde_json::from_value(json!({"apiVersion": "v1", "kind": "ConfigMap",
        "metadata": {"name": name, "labels": labels}, "data": data}))
    .unwrap()
}

fn api_reason(err: &kube::Error) -> (u16, String) {
    match err {
        kube::Error::Api(status) => (status.code, status.reason.clone()),
        other => panic!("expected an API error, got {other:?}"),
    }
}

fn assert_discovers_every_kind(discovery: &Discovery) {
    for (group, version, kind) in [
        ("", "v1", "Namespace"),
        ("", "v1", "ConfigMap"),
        ("", "v1", "Secret"),
        ("", "v1", "Service"),
        ("", "v1", "ServiceAccount"),
        ("apps", "v1", "Deployment"),
        ("policy", "v1", "PodDisruptionBudget"),
        ("autoscaling", "v2", "HorizontalPodAutoscaler"),
        ("networking.k8s.io", "v1", "Ingress"),
        ("networking.k8s.io", "v1", "NetworkPolicy"),
        ("rbac.authorization.k8s.io", "v1", "Role"),
        ("rbac.authorization.k8s.io", "v1", "RoleBinding"),
        ("cert-manager.io", "v1", "Certificate"),
    ] {
        let gvk = GroupVersionKind::gvk(group, version, kind);
        let (resource, caps) = discovery.resolve_gvk(&gvk).unwrap_or_else(|| panic!("{kind} not discovered"));
        assert_eq!(resource.kind, kind);
        assert_eq!(caps.scope == kube::discovery::Scope::Namespaced, kind != "Namespace", "{kind}");
    }
    let (_, deployments) = discovery.resolve_gvk(&GroupVersionKind::gvk("apps", "v1", "Deployment")).unwrap();
    assert!(deployments.subresources.iter().any(|(r, _)| r.plural == "status"));
    assert!(discovery.resolve_gvk(&GroupVersionKind::gvk("", "v1", "Pod")).is_none());
}

#[tokio::test]
async fn discovery_finds_every_kind_portalctl_uses() {
    let cluster = TestCluster::start().await.unwrap();
    let client = client(&cluster).await;
    let version = client.apiserver_version().await.unwrap();
    assert_eq!(version.major, "1");
    assert_discovers_every_kind(&Discovery::new(client.clone()).run().await.expect("discovery runs"));
    assert_discovers_every_kind(&Discovery::new(client).run_aggregated().await.expect("aggregated discovery runs"));
    cluster.shutdown().await;
}

#[tokio::test]
async fn server_side_apply_create_noop_remove_and_dry_run() {
    let cluster = TestCluster::start().await.unwrap();
    let client = client(&cluster).await;
    create_namespace(&client, "krz").await;
    let api: Api<ConfigMap> = Api::namespaced(client, "krz");
    let pp = PatchParams::apply(MANAGER);

    // Dry run: computed but not stored.
    let cm = config_map("espelkamp-tenant", json!({"portalctl.dev/tenant": "espelkamp"}), json!({"a": "1", "b": "2"}));
    let preview = api.patch("espelkamp-tenant", &pp.clone().dry_run(), &Patch::Apply(&cm)).await.unwrap();
    assert_eq!(preview.data.unwrap()["b"], "2");
    assert!(api.get_opt("espelkamp-tenant").await.unwrap().is_none());

    // Create on apply, then a no-op re-apply keeps the resourceVersion.
    let created = api.patch("espelkamp-tenant", &pp, &Patch::Apply(&cm)).await.unwrap();
    let rv = created.metadata.resource_version.clone().unwrap();
    assert!(created.metadata.uid.is_some());
    assert!(created.metadata.creation_timestamp.is_some());
    let managed = created.metadata.managed_fields.clone().unwrap();
    assert_eq!(managed.len(), 1);
    assert_eq!(managed[0].manager.as_deref(), Some(MANAGER));
    assert_eq!(managed[0].operation.as_deref(), Some("Apply"));
    let again = api.patch("espelkamp-tenant", &pp, &Patch::Apply(&cm)).await.unwrap();
    assert_eq!(again.metadata.resource_version.as_deref(), Some(rv.as_str()));

    // A field the manager no longer applies is removed.
    let smaller = config_map("espelkamp-tenant", json!({"portalctl.dev/tenant": "espelkamp"}), json!({"a": "1"}));
    let after = api.patch("espelkamp-tenant", &pp, &Patch::Apply(&smaller)).await.unwrap();
    let data = after.data.unwrap();
    assert_eq!(data.len(), 1);
    assert!(!data.contains_key("b"));
    assert_ne!(after.metadata.resource_version.as_deref(), Some(rv.as_str()));

    // The applies were recorded with the field manager and dry-run flag.
    let applies: Vec<_> = cluster.requests().into_iter().filter(|r| r.is_apply()).collect();
    assert_eq!(applies.len(), 4);
    assert!(applies.iter().all(|r| r.field_manager().as_deref() == Some(MANAGER)));
    assert_eq!(applies.iter().filter(|r| r.dry_run()).count(), 1);
    assert_eq!(applies[1].status, 201);
    assert_eq!(applies[2].status, 200);
    cluster.shutdown().await;
}

#[tokio::test]
async fn conflicting_managers_get_409_unless_forced() {
    let cluster = TestCluster::start().await.unwrap();
    let client = client(&cluster).await;
    create_namespace(&client, "krz").await;
    let api: Api<ConfigMap> = Api::namespaced(client, "krz");
    let ours = config_map("portal", json!({}), json!({"mode": "shared"}));
    api.patch("portal", &PatchParams::apply(MANAGER), &Patch::Apply(&ours)).await.unwrap();

    let theirs = config_map("portal", json!({}), json!({"mode": "dedicated"}));
    let err = api.patch("portal", &PatchParams::apply("someone-else"), &Patch::Apply(&theirs)).await.unwrap_err();
    assert_eq!(api_reason(&err), (409, "Conflict".to_string()));
    let kube::Error::Api(status) = &err else { unreachable!() };
    assert!(status.message.contains(".data.mode"), "{}", status.message);
    assert_eq!(api.get("portal").await.unwrap().data.unwrap()["mode"], "shared");

    let forced = api.patch("portal", &PatchParams::apply("someone-else").force(), &Patch::Apply(&theirs)).await;
    assert_eq!(forced.unwrap().data.unwrap()["mode"], "dedicated");
    cluster.shutdown().await;
}

#[tokio::test]
async fn create_list_delete_and_errors() {
    let cluster = TestCluster::start().await.unwrap();
    let client = client(&cluster).await;
    create_namespace(&client, "krz").await;
    let api: Api<ConfigMap> = Api::namespaced(client.clone(), "krz");
    let pp = PostParams::default();
    for (name, tenant, group) in [("a", "espelkamp", "krz"), ("b", "minden", "krz"), ("c", "luebbecke", "other")] {
        let labels = json!({"portalctl.dev/tenant": tenant, "portalctl.dev/group": group});
        api.create(&pp, &config_map(name, labels, json!({}))).await.unwrap();
    }
    let err = api.create(&pp, &config_map("a", json!({}), json!({}))).await.unwrap_err();
    assert_eq!(api_reason(&err), (409, "AlreadyExists".to_string()));

    let names = |list: kube::core::ObjectList<ConfigMap>| -> Vec<String> {
        list.items.into_iter().map(|c| c.metadata.name.unwrap()).collect()
    };
    let list = api.list(&ListParams::default().labels("portalctl.dev/group=krz")).await.unwrap();
    assert!(list.metadata.resource_version.is_some());
    assert_eq!(names(list), ["a", "b"]);
    let list = api.list(&ListParams::default().labels("portalctl.dev/tenant in (minden,luebbecke)")).await.unwrap();
    assert_eq!(names(list), ["b", "c"]);
    let list = api.list(&ListParams::default().labels("portalctl.dev/group!=krz,portalctl.dev/tenant")).await.unwrap();
    assert_eq!(names(list), ["c"]);
    let list = api.list(&ListParams::default().labels("!portalctl.dev/tenant")).await.unwrap();
    assert!(list.items.is_empty());

    let deleted = api.delete("a", &DeleteParams::default()).await.unwrap();
    assert!(deleted.is_right(), "delete answers with a Status");
    let err = api.get("a").await.unwrap_err();
    assert_eq!(api_reason(&err), (404, "NotFound".to_string()));
    let err = api.delete("a", &DeleteParams::default()).await.unwrap_err();
    assert_eq!(api_reason(&err), (404, "NotFound".to_string()));

    let err = api.create(&pp, &config_map("Not_A_Name", json!({}), json!({}))).await.unwrap_err();
    assert_eq!(api_reason(&err), (422, "Invalid".to_string()));
    let err = api
        .patch(
            "Not_A_Name",
            &PatchParams::apply(MANAGER),
            &Patch::Apply(&config_map("Not_A_Name", json!({}), json!({}))),
        )
        .await
        .unwrap_err();
    assert_eq!(api_reason(&err), (422, "Invalid".to_string()));

    let missing: Api<ConfigMap> = Api::namespaced(client, "no-such-namespace");
    let cm = config_map("x", json!({}), json!({}));
    let err = missing.patch("x", &PatchParams::apply(MANAGER), &Patch::Apply(&cm)).await.unwrap_err();
    assert_eq!(api_reason(&err), (404, "NotFound".to_string()));
    cluster.shutdown().await;
}

#[tokio::test]
async fn deployment_becomes_available_after_the_delay_and_ingress_gets_an_address() {
    let cluster = TestCluster::builder().readiness_delay(Duration::from_millis(400)).start().await.unwrap();
    let client = client(&cluster).await;
    create_namespace(&client, "krz").await;
    let deployments: Api<Deployment> = Api::namespaced(client.clone(), "krz");
    let dep: Deployment = serde_json::from_value(json!({"apiVersion": "apps/v1", "kind": "Deployment",
        "metadata": {"name": "portal"},
        "spec": {"replicas": 2, "selector": {"matchLabels": {"app": "portal"}},
            "template": {"metadata": {"labels": {"app": "portal"}},
                "spec": {"containers": [{"name": "portal", "image": "portal:1"}]}}}}))
    .unwrap();
    let start = Instant::now();
    deployments.patch("portal", &PatchParams::apply(MANAGER), &Patch::Apply(&dep)).await.unwrap();

    let available = |d: &Deployment| {
        let status = d.status.clone().unwrap_or_default();
        status.ready_replicas == Some(2)
            && status.observed_generation == d.metadata.generation
            && status.conditions.unwrap_or_default().iter().any(|c| c.type_ == "Available" && c.status == "True")
    };
    tokio::time::sleep(Duration::from_millis(150)).await;
    let early = deployments.get("portal").await.unwrap();
    assert!(!available(&early), "available before the delay");
    assert_eq!(early.status.unwrap().observed_generation, Some(1));
    loop {
        let d = deployments.get("portal").await.unwrap();
        if available(&d) {
            break;
        }
        assert!(start.elapsed() < Duration::from_secs(5), "deployment never became available");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(start.elapsed() >= Duration::from_millis(400));

    // A new image rolls out: the new generation is observed at once, updated replicas follow after the delay.
    let mut next = dep.clone();
    next.spec.as_mut().unwrap().template.spec.as_mut().unwrap().containers[0].image = Some("portal:2".into());
    let rollout = Instant::now();
    let applied = deployments.patch("portal", &PatchParams::apply(MANAGER), &Patch::Apply(&next)).await.unwrap();
    assert_eq!(applied.metadata.generation, Some(2));
    tokio::time::sleep(Duration::from_millis(150)).await;
    let rolling = deployments.get("portal").await.unwrap();
    let status = rolling.status.clone().unwrap();
    assert_eq!((status.observed_generation, status.updated_replicas), (Some(2), Some(0)));
    assert!(!available(&rolling) || status.updated_replicas != Some(2));
    loop {
        let d = deployments.get("portal").await.unwrap();
        if d.status.as_ref().and_then(|s| s.updated_replicas) == Some(2) && available(&d) {
            break;
        }
        assert!(rollout.elapsed() < Duration::from_secs(5), "rollout never finished");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(rollout.elapsed() >= Duration::from_millis(400));

    // A paused controller leaves the object as it is (an unhealthy tenant).
    cluster.pause_controllers("stuck");
    let ingresses: Api<Ingress> = Api::namespaced(client, "krz");
    for name in ["espelkamp", "stuck"] {
        let ing: Ingress = serde_json::from_value(json!({"apiVersion": "networking.k8s.io/v1", "kind": "Ingress",
            "metadata": {"name": name}, "spec": {"rules": [{"host": format!("{name}.example.org")}]}}))
        .unwrap();
        ingresses.patch(name, &PatchParams::apply(MANAGER), &Patch::Apply(&ing)).await.unwrap();
    }
    tokio::time::sleep(Duration::from_millis(200)).await;
    let ip = |i: Ingress| {
        i.status.and_then(|s| s.load_balancer).and_then(|lb| lb.ingress).and_then(|v| v.into_iter().next()?.ip)
    };
    assert_eq!(ip(ingresses.get("espelkamp").await.unwrap()).as_deref(), Some("192.0.2.10"));
    assert_eq!(ip(ingresses.get("stuck").await.unwrap()), None);
    cluster.shutdown().await;
}

#[tokio::test]
async fn certificates_become_ready() {
    let cluster = TestCluster::start().await.unwrap();
    let client = client(&cluster).await;
    create_namespace(&client, "krz").await;
    let discovery = Discovery::new(client.clone()).run().await.unwrap();
    let (ar, _) = discovery.resolve_gvk(&GroupVersionKind::gvk("cert-manager.io", "v1", "Certificate")).unwrap();
    let api: Api<DynamicObject> = Api::namespaced_with(client, "krz", &ar);
    let cert: DynamicObject = serde_json::from_value(json!({"apiVersion": "cert-manager.io/v1", "kind": "Certificate",
        "metadata": {"name": "espelkamp-tls"},
        "spec": {"secretName": "espelkamp-tls", "dnsNames": ["espelkamp.example.org"]}}))
    .unwrap();
    api.patch("espelkamp-tls", &PatchParams::apply(MANAGER), &Patch::Apply(&cert)).await.unwrap();
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let c = api.get("espelkamp-tls").await.unwrap();
        if c.data.pointer("/status/conditions/0/status") == Some(&json!("True")) {
            assert_eq!(c.data["status"]["conditions"][0]["type"], "Ready");
            break;
        }
        assert!(Instant::now() < deadline, "certificate never became ready");
        tokio::time::sleep(Duration::from_millis(30)).await;
    }
    cluster.shutdown().await;
}

#[tokio::test]
async fn injected_faults_reach_the_client() {
    let cluster = TestCluster::start().await.unwrap();
    let client = client_without_retry(&cluster).await;
    create_namespace(&client, "krz").await;
    let api: Api<ConfigMap> = Api::namespaced(client.clone(), "krz");
    let cm = config_map("x", json!({}), json!({"k": "v"}));
    let pp = PatchParams::apply(MANAGER);
    let faults = cluster.faults();

    faults.next(1, Fault::TooManyRequests { retry_after: Duration::from_secs(1) });
    let err = api.patch("x", &pp, &Patch::Apply(&cm)).await.unwrap_err();
    assert_eq!(api_reason(&err), (429, "TooManyRequests".to_string()));

    faults.inject(FaultRule::new(Fault::InternalError).method("PATCH").path_contains("/configmaps/x"));
    assert!(api.get_opt("x").await.unwrap().is_none(), "GET is not affected by a PATCH-only fault");
    let err = api.patch("x", &pp, &Patch::Apply(&cm)).await.unwrap_err();
    assert_eq!(api_reason(&err), (500, "InternalError".to_string()));

    faults.next(1, Fault::DropConnection);
    let err = api.patch("x", &pp, &Patch::Apply(&cm)).await.unwrap_err();
    assert!(!matches!(err, kube::Error::Api(_)), "a dropped connection is a transport error: {err:?}");

    faults.next(1, Fault::Delay(Duration::from_millis(300)));
    let started = Instant::now();
    api.patch("x", &pp, &Patch::Apply(&cm)).await.unwrap();
    assert!(started.elapsed() >= Duration::from_millis(300));
    assert_eq!(faults.pending(), 0);

    faults.forbid_writes("krz");
    let err = api.patch("x", &pp, &Patch::Apply(&cm)).await.unwrap_err();
    assert_eq!(api_reason(&err), (403, "Forbidden".to_string()));
    assert!(api.get("x").await.is_ok(), "reads stay allowed");
    faults.allow_writes("krz");
    api.patch("x", &pp, &Patch::Apply(&cm)).await.unwrap();

    let statuses: Vec<u16> = cluster.requests().iter().filter(|r| r.is_apply()).map(|r| r.status).collect();
    assert_eq!(statuses, [429, 500, 0, 201, 403, 200]);
    cluster.shutdown().await;
}

#[tokio::test]
async fn default_client_retries_429_honouring_retry_after() {
    let cluster = TestCluster::start().await.unwrap();
    let client = client(&cluster).await;
    let api: Api<ConfigMap> = Api::namespaced(client, "default");
    cluster.faults().next(2, Fault::TooManyRequests { retry_after: Duration::from_millis(200) });
    let started = Instant::now();
    api.patch("x", &PatchParams::apply(MANAGER), &Patch::Apply(&config_map("x", json!({}), json!({})))).await.unwrap();
    assert!(started.elapsed() >= Duration::from_secs(2), "Retry-After (rounded up to 1 s) was honoured twice");
    let statuses: Vec<u16> = cluster.requests().iter().map(|r| r.status).collect();
    assert_eq!(statuses, [429, 429, 201]);
    cluster.shutdown().await;
}

#[tokio::test]
async fn bad_token_is_unauthorized_and_stopped_cluster_is_unreachable() {
    let cluster = TestCluster::start().await.unwrap();
    let mut config = config(&cluster).await;
    config.auth_info.token = Some("wrong".to_string().into());
    let api: Api<ConfigMap> = Api::default_namespaced(Client::try_from(config).unwrap());
    let err = api.list(&ListParams::default()).await.unwrap_err();
    assert_eq!(api_reason(&err), (401, "Unauthorized".to_string()));

    let client = client(&cluster).await;
    cluster.shutdown().await;
    let api: Api<ConfigMap> = Api::default_namespaced(client);
    let err = api.list(&ListParams::default()).await.unwrap_err();
    assert!(!matches!(err, kube::Error::Api(_)), "{err:?}");
}

#[tokio::test]
async fn merge_patch_status_and_replace() {
    let cluster = TestCluster::start().await.unwrap();
    let client = client(&cluster).await;
    let api: Api<ConfigMap> = Api::default_namespaced(client.clone());
    let created = api.create(&PostParams::default(), &config_map("m", json!({"a": "1"}), json!({"k": "v"}))).await;
    let created = created.unwrap();
    let patched = api
        .patch("m", &PatchParams::default(), &Patch::Merge(json!({"metadata": {"labels": {"a": null, "b": "2"}}})))
        .await
        .unwrap();
    assert_eq!(patched.metadata.labels, Some(BTreeMap::from([("b".to_string(), "2".to_string())])));

    let mut stale = created.clone();
    stale.data = Some(BTreeMap::from([("k".to_string(), "w".to_string())]));
    let err = api.replace("m", &PostParams::default(), &stale).await.unwrap_err();
    assert_eq!(api_reason(&err), (409, "Conflict".to_string()));
    let mut fresh = patched.clone();
    fresh.data = Some(BTreeMap::from([("k".to_string(), "w".to_string())]));
    let replaced = api.replace("m", &PostParams::default(), &fresh).await.unwrap();
    assert_eq!(replaced.data.unwrap()["k"], "w");

    // Status subresource: a status patch does not change the spec.
    cluster.pause_controllers("portal");
    let deployments: Api<Deployment> = Api::default_namespaced(client);
    let dep: Deployment = serde_json::from_value(json!({"apiVersion": "apps/v1", "kind": "Deployment",
        "metadata": {"name": "portal"}, "spec": {"replicas": 1, "selector": {"matchLabels": {"app": "p"}},
        "template": {"metadata": {"labels": {"app": "p"}}, "spec": {"containers": [{"name": "p", "image": "p"}]}}}}))
    .unwrap();
    deployments.patch("portal", &PatchParams::apply(MANAGER), &Patch::Apply(&dep)).await.unwrap();
    let patch = json!({"spec": {"replicas": 9}, "status": {"replicas": 1, "readyReplicas": 1}});
    let after = deployments.patch_status("portal", &PatchParams::default(), &Patch::Merge(patch)).await.unwrap();
    assert_eq!(after.spec.unwrap().replicas, Some(1));
    assert_eq!(after.status.unwrap().ready_replicas, Some(1));
    let status = deployments.get_status("portal").await.unwrap();
    assert_eq!(status.metadata.generation, Some(1));
    cluster.shutdown().await;
}

#[tokio::test]
async fn watch_streams_changes_from_a_resource_version() {
    use futures::{StreamExt, TryStreamExt};
    use kube::api::{WatchEvent, WatchParams};

    let cluster = TestCluster::start().await.unwrap();
    let client = client(&cluster).await;
    create_namespace(&client, "krz").await;
    let api: Api<ConfigMap> = Api::namespaced(client, "krz");
    let pp = PatchParams::apply(MANAGER);
    let tenant = json!({"portalctl.dev/tenant": "espelkamp"});
    api.patch("before", &pp, &Patch::Apply(&config_map("before", tenant.clone(), json!({})))).await.unwrap();
    let list = api.list(&ListParams::default()).await.unwrap();
    let rv = list.metadata.resource_version.unwrap();

    let wp = WatchParams::default().labels("portalctl.dev/tenant").timeout(5);
    let mut stream = api.watch(&wp, &rv).await.unwrap().boxed();
    api.patch("a", &pp, &Patch::Apply(&config_map("a", tenant.clone(), json!({"k": "1"})))).await.unwrap();
    api.patch("unlabelled", &pp, &Patch::Apply(&config_map("unlabelled", json!({}), json!({})))).await.unwrap();
    api.patch("a", &pp, &Patch::Apply(&config_map("a", tenant.clone(), json!({"k": "2"})))).await.unwrap();
    api.delete("a", &DeleteParams::default()).await.unwrap();

    let mut seen = Vec::new();
    while seen.len() < 3 {
        let event = tokio::time::timeout(Duration::from_secs(5), stream.try_next()).await.unwrap().unwrap().unwrap();
        seen.push(match event {
            WatchEvent::Added(c) => format!("ADDED {}", c.metadata.name.unwrap()),
            WatchEvent::Modified(c) => format!("MODIFIED {} {}", c.metadata.name.unwrap(), c.data.unwrap()["k"]),
            WatchEvent::Deleted(c) => format!("DELETED {}", c.metadata.name.unwrap()),
            other => panic!("unexpected event {other:?}"),
        });
    }
    assert_eq!(seen, ["ADDED a", "MODIFIED a 2", "DELETED a"]);

    // From "0": the current state first.
    let mut from_start = api.watch(&WatchParams::default().timeout(1), "0").await.unwrap().boxed();
    let first = tokio::time::timeout(Duration::from_secs(5), from_start.try_next()).await.unwrap().unwrap().unwrap();
    assert!(matches!(first, WatchEvent::Added(c) if c.metadata.name.as_deref() == Some("before")));
    cluster.shutdown().await;
}
