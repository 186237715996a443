//! The released OCI image, tested as a pod would run it: the archive `cargo xtask image` wrote is
//! unpacked with umoci and the binary started from the unpacked root file system with bubblewrap
//! under the settings of the pod spec `portalctl render` produces — user 65532, read-only root,
//! no capabilities, an emptyDir on /tmp — against the test PostgreSQL.
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
    Some(Image { archive, bundle })
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
}

/// The portal-server pod spec `portalctl render` prints (run by `cmd`).
fn rendered_pod(cmd: &mut Command) -> Pod {
    let yaml = run(cmd);
    let objects = portalctl::render::chart::parse_stream(&yaml).unwrap();
    let dep = objects.values().find(|o| o["kind"] == "Deployment").expect("a Deployment");
    let pod = &dep["spec"]["template"]["spec"];
    let c = &pod["containers"][0];
    assert_eq!(pod["securityContext"]["runAsNonRoot"], true);
    assert_eq!(pod["securityContext"]["seccompProfile"]["type"], "RuntimeDefault");
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
    }
}

/// A bubblewrap command running `pod.command` from the image's root file system the way the
/// pod runs it: the image's entries bound read-only on an otherwise empty root that is itself
/// remounted read-only, the pod's emptyDirs as tmpfs, `binds` (host paths) read-only at the same
/// place, the image's environment plus `env`, the pod's user, no capabilities. The network
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
    assert_eq!(v["git_revision"], revision.as_str(), "the binary and the label name one revision");
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
    assert!(pod.read_only_root && pod.drop_all_capabilities, "{pod:?}");
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
    let mountinfo = std::fs::read_to_string(format!("/proc/{pid}/mountinfo")).unwrap();
    let root = mountinfo
        .lines()
        .map(|l| l.split_whitespace().collect::<Vec<_>>())
        .rfind(|f| f[4] == "/")
        .expect("a mount at /");
    assert!(root[5].split(',').any(|o| o == "ro"), "root mount options: {}", root[5]);
}
