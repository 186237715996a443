//! Error messages that name the cause and the fix, one snapshot each, produced by the real binary
//! (paths and ports that change from run to run are replaced by placeholders).

mod support;

use std::net::TcpListener;
use support::repo_root;
use support::workdir::Workdir;

/// stderr with the temporary directory and `port` replaced.
fn normalized(env: &Workdir, stderr: &str, port: Option<u16>) -> String {
    let mut s = stderr.replace(&env.path().display().to_string(), "[DIR]");
    if let Some(p) = port {
        s = s.replace(&p.to_string(), "[PORT]");
    }
    s
}

#[test]
fn tenants_directory_missing_says_where_it_looked_and_what_to_pass() {
    let env = Workdir::new();
    let run = env.run(&["validate"]);
    assert_ne!(run.code, 0);
    insta::assert_snapshot!(normalized(&env, &run.stderr, None));
}

#[test]
fn low_contrast_of_light_text_says_to_lighten_the_text() {
    let env = Workdir::with_tenants(&repo_root().join("tenants"));
    let file = "tenants/heinsberg/gangelt.yaml";
    // White text (the group's onPrimaryColor) on yellow: lightening the yellow would make it worse.
    env.write(file, &env.read(file).replace("primaryColor: \"#8a1c1c\"", "primaryColor: \"#f5c400\""));
    let run = env.run(&["-o", "json", "validate"]);
    run.code(1);
    let doc: serde_json::Value = serde_json::from_str(&run.stdout).unwrap();
    let finding = doc["diagnostics"]
        .as_array()
        .unwrap()
        .iter()
        .find(|d| d["code"] == "contrast")
        .unwrap_or_else(|| panic!("a contrast finding: {doc}"));
    insta::assert_snapshot!(format!("{}\nhint: {}", finding["message"], finding["hint"]));
}

#[test]
fn a_database_url_of_another_kind_names_postgresql() {
    let env = Workdir::with_tenants(&repo_root().join("tenants"));
    let run = env.run(&["db", "status", "--group", "krz", "--database-url", "mysql://root@127.0.0.1:3306/portal"]);
    assert_ne!(run.code, 0);
    insta::assert_snapshot!(normalized(&env, &run.stderr, None));
}

#[test]
fn serve_on_a_busy_port_says_it_once_with_the_option_to_change() {
    let env = Workdir::with_tenants(&repo_root().join("tenants"));
    let busy = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = busy.local_addr().unwrap().port();
    let listen = format!("127.0.0.1:{port}");
    let run = env.run(&["serve", "--listen", &listen, "--database-url", "postgres://portal@127.0.0.1:1/portal"]);
    assert_ne!(run.code, 0);
    let last = run.stderr.lines().last().unwrap_or_default().to_string();
    assert_eq!(last.matches("in use").count(), 1, "the cause once: {last}");
    insta::assert_snapshot!(normalized(&env, &last, Some(port)));
}

#[test]
fn the_private_postgresql_port_in_use_names_db_port() {
    insta::assert_snapshot!(portalctl::local::Error::PortInUse { port: 54330 }.to_string());
    let start = portalctl::local::Error::Start {
        port: 54330,
        log: ".portalctl/postgres/server.log".into(),
        detail: "pg_ctl: could not start server".into(),
    };
    insta::assert_snapshot!(start.to_string());
}

#[test]
fn a_missing_group_file_is_one_error_not_one_per_tenant() {
    let env = Workdir::with_tenants(&repo_root().join("tenants"));
    std::fs::remove_file(env.path().join("tenants/heinsberg/group.yaml")).unwrap();
    let run = env.run(&["validate"]);
    run.code(1);
    let errors: Vec<&str> = run.stderr.lines().filter(|l| l.contains("error[")).collect();
    assert_eq!(errors.len(), 1, "{}", run.stderr);
    insta::assert_snapshot!(errors[0]);
}

