//! End to end against an API server: render → apply → diff (empty) → change a tenant → diff
//! (shows it) → apply → prune refused on a mass shrink → prune with --force → offboard; retries
//! under injected faults; readiness timeouts; an unreachable cluster.
//!
//! By default each test starts the in-process test stand-in (`tests/testcluster`). With
//! `PORTALCTL_E2E_KUBECONFIG=/path/to/kubeconfig` the tests run against that cluster instead
//! (kind, k3d; see docs/kubernetes.md); the fault-injection tests are skipped there.
//!
//! Enabling: this file is `tests/kube_e2e.rs.pending` until the stand-in crate is in the workspace;
//! rename it to `tests/kube_e2e.rs` and add the dev-dependency
//! `portalctl-testcluster = { path = "tests/testcluster" }` to the root Cargo.toml.

use portalctl::cluster::{Cluster, ConnectOptions};
use portalctl::render::ObjectKey;
use portalctl_testcluster::{Fault, FaultRule, TestCluster};
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::Duration;

const ROOT: &str = env!("CARGO_MANIFEST_DIR");

/// A cluster (stand-in or real) and a private copy of the heinsberg tenants in a unique namespace.
struct Env {
    cluster: Option<TestCluster>,
    kubeconfig: PathBuf,
    dir: tempfile::TempDir,
    namespace: String,
}

fn real_cluster() -> Option<PathBuf> {
    std::env::var_os("PORTALCTL_E2E_KUBECONFIG").map(PathBuf::from)
}

async fn env(test: &str) -> Env {
    let (cluster, kubeconfig) = match real_cluster() {
        Some(kc) => (None, kc),
        None => {
            let c = TestCluster::builder().readiness_delay(Duration::from_millis(200)).start().await.unwrap();
            let kc = c.kubeconfig_path().to_path_buf();
            (Some(c), kc)
        }
    };
    let dir = tempfile::tempdir().unwrap();
    let namespace = format!("portal-e2e-{test}");
    let group_dir = dir.path().join("heinsberg");
    std::fs::create_dir_all(&group_dir).unwrap();
    for e in std::fs::read_dir(Path::new(ROOT).join("tenants/heinsberg")).unwrap() {
        let e = e.unwrap();
        let text = std::fs::read_to_string(e.path()).unwrap();
        let text = text.replace("namespace: portal-heinsberg", &format!("namespace: {namespace}"));
        std::fs::write(group_dir.join(e.file_name()), text).unwrap();
    }
    Env { cluster, kubeconfig, dir, namespace }
}

impl Env {
    fn run(&self, args: &[&str]) -> Output {
        let out = Command::new(env!("CARGO_BIN_EXE_portalctl"))
            .arg("--tenants")
            .arg(self.dir.path())
            .args(args)
            .args(if args[0] == "render" { None } else { Some("--kubeconfig") })
            .args(if args[0] == "render" { None } else { Some(&self.kubeconfig) })
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
        if self.cluster.is_none() {
            let key = ObjectKey { api_version: "v1", kind: "Namespace", namespace: None, name: self.namespace.clone() };
            self.cluster().await.delete(&key).await.ok();
        }
        if let Some(c) = self.cluster {
            c.shutdown().await;
        }
    }
}

fn code(o: &Output) -> Option<i32> {
    o.status.code()
}

