//! `cargo xtask cluster up|down|build|env`: a real Kubernetes control plane on 127.0.0.1 for the tests and
//! benchmarks.
//!
//! Real: etcd, kube-apiserver, kube-controller-manager and kube-scheduler, built from source at pinned releases
//! through the Go module proxy and cached outside the clone. Simulated by KWOK (`sigs.k8s.io/kwok`, also built from
//! source): one Node, Pods becoming Running and Ready without containers, an ingress controller publishing an
//! address, cert-manager creating and readying a Certificate per TLS Ingress (see `xtask/cluster/kwok-stages.yaml`).
//!
//! `up` is idempotent: it builds what is missing, and when the recorded processes are alive it only prints the
//! kubeconfig again. `down` stops only the processes whose pid files `up` wrote, after checking that each pid is
//! still the binary it started.

use anyhow::{bail, Context, Result};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// Pinned releases.
pub const KUBERNETES: &str = "v1.37.2";
pub const ETCD: &str = "v3.7.0";
pub const KWOK: &str = "v0.8.0";

const KWOK_STAGES: &str = include_str!("../cluster/kwok-stages.yaml");

/// The processes `up` starts, in start order (`down` stops them in reverse).
const COMPONENTS: [&str; 5] = ["etcd", "kube-apiserver", "kube-controller-manager", "kube-scheduler", "kwok"];

const HELP: &str = "\
cargo xtask cluster <up|down|build|env>

  up      build (once, cached) and start etcd, kube-apiserver, kube-controller-manager, kube-scheduler and KWOK
          on 127.0.0.1; install the IngressClass nginx, the cert-manager Certificate CRD and a KWOK node;
          print KUBECONFIG=<path>
  down    stop the processes `up` started (by their pid files)
  build   only build the binaries into the cache
  env     print KUBECONFIG=<path> of a running control plane

Environment:
  PORTALCTL_K8S_CACHE    where binaries and Go caches live (default /var/cache/portalctl, else ~/.cache/portalctl)
  PORTALCTL_CLUSTER_DIR  PKI, kubeconfig, logs, pid files, etcd data (default <repo>/target/cluster)
  PORTALCTL_CLUSTER_PORT the API server's port (default 16443; etcd uses port+7347 and port+7357,
                         the controller manager and the scheduler port+1 and port+2)
  GO                     the go binary (default: go on PATH, else /usr/local/go/bin/go)
  GO_BUILD_P             go build -p (default 2)";

pub fn run(args: &[&str]) -> Result<()> {
    match args {
        ["up"] => up(),
        ["down"] => down(&Layout::new()?),
        ["build"] => build(&Layout::new()?),
        ["env"] => {
            let l = Layout::new()?;
            if !running(&l) {
                bail!("no control plane is running from {} (cargo xtask cluster up)", l.run.display());
            }
            println!("KUBECONFIG={}", l.kubeconfig().display());
            Ok(())
        }
        _ => {
            println!("{HELP}");
            Ok(())
        }
    }
}

/// Where things live.
pub struct Layout {
    pub cache: PathBuf,
    pub run: PathBuf,
    pub port: u16,
}

impl Layout {
    pub fn new() -> Result<Layout> {
        let cache = match std::env::var_os("PORTALCTL_K8S_CACHE") {
            Some(p) => PathBuf::from(p),
            None => {
                let system = PathBuf::from("/var/cache/portalctl");
                if std::fs::create_dir_all(&system).is_ok() && writable(&system) {
                    system
                } else {
                    PathBuf::from(std::env::var("HOME").context("HOME is not set")?).join(".cache/portalctl")
                }
            }
        };
        let run = std::env::var_os("PORTALCTL_CLUSTER_DIR")
            .map(PathBuf::from)
            .unwrap_or_else(|| crate::root().join("target/cluster"));
        let port = match std::env::var("PORTALCTL_CLUSTER_PORT") {
            Ok(p) => p.parse().with_context(|| format!("PORTALCTL_CLUSTER_PORT={p} is not a port"))?,
            Err(_) => 16443,
        };
        if port > 65535 - 7357 {
            bail!("PORTALCTL_CLUSTER_PORT={port} is too high");
        }
        Ok(Layout { cache, run, port })
    }