#[test]
fn tenant_new_for_an_ags_that_is_already_a_tenant_names_the_tenant() {
    let env = Workdir::with_tenants(&repo_root().join("tenants"));
    let run = env.run(&["tenant", "new", "--ags", "05370008", "--group", "heinsberg"]);
    run.code(1);
    assert!(!run.stderr.contains("note:"), "no slug note for a tenant that will not be written: {}", run.stderr);
    assert!(!env.path().join("tenants/heinsberg/gangelt-heinsberg.yaml").exists());
    insta::assert_snapshot!(run.stderr.trim());
}

#[test]
fn group_new_leaves_out_a_commune_of_another_group_and_the_dry_run_agrees() {
    let env = Workdir::with_tenants(&repo_root().join("tenants"));
    env.run(&["group", "new", "hoexter", "--kreis", "05762"]).ok();
    env.run(&["tenant", "new", "--ags", "05774032", "--group", "hoexter"]).ok();
    let dry = env.run(&["group", "new", "paderborn", "--kreis", "05774", "--dry-run"]);
    dry.code(0);
    let run = env.run(&["group", "new", "paderborn", "--kreis", "05774"]);
    run.code(0);
    let notes: Vec<&str> = run.stderr.lines().filter(|l| l.starts_with("note:")).collect();
    assert_eq!(notes, dry.stderr.lines().filter(|l| l.starts_with("note:")).collect::<Vec<_>>(), "dry run agrees");
    assert!(!run.stderr.contains("--slug"), "group new has no --slug: {}", run.stderr);
    assert!(env.path().join("tenants/paderborn/salzkotten.yaml").exists());
    insta::assert_snapshot!(notes.join("\n"));
}

#[test]
fn a_published_tenant_without_an_impressum_or_with_a_placeholder_fails_validate() {
    let env = Workdir::with_tenants(&repo_root().join("tenants"));
    let file = "tenants/heinsberg/erkelenz.yaml";
    let draft = env.read(file);
    // A draft with placeholders: warnings only, exit 0.
    let run = env.run(&["validate"]);
    run.code(0);
    assert!(
        run.stderr.contains(
            "tenants/heinsberg/erkelenz.yaml: warning[legal-placeholder] spec.legal.imprint.address: placeholder; \
             needed before publishing (tenant erkelenz)"
        ),
        "{}",
        run.stderr
    );
    // Published, with its Impressum removed and the placeholders left: errors naming file, tenant and field.
    let start = draft.find("    imprint:\n").unwrap();
    let end = draft.find("    privacy:\n").unwrap();
    let published = format!("{}{}", &draft[..start], &draft[end..]).replace("published: false", "published: true");
    env.write(file, &published);
    let run = env.run(&["validate"]);
    run.code(1);
    let errors: Vec<&str> = run.stderr.lines().filter(|l| l.contains("error[")).collect();
    assert!(errors.iter().all(|e| e.starts_with("tenants/heinsberg/erkelenz.yaml: ")), "{}", run.stderr);
    insta::assert_snapshot!(errors.join("\n"));
    // JSON names the same.
    let run = env.run(&["-o", "json", "validate"]);
    let doc: serde_json::Value = serde_json::from_str(&run.stdout).unwrap();
    let missing = doc["diagnostics"]
        .as_array()
        .unwrap()
        .iter()
        .find(|d| d["code"] == "legal-missing" && d["tenant"] == "erkelenz")
        .unwrap();
    assert_eq!(
        (&missing["severity"], &missing["tenant"], &missing["field"], &missing["message"]),
        (
            &"error".into(),
            &"erkelenz".into(),
            &"spec.legal.imprint".into(),
            &"Impressum missing blocks publishing".into()
        )
    );
}

