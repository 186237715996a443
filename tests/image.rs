//! The released OCI image, tested as a pod would run it: the archive `cargo xtask image` wrote is
//! unpacked with umoci and the binary started from the unpacked root file system with bubblewrap
//! under the settings of the pod spec `portalctl render` produces — user 65532, read-only root,
//! no capabilities, an emptyDir on /tmp, and a seccomp filter like the runtimes' `RuntimeDefault` profile —
//! against the test PostgreSQL.
//!
//! Needs the image: `cargo xtask image` (or `PORTALCTL_IMAGE_ARCHIVE=path.oci.tar`), plus umoci, skopeo and
//! bwrap (Debian packages umoci, skopeo, bubblewrap). Outside CI a missing piece skips the test.

mod support;

use serde_json::Value;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use support::{TestEnv, CONTENT_A};

fn in_ci() -> bool {
    std::env::var("CI").is_ok_and(|v| v == "true")
}

fn skip(why: &str) -> Option<Image> {
    if in_ci() {
        panic!("{why}");
    }
    eprintln!("skipped: {why}");
    None
}

/// The unpacked image.
struct Image {
    archive: PathBuf,
    /// The OCI runtime bundle umoci unpacked (`config.json`, `rootfs/`).
    bundle: tempfile::TempDir,
    /// The seccomp filter the sandbox loads (`None` where this test has none for the architecture).
    seccomp: Option<Seccomp>,
}

impl Image {
    fn rootfs(&self) -> PathBuf {
        self.bundle.path().join("rootfs")
    }
    /// The runtime configuration umoci derived from the image configuration.
    fn runtime_config(&self) -> Value {
        serde_json::from_slice(&std::fs::read(self.bundle.path().join("config.json")).unwrap()).unwrap()
    }
    /// `skopeo inspect` of the archive: what containers/image (podman, skopeo, CRI-O) reads.
    fn inspect(&self, config: bool) -> Value {
        let mut cmd = Command::new("skopeo");
        cmd.arg("inspect");
        if config {
            cmd.arg("--config");
        }
        let out = cmd.arg(format!("oci-archive:{}", self.archive.display())).output().expect("skopeo runs");
        assert!(out.status.success(), "skopeo inspect: {}", String::from_utf8_lossy(&out.stderr));
        serde_json::from_slice(&out.stdout).unwrap()
    }
}

fn tool_missing(tool: &str) -> bool {
    Command::new(tool).arg("--version").output().is_err()
}

/// Unpack the image `cargo xtask image` built (or `PORTALCTL_IMAGE_ARCHIVE`).
fn image() -> Option<Image> {
    let archive = match std::env::var_os("PORTALCTL_IMAGE_ARCHIVE") {
        Some(p) => PathBuf::from(p),
        None => {
            let target = Path::new(env!("CARGO_BIN_EXE_portalctl")).parent().unwrap().parent().unwrap();
            target.join("image").join(format!("portalctl-{}.oci.tar", env!("CARGO_PKG_VERSION")))
        }
    };
    if !archive.exists() {
        return skip(&format!("no image at {}; build it with `cargo xtask image`", archive.display()));
    }
    for tool in ["umoci", "skopeo", "bwrap"] {
        if tool_missing(tool) {
            return skip(&format!("{tool} is not installed (apt-get install umoci skopeo bubblewrap)"));
        }
    }
    let work = tempfile::tempdir().unwrap();
    let layout = work.path().join("layout");
    std::fs::create_dir(&layout).unwrap();
    run(Command::new("tar").arg("-xf").arg(&archive).arg("-C").arg(&layout));
    let bundle = tempfile::tempdir().unwrap();
    std::fs::remove_dir(bundle.path()).unwrap();
    let mut unpack = Command::new("umoci");
    unpack.arg("unpack");
    if unsafe { libc::geteuid() } != 0 {
        unpack.arg("--rootless");
    }
    run(unpack.arg("--image").arg(format!("{}:latest", layout.display())).arg(bundle.path()));
    Some(Image { archive, bundle, seccomp: Seccomp::runtime_default() })
}

