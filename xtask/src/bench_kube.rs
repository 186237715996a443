//! `cargo xtask bench kube`, second part: portalctl against a real control plane (`cargo xtask cluster up`, or the
//! cluster of `PORTALCTL_E2E_KUBECONFIG`).
//!
//! For the 396 communes of NRW and the first 1,000 communes of Germany, each in a namespace of its own and at each
//! `--concurrency` of `BENCH_KUBE_CONCURRENCY` (default 4,16): `portalctl rollout --no-db` from empty until every
//! tenant is applied and ready (the shared Deployment Available, every Ingress with its address, every Certificate
//! Ready); the same rollout again, which must move no `resourceVersion`; then `portalctl status` of the group
//! (best and median of `BENCH_KUBE_STATUS_RUNS`, default 3). Each command's wall time, peak RSS (wait4) and the
//! number of API requests it made: portalctl runs as a ServiceAccount of its own (cluster-admin) whose requests a
//! FlowSchema of their own counts (`apiserver_flowcontrol_dispatched_requests_total`, read from the API server's
//! `/metrics`), so the control plane's and other clients' requests are not mixed in. The FlowSchema puts them at
//! the `exempt` priority level, as the admin credentials of the tests are, so nothing throttles them.

use crate::bench::{measure, nrw_and_1000, release_binary, tempfile_dir};
use crate::cluster::BenchCluster;
use crate::cluster_bootstrap::{apply, client, resource};
use anyhow::{bail, Context, Result};
use kube::api::{Api, DeleteParams, DynamicObject, ListParams};
use kube::config::Kubeconfig;
use kube::Client;
use serde_json::{json, Value};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

/// Anchors printed beside our figures.
const FLUX_1000_SECS: f64 = 255.0;
const KUBECTL_QPS: f64 = 50.0;

/// The pilot wave of each group: real slugs of the official list (the first commune of five NRW Kreise; the four
/// kreisfreie Städte of Schleswig-Holstein, which lead the official order).
pub const NRW_PILOTS: [&str; 5] = ["detmold", "espelkamp", "kirchlengern", "heinsberg", "dorsten"];
const GERMANY_PILOTS: [&str; 4] = ["flensburg", "kiel", "luebeck", "neumuenster"];

fn env_list(name: &str, default: &str) -> Vec<usize> {
    std::env::var(name).unwrap_or_else(|_| default.into()).split(',').filter_map(|s| s.trim().parse().ok()).collect()
}

pub fn runtime() -> Result<tokio::runtime::Runtime> {
    Ok(tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build()?)
}

/// A namespace name unique to this run: `<prefix>-<pid>-<6 random letters>`.
pub fn namespace(prefix: &str) -> String {
    use rand::Rng;
    let mut r = rand::rng();
    let sfx: String = (0..6).map(|_| char::from(b'a' + r.random_range(0..26u8))).collect();
    format!("{prefix}-{}-{sfx}", std::process::id())
}

/// Point the group at another namespace (`defaults.namespace` in its group.yaml).
pub fn set_namespace(tenants: &Path, group: &str, ns: &str) -> Result<()> {
    let file = tenants.join(group).join("group.yaml");
    let text = std::fs::read_to_string(&file)?;
    let mut found = false;
    let out: Vec<String> = text
        .lines()
        .map(|l| match l.trim_start().strip_prefix("namespace: ") {
            Some(_) => {
                found = true;
                format!("{}namespace: {ns}", &l[..l.len() - l.trim_start().len()])
            }
            None => l.to_string(),
        })
        .collect();
    if !found {
        bail!("{}: no defaults.namespace", file.display());
    }
    std::fs::write(&file, out.join("\n") + "\n")?;
    Ok(())
}

