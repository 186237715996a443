//! `cargo xtask image`: the portal server's OCI image, built without a container daemon and
//! reproducibly (same binary, same image digest).
//!
//! The root file system is staged in a directory (the release binary, the shared libraries it
//! links to, CA certificates, a passwd/group naming the non-root user 65532), packed into one
//! layer by GNU tar with fixed owners, order and mtimes (`SOURCE_DATE_EPOCH`, else the commit
//! time), and turned into an OCI image layout by `umoci` (layer compression, manifest, config,
//! OCI annotations). The layout is then archived, again by GNU tar with fixed metadata, as an
//! `oci-archive` that `skopeo`, `podman load` and `docker load` (Docker 25+) read.

use crate::{cargo, root, run};
use anyhow::{bail, Context, Result};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Instant;

/// The user the portal server runs as (the pod spec's `runAsUser`/`runAsGroup`).
pub const UID: u32 = 65532;
/// Where the binary lives in the image (on `PATH`, so the pod's `command: [portalctl]` finds it).
pub const BINARY_PATH: &str = "usr/local/bin/portalctl";
/// Where the CycloneDX SBOM lives in the image.
pub const SBOM_PATH: &str = "usr/share/doc/portalctl/sbom.cdx.json";
/// The CA bundle the IdP and OIDC calls trust.
const CA_BUNDLE: &str = "/etc/ssl/certs/ca-certificates.crt";
/// The tag inside the OCI layout (`org.opencontainers.image.ref.name`).
const TAG: &str = "latest";

/// What goes into an image.
#[derive(Debug, Clone)]
pub struct Spec {
    /// The portalctl binary.
    pub binary: PathBuf,
    /// The CycloneDX SBOM to ship in the image, if any.
    pub sbom: Option<PathBuf>,
    /// `org.opencontainers.image.version`.
    pub version: String,
    /// `org.opencontainers.image.revision`.
    pub revision: String,
    /// `org.opencontainers.image.source`, when known.
    pub source: Option<String>,
    /// Seconds since the epoch: every mtime in the image and the `created` dates.
    pub epoch: i64,
}

/// A built image.
#[derive(Debug, Clone)]
pub struct Built {
    /// The `oci-archive` file.
    pub archive: PathBuf,
    /// The image (manifest) digest, `sha256:…`.
    pub digest: String,
    /// Bytes of the compressed layer.
    pub layer_size: u64,
}

const HELP: &str = "\
cargo xtask image [--binary PATH] [--out DIR] [--sbom PATH|--no-sbom] [--check-reproducible]

Builds target/image/portalctl-<version>.oci.tar (an OCI image archive) from the release binary
(built with `cargo build --release --locked` unless --binary is given) and writes the image digest to
portalctl-<version>.digest and the CycloneDX SBOM (`cargo cyclonedx`) to portalctl-<version>.cdx.json.
--check-reproducible builds the image a second time in another directory and fails unless both give
the same digest and the same archive bytes.";

