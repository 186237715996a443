//! Benchmarks that print numbers (never timed tests). Each builds the release binary first.

use crate::{cargo, root};
use anyhow::{bail, Context, Result};
use std::process::Command;
use std::time::Instant;

pub fn run_bench(which: &str) -> Result<()> {
    match which {
        "validate" => validate(),
        "kube" => kube(),
        other => bail!("unknown benchmark {other:?}; available: validate, kube"),
    }
}

pub fn run(args: &[&str]) -> Result<()> {
    if args.is_empty() {
        bail!("usage: cargo xtask bench <validate|kube>");
    }
    for a in args {
        run_bench(a)?;
    }
    Ok(())
}

fn release_binary() -> Result<std::path::PathBuf> {
    crate::run(cargo().args(["build", "--release", "--quiet", "--bin", "portalctl"]))?;
    let target = std::env::var("CARGO_TARGET_DIR").map(Into::into).unwrap_or_else(|_| root().join("target"));
    Ok(target.join("release").join("portalctl"))
}

/// All 10,790 municipalities of Germany as one group, validated.
fn validate() -> Result<()> {
    let bin = release_binary()?;
    let dir = germany(&bin, "validate")?;
    let n = std::fs::read_dir(dir.join("germany"))?.count() - 1;
    let mut best = f64::MAX;
    let runs = 5;
    for _ in 0..runs {
        let t = Instant::now();
        let out = Command::new(&bin).arg("--tenants").arg(&dir).args(["validate", "-q"]).output()?;
        let secs = t.elapsed().as_secs_f64();
        if !out.status.success() {
            bail!("validate failed: {}", String::from_utf8_lossy(&out.stderr));
        }
        best = best.min(secs);
    }
    println!(
        "bench validate: validate {n} tenants: best of {runs} {best:.3} s ({:.1} µs/tenant)",
        best * 1e6 / n as f64
    );
    std::fs::remove_dir_all(&dir).ok();
    Ok(())
}

/// Best wall time of `runs` runs of the binary with these arguments (stdout discarded).
fn best_of(bin: &std::path::Path, args: &[&std::ffi::OsStr], runs: usize) -> Result<f64> {
    let mut best = f64::MAX;
    for _ in 0..runs {
        let t = Instant::now();
        let out = Command::new(bin).args(args).output()?;
        let secs = t.elapsed().as_secs_f64();
        if !out.status.success() {
            bail!("{args:?} failed: {}", String::from_utf8_lossy(&out.stderr));
        }
        best = best.min(secs);
    }
    Ok(best)
}

/// Kubernetes render: all 10,790 municipalities as tenants of one group with portalctl, and
/// the same tenants one per render through the Helm chart with real Helm (a sample, extrapolated).
fn kube() -> Result<()> {
    let bin = release_binary()?;
    let dir = germany(&bin, "kube")?;
    let n = std::fs::read_dir(dir.join("germany"))?.count() - 1;
    let os = |s: &str| std::ffi::OsString::from(s);
    let tenants = [os("--tenants"), dir.clone().into_os_string()];
    let args = |rest: &[&str]| -> Vec<std::ffi::OsString> {
        tenants.iter().cloned().chain(rest.iter().map(|s| os(s))).collect()
    };
    let validate_args = args(&["validate", "-q"]);
    let render_args = args(&["render", "--group", "germany", "--out", "-"]);
    let runs = 3;
    let v: Vec<&std::ffi::OsStr> = validate_args.iter().map(|s| s.as_os_str()).collect();
    let r: Vec<&std::ffi::OsStr> = render_args.iter().map(|s| s.as_os_str()).collect();
    let validate = best_of(&bin, &v, runs)?;
    let render = best_of(&bin, &r, runs)?;
    let mut render_only = f64::MAX;
    let mut objects = 0;
    let mut bytes = 0;
    for _ in 0..runs {
        let out = Command::new(&bin).args(&r).output()?;
        let stderr = String::from_utf8_lossy(&out.stderr);
        // "rendered N objects in X ms": rendering and YAML only, measured inside the process.
        let line = stderr.lines().find(|l| l.starts_with("rendered ")).context("render prints its timing")?;
        let words: Vec<&str> = line.split_whitespace().collect();
        objects = words[1].parse()?;
        render_only = render_only.min(words[words.len() - 2].parse::<f64>()? / 1e3);
        bytes = out.stdout.len();
    }
    println!(
        "bench kube: portalctl render of {n} tenants ({objects} objects, {:.1} MB of YAML): best of {runs}: \
         rendering and YAML {render_only:.3} s; whole command {render:.3} s (validate alone {validate:.3} s)",
        bytes as f64 / 1e6
    );

    let values = dir.join("values-germany.yaml");
    let mut values_args = args(&["render", "--group", "germany", "--helm-values", "--out"]);
    values_args.push(values.clone().into_os_string());
    crate::run(Command::new(&bin).args(&values_args))?;
    let sample: usize = std::env::var("BENCH_HELM_SAMPLE").ok().and_then(|s| s.parse().ok()).unwrap_or(200);
    let chart = root().join("charts/serviceportal");
    let timing = crate::chart::helm_py(&[
        "time-each",
        chart.to_str().context("chart path")?,
        "germany",
        "portal-germany",
        values.to_str().context("values path")?,
        &sample.to_string(),
    ])?;
    let mut parts = timing.split_whitespace();
    let rendered: usize = parts.next().context("helm.py output")?.parse()?;
    let secs: f64 = parts.next().context("helm.py output")?.parse()?;
    let per = secs / rendered as f64;
    let all = per * n as f64;
    println!(
        "bench kube: Helm (helm-python-sdk {}), one render per tenant: {rendered} tenants in {secs:.2} s = {:.1} ms/tenant; \
         extrapolated to {n} tenants: {all:.0} s",
        crate::chart::helm_py(&["available"])?.trim().trim_start_matches("helm sdk "),
        per * 1e3
    );
    println!(
        "bench kube: ratio Helm one-by-one (extrapolated) / portalctl: {:.0}x against rendering, {:.0}x against the whole command",
        all / render_only,
        all / render
    );
    std::fs::remove_dir_all(&dir).ok();
    Ok(())
}

/// All German municipalities as tenants of one group `germany`, scaffolded into a fresh directory.
fn germany(bin: &std::path::Path, name: &str) -> Result<std::path::PathBuf> {
    let dir = tempfile_dir(name)?;
    let kreise = std::fs::read_to_string(root().join("data/kreise-de.csv"))?;
    let mut cmd = Command::new(bin);
    cmd.arg("--tenants").arg(&dir).args(["group", "new", "germany", "--no-kreis-tenants", "-q"]);
    for line in kreise.lines().skip(1) {
        cmd.arg("--kreis").arg(line.split(',').next().context("kreise-de.csv row")?);
    }
    let t = Instant::now();
    crate::run(&mut cmd)?;
    let n = std::fs::read_dir(dir.join("germany"))?.count() - 1;
    println!("bench {name}: {n} tenants scaffolded in {:.2} s", t.elapsed().as_secs_f64());
    Ok(dir)
}

/// A fresh directory under the system temp dir.
pub fn tempfile_dir(name: &str) -> Result<std::path::PathBuf> {
    let dir = std::env::temp_dir().join(format!("portalctl-bench-{name}-{}", std::process::id()));
    if dir.exists() {
        std::fs::remove_dir_all(&dir)?;
    }
    std::fs::create_dir_all(&dir)?;
    Ok(dir)
}