/// Delete a namespace and wait (up to 10 minutes) until the namespace controller has removed it; how long it took.
pub async fn delete_namespace(client: &Client, ns: &str) -> Result<Duration> {
    let api: Api<DynamicObject> = Api::all_with(client.clone(), &resource("", "v1", "Namespace", "namespaces"));
    let t = Instant::now();
    let _ = api.delete(ns, &DeleteParams::background()).await;
    while api.get_opt(ns).await?.is_some() {
        if t.elapsed() > Duration::from_secs(600) {
            bail!("namespace {ns} still there after {:?}", t.elapsed());
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    Ok(t.elapsed())
}

/// An object's resourceVersion and its field managers' entries (manager, operation, subresource, time).
#[derive(PartialEq)]
struct Version {
    resource_version: String,
    managers: Vec<(String, String, String, String)>,
}

impl Version {
    fn of(o: DynamicObject) -> Version {
        let managers = o
            .metadata
            .managed_fields
            .unwrap_or_default()
            .into_iter()
            .map(|m| {
                (
                    m.manager.unwrap_or_default(),
                    m.operation.unwrap_or_default(),
                    m.subresource.unwrap_or_default(),
                    m.time.map(|t| t.0.to_string()).unwrap_or_default(),
                )
            })
            .collect();
        Version { resource_version: o.metadata.resource_version.unwrap_or_default(), managers }
    }
}

/// `kind/name →` version of every object of portalctl's kinds in the namespace, and of the namespace.
async fn versions(client: &Client, ns: &str) -> Result<BTreeMap<String, Version>> {
    let mut out = BTreeMap::new();
    for key in portalctl::cluster::namespaced_kinds() {
        let kind = key.kind;
        let api: Api<DynamicObject> = Api::namespaced_with(client.clone(), ns, &portalctl::cluster::api_resource(&key));
        for o in api.list(&ListParams::default()).await.with_context(|| format!("list {kind}"))?.items {
            out.insert(format!("{kind}/{}", o.metadata.name.clone().unwrap_or_default()), Version::of(o));
        }
    }
    let nsapi: Api<DynamicObject> = Api::all_with(client.clone(), &resource("", "v1", "Namespace", "namespaces"));
    out.insert(format!("Namespace/{ns}"), Version::of(nsapi.get(ns).await?));
    Ok(out)
}

/// The objects whose resourceVersion moved between two snapshots, each with the field managers whose entries
/// changed (the writers).
fn moved(before: &BTreeMap<String, Version>, after: &BTreeMap<String, Version>) -> Vec<(String, Vec<String>)> {
    after
        .iter()
        .filter(|(k, v)| before.get(*k).map(|b| &b.resource_version) != Some(&v.resource_version))
        .map(|(k, v)| {
            let old = before.get(k).map(|b| b.managers.as_slice()).unwrap_or_default();
            let writers = v
                .managers
                .iter()
                .filter(|m| !old.contains(m))
                .map(
                    |(manager, op, sub, _)| {
                        if sub.is_empty() {
                            format!("{manager} ({op})")
                        } else {
                            format!("{manager} ({op} {sub})")
                        }
                    },
                )
                .collect();
            (k.clone(), writers)
        })
        .collect()
}

/// How many objects of a kind the namespace holds.
async fn count(client: &Client, ns: &str, r: (&str, &str, &str, &str)) -> Result<usize> {
    let api: Api<DynamicObject> = Api::namespaced_with(client.clone(), ns, &resource(r.0, r.1, r.2, r.3));
    Ok(api.list(&ListParams::default()).await?.items.len())
}

/// The identity portalctl runs as during the benchmark, and the counter of its API requests.
struct Identity {
    admin: Client,
    name: String,
    kubeconfig: PathBuf,
}

impl Identity {
    /// A namespace and ServiceAccount `portalctl` (cluster-admin), a FlowSchema matching only it, a token and a
    /// kubeconfig with it.
    async fn create(admin_kubeconfig: &Path, dir: &Path) -> Result<Identity> {
        let admin = client(admin_kubeconfig).await?;
        let name = namespace("portalctl-bench");
        let ns = name.as_str();
        apply(
            &admin,
            &resource("", "v1", "Namespace", "namespaces"),
            None,
            json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": ns}}),
        )
        .await?;
        apply(
            &admin,
            &resource("", "v1", "ServiceAccount", "serviceaccounts"),
            Some(ns),
            json!({"apiVersion": "v1", "kind": "ServiceAccount", "metadata": {"name": "portalctl", "namespace": ns}}),
        )
        .await?;
        apply(
            &admin,
            &resource("rbac.authorization.k8s.io", "v1", "ClusterRoleBinding", "clusterrolebindings"),
            None,
            json!({"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "ClusterRoleBinding", "metadata": {"name": ns},
                   "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": "cluster-admin"},
                   "subjects": [{"kind": "ServiceAccount", "name": "portalctl", "namespace": ns}]}),
        )
        .await?;
        apply(
            &admin,
            &resource("flowcontrol.apiserver.k8s.io", "v1", "FlowSchema", "flowschemas"),
            None,
            json!({"apiVersion": "flowcontrol.apiserver.k8s.io/v1", "kind": "FlowSchema", "metadata": {"name": ns},
                   "spec": {"priorityLevelConfiguration": {"name": "exempt"}, "matchingPrecedence": 10,
                            "rules": [{"subjects": [{"kind": "ServiceAccount",
                                                     "serviceAccount": {"name": "portalctl", "namespace": ns}}],
                                       "resourceRules": [{"verbs": ["*"], "apiGroups": ["*"], "resources": ["*"],
                                                          "clusterScope": true, "namespaces": ["*"]}],
                                       "nonResourceRules": [{"verbs": ["*"], "nonResourceURLs": ["*"]}]}]}}),
        )
        .await?;
        let body = json!({"apiVersion": "authentication.k8s.io/v1", "kind": "TokenRequest",
                          "spec": {"expirationSeconds": 7200}});
        let req = http::Request::post(format!("/api/v1/namespaces/{ns}/serviceaccounts/portalctl/token"))
            .header("content-type", "application/json")
            .body(serde_json::to_vec(&body)?)?;
        let answer: Value = admin.request(req).await.context("TokenRequest")?;
        let token = answer["status"]["token"].as_str().context("TokenRequest without a token")?;

        // The admin kubeconfig's cluster, with the ServiceAccount's token.
        let kc = Kubeconfig::read_from(admin_kubeconfig)?;
        let context_name = kc.current_context.clone().context("the kubeconfig has no current context")?;
        let context = kc
            .contexts
            .iter()
            .find(|c| c.name == context_name)
            .and_then(|c| c.context.as_ref())
            .context("current context not found")?;
        let cluster = kc.clusters.iter().find(|c| c.name == context.cluster).context("cluster of the context")?;
        let text = json!({
            "apiVersion": "v1", "kind": "Config",
            "clusters": [serde_json::to_value(cluster)?],
            "users": [{"name": "portalctl-bench", "user": {"token": token}}],
            "contexts": [{"name": "portalctl-bench", "context": {"cluster": cluster.name, "user": "portalctl-bench"}}],
            "current-context": "portalctl-bench",
        });
        let kubeconfig = dir.join("kubeconfig-bench");
        std::fs::write(&kubeconfig, serde_json::to_vec_pretty(&text)?)?;
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&kubeconfig, std::fs::Permissions::from_mode(0o600))?;
        Ok(Identity { admin, name, kubeconfig })
    }

    /// API requests the ServiceAccount made so far (dispatched by API Priority and Fairness under its FlowSchema).
    async fn requests(&self) -> Result<u64> {
        let req = http::Request::get("/metrics").body(Vec::new())?;
        let text = self.admin.request_text(req).await.context("GET /metrics")?;
        Ok(dispatched(&text, &self.name))
    }

    async fn delete(&self) {
        let dp = DeleteParams::background();
        for (g, v, k, p) in [
            ("flowcontrol.apiserver.k8s.io", "v1", "FlowSchema", "flowschemas"),
            ("rbac.authorization.k8s.io", "v1", "ClusterRoleBinding", "clusterrolebindings"),
            ("", "v1", "Namespace", "namespaces"),
        ] {
            let api: Api<DynamicObject> = Api::all_with(self.admin.clone(), &resource(g, v, k, p));
            let _ = api.delete(&self.name, &dp).await;
        }
    }
}