pub fn run_task(args: &[&str]) -> Result<()> {
    let mut binary = None;
    let mut out = None;
    let mut sbom_arg: Option<Option<PathBuf>> = None;
    let mut check = false;
    let mut it = args.iter();
    while let Some(a) = it.next() {
        match *a {
            "--binary" => binary = Some(PathBuf::from(it.next().context("--binary needs a path")?)),
            "--out" => out = Some(PathBuf::from(it.next().context("--out needs a directory")?)),
            "--sbom" => sbom_arg = Some(Some(PathBuf::from(it.next().context("--sbom needs a path")?))),
            "--no-sbom" => sbom_arg = Some(None),
            "--check-reproducible" => check = true,
            "-h" | "--help" => {
                println!("{HELP}");
                return Ok(());
            }
            other => bail!("unknown argument {other:?}\n\n{HELP}"),
        }
    }
    let out = out.unwrap_or_else(|| target_dir().join("image"));
    std::fs::create_dir_all(&out)?;
    let binary = match binary {
        Some(b) => b,
        None => {
            let t = Instant::now();
            run(cargo().args(["build", "--release", "--locked", "--bin", "portalctl"]))?;
            eprintln!("xtask: release build took {:.0} s", t.elapsed().as_secs_f64());
            target_dir().join("release/portalctl")
        }
    };
    // The labels describe the binary in the image: its own version and revision.
    let info = binary_info(&binary)?;
    let version = info["version"].as_str().context("version -o json names no version")?.to_string();
    // The build date: SOURCE_DATE_EPOCH, else the binary's own (so one binary gives one image).
    let epoch = match (std::env::var("SOURCE_DATE_EPOCH"), info["buildDate"].as_str()) {
        (Err(_), Some(date)) => epoch_of(date)?,
        _ => epoch()?,
    };
    let sbom = match sbom_arg {
        Some(s) => s,
        None => Some(sbom(&out, &version, epoch)?),
    };
    let spec = Spec {
        binary: binary.clone(),
        sbom,
        version: version.clone(),
        revision: info["gitRevision"].as_str().unwrap_or("unknown").to_string(),
        source: std::env::var("PORTALCTL_IMAGE_SOURCE").ok().or_else(|| git(&["remote", "get-url", "origin"])),
        epoch,
    };
    let t = Instant::now();
    let built = build(&spec, &out.join(format!("portalctl-{version}.oci.tar")))?;
    let secs = t.elapsed().as_secs_f64();
    std::fs::write(out.join(format!("portalctl-{version}.digest")), format!("{}\n", built.digest))?;
    let mb = |b: u64| b as f64 / 1e6;
    let bin_size = std::fs::metadata(&binary)?.len();
    let archive_size = std::fs::metadata(&built.archive)?.len();
    println!("binary   {} ({:.1} MB, no debug info)", binary.display(), mb(bin_size));
    println!("layer    {:.1} MB compressed", mb(built.layer_size));
    println!("archive  {} ({:.1} MB, built in {secs:.1} s)", built.archive.display(), mb(archive_size));
    println!("digest   {}", built.digest);
    println!(
        "push     skopeo copy --preserve-digests oci-archive:{} docker://REGISTRY/portalctl:{version}",
        built.archive.display()
    );
    println!("deploy   portalctl render --group GROUP --image REGISTRY/portalctl@{}", built.digest);
    if check {
        let dir = crate::bench::tempfile_dir("image-check")?;
        let again = build(&spec, &dir.join("again.oci.tar"))?;
        let same_bytes = std::fs::read(&built.archive)? == std::fs::read(&again.archive)?;
        std::fs::remove_dir_all(&dir).ok();
        if again.digest != built.digest || !same_bytes {
            bail!("not reproducible: {} then {} (archives identical: {same_bytes})", built.digest, again.digest);
        }
        println!("reproducible: a second build gave {} and the same archive bytes", again.digest);
    }
    Ok(())
}

/// Seconds since the epoch of an RFC 3339 date, by `date`.
fn epoch_of(date: &str) -> Result<i64> {
    let out = Command::new("date").args(["-u", "-d", date, "+%s"]).output()?;
    if !out.status.success() {
        bail!("date -d {date:?} failed");
    }
    String::from_utf8(out.stdout)?.trim().parse().context("date +%s")
}

/// `portalctl version -o json` of the binary that goes into the image.
fn binary_info(binary: &Path) -> Result<serde_json::Value> {
    let out = Command::new(binary).args(["version", "-o", "json"]).output().context("cannot run the binary")?;
    if !out.status.success() {
        bail!("{} version -o json failed: {}", binary.display(), String::from_utf8_lossy(&out.stderr));
    }
    serde_json::from_slice(&out.stdout).context("version -o json")
}

fn target_dir() -> PathBuf {
    std::env::var("CARGO_TARGET_DIR").map(PathBuf::from).unwrap_or_else(|_| root().join("target"))
}

fn git(args: &[&str]) -> Option<String> {
    let out = Command::new("git").args(args).current_dir(root()).output().ok()?;
    let s = String::from_utf8(out.stdout).ok()?.trim().to_string();
    (out.status.success() && !s.is_empty()).then_some(s)
}

/// `SOURCE_DATE_EPOCH`, else the commit time of `HEAD` (what `build.rs` records as build date).
fn epoch() -> Result<i64> {
    if let Ok(e) = std::env::var("SOURCE_DATE_EPOCH") {
        return e.parse().with_context(|| format!("SOURCE_DATE_EPOCH={e:?} is not a number"));
    }
    git(&["log", "-1", "--format=%ct"]).context("no SOURCE_DATE_EPOCH and no git commit")?.parse().context("git %ct")
}

/// The `portalctl` crate's version: `cargo metadata`, the one place it is set.
pub fn crate_version() -> Result<String> {
    let out = cargo()
        .args(["metadata", "--format-version", "1", "--no-deps", "--offline"])
        .current_dir(root())
        .output()
        .context("cargo metadata")?;
    let meta: serde_json::Value = serde_json::from_slice(&out.stdout).context("cargo metadata output")?;
    meta["packages"]
        .as_array()
        .and_then(|ps| ps.iter().find(|p| p["name"] == "portalctl"))
        .and_then(|p| p["version"].as_str())
        .map(String::from)
        .context("no portalctl package in cargo metadata")
}

