//! `portalctl audit` end to end: axe-core in headless Chromium against the real server. Bundled tenants in the local
//! mode (`up`) have no serious or critical violation; a violation seeded into a template (through `serve
//! --templates`) fails the audit with exit 1, naming rule, page and selector, and is recorded in `portalctl.audit`.
//! Runs always in CI (`CI=true`, where .ci/run installs Chromium and `npm ci --prefix tools/audit`); elsewhere it is
//! skipped, with a message, when Chromium or the audit tools are missing.

mod support;

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use support::TestEnv;

/// Chromium and the audit's npm packages, or `None` (skipped outside CI).
fn tools() -> Option<PathBuf> {
    let tools = support::repo_root().join("tools/audit");
    let chromium = Path::new("/usr/bin/chromium");
    let missing = if !chromium.exists() {
        Some("chromium is not installed (apt-get install chromium)")
    } else if !tools.join("node_modules/axe-core").is_dir() || !tools.join("node_modules/playwright-core").is_dir() {
        Some("the audit tools are not installed (npm ci --prefix tools/audit)")
    } else {
        None
    };
    match missing {
        None => Some(tools),
        Some(why) if std::env::var("CI").is_ok_and(|v| v == "true") => panic!("in CI: {why}; .ci/run installs it"),
        Some(why) => {
            eprintln!("skipped: {why} and this is not CI");
            None
        }
    }
}

fn json(out: &Output) -> serde_json::Value {
    serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
        panic!(
            "{e}\nstdout:\n{}\nstderr:\n{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        )
    })
}

/// A copy of the embedded template `name` with `insert` put before its first `<h1>`, in a templates directory of
/// `env` for `serve --templates`; returns that directory.
fn seed_template(env: &TestEnv, name: &str, insert: &str) -> PathBuf {
    let templates = env.dir.path().join("templates");
    std::fs::create_dir_all(&templates).unwrap();
    let page = std::fs::read_to_string(support::repo_root().join("templates/portal").join(name)).unwrap();
    let seeded = page.replacen("<h1>", &format!("{insert}\n<h1>"), 1);
    assert_ne!(seeded, page, "{name} has no <h1>");
    std::fs::write(templates.join(name), seeded).unwrap();
    templates
}

/// `portalctl audit` of `tenant` served at `address`, with the audit tools `tools`.
fn audit_at(env: &TestEnv, tools: &Path, address: &str, tenant: &str, extra: &[&str]) -> Output {
    env.portalctl()
        .args(["audit", "--portal-address", address, "--tenant", tenant])
        .args(extra)
        .env("PORTALCTL_AUDIT_TOOLS", tools)
        .output()
        .unwrap()
}