    fn k8s_dir(&self) -> PathBuf {
        self.cache.join(format!("k8s-{KUBERNETES}"))
    }
    fn etcd_dir(&self) -> PathBuf {
        self.cache.join(format!("etcd-{ETCD}"))
    }
    fn kwok_dir(&self) -> PathBuf {
        self.cache.join(format!("kwok-{KWOK}"))
    }
    fn bin(&self, component: &str) -> PathBuf {
        match component {
            "etcd" => self.etcd_dir().join("bin/etcd"),
            "kwok" => self.kwok_dir().join("bin/kwok"),
            other => self.k8s_dir().join("bin").join(other),
        }
    }
    pub fn kubeconfig(&self) -> PathBuf {
        self.run.join("kubeconfig")
    }
    fn pki(&self) -> PathBuf {
        self.run.join("pki")
    }
    fn pid_file(&self, component: &str) -> PathBuf {
        self.run.join(format!("{component}.pid"))
    }
    fn etcd_port(&self) -> u16 {
        self.port + 7347
    }
}

fn writable(dir: &Path) -> bool {
    let probe = dir.join(format!(".probe-{}", std::process::id()));
    let ok = std::fs::write(&probe, b"").is_ok();
    let _ = std::fs::remove_file(&probe);
    ok
}

// ------------------------------------------------------------------------------------------------ build

fn go() -> PathBuf {
    if let Some(go) = std::env::var_os("GO") {
        return PathBuf::from(go);
    }
    let on_path = std::env::var_os("PATH")
        .into_iter()
        .flat_map(|p| std::env::split_paths(&p).collect::<Vec<_>>())
        .map(|d| d.join("go"))
        .find(|p| p.is_file());
    on_path.unwrap_or_else(|| PathBuf::from("/usr/local/go/bin/go"))
}

/// `nice -n 15 go …` with the caches under the cache directory and no toolchain download.
fn go_cmd(l: &Layout, dir: &Path) -> Command {
    let mut cmd = Command::new("nice");
    cmd.args(["-n", "15"])
        .arg(go())
        .current_dir(dir)
        .env("GOMODCACHE", l.cache.join("go/mod"))
        .env("GOCACHE", l.cache.join("go/build"))
        .env("GOTOOLCHAIN", "local")
        .env("GOFLAGS", "-mod=mod")
        .env("CGO_ENABLED", "0");
    cmd
}

fn go_build_p() -> String {
    std::env::var("GO_BUILD_P").unwrap_or_else(|_| "2".into())
}

fn go_run(cmd: &mut Command, what: &str, log: &Path) -> Result<()> {
    let out = cmd
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .output()
        .with_context(|| format!("cannot run go ({what}); is Go installed? set GO=/path/to/go"))?;
    let mut text = out.stdout.clone();
    text.extend_from_slice(&out.stderr);
    std::fs::write(log, &text).ok();
    if !out.status.success() {
        let tail: Vec<&str> = std::str::from_utf8(&text).unwrap_or("").lines().rev().take(30).collect();
        let tail: Vec<&str> = tail.into_iter().rev().collect();
        bail!("{what} failed ({}):\n{}\n(full log: {})", out.status, tail.join("\n"), log.display());
    }
    Ok(())
}

/// Build every missing binary; each lands in place only when the build succeeded.
pub fn build(l: &Layout) -> Result<()> {
    std::fs::create_dir_all(&l.cache).with_context(|| format!("cannot create {}", l.cache.display()))?;
    let missing: Vec<&str> = COMPONENTS.iter().copied().filter(|c| !l.bin(c).is_file()).collect();
    if missing.is_empty() {
        eprintln!("cluster: binaries cached in {}", l.cache.display());
    } else {
        build_missing(l, &missing)?;
    }
    for c in COMPONENTS {
        let size = std::fs::metadata(l.bin(c)).map(|m| m.len()).unwrap_or(0);
        eprintln!("cluster:   {c:<24} {:>6.1} MiB  {}", size as f64 / 1048576.0, l.bin(c).display());
    }
    Ok(())
}

/// The Go package of a component's `main`, in the wrapper module.
fn package(component: &str) -> String {
    match component {
        "etcd" => "portalctl.local/controlplane/cmd/etcd".into(),
        "kwok" => "sigs.k8s.io/kwok/cmd/kwok".into(),
        k8s => format!("k8s.io/kubernetes/cmd/{k8s}"),
    }
}