/// A seccomp filter like the `RuntimeDefault` profile of the container runtimes (containerd's and Docker's
/// default), which the rendered pod spec asks for. Those profiles allow a list of about 350 system calls; this
/// one allows everything except the calls they deny to a container without capabilities — the calls that reach
/// beyond it: tracing or reading other processes (ptrace, process_vm_*, kcmp), mounting (mount, umount2,
/// pivot_root, chroot and the new mount API), new namespaces (unshare, setns, clone with a `CLONE_NEW*` flag), the
/// kernel keyring (keyctl, add_key, request_key), BPF, perf events, userfaultfd, kernel modules and kexec, reboot,
/// clocks, swap, quotas, accounting, the kernel log, I/O ports, NUMA policy and file handles — which fail with
/// EPERM. `clone3`, whose flags a filter cannot read (they are behind a pointer), fails with ENOSYS as in those
/// profiles, so that libc falls back to `clone`. So the server is proven to run without any denied call; that it
/// needs none of the calls outside the runtimes' allowlist is not proven by this denylist.
///
/// Two compiled BPF programs (seccompiler, the filter compiler of Firecracker), one per answer, loaded by
/// bubblewrap (`--add-seccomp-fd`) just before it runs the server.
struct Seccomp {
    _dir: tempfile::TempDir,
    /// The files holding the programs (raw `struct sock_filter` arrays).
    programs: [PathBuf; 2],
}

impl Seccomp {
    #[cfg(target_arch = "x86_64")]
    fn runtime_default() -> Option<Seccomp> {
        use seccompiler::{
            BpfProgram, SeccompAction, SeccompCmpArgLen, SeccompCmpOp, SeccompCondition, SeccompFilter, SeccompRule,
            TargetArch,
        };
        use std::collections::BTreeMap;
        const DENIED: &[libc::c_long] = &[
            libc::SYS_ptrace,
            libc::SYS_process_vm_readv,
            libc::SYS_process_vm_writev,
            libc::SYS_kcmp,
            libc::SYS_mount,
            libc::SYS_umount2,
            libc::SYS_pivot_root,
            libc::SYS_chroot,
            libc::SYS_open_tree,
            libc::SYS_move_mount,
            libc::SYS_fsopen,
            libc::SYS_fsconfig,
            libc::SYS_fsmount,
            libc::SYS_fspick,
            libc::SYS_mount_setattr,
            libc::SYS_unshare,
            libc::SYS_setns,
            libc::SYS_keyctl,
            libc::SYS_add_key,
            libc::SYS_request_key,
            libc::SYS_bpf,
            libc::SYS_perf_event_open,
            libc::SYS_userfaultfd,
            libc::SYS_init_module,
            libc::SYS_finit_module,
            libc::SYS_delete_module,
            libc::SYS_kexec_load,
            libc::SYS_kexec_file_load,
            libc::SYS_reboot,
            libc::SYS_settimeofday,
            libc::SYS_clock_settime,
            libc::SYS_clock_adjtime,
            libc::SYS_swapon,
            libc::SYS_swapoff,
            libc::SYS_quotactl,
            libc::SYS_acct,
            libc::SYS_syslog,
            libc::SYS_iopl,
            libc::SYS_ioperm,
            libc::SYS_lookup_dcookie,
            libc::SYS_mbind,
            libc::SYS_set_mempolicy,
            libc::SYS_get_mempolicy,
            libc::SYS_move_pages,
            libc::SYS_name_to_handle_at,
            libc::SYS_open_by_handle_at,
            libc::SYS_nfsservctl,
            libc::SYS_sysfs,
            libc::SYS__sysctl,
            libc::SYS_uselib,
            libc::SYS_ustat,
        ];
        const NEW_NAMESPACE: [i32; 7] = [
            libc::CLONE_NEWNS,
            libc::CLONE_NEWCGROUP,
            libc::CLONE_NEWUTS,
            libc::CLONE_NEWIPC,
            libc::CLONE_NEWUSER,
            libc::CLONE_NEWPID,
            libc::CLONE_NEWNET,
        ];
        let arch = TargetArch::x86_64;
        let mut eperm: BTreeMap<i64, Vec<SeccompRule>> = DENIED.iter().map(|&nr| (nr, Vec::new())).collect();
        // clone with any CLONE_NEW* flag in its first argument (one rule per flag: rules are or-ed).
        let clone_rules = NEW_NAMESPACE
            .iter()
            .map(|&flag| {
                let flag = flag as u64;
                let cond = SeccompCondition::new(0, SeccompCmpArgLen::Qword, SeccompCmpOp::MaskedEq(flag), flag);
                SeccompRule::new(vec![cond.expect("a valid condition")]).expect("a valid rule")
            })
            .collect();
        eperm.insert(libc::SYS_clone, clone_rules);
        let enosys = BTreeMap::from([(libc::SYS_clone3, Vec::new())]);
        let compile = |rules, errno: i32| -> Vec<u8> {
            let filter = SeccompFilter::new(rules, SeccompAction::Allow, SeccompAction::Errno(errno as u32), arch)
                .expect("a valid filter");
            let program: BpfProgram = filter.try_into().expect("compiles to BPF");
            program
                .iter()
                .flat_map(|i| {
                    let mut b = i.code.to_ne_bytes().to_vec();
                    b.extend([i.jt, i.jf]);
                    b.extend(i.k.to_ne_bytes());
                    b
                })
                .collect()
        };
        let dir = tempfile::tempdir().unwrap();
        let programs = [dir.path().join("eperm.bpf"), dir.path().join("enosys.bpf")];
        std::fs::write(&programs[0], compile(eperm, libc::EPERM)).unwrap();
        std::fs::write(&programs[1], compile(enosys, libc::ENOSYS)).unwrap();
        Some(Seccomp { _dir: dir, programs })
    }