/// The bundled tenants, running in the local mode with the starter catalogue, audited: not one serious or critical
/// violation on any page of the sample (a Stadt, a Gemeinde, a Kreis, a Dachportal), the legal pages included.
#[test]
fn bundled_tenants_pass_the_audit() {
    let Some(tools) = tools() else { return };
    if support::admin_url().is_none() {
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    let state = tmp.path().join("state");
    let (port, ops_port, db_port) = (support::stable_port(), support::stable_port(), support::stable_port());
    let portalctl = |args: &[&str]| {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_portalctl"));
        cmd.arg("--tenants").arg(support::repo_root().join("tenants")).args(["--color", "never"]).args(args);
        cmd.env_remove("DATABASE_URL").env("PORTALCTL_AUDIT_TOOLS", &tools);
        cmd
    };
    let state_arg = state.to_str().unwrap();
    let up = portalctl(&["up", "--state-dir", state_arg, "--db-port", &db_port.to_string()])
        .args(["--port", &port.to_string(), "--ops-port", &ops_port.to_string(), "-q"])
        .output()
        .unwrap();
    let down = || {
        let _ = portalctl(&["down", "--state-dir", state_arg, "--db-port", &db_port.to_string()]).output();
    };
    if !up.status.success() {
        down();
        panic!("up failed:\n{}", String::from_utf8_lossy(&up.stderr));
    }
    let sample = ["espelkamp", "hiddenhausen", "kreis-lippe", "serviceportal-emscher-lippe"];
    let mut args = vec!["audit", "--state-dir", state_arg, "-o", "json"];
    for t in &sample {
        args.extend(["--tenant", t]);
    }
    let out = portalctl(&args).output().unwrap();
    down();
    let doc = json(&out);
    let tenants = doc["tenants"].as_array().unwrap();
    assert_eq!(tenants.len(), sample.len(), "{doc:#}");
    for t in tenants {
        let blocking: Vec<&serde_json::Value> = t["violations"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|v| v["impact"] == "serious" || v["impact"] == "critical")
            .collect();
        assert!(blocking.is_empty(), "{}: {blocking:#?}", t["tenant"]);
        let pages: Vec<&str> = t["pages"].as_array().unwrap().iter().map(|p| p["page"].as_str().unwrap()).collect();
        for page in ["home", "a-z", "service", "search", "login", "not-found", "legal"] {
            // The Dachportal has no services of its own (its search covers its members'): no service page.
            if page == "service" && t["tenant"] == "serviceportal-emscher-lippe" {
                continue;
            }
            assert!(pages.contains(&page), "{}: {page} not audited: {pages:?}", t["tenant"]);
        }
        assert_eq!(t["failedPages"], 0, "{t:#}");
    }
    assert_eq!(doc["passed"], true);
    assert_eq!(out.status.code(), Some(0), "{}", String::from_utf8_lossy(&out.stderr));
}

/// An image without alternative text seeded into the home page template: the audit fails (exit 1) naming the rule,
/// the page and the element, and records the result in `portalctl.audit`.
#[tokio::test(flavor = "multi_thread")]
async fn a_violation_seeded_into_a_template_fails_the_audit() {
    let Some(tools) = tools() else { return };
    let Some(env) = TestEnv::new(&["espelkamp"]).await else { return };
    let templates = seed_template(&env, "home.html", "<img id=\"seeded-image\" src=\"/static/portal.css\">");
    let server = env.start_server_with(&["--templates", templates.to_str().unwrap()], |c| c);
    let address = format!("127.0.0.1:{}", server.port);
    let audit = |extra: &[&str]| audit_at(&env, &tools, &address, "espelkamp", extra);

    let out = audit(&["-o", "json", "--database-url", &env.url]);
    assert_eq!(out.status.code(), Some(1), "{}", String::from_utf8_lossy(&out.stderr));
    let doc = json(&out);
    assert_eq!(doc["passed"], false);
    let t = &doc["tenants"][0];
    assert!(t["critical"].as_u64().unwrap() >= 1, "{t:#}");
    let seeded = t["violations"]
        .as_array()
        .unwrap()
        .iter()
        .find(|v| v["rule"] == "image-alt")
        .unwrap_or_else(|| panic!("no image-alt violation: {t:#}"));
    assert_eq!(seeded["impact"], "critical");
    assert_eq!(seeded["page"], "home");
    assert_eq!(seeded["path"], "/");
    assert_eq!(seeded["selectors"][0], "#seeded-image");
    // The other pages, from the embedded templates, are clean.
    assert!(
        t["violations"]
            .as_array()
            .unwrap()
            .iter()
            .all(|v| v["impact"] != "serious" && (v["impact"] != "critical" || v["path"] == "/")),
        "{t:#}"
    );

    // Recorded for `status`.
    let c = support::connect(&env.url).await;
    let row = c
        .query_one(
            "SELECT critical, findings::text FROM portalctl.audit WHERE tenant = 'espelkamp' ORDER BY audited_at DESC LIMIT 1",
            &[],
        )
        .await
        .unwrap();
    assert!(row.get::<_, i32>(0) >= 1);
    assert!(row.get::<_, String>(1).contains("image-alt"));

    // `status` reads the latest audit for its rung `compliant` and names the finding.
    let out = env
        .portalctl()
        .args(["status", "--tenant", "espelkamp", "--no-cluster", "--database-url", &env.url, "-o", "json"])
        .output()
        .unwrap();
    let doc = json(&out);
    let checks = &doc["tenants"][0]["checks"];
    assert!(checks["audit"]["critical"].as_u64().unwrap() >= 1, "{checks:#}");
    let blockers: Vec<&str> =
        checks["complianceBlockers"].as_array().unwrap().iter().map(|b| b.as_str().unwrap()).collect();
    assert!(
        blockers.iter().any(|b| b.starts_with("a11y: ") && b.ends_with("critical violations on / (image-alt)")),
        "{blockers:?}"
    );

    // The table names rule, page and selector too.
    let out = audit(&[]);
    assert_eq!(out.status.code(), Some(1));
    let text = String::from_utf8_lossy(&out.stdout);
    let line = text.lines().find(|l| l.contains("image-alt")).unwrap_or_else(|| panic!("{text}"));
    assert!(
        line.contains("espelkamp")
            && line.contains("critical")
            && line.contains(" / ")
            && line.contains("#seeded-image"),
        "{line}"
    );

    // The HTML report lists it too (exit 1 all the same), and stays valid with a table of violations.
    let dir = env.dir.path().join("report");
    std::fs::create_dir_all(&dir).unwrap();
    let file = dir.join("audit.html");
    let out = audit(&["-o", "html", "--out", file.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(1));
    let page = std::fs::read_to_string(&file).unwrap();
    assert!(page.contains("Nicht bestanden") && page.contains(">image-alt</a>") && page.contains("#seeded-image"));
    support::validate_html(&dir);
}

/// A page that moves on to another origin by itself — as the login page of the HTTP-POST binding posts its request to
/// the identity provider — is audited as the portal's page: the navigation away is not made. Seeded into the
/// not-found page: a form that submits itself to another origin, and an image without a text alternative that the
/// audit must find on that page.
#[tokio::test(flavor = "multi_thread")]
async fn a_page_that_posts_itself_elsewhere_is_audited_where_it_is() {
    let Some(tools) = tools() else { return };
    let Some(env) = TestEnv::new(&["kirchlengern"]).await else { return };
    let port = support::stable_port();
    let address = format!("127.0.0.1:{port}");
    let away = format!(
        "<img id=\"seeded-image\" src=\"/static/portal.css\">\n<form id=\"away\" method=\"post\" \
         action=\"http://{address}/\"></form><script>document.getElementById(\"away\").submit();</script>"
    );
    let templates = seed_template(&env, "not_found.html", &away);
    let _server = env.start_server_at(port, &["--templates", templates.to_str().unwrap()], |c| c);
    let out = audit_at(&env, &tools, &address, "kirchlengern", &["-o", "json"]);
    let doc = json(&out);
    let t = &doc["tenants"][0];
    assert!(
        t["violations"].as_array().unwrap().iter().any(|v| v["rule"] == "image-alt"
            && v["path"] == "/seite-gibt-es-nicht"
            && v["selectors"][0] == "#seeded-image"),
        "the not-found page was not audited as the portal's: {t:#}"
    );
    assert_eq!(out.status.code(), Some(1), "a critical violation fails the audit");
}

/// Without Chromium (or node, or the npm packages) the audit says what is missing and exits 3 before asking anything.
#[test]
fn missing_chromium_is_a_clear_error_with_exit_3() {
    let out = Command::new(env!("CARGO_BIN_EXE_portalctl"))
        .arg("--tenants")
        .arg(support::repo_root().join("tenants"))
        .args([
            "audit",
            "--tenant",
            "espelkamp",
            "--portal-address",
            "127.0.0.1:9",
            "--chromium",
            "/nonexistent/chromium",
        ])
        .env("NO_COLOR", "1")
        .env_remove("DATABASE_URL")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(3));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("Chromium not found at /nonexistent/chromium") && err.contains("--chromium"), "{err}");
    let out = Command::new(env!("CARGO_BIN_EXE_portalctl"))
        .arg("--tenants")
        .arg(support::repo_root().join("tenants"))
        .args(["audit", "--tenant", "espelkamp", "--portal-address", "127.0.0.1:9", "--node", "/nonexistent/node"])
        .env_remove("DATABASE_URL")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(3));
    assert!(String::from_utf8_lossy(&out.stderr).contains("node.js not found"));
}