/// All missing binaries in **one** `go build` of one wrapper module. The module requires k8s.io/kubernetes and maps
/// every staging module `k8s.io/<name>` to its `v0.<minor>.<patch>` release (as kubernetes' own go.mod maps them to
/// `./staging/src/k8s.io/<name>`), and requires etcd's server (the release kubernetes itself pins) and KWOK, whose
/// `k8s.io/*` requirements the same replace lines lift to Kubernetes' release. So the packages the five binaries
/// share — client-go, apimachinery, the API types, gRPC, protobuf, OpenTelemetry, etcd's client, CEL — are compiled
/// once, at one version, instead of once per binary at three (89.9 MB of Go source instead of 143.1 MB; see
/// docs/benchmarks.md). No DWARF is generated (`-gcflags=all=-dwarf=false`) since the linker strips it anyway.
fn build_missing(l: &Layout, missing: &[&str]) -> Result<()> {
    let dir = l.cache.join(format!("build-k8s-{KUBERNETES}-etcd-{ETCD}-kwok-{KWOK}"));
    let module = dir.join("mod");
    std::fs::create_dir_all(module.join("cmd/etcd"))?;
    eprintln!("cluster: building {} (one go build -p {})", missing.join(", "), go_build_p());
    let t = Instant::now();
    std::fs::write(module.join("go.mod"), "module portalctl.local/controlplane\n\ngo 1.26.0\n")?;
    let out = go_cmd(l, &module)
        .args(["mod", "download", "-json", &format!("k8s.io/kubernetes@{KUBERNETES}")])
        .output()
        .context("cannot run go mod download")?;
    if !out.status.success() {
        bail!("go mod download k8s.io/kubernetes@{KUBERNETES} failed: {}", String::from_utf8_lossy(&out.stderr));
    }
    let info: serde_json::Value = serde_json::from_slice(&out.stdout).context("go mod download -json output")?;
    let gomod_path = info["GoMod"].as_str().context("go mod download gave no GoMod")?;
    let upstream = std::fs::read_to_string(gomod_path).with_context(|| format!("cannot read {gomod_path}"))?;
    let go_line = upstream.lines().find(|l| l.starts_with("go ")).unwrap_or("go 1.26.0");
    let staging_version = format!("v0.{}", KUBERNETES.trim_start_matches("v1."));
    let mut staging: Vec<&str> = upstream
        .lines()
        .filter_map(|line| {
            let (from, to) = line.trim().split_once(" => ")?;
            to.trim().starts_with("./staging/src/k8s.io/").then_some(from.trim())
        })
        .collect();
    staging.sort_unstable();
    staging.dedup();
    if staging.is_empty() {
        bail!("no staging replace lines in {gomod_path}");
    }
    let mut gomod = format!(
        "module portalctl.local/controlplane\n\n{go_line}\n\nrequire (\n\tk8s.io/kubernetes {KUBERNETES}\n\t\
         go.etcd.io/etcd/server/v3 {ETCD}\n\tsigs.k8s.io/kwok {KWOK}\n)\n\nreplace (\n"
    );
    for m in &staging {
        gomod.push_str(&format!("\t{m} => {m} {staging_version}\n"));
    }
    gomod.push_str(")\n");
    std::fs::write(module.join("go.mod"), gomod)?;
    // etcd's server module with a two-line main (the `etcd` command of go.etcd.io/etcd/v3 is `etcdmain.Main`).
    std::fs::write(
        module.join("cmd/etcd/main.go"),
        "package main\n\nimport (\n\t\"os\"\n\n\t\"go.etcd.io/etcd/server/v3/etcdmain\"\n)\n\nfunc main() { etcdmain.Main(os.Args) }\n",
    )?;
    let tmp = dir.join("bin.tmp");
    let _ = std::fs::remove_dir_all(&tmp);
    std::fs::create_dir_all(&tmp)?;
    let minor = KUBERNETES.split('.').nth(1).unwrap_or("0");
    let ldflags = format!(
        "-s -w -X k8s.io/component-base/version.gitVersion={KUBERNETES} -X k8s.io/component-base/version.gitMajor=1 \
         -X k8s.io/component-base/version.gitMinor={minor} -X k8s.io/component-base/version.gitTreeState=clean"
    );
    go_run(
        go_cmd(l, &module)
            .args(["build", "-p", &go_build_p(), "-trimpath", "-gcflags=all=-dwarf=false", "-ldflags", &ldflags, "-o"])
            .arg(format!("{}/", tmp.display()))
            .args(missing.iter().map(|c| package(c))),
        &format!("go build of {}", missing.join(", ")),
        &dir.join("build.log"),
    )?;
    for c in missing {
        let target = l.bin(c);
        std::fs::create_dir_all(target.parent().context("binary path")?)?;
        std::fs::rename(tmp.join(c), &target).with_context(|| format!("go build wrote no {c}"))?;
    }
    let _ = std::fs::remove_dir_all(&tmp);
    eprintln!("cluster: built {} in {:.0} s", missing.join(", "), t.elapsed().as_secs_f64());
    Ok(())
}

