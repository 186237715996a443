//! `cargo xtask`: project chores — the CI gate, benchmarks, generated-file checks.
//!
//! Run `cargo xtask help` for the list.

use anyhow::{bail, Context, Result};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Instant;

mod bench;
mod bench_serve;
mod bench_status;
mod chart;
mod image;

fn main() -> Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    match args.as_slice() {
        ["ci"] => ci(),
        ["bench", rest @ ..] => bench::run(rest),
        ["chart-check"] => chart::check(),
        ["chart-package"] => chart::package(),
        ["image", rest @ ..] => image::run_task(rest),
        [] | ["help"] | ["--help"] | ["-h"] => {
            println!("{HELP}");
            Ok(())
        }
        other => bail!("unknown task {other:?}\n\n{HELP}"),
    }
}

const HELP: &str = "\
cargo xtask <task>

Tasks:
  ci                 the CI gate: rustfmt --check, clippy -D warnings, the whole test suite
  chart-check        render charts/serviceportal with real Helm for each bundled group, compare with
                     `portalctl render` object by object, and run `helm lint --strict`
  chart-package      `helm package` charts/serviceportal as target/chart/serviceportal-<version>.tgz (version and
                     appVersion from Cargo.toml), then check the package like chart-check
  image              the portal server's OCI image (oci-archive) from the release binary, reproducibly, with
                     its SBOM; no container daemon (umoci, GNU tar). `cargo xtask image --help` for options
  bench validate     generate all 10,790 German municipalities as tenants and time `portalctl validate`
  bench db           provision + migrate 396 NRW and 1,000 German tenants into a fresh PostgreSQL
  bench kube         render 10,790 tenants with portalctl, and tenant by tenant through the Helm chart
  bench serve        the portal server with all 396 NRW communes (starter catalogue each) under wrk load,
                     compared with nginx serving a static copy of one home page
                     (needs PORTALCTL_TEST_DATABASE_URL, e.g. from `source .ci/postgres.sh`; wrk and nginx from apt)
  bench status       roll all 396 NRW communes out from empty against the Kubernetes test stand-in with a simulated
                     readiness delay (wall time, working vs waiting), then time `portalctl status` of the group with
                     every source live (stand-in, PostgreSQL, dnsmasq, portal server). Tunables: BENCH_READINESS_DELAY_MS
                     (1000), BENCH_ROLLOUT_CONCURRENCY (8,32), BENCH_STATUS_RUNS (5)";

/// The repository root (the parent of `xtask/`).
pub fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).parent().expect("xtask lives in the workspace").to_path_buf()
}

/// Run a command in the repository root, failing with its command line if it fails.
pub fn run(cmd: &mut Command) -> Result<()> {
    let mut shown = format!("{cmd:?}");
    if shown.len() > 200 {
        shown = format!("{} …", &shown[..shown.char_indices().nth(200).map_or(shown.len(), |(i, _)| i)]);
    }
    eprintln!("xtask: {shown}");
    let status = cmd.current_dir(root()).status().with_context(|| format!("cannot start {shown}"))?;
    if !status.success() {
        bail!("{shown} failed with {status}");
    }
    Ok(())
}

fn cargo() -> Command {
    Command::new(std::env::var("CARGO").unwrap_or_else(|_| "cargo".into()))
}

fn ci() -> Result<()> {
    let t = Instant::now();
    run(cargo().args(["fmt", "--all", "--check"]))?;
    run(cargo().args(["clippy", "--workspace", "--all-targets", "--", "-D", "warnings"]))?;
    run(cargo().args(["test", "--workspace", "--no-fail-fast"]))?;
    eprintln!("xtask: ci passed in {:.0} s", t.elapsed().as_secs_f64());
    Ok(())
}
