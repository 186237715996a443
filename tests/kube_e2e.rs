//! End to end against a real Kubernetes API server (`cargo xtask cluster up`; kubeconfig in
//! `PORTALCTL_E2E_KUBECONFIG`, see tests/kubetest): render → apply --wait → diff (empty) → change a tenant → diff
//! (shows it) → apply → prune refused on a mass shrink → prune with --force → offboard; every rendered object of
//! every bundled group accepted by the server's dry run; retries through a fault-injecting proxy (429 with
//! Retry-After, 500, 503, connection resets, slow answers); a namespace the user may not write to (real RBAC);
//! readiness timeouts; an unreachable cluster.

mod kubetest;

use kubetest::proxy::{Fault, FaultProxy, FaultRule};
use kubetest::Kube;
use portalctl::cluster::{Cluster, ConnectOptions};
use portalctl::render::ObjectKey;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::Duration;

const ROOT: &str = env!("CARGO_MANIFEST_DIR");

/// The cluster and a private copy of the heinsberg tenants in a namespace of this test's own.
struct Env {
    kube: Kube,
    kubeconfig: PathBuf,
    dir: tempfile::TempDir,
    namespace: String,
}

async fn env(test: &str) -> Option<Env> {
    let kubeconfig = kubetest::kubeconfig()?;
    let kube = Kube::connect(&kubeconfig).await;
    let dir = tempfile::tempdir().unwrap();
    let namespace = kubetest::namespace(&format!("portal-e2e-{test}"));
    copy_group(dir.path(), "heinsberg", &namespace);
    Some(Env { kube, kubeconfig, dir, namespace })
}

/// Copy a bundled group into `dir`, its namespace replaced.
fn copy_group(dir: &Path, group: &str, namespace: &str) {
    let group_dir = dir.join(group);
    std::fs::create_dir_all(&group_dir).unwrap();
    for e in std::fs::read_dir(Path::new(ROOT).join("tenants").join(group)).unwrap() {
        let e = e.unwrap();
        let text = std::fs::read_to_string(e.path()).unwrap();
        let text = text.replace(&format!("namespace: portal-{group}"), &format!("namespace: {namespace}"));
        std::fs::write(group_dir.join(e.file_name()), text).unwrap();
    }
}

impl Env {
    fn run(&self, args: &[&str]) -> Output {
        self.run_with(&self.kubeconfig, args)
    }

