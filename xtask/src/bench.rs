//! Benchmarks that print numbers (never timed tests). Each builds the release binary first.

use crate::{cargo, root};
use anyhow::{bail, Context, Result};
use std::process::Command;
use std::time::Instant;

pub fn run_bench(which: &str) -> Result<()> {
    match which {
        "validate" => validate(),
        "db" => db(),
        "serve" => crate::bench_serve::serve(),
        "login" => crate::bench_login::login(),
        "kube" => kube(),
        "status" | "rollout" => crate::bench_status::status(),
        "saml" => crate::bench_saml::saml(),
        other => bail!("unknown benchmark {other:?}; available: validate, db, serve, login, kube, status, saml"),
    }
}

pub fn run(args: &[&str]) -> Result<()> {
    if args.is_empty() {
        bail!("usage: cargo xtask bench <validate|db|serve|login|kube|status|saml>");
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

/// Kubernetes: rendering all 10,790 municipalities as tenants of one group with portalctl, and the same tenants one
/// per render through the Helm chart with real Helm (a sample, extrapolated); then rollouts, no-op re-runs and status
/// against a real control plane (`bench_kube`).
fn kube() -> Result<()> {
    kube_render()?;
    crate::bench_kube::cluster()
}

fn kube_render() -> Result<()> {
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

/// The two benchmark groups of real communes, each scaffolded into a fresh directory: `nrw`, all 396 communes of
/// North Rhine-Westphalia (every Kreis and kreisfreie Stadt with AGS 05…), and `germany`, the first 1,000 communes
/// of Germany in the official order of the Kreise. `pilots` name the pilot wave of each (empty: one wave).
pub fn nrw_and_1000(
    bin: &std::path::Path,
    name: &str,
    nrw_pilots: &[&str],
    germany_pilots: &[&str],
) -> Result<(std::path::PathBuf, std::path::PathBuf)> {
    let gemeinden = std::fs::read_to_string(root().join("data/gemeinden-de.csv"))?;
    let kreise = std::fs::read_to_string(root().join("data/kreise-de.csv"))?;
    let kreis_ags: Vec<&str> = kreise.lines().skip(1).filter_map(|l| l.split(',').next()).collect();

    // NRW: every Kreis and kreisfreie Stadt with AGS 05…, communes only.
    let nrw: Vec<&str> = kreis_ags.iter().copied().filter(|a| a.starts_with("05")).collect();
    let nrw_dir = scaffold_group(bin, &format!("{name}-nrw"), "nrw", &nrw, None, nrw_pilots)?;
    // 1,000: whole Kreise in the official order until 1,000 communes are reached.
    let mut per_kreis: std::collections::HashMap<&str, usize> = Default::default();
    for line in gemeinden.lines().skip(1) {
        if let Some(k) = line.split(',').nth(4) {
            *per_kreis.entry(k).or_default() += 1;
        }
    }
    let mut first = Vec::new();
    let mut count = 0;
    for k in &kreis_ags {
        if count >= 1000 {
            break;
        }
        count += per_kreis.get(k).copied().unwrap_or(0);
        first.push(*k);
    }
    let de_dir = scaffold_group(bin, &format!("{name}-de1000"), "germany", &first, Some(1000), germany_pilots)?;
    Ok((nrw_dir, de_dir))
}

/// Provision + migrate all 396 NRW municipalities, then 1,000 German municipalities, each
/// into a fresh throwaway PostgreSQL cluster, at `--concurrency 1` and the default (8).
fn db() -> Result<()> {
    let bin = release_binary()?;
    let (nrw_dir, de_dir) = nrw_and_1000(&bin, "db", &[], &[])?;

    let mut lines = Vec::new();
    for (dir, group) in [(&nrw_dir, "nrw"), (&de_dir, "germany")] {
        let n = std::fs::read_dir(dir.join(group))?.count() - 1;
        for concurrency in [1usize, 8] {
            let pg = Postgres::start()?;
            let secrets =
                dir.with_file_name(format!("portalctl-bench-secrets-{group}-{concurrency}-{}", std::process::id()));
            let c = concurrency.to_string();
            let common = |sub: &str| {
                let mut cmd = Command::new(&bin);
                cmd.arg("--tenants").arg(dir).args([
                    "-q",
                    "db",
                    sub,
                    "--database-url",
                    &pg.url,
                    "--db-sslmode",
                    "disable",
                ]);
                cmd
            };
            let mut provision = common("provision");
            provision.args(["--concurrency", &c]).arg("--secrets-dir").arg(&secrets);
            let p = measure(provision.stdout(std::process::Stdio::null()))?.success()?;
            let mut migrate = common("migrate");
            migrate.args(["--concurrency", &c]);
            let m = measure(migrate.stdout(std::process::Stdio::null()))?.success()?;
            // Check the result: every tenant current.
            let out = common("status").args(["-o", "json"]).output()?;
            let current = String::from_utf8_lossy(&out.stdout).matches("\"current\": true").count();
            if current != n {
                bail!("after the run only {current} of {n} tenants are current");
            }
            std::fs::remove_dir_all(&secrets).ok();
            let total = p.secs + m.secs;
            let line = format!(
                "| {n} | {concurrency} | {:.2} s | {:.2} s | {:.2} s | {:.1} ms | {:.1} MiB / {:.1} MiB |",
                p.secs,
                m.secs,
                total,
                total * 1000.0 / n as f64,
                p.peak_kib as f64 / 1024.0,
                m.peak_kib as f64 / 1024.0,
            );
            println!(
                "bench db: {n} tenants, --concurrency {concurrency}: provision {:.2} s, migrate {:.2} s, \
                 empty→current {total:.2} s ({:.1} ms/tenant), peak RSS provision {:.1} MiB, migrate {:.1} MiB",
                p.secs,
                m.secs,
                total * 1000.0 / n as f64,
                p.peak_kib as f64 / 1024.0,
                m.peak_kib as f64 / 1024.0
            );
            lines.push(line);
        }
    }
    println!("\n| tenants | concurrency | provision | migrate | empty→current | per tenant | peak RSS (provision / migrate) |");
    println!("|---|---|---|---|---|---|---|");
    for l in lines {
        println!("{l}");
    }
    std::fs::remove_dir_all(&nrw_dir).ok();
    std::fs::remove_dir_all(&de_dir).ok();
    Ok(())
}

/// `portalctl group new <group> --kreis … --pilot …` into a fresh directory, keeping at most `limit`
/// tenants (the last Kreis may be cut).
fn scaffold_group(
    bin: &std::path::Path,
    name: &str,
    group: &str,
    kreise: &[&str],
    limit: Option<usize>,
    pilots: &[&str],
) -> Result<std::path::PathBuf> {
    let dir = tempfile_dir(name)?;
    let mut cmd = Command::new(bin);
    cmd.arg("--tenants").arg(&dir).args(["group", "new", group, "--no-kreis-tenants", "-q"]);
    for k in kreise {
        cmd.arg("--kreis").arg(k);
    }
    for p in pilots {
        cmd.arg("--pilot").arg(p);
    }
    crate::run(&mut cmd)?;
    if let Some(limit) = limit {
        let mut files: Vec<_> =
            std::fs::read_dir(dir.join(group))?.map(|e| e.map(|e| e.path())).collect::<Result<_, _>>()?;
        files.retain(|p| p.file_stem().is_some_and(|s| s != "group"));
        // Keep the scaffold's order: by AGS, as the files say.
        let mut by_ags: Vec<(String, std::path::PathBuf)> = files
            .into_iter()
            .map(|p| {
                let text = std::fs::read_to_string(&p).unwrap_or_default();
                let ags = text.lines().find_map(|l| l.trim().strip_prefix("ags: ")).unwrap_or("").to_string();
                (ags, p)
            })
            .collect();
        by_ags.sort();
        for (_, p) in by_ags.into_iter().skip(limit) {
            std::fs::remove_file(p)?;
        }
    }
    Ok(dir)
}

pub struct Measured {
    pub secs: f64,
    pub peak_kib: i64,
    /// The exit code (None: killed by a signal).
    pub code: Option<i32>,
}

impl Measured {
    /// The measurement of a command that must have succeeded.
    pub fn success(self) -> Result<Measured> {
        if self.code != Some(0) {
            bail!("the command failed with exit code {:?}", self.code);
        }
        Ok(self)
    }

    pub fn peak_mib(&self) -> f64 {
        self.peak_kib as f64 / 1024.0
    }
}

/// Run a command to completion (stdout as the caller set it up); wall time, the child's peak resident set (wait4)
/// and its exit code.
pub fn measure(cmd: &mut Command) -> Result<Measured> {
    let t = Instant::now();
    let child = cmd.current_dir(root()).spawn().context("cannot start portalctl")?;
    let pid = child.id() as libc::pid_t;
    let mut status: libc::c_int = 0;
    // SAFETY: rusage is plain data; wait4 fills it for our own child.
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    let r = unsafe { libc::wait4(pid, &mut status, 0, &mut usage) };
    let secs = t.elapsed().as_secs_f64();
    if r != pid {
        bail!("wait4 failed: {}", std::io::Error::last_os_error());
    }
    let code = libc::WIFEXITED(status).then(|| libc::WEXITSTATUS(status));
    Ok(Measured { secs, peak_kib: usage.ru_maxrss, code })
}

/// A throwaway PostgreSQL cluster from the machine's server binaries (the recipe of
/// `.ci/postgres.sh`), stopped and removed on drop.
pub struct Postgres {
    root: std::path::PathBuf,
    bin: std::path::PathBuf,
    as_postgres: bool,
    pub url: String,
}

impl Postgres {
    pub fn start() -> Result<Postgres> {
        let bin = pg_bindir()?;
        let port = std::net::TcpListener::bind("127.0.0.1:0")?.local_addr()?.port();
        let root = tempfile_dir("db-pg")?;
        std::fs::create_dir_all(root.join("data"))?;
        std::fs::create_dir_all(root.join("sock"))?;
        let as_postgres = unsafe { libc::geteuid() } == 0;
        if as_postgres {
            crate::run(Command::new("chown").args(["-R", "postgres:postgres"]).arg(&root))?;
        }
        let pg = Postgres { root, bin, as_postgres, url: format!("postgres://postgres@127.0.0.1:{port}/postgres") };
        let mut initdb = pg.cmd("initdb");
        initdb.arg("-D").arg(pg.root.join("data")).args(["-A", "trust", "-U", "postgres", "--no-sync", "-E", "UTF8"]);
        initdb.arg("--locale=C.UTF-8").stdout(std::process::Stdio::null());
        crate::run(&mut initdb)?;
        let mut start = pg.cmd("pg_ctl");
        start
            .arg("-D")
            .arg(pg.root.join("data"))
            .arg("-l")
            .arg(pg.root.join("server.log"))
            .args(["-w", "-t", "60", "-o"]);
        start.arg(format!(
            "-c listen_addresses=127.0.0.1 -p {port} -k {} -c fsync=off -c synchronous_commit=off \
             -c full_page_writes=off -c max_connections=300",
            pg.root.join("sock").display()
        ));
        start.arg("start").stdout(std::process::Stdio::null());
        crate::run(&mut start)?;
        Ok(pg)
    }

    fn cmd(&self, tool: &str) -> Command {
        if self.as_postgres {
            let mut c = Command::new("runuser");
            c.args(["-u", "postgres", "--"]).arg(self.bin.join(tool));
            c
        } else {
            Command::new(self.bin.join(tool))
        }
    }
}

impl Drop for Postgres {
    fn drop(&mut self) {
        let _ = self
            .cmd("pg_ctl")
            .arg("-D")
            .arg(self.root.join("data"))
            .args(["-m", "immediate", "stop"])
            .stdout(std::process::Stdio::null())
            .status();
        let _ = std::fs::remove_dir_all(&self.root);
    }
}

/// PostgreSQL's server binaries: `pg_config --bindir`, else the newest `/usr/lib/postgresql/*/bin`.
fn pg_bindir() -> Result<std::path::PathBuf> {
    if let Ok(out) = Command::new("pg_config").arg("--bindir").output() {
        let dir = std::path::PathBuf::from(String::from_utf8_lossy(&out.stdout).trim());
        if out.status.success() && dir.join("initdb").is_file() {
            return Ok(dir);
        }
    }
    let mut found: Vec<(u32, std::path::PathBuf)> = std::fs::read_dir("/usr/lib/postgresql")
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|e| {
            let v: u32 = e.file_name().to_string_lossy().parse().ok()?;
            let bin = e.path().join("bin");
            bin.join("initdb").is_file().then_some((v, bin))
        })
        .collect();
    found.sort();
    found.pop().map(|(_, p)| p).context("PostgreSQL server binaries (initdb) not found; apt-get install postgresql")
}
