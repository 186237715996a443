//! Rollout and go-live status end to end: a real Kubernetes API server (`cargo xtask cluster up`, see tests/kubetest),
//! real PostgreSQL, a real DNS server (dnsmasq) and the real portal server. A pilot wave climbs to content-ready (and no
//! further without an accessibility audit); a gate holds the next wave while a pilot is
//! unhealthy; `kill -9` midway and a second run converges; a tenant without DNS shows the right stuck reason.

mod kubetest;
mod support;

use kubetest::Kube;
use std::path::Path;
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};
use support::dnsserver::DnsServer;
use support::repo_root;
use support::workdir::Workdir;

const PILOTS: [&str; 3] = ["detmold", "espelkamp", "kirchlengern"];
const MAIN: [&str; 2] = ["hille", "loehne"];

/// PostgreSQL roles are server-wide: the tests of this file, which provision the same tenants, take turns.
static SERIAL: std::sync::Mutex<()> = std::sync::Mutex::new(());

/// A database of its own on the test server; `None` (skip) outside CI when there is none.
fn database(name: &str) -> Option<String> {
    let Ok(admin) = std::env::var("PORTALCTL_TEST_DATABASE_URL") else {
        assert!(std::env::var("CI").is_err(), "PORTALCTL_TEST_DATABASE_URL is required in CI");
        eprintln!("skipping: PORTALCTL_TEST_DATABASE_URL not set (source .ci/postgres.sh)");
        return None;
    };
    let db = format!("rollout_{name}_{}", std::process::id());
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    rt.block_on(async {
        let (client, conn) = tokio_postgres::connect(&admin, tokio_postgres::NoTls).await.unwrap();
        tokio::spawn(conn);
        client.batch_execute(&format!("DROP DATABASE IF EXISTS {db}")).await.unwrap();
        client.batch_execute(&format!("CREATE DATABASE {db}")).await.unwrap();
    });
    let base = admin.rsplit_once('/').unwrap().0;
    Some(format!("{base}/{db}"))
}

/// The krz group cut down to the three pilots and two communes of the main wave, in its own namespace.
fn tenants(env: &Workdir, namespace: &str) {
    let src = repo_root().join("tenants/krz");
    let dst = env.path().join("tenants/krz");
    std::fs::create_dir_all(&dst).unwrap();
    for f in ["group"].iter().chain(PILOTS.iter()).chain(MAIN.iter()) {
        let text = std::fs::read_to_string(src.join(format!("{f}.yaml"))).unwrap();
        let text = text.replace("namespace: portal-krz", &format!("namespace: {namespace}"));
        // A lower content threshold, so that the starter catalogue makes a portal content-ready.
        let text = text.replace("contentThreshold: 40", "contentThreshold: 20");
        // Detmold gets complete legal pages (example data) and is published; the others keep their placeholders.
        let text = match text.find("  # Legal pages") {
            Some(i) if *f == "detmold" => {
                text[..i].replace("published: false", "published: true") + include_str!("fixtures/legal-example.yaml")
            }
            _ => text,
        };
        std::fs::write(dst.join(format!("{f}.yaml")), text).unwrap();
    }
}

fn run(env: &Workdir, kubeconfig: &Path, args: &[&str]) -> Output {
    env.command().env("KUBECONFIG", kubeconfig).args(args).output().unwrap()
}