    #[cfg(not(target_arch = "x86_64"))]
    fn runtime_default() -> Option<Seccomp> {
        eprintln!("no seccomp filter for {} in this test: the sandbox runs without one", std::env::consts::ARCH);
        None
    }

    /// Load the filter into the command's bubblewrap: each program opened afresh for the child (bubblewrap reads
    /// it to the end) at descriptors 10 and 11.
    fn apply(&self, bwrap: &mut Command) {
        use std::os::unix::process::CommandExt as _;
        let paths: Vec<std::ffi::CString> =
            self.programs.iter().map(|p| std::ffi::CString::new(p.as_os_str().as_encoded_bytes()).unwrap()).collect();
        bwrap.args(["--add-seccomp-fd", "10", "--add-seccomp-fd", "11"]);
        // SAFETY: only async-signal-safe calls (open, dup2, close) between fork and exec.
        unsafe {
            bwrap.pre_exec(move || {
                for (path, target) in paths.iter().zip([10, 11]) {
                    let fd = libc::open(path.as_ptr(), libc::O_RDONLY);
                    if fd < 0 {
                        return Err(std::io::Error::last_os_error());
                    }
                    // `open` may return the target itself (the lowest free descriptor): then it is in place already
                    // and must stay open.
                    if fd != target {
                        if libc::dup2(fd, target) < 0 {
                            return Err(std::io::Error::last_os_error());
                        }
                        libc::close(fd);
                    }
                }
                Ok(())
            });
        }
    }
}

