//! `cargo xtask bench serve`: the portal server with all 396 NRW communes loaded, each with
//! the starter catalogue published, under `wrk` load on loopback (random tenant per request
//! by Host header) — home pages and search — next to nginx serving a static copy of one home
//! page. Prints requests/s, p50/p99 latency, the server's peak RSS and the ratio to nginx.

use crate::bench::{release_binary, tempfile_dir};
use crate::root;
use anyhow::{bail, Context, Result};
use std::fmt::Write as _;
use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

const DB: &str = "portalctl_bench_serve";
const GROUP: &str = "nrw";
const DURATION: &str = "15s";

/// Search terms citizens type, a few with typos.
const QUERIES: &[&str] = &[
    "Hund anmelden",
    "Hundeanmeldng",
    "Personalausweis",
    "Reisepass",
    "Wohnsitz ummelden",
    "Sperrmüll",
    "Gewerbe",
    "Baugenehmigung",
    "Wohngeld",
    "Kita",
    "Geburtsurkunde",
    "Führungszeugnis",
    "Parkausweis",
    "Bürgerbüro",
    "Fundbüro",
    "Eheschliessung",
];

/// Child processes stopped and reaped on drop.
pub(crate) struct Guard(pub(crate) Vec<Child>);

impl Drop for Guard {
    /// SIGTERM first (nginx's master then stops its workers; the portal shuts down gracefully),
    /// SIGKILL only for what is still running after five seconds.
    fn drop(&mut self) {
        for c in &mut self.0 {
            let _ = Command::new("kill").arg("-TERM").arg(c.id().to_string()).status();
        }
        let deadline = Instant::now() + Duration::from_secs(5);
        for c in &mut self.0 {
            while Instant::now() < deadline && matches!(c.try_wait(), Ok(None)) {
                std::thread::sleep(Duration::from_millis(50));
            }
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

pub(crate) fn need(tool: &str, apt: &str) -> Result<()> {
    if Command::new("sh").arg("-c").arg(format!("command -v {tool}")).stdout(Stdio::null()).status()?.success() {
        Ok(())
    } else {
        bail!("{tool} is not installed (apt-get install {apt})")
    }
}

pub(crate) fn url_db(url: &str, user: Option<&str>, db: &str) -> String {
    let (scheme, rest) = url.split_once("://").unwrap_or(("postgres", url));
    let (auth, hostpath) = rest.rsplit_once('@').map(|(a, h)| (Some(a), h)).unwrap_or((None, rest));
    let host = hostpath.split('/').next().unwrap_or(hostpath);
    let auth = match (user, auth) {
        (Some(u), _) => format!("{u}@"),
        (None, Some(a)) => format!("{a}@"),
        (None, None) => String::new(),
    };
    format!("{scheme}://{auth}{host}/{db}")
}

pub(crate) fn psql(url: &str, sql: &str) -> Result<()> {
    let mut child = Command::new("psql")
        .args(["-q", "-v", "ON_ERROR_STOP=1", "-X", url])
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .spawn()
        .context("psql")?;
    child.stdin.take().unwrap().write_all(sql.as_bytes())?;
    if !child.wait()?.success() {
        bail!("psql failed");
    }
    Ok(())
}

pub(crate) fn get(port: u16, host: &str, path: &str) -> Result<(u16, String)> {
    let mut s = TcpStream::connect(("127.0.0.1", port))?;
    write!(s, "GET {path} HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\r\n")?;
    let mut buf = Vec::new();
    s.read_to_end(&mut buf)?;
    let text = String::from_utf8_lossy(&buf).into_owned();
    let (head, body) = text.split_once("\r\n\r\n").unwrap_or((&text, ""));
    let status = head.split_whitespace().nth(1).and_then(|s| s.parse().ok()).unwrap_or(0);
    Ok((status, body.to_string()))
}

fn wait_for(port: u16, host: &str, path: &str) -> Result<()> {
    let t = Instant::now();
    while t.elapsed() < Duration::from_secs(60) {
        if get(port, host, path).is_ok_and(|(s, _)| s == 200) {
            return Ok(());
        }
        std::thread::sleep(Duration::from_millis(200));
    }
    bail!("nothing answered on port {port}")
}

pub(crate) fn free_port() -> Result<u16> {
    Ok(std::net::TcpListener::bind("127.0.0.1:0")?.local_addr()?.port())
}

/// Figures of one wrk run.
pub(crate) struct Run {
    pub(crate) rps: f64,
    pub(crate) p50_ms: f64,
    pub(crate) p99_ms: f64,
    pub(crate) errors: u64,
    pub(crate) requests: u64,
}

fn parse_ms(s: &str) -> Option<f64> {
    let s = s.trim();
    let (num, factor) = if let Some(n) = s.strip_suffix("us") {
        (n, 0.001)
    } else if let Some(n) = s.strip_suffix("ms") {
        (n, 1.0)
    } else if let Some(n) = s.strip_suffix('s') {
        (n, 1000.0)
    } else {
        return None;
    };
    num.parse::<f64>().ok().map(|v| v * factor)
}

pub(crate) fn wrk(script: &Path, port: u16, connections: u32) -> Result<Run> {
    let out = Command::new("wrk")
        .args(["-t2", &format!("-c{connections}"), &format!("-d{DURATION}"), "--latency", "-s"])
        .arg(script)
        .arg(format!("http://127.0.0.1:{port}/"))
        .output()
        .context("wrk")?;
    let text = String::from_utf8_lossy(&out.stdout);
    if !out.status.success() {
        bail!("wrk failed: {text}{}", String::from_utf8_lossy(&out.stderr));
    }
    let mut run = Run { rps: 0.0, p50_ms: 0.0, p99_ms: 0.0, errors: 0, requests: 0 };
    for line in text.lines() {
        let l = line.trim();
        if let Some(v) = l.strip_prefix("Requests/sec:") {
            run.rps = v.trim().parse().unwrap_or(0.0);
        } else if let Some(v) = l.strip_prefix("50%") {
            run.p50_ms = parse_ms(v).unwrap_or(0.0);
        } else if let Some(v) = l.strip_prefix("99%") {
            run.p99_ms = parse_ms(v).unwrap_or(0.0);
        } else if let Some(v) = l.strip_prefix("Non-2xx or 3xx responses:") {
            run.errors = v.trim().parse().unwrap_or(0);
        } else if l.contains("requests in") {
            run.requests = l.split_whitespace().next().and_then(|n| n.parse().ok()).unwrap_or(0);
        } else if let Some(v) = l.strip_prefix("Socket errors:") {
            eprintln!("bench: wrk socket errors: {v}");
        }
    }
    Ok(run)
}

pub(crate) fn lua(hosts: &[String], paths: &[String]) -> String {
    let list = |v: &[String]| v.iter().map(|s| format!("{s:?}")).collect::<Vec<_>>().join(",\n  ");
    format!(
        "local hosts = {{\n  {}\n}}\nlocal paths = {{\n  {}\n}}\nmath.randomseed(os.time())\n\
         request = function()\n  return wrk.format(\"GET\", paths[math.random(#paths)], {{ [\"Host\"] = hosts[math.random(#hosts)] }})\nend\n",
        list(hosts),
        list(paths)
    )
}

fn urlencode(s: &str) -> String {
    let mut out = String::new();
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || b"-_.~".contains(&b) {
            out.push(b as char);
        } else if b == b' ' {
            out.push('+');
        } else {
            let _ = write!(out, "%{b:02X}");
        }
    }
    out
}

/// `uptime` (load average), to print next to the figures: the machine is shared.
pub(crate) fn uptime() -> String {
    Command::new("uptime").output().map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string()).unwrap_or_default()
}

pub(crate) fn vm_hwm_mib(pid: u32) -> Result<f64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status"))?;
    let kb: f64 = status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.split_whitespace().next())
        .and_then(|v| v.parse().ok())
        .context("VmHWM")?;
    Ok(kb / 1024.0)
}

