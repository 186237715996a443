//! The local all-in-one mode end to end: the real binary's `up` starts a private PostgreSQL
//! and the portal server in a temporary state directory with the bundled tenants; pages and the
//! identity endpoint answer per tenant on `<slug>.localhost` and on the real hostnames; a second
//! `up` changes nothing; `down` stops both; `up` again reuses the data.

mod support;

use std::io::{Read as _, Write as _};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::Duration;
use support::workdir::copy_dir;

struct Local {
    _tmp: tempfile::TempDir,
    tenants: PathBuf,
    state: PathBuf,
    port: u16,
    ops_port: u16,
    db_port: u16,
}

impl Local {
    fn run(&self, args: &[&str]) -> Output {
        let port = self.port.to_string();
        let db_port = self.db_port.to_string();
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_portalctl"));
        cmd.arg("--tenants").arg(&self.tenants).arg("--color").arg("never").args(args);
        cmd.arg("--state-dir").arg(&self.state).args(["--db-port", &db_port]);
        if args.contains(&"up") {
            cmd.args(["--port", &port, "--ops-port", &self.ops_port.to_string()]);
        }
        // The portal's database URL must come from `up` itself, not the environment.
        cmd.env_remove("DATABASE_URL");
        cmd.output().unwrap()
    }

    /// A command without the local-mode options.
    fn run_plain(&self, args: &[&str]) -> Output {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_portalctl"));
        cmd.arg("--tenants").arg(&self.tenants).arg("--color").arg("never").args(args);
        cmd.output().unwrap()
    }

    fn up(&self) -> serde_json::Value {
        let out = self.run(&["-o", "json", "up"]);
        let stderr = String::from_utf8_lossy(&out.stderr);
        let serve_log = std::fs::read_to_string(self.state.join("serve.log")).unwrap_or_default();
        assert!(out.status.success(), "up failed: {stderr}\nserve.log:\n{serve_log}");
        serde_json::from_slice(&out.stdout).unwrap_or_else(|e| panic!("up -o json: {e}; stderr: {stderr}"))
    }

    fn get(&self, host: &str, path: &str) -> (u16, String) {
        get(self.port, host, path)
    }

    /// `portalctl status` run where `up` ran (the state directory is `.portalctl` there), with
    /// nothing saying where to look.
    fn status(&self, args: &[&str]) -> Output {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_portalctl"));
        cmd.arg("--tenants").arg(&self.tenants).arg("--color").arg("never").args(args).arg("status");
        cmd.current_dir(self.state.parent().unwrap());
        cmd.env_remove("DATABASE_URL").env_remove("KUBECONFIG");
        cmd.output().unwrap()
    }

    /// `portalctl ARGS` run where `up` ran, with no database, kubeconfig or home directory.
    fn run_here(&self, args: &[&str]) -> Output {
        let here = self.state.parent().unwrap();
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_portalctl"));
        cmd.arg("--tenants").arg(&self.tenants).arg("--color").arg("never").args(args).current_dir(here);
        cmd.env_remove("DATABASE_URL").env_remove("KUBECONFIG").env("HOME", here);
        cmd.output().unwrap()
    }

    /// GET on the operations listener.
    fn get_ops(&self, host: &str, path: &str) -> (u16, String) {
        get(self.ops_port, host, path)
    }
}

fn get(port: u16, host: &str, path: &str) -> (u16, String) {
    let mut s = TcpStream::connect(("127.0.0.1", port)).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    write!(s, "GET {path} HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\r\n").unwrap();
    let mut buf = Vec::new();
    s.read_to_end(&mut buf).unwrap();
    let text = String::from_utf8_lossy(&buf).to_string();
    let status = text.split_whitespace().nth(1).and_then(|c| c.parse().ok()).unwrap_or(0);
    (status, text)
}

impl Drop for Local {
    fn drop(&mut self) {
        let _ = self.run(&["down"]);
    }
}

fn closed(port: u16) -> bool {
    TcpStream::connect_timeout(&([127, 0, 0, 1], port).into(), Duration::from_millis(500)).is_err()
}