fn text(o: &Output) -> String {
    format!(
        "status {:?}\nstdout:\n{}\nstderr:\n{}",
        o.status,
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

/// The cluster client of a synchronous test, with the runtime it lives on.
struct Cluster {
    rt: tokio::runtime::Runtime,
    kube: Kube,
}

impl Cluster {
    fn connect(kubeconfig: &Path) -> Cluster {
        let rt = tokio::runtime::Runtime::new().unwrap();
        let kube = rt.block_on(Kube::connect(kubeconfig));
        Cluster { rt, kube }
    }
}

fn tenant_configmaps(c: &Cluster, namespace: &str) -> Vec<String> {
    c.rt.block_on(c.kube.tenant_slugs(namespace))
}

#[test]
fn waves_gates_resume_and_go_live() {
    let _turn = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let Some(db_url) = database("waves") else { return };
    let Some(kc) = kubetest::kubeconfig() else { return };
    let kube = Cluster::connect(&kc);
    let env = Workdir::new();
    let ns = &kubetest::namespace("portal-krz-e2e");
    tenants(&env, ns);
    let secrets = env.path().join("secrets");
    let secrets = secrets.to_str().unwrap();
    let rollout = |extra: &[&str]| {
        let mut args =
            vec!["rollout", "-g", "krz", "--database-url", &db_url, "--secrets-dir", secrets, "--timeout", "15s"];
        args.extend_from_slice(extra);
        run(&env, &kc, &args)
    };

    // The plan: pilots first.
    let plan = run(&env, &kc, &["rollout", "-g", "krz", "--dry-run", "-o", "json"]);
    let plan: serde_json::Value = serde_json::from_slice(&plan.stdout).unwrap();
    assert_eq!(plan[0]["wave"], "pilot");
    assert_eq!(plan[0]["tenants"], serde_json::json!(PILOTS));

    // An unhealthy pilot (its Ingress never gets an address) holds the main wave.
    kube.rt.block_on(kube.kube.hold_ingress(ns, "espelkamp"));
    let held = rollout(&["--max-failures", "3"]);
    assert_eq!(held.status.code(), Some(1), "{}", text(&held));
    let stderr = String::from_utf8_lossy(&held.stderr);
    assert!(stderr.contains("wave main held"), "{}", text(&held));
    assert!(stderr.contains(&format!("espelkamp: cluster: Ingress {ns}/espelkamp not ready")), "{}", text(&held));
    assert_eq!(tenant_configmaps(&kube, ns), PILOTS, "the main wave must not have started");

    // The pilot recovers; a second run finishes, the pilots' no-op included.
    kube.rt.block_on(kube.kube.release_ingress(ns, "espelkamp"));
    let done = rollout(&[]);
    assert_eq!(done.status.code(), Some(0), "{}", text(&done));
    let mut all: Vec<&str> = PILOTS.iter().chain(MAIN.iter()).copied().collect();
    all.sort();
    assert_eq!(tenant_configmaps(&kube, ns), all);

    // Paused groups do nothing, also in CI runs; resume lets them continue.
    assert!(run(&env, &kc, &["rollout", "pause", "-g", "krz"]).status.success());
    let paused = rollout(&[]);
    assert_eq!(paused.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&paused.stderr).contains("is paused"), "{}", text(&paused));
    assert!(run(&env, &kc, &["rollout", "resume", "-g", "krz"]).status.success());

    // Content for the pilots, then the portal server for the whole group.
    for t in PILOTS {
        let imp = run(&env, &kc, &["content", "import", "--tenant", t, "--starter", "--database-url", &db_url]);
        assert!(imp.status.success(), "{}", text(&imp));
        let publ = run(&env, &kc, &["content", "publish", "--tenant", t, "--all", "--database-url", &db_url]);
        assert!(publ.status.success(), "{}", text(&publ));
    }
    let cred: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(env.path().join("secrets/krz/_portal.db.json")).unwrap())
            .unwrap();
    let portal_url = format!(
        "postgres://{}:{}@{}:{}/{}",
        cred["username"].as_str().unwrap(),
        cred["password"].as_str().unwrap(),
        cred["host"].as_str().unwrap(),
        cred["port"],
        cred["dbname"].as_str().unwrap()
    );
    let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let listen = format!("127.0.0.1:{port}");
    let ops_listen =
        format!("127.0.0.1:{}", std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port());
    let server = Reaped(
        env.command()
            .args(["serve", "--listen", &listen, "--ops-listen", &ops_listen, "--database-url", &portal_url])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap(),
    );
    let started = Instant::now();
    while std::net::TcpStream::connect(&listen).is_err() && started.elapsed() < Duration::from_secs(20) {
        std::thread::sleep(Duration::from_millis(100));
    }

    // DNS: the pilots and hille point at the ingress; loehne has no record.
    let Some(dns) = DnsServer::start(&[
        ("service.detmold.de", "192.0.2.10"),
        ("service.espelkamp.de", "192.0.2.10"),
        ("service.kirchlengern.de", "192.0.2.10"),
        ("service.hille.de", "192.0.2.10"),
    ]) else {
        return;
    };
    let ns_addr = dns.addr.to_string();
    let status = run(
        &env,
        &kc,
        &[
            "status",
            "-g",
            "krz",
            "--database-url",
            &db_url,
            "--nameserver",
            &ns_addr,
            "--portal-address",
            &listen,
            "--ops-address",
            &ops_listen,
            "-o",
            "json",
        ],
    );
    // Without the operations listener the identity cannot be asked: reachable stays unknown, and
    // the public listener is no substitute (it has no identity endpoint).
    let blind = run(
        &env,
        &kc,
        &["status", "-g", "krz", "--nameserver", &ns_addr, "--portal-address", &listen, "-t", "detmold", "-o", "json"],
    );
    drop(server);
    let blind: serde_json::Value = serde_json::from_slice(&blind.stdout).unwrap_or_else(|_| panic!("{}", text(&blind)));
    assert_eq!(
        blind["tenants"][0]["checks"]["reachable"],
        serde_json::json!({"result": "unknown", "detail": "portal: identity of service.detmold.de not asked (no --ops-address)"}),
        "{blind}"
    );
    assert_eq!(status.status.code(), Some(1), "not all live: {}", text(&status));
    let doc: serde_json::Value = serde_json::from_slice(&status.stdout).unwrap_or_else(|_| panic!("{}", text(&status)));
    let phase = |t: &str| -> (String, String) {
        let s = doc["tenants"].as_array().unwrap().iter().find(|s| s["tenant"] == t).unwrap();
        (s["phase"].as_str().unwrap().to_string(), s["stuck"].as_str().unwrap_or("").to_string())
    };
    // Detmold is published with complete legal pages, but never audited: compliant holds it below live.
    // Espelkamp and Kirchlengern have content, but their legal pages are placeholders.
    assert_eq!(phase("detmold"), ("content-ready".into(), "a11y: no accessibility audit yet".into()));
    for t in ["espelkamp", "kirchlengern"] {
        let (p, stuck) = phase(t);
        assert_eq!(p, "content-ready");
        assert!(
            stuck.starts_with("spec.legal.imprint.{address, representative, phone, email}: placeholder; ")
                && stuck.ends_with("; a11y: no accessibility audit yet"),
            "{t}: {stuck}"
        );
    }
    // hille is reachable but has no content; loehne has no DNS record.
    assert_eq!(phase("hille"), ("reachable".into(), "content: 0 of 20 services published".into()));
    assert_eq!(phase("loehne"), ("deployed".into(), "DNS: service.loehne.de has no A/AAAA record".into()));
    let krz = &doc["groups"][0]["total"];
    assert_eq!(
        (krz["tenants"].as_u64(), krz["installed"].as_u64(), krz["online"].as_u64()),
        (Some(5), Some(5), Some(0))
    );
    insta::assert_json_snapshot!("status_groups", doc["groups"]);

    // The HTML report: one self-contained file, with the history recorded in the database.
    let report = env.path().join("status.html");
    let html = run(
        &env,
        &kc,
        &[
            "status",
            "-g",
            "krz",
            "--database-url",
            &db_url,
            "--nameserver",
            &ns_addr,
            "-o",
            "html",
            "--out",
            report.to_str().unwrap(),
        ],
    );
    assert_eq!(html.status.code(), Some(1), "{}", text(&html));
    let page = std::fs::read_to_string(&report).unwrap();
    assert!(page.contains("5 von 5 Portalen installiert") && page.contains("<svg"), "{page}");
    assert!(page.contains("Kreis Minden-Lübbecke") && page.contains("Kreis Lippe"));
    screenshot(&report);
    kube.rt.block_on(kube.kube.delete_namespace(ns));
}