/// RFC 3339 (UTC) of seconds since the epoch, by `date` (no date crate in xtask).
fn rfc3339(epoch: i64) -> Result<String> {
    let out = Command::new("date").args(["-u", "-d", &format!("@{epoch}"), "+%Y-%m-%dT%H:%M:%SZ"]).output()?;
    if !out.status.success() {
        bail!("date -d @{epoch} failed");
    }
    Ok(String::from_utf8(out.stdout)?.trim().to_string())
}

/// The CycloneDX SBOM of the portalctl binary (`cargo cyclonedx`; dependencies that end up in
/// the binary, build-time ones left out). `SOURCE_DATE_EPOCH` makes it reproducible: its timestamp
/// is the build date and it carries no random serial number.
pub fn sbom(out: &Path, version: &str, epoch: i64) -> Result<PathBuf> {
    let have = cargo().args(["cyclonedx", "--version"]).output().is_ok_and(|o| o.status.success());
    if !have {
        bail!("cargo cyclonedx is not installed: cargo install --locked cargo-cyclonedx (or pass --no-sbom)");
    }
    // cargo cyclonedx writes `<binary>_bin.cdx.json` next to each package's manifest.
    let written = ["portalctl_bin.cdx.json", "xtask/xtask_bin.cdx.json"].map(|p| root().join(p));
    let result = run(cargo().env("SOURCE_DATE_EPOCH", epoch.to_string()).args([
        "cyclonedx",
        "--manifest-path",
        "Cargo.toml",
        "--format",
        "json",
        "--spec-version",
        "1.5",
        "--describe",
        "binaries",
        "--no-build-deps",
        "--quiet",
    ]));
    let path = out.join(format!("portalctl-{version}.cdx.json"));
    let moved = result.and_then(|()| {
        std::fs::rename(&written[0], &path)
            .or_else(|_| std::fs::copy(&written[0], &path).map(drop))
            .context("cargo cyclonedx wrote no SBOM for the portalctl binary")
    });
    for p in &written {
        std::fs::remove_file(p).ok();
    }
    moved?;
    Ok(path)
}

/// The shared libraries a binary loads, as `ldd` resolves them on this machine (the dynamic
/// loader included); empty for a static binary.
pub fn shared_libraries(binary: &Path) -> Result<Vec<PathBuf>> {
    let out = Command::new("ldd").arg(binary).output().context("cannot run ldd")?;
    let text = String::from_utf8_lossy(&out.stdout);
    if !out.status.success() {
        if text.contains("not a dynamic executable") || String::from_utf8_lossy(&out.stderr).contains("not a dynamic") {
            return Ok(Vec::new());
        }
        bail!("ldd {} failed: {}", binary.display(), String::from_utf8_lossy(&out.stderr));
    }
    let mut libs = Vec::new();
    for line in text.lines() {
        let line = line.trim();
        let path = match line.split_once("=>") {
            Some((_, rest)) => rest.trim(),
            None => line,
        };
        let path = path.split(" (").next().unwrap_or("").trim();
        if path == "not found" {
            bail!("{}: a shared library is missing: {line}", binary.display());
        }
        if path.starts_with('/') {
            libs.push(PathBuf::from(path));
        }
    }
    libs.sort();
    libs.dedup();
    Ok(libs)
}

fn install(from: &Path, root_fs: &Path, at: &str, mode: u32) -> Result<()> {
    use std::os::unix::fs::PermissionsExt;
    let to = root_fs.join(at.trim_start_matches('/'));
    std::fs::create_dir_all(to.parent().expect("a path in the image"))?;
    std::fs::copy(from, &to).with_context(|| format!("copy {} to {}", from.display(), to.display()))?;
    std::fs::set_permissions(&to, std::fs::Permissions::from_mode(mode))?;
    Ok(())
}

fn write(root_fs: &Path, at: &str, text: &str) -> Result<()> {
    use std::os::unix::fs::PermissionsExt;
    let to = root_fs.join(at);
    std::fs::create_dir_all(to.parent().expect("a path in the image"))?;
    std::fs::write(&to, text)?;
    std::fs::set_permissions(&to, std::fs::Permissions::from_mode(0o644))?;
    Ok(())
}