pub fn serve() -> Result<()> {
    need("wrk", "wrk")?;
    need("nginx", "nginx-light")?;
    need("psql", "postgresql-client")?;
    let admin = std::env::var("PORTALCTL_TEST_DATABASE_URL")
        .context("set PORTALCTL_TEST_DATABASE_URL to a superuser URL (e.g. `source .ci/postgres.sh`)")?;
    let bin = release_binary()?;
    // Comparing two builds: BENCH_SERVE_BINARY names the server binary to measure (the setup
    // steps still use the freshly built one).
    let server_bin = std::env::var_os("BENCH_SERVE_BINARY").map(std::path::PathBuf::from).unwrap_or(bin.clone());
    // BENCH_SERVE_REUSE=1 keeps the tenants and the database in target/bench-serve and in
    // database portalctl_bench_serve between runs, so that runs of two builds back to back
    // measure the same data without the four minutes of setup.
    let reuse = std::env::var("BENCH_SERVE_REUSE").is_ok_and(|v| v == "1");
    let dir = if reuse {
        let d = root().join("target/bench-serve");
        std::fs::create_dir_all(&d)?;
        d
    } else {
        tempfile_dir("serve")?
    };
    let tenants = dir.join("tenants");
    let ready = dir.join("setup-complete");
    let url = url_db(&admin, None, DB);
    let role = format!("portal_{GROUP}");
    let set_up = reuse && ready.exists() && psql(&url, "SELECT 1;").is_ok();
    if !set_up {
        if tenants.exists() {
            std::fs::remove_dir_all(&tenants)?;
        }
        std::fs::create_dir_all(&tenants)?;
        set_up_tenants(&bin, &admin, &tenants, &url)?;
        std::fs::write(&ready, "")?;
    } else {
        println!("bench serve: reusing {} and database {DB} (BENCH_SERVE_REUSE=1)", tenants.display());
    }
    let out = Command::new(&bin).arg("--tenants").arg(&tenants).args(["tenant", "list", "-o", "json"]).output()?;
    let list: serde_json::Value = serde_json::from_slice(&out.stdout).context("tenant list")?;
    let list = list.as_array().context("tenant list")?;
    let slugs: Vec<String> = list.iter().map(|t| t["slug"].as_str().unwrap_or_default().to_string()).collect();
    let hosts: Vec<String> = list.iter().map(|t| t["hostnames"][0].as_str().unwrap_or_default().to_string()).collect();
    println!("bench serve: {} NRW tenants", slugs.len());
    let load_before = uptime();
    // 4. The server.
    let port = free_port()?;
    let log = std::fs::File::create(dir.join("server.log"))?;
    let server = Command::new(&server_bin)
        .arg("--tenants")
        .arg(&tenants)
        .args(["serve", "--listen", &format!("127.0.0.1:{port}"), "--ops-listen", "127.0.0.1:0", "--pool-size", "16"])
        .env("DATABASE_URL", url_db(&admin, Some(&role), DB))
        .env("PORTALCTL_LOG", "warn")
        .stdout(Stdio::null())
        .stderr(log)
        .spawn()?;
    let pid = server.id();
    let mut guard = Guard(vec![server]);
    wait_for(port, &hosts[0], "/")?;
    let (_, home) = get(port, &hosts[0], "/")?;
    let (_, search) = get(port, &hosts[0], "/suche?q=Hundeanmeldng")?;
    if !search.contains("/leistungen/hundeanmeldung") {
        bail!("search does not find the dog service");
    }

    let scripts = dir.join("lua");
    std::fs::create_dir_all(&scripts)?;
    let home_lua = scripts.join("home.lua");
    std::fs::write(&home_lua, lua(&hosts, &["/".to_string()]))?;
    let search_lua = scripts.join("search.lua");
    let paths: Vec<String> = QUERIES.iter().map(|q| format!("/suche?q={}", urlencode(q))).collect();
    std::fs::write(&search_lua, lua(&hosts, &paths))?;
    let az_lua = scripts.join("az.lua");
    std::fs::write(&az_lua, lua(&hosts, &["/leistungen".to_string(), "/leistungen/hundeanmeldung".to_string()]))?;

    let home_run = wrk(&home_lua, port, 64)?;
    let az_run = wrk(&az_lua, port, 32)?;
    let search_run = wrk(&search_lua, port, 16)?;
    let rss = vm_hwm_mib(pid)?;
    let rss_ok = rss < 200.0;

    // 5. nginx with a static copy of one home page.
    let www = dir.join("www");
    std::fs::create_dir_all(&www)?;
    std::fs::write(www.join("index.html"), &home)?;
    let nport = free_port()?;
    let conf = dir.join("nginx.conf");
    std::fs::write(
        &conf,
        format!(
            "worker_processes 2;\ndaemon off;\npid {d}/nginx.pid;\nerror_log {d}/nginx-error.log;\n\
             events {{ worker_connections 1024; }}\n\
             http {{ access_log off; default_type text/html; \
             server {{ listen 127.0.0.1:{nport}; root {d}/www; location / {{ index index.html; }} }} }}\n",
            d = dir.display()
        ),
    )?;
    let nginx = Command::new("nginx").arg("-p").arg(&dir).arg("-c").arg(&conf).stderr(Stdio::null()).spawn()?;
    guard.0.push(nginx);
    wait_for(nport, "localhost", "/")?;
    let nginx_run = wrk(&home_lua, nport, 64)?;
    drop(guard);

    let load_after = uptime();
    let ratio = home_run.rps / nginx_run.rps;
    println!();
    println!("bench serve: uptime before the runs: {load_before}");
    println!("bench serve: uptime after the runs:  {load_after}");
    println!("bench serve: wrk -t2, {DURATION} per run, random tenant per request (Host header), 2-core machine");
    println!("{:<36} {:>10} {:>9} {:>9} {:>8}", "run", "req/s", "p50 ms", "p99 ms", "non-2xx");
    for (name, r) in [
        ("portal home page (64 conns)", &home_run),
        ("portal A-Z + service page (32 conns)", &az_run),
        ("portal search (16 conns)", &search_run),
        ("nginx static home page (64 conns)", &nginx_run),
    ] {
        println!("{name:<36} {:>10.0} {:>9.2} {:>9.2} {:>8}", r.rps, r.p50_ms, r.p99_ms, r.errors);
        if r.requests == 0 {
            bail!("{name}: no requests completed");
        }
    }
    println!("bench serve: home page throughput = {:.0}% of nginx static (target >= 50%)", ratio * 100.0);
    println!(
        "bench serve: search p99 = {:.2} ms (target < 20 ms): {}",
        search_run.p99_ms,
        if search_run.p99_ms < 20.0 { "met" } else { "missed" }
    );
    println!(
        "bench serve: server peak RSS (VmHWM) = {rss:.1} MiB with {} tenants (target < 200 MiB): {}",
        slugs.len(),
        if rss_ok { "met" } else { "missed" }
    );
    if home_run.errors + az_run.errors + search_run.errors > 0 {
        bail!("the portal answered with errors under load; see {}", dir.join("server.log").display());
    }
    if !reuse {
        psql(&admin, &format!("DROP DATABASE IF EXISTS {DB} WITH (FORCE);")).ok();
    }
    Ok(())
}