/// A child process that is killed and reaped when dropped, on every path.
struct Reaped(std::process::Child);

impl Drop for Reaped {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Render the report in headless Chromium and keep a screenshot as a test artifact (CI requires Chromium).
fn screenshot(report: &Path) {
    let chromium = ["/usr/bin/chromium", "/usr/bin/chromium-browser"].into_iter().find(|p| Path::new(p).exists());
    let Some(chromium) = chromium else {
        assert!(std::env::var("CI").is_err(), "chromium is required in CI");
        eprintln!("skipping the screenshot: chromium not installed");
        return;
    };
    let out_dir = repo_root().join("target/test-artifacts");
    std::fs::create_dir_all(&out_dir).unwrap();
    let png = out_dir.join("status-report.png");
    let _ = std::fs::remove_file(&png);
    let profile = tempfile::tempdir().unwrap();
    let dom = Command::new(chromium)
        .args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-background-networking",
            "--disable-component-update",
        ])
        .args(["--disable-sync", "--no-first-run", "--window-size=1200,1600"])
        .arg(format!("--user-data-dir={}", profile.path().display()))
        .arg(format!("--screenshot={}", png.display()))
        .arg(format!("file://{}", report.display()))
        .output()
        .unwrap();
    assert!(png.exists() && std::fs::metadata(&png).unwrap().len() > 10_000, "no screenshot: {}", text(&dom));
}