/// Stage the image's root file system in `root_fs`.
fn stage(spec: &Spec, root_fs: &Path) -> Result<()> {
    use std::os::unix::fs::PermissionsExt;
    install(&spec.binary, root_fs, BINARY_PATH, 0o755)?;
    for lib in shared_libraries(&spec.binary)? {
        install(&lib, root_fs, lib.to_str().context("library path")?, 0o755)?;
    }
    install(Path::new(CA_BUNDLE), root_fs, CA_BUNDLE, 0o644)
        .context("the CA bundle is missing; install the ca-certificates package")?;
    if let Some(sbom) = &spec.sbom {
        install(sbom, root_fs, SBOM_PATH, 0o644)?;
    }
    write(
        root_fs,
        "etc/passwd",
        &format!("root:x:0:0:root:/root:/sbin/nologin\nnonroot:x:{UID}:{UID}:nonroot:/home/nonroot:/sbin/nologin\n"),
    )?;
    write(root_fs, "etc/group", &format!("root:x:0:\nnonroot:x:{UID}:\n"))?;
    write(root_fs, "etc/nsswitch.conf", "passwd: files\ngroup: files\nhosts: files dns\n")?;
    let tmp = root_fs.join("tmp");
    std::fs::create_dir_all(&tmp)?;
    // Directory modes independent of the umask: 0755, /tmp 1777.
    let mut dirs = vec![root_fs.to_path_buf()];
    while let Some(d) = dirs.pop() {
        let mode = if d == tmp { 0o1777 } else { 0o755 };
        std::fs::set_permissions(&d, std::fs::Permissions::from_mode(mode))?;
        for e in std::fs::read_dir(&d)? {
            let e = e?;
            if e.file_type()?.is_dir() {
                dirs.push(e.path());
            }
        }
    }
    Ok(())
}

fn tool(name: &str) -> Command {
    let mut c = Command::new(name);
    c.env("LC_ALL", "C");
    c
}