// ------------------------------------------------------------------------------------------------ processes

fn pid_of(l: &Layout, component: &str) -> Option<i32> {
    std::fs::read_to_string(l.pid_file(component)).ok()?.trim().parse().ok()
}

/// Whether `pid` is alive and still runs the binary of `component` (not a recycled pid).
fn is_ours(l: &Layout, component: &str, pid: i32) -> bool {
    let Ok(exe) = std::fs::read_link(format!("/proc/{pid}/exe")) else { return false };
    let want = l.bin(component);
    exe == want || exe == std::fs::canonicalize(&want).unwrap_or(want)
}

fn running(l: &Layout) -> bool {
    COMPONENTS.iter().all(|c| pid_of(l, c).is_some_and(|pid| is_ours(l, c, pid)))
}

fn spawn(l: &Layout, component: &str, args: &[String]) -> Result<i32> {
    use std::os::unix::process::CommandExt;
    let log = std::fs::File::create(l.run.join(format!("{component}.log")))?;
    let mut cmd = Command::new(l.bin(component));
    cmd.args(args).stdin(Stdio::null()).stdout(log.try_clone()?).stderr(log);
    // A session of its own: the control plane outlives `cargo xtask` and a Ctrl-C in its terminal.
    // SAFETY: setsid is async-signal-safe and touches no memory of the parent.
    unsafe {
        cmd.pre_exec(|| {
            libc::setsid();
            Ok(())
        });
    }
    let child = cmd.spawn().with_context(|| format!("cannot start {}", l.bin(component).display()))?;
    let pid = child.id() as i32;
    std::fs::write(l.pid_file(component), format!("{pid}\n"))?;
    Ok(pid)
}

fn log_tail(l: &Layout, component: &str) -> String {
    let text = std::fs::read_to_string(l.run.join(format!("{component}.log"))).unwrap_or_default();
    let lines: Vec<&str> = text.lines().collect();
    lines[lines.len().saturating_sub(25)..].join("\n")
}