fn run(cmd: &mut Command) -> String {
    let out = cmd.output().unwrap_or_else(|e| panic!("{cmd:?}: {e}"));
    assert!(out.status.success(), "{cmd:?}: {}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8(out.stdout).unwrap()
}

/// The pod settings the sandbox must reproduce, read from the rendered Deployment.
#[derive(Debug)]
struct Pod {
    uid: u64,
    gid: u64,
    read_only_root: bool,
    drop_all_capabilities: bool,
    /// Mount paths of the container's emptyDir volumes.
    empty_dirs: Vec<String>,
    /// The container's `command[0]`.
    command: String,
    /// The pod asks for the runtime's default seccomp profile.
    seccomp_runtime_default: bool,
}

/// The portal-server pod spec `portalctl render` prints (run by `cmd`).
fn rendered_pod(cmd: &mut Command) -> Pod {
    let yaml = run(cmd);
    let objects = portalctl::render::chart::parse_stream(&yaml).unwrap();
    let dep = objects.values().find(|o| o["kind"] == "Deployment").expect("a Deployment");
    let pod = &dep["spec"]["template"]["spec"];
    let c = &pod["containers"][0];
    assert_eq!(pod["securityContext"]["runAsNonRoot"], true);
    let empty: Vec<&str> = pod["volumes"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|v| v.get("emptyDir").is_some())
        .map(|v| v["name"].as_str().unwrap())
        .collect();
    Pod {
        uid: pod["securityContext"]["runAsUser"].as_u64().unwrap(),
        gid: pod["securityContext"]["runAsGroup"].as_u64().unwrap(),
        read_only_root: c["securityContext"]["readOnlyRootFilesystem"] == true,
        drop_all_capabilities: c["securityContext"]["capabilities"]["drop"] == serde_json::json!(["ALL"]),
        empty_dirs: c["volumeMounts"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|m| empty.contains(&m["name"].as_str().unwrap()))
            .map(|m| m["mountPath"].as_str().unwrap().to_string())
            .collect(),
        command: c["command"][0].as_str().unwrap().to_string(),
        seccomp_runtime_default: pod["securityContext"]["seccompProfile"]["type"] == "RuntimeDefault",
    }
}

/// A bubblewrap command running `pod.command` from the image's root file system the way the
/// pod runs it: the image's entries bound read-only on an otherwise empty root that is itself
/// remounted read-only, the pod's emptyDirs as tmpfs, `binds` (host paths) read-only at the same
/// place, the image's environment plus `env`, the pod's user, no capabilities, the
/// `RuntimeDefault`-like seccomp filter ([`Seccomp`]). The network
/// namespace is shared, so the test PostgreSQL on 127.0.0.1 is reachable.
fn sandbox(image: &Image, pod: &Pod, binds: &[&Path], env: &[(String, String)]) -> Command {
    let rootfs = image.rootfs();
    let mut cmd = Command::new("bwrap");
    cmd.args(["--unshare-user", "--unshare-pid", "--unshare-ipc", "--unshare-uts", "--die-with-parent"]).args([
        "--uid",
        &pod.uid.to_string(),
        "--gid",
        &pod.gid.to_string(),
    ]);
    let mut entries: Vec<_> = std::fs::read_dir(&rootfs).unwrap().map(|e| e.unwrap()).collect();
    entries.sort_by_key(|e| e.file_name());
    for e in entries {
        let name = e.file_name().to_string_lossy().to_string();
        if e.file_type().unwrap().is_symlink() {
            let target = std::fs::read_link(e.path()).unwrap();
            cmd.arg("--symlink").arg(target).arg(format!("/{name}"));
        } else {
            cmd.arg("--ro-bind").arg(e.path()).arg(format!("/{name}"));
        }
    }
    cmd.args(["--proc", "/proc", "--dev", "/dev"]);
    for dir in &pod.empty_dirs {
        cmd.args(["--tmpfs", dir]);
    }
    for b in binds {
        cmd.arg("--ro-bind").arg(b).arg(b);
    }
    if pod.read_only_root {
        cmd.args(["--remount-ro", "/"]);
    }
    if pod.drop_all_capabilities {
        cmd.args(["--cap-drop", "ALL"]);
    }
    if pod.seccomp_runtime_default {
        if let Some(seccomp) = &image.seccomp {
            seccomp.apply(&mut cmd);
        }
    }
    cmd.arg("--clearenv");
    for kv in image.runtime_config()["process"]["env"].as_array().unwrap() {
        let (k, v) = kv.as_str().unwrap().split_once('=').unwrap();
        cmd.args(["--setenv", k, v]);
    }
    for (k, v) in env {
        cmd.args(["--setenv", k, v]);
    }
    cmd.arg("--").arg(&pod.command);
    cmd
}

/// The pod settings of the bundled group `krz` (no database needed).
fn bundled_pod() -> Pod {
    let repo = Path::new(env!("CARGO_MANIFEST_DIR"));
    rendered_pod(Command::new(env!("CARGO_BIN_EXE_portalctl")).current_dir(repo).args(["render", "--group", "krz"]))
}

#[test]
fn the_image_is_minimal_labelled_and_runs_as_the_pod_user() {
    let Some(image) = image() else { return };
    let rootfs = image.rootfs();
    // No shell, no package manager, no coreutils: only what the server needs.
    for absent in ["bin/sh", "bin/bash", "usr/bin", "bin", "sbin", "usr/sbin", "var/lib/dpkg", "etc/apt"] {
        assert!(!rootfs.join(absent).exists(), "{absent} must not be in the image");
    }
    for present in
        ["usr/local/bin/portalctl", "etc/ssl/certs/ca-certificates.crt", "usr/share/doc/portalctl/sbom.cdx.json"]
    {
        assert!(rootfs.join(present).is_file(), "{present} is missing");
    }
    let passwd = std::fs::read_to_string(rootfs.join("etc/passwd")).unwrap();
    assert!(passwd.contains(":65532:65532:"), "{passwd}");
    let sbom: Value =
        serde_json::from_slice(&std::fs::read(rootfs.join("usr/share/doc/portalctl/sbom.cdx.json")).unwrap()).unwrap();
    assert_eq!(sbom["bomFormat"], "CycloneDX");
    let components = sbom["components"].as_array().expect("SBOM components");
    assert!(components.iter().any(|c| c["name"] == "tokio-postgres"), "the SBOM lists the dependencies");

    // What containers/image reads: labels per the OCI annotations, the non-root user, the digest.
    let inspect = image.inspect(false);
    let labels = &inspect["Labels"];
    assert_eq!(labels["org.opencontainers.image.version"], env!("CARGO_PKG_VERSION"));
    assert_eq!(labels["org.opencontainers.image.licenses"], "EUPL-1.2");
    let revision = labels["org.opencontainers.image.revision"].as_str().unwrap().to_string();
    assert!(!revision.is_empty());
    let digest_file = image.archive.with_file_name(format!("portalctl-{}.digest", env!("CARGO_PKG_VERSION")));
    if let Ok(d) = std::fs::read_to_string(&digest_file) {
        assert_eq!(inspect["Digest"], d.trim(), "the digest file names this image");
    }
    let config = image.inspect(true);
    let pod = bundled_pod();
    assert_eq!(config["config"]["User"], format!("{}:{}", pod.uid, pod.gid), "image user = pod user");
    assert_eq!(config["created"], labels["org.opencontainers.image.created"]);

    // The binary from the image runs as the pod runs it, and says what it is.
    let out = sandbox(&image, &pod, &[], &[]).args(["version", "-o", "json"]).output().unwrap();
    assert!(out.status.success(), "version in the sandbox: {}", String::from_utf8_lossy(&out.stderr));
    let v: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["version"], env!("CARGO_PKG_VERSION"));
    assert_eq!(v["gitRevision"], revision.as_str(), "the binary and the label name one revision");
    assert_eq!(v["profile"], "release");

    // The root file system is read-only: a command that writes a file fails with EROFS.
    let out = sandbox(&image, &pod, &[], &[])
        .args(["--tenants", "/tenants", "group", "new", "heinsberg", "--kreis", "05370"])
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("Read-only file system"), "{err}");
}