fn quiet(cmd: &mut Command) -> Result<()> {
    let shown = format!("{cmd:?}");
    let out = cmd.output().with_context(|| format!("cannot start {shown}"))?;
    if !out.status.success() {
        bail!("{shown} failed: {}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    }
    Ok(())
}

/// A tar of `dir` that depends only on the content: sorted names, owner root, fixed mtimes, no
/// atime/ctime.
fn tar(dir: &Path, out: &Path, epoch: i64) -> Result<()> {
    quiet(
        tool("tar")
            .args(["--sort=name", "--owner=0", "--group=0", "--numeric-owner", "--format=posix"])
            .arg(format!("--mtime=@{epoch}"))
            .arg("--pax-option=exthdr.name=%d/PaxHeaders/%f,delete=atime,delete=ctime")
            .arg("-cf")
            .arg(out)
            .arg("-C")
            .arg(dir)
            .arg("."),
    )
}

/// Build the image of `spec` into the `oci-archive` `archive`.
pub fn build(spec: &Spec, archive: &Path) -> Result<Built> {
    let work = archive.with_extension("work");
    if work.exists() {
        std::fs::remove_dir_all(&work)?;
    }
    let (root_fs, layout) = (work.join("rootfs"), work.join("layout"));
    std::fs::create_dir_all(&root_fs)?;
    stage(spec, &root_fs)?;
    let layer = work.join("layer.tar");
    tar(&root_fs, &layer, spec.epoch)?;

    let created = rfc3339(spec.epoch)?;
    let image = format!("{}:{TAG}", layout.display());
    quiet(tool("umoci").arg("init").arg("--layout").arg(&layout))?;
    quiet(tool("umoci").args(["new", "--image", &image]))?;
    quiet(
        tool("umoci")
            .args([
                "raw",
                "add-layer",
                "--image",
                &image,
                "--history.created",
                &created,
                "--history.created_by",
                "cargo xtask image",
                "--history.comment",
                "portalctl, its shared libraries, CA certificates, passwd/group",
            ])
            .arg(&layer),
    )?;
    let mut labels = vec![
        ("org.opencontainers.image.title", "portalctl".to_string()),
        ("org.opencontainers.image.description", "The portalctl multi-tenant Serviceportal server".to_string()),
        ("org.opencontainers.image.version", spec.version.clone()),
        ("org.opencontainers.image.revision", spec.revision.clone()),
        ("org.opencontainers.image.licenses", "EUPL-1.2".to_string()),
        ("org.opencontainers.image.created", created.clone()),
    ];
    if let Some(source) = &spec.source {
        labels.push(("org.opencontainers.image.source", source.clone()));
    }
    let mut config = tool("umoci");
    config
        .args(["config", "--image", &image, "--no-history", "--created", &created])
        .args(["--os", "linux", "--architecture", "amd64"])
        .args(["--config.user", &format!("{UID}:{UID}")])
        .args(["--config.entrypoint", &format!("/{BINARY_PATH}")])
        .args(["--config.cmd", "serve", "--config.cmd", "--listen", "--config.cmd", "0.0.0.0:8080"])
        .args(["--config.cmd", "--ops-listen", "--config.cmd", "0.0.0.0:9090"])
        .args(["--config.env", "PATH=/usr/local/bin"])
        .args(["--config.env", &format!("SSL_CERT_FILE={CA_BUNDLE}")])
        .args(["--config.exposedports", "8080/tcp", "--config.exposedports", "9090/tcp"])
        .args(["--config.workingdir", "/", "--config.stopsignal", "SIGTERM"]);
    for (k, v) in &labels {
        config.args(["--config.label", &format!("{k}={v}"), "--manifest.annotation", &format!("{k}={v}")]);
    }
    quiet(&mut config)?;
    quiet(tool("umoci").arg("gc").arg("--layout").arg(&layout))?;

    let index: serde_json::Value = serde_json::from_slice(&std::fs::read(layout.join("index.json"))?)?;
    let manifest = &index["manifests"][0];
    let digest = manifest["digest"].as_str().context("index.json names no manifest")?.to_string();
    let manifest_blob = layout.join("blobs/sha256").join(digest.trim_start_matches("sha256:"));
    let manifest_json: serde_json::Value = serde_json::from_slice(&std::fs::read(manifest_blob)?)?;
    let layer_size = manifest_json["layers"][0]["size"].as_u64().unwrap_or(0);
    // Blobs are content-addressed; make their modes uniform too before archiving.
    quiet(tool("chmod").args(["-R", "u=rwX,go=rX"]).arg(&layout))?;
    tar(&layout, archive, spec.epoch)?;
    std::fs::remove_dir_all(&work)?;
    Ok(Built { archive: archive.to_path_buf(), digest, layer_size })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tools_present() -> bool {
        let ok = ["umoci", "tar", "ldd"].iter().all(|t| Command::new(t).arg("--version").output().is_ok());
        if !ok && std::env::var("CI").is_ok_and(|v| v == "true") {
            panic!("umoci is not installed in CI (apt-get install umoci)");
        }
        ok
    }

    fn spec(binary: &Path) -> Spec {
        Spec {
            binary: binary.to_path_buf(),
            sbom: None,
            version: "0.0.0-test".into(),
            revision: "0123456789abcdef".into(),
            source: None,
            epoch: 1_700_000_000,
        }
    }

    /// Two builds of one binary — copied at different times, into different directories —
    /// give one digest and identical archives; another binary gives another digest.
    #[test]
    fn the_same_binary_gives_the_same_image_digest() {
        if !tools_present() {
            eprintln!("skipped: umoci is not installed");
            return;
        }
        let dir = crate::bench::tempfile_dir("image-repro-test").unwrap();
        let (a, b) = (dir.join("a/true"), dir.join("b/true"));
        for p in [&a, &b] {
            std::fs::create_dir_all(p.parent().unwrap()).unwrap();
            std::fs::copy("/bin/true", p).unwrap();
        }
        // Different mtimes and modes of the inputs must not matter.
        quiet(Command::new("touch").args(["-d", "2001-01-01"]).arg(&b)).unwrap();
        quiet(Command::new("chmod").arg("700").arg(&b)).unwrap();
        let one = build(&spec(&a), &dir.join("one.oci.tar")).unwrap();
        let two = build(&spec(&b), &dir.join("two.oci.tar")).unwrap();
        assert_eq!(one.digest, two.digest);
        assert!(one.digest.starts_with("sha256:") && one.digest.len() == 71, "{}", one.digest);
        assert_eq!(std::fs::read(&one.archive).unwrap(), std::fs::read(&two.archive).unwrap());
        std::fs::copy("/bin/false", &a).unwrap();
        let other = build(&spec(&a), &dir.join("other.oci.tar")).unwrap();
        assert_ne!(other.digest, one.digest, "a different binary must give a different image");
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn ldd_lists_the_loader_and_libc() {
        if !tools_present() {
            return;
        }
        let libs = shared_libraries(Path::new("/bin/true")).unwrap();
        assert!(libs.iter().any(|l| l.to_string_lossy().contains("libc.so")), "{libs:?}");
        assert!(libs.iter().any(|l| l.to_string_lossy().contains("ld-linux")), "{libs:?}");
    }
}