/// Steps 1–3: the 396 NRW communes as tenants, their schemas, the starter catalogue published.
fn set_up_tenants(bin: &Path, admin: &str, tenants: &Path, url: &str) -> Result<()> {
    // 1. The 396 communes of NRW as one group.
    let kreise = std::fs::read_to_string(root().join("data/kreise-de.csv"))?;
    let mut cmd = Command::new(bin);
    cmd.arg("--tenants").arg(tenants).args(["group", "new", GROUP, "--no-kreis-tenants", "-q"]);
    for line in kreise.lines().skip(1).filter(|l| l.starts_with("05")) {
        cmd.arg("--kreis").arg(line.split(',').next().unwrap_or_default());
    }
    crate::run(&mut cmd)?;
    let out = Command::new(bin).arg("--tenants").arg(tenants).args(["tenant", "list", "-o", "json"]).output()?;
    let list: serde_json::Value = serde_json::from_slice(&out.stdout).context("tenant list")?;
    let list = list.as_array().context("tenant list")?;
    let slugs: Vec<String> = list.iter().map(|t| t["slug"].as_str().unwrap_or_default().to_string()).collect();
    let schemas: Vec<String> = list.iter().map(|t| t["schema"].as_str().unwrap_or_default().to_string()).collect();

    // 2. Database: the group role, each tenant's schema and role (`db provision`) and its tables (`db migrate`),
    // by portalctl itself, so that the bench sets up exactly what an operator does.
    psql(admin, &format!("DROP DATABASE IF EXISTS {DB} WITH (FORCE); CREATE DATABASE {DB};"))?;
    let t = Instant::now();
    let credentials = tenants.with_file_name("db-credentials");
    for args in [
        vec!["db", "provision", "--group", GROUP, "-q", "--secrets-dir", credentials.to_str().context("path")?],
        vec!["db", "migrate", "--group", GROUP, "-q"],
    ] {
        crate::run(Command::new(bin).arg("--tenants").arg(tenants).args(&args).env("DATABASE_URL", url))?;
    }
    println!("bench serve: provisioned and migrated {} schemas in {:.1} s", schemas.len(), t.elapsed().as_secs_f64());

    // 3. The starter catalogue, published, in every tenant.
    let t = Instant::now();
    for slug in &slugs {
        for args in [
            vec!["content", "import", "--tenant", slug, "--starter", "-q"],
            vec!["content", "publish", "--tenant", slug, "--all", "-q"],
        ] {
            let out = Command::new(bin)
                .arg("--tenants")
                .arg(tenants)
                .args(&args)
                .env("PORTALCTL_DATABASE_URL", url)
                .output()?;
            if !out.status.success() {
                bail!("{args:?}: {}", String::from_utf8_lossy(&out.stderr));
            }
        }
    }
    println!("bench serve: starter catalogue imported and published in {:.1} s", t.elapsed().as_secs_f64());
    psql(url, "VACUUM ANALYZE;")?;
    Ok(())
}