/// The processes below `pid` (children, grandchildren, …).
fn descendants(pid: u32) -> Vec<u32> {
    let mut out = Vec::new();
    let mut todo = vec![pid];
    while let Some(p) = todo.pop() {
        for task in std::fs::read_dir(format!("/proc/{p}/task")).into_iter().flatten().flatten() {
            let children = std::fs::read_to_string(task.path().join("children")).unwrap_or_default();
            for c in children.split_whitespace().filter_map(|c| c.parse().ok()) {
                out.push(c);
                todo.push(c);
            }
        }
    }
    out
}

#[tokio::test(flavor = "multi_thread")]
async fn the_image_serves_a_tenant_page_as_65532_on_a_read_only_root() {
    let Some(image) = image() else { return };
    let Some(env) = TestEnv::new(&["espelkamp"]).await else { return };
    env.import("espelkamp", CONTENT_A).await;
    let pod = rendered_pod(env.portalctl().args(["render", "--group", &env.group]));
    assert_eq!((pod.uid, pod.gid), (65532, 65532));
    assert!(pod.read_only_root && pod.drop_all_capabilities && pod.seccomp_runtime_default, "{pod:?}");
    assert_eq!(pod.empty_dirs, ["/tmp"]);

    let tenants = env.dir.path().to_path_buf();
    let server = env.start_server_with(&[], |host_cmd| {
        // The same arguments and environment, but the image's binary in the pod's sandbox.
        let vars: Vec<(String, String)> = host_cmd
            .get_envs()
            .filter_map(|(k, v)| Some((k.to_str()?.to_string(), v?.to_str()?.to_string())))
            .collect();
        let mut cmd = sandbox(&image, &pod, &[&tenants], &vars);
        cmd.args(host_cmd.get_args());
        cmd.stdin(Stdio::null());
        cmd
    });
    let host = env.tenant("espelkamp").hostnames[0].clone();
    let page = server.get(&host, "/");
    assert_eq!(page.status, 200, "{}", server.log_text());
    assert!(page.body.contains("Stadt Espelkamp"), "{}", page.body);
    let search = server.get(&host, "/suche?q=Hund");
    assert_eq!(search.status, 200, "{}", server.log_text());
    assert_eq!(server.get_ops("localhost", "/readyz").status, 200, "{}", server.log_text());

    // The serving process: user 65532 (and no other user mapped), no capabilities, no new
    // privileges, and "/" mounted read-only.
    let pid = descendants(server.child.id())
        .into_iter()
        .find(|p| std::fs::read_to_string(format!("/proc/{p}/comm")).is_ok_and(|c| c.trim() == "portalctl"))
        .expect("the portalctl process in the sandbox");
    let uid_map = std::fs::read_to_string(format!("/proc/{pid}/uid_map")).unwrap();
    let inside: Vec<&str> = uid_map.split_whitespace().collect();
    assert_eq!((inside[0], inside[2]), ("65532", "1"), "{uid_map}");
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    let field =
        |name: &str| status.lines().find_map(|l| l.strip_prefix(name)).map(str::trim).unwrap_or_default().to_string();
    assert_eq!(field("CapEff:"), "0000000000000000", "{status}");
    assert_eq!(field("CapPrm:"), "0000000000000000", "{status}");
    assert_eq!(field("NoNewPrivs:"), "1", "{status}");
    if image.seccomp.is_some() {
        // Under the filter (mode 2), both programs on top of whatever this test runs under.
        let own = std::fs::read_to_string("/proc/self/status").unwrap();
        let own_filters: u32 =
            own.lines().find_map(|l| l.strip_prefix("Seccomp_filters:")).map_or(0, |n| n.trim().parse().unwrap());
        assert_eq!(field("Seccomp:"), "2", "{status}");
        assert_eq!(field("Seccomp_filters:"), (own_filters + 2).to_string(), "{status}");
    }
    let mountinfo = std::fs::read_to_string(format!("/proc/{pid}/mountinfo")).unwrap();
    let root = mountinfo
        .lines()
        .map(|l| l.split_whitespace().collect::<Vec<_>>())
        .rfind(|f| f[4] == "/")
        .expect("a mount at /");
    assert!(root[5].split(',').any(|o| o == "ro"), "root mount options: {}", root[5]);
}

