//! `cargo xtask`: project chores — the CI gate, benchmarks, generated-file checks.
//!
//! Run `cargo xtask help` for the list.

#![recursion_limit = "256"]

use anyhow::{bail, Context, Result};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Instant;

mod bench;
mod bench_kube;
mod bench_login;
mod bench_saml;
mod bench_serve;
mod bench_status;
mod chart;
mod cluster;
mod cluster_bootstrap;
mod fuzz;
mod image;

fn main() -> Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    match args.as_slice() {
        ["ci"] => ci(),
        ["bench", rest @ ..] => bench::run(rest),
        ["chart-check"] => chart::check(),
        ["fuzz", rest @ ..] => fuzz::run(rest),
        ["cluster", rest @ ..] => cluster::run(rest),
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
  cluster up|down    a real Kubernetes control plane on 127.0.0.1 (etcd, kube-apiserver, kube-controller-manager,
                     kube-scheduler built from source and cached; KWOK simulating nodes, pods, ingress addresses and
                     certificates); `up` prints KUBECONFIG=<path>. `cargo xtask cluster help` for details
  chart-check        render charts/serviceportal with real Helm for each bundled group, compare with
                     `portalctl render` object by object, and run `helm lint --strict`
  fuzz [--seconds N] run the SAML response fuzz target (fuzz/, `cargo +nightly fuzz`, cargo-fuzz installed) for N
                     seconds (default 60) on the committed seeds; a crash, a hang over 5 s or an allocation over
                     64 MiB fails it. `fuzz seeds` regenerates fuzz/corpus/saml_response.
  chart-package      `helm package` charts/serviceportal as target/chart/serviceportal-<version>.tgz (version and
                     appVersion from Cargo.toml), then check the package like chart-check
  image              the portal server's OCI image (oci-archive) from the release binary, reproducibly, with
                     its SBOM; no container daemon (umoci, GNU tar). `cargo xtask image --help` for options
  bench validate     generate all 10,790 German municipalities as tenants and time `portalctl validate`
  bench db           provision + migrate 396 NRW and 1,000 German tenants into a fresh PostgreSQL
  bench kube         render 10,790 tenants with portalctl, and tenant by tenant through the Helm chart; then, against
                     a real control plane (PORTALCTL_E2E_KUBECONFIG, else `cluster up`), roll 396 NRW and 1,000
                     German tenants out from empty, again (no-op), and time `status`: wall time, objects/s, API
                     requests per tenant, peak RSS. Tunables: BENCH_KUBE_CONCURRENCY (4,16), BENCH_KUBE_STATUS_RUNS (3)
  bench serve        the portal server with all 396 NRW communes (starter catalogue each) under wrk load,
                     compared with nginx serving a static copy of one home page
                     (needs PORTALCTL_TEST_DATABASE_URL, e.g. from `source .ci/postgres.sh`; wrk and nginx from apt)
  bench login        login starts (`/anmelden`, SAML and OIDC) per second under wrk load, against the local test
                     identity providers (needs PORTALCTL_TEST_DATABASE_URL, wrk, node with tests/idp installed,
                     openssl); BENCH_LOGIN_BINARY names another server binary to measure (before/after)
  bench status       roll all 396 NRW communes out from empty, with their databases, against the real control plane
                     (PORTALCTL_E2E_KUBECONFIG, else `cluster up`; wall time, working vs waiting), then time
                     `portalctl status` of the group with every source live (control plane, PostgreSQL, dnsmasq, portal
                     server). Tunables: BENCH_ROLLOUT_CONCURRENCY (8,32), BENCH_STATUS_RUNS (5)
  bench saml         time and peak RSS of validating the worst-case SAMLResponse documents at the 512 KiB cap
                     (in xtask's own profile; `cargo run --release -p xtask -- bench saml` for optimized code)";

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

/// A nested cargo, with the environment of a plain shell: `cargo xtask` (`cargo run`) sets the
/// package variables of xtask (`CARGO_MANIFEST_DIR`, `CARGO_PKG_NAME`, …) for its process, and the
/// nested cargo judges the build scripts' `rerun-if-env-changed` against its own environment —
/// ring's build script names those variables, so ring and everything above it (rustls, kube,
/// reqwest, portalctl) would be rebuilt on every switch between `cargo build --release` and
/// `cargo xtask bench`.
fn cargo() -> Command {
    let mut cmd = Command::new(std::env::var("CARGO").unwrap_or_else(|_| "cargo".into()));
    for (key, _) in std::env::vars_os() {
        let k = key.to_string_lossy();
        if k.starts_with("CARGO_PKG_")
            || k.starts_with("CARGO_MANIFEST_")
            || ["CARGO_CRATE_NAME", "CARGO_BIN_NAME", "CARGO_PRIMARY_PACKAGE"].contains(&k.as_ref())
        {
            cmd.env_remove(&key);
        }
    }
    cmd
}

fn ci() -> Result<()> {
    let t = Instant::now();
    run(cargo().args(["fmt", "--all", "--check"]))?;
    run(cargo().args(["clippy", "--workspace", "--all-targets", "--", "-D", "warnings"]))?;
    run(cargo().args(["test", "--workspace", "--no-fail-fast"]))?;
    eprintln!("xtask: ci passed in {:.0} s", t.elapsed().as_secs_f64());
    Ok(())
}

#[cfg(test)]
mod tests {
    #[test]
    fn the_nested_cargo_does_not_inherit_the_package_variables_of_xtask() {
        // `cargo test` sets them for this process, as `cargo xtask` does for xtask.
        assert!(std::env::var_os("CARGO_MANIFEST_DIR").is_some());
        let cmd = super::cargo();
        let removed: Vec<String> =
            cmd.get_envs().filter(|(_, v)| v.is_none()).map(|(k, _)| k.to_string_lossy().into_owned()).collect();
        for k in ["CARGO_MANIFEST_DIR", "CARGO_PKG_NAME", "CARGO_PKG_VERSION"] {
            assert!(removed.iter().any(|r| r == k), "{k} removed: {removed:?}");
        }
    }
}
