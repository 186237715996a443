//! `cargo xtask chart-check`: render charts/serviceportal with real Helm for every bundled group
//! and compare it object by object with `portalctl render`; then `helm lint --strict`.

use crate::{cargo, root};
use anyhow::{bail, Context, Result};
use std::path::{Path, PathBuf};
use std::process::Command;

/// The groups in `tenants/` (directories with a group.yaml).
pub fn bundled_groups() -> Result<Vec<String>> {
    let mut groups = Vec::new();
    for e in std::fs::read_dir(root().join("tenants"))? {
        let e = e?;
        if e.path().join("group.yaml").exists() {
            groups.push(e.file_name().to_string_lossy().to_string());
        }
    }
    groups.sort();
    Ok(groups)
}

/// The debug portalctl binary, built.
pub fn debug_binary() -> Result<PathBuf> {
    crate::run(cargo().args(["build", "--quiet", "--bin", "portalctl"]))?;
    let target = std::env::var("CARGO_TARGET_DIR").map(Into::into).unwrap_or_else(|_| root().join("target"));
    Ok(target.join("debug").join("portalctl"))
}

/// Run `xtask/helm.py` with arguments; its stdout.
pub fn helm_py(args: &[&str]) -> Result<String> {
    let out = Command::new("python3")
        .arg(root().join("xtask/helm.py"))
        .args(args)
        .current_dir(root())
        .output()
        .context("cannot run python3")?;
    if !out.status.success() {
        bail!(
            "helm.py {} failed:\n{}{}",
            args.first().unwrap_or(&""),
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
    }
    Ok(String::from_utf8(out.stdout)?)
}

fn portalctl(bin: &Path, args: &[&str]) -> Result<String> {
    let out = Command::new(bin).args(args).current_dir(root()).output()?;
    if !out.status.success() {
        bail!("portalctl {args:?} failed: {}", String::from_utf8_lossy(&out.stderr));
    }
    Ok(String::from_utf8(out.stdout)?)
}

pub fn check() -> Result<()> {
    check_chart(&root().join("charts/serviceportal"))
}

/// `cargo xtask chart-package`: `helm package` the chart with the crate version as chart version
/// and appVersion into `<target>/chart/serviceportal-<version>.tgz`, then check the package as
/// `chart-check` checks the source.
pub fn package() -> Result<()> {
    helm_py(&["available"]).context("Helm is not available; install it with: pip install helm-python-sdk")?;
    let version = crate::image::crate_version()?;
    let target = std::env::var("CARGO_TARGET_DIR").map(PathBuf::from).unwrap_or_else(|_| root().join("target"));
    let dest = target.join("chart");
    std::fs::create_dir_all(&dest)?;
    let chart = root().join("charts/serviceportal");
    let tgz = helm_py(&[
        "package",
        chart.to_str().context("chart path")?,
        dest.to_str().context("destination path")?,
        &version,
    ])?;
    let tgz = PathBuf::from(tgz.trim());
    check_chart(&tgz)?;
    println!("chart {} ({} bytes)", tgz.display(), std::fs::metadata(&tgz)?.len());
    Ok(())
}

/// Compare the chart at `chart` (a directory or a packaged .tgz) with `portalctl render` for
/// every bundled group, and lint it.
fn check_chart(chart: &Path) -> Result<()> {
    helm_py(&["available"]).context("Helm is not available; install it with: pip install helm-python-sdk")?;
    let bin = debug_binary()?;
    let dir = crate::bench::tempfile_dir("chart-check")?;
    let chart = chart.to_str().context("chart path")?;
    let mut failed = 0;
    for group in bundled_groups()? {
        let values = dir.join(format!("values-{group}.yaml"));
        let values_s = values.to_str().context("values path")?;
        portalctl(&bin, &["render", "--group", &group, "--helm-values", "--out", values_s])?;
        let ours = portalctl(&bin, &["render", "--group", &group])?;
        let namespace = ours
            .lines()
            .find_map(|l| l.strip_prefix("  namespace: "))
            .context("rendered objects name no namespace")?
            .trim()
            .to_string();
        let theirs = helm_py(&["template", chart, values_s, &group, &namespace])?;
        let problems = portalctl::render::chart::compare(&ours, &theirs, &namespace).map_err(anyhow::Error::msg)?;
        let objects = portalctl::render::chart::parse_stream(&ours).map_err(anyhow::Error::msg)?.len();
        let lint = helm_py(&["lint", chart, values_s, &namespace]);
        if problems.is_empty() && lint.is_ok() {
            println!("chart-check {group}: {objects} objects identical, helm lint --strict passed");
        } else {
            failed += 1;
            for p in &problems {
                println!("chart-check {group}: {p}");
            }
            if let Err(e) = lint {
                println!("chart-check {group}: {e:#}");
            }
        }
    }
    std::fs::remove_dir_all(&dir).ok();
    if failed > 0 {
        bail!("the chart and portalctl render disagree for {failed} group(s)");
    }
    Ok(())
}