/// The requests API Priority and Fairness dispatched under one FlowSchema, from the API server's metrics text.
fn dispatched(metrics: &str, flow_schema: &str) -> u64 {
    let needle = format!("flow_schema=\"{flow_schema}\"");
    metrics
        .lines()
        .filter(|l| l.starts_with("apiserver_flowcontrol_dispatched_requests_total{") && l.contains(&needle))
        .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
        .sum::<f64>() as u64
}

/// One command of the benchmark: wall time, peak RSS, API requests, its output.
struct Run {
    secs: f64,
    peak_mib: f64,
    requests: u64,
    code: Option<i32>,
    stdout: Vec<u8>,
    stderr: String,
}

/// Run a command with stdout and stderr into files (`<out>` and `<out>.stderr`), counting its API requests.
fn run_counted(rt: &tokio::runtime::Runtime, id: &Identity, cmd: &mut Command, out: &Path) -> Result<Run> {
    let err = out.with_extension("stderr");
    let before = rt.block_on(id.requests())?;
    let m = measure(cmd.stdout(std::fs::File::create(out)?).stderr(std::fs::File::create(&err)?))?;
    let after = rt.block_on(id.requests())?;
    Ok(Run {
        secs: m.secs,
        peak_mib: m.peak_mib(),
        requests: after.saturating_sub(before),
        code: m.code,
        stdout: std::fs::read(out)?,
        stderr: std::fs::read_to_string(&err).unwrap_or_default(),
    })
}