/// The calls the seccomp filter must deny, each tried once; prints `probe: name errno` per line (0: allowed).
/// A test only in name: `the_seccomp_filter_denies_what_runtime_default_denies` runs this test binary
/// with `PORTALCTL_SECCOMP_PROBE` set, in the sandbox with and without the filter.
#[test]
fn seccomp_probe() {
    if std::env::var_os("PORTALCTL_SECCOMP_PROBE").is_none() {
        return;
    }
    let errno = |r: libc::c_long| if r == -1 { std::io::Error::last_os_error().raw_os_error().unwrap() } else { 0 };
    // SAFETY: each call either fails or has no effect on this process beyond its own result (a clone that
    // succeeded exits in the child at once).
    unsafe {
        let pid = libc::getpid() as libc::c_long;
        println!("\nprobe: ptrace {}", errno(libc::syscall(libc::SYS_ptrace, libc::PTRACE_PEEKUSER, pid, 0, 0)));
        let (none, tmp, tmpfs) = (c"none", c"/tmp", c"tmpfs");
        println!(
            "probe: mount {}",
            errno(libc::syscall(libc::SYS_mount, none.as_ptr(), tmp.as_ptr(), tmpfs.as_ptr(), 0, 0))
        );
        println!("probe: unshare {}", errno(libc::syscall(libc::SYS_unshare, libc::CLONE_NEWUSER)));
        let r = libc::syscall(libc::SYS_clone, (libc::CLONE_NEWUSER | libc::SIGCHLD) as libc::c_long, 0, 0, 0, 0);
        if r == 0 {
            libc::_exit(0);
        }
        println!("probe: clone-newuser {}", errno(r));
        // KEYCTL_GET_KEYRING_ID of the process keyring, not created.
        println!("probe: keyctl {}", errno(libc::syscall(libc::SYS_keyctl, 0, -2, 0)));
        println!("probe: bpf {}", errno(libc::syscall(libc::SYS_bpf, 0, std::ptr::null::<u8>(), 0)));
        println!("probe: clone3 {}", errno(libc::syscall(libc::SYS_clone3, std::ptr::null::<u8>(), 0)));
        println!("probe: getpid {}", errno(libc::syscall(libc::SYS_getpid)));
    }
}