/// Poll `ready` until it is true, failing early when the process died.
fn wait_for(
    l: &Layout,
    component: &str,
    pid: i32,
    timeout: Duration,
    mut ready: impl FnMut() -> bool,
) -> Result<Duration> {
    let t = Instant::now();
    loop {
        if ready() {
            return Ok(t.elapsed());
        }
        if !is_ours(l, component, pid) {
            bail!("{component} exited; its log ends:\n{}", log_tail(l, component));
        }
        if t.elapsed() > timeout {
            bail!("{component} not ready after {timeout:?}; its log ends:\n{}", log_tail(l, component));
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}

pub fn down(l: &Layout) -> Result<()> {
    for c in COMPONENTS.iter().rev() {
        let Some(pid) = pid_of(l, c) else { continue };
        if is_ours(l, c, pid) {
            // SAFETY: signalling a process this tool started (checked by its executable above).
            unsafe { libc::kill(pid, libc::SIGTERM) };
            let t = Instant::now();
            while is_ours(l, c, pid) && t.elapsed() < Duration::from_secs(10) {
                std::thread::sleep(Duration::from_millis(50));
            }
            if is_ours(l, c, pid) {
                // SAFETY: as above.
                unsafe { libc::kill(pid, libc::SIGKILL) };
            }
            eprintln!("cluster: stopped {c} (pid {pid})");
        }
        let _ = std::fs::remove_file(l.pid_file(c));
    }
    Ok(())
}

// ------------------------------------------------------------------------------------------------ up

fn up() -> Result<()> {
    let l = Layout::new()?;
    ensure_up(&l)?;
    println!("KUBECONFIG={}", l.kubeconfig().display());
    Ok(())
}

/// Build what is missing and start the control plane unless it is running. True when this call started it.
fn ensure_up(l: &Layout) -> Result<bool> {
    build(l)?;
    if running(l) {
        eprintln!("cluster: already running (pid files in {})", l.run.display());
        return Ok(false);
    }
    // Whatever is left of an earlier, partly failed start goes first.
    down(l)?;
    let t = Instant::now();
    std::fs::create_dir_all(&l.run)?;
    let token = pki(l)?;
    write_kubeconfig(l, &token)?;
    let result = start(l, &token);
    if let Err(e) = result {
        let _ = down(l);
        return Err(e);
    }
    eprintln!("cluster: control plane up in {:.1} s (logs in {})", t.elapsed().as_secs_f64(), l.run.display());
    Ok(true)
}

/// The control plane a benchmark runs against: the cluster of `PORTALCTL_E2E_KUBECONFIG` when that is set (left as
/// it is), else this repository's `cargo xtask cluster up` one — left running when it already ran, stopped on drop
/// when the benchmark started it.
pub struct BenchCluster {
    pub kubeconfig: PathBuf,
    started: Option<Layout>,
}

impl BenchCluster {
    pub fn get() -> Result<BenchCluster> {
        if let Some(k) = std::env::var_os("PORTALCTL_E2E_KUBECONFIG").filter(|v| !v.is_empty()) {
            eprintln!("cluster: the cluster of PORTALCTL_E2E_KUBECONFIG={}", PathBuf::from(&k).display());
            return Ok(BenchCluster { kubeconfig: k.into(), started: None });
        }
        let l = Layout::new()?;
        let started = ensure_up(&l)?;
        Ok(BenchCluster { kubeconfig: l.kubeconfig(), started: started.then_some(l) })
    }
}

impl Drop for BenchCluster {
    fn drop(&mut self) {
        if let Some(l) = &self.started {
            let _ = down(l);
        }
    }
}

fn start(l: &Layout, token: &str) -> Result<()> {
    let pki = l.pki();
    let p = |name: &str| pki.join(name).display().to_string();
    let etcd_url = format!("http://127.0.0.1:{}", l.etcd_port());
    let peer_url = format!("http://127.0.0.1:{}", l.etcd_port() + 10);
    let data = l.run.join("etcd-data");
    let _ = std::fs::remove_dir_all(&data);

    let t = Instant::now();
    let pid = spawn(
        l,
        "etcd",
        &[
            "--name=portalctl".into(),
            format!("--data-dir={}", data.display()),
            format!("--listen-client-urls={etcd_url}"),
            format!("--advertise-client-urls={etcd_url}"),
            format!("--listen-peer-urls={peer_url}"),
            format!("--initial-advertise-peer-urls={peer_url}"),
            format!("--initial-cluster=portalctl={peer_url}"),
            "--initial-cluster-state=new".into(),
            // Test data only: no fsync (the machine's disk is shared with builds).
            "--unsafe-no-fsync".into(),
            "--quota-backend-bytes=4294967296".into(),
            "--log-level=warn".into(),
        ],
    )?;
    let etcd_addr = format!("127.0.0.1:{}", l.etcd_port());
    wait_for(l, "etcd", pid, Duration::from_secs(30), || http_ok(&etcd_addr, "/health", "\"health\":\"true\""))?;
    eprintln!("cluster: etcd healthy after {} ms", t.elapsed().as_millis());

    let t = Instant::now();
    let pid = spawn(
        l,
        "kube-apiserver",
        &[
            format!("--etcd-servers={etcd_url}"),
            "--bind-address=127.0.0.1".into(),
            "--advertise-address=127.0.0.1".into(),
            format!("--secure-port={}", l.port),
            "--endpoint-reconciler-type=none".into(),
            format!("--cert-dir={}", l.run.join("apiserver-certs").display()),
            format!("--tls-cert-file={}", p("apiserver.crt")),
            format!("--tls-private-key-file={}", p("apiserver.key")),
            format!("--client-ca-file={}", p("ca.crt")),
            format!("--token-auth-file={}", p("tokens.csv")),
            "--authorization-mode=Node,RBAC".into(),
            "--anonymous-auth=false".into(),
            "--service-account-issuer=https://kubernetes.default.svc.cluster.local".into(),
            format!("--service-account-key-file={}", p("sa.pub")),
            format!("--service-account-signing-key-file={}", p("sa.key")),
            "--service-cluster-ip-range=10.96.0.0/16".into(),
            // Nodes are KWOK's; with no node lifecycle controller no one would lift the not-ready taint.
            "--disable-admission-plugins=TaintNodesByCondition".into(),
            "--allow-privileged=true".into(),
            "--profiling=false".into(),
            "--v=1".into(),
        ],
    )?;
    let kubeconfig = l.kubeconfig().display().to_string();
    let api = format!("127.0.0.1:{}", l.port);
    let ca = pki.join("ca.crt");
    wait_for(l, "kube-apiserver", pid, Duration::from_secs(120), || readyz(&api, &ca, token))?;
    eprintln!("cluster: kube-apiserver ready after {} ms", t.elapsed().as_millis());

    let common = |port: u16| -> Vec<String> {
        vec![
            format!("--kubeconfig={kubeconfig}"),
            format!("--authentication-kubeconfig={kubeconfig}"),
            format!("--authorization-kubeconfig={kubeconfig}"),
            "--bind-address=127.0.0.1".into(),
            format!("--secure-port={port}"),
            "--leader-elect=false".into(),
            "--v=1".into(),
        ]
    };
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
    rt.block_on(crate::cluster_bootstrap::install(&l.kubeconfig()))?;
    let mut kcm = common(l.port + 1);
    kcm.extend([
        format!("--service-account-private-key-file={}", p("sa.key")),
        format!("--root-ca-file={}", p("ca.crt")),
        "--use-service-account-credentials=true".into(),
        // What portalctl's objects need; no node lifecycle (KWOK's node sends no heartbeats), no cloud.
        "--controllers=deployment-controller,replicaset-controller,namespace-controller,garbage-collector-controller,\
         serviceaccount-controller,serviceaccount-token-controller,root-ca-certificate-publisher-controller,\
         disruption-controller,horizontal-pod-autoscaler-controller,endpointslice-controller,\
         pod-garbage-collector-controller,resourcequota-controller"
            .into(),
        // Reconcile quickly: the tests wait for Deployments.
        "--concurrent-deployment-syncs=10".into(),
        "--concurrent-replicaset-syncs=10".into(),
        "--kube-api-qps=200".into(),
        "--kube-api-burst=400".into(),
    ]);
    spawn(l, "kube-controller-manager", &kcm)?;
    let mut sched = common(l.port + 2);
    sched.extend(["--kube-api-qps=200".into(), "--kube-api-burst=400".into()]);
    spawn(l, "kube-scheduler", &sched)?;
    let stages = l.run.join("kwok-stages.yaml");
    std::fs::write(&stages, KWOK_STAGES)?;
    spawn(
        l,
        "kwok",
        &[
            format!("--kubeconfig={kubeconfig}"),
            format!("--config={}", stages.display()),
            "--manage-all-nodes=true".into(),
            "--cidr=10.244.0.0/16".into(),
            "--node-ip=127.0.0.1".into(),
        ],
    )?;
    let t = Instant::now();
    rt.block_on(crate::cluster_bootstrap::verify(&l.kubeconfig()))?;
    for c in ["kube-controller-manager", "kube-scheduler", "kwok"] {
        let pid = pid_of(l, c).unwrap_or(0);
        if !is_ours(l, c, pid) {
            bail!("{c} exited; its log ends:\n{}", log_tail(l, c));
        }
    }
    eprintln!("cluster: controllers, scheduler and KWOK working after {} ms", t.elapsed().as_millis());
    Ok(())
}

/// A plain HTTP GET on loopback (etcd's /health) whose body contains `needle`.
fn http_ok(addr: &str, path: &str, needle: &str) -> bool {
    use std::io::{Read, Write};
    let Ok(mut s) = std::net::TcpStream::connect(addr) else { return false };
    let _ = s.set_read_timeout(Some(Duration::from_secs(2)));
    if write!(s, "GET {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n").is_err() {
        return false;
    }
    let mut buf = String::new();
    let _ = s.read_to_string(&mut buf);
    buf.contains(needle)
}

/// The API server's /readyz over TLS with the token.
fn readyz(addr: &str, ca: &Path, token: &str) -> bool {
    let rt = match tokio::runtime::Builder::new_current_thread().enable_all().build() {
        Ok(rt) => rt,
        Err(_) => return false,
    };
    rt.block_on(async {
        let Ok(pem) = std::fs::read(ca) else { return false };
        let Ok(cert) = reqwest::Certificate::from_pem(&pem) else { return false };
        let Ok(client) = reqwest::Client::builder().add_root_certificate(cert).timeout(Duration::from_secs(2)).build()
        else {
            return false;
        };
        match client.get(format!("https://{addr}/readyz")).bearer_auth(token).send().await {
            Ok(r) => r.status().is_success() && r.text().await.is_ok_and(|t| t.trim() == "ok"),
            Err(_) => false,
        }
    })
}

// ------------------------------------------------------------------------------------------------ PKI

/// A CA, the API server's serving certificate for 127.0.0.1, an ECDSA service-account key and an admin token
/// (group system:masters). Returns the token.
fn pki(l: &Layout) -> Result<String> {
    use rcgen::{BasicConstraints, CertificateParams, DnType, ExtendedKeyUsagePurpose, IsCa, KeyPair, SanType};
    let dir = l.pki();
    std::fs::create_dir_all(&dir)?;
    let ca_key = KeyPair::generate()?;
    let mut ca = CertificateParams::default();
    ca.distinguished_name.push(DnType::CommonName, "portalctl-test-ca");
    ca.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    let ca_cert = ca.self_signed(&ca_key)?;
    let issuer = rcgen::Issuer::new(ca, ca_key);

    let server_key = KeyPair::generate()?;
    let mut server = CertificateParams::new(vec![
        "localhost".to_string(),
        "kubernetes".to_string(),
        "kubernetes.default".to_string(),
        "kubernetes.default.svc".to_string(),
    ])?;
    server.subject_alt_names.push(SanType::IpAddress([127, 0, 0, 1].into()));
    server.subject_alt_names.push(SanType::IpAddress([10, 96, 0, 1].into()));
    server.distinguished_name.push(DnType::CommonName, "kube-apiserver");
    server.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
    let server_cert = server.signed_by(&server_key, &issuer)?;

    let sa_key = KeyPair::generate()?;
    let token: String = {
        use rand::Rng;
        let mut r = rand::rng();
        (0..48).map(|_| char::from(b"0123456789abcdef"[r.random_range(0..16)])).collect()
    };
    let write = |name: &str, text: &str| -> Result<()> {
        let path = dir.join(name);
        std::fs::write(&path, text).with_context(|| format!("cannot write {}", path.display()))?;
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600))?;
        Ok(())
    };
    write("ca.crt", &ca_cert.pem())?;
    write("apiserver.crt", &server_cert.pem())?;
    write("apiserver.key", &server_key.serialize_pem())?;
    write("sa.key", &sa_key.serialize_pem())?;
    write("sa.pub", &sa_key.public_key_pem())?;
    write("tokens.csv", &format!("{token},portalctl-admin,portalctl-admin,system:masters\n"))?;
    Ok(token)
}

fn write_kubeconfig(l: &Layout, token: &str) -> Result<()> {
    use base64::Engine;
    let ca = std::fs::read(l.pki().join("ca.crt"))?;
    let ca = base64::engine::general_purpose::STANDARD.encode(ca);
    let text = format!(
        "apiVersion: v1\nkind: Config\nclusters:\n- name: portalctl-test\n  cluster:\n    server: https://127.0.0.1:{}\n    \
         certificate-authority-data: {ca}\nusers:\n- name: portalctl-admin\n  user:\n    token: {token}\ncontexts:\n- name: \
         portalctl-test\n  context:\n    cluster: portalctl-test\n    user: portalctl-admin\ncurrent-context: portalctl-test\n",
        l.port
    );
    let path = l.kubeconfig();
    std::fs::write(&path, text)?;
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600))?;
    Ok(())
}