/// Text over a background image, seeded into the home page template: axe-core cannot decide its contrast, so the check
/// needs review. It is listed per page with rule, impact and selector, apart from the violations, never fails the
/// audit, and is recorded with the run. The same run as an HTML report (`-o html --out`) passes the W3C Nu validator
/// (where installed; required in CI) and axe-core itself finds no violation in it.
#[tokio::test(flavor = "multi_thread")]
async fn undecided_checks_need_review_and_the_html_report_is_valid_and_accessible() {
    let Some(tools) = tools() else { return };
    let Some(env) = TestEnv::new(&["kirchlengern"]).await else { return };
    let hero = "<p id=\"seeded-hero\" style=\"background-image: url(/static/portal.css)\">Text über einem Bild</p>";
    let templates = seed_template(&env, "home.html", hero);
    let server = env.start_server_with(&["--templates", templates.to_str().unwrap()], |c| c);
    let address = format!("127.0.0.1:{}", server.port);
    let audit = |extra: &[&str]| audit_at(&env, &tools, &address, "kirchlengern", extra);

    let out = audit(&["-o", "json", "--database-url", &env.url]);
    let doc = json(&out);
    assert_eq!(out.status.code(), Some(0), "needs review never fails the audit: {doc:#}");
    let t = &doc["tenants"][0];
    let review = t["needsReview"].as_array().unwrap();
    let seeded = review
        .iter()
        .find(|v| v["rule"] == "color-contrast" && v["selectors"][0] == "#seeded-hero")
        .unwrap_or_else(|| panic!("no color-contrast to review on #seeded-hero: {t:#}"));
    assert_eq!((&seeded["page"], &seeded["path"], &seeded["impact"]), (&"home".into(), &"/".into(), &"serious".into()));
    assert!(seeded["helpUrl"].as_str().unwrap().starts_with("https://"), "{seeded:#}");
    assert!(
        t["violations"].as_array().unwrap().iter().all(|v| v["rule"] != "color-contrast" || v["path"] != "/"),
        "not a violation: {t:#}"
    );
    // Recorded with the run, apart from the violations.
    let c = support::connect(&env.url).await;
    let row = c
        .query_one(
            "SELECT (findings->'needsReview')::text, (findings->'violations')::text FROM portalctl.audit
              WHERE tenant = 'kirchlengern'",
            &[],
        )
        .await
        .unwrap();
    let (stored, violations): (String, String) = (row.get(0), row.get(1));
    assert!(stored.contains("#seeded-hero"), "{stored}");
    assert!(violations.starts_with('[') && !violations.contains("#seeded-hero"), "{violations}");
    // `status` counts them with the tenant's last audit; they do not block `compliant`.
    let out = env
        .portalctl()
        .args(["status", "--tenant", "kirchlengern", "--no-cluster", "--database-url", &env.url, "-o", "json"])
        .output()
        .unwrap();
    let checks = &json(&out)["tenants"][0]["checks"];
    assert!(checks["audit"]["needsReview"].as_u64().is_some_and(|n| n >= 1), "{checks:#}");
    let blockers = checks["complianceBlockers"].as_array().cloned().unwrap_or_default();
    assert!(blockers.iter().all(|b| !b.as_str().unwrap().starts_with("a11y")), "{blockers:?}");

    // The table counts it and lists it under "needs review".
    let out = audit(&[]);
    assert_eq!(out.status.code(), Some(0));
    let text = String::from_utf8_lossy(&out.stdout);
    let header = text.lines().next().unwrap();
    assert!(header.contains("REVIEW"), "{text}");
    let (_, below) = text.split_once("needs review").unwrap_or_else(|| panic!("{text}"));
    assert!(below.lines().any(|l| l.contains("color-contrast") && l.contains("#seeded-hero")), "{text}");

    // The HTML report: valid, and accessible by axe-core's own rules.
    let dir = env.dir.path().join("report");
    std::fs::create_dir_all(&dir).unwrap();
    let file = dir.join("audit.html");
    let out = audit(&["-o", "html", "--out", file.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(0), "{}", String::from_utf8_lossy(&out.stderr));
    assert!(out.stdout.is_empty(), "written to --out only");
    let page = std::fs::read_to_string(&file).unwrap();
    assert!(page.contains("#seeded-hero") && page.contains("Zu prüfen") && page.contains("Rechtliche Seiten"));
    assert!(page.contains("Sicherheits-Header"), "{page}");
    support::validate_html(&dir);
    let check = Command::new("node")
        .arg(tools.join("audit.mjs"))
        .arg("--check")
        .arg(&file)
        .current_dir(&tools)
        .output()
        .unwrap();
    assert!(check.status.success(), "{}", String::from_utf8_lossy(&check.stderr));
    let checked = json(&check);
    assert_eq!(checked["files"][0]["violations"], serde_json::json!([]), "axe on the report: {checked:#}");

    // The screenshots of docs/screenshots/ are taken this way: a small PNG with a palette.
    let shot = env.dir.path().join("audit-report.png");
    let out = Command::new("node")
        .arg(tools.join("audit.mjs"))
        .arg("--screenshot")
        .arg(format!("{}={}#legal-kirchlengern", shot.display(), file.display()))
        .current_dir(&tools)
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let png = std::fs::read(&shot).unwrap();
    assert!(png.starts_with(b"\x89PNG") && png.len() < 150_000, "{} bytes", png.len());
    assert_eq!(png[25], 3, "colour type 3: a palette");
}

/// Each run is recorded and, in the same transaction, all but the latest `--keep` runs of each audited tenant are
/// deleted: five runs with keep 3 leave the newest three; another tenant's rows stay; `status` reads the newest.
#[tokio::test(flavor = "multi_thread")]
async fn old_audit_runs_are_pruned_and_the_newest_kept() {
    use portalctl::audit::{record, TenantAudit};
    let Some(env) = TestEnv::new(&["detmold", "espelkamp"]).await else { return };
    let db = portalctl::db::connect::ConnectOptions::new(env.url.clone());
    let run = |tenant: &str, serious: u32| TenantAudit {
        tenant: tenant.into(),
        critical: 0,
        serious,
        moderate: 0,
        minor: 0,
        failed_pages: 0,
        pages: Vec::new(),
        violations: Vec::new(),
        needs_review: Vec::new(),
        legal: Vec::new(),
    };
    record::record(&db, &[run("espelkamp", 7)], 3).await.unwrap();
    for n in 1..=5 {
        record::record(&db, &[run("detmold", n)], 3).await.unwrap();
    }
    let c = support::connect(&env.url).await;
    let kept: Vec<i32> = c
        .query("SELECT serious FROM portalctl.audit WHERE tenant = 'detmold' ORDER BY audited_at", &[])
        .await
        .unwrap()
        .iter()
        .map(|r| r.get(0))
        .collect();
    assert_eq!(kept, [3, 4, 5]);
    let other: i64 =
        c.query_one("SELECT count(*) FROM portalctl.audit WHERE tenant = 'espelkamp'", &[]).await.unwrap().get(0);
    assert_eq!(other, 1, "another tenant's runs are not touched");
    let latest = record::latest(&c, &["detmold", "espelkamp"]).await.unwrap();
    assert_eq!((latest["detmold"].serious, latest["espelkamp"].serious), (5, 7));
    // The default keeps ten.
    for n in 6..=20 {
        record::record(&db, &[run("detmold", n)], record::DEFAULT_KEEP).await.unwrap();
    }
    let count: i64 =
        c.query_one("SELECT count(*) FROM portalctl.audit WHERE tenant = 'detmold'", &[]).await.unwrap().get(0);
    assert_eq!(count, i64::from(record::DEFAULT_KEEP));
    assert_eq!(record::latest(&c, &["detmold"]).await.unwrap()["detmold"].serious, 20);
}