#[test]
fn kill_minus_nine_midway_then_a_second_run_converges() {
    let _turn = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let Some(db_url) = database("kill") else { return };
    let Some(kc) = kubetest::kubeconfig() else { return };
    let kube = Cluster::connect(&kc);
    let env = Workdir::new();
    let ns = &kubetest::namespace("portal-krz-kill");
    tenants(&env, ns);
    // A pilot whose Ingress gets no address: the first run is surely still busy (waiting) when it is killed.
    kube.rt.block_on(kube.kube.hold_ingress(ns, "detmold"));
    let secrets = env.path().join("secrets");
    let args = [
        "rollout",
        "-g",
        "krz",
        "--database-url",
        &db_url,
        "--secrets-dir",
        secrets.to_str().unwrap(),
        "--timeout",
        "20s",
    ];
    let mut first = Reaped(
        env.command().env("KUBECONFIG", &kc).args(args).stdout(Stdio::null()).stderr(Stdio::null()).spawn().unwrap(),
    );
    // Wait until it has started applying, then kill it hard.
    let started = Instant::now();
    while tenant_configmaps(&kube, ns).is_empty() && started.elapsed() < Duration::from_secs(30) {
        std::thread::sleep(Duration::from_millis(20));
    }
    // SAFETY: sending a signal to our own child process.
    unsafe {
        libc::kill(first.0.id() as i32, libc::SIGKILL);
    }
    let _ = first.0.wait();
    let partial = tenant_configmaps(&kube, ns);
    assert!(!partial.is_empty() && partial.len() < 5, "killed midway: {partial:?}");

    kube.rt.block_on(kube.kube.release_ingress(ns, "detmold"));
    let second = run(&env, &kc, &args);
    assert_eq!(second.status.code(), Some(0), "{}", text(&second));
    let mut all: Vec<&str> = PILOTS.iter().chain(MAIN.iter()).copied().collect();
    all.sort();
    assert_eq!(tenant_configmaps(&kube, ns), all, "every tenant exactly once");
    // A third run changes nothing in the cluster: no object's resourceVersion moves.
    let rv = kube.rt.block_on(kube.kube.resource_versions(ns));
    let third = run(&env, &kc, &args);
    assert_eq!(third.status.code(), Some(0), "{}", text(&third));
    assert_eq!(kube.rt.block_on(kube.kube.resource_versions(ns)), rv, "a converged rollout is a no-op");
    kube.rt.block_on(kube.kube.delete_namespace(ns));
}