/// The filter the image runs under denies ptrace, mount, unshare, clone into new namespaces, keyctl and bpf with
/// EPERM and clone3 with ENOSYS, as the runtimes' default profile does, and the difference is the filter's: the
/// same calls in the same sandbox without it get the kernel's own answers.
#[test]
#[cfg(target_arch = "x86_64")]
fn the_seccomp_filter_denies_what_runtime_default_denies() {
    if tool_missing("bwrap") {
        skip("bwrap is not installed (apt-get install bubblewrap)");
        return;
    }
    let seccomp = Seccomp::runtime_default().unwrap();
    let probe = |filtered: bool| -> std::collections::BTreeMap<String, i32> {
        let mut cmd = Command::new("bwrap");
        cmd.args(["--unshare-user", "--unshare-pid", "--die-with-parent", "--uid", "65532", "--gid", "65532"]);
        // The host's root read-only, /tmp included: the probe is this test binary, which may live below /tmp.
        cmd.args(["--ro-bind", "/", "/", "--proc", "/proc", "--dev", "/dev", "--cap-drop", "ALL"]);
        if filtered {
            seccomp.apply(&mut cmd);
        }
        let exe = std::env::current_exe().unwrap();
        cmd.arg("--").arg(exe).args(["--exact", "seccomp_probe", "--nocapture", "--test-threads", "1"]);
        cmd.env("PORTALCTL_SECCOMP_PROBE", "1");
        let out = cmd.output().unwrap();
        let text = String::from_utf8_lossy(&out.stdout);
        assert!(out.status.success(), "probe: {text}{}", String::from_utf8_lossy(&out.stderr));
        // Only the probe's lines (libtest writes its own around them).
        text.lines()
            .filter_map(|l| l.strip_prefix("probe: ")?.split_once(' '))
            .filter_map(|(name, n)| Some((name.to_string(), n.trim().parse().ok()?)))
            .collect()
    };
    let filtered = probe(true);
    let (eperm, enosys) = (libc::EPERM, libc::ENOSYS);
    let want: std::collections::BTreeMap<String, i32> = [
        ("ptrace", eperm),
        ("mount", eperm),
        ("unshare", eperm),
        ("clone-newuser", eperm),
        ("keyctl", eperm),
        ("bpf", eperm),
        ("clone3", enosys),
        ("getpid", 0),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_string(), v))
    .collect();
    assert_eq!(filtered, want, "under the filter");
    // Without it, the kernel answers otherwise where it would let the call through or fail it for another reason.
    let open = probe(false);
    for call in ["ptrace", "keyctl", "clone3"] {
        assert_ne!(open[call], filtered[call], "{call} without the filter: {open:?}");
    }
}