fn text(o: &Output) -> String {
    format!("{}{}", String::from_utf8_lossy(&o.stdout), String::from_utf8_lossy(&o.stderr))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn render_apply_diff_change_prune_offboard() {
    let env = env("lifecycle").await;
    // On a real cluster the portal image must be pullable and an ingress controller must publish
    // addresses before --wait can succeed; there the suite checks the objects only.
    let standin = env.cluster.is_some();

    let o = env.run(&["render", "--group", "heinsberg"]);
    assert_eq!(code(&o), Some(0), "{}", text(&o));

    let apply: &[&str] = if standin {
        &["apply", "--group", "heinsberg", "--wait", "--timeout", "20s"]
    } else {
        &["apply", "--group", "heinsberg"]
    };
    let o = env.run(apply);
    assert_eq!(code(&o), Some(0), "{}", text(&o));
    assert_eq!(env.tenant_configmaps().await.len(), 11);
    let ingress = env.get("Ingress", "networking.k8s.io/v1", "erkelenz").await.expect("Ingress erkelenz");
    if standin {
        assert!(
            ingress["status"]["loadBalancer"]["ingress"][0].is_object(),
            "--wait waited for the address: {ingress}"
        );
        let dep = env.get("Deployment", "apps/v1", "portal").await.unwrap();
        assert!(dep["status"]["conditions"].to_string().contains("Available"), "{dep}");
    }
    if let Some(c) = &env.cluster {
        let applies: Vec<_> = c.requests().into_iter().filter(|r| r.is_apply()).collect();
        assert!(applies.len() >= 31, "every object applied: {}", applies.len());
        assert!(applies.iter().all(|r| r.field_manager().as_deref() == Some("portalctl")));
    }
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
    let mut left = env.tenant_configmaps().await;
    left.sort();
    assert_eq!(left, ["erkelenz-tenant", "wassenberg-tenant", "wegberg-tenant"]);
    assert!(env.get("Ingress", "networking.k8s.io/v1", "selfkant").await.is_none());
    assert!(env.get("Deployment", "apps/v1", "portal").await.is_some(), "shared objects stay");

    // A small shrink after that is within the threshold: no --force needed.
    std::fs::remove_file(env.tenant_file("wegberg")).unwrap();
    let o = env.run(&["apply", "--group", "heinsberg", "--prune"]);
    assert_eq!(code(&o), Some(0), "{}", text(&o));
    assert_eq!(env.tenant_configmaps().await.len(), 2);

    // Offboard lists first and deletes only with --yes.
    let o = env.run(&["offboard", "--tenant", "wassenberg"]);
    assert_eq!(code(&o), Some(0), "{}", text(&o));
    assert!(String::from_utf8_lossy(&o.stdout).contains("Ingress"), "{}", text(&o));
    assert_eq!(env.tenant_configmaps().await.len(), 2, "listing deletes nothing");
    let o = env.run(&["offboard", "--tenant", "wassenberg", "--yes"]);
    assert_eq!(code(&o), Some(0), "{}", text(&o));
    assert_eq!(env.tenant_configmaps().await, ["erkelenz-tenant"]);
    env.cleanup().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn apply_retries_through_429_500_and_dropped_connections() {
    if real_cluster().is_some() {
        eprintln!("SKIPPED on a real cluster: needs fault injection");
        return;
    }
    let env = env("faults").await;
    let c = env.cluster.as_ref().unwrap();
    let faults = c.faults();
    faults.inject(
        FaultRule::new(Fault::TooManyRequests { retry_after: Duration::from_secs(0) }).times(3).method("PATCH"),
    );
    faults.inject(FaultRule::new(Fault::InternalError).times(3).method("PATCH").path_contains("/ingresses/"));
    faults.inject(FaultRule::new(Fault::DropConnection).times(2).method("PATCH").path_contains("/configmaps/"));
    let o = env.run(&["apply", "--group", "heinsberg"]);
    assert_eq!(code(&o), Some(0), "{}", text(&o));
    let statuses: Vec<u16> = c.requests().iter().map(|r| r.status).collect();
    assert_eq!(statuses.iter().filter(|s| **s == 429).count(), 3, "{statuses:?}");
    assert_eq!(statuses.iter().filter(|s| **s == 500).count(), 3, "{statuses:?}");
    assert_eq!(statuses.iter().filter(|s| **s == 0).count(), 2, "{statuses:?}");
    assert_eq!(env.tenant_configmaps().await.len(), 11, "everything applied in the end");
    let o = env.run(&["diff", "--group", "heinsberg"]);
    assert_eq!(code(&o), Some(0), "{}", text(&o));
    env.cleanup().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_namespace_that_rejects_writes_fails_clearly() {
    if real_cluster().is_some() {
        eprintln!("SKIPPED on a real cluster: needs fault injection");
        return;
    }
    let env = env("forbidden").await;
    env.cluster.as_ref().unwrap().faults().forbid_writes(&env.namespace);
    let o = env.run(&["apply", "--group", "heinsberg"]);
    assert_eq!(code(&o), Some(1), "{}", text(&o));
    assert!(text(&o).contains("Forbidden") && text(&o).contains(&env.namespace), "{}", text(&o));
    env.cleanup().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn wait_times_out_naming_what_is_not_ready() {
    if real_cluster().is_some() {
        eprintln!("SKIPPED on a real cluster: needs controllable readiness");
        return;
    }
    let env = env("timeout").await;
    env.cluster.as_ref().unwrap().set_readiness_delay(Duration::from_secs(3600));
    let o = env.run(&["apply", "--group", "heinsberg", "--wait", "--timeout", "2s"]);
    assert_eq!(code(&o), Some(1), "{}", text(&o));
    assert!(text(&o).contains("timed out") && text(&o).contains("Deployment"), "{}", text(&o));
    env.cleanup().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unreachable_cluster_is_exit_code_3() {
    if real_cluster().is_some() {
        eprintln!("SKIPPED on a real cluster");
        return;
    }
    let env = env("unreachable").await;
    let url = env.cluster.as_ref().unwrap().url().to_string();
    // Keep the kubeconfig, stop the server.
    let kubeconfig = env.dir.path().join("kubeconfig");
    std::fs::copy(&env.kubeconfig, &kubeconfig).unwrap();
    let Env { cluster, dir, namespace, .. } = env;
    cluster.unwrap().shutdown().await;
    let env = Env { cluster: None, kubeconfig, dir, namespace };
    let o = env.run(&["apply", "--group", "heinsberg"]);
    assert_eq!(code(&o), Some(3), "{}", text(&o));
    assert!(text(&o).contains(url.trim_end_matches('/')) && text(&o).contains("testcluster"), "{}", text(&o));
}