    fn run_with(&self, kubeconfig: &Path, args: &[&str]) -> Output {
        let out = Command::new(env!("CARGO_BIN_EXE_portalctl"))
            .arg("--tenants")
            .arg(self.dir.path())
            .args(args)
            .args(if args[0] == "render" { None } else { Some("--kubeconfig") })
            .args(if args[0] == "render" { None } else { Some(kubeconfig) })
            .args(["--color", "never"])
            .output()
            .expect("portalctl runs");
        eprintln!(
            "$ portalctl {}\n{}{}",
            args.join(" "),
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        out
    }

    fn tenant_file(&self, slug: &str) -> PathBuf {
        self.dir.path().join("heinsberg").join(format!("{slug}.yaml"))
    }

    async fn cluster(&self) -> Cluster {
        Cluster::connect(&ConnectOptions { kubeconfig: Some(self.kubeconfig.clone()), ..Default::default() })
            .await
            .unwrap()
    }

    /// Names of the tenant ConfigMaps in the namespace.
    async fn tenant_configmaps(&self) -> Vec<String> {
        let kind = portalctl::cluster::kind_key("v1", "ConfigMap");
        let listed = self.cluster().await.list(&kind, &self.namespace, "portalctl.dev/tenant").await.unwrap();
        listed.into_iter().map(|l| l.key.name).collect()
    }

    async fn get(&self, kind: &'static str, api_version: &'static str, name: &str) -> Option<serde_json::Value> {
        let key = ObjectKey { api_version, kind, namespace: Some(self.namespace.clone()), name: name.into() };
        self.cluster().await.get(&key).await.unwrap().map(|o| serde_json::to_value(o).unwrap())
    }

    async fn cleanup(self) {
        self.kube.delete_namespace(&self.namespace).await;
    }
}

fn code(o: &Output) -> Option<i32> {
    o.status.code()
}

fn text(o: &Output) -> String {
    format!("{}{}", String::from_utf8_lossy(&o.stdout), String::from_utf8_lossy(&o.stderr))
}

/// The managers of an object's fields outside its status, from the server's managedFields.
fn managers(obj: &serde_json::Value) -> Vec<String> {
    obj["metadata"]["managedFields"]
        .as_array()
        .map(|m| {
            m.iter()
                .filter(|e| e["subresource"] != "status")
                .filter_map(|e| e["manager"].as_str().map(String::from))
                .collect()
        })
        .unwrap_or_default()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn render_apply_diff_change_prune_offboard() {
    let Some(env) = env("lifecycle").await else { return };

    let o = env.run(&["render", "--group", "heinsberg"]);
    assert_eq!(code(&o), Some(0), "{}", text(&o));

    // The real controllers, scheduler and KWOK make the Deployment Available, the Ingresses get an address and their
    // Certificates become Ready: --wait waits for all of it.
    let o = env.run(&["apply", "--group", "heinsberg", "--wait", "--timeout", "90s"]);
    assert_eq!(code(&o), Some(0), "{}", text(&o));
    assert_eq!(env.tenant_configmaps().await.len(), 11);
    let ingress = env.get("Ingress", "networking.k8s.io/v1", "erkelenz").await.expect("Ingress erkelenz");
    assert!(ingress["status"]["loadBalancer"]["ingress"][0].is_object(), "--wait waited for the address: {ingress}");
    assert_eq!(managers(&ingress), ["portalctl"], "one field manager, portalctl's: {ingress}");
    let dep = env.get("Deployment", "apps/v1", "portal").await.unwrap();
    assert!(dep["status"]["conditions"].to_string().contains("Available"), "{dep}");
    assert!(managers(&dep).contains(&"portalctl".to_string()), "{dep}");
    let cert = env.get("Certificate", "cert-manager.io/v1", "erkelenz-tls").await.expect("Certificate erkelenz-tls");
    assert!(cert["status"]["conditions"].to_string().contains("Ready"), "{cert}");
    let state = env.get("ConfigMap", "v1", "portalctl-state").await.expect("state recorded");
    assert_eq!(state["data"]["tenants"].as_str().unwrap().lines().count(), 11);

    // Nothing changed: no differences, exit 0; a second apply is a no-op.
    let o = env.run(&["diff", "--group", "heinsberg"]);
    assert_eq!(code(&o), Some(0), "{}", text(&o));
    assert!(o.stdout.is_empty(), "{}", text(&o));

    // Change a tenant: diff shows exactly that, exit 1.
    let path = env.tenant_file("erkelenz");
    let changed = std::fs::read_to_string(&path)
        .unwrap()
        .replace("    - service.erkelenz.de\n", "    - service.erkelenz.de\n    - buergerservice.erkelenz.de\n");
    std::fs::write(&path, changed).unwrap();
    let o = env.run(&["diff", "--group", "heinsberg"]);
    assert_eq!(code(&o), Some(1), "{}", text(&o));
    let out = String::from_utf8_lossy(&o.stdout);
    assert!(out.contains("+") && out.contains("buergerservice.erkelenz.de"), "{out}");
    assert!(out.contains("Ingress") && out.contains("erkelenz"), "{out}");
    assert!(!out.contains("managedFields") && !out.contains("resourceVersion"), "{out}");

    let o = env.run(&["apply", "--group", "heinsberg"]);
    assert_eq!(code(&o), Some(0), "{}", text(&o));
    let o = env.run(&["diff", "--group", "heinsberg"]);
    assert_eq!(code(&o), Some(0), "{}", text(&o));

    // Mass shrink: 11 → 3 tenants. Prune is refused without --force and nothing changes.
    let gone = [
        "gangelt",
        "geilenkirchen",
        "heinsberg",
        "hueckelhoven",
        "kreis-heinsberg",
        "selfkant",
        "uebach-palenberg",
        "waldfeucht",
    ];
    for slug in gone {
        std::fs::remove_file(env.tenant_file(slug)).unwrap();
    }
    let o = env.run(&["apply", "--group", "heinsberg", "--prune"]);
    assert_eq!(code(&o), Some(1), "{}", text(&o));
    assert!(text(&o).contains("refusing to prune"), "{}", text(&o));
    assert!(text(&o).contains("Ingress") && text(&o).contains("selfkant"), "the victims are listed: {}", text(&o));
    assert_eq!(env.tenant_configmaps().await.len(), 11, "nothing deleted");
    let o = env.run(&["diff", "--group", "heinsberg", "--prune"]);
    assert_eq!(code(&o), Some(1), "{}", text(&o));
    let out = String::from_utf8_lossy(&o.stdout);
    assert!(out.contains("--- live/Ingress") && out.contains("selfkant") && out.contains("+++ /dev/null"), "{out}");

    // With --force the objects of the removed tenants go, the others stay.
    let o = env.run(&["apply", "--group", "heinsberg", "--prune", "--force"]);
    assert_eq!(code(&o), Some(0), "{}", text(&o));
    // Deletion on a real server goes through the garbage collector (foreground propagation): the objects are gone
    // moments later, not at once.
    kubetest::eventually("the removed tenants' objects are gone", Duration::from_secs(30), || async {
        let mut left = env.tenant_configmaps().await;
        left.sort();
        left == ["erkelenz-tenant", "wassenberg-tenant", "wegberg-tenant"]
            && env.get("Ingress", "networking.k8s.io/v1", "selfkant").await.is_none()
    })
    .await;
    assert!(env.get("Deployment", "apps/v1", "portal").await.is_some(), "shared objects stay");

    // A small shrink after that is within the threshold: no --force needed.
    std::fs::remove_file(env.tenant_file("wegberg")).unwrap();
    let o = env.run(&["apply", "--group", "heinsberg", "--prune"]);
    assert_eq!(code(&o), Some(0), "{}", text(&o));
    kubetest::eventually("wegberg's objects are gone", Duration::from_secs(30), || async {
        env.tenant_configmaps().await.len() == 2
    })
    .await;

    // Offboard lists first and deletes only with --yes.
    let o = env.run(&["offboard", "--tenant", "wassenberg"]);
    assert_eq!(code(&o), Some(0), "{}", text(&o));
    assert!(String::from_utf8_lossy(&o.stdout).contains("Ingress"), "{}", text(&o));
    assert_eq!(env.tenant_configmaps().await.len(), 2, "listing deletes nothing");
    let o = env.run(&["offboard", "--tenant", "wassenberg", "--yes"]);
    assert_eq!(code(&o), Some(0), "{}", text(&o));
    kubetest::eventually("wassenberg is offboarded", Duration::from_secs(30), || async {
        env.tenant_configmaps().await == ["erkelenz-tenant"]
    })
    .await;
    env.cleanup().await;
}

/// The image part of `status -o json` for the group (one tenant asked, quick checks: the cluster is
/// what matters here).
fn status_image(env: &Env) -> serde_json::Value {
    let o = env.run(&["status", "--group", "heinsberg", "-t", "erkelenz", "--check-timeout", "1s", "-o", "json"]);
    let doc: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap_or_else(|e| panic!("{e}: {}", text(&o)));
    doc["groups"][0]["image"].clone()
}

/// Pause or resume the group's Deployment as `kubectl rollout pause|resume` does.
async fn set_paused(env: &Env, paused: bool) {
    use k8s_openapi::api::apps::v1::Deployment;
    use kube::api::{Api, Patch, PatchParams};
    let api: Api<Deployment> = Api::namespaced(env.cluster().await.client.clone(), &env.namespace);
    let patch = serde_json::json!({"spec": {"paused": paused}});
    api.patch("portal", &PatchParams::default(), &Patch::Merge(&patch)).await.expect("pause the Deployment");
}

/// `status` reports which image a group runs, by digest, as the cluster shows it; when the replicas run another
/// image than the Deployment asks for (a paused rollout), it says so, and once the rollout finishes, it does not.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn status_reports_the_image_each_group_runs() {
    let Some(env) = env("image").await else { return };
    let old = format!("registry.example/portalctl@sha256:{}", "a1".repeat(32));
    let new = format!("registry.example/portalctl@sha256:{}", "b2".repeat(32));
    let o = env.run(&["apply", "--group", "heinsberg", "--image", &old, "--wait", "--timeout", "90s"]);
    assert_eq!(code(&o), Some(0), "{}", text(&o));
    let replicas = env.get("Deployment", "apps/v1", "portal").await.unwrap()["spec"]["replicas"].as_u64().unwrap();
    let pods = if replicas == 1 { "1 pod".to_string() } else { format!("{replicas} pods") };
    let settled = |image: &serde_json::Value, want: &str| {
        image["running"] == serde_json::json!([{"image": want, "digest": &want[want.len() - 71..], "pods": replicas}])
    };
    kubetest::eventually("every replica runs the image", Duration::from_secs(30), || async {
        settled(&status_image(&env), &old)
    })
    .await;
    let image = status_image(&env);
    assert_eq!(image["reference"], old.as_str(), "{image}");
    assert_eq!(image["digest"], format!("sha256:{}", "a1".repeat(32)), "{image}");
    assert_eq!(image["mixed"], false, "{image}");
    let o = env.run(&["status", "--group", "heinsberg", "-t", "erkelenz", "--check-timeout", "1s"]);
    let table = String::from_utf8_lossy(&o.stdout);
    assert!(table.contains(&format!("  image {old} ({pods})")), "{table}");

    // A new image while the Deployment is paused: it asks for the new one, every replica still runs the old one.
    set_paused(&env, true).await;
    let o = env.run(&["apply", "--group", "heinsberg", "--image", &new]);
    assert_eq!(code(&o), Some(0), "{}", text(&o));
    let image = status_image(&env);
    assert_eq!(image["reference"], new.as_str(), "{image}");
    assert_eq!(image["mixed"], true, "{image}");
    assert!(settled(&image, &old), "the replicas still run the old image: {image}");
    let o = env.run(&["status", "--group", "heinsberg", "-t", "erkelenz", "--check-timeout", "1s"]);
    let table = String::from_utf8_lossy(&o.stdout);
    assert!(table.contains(&format!("  image mixed: {pods} {old}; the Deployment asks for {new}")), "{table}");

    // Resumed, the rollout replaces the replicas: one image again.
    set_paused(&env, false).await;
    kubetest::eventually("the rollout finishes", Duration::from_secs(60), || async {
        let image = status_image(&env);
        image["mixed"] == false && settled(&image, &new)
    })
    .await;
    env.cleanup().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn apply_retries_through_429_500_503_resets_and_slow_answers() {
    let Some(env) = env("faults").await else { return };
    let proxy = FaultProxy::start(&env.kubeconfig).await;
    proxy.inject(FaultRule::new(Fault::TooManyRequests { retry_after_secs: 1 }).times(3).method("PATCH"));
    proxy.inject(FaultRule::new(Fault::Status(500)).times(3).method("PATCH").path_contains("/ingresses/"));
    proxy.inject(FaultRule::new(Fault::Status(503)).times(2).method("PATCH").path_contains("/services/"));
    proxy.inject(FaultRule::new(Fault::Reset).times(2).method("PATCH").path_contains("/configmaps/"));
    proxy.inject(FaultRule::new(Fault::Delay(Duration::from_millis(1500))).times(2).method("PATCH"));
    let o = env.run_with(proxy.kubeconfig(), &["apply", "--group", "heinsberg"]);
    assert_eq!(code(&o), Some(0), "{}", text(&o));
    let statuses: Vec<u16> = proxy.requests().iter().map(|r| r.status).collect();
    assert_eq!(statuses.iter().filter(|s| **s == 429).count(), 3, "{statuses:?}");
    assert_eq!(statuses.iter().filter(|s| **s == 500).count(), 3, "{statuses:?}");
    assert_eq!(statuses.iter().filter(|s| **s == 503).count(), 2, "{statuses:?}");
    assert_eq!(statuses.iter().filter(|s| **s == 0).count(), 2, "{statuses:?}");
    // Retry-After: 1 was honoured: each object answered 429 was asked again no sooner than a second later (the
    // jittered backoff alone would retry within 100 ms).
    let log = proxy.requests();
    for (i, r) in log.iter().enumerate().filter(|(_, r)| r.status == 429) {
        let again = log[i + 1..].iter().find(|n| n.uri == r.uri && n.method == r.method).expect("retried");
        let waited = again.at - r.at;
        assert!(waited >= Duration::from_millis(950), "{} retried after {waited:?}", r.uri);
    }
    assert_eq!(env.tenant_configmaps().await.len(), 11, "everything applied in the end");
    let o = env.run(&["diff", "--group", "heinsberg"]);
    assert_eq!(code(&o), Some(0), "{}", text(&o));
    proxy.shutdown().await;
    env.cleanup().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn retries_stop_at_their_deadline() {
    let Some(env) = env("deadline").await else { return };
    let proxy = FaultProxy::start(&env.kubeconfig).await;
    // The server keeps asking for an hour's patience: portalctl gives up instead of sleeping past its deadline.
    proxy.inject(FaultRule::new(Fault::TooManyRequests { retry_after_secs: 3600 }).times(1000).method("PATCH"));
    let started = std::time::Instant::now();
    let o = env.run_with(proxy.kubeconfig(), &["apply", "--group", "heinsberg"]);
    assert_eq!(code(&o), Some(1), "{}", text(&o));
    assert!(text(&o).contains("429") || text(&o).contains("TooManyRequests"), "{}", text(&o));
    assert!(started.elapsed() < Duration::from_secs(120), "{:?}", started.elapsed());
    proxy.shutdown().await;
    env.cleanup().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_namespace_that_rejects_writes_fails_clearly() {
    let Some(env) = env("forbidden").await else { return };
    // A ServiceAccount that may read everything and create Namespaces, but write nothing in them (real RBAC).
    let readonly = env.kube.read_only_kubeconfig(env.dir.path()).await;
    let o = env.run_with(&readonly, &["apply", "--group", "heinsberg"]);
    assert_eq!(code(&o), Some(1), "{}", text(&o));
    assert!(text(&o).contains("Forbidden") && text(&o).contains(&env.namespace), "{}", text(&o));
    env.cleanup().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn wait_times_out_naming_what_is_not_ready() {
    let Some(env) = env("timeout").await else { return };
    // No pods may run in the namespace: the Deployment never becomes Available.
    env.kube.forbid_pods(&env.namespace).await;
    let o = env.run(&["apply", "--group", "heinsberg", "--wait", "--timeout", "5s"]);
    assert_eq!(code(&o), Some(1), "{}", text(&o));
    assert!(text(&o).contains("timed out") && text(&o).contains("Deployment"), "{}", text(&o));
    env.cleanup().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_bundled_group_is_accepted_by_the_api_server() {
    let Some(kubeconfig) = kubetest::kubeconfig() else { return };
    let kube = Kube::connect(&kubeconfig).await;
    for group in ["heinsberg", "krz", "emscher-lippe"] {
        let dir = tempfile::tempdir().unwrap();
        let namespace = kubetest::namespace(&format!("portal-dry-{group}"));
        copy_group(dir.path(), group, &namespace);
        // The namespace exists, nothing else: diff dry-runs every object through validation, defaulting and
        // admission of the real server; a rejected object is an error (exit 3 or 1 with "dry-run apply"), a
        // difference is exit 1 without one.
        kube.ensure_namespace(&namespace).await;
        let out = Command::new(env!("CARGO_BIN_EXE_portalctl"))
            .arg("--tenants")
            .arg(dir.path())
            .args(["diff", "--group", group, "--color", "never", "--kubeconfig"])
            .arg(&kubeconfig)
            .env("GELSENKIRCHEN_SERVICEKONTO", "dummy")
            .output()
            .unwrap();
        let all = text(&out);
        assert_eq!(code(&out), Some(1), "{group}: {all}");
        assert!(!all.contains("error") && !all.contains("dry-run apply"), "{group}: {all}");
        assert!(all.contains("+++ ") && all.contains("Deployment"), "{group}: {all}");
        kube.delete_namespace(&namespace).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unreachable_cluster_is_exit_code_3() {
    let Some(env) = env("unreachable").await else { return };
    // A proxy that stops: its kubeconfig points at a port where nothing listens any more.
    let proxy = FaultProxy::start(&env.kubeconfig).await;
    let url = proxy.url();
    let kubeconfig = env.dir.path().join("kubeconfig");
    std::fs::copy(proxy.kubeconfig(), &kubeconfig).unwrap();
    proxy.shutdown().await;
    let o = env.run_with(&kubeconfig, &["apply", "--group", "heinsberg"]);
    assert_eq!(code(&o), Some(3), "{}", text(&o));
    assert!(text(&o).contains(&url) && text(&o).contains(kubetest::proxy::CONTEXT), "{}", text(&o));
}

/// Whether `portalctl serve` takes `host` for one of its tenants (the identity endpoint answers 404 for unknown
/// hostnames; for known ones it asks the database, which this test does not have, and fails otherwise).
fn serves(ops_port: u16, host: &str) -> bool {
    use std::io::{Read, Write};
    let Ok(mut s) = std::net::TcpStream::connect(("127.0.0.1", ops_port)) else { return false };
    let _ = s.set_read_timeout(Some(Duration::from_secs(10)));
    let _ =
        write!(s, "GET /.well-known/portalctl/identity?host={host} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n");
    let mut answer = String::new();
    let _ = s.read_to_string(&mut answer);
    answer.starts_with("HTTP/1.1 ") && !answer.starts_with("HTTP/1.1 404")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_portal_server_follows_tenant_configmaps_through_a_watch() {
    let Some(env) = env("watch").await else { return };
    let o = env.run(&["apply", "--group", "heinsberg"]);
    assert_eq!(code(&o), Some(0), "{}", text(&o));

    // The server reaches the API server through the proxy; its first watch is cut after the first events.
    let proxy = FaultProxy::start(&env.kubeconfig).await;
    proxy.inject(FaultRule::new(Fault::EndWatch).method("GET").path_contains("watch="));
    let free = || std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let (port, ops_port) = (free(), free());
    let log = env.dir.path().join("serve.log");
    let mut server = Command::new(env!("CARGO_BIN_EXE_portalctl"))
        .args(["serve", "--tenant-source", "kubernetes", "--listen", &format!("127.0.0.1:{port}")])
        .args(["--ops-listen", &format!("127.0.0.1:{ops_port}")])
        // Polling alone would take an hour: whatever is seen sooner came through the watch.
        .args(["--poll-interval", "3600"])
        .env("KUBECONFIG", proxy.kubeconfig_in(&env.namespace))
        .env("DATABASE_URL", "postgres://portal@127.0.0.1:1/none")
        .stdout(std::process::Stdio::null())
        .stderr(std::fs::File::create(&log).unwrap())
        .spawn()
        .unwrap();
    let log_text = || std::fs::read_to_string(&log).unwrap_or_default();
    kubetest::eventually("server serves erkelenz", Duration::from_secs(30), || async {
        serves(ops_port, "service.erkelenz.de")
    })
    .await;
    assert!(!serves(ops_port, "buergerservice.erkelenz.de"));

    // A new hostname, applied: the server follows within seconds, over a watch that was cut and resumed.
    let path = env.tenant_file("erkelenz");
    let changed = std::fs::read_to_string(&path)
        .unwrap()
        .replace("    - service.erkelenz.de\n", "    - service.erkelenz.de\n    - buergerservice.erkelenz.de\n");
    std::fs::write(&path, changed).unwrap();
    let o = env.run(&["apply", "--group", "heinsberg"]);
    assert_eq!(code(&o), Some(0), "{}", text(&o));
    kubetest::eventually("server follows the change", Duration::from_secs(20), || async {
        serves(ops_port, "buergerservice.erkelenz.de")
    })
    .await;
    let watches: Vec<_> = proxy.requests().into_iter().filter(|r| r.uri.contains("watch=")).collect();
    assert!(watches.len() >= 2, "the cut watch was resumed: {watches:?}");
    let lists = proxy
        .requests()
        .into_iter()
        .filter(|r| r.method == "GET" && r.uri.contains("/configmaps?") && !r.uri.contains("watch="))
        .count();
    assert!(lists <= 2, "a watch, not polling LISTs: {lists} LISTs");

    // A broken ConfigMap keeps its tenant's last good state.
    let cms: kube::Api<k8s_openapi::api::core::v1::ConfigMap> =
        kube::Api::namespaced(env.kube.client.clone(), &env.namespace);
    let broken = serde_json::json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "erkelenz-tenant"},
                                    "data": {"tenant.json": "{ not json"}});
    let pp = kube::api::PatchParams::apply(kubetest::TEST_MANAGER).force();
    cms.patch("erkelenz-tenant", &pp, &kube::api::Patch::Apply(&broken)).await.unwrap();
    kubetest::eventually("the broken ConfigMap is noticed", Duration::from_secs(20), || async {
        log_text().contains("invalid tenant ConfigMap")
    })
    .await;
    assert!(serves(ops_port, "buergerservice.erkelenz.de"), "last good state kept: {}", log_text());

    // Deleting most tenant ConfigMaps at once is refused by the mass-removal guard: still served.
    for slug in ["gangelt", "geilenkirchen", "heinsberg", "hueckelhoven", "selfkant", "uebach-palenberg", "waldfeucht"]
    {
        cms.delete(&format!("{slug}-tenant"), &Default::default()).await.unwrap();
    }
    kubetest::eventually("the mass removal is refused", Duration::from_secs(20), || async {
        log_text().contains("refusing a reload")
    })
    .await;
    assert!(serves(ops_port, "service.selfkant.de"), "{}", log_text());
    let _ = server.kill();
    let _ = server.wait();
    proxy.shutdown().await;
    env.cleanup().await;
}