#[test]
fn a_hostname_duplicated_across_groups_is_reported_on_both_files() {
    let env = Workdir::with_tenants(&repo_root().join("tenants"));
    // Gangelt (group heinsberg) is edited to claim Detmold's hostname (group krz); detmold.yaml is untouched.
    let file = "tenants/heinsberg/gangelt.yaml";
    env.write(
        file,
        &env.read(file).replace("    - service.gangelt.de\n", "    - service.gangelt.de\n    - service.detmold.de\n"),
    );
    let run = env.run(&["-o", "json", "validate"]);
    run.code(1);
    let doc: serde_json::Value = serde_json::from_str(&run.stdout).unwrap();
    let found: Vec<&serde_json::Value> =
        doc["diagnostics"].as_array().unwrap().iter().filter(|d| d["code"] == "duplicate-hostname").collect();
    let on: Vec<(&str, &str, &str)> = found
        .iter()
        .map(|d| (d["file"].as_str().unwrap(), d["field"].as_str().unwrap(), d["related"]["file"].as_str().unwrap()))
        .collect();
    assert_eq!(
        on,
        [
            ("tenants/heinsberg/gangelt.yaml", "spec.hostnames[1]", "tenants/krz/detmold.yaml"),
            ("tenants/krz/detmold.yaml", "spec.hostnames[0]", "tenants/heinsberg/gangelt.yaml"),
        ],
        "both files, each with its field and the other file: {doc}"
    );
    // For people: each message names the other tenant, its file and its field.
    let text = env.run(&["validate"]);
    text.code(1);
    let lines: Vec<&str> =
        text.stderr.lines().filter(|l| l.contains("duplicate-hostname") || l.contains("--> also at")).collect();
    insta::assert_snapshot!(lines.join("\n"));
}

#[test]
fn own_tasks_are_checked_against_the_authority_and_the_starter_catalogue() {
    let env = Workdir::with_tenants(&repo_root().join("tenants"));
    // Detmold, a große kreisangehörige Stadt, may declare its own Jugendamt and Bauaufsicht.
    let detmold = "tenants/krz/detmold.yaml";
    let text = env.read(detmold);
    env.write(detmold, &text.replace("  wave: ", "  ownTasks: [jugendamt, bauaufsicht]\n  wave: "));
    let run = env.run(&["validate", "-o", "json"]);
    run.code(0);
    // A Kreis performs the Kreis tasks anyway; an unknown or repeated task is named with its place.
    env.write(detmold, &text.replace("  wave: ", "  ownTasks: [jugendamt, kfz-steuer, jugendamt]\n  wave: "));
    let lippe = "tenants/krz/kreis-lippe.yaml";
    let kreis = env.read(lippe);
    env.write(lippe, &kreis.replace("  wave: ", "  ownTasks: [jugendamt]\n  wave: "));
    let run = env.run(&["validate"]);
    run.code(1);
    let errors: Vec<&str> = run.stderr.lines().filter(|l| l.contains("error[")).collect();
    assert_eq!(errors.len(), 3, "{}", run.stderr);
    let line = text.lines().position(|l| l.starts_with("  wave: ")).unwrap() + 1;
    assert!(
        errors.contains(
            &format!(
            "tenants/krz/detmold.yaml:{line}:25: error[unknown-task] spec.ownTasks[1]: no Kreis service has the task \
             \"kfz-steuer\" (tenant detmold)"
        )
            .as_str()
        ),
        "{}",
        run.stderr
    );
    assert!(
        run.stderr.contains("hint: known tasks: ausbildungsfoerderung, auslaenderbehoerde, bauaufsicht,"),
        "{}",
        run.stderr
    );
    assert!(
        errors
            .iter()
            .any(|e| e
                .starts_with(&format!("tenants/krz/detmold.yaml:{line}:37: error[duplicate-task] spec.ownTasks[2]"))),
        "{}",
        run.stderr
    );
    assert!(
        errors.iter().any(|e| e.starts_with("tenants/krz/kreis-lippe.yaml:")
            && e.contains("error[own-task-authority] spec.ownTasks: a Kreis performs the Kreis tasks anyway")),
        "{}",
        run.stderr
    );
}
