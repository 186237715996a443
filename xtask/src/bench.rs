//! Benchmarks that print numbers (never timed tests). Each builds the release binary first.

use crate::{cargo, root};
use anyhow::{bail, Context, Result};
use std::process::Command;
use std::time::Instant;

pub fn run_bench(which: &str) -> Result<()> {
    match which {
        "validate" => validate(),
        "serve" => crate::bench_serve::serve(),
        other => bail!("unknown benchmark {other:?}; available: validate, serve"),
    }
}

pub fn run(args: &[&str]) -> Result<()> {
    if args.is_empty() {
        bail!("usage: cargo xtask bench <validate|serve>");
    }
    for a in args {
        run_bench(a)?;
    }
    Ok(())
}

pub fn release_binary() -> Result<std::path::PathBuf> {
    crate::run(cargo().args(["build", "--release", "--quiet", "--bin", "portalctl"]))?;
    let target = std::env::var("CARGO_TARGET_DIR").map(Into::into).unwrap_or_else(|_| root().join("target"));
    Ok(target.join("release").join("portalctl"))
}

/// All 10,790 municipalities of Germany as one group, validated.
fn validate() -> Result<()> {
    let bin = release_binary()?;
    let dir = tempfile_dir("validate")?;
    let kreise = std::fs::read_to_string(root().join("data/kreise-de.csv"))?;
    let mut cmd = Command::new(&bin);
    cmd.arg("--tenants").arg(&dir).args(["group", "new", "germany", "--no-kreis-tenants", "-q"]);
    for line in kreise.lines().skip(1) {
        cmd.arg("--kreis").arg(line.split(',').next().context("kreise-de.csv row")?);
    }
    let t = Instant::now();
    crate::run(&mut cmd)?;
    let scaffold = t.elapsed();
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
    println!("bench validate: {n} tenants scaffolded in {:.2} s", scaffold.as_secs_f64());
    println!(
        "bench validate: validate {n} tenants: best of {runs} {best:.3} s ({:.1} µs/tenant)",
        best * 1e6 / n as f64
    );
    std::fs::remove_dir_all(&dir).ok();
    Ok(())
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
