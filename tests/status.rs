//! `portalctl status` end to end against a real PostgreSQL and a real `portalctl serve`, in the local mode (the
//! state `up` records): the rung `compliant` stands between content-ready and live and names what blocks it.

mod support;

use support::{TestEnv, CONTENT_A, CONTENT_B};

#[test]
fn compliant_gates_live_and_names_what_blocks_it() {
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    let Some(env) = rt.block_on(TestEnv::new(&["espelkamp", "detmold"])) else { return };
    rt.block_on(env.import("espelkamp", CONTENT_A));
    rt.block_on(env.import("detmold", CONTENT_B));
    // One published service is content enough here.
    let group = env.group_dir().join("group.yaml");
    let text =
        std::fs::read_to_string(&group).unwrap().replace("  defaults:\n", "  defaults:\n    contentThreshold: 1\n");
    std::fs::write(&group, text).unwrap();
    // Detmold: a draft without its Impressum. Espelkamp: published, legal pages complete.
    let file = env.group_dir().join("detmold.yaml");
    let text = std::fs::read_to_string(&file).unwrap();
    let (start, end) = (text.find("    imprint:\n").unwrap(), text.find("    privacy:\n").unwrap());
    let text = format!("{}{}", &text[..start], &text[end..]).replace("published: true", "published: false");
    std::fs::write(&file, text).unwrap();

    let server = env.start_server();
    // The local mode as `up` records it: its ports and its database.
    let state = env.dir.path().join(".portalctl");
    portalctl::local::LocalState { port: server.port, ops_port: server.ops_port, db_port: None }
        .write(&state, Some(&env.url))
        .unwrap();
    let status = |format: &str| {
        env.portalctl()
            .env_remove("PORTALCTL_DATABASE_URL")
            .args(["status", "--state-dir"])
            .arg(&state)
            .args(["-o", format])
            .output()
            .unwrap()
    };

    let out = status("json");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "not live: {stderr}");
    let doc: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap_or_else(|e| panic!("{e}: {stderr}"));
    assert_eq!(doc["problems"], serde_json::json!([]), "{doc}");
    let of = |slug: &str| doc["tenants"].as_array().unwrap().iter().find(|t| t["tenant"] == slug).unwrap().clone();
    // Published and complete, but never audited: it stays content-ready, not live.
    let espelkamp = of("espelkamp");
    assert_eq!(espelkamp["phase"], "content-ready", "{espelkamp}");
    assert_eq!(espelkamp["checks"]["contentReady"]["result"], "pass");
    assert_eq!(espelkamp["checks"]["live"]["result"], "pass", "published, yet not live: {espelkamp}");
    assert_eq!(
        espelkamp["checks"]["compliant"],
        serde_json::json!({"result": "fail", "detail": "a11y: no accessibility audit yet"})
    );
    assert_eq!(espelkamp["stuck"], "a11y: no accessibility audit yet");
    assert!(espelkamp["checks"]["lastPublishedAt"].as_str().is_some_and(|t| t.ends_with('Z')), "{espelkamp}");
    let detmold = of("detmold");
    assert_eq!(detmold["phase"], "content-ready", "{detmold}");
    assert_eq!(detmold["stuck"], "Impressum missing; a11y: no accessibility audit yet");
    assert_eq!(
        detmold["checks"]["complianceBlockers"],
        serde_json::json!(["Impressum missing", "a11y: no accessibility audit yet"])
    );
    assert_eq!(doc["groups"][0]["total"]["online"], 0);

    let table = String::from_utf8(status("table").stdout).unwrap();
    let row = table.lines().find(|l| l.contains("detmold")).unwrap_or_else(|| panic!("{table}"));
    assert!(row.contains("content-ready") && row.contains("Impressum missing"), "{table}");

    let html = String::from_utf8(status("html").stdout).unwrap();
    assert!(html.contains("Impressum fehlt; Barrierefreiheit: noch keine Prüfung"), "{html}");
}
