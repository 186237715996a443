//! The real `portalctl serve` process: tenants added, changed and removed while it runs
//! (no restart), an invalid edit keeping that tenant on its last good state, graceful shutdown on SIGTERM.

mod support;

use std::time::{Duration, Instant};
use support::{TestEnv, CONTENT_A, CONTENT_B};

/// Poll until `check` holds (discovery polls every second).
fn eventually(what: &str, mut check: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(15);
    while Instant::now() < deadline {
        if check() {
            return;
        }
        std::thread::sleep(Duration::from_millis(200));
    }
    panic!("timed out waiting until {what}");
}

#[tokio::test(flavor = "multi_thread")]
async fn tenants_change_without_restart() {
    let Some(env) = TestEnv::new(&["espelkamp", "detmold", "kirchlengern"]).await else { return };
    env.import("espelkamp", CONTENT_A).await;
    env.import("detmold", CONTENT_B).await;
    let k = env.tenant("kirchlengern").clone();
    let k_file = env.group_dir().join("kirchlengern.yaml");
    std::fs::remove_file(&k_file).unwrap();

    let mut server = env.start_server();
    let a = env.tenant("espelkamp").hostnames[0].clone();
    let b = env.tenant("detmold").hostnames[1].clone();
    assert_eq!(server.get(&a, "/").status, 200);
    assert_eq!(server.get(&b, "/").status, 200);
    let r = server.get(&k.hostnames[0], "/");
    assert_eq!(r.status, 404);
    assert!(!r.body.contains("Kirchlengern"));

    // Added.
    env.write_tenant(&k, "#4a148c");
    eventually("the new tenant is served", || server.get(&k.hostnames[0], "/").status == 200);
    assert!(server.get(&k.hostnames[1], "/").body.contains("Gemeinde Kirchlengern"));

    // Changed: a new theme colour.
    let theme = |server: &support::Server| server.get(&a, "/static/theme.css").body;
    assert!(theme(&server).contains("--primary: #004b87"));
    let page = server.get(&a, "/").body;
    env.write_tenant(env.tenant("espelkamp"), "#00695c");
    eventually("the changed theme is served", || theme(&server).contains("--primary: #00695c"));
    assert_ne!(server.get(&a, "/").body, page, "the page links the changed theme under a new URL");

    // Removed.
    std::fs::remove_file(env.group_dir().join("detmold.yaml")).unwrap();
    eventually("the removed tenant is gone", || server.get(&b, "/").status == 404);
    let r = server.get(&b, "/");
    assert!(!r.body.contains("Detmold") && !r.body.contains("Espelkamp"), "{}", r.body);

    // Invalid edit: logged, last good state kept.
    std::fs::write(env.group_dir().join("espelkamp.yaml"), "kind: Tenant\nspec: [\n").unwrap();
    eventually("the error is logged", || server.log_text().contains("invalid tenant file"));
    assert!(server.log_text().contains("espelkamp.yaml"), "the log names the broken file");
    assert_eq!(server.get(&a, "/").status, 200);
    assert!(theme(&server).contains("--primary: #00695c"));
    assert_eq!(server.get(&k.hostnames[0], "/").status, 200);
    let m = server.get_ops("localhost", "/metrics").body;
    assert!(m.contains("portal_tenants_loaded 2"), "{m}");

    // Graceful shutdown.
    let status = server.terminate();
    assert!(status.success(), "exit status {status}");
    let log = server.log_text();
    assert!(log.contains("SIGTERM received") && log.contains("portal server stopped"), "{log}");
}

#[tokio::test(flavor = "multi_thread")]
async fn json_logs_and_request_ids() {
    let Some(env) = TestEnv::new(&["espelkamp"]).await else { return };
    let (port, ops_port) = (support::free_port(), support::free_port());
    let log = env.dir.path().join("json.log");
    let mut child = env
        .portalctl()
        .args(["serve", "--listen", &format!("127.0.0.1:{port}"), "--log-format", "json"])
        .args(["--ops-listen", &format!("127.0.0.1:{ops_port}")])
        .env("DATABASE_URL", &env.portal_url)
        .stderr(std::fs::File::create(&log).unwrap())
        .spawn()
        .unwrap();
    eventually("the server answers", || support::get(ops_port, "localhost", "/healthz").is_ok_and(|r| r.status == 200));
    let r = support::get(port, &env.tenant("espelkamp").hostnames[0], "/").unwrap();
    assert!(r.headers.to_ascii_lowercase().contains("x-request-id: "), "{}", r.headers);
    let _ = child.kill();
    let _ = child.wait();
    let text = std::fs::read_to_string(&log).unwrap();
    let first = text.lines().next().expect("a log line");
    let v: serde_json::Value = serde_json::from_str(first).unwrap_or_else(|e| panic!("{e}: {first}"));
    assert_eq!(v["level"], "INFO");
    assert!(text.contains("\"tenants\":1"), "{text}");
    assert!(!text.contains(&env.portal_url), "database URL logged");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_broken_tenant_file_at_start_keeps_only_that_tenant_offline() {
    let Some(env) = TestEnv::new(&["espelkamp", "detmold"]).await else { return };
    std::fs::write(env.group_dir().join("detmold.yaml"), "kind: Tenant\nspec: [\n").unwrap();
    let mut server = env.start_server();
    assert_eq!(server.get(&env.tenant("espelkamp").hostnames[0], "/").status, 200);
    assert_eq!(server.get(&env.tenant("detmold").hostnames[0], "/").status, 404);
    let log = server.log_text();
    assert!(log.contains("invalid tenant file") && log.contains("detmold.yaml") && log.contains("not served"), "{log}");
    assert!(server.terminate().success());
}