struct Row {
    group: String,
    tenants: usize,
    concurrency: usize,
    waves: String,
    objects: usize,
    simulated: String,
    rollout: Run,
    noop: Run,
    status: Vec<Run>,
    deleted: f64,
}

pub fn cluster() -> Result<()> {
    let bin = release_binary()?;
    let cluster = BenchCluster::get()?;
    let rt = runtime()?;
    let dir = tempfile_dir("kube-cluster")?;
    let id = rt.block_on(Identity::create(&cluster.kubeconfig, &dir))?;
    let mut namespaces = Vec::new();
    let result = run(&rt, &bin, &id, &dir, &mut namespaces);
    for ns in &namespaces {
        if let Err(e) = rt.block_on(delete_namespace(&id.admin, ns)) {
            eprintln!("bench kube: {e:#}");
        }
    }
    rt.block_on(id.delete());
    std::fs::remove_dir_all(&dir).ok();
    result
}

fn run(
    rt: &tokio::runtime::Runtime,
    bin: &Path,
    id: &Identity,
    dir: &Path,
    namespaces: &mut Vec<String>,
) -> Result<()> {
    let concurrencies = env_list("BENCH_KUBE_CONCURRENCY", "4,16");
    let status_runs = env_list("BENCH_KUBE_STATUS_RUNS", "3").first().copied().unwrap_or(3).max(1);
    let (nrw, germany) = nrw_and_1000(bin, "kube", &NRW_PILOTS, &GERMANY_PILOTS)?;
    // Every hostname resolves (to the documentation address the simulated ingress publishes); the portals are
    // asked at a loopback port nothing listens on, so no check leaves the machine and each fails at once.
    let mut hosts = Vec::new();
    for (tenants, group) in [(&nrw, "nrw"), (&germany, "germany")] {
        for e in std::fs::read_dir(tenants.join(group))? {
            let slug = e?.path().file_stem().map(|s| s.to_string_lossy().into_owned()).unwrap_or_default();
            if slug != "group" {
                hosts.push((format!("service.{slug}.de"), crate::bench_status::INGRESS));
            }
        }
    }
    let (_dns, nameserver) = crate::bench_status::start_dns(&hosts, dir)?;
    let closed = format!("127.0.0.1:{}", crate::bench_serve::free_port()?);
    let admin = id.admin.clone();
    let load_before = loadavg();

    let mut rows = Vec::new();
    for (tenants, group) in [(&nrw, "nrw"), (&germany, "germany")] {
        let n = std::fs::read_dir(tenants.join(group))?.count() - 1;
        for &c in &concurrencies {
            let ns = namespace(&format!("bench-{group}-c{c}"));
            set_namespace(tenants, group, &ns)?;
            namespaces.push(ns.clone());
            let rollout_cmd = || {
                let mut cmd = Command::new(bin);
                cmd.arg("--tenants").arg(tenants).args(["-o", "json", "-q", "rollout", "-g", group, "--no-db"]);
                cmd.args(["--concurrency", &c.to_string(), "--timeout", "5m"]).env("KUBECONFIG", &id.kubeconfig);
                cmd
            };
            eprintln!("bench kube: rollout of {n} tenants ({group}) from empty, --concurrency {c}, namespace {ns}");
            let rollout = run_counted(rt, id, &mut rollout_cmd(), &dir.join("rollout.json"))?;
            let report: Value = serde_json::from_slice(&rollout.stdout).context("rollout -o json")?;
            let results = report["results"].as_array().context("rollout report")?;
            let done = results.iter().filter(|r| r["result"] == "done").count();
            if rollout.code != Some(0) || done != n {
                bail!("rollout of {group} (exit {:?}): {done} of {n} tenants done\n{}", rollout.code, rollout.stderr);
            }
            let mut waves: Vec<(String, usize)> = Vec::new();
            for r in results {
                let w = r["wave"].as_str().unwrap_or_default().to_string();
                match waves.iter_mut().find(|(name, _)| *name == w) {
                    Some((_, k)) => *k += 1,
                    None => waves.push((w, 1)),
                }
            }
            let waves = waves.iter().map(|(w, k)| format!("{w} {k}")).collect::<Vec<_>>().join(", ");
            let before = rt.block_on(versions(&admin, &ns))?;
            let certs = rt.block_on(count(&admin, &ns, ("cert-manager.io", "v1", "Certificate", "certificates")))?;
            let pods = rt.block_on(count(&admin, &ns, ("", "v1", "Pod", "pods")))?;
            let b = &report["breakdown"];
            println!(
                "bench kube: rollout of {n} tenants ({group}, waves: {waves}) from empty, --concurrency {c}: {:.1} s \
                 to every tenant applied and ready ({:.1} tenants/s; {} objects of portalctl = {:.0} objects/s; \
                 provisioning or applying {:.1} s, only waiting {:.1} s); {} API requests = {:.1} per tenant; \
                 peak RSS {:.1} MiB",
                rollout.secs,
                n as f64 / rollout.secs,
                before.len(),
                before.len() as f64 / rollout.secs,
                b["working"].as_f64().unwrap_or(0.0),
                b["waiting"].as_f64().unwrap_or(0.0),
                rollout.requests,
                rollout.requests as f64 / n as f64,
                rollout.peak_mib,
            );

            let noop = run_counted(rt, id, &mut rollout_cmd(), &dir.join("noop.json"))?;
            if noop.code != Some(0) {
                bail!("no-op rollout of {group} failed (exit {:?}):\n{}", noop.code, noop.stderr);
            }
            let after = rt.block_on(versions(&admin, &ns))?;
            // portalctl must have written nothing; a controller updating a status meanwhile (the HPA controller's
            // first sync, 15 s after an HPA appears) is not the rollout's doing, and is shown as such.
            let moved = moved(&before, &after);
            let by_portalctl: Vec<_> =
                moved.iter().filter(|(_, w)| w.is_empty() || w.iter().any(|m| m.starts_with("portalctl "))).collect();
            if !by_portalctl.is_empty() {
                bail!(
                    "the no-op rollout moved the resourceVersion of {} objects: {by_portalctl:?}",
                    by_portalctl.len()
                );
            }
            let others = if moved.is_empty() {
                String::from("no resourceVersion moved")
            } else {
                let list: Vec<String> = moved.iter().map(|(k, w)| format!("{k} by {}", w.join(", "))).collect();
                format!("portalctl wrote nothing; meanwhile other managers wrote {}", list.join("; "))
            };
            println!(
                "bench kube: the same rollout again (no-op): {:.1} s, {} API requests = {:.1} per tenant, \
                 {} objects: {others}; peak RSS {:.1} MiB",
                noop.secs,
                noop.requests,
                noop.requests as f64 / n as f64,
                after.len(),
                noop.peak_mib
            );

            let mut status = Vec::new();
            for _ in 0..status_runs {
                let mut cmd = Command::new(bin);
                cmd.arg("--tenants").arg(tenants).args(["-o", "json", "status", "-g", group, "--timings"]);
                cmd.args(["--nameserver", &nameserver, "--portal-address", &closed]).env("KUBECONFIG", &id.kubeconfig);
                let r = run_counted(rt, id, &mut cmd, &dir.join("status.json"))?;
                // Exit 1: not every tenant is live (no database, no portal), as arranged.
                if r.code != Some(1) {
                    bail!("status of {group} exited with {:?}:\n{}", r.code, r.stderr);
                }
                let doc: Value = serde_json::from_slice(&r.stdout).context("status -o json")?;
                let listed = doc["tenants"].as_array().map_or(0, |t| t.len());
                if listed != n {
                    bail!("status lists {listed} of {n} tenants");
                }
                status.push(r);
            }
            status.sort_by(|a, b| a.secs.total_cmp(&b.secs));
            println!(
                "bench kube: status of {n} tenants (cluster, DNS; no database; portals refused at once): best of \
                 {status_runs} {:.3} s, median {:.3} s; {} API requests; peak RSS {:.1} MiB",
                status[0].secs,
                status[status.len() / 2].secs,
                status[0].requests,
                status[0].peak_mib
            );
            for l in status[0].stderr.lines().filter(|l| l.starts_with("timing:")) {
                println!("bench kube:   {l}");
            }
            let deleted = rt.block_on(delete_namespace(&admin, &ns))?.as_secs_f64();
            println!("bench kube: namespace {ns} deleted by the namespace controller in {deleted:.1} s");
            rows.push(Row {
                group: group.to_string(),
                tenants: n,
                concurrency: c,
                waves,
                objects: before.len(),
                simulated: format!("{certs} Certificates, {pods} Pods"),
                rollout,
                noop,
                status,
                deleted,
            });
        }
        set_namespace(tenants, group, &format!("portal-{group}"))?;
    }
    let load_after = loadavg();

    println!("\nbench kube: load average {load_before} before, {load_after} after");
    println!(
        "\n| group | tenants | --concurrency | waves | objects (+ simulated) | from empty to ready | objects/s | API \
         requests (per tenant) | peak RSS | no-op re-run (requests) | status best / median (requests) | status RSS |"
    );
    println!("|---|---|---|---|---|---|---|---|---|---|---|---|");
    for r in &rows {
        println!(
            "| {} | {} | {} | {} | {} (+ {}) | {:.1} s | {:.0} | {} ({:.1}) | {:.1} MiB | {:.1} s ({}) | {:.2} s / {:.2} s ({}) | {:.1} MiB |",
            r.group,
            r.tenants,
            r.concurrency,
            r.waves,
            r.objects,
            r.simulated,
            r.rollout.secs,
            r.objects as f64 / r.rollout.secs,
            r.rollout.requests,
            r.rollout.requests as f64 / r.tenants as f64,
            r.rollout.peak_mib,
            r.noop.secs,
            r.noop.requests,
            r.status[0].secs,
            r.status[r.status.len() / 2].secs,
            r.status[0].requests,
            r.status[0].peak_mib,
        );
    }
    for r in rows.iter().filter(|r| r.tenants == 1000) {
        println!(
            "bench kube: anchors for 1,000 tenants at --concurrency {}: Flux's published benchmark reconciles 1,000 \
             Kustomizations in 4 m 15 s on a Kind cluster ({:.1}x our {:.1} s); kubectl's client at its default 50 QPS \
             would need {:.0} s for our {} requests of the rollout, {:.0} s for the no-op's {}. Targets: from empty \
             < 120 s: {}; no-op < 15 s: {}; status < 5 s: {}; namespace deleted in {:.0} s",
            r.concurrency,
            FLUX_1000_SECS / r.rollout.secs,
            r.rollout.secs,
            r.rollout.requests as f64 / KUBECTL_QPS,
            r.rollout.requests,
            r.noop.requests as f64 / KUBECTL_QPS,
            r.noop.requests,
            met(r.rollout.secs < 120.0),
            met(r.noop.secs < 15.0),
            met(r.status[r.status.len() / 2].secs < 5.0),
            r.deleted,
        );
    }
    std::fs::remove_dir_all(&nrw).ok();
    std::fs::remove_dir_all(&germany).ok();
    Ok(())
}