/// A local mode in a temporary directory with a copy of the bundled tenants, or `None` (test
/// skipped) where no PostgreSQL server binaries are installed outside CI.
fn local_mode() -> Option<Local> {
    if let Err(e) = portalctl::local::find_bindir() {
        if std::env::var("CI").as_deref() == Ok("true") {
            panic!("PostgreSQL server binaries are required in CI: {e}");
        }
        eprintln!("skipping the local mode test: {e}");
        return None;
    }
    let tmp = tempfile::tempdir().unwrap();
    // As root, PostgreSQL runs as `postgres`, which must be able to traverse to the state directory.
    {
        use std::os::unix::fs::PermissionsExt as _;
        std::fs::set_permissions(tmp.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
    }
    let tenants = tmp.path().join("tenants");
    copy_dir(&Path::new(env!("CARGO_MANIFEST_DIR")).join("tenants"), &tenants);
    Some(Local {
        tenants,
        state: tmp.path().join(".portalctl"),
        port: support::stable_port(),
        ops_port: support::stable_port(),
        db_port: support::stable_port(),
        _tmp: tmp,
    })
}

#[test]
fn up_serves_every_tenant_locally_and_down_stops_it() {
    let Some(local) = local_mode() else { return };
    let port = local.port;

    let first = local.up();
    assert_eq!(first["alreadyRunning"], false);
    let rows = first["tenants"].as_array().unwrap();
    assert!(rows.len() >= 50, "all bundled tenants: {}", rows.len());
    assert!(rows.iter().all(|r| r["serving"] == true), "every tenant serves: {first}");
    // Every tenant but the Dachportals (no services of their own) got the starter catalogue.
    let with_services = rows.iter().filter(|r| r["services"].as_u64().unwrap_or(0) > 0).count();
    assert!(with_services < rows.len(), "the Dachportals have no services of their own");
    assert_eq!(first["catalogueImported"].as_u64().unwrap() as usize, with_services);
    let detmold = rows.iter().find(|r| r["tenant"] == "detmold").expect("detmold is bundled");
    assert_eq!(detmold["url"], format!("http://detmold.localhost:{port}/"));
    let services = detmold["services"].as_u64().unwrap();
    assert!(services >= 40, "starter catalogue published: {services}");

    // Pages by local alias and by real hostname, each naming its own commune only.
    let (s, d) = local.get(&format!("detmold.localhost:{port}"), "/");
    assert_eq!(s, 200, "{d}");
    assert!(d.contains("Detmold") && !d.contains("Espelkamp"));
    let (s, e) = local.get("service.espelkamp.de", "/");
    assert_eq!(s, 200, "{e}");
    assert!(e.contains("Espelkamp") && !e.contains("Detmold"));
    let (_, id) = local.get_ops("localhost", &format!("/.well-known/portalctl/identity?host=detmold.localhost:{port}"));
    assert!(id.contains("\"tenant\":\"detmold\""), "{id}");
    let (_, id) = local.get_ops("service.espelkamp.de", "/.well-known/portalctl/identity");
    assert!(id.contains("\"tenant\":\"espelkamp\""), "{id}");
    // The public listener has no operations endpoints.
    for path in ["/.well-known/portalctl/identity", "/metrics", "/readyz"] {
        let (s, body) = local.get("service.espelkamp.de", path);
        assert_eq!(s, 404, "{path}");
        assert!(!body.contains("\"tenant\"") && !body.contains("portal_requests_total"), "{path}: {body}");
    }
    let (s, _) = local.get(&format!("nobody.localhost:{port}"), "/");
    assert_eq!(s, 404);

    // `status` where `up` ran finds the local mode: every tenant running locally, at the right phase.
    let out = local.status(&["-o", "json"]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    let doc: serde_json::Value =
        serde_json::from_slice(&out.stdout).unwrap_or_else(|e| panic!("status -o json: {e}; stderr: {stderr}"));
    assert_eq!(doc["mode"], "local", "{doc}");
    assert_eq!(doc["problems"], serde_json::json!([]), "{doc}");
    let statuses = doc["tenants"].as_array().unwrap();
    assert_eq!(statuses.len(), rows.len());
    let catalog = portalctl::tenant::load_dir(&local.tenants).unwrap().catalog;
    for s in statuses {
        let t = catalog.tenant(s["tenant"].as_str().unwrap()).unwrap();
        // The bundled tenants' legal pages are scaffolded placeholders and nothing was audited: none may be
        // published, and status says why.
        assert!(!t.published, "{}", t.slug);
        assert_eq!(s["mode"], "local");
        assert_eq!(s["phase"], "content-ready", "{s}");
        let stuck = s["stuck"].as_str().unwrap_or_default();
        assert!(stuck.contains("placeholder") && stuck.ends_with("a11y: no accessibility audit yet"), "{s}");
        assert_eq!(s["unknown"], false, "{s}");
        assert_eq!(s["checks"]["deployed"]["result"], "pass", "running locally: {s}");
    }
    let published = catalog.tenants.iter().filter(|t| t.published).count();
    let total: usize =
        doc["groups"].as_array().unwrap().iter().map(|g| g["total"]["installed"].as_u64().unwrap() as usize).sum();
    assert_eq!(total, rows.len(), "every tenant counted as running locally");
    // Everything live would exit 0; some tenants are not published yet.
    assert_eq!(out.status.code(), Some(if published == rows.len() { 0 } else { 1 }), "{stderr}");
    let out = local.status(&[]);
    let table = String::from_utf8_lossy(&out.stdout);
    assert!(table.contains("running locally") && table.contains("published"), "{table}");
    assert!(!table.contains("not asked"), "{table}");

    // `rollout` has no cluster to go to here: it says that the local mode runs the tenants and that `up`
    // brings it up to date, once, with exit 3 (a cluster is what is missing), and changes nothing.
    for args in [&["rollout", "-g", "krz"][..], &["rollout", "pause", "-g", "krz"], &["rollout", "resume", "-g", "krz"]]
    {
        let out = local.run_here(args);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(3), "{args:?}: {stderr}");
        assert_eq!(stderr.matches("error:").count(), 1, "one error: {stderr}");
        assert!(stderr.contains("local mode (.portalctl"), "{stderr}");
        assert!(stderr.contains("run `portalctl up` again") && stderr.contains("--kubeconfig"), "{stderr}");
        assert!(!stderr.contains("--database-url"), "the database is not the problem: {stderr}");
    }

    // The report of the local mode: German, a date for people, the chart from the history, valid HTML.
    let report = local.state.parent().unwrap().join("report").join("status.html");
    std::fs::create_dir_all(report.parent().unwrap()).unwrap();
    let out = local.status(&["-o", "html"]);
    let html = String::from_utf8(out.stdout).unwrap();
    std::fs::write(&report, &html).unwrap();
    assert!(html.contains("Portalen laufen lokal") && html.contains(" Uhr</time>"), "{html}");
    assert!(!html.contains("Noch keine Phasenhistorie") && html.contains("<path"), "chart drawn from the history");
    assert!(!html.contains(">deployed<") && !html.contains(">live<"), "phases in German");
    support::validate_html(report.parent().unwrap());

    // A second `up` while running changes nothing and reports the same server.
    let second = local.up();
    assert_eq!(second["alreadyRunning"], true);
    assert_eq!(second["pid"], first["pid"]);
    assert_eq!(second["tenants"], first["tenants"]);

    // `down` stops the server and PostgreSQL; a second `down` says nothing runs.
    let out = local.run(&["down"]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert!(closed(port), "portal server still listening");
    assert!(closed(local.ops_port), "operations listener still listening");
    assert!(closed(local.db_port), "PostgreSQL still listening");
    let out = local.run(&["down"]);
    assert!(out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("nothing is running"));

    // `status` of the stopped local mode: the database is unreachable, said once, exit 3, and
    // the standing of the tenants is unknown, not 0.
    let out = local.status(&[]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    let table = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(3), "{stderr}");
    assert_eq!(stderr.matches("error: database:").count(), 1, "one error for one cause: {stderr}");
    assert!(stderr.contains("portalctl up"), "names the fix: {stderr}");
    assert!(table.contains("state of all") && table.contains("unknown"), "{table}");
    assert!(!table.contains("0 of "), "no false 0: {table}");

    // `up` again reuses the data: nothing provisioned anew, no catalogue imported, content there.
    let third = local.up();
    assert_eq!(third["alreadyRunning"], false);
    assert_eq!(third["provisionedChanged"], 0, "{third}");
    assert_eq!(third["catalogueImported"], 0);
    assert_eq!(third["tenants"], first["tenants"]);
    assert_ne!(third["pid"], first["pid"]);
    let (s, d) = local.get(&format!("detmold.localhost:{port}"), "/leistungen");
    assert_eq!(s, 200);
    assert!(d.contains("Detmold"));
}

/// Onboarding while `up` runs: the running server sees the new tenant files at once, but serves
/// none of them before its database exists (404, never 500); a second `up` provisions them and
/// returns once the running server serves every tenant.
#[test]
fn a_group_onboarded_while_up_runs_is_served_after_up_and_never_answers_500() {
    use std::sync::atomic::{AtomicBool, Ordering};
    use std::sync::{Arc, Mutex};
    let Some(local) = local_mode() else { return };
    let first = local.up();
    let before = first["tenants"].as_array().unwrap().len();

    // Visitors of the new portals, from before the files exist until the end.
    let stop = Arc::new(AtomicBool::new(false));
    let seen: Arc<Mutex<Vec<u16>>> = Arc::default();
    let port = local.port;
    let visitors: Vec<_> = ["brakel", "hoexter", "kreis-hoexter"]
        .into_iter()
        .map(|slug| {
            let (stop, seen) = (stop.clone(), seen.clone());
            std::thread::spawn(move || {
                while !stop.load(Ordering::Relaxed) {
                    let (status, _) = get(port, &format!("{slug}.localhost:{port}"), "/");
                    seen.lock().unwrap().push(status);
                    let (status, _) = get(port, &format!("{slug}.localhost:{port}"), "/leistungen");
                    seen.lock().unwrap().push(status);
                }
            })
        })
        .collect();

    let out = local.run_plain(&["group", "new", "hoexter", "--kreis", "05762", "--pilot", "brakel"]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    // The running server has seen the new files and holds them back until their databases exist.
    let log = local.state.join("serve.log");
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    while !std::fs::read_to_string(&log).unwrap_or_default().contains("tenant not served yet") {
        assert!(std::time::Instant::now() < deadline, "the server never saw the new tenants");
        std::thread::sleep(Duration::from_millis(100));
    }
    let (status, _) = local.get(&format!("brakel.localhost:{port}"), "/");
    assert_eq!(status, 404, "not served before its database exists");

    // `up` again: converges instead of failing.
    let second = local.up();
    assert_eq!(second["alreadyRunning"], true);
    assert_eq!(second["pid"], first["pid"]);
    let rows = second["tenants"].as_array().unwrap();
    assert!(rows.len() > before, "the new group is part of the local mode: {} > {before}", rows.len());
    assert!(rows.iter().all(|r| r["serving"] == true), "every tenant served: {second}");
    assert!(second["provisionedChanged"].as_u64().unwrap() as usize >= rows.len() - before);
    let brakel = rows.iter().find(|r| r["tenant"] == "brakel").expect("brakel onboarded");
    assert!(brakel["services"].as_u64().unwrap() >= 40, "starter catalogue: {brakel}");
    let (status, page) = local.get(&format!("brakel.localhost:{port}"), "/");
    assert_eq!(status, 200);
    assert!(page.contains("Brakel"));

    stop.store(true, Ordering::Relaxed);
    for v in visitors {
        v.join().unwrap();
    }
    let seen = seen.lock().unwrap();
    assert!(seen.iter().all(|s| *s == 200 || *s == 404), "only 404 before and 200 after: {seen:?}");
    assert!(seen.contains(&404) && seen.contains(&200), "both phases observed");
    let log = std::fs::read_to_string(&log).unwrap();
    assert!(!log.contains('\u{1b}'), "no colour codes in the log file");
}