fn met(ok: bool) -> &'static str {
    if ok {
        "met"
    } else {
        "missed"
    }
}

/// The 1-, 5- and 15-minute load averages.
pub fn loadavg() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .map(|s| s.split_whitespace().take(3).collect::<Vec<_>>().join(" "))
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    #[test]
    fn requests_are_counted_for_the_one_flow_schema_only() {
        let metrics = "\
# TYPE apiserver_flowcontrol_dispatched_requests_total counter
apiserver_flowcontrol_dispatched_requests_total{flow_schema=\"exempt\",priority_level=\"exempt\"} 723
apiserver_flowcontrol_dispatched_requests_total{flow_schema=\"portalctl-bench-1-abc\",priority_level=\"exempt\"} 1204
apiserver_flowcontrol_dispatched_requests_total{flow_schema=\"portalctl-bench-1-abcd\",priority_level=\"exempt\"} 5
apiserver_flowcontrol_current_inqueue_requests{flow_schema=\"portalctl-bench-1-abc\",priority_level=\"exempt\"} 9
";
        assert_eq!(super::dispatched(metrics, "portalctl-bench-1-abc"), 1204);
        assert_eq!(super::dispatched(metrics, "nothing"), 0);
    }

    #[test]
    fn the_group_moves_to_another_namespace() {
        let dir = std::env::temp_dir().join(format!("bench-kube-ns-{}", std::process::id()));
        std::fs::create_dir_all(dir.join("nrw")).unwrap();
        let text =
            "kind: RolloutGroup\nspec:\n  defaults:\n    namespace: portal-nrw\n    image: portalctl/portalctl:0.1.0\n";
        std::fs::write(dir.join("nrw/group.yaml"), text).unwrap();
        super::set_namespace(&dir, "nrw", "bench-nrw-c4-1-abcdef").unwrap();
        let after = std::fs::read_to_string(dir.join("nrw/group.yaml")).unwrap();
        assert_eq!(after, text.replace("portal-nrw", "bench-nrw-c4-1-abcdef"));
        std::fs::write(dir.join("nrw/group.yaml"), "kind: RolloutGroup\n").unwrap();
        assert!(super::set_namespace(&dir, "nrw", "x").is_err());
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
