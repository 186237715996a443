//! The foundation through the real binary: validate, scaffolding, listing, errors.

mod support;

use std::collections::BTreeSet;
use support::repo_root;
use support::workdir::Workdir;

#[test]
fn bundled_tenants_validate() {
    let env = Workdir::with_tenants(&repo_root().join("tenants"));
    let run = env.run(&["validate", "-o", "json"]);
    run.code(0);
    let report: serde_json::Value = serde_json::from_str(&run.stdout).unwrap();
    assert_eq!(report["valid"], true);
    assert_eq!(report["errors"], 0);
    assert_eq!(report["groups"], 3);
    assert_eq!(report["tenants"], 64);
}

#[test]
fn broken_corpus_yields_precise_errors() {
    let env = Workdir::with_tenants(&repo_root().join("tests/fixtures/broken/tenants"));
    let run = env.run(&["validate", "-o", "json"]);
    run.code(1);
    let report: serde_json::Value = serde_json::from_str(&run.stdout).unwrap();
    assert_eq!(report["valid"], false);
    let diags = report["diagnostics"].as_array().unwrap();
    let codes: BTreeSet<&str> = diags.iter().map(|d| d["code"].as_str().unwrap()).collect();
    // Each mistake in the corpus, by its code.
    for code in [
        "unknown-field",
        "yaml-syntax",
        "duplicate-hostname",
        "duplicate-slug",
        "duplicate-ags",
        "duplicate-schema",
        "invalid-hostname",
        "invalid-ags",
        "ags-parent-mismatch",
        "invalid-schema",
        "contrast",
        "invalid-color",
        "inline-secret",
        "unknown-wave",
        "name-mismatch",
        "invalid-name",
        "invalid-value",
        "api-version",
        "invalid-date",
        "missing-group",
        "secret-ref",
        "servicekonto-oidc",
        "missing-field",
        "dachportal-ags",
        "dachportal-parent",
        "duplicate-dachportal",
        "member-self",
        "unknown-member",
        "duplicate-member",
        "no-members",
        "members-not-dachportal",
    ] {
        assert!(codes.contains(code), "no {code} finding; got {codes:?}");
    }
    // Every finding names its file; all but whole-file findings a line and column too.
    for d in diags {
        assert!(d["file"].as_str().unwrap().starts_with("tenants/"), "{d}");
    }
    let located = diags.iter().filter(|d| d["line"].is_u64() && d["column"].is_u64()).count();
    assert!(located >= 20, "only {located} findings carry a line and column");
    // The valid files of the corpus produce nothing but the other side of a duplicate (brakel.yaml claims
    // bad-driburg's hostname: both files are named).
    assert!(!diags
        .iter()
        .any(|d| d["file"] == "tenants/hoexter/bad-driburg.yaml" && d["code"] != "duplicate-hostname"));
    // Umlaut hostnames are accepted (converted to punycode), not reported.
    assert!(!diags
        .iter()
        .any(|d| d["file"] == "tenants/paderborn/bad-wuennenberg.yaml" && d["code"] == "invalid-hostname"));
    insta::assert_json_snapshot!("broken_corpus", report);
}

#[test]
fn validate_prints_locations_and_hints_for_people() {
    let env = Workdir::with_tenants(&repo_root().join("tests/fixtures/broken/tenants"));
    let run = env.run(&["validate"]);
    run.code(1);
    assert!(
        run.stderr.contains("tenants/hoexter/warburg.yaml:14:19: error[contrast] spec.theme.primaryColor"),
        "{}",
        run.stderr
    );
    assert!(run.stderr.contains("hint: "), "{}", run.stderr);
    assert!(run.stderr.contains("35 error(s)"), "{}", run.stderr);
}

#[test]
fn secrets_in_files_are_never_echoed() {
    let env = Workdir::with_tenants(&repo_root().join("tests/fixtures/broken/tenants"));
    for fmt in ["table", "json", "yaml"] {
        let run = env.run(&["validate", "-o", fmt]);
        assert!(!run.stdout.contains("s3cr3t") && !run.stderr.contains("s3cr3t"), "secret echoed with -o {fmt}");
        assert!(!run.stdout.contains("MIIEvQ") && !run.stderr.contains("MIIEvQ"), "key echoed with -o {fmt}");
    }
}

/// Split a recorded command line the way a POSIX shell does for bare words and double quotes.
fn shell_words(line: &str) -> Vec<String> {
    let (mut words, mut word, mut quoted, mut in_word) = (Vec::new(), String::new(), false, false);
    let mut chars = line.chars();
    while let Some(c) = chars.next() {
        match c {
            '"' => (quoted, in_word) = (!quoted, true),
            '\\' if quoted => word.extend(chars.next()),
            c if c.is_whitespace() && !quoted => {
                if in_word {
                    words.push(std::mem::take(&mut word));
                }
                in_word = false;
            }
            c => {
                word.push(c);
                in_word = true;
            }
        }
    }
    assert!(!quoted, "unbalanced quotes in {line:?}");
    if in_word {
        words.push(word);
    }
    words
}

/// `group new` with the arguments recorded in each bundled group.yaml reproduces its tenant set.
#[test]
fn group_new_reproduces_the_bundled_groups() {
    for group in ["krz", "heinsberg", "emscher-lippe"] {
        let bundled = std::fs::read_to_string(repo_root().join(format!("tenants/{group}/group.yaml"))).unwrap();
        let command = bundled.lines().next().unwrap().split("scaffolded with: ").nth(1).unwrap().to_string();
        let words = shell_words(&command);
        let args: Vec<&str> = words.iter().skip(1).map(String::as_str).collect();
        let env = Workdir::new();
        env.run(&args).ok();
        let mut want: Vec<String> = std::fs::read_dir(repo_root().join("tenants").join(group))
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        want.sort();
        assert_eq!(env.files(&format!("tenants/{group}")), want, "{group}");
        // Same AGS and waves in every file.
        for f in &want {
            let ours = env.read(&format!("tenants/{group}/{f}"));
            let theirs = std::fs::read_to_string(repo_root().join(format!("tenants/{group}/{f}"))).unwrap();
            for key in ["  ags:", "  wave:", "    - service.", "        enforcementUrl:"] {
                let pick = |s: &str| s.lines().filter(|l| l.starts_with(key)).map(String::from).collect::<Vec<_>>();
                assert_eq!(pick(&ours), pick(&theirs), "{group}/{f} {key}");
            }
            // The legal pages exactly as scaffolded (placeholders included).
            let legal = |s: &str| s.find("  # Legal pages").map(|i| s[i..].to_string());
            assert_eq!(legal(&ours), legal(&theirs), "{group}/{f} legal pages");
        }
    }
    let krz = std::fs::read_dir(repo_root().join("tenants/krz")).unwrap().count() - 1;
    assert_eq!(krz, 36 + 3, "krz: 36 communes + 3 Kreise");
}

#[test]
fn group_new_writes_a_valid_group_and_refuses_to_overwrite() {
    let env = Workdir::new();
    let out = env.run(&["group", "new", "hoexter", "--kreis", "05762", "--pilot", "brakel"]).ok().to_string();
    assert!(out.contains("brakel") && out.contains("pilot"), "{out}");
    assert_eq!(env.files("tenants/hoexter").len(), 10 + 1 + 1);
    assert!(env.read("tenants/hoexter/hoexter.yaml").contains("service.hoexter.de"));
    assert!(env.read("tenants/hoexter/kreis-hoexter.yaml").contains("ags: \"05762000\""));
    env.run(&["validate"]).ok();
    let again = env.run(&["group", "new", "hoexter", "--kreis", "05762"]);
    again.code(1);
    assert!(again.stderr.contains("already exists"), "{}", again.stderr);
}

#[test]
fn group_new_rejects_bad_input_and_writes_nothing() {
    let env = Workdir::new();
    for (args, needle) in [
        (vec!["group", "new", "x", "--kreis", "5770"], "5 digits"),
        (vec!["group", "new", "x", "--kreis", "99999"], "no such Kreis"),
        (vec!["group", "new", "x", "--kreis", "05770", "--pilot", "gotham"], "not one of the group's tenants"),
        (vec!["group", "new", "../evil", "--kreis", "05770"], "group name"),
        (vec!["group", "new", "Böse", "--kreis", "05770"], "group name"),
    ] {
        let run = env.run(&args);
        run.code(1);
        assert!(run.stderr.contains(needle), "{args:?}: {}", run.stderr);
    }
    assert!(!env.path().join("tenants").exists() || env.files("tenants").is_empty());
}

#[test]
fn tenant_new_derives_everything_from_the_ags() {
    let env = Workdir::new();
    env.run(&["group", "new", "krz", "--kreis", "05766", "--pilot", "detmold"]).ok();
    // Espelkamp is in Kreis Minden-Lübbecke, not in the group yet.
    env.run(&["tenant", "new", "--ags", "05770008", "--group", "krz"]).ok();
    let text = env.read("tenants/krz/espelkamp.yaml");
    for want in [
        "name: espelkamp",
        "displayName: \"Stadt Espelkamp\"",
        "ags: \"05770008\"",
        "parent: \"05770\"",
        "kind: stadt",
        "- service.espelkamp.de",
        "schema: t_espelkamp",
        "wave: main",
        "published: false",
        // The legal pages: the official name as authority, placeholders for everything else.
        "      authority: \"Stadt Espelkamp\"\n      address: \"TODO: Postanschrift der Verwaltung\"",
        "      controller: \"Stadt Espelkamp\"",
        "      videoUrl: \"TODO: ",
    ] {
        assert!(text.contains(want), "missing {want:?} in\n{text}");
    }
    // NRW: the enforcement procedure is the Land's Ombudsstelle; a Land not known here gets a placeholder.
    assert!(env.read("tenants/krz/group.yaml").contains("enforcementUrl: \"https://www.lbbp.nrw.de/ombudsstelle\""));
    env.run(&["group", "new", "muenchen", "--kreis", "09162"]).ok();
    assert!(env.read("tenants/muenchen/group.yaml").contains("enforcementUrl: \"TODO: "));
    env.run(&["validate"]).ok();
    // The same AGS twice is refused and nothing is written.
    let dup = env.run(&["tenant", "new", "--ags", "05770008", "--group", "krz", "--slug", "espelkamp-zwei"]);
    dup.code(1);
    assert!(dup.stderr.contains("is already tenant espelkamp of group krz"), "{}", dup.stderr);
    assert!(!env.path().join("tenants/krz/espelkamp-zwei.yaml").exists());
    // Hostile slugs never become file names.
    let evil = env.run(&["tenant", "new", "--ags", "05770024", "--group", "krz", "--slug", "../../etc/passwd"]);
    evil.code(1);
    assert!(!env.path().join("etc").exists());
    // Unknown AGS and unknown group are clear errors.
    let r = env.run(&["tenant", "new", "--ags", "12345678", "--group", "krz"]);
    r.code(1);
    assert!(r.stderr.contains("official list"), "{}", r.stderr);
    let r = env.run(&["tenant", "new", "--ags", "05770024", "--group", "nope"]);
    r.code(1);
    assert!(r.stderr.contains("no rollout group \"nope\""), "{}", r.stderr);
}

#[test]
fn tenant_new_resolves_a_slug_collision_with_a_note() {
    let env = Workdir::new();
    env.run(&["group", "new", "ml", "--kreis", "05770"]).ok();
    // Minden (Eifelkreis Bitburg-Prüm, RLP) meets the existing Minden of Kreis Minden-Lübbecke.
    let run = env.run(&["tenant", "new", "--ags", "07232082", "--group", "ml"]);
    run.ok();
    assert!(run.stderr.contains("note: an existing tenant already has slug \"minden\""), "{}", run.stderr);
    assert!(env.path().join("tenants/ml/minden-bitburg-pruem.yaml").exists(), "{:?}", env.files("tenants/ml"));
}

#[test]
fn tenant_list_and_show_in_every_format() {
    let env = Workdir::with_tenants(&repo_root().join("tenants"));
    let table = env.run(&["tenant", "list", "--group", "krz", "--wave", "pilot"]).ok().to_string();
    let rows: Vec<&str> = table.lines().skip(1).collect();
    assert_eq!(rows.len(), 3, "{table}");
    for pilot in ["detmold", "espelkamp", "kirchlengern"] {
        assert!(table.contains(pilot), "{table}");
    }
    let json: serde_json::Value = serde_json::from_str(env.run(&["tenant", "list", "-o", "json"]).ok()).unwrap();
    assert_eq!(json.as_array().unwrap().len(), 64);
    let yaml = env.run(&["tenant", "show", "preussisch-oldendorf", "-o", "yaml"]).ok().to_string();
    assert!(yaml.contains("displayName: Stadt Preußisch Oldendorf"), "{yaml}");
    assert!(yaml.contains("service.preussisch-oldendorf.de"), "{yaml}");
    let r = env.run(&["tenant", "list", "--group", "krz", "--wave", "welle-9"]);
    r.code(1);
    assert!(r.stderr.contains("no wave \"welle-9\""), "{}", r.stderr);
}

#[test]
fn the_dachportal_is_listed_without_ags_and_links_to_its_group() {
    let env = Workdir::with_tenants(&repo_root().join("tenants"));
    let table = env.run(&["tenant", "list", "--group", "emscher-lippe"]).ok().to_string();
    let row = table.lines().find(|l| l.contains("serviceportal-emscher-lippe")).expect("dachportal listed");
    let cells: Vec<&str> = row.split_whitespace().collect();
    assert_eq!(&cells[..5], ["serviceportal-emscher-lippe", "emscher-lippe", "main", "dachportal", "-"], "{row}");
    let json: serde_json::Value =
        serde_json::from_str(env.run(&["tenant", "show", "serviceportal-emscher-lippe", "-o", "json"]).ok()).unwrap();
    assert_eq!(json["kind"], "dachportal");
    assert!(json.get("ags").is_none() && json.get("kreis").is_none(), "{json}");
    let members: Vec<&str> = json["members"].as_array().unwrap().iter().map(|m| m["slug"].as_str().unwrap()).collect();
    assert_eq!(members.len(), 13, "the 13 local portals: {members:?}");
    assert!(members.contains(&"dorsten") && members.contains(&"kreis-recklinghausen"), "{members:?}");
    assert!(!members.contains(&"serviceportal-emscher-lippe"));
    let dorsten = json["members"].as_array().unwrap().iter().find(|m| m["slug"] == "dorsten").unwrap();
    assert_eq!(
        (dorsten["displayName"].as_str(), dorsten["hostname"].as_str()),
        (Some("Stadt Dorsten"), Some("service.dorsten.de"))
    );
    // Municipalities keep their AGS in the same listing.
    let dorsten = env.run(&["tenant", "show", "dorsten", "-o", "json"]).ok().to_string();
    assert!(dorsten.contains("\"ags\": \"05562012\"") && !dorsten.contains("\"members\""), "{dorsten}");
}

#[test]
fn group_new_with_a_dachportal_scaffolds_it_and_rejects_clashes() {
    let env = Workdir::new();
    let args = ["group", "new", "hoexter", "--kreis", "05762", "--dachportal", "Kulturland Kreis Höxter"];
    let run = env.run(&args);
    run.code(0);
    assert!(run.stderr.contains("note: service.hoexter.de is a member's hostname"), "{}", run.stderr);
    let text = env.read("tenants/hoexter/kulturland-kreis-hoexter.yaml");
    assert!(text.contains("kind: dachportal") && !text.contains("ags:") && !text.contains("parent:"), "{text}");
    // service.<group>.de is the city Höxter's: the Dachportal falls back to its own slug, and says so.
    assert!(text.contains("    - service.kulturland-kreis-hoexter.de"), "{text}");
    assert!(text.contains("placeholder"), "{text}");
    let group = env.read("tenants/hoexter/group.yaml");
    assert!(group.lines().next().unwrap().ends_with("--dachportal \"Kulturland Kreis Höxter\""), "{group}");
    env.run(&["validate"]).ok();
    // The slug of an existing tenant, an invalid hostname, a hostname of a member: refused, nothing written.
    for (name, host, why) in [
        ("Lage", None, "already a tenant's slug"),
        ("Regionalportal", Some("service..de"), "hostname"),
        ("Regionalportal", Some("service.detmold.de"), "service.detmold.de is already a tenant's hostname"),
        ("Regionalportal", Some("service.brakel.de"), "service.brakel.de is already a tenant's hostname"),
        ("!!!", None, "yields no slug"),
    ] {
        let mut a = vec!["group", "new", "lippe", "--kreis", "05766", "--dachportal", name];
        if let Some(h) = host {
            a.extend(["--dachportal-hostname", h]);
        }
        let r = env.run(&a);
        r.code(1);
        assert!(r.stderr.contains(why), "{name}: {}", r.stderr);
        assert!(!env.path().join("tenants/lippe").exists(), "{name}: nothing written");
    }
    let r = env.run(&["group", "new", "lippe", "--kreis", "05766", "--dachportal-hostname", "service.lippe.de"]);
    r.code(2);
}

#[test]
fn tenant_new_adds_a_dachportal_to_an_existing_group_once() {
    let env = Workdir::with_tenants(&repo_root().join("tenants"));
    let run = env.run(&["tenant", "new", "--dachportal", "Serviceportale im krz-Verbandsgebiet", "--group", "krz"]);
    run.code(0);
    let text = env.read("tenants/krz/serviceportale-im-krz-verbandsgebiet.yaml");
    assert!(text.contains("kind: dachportal") && text.contains("    - service.krz.de"), "{text}");
    assert!(text.contains("tenant new --dachportal \"Serviceportale im krz-Verbandsgebiet\" --group krz"), "{text}");
    let json: serde_json::Value =
        serde_json::from_str(env.run(&["tenant", "show", "serviceportale-im-krz-verbandsgebiet", "-o", "json"]).ok())
            .unwrap();
    assert_eq!(json["members"].as_array().unwrap().len(), 39, "every other krz tenant");
    // One per group: refused, for krz now and for emscher-lippe from the start.
    for group in ["krz", "emscher-lippe"] {
        let r = env.run(&["tenant", "new", "--dachportal", "Noch eins", "--group", group]);
        r.code(1);
        assert!(r.stderr.contains("already has a Dachportal"), "{}", r.stderr);
    }
    assert!(!env.path().join("tenants/krz/noch-eins.yaml").exists());
    // Neither --ags nor --dachportal, or both: a usage error.
    env.run(&["tenant", "new", "--group", "heinsberg"]).code(2);
    env.run(&["tenant", "new", "--group", "heinsberg", "--ags", "05370004", "--dachportal", "X"]).code(2);
}

#[test]
fn malformed_yaml_is_reported_with_its_position_and_blocks_other_commands() {
    let env = Workdir::with_tenants(&repo_root().join("tenants"));
    env.write(
        "tenants/heinsberg/gangelt.yaml",
        "apiVersion: portalctl.dev/v1alpha1\nkind: Tenant\nmetadata:\n  name: gangelt\nspec: [unclosed\n",
    );
    let run = env.run(&["validate"]);
    run.code(1);
    assert!(run.stderr.contains("tenants/heinsberg/gangelt.yaml:"), "{}", run.stderr);
    let list = env.run(&["tenant", "list"]);
    list.code(1);
    assert!(list.stderr.contains("fix them first"), "{}", list.stderr);
}

#[test]
fn missing_tenants_directory_is_a_clear_error() {
    let env = Workdir::new();
    let run = env.run(&["--tenants", "nowhere", "validate"]);
    run.code(1);
    assert!(run.stderr.contains("nowhere does not exist"), "{}", run.stderr);
}

#[test]
fn help_teaches() {
    let env = Workdir::new();
    let help = env.run(&["--help"]).ok().to_string();
    assert!(help.contains("Exit codes:") && help.contains("Examples:"), "{help}");
    for sub in ["validate", "tenant", "group"] {
        assert!(help.contains(sub), "{help}");
    }
    env.run(&["no-such-command"]).code(2);
}

#[test]
fn municipality_lookup_finds_names_with_umlauts() {
    let env = Workdir::new();
    let out = env.run(&["municipality", "Preußisch"]).ok().to_string();
    assert!(out.contains("05770036") && out.contains("preussisch-oldendorf"), "{out}");
    env.run(&["municipality", "Atlantis"]).code(1);
}

#[test]
fn an_output_format_a_command_does_not_print_is_an_error() {
    let env = Workdir::with_tenants(&repo_root().join("tenants"));
    for args in [
        &["-o", "json", "render", "--group", "krz"][..],
        &["-o", "html", "validate"],
        &["-o", "markdown", "tenant", "list"],
        &["-o", "markdown", "audit", "--tenant", "detmold", "--portal-address", "127.0.0.1:1"],
    ] {
        let run = env.run(args);
        run.code(2);
        assert!(run.stdout.is_empty(), "nothing printed in another format: {}", run.stdout);
        assert!(run.stderr.contains("does not print -o") && run.stderr.contains("it supports -o"), "{}", run.stderr);
    }
    // What a command does print stays allowed.
    env.run(&["-o", "yaml", "render", "--group", "krz"]).ok();
    env.run(&["-o", "json", "validate"]).ok();
    // `audit -o html` is its report: accepted (here it then stops at the missing Chromium, exit 3).
    let missing = ["--chromium", "/nonexistent/chromium", "--portal-address", "127.0.0.1:1"];
    let run = env.run(&[&["-o", "html", "audit", "--tenant", "detmold"][..], &missing[..]].concat());
    run.code(3);
    assert!(!run.stderr.contains("does not print -o"), "{}", run.stderr);
}

#[test]
fn municipality_json_is_camel_case_with_booleans_and_an_empty_query_is_refused() {
    let env = Workdir::new();
    let out = env.run(&["-o", "json", "municipality", "Bottrop"]).ok().to_string();
    let rows: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(rows[0]["kreisAgs"], "05512", "{out}");
    assert_eq!(rows[0]["kreisfrei"], true, "a real boolean: {out}");
    assert!(!out.contains("kreis_ags") && !out.contains("\"yes\""), "{out}");
    let run = env.run(&["municipality", ""]);
    run.code(2);
    assert!(run.stdout.is_empty(), "not all 10,790 rows");
    assert!(run.stderr.contains("portalctl municipality Oldendorf"), "{}", run.stderr);
}

#[test]
fn a_cluster_that_cannot_be_reached_is_exit_3_for_every_command() {
    let env = Workdir::with_tenants(&repo_root().join("tenants"));
    let missing = env.path().join("no-kubeconfig");
    for args in [
        &["rollout", "pause", "--group", "krz"][..],
        &["rollout", "resume", "--group", "krz"],
        &["diff", "--group", "krz"],
    ] {
        let mut cmd = env.command();
        cmd.args(args).env("KUBECONFIG", &missing).env_remove("HOME");
        let out = cmd.output().unwrap();
        assert_eq!(out.status.code(), Some(3), "{args:?}: {}", String::from_utf8_lossy(&out.stderr));
        // No local mode here (`portalctl up` did not run in this directory): the plain cause.
        assert!(!String::from_utf8_lossy(&out.stderr).contains("local mode"));
    }
}

#[test]
fn no_colour_codes_off_a_terminal() {
    let env = Workdir::new();
    // Not a terminal and no NO_COLOR: still plain.
    let mut cmd = env.command();
    cmd.env_remove("NO_COLOR").args(["municipality", ""]);
    let out = cmd.output().unwrap();
    assert!(!out.stderr.contains(&0x1b), "{}", String::from_utf8_lossy(&out.stderr));
    // --color always colours stderr too.
    let mut cmd = env.command();
    cmd.env_remove("NO_COLOR").args(["--color", "always", "municipality", ""]);
    assert!(cmd.output().unwrap().stderr.contains(&0x1b));
}

#[test]
fn completions_for_every_shell_and_a_man_page() {
    let env = Workdir::new();
    for (shell, marker) in [("bash", "complete -F"), ("zsh", "#compdef portalctl"), ("fish", "complete -c portalctl")] {
        let out = env.run(&["completions", shell]).ok().to_string();
        assert!(out.contains(marker) && out.contains("municipality"), "{shell}: {out}");
    }
    let man = env.run(&["manpage"]).ok().to_string();
    assert!(man.contains(".TH portalctl 1") && man.contains("Exit codes"), "{man}");
    let help = env.run(&["--help"]).ok().to_string();
    assert!(help.contains("portalctl up "), "the top-level help mentions up: {help}");
}

#[test]
fn version_reports_the_build_as_json() {
    let env = Workdir::new();
    let run = env.run(&["version", "-o", "json"]);
    run.code(0);
    let v: serde_json::Value = serde_json::from_str(&run.stdout).unwrap();
    assert_eq!(v["version"], env!("CARGO_PKG_VERSION"));
    assert!(v["features"].is_array(), "{v}");
    assert!(["debug", "release"].contains(&v["profile"].as_str().unwrap()), "{v}");
    // Built from this checkout: the revision is HEAD's, the date HEAD's commit time (or
    // SOURCE_DATE_EPOCH), so two builds of one commit report the same.
    let git = |args: &[&str]| {
        let out = std::process::Command::new("git").args(args).current_dir(repo_root()).output().unwrap();
        String::from_utf8(out.stdout).unwrap().trim().to_string()
    };
    let head = git(&["rev-parse", "HEAD"]);
    if !head.is_empty() && std::env::var_os("PORTALCTL_GIT_REVISION").is_none() {
        assert_eq!(v["gitRevision"], head.as_str(), "{v}");
    }
    // camelCase keys, like every other JSON document of the CLI.
    let keys: Vec<&str> = v.as_object().unwrap().keys().map(String::as_str).collect();
    assert!(keys.iter().all(|k| !k.contains('_')), "camelCase keys: {keys:?}");
    let date = v["buildDate"].as_str().expect("a build date");
    let parsed = time::OffsetDateTime::parse(date, &time::format_description::well_known::Rfc3339).unwrap();
    if std::env::var_os("SOURCE_DATE_EPOCH").is_none() && !head.is_empty() {
        assert_eq!(parsed.unix_timestamp().to_string(), git(&["log", "-1", "--format=%ct"]));
    }
    // The text form says the same for people.
    let text = env.run(&["version"]);
    assert!(text.ok().starts_with(&format!("portalctl {}\n", env!("CARGO_PKG_VERSION"))), "{}", text.stdout);
    assert!(text.stdout.contains(&head), "{}", text.stdout);
}

/// How a subcommand answers `-o json`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum JsonOut {
    /// Runs here and prints one JSON document.
    Document,
    /// Refused with exit 2 before anything runs: its output is of another kind (XML, a zone file,
    /// YAML manifests, a man page, a log of steps).
    Refused,
    /// Needs a service or state it does not get here (a database, a cluster, a pending rebind): it
    /// fails, and prints JSON or nothing on stdout, never text.
    FailsHere,
}

/// Every subcommand path of the CLI (`["db", "status"]`, …), from clap's own definition: a command
/// with subcommands counts itself too when it also runs without one (`rollout`).
fn subcommand_paths() -> Vec<Vec<String>> {
    fn walk(cmd: &clap::Command, prefix: &[String], out: &mut Vec<Vec<String>>) {
        for sub in cmd.get_subcommands().filter(|s| s.get_name() != "help") {
            let mut path = prefix.to_vec();
            path.push(sub.get_name().to_string());
            if sub.get_subcommands().next().is_none() || !sub.is_subcommand_required_set() {
                out.push(path.clone());
            }
            walk(sub, &path, out);
        }
    }
    let mut out = Vec::new();
    walk(&<portalctl::cli::Cli as clap::CommandFactory>::command(), &[], &mut out);
    out
}

#[test]
fn every_subcommand_prints_json_for_o_json_or_refuses_it() {
    use JsonOut::{Document, FailsHere, Refused};
    let env = Workdir::with_tenants(&repo_root().join("tenants"));
    let db = "postgres://portalctl@127.0.0.1:1/portal";
    // Each subcommand path, the arguments that let it run here (no database, no cluster), and what -o json does.
    let cases: &[(&str, &[&str], JsonOut)] = &[
        ("validate", &[], Document),
        ("tenant list", &[], Document),
        ("tenant show", &["detmold"], Document),
        ("tenant new", &["--ags", "05762016", "--group", "krz", "--dry-run"], Document),
        ("group list", &[], Document),
        ("group new", &["hoexter", "--kreis", "05762", "--dry-run"], Document),
        ("municipality", &["Brakel"], Document),
        ("dns plan", &["-t", "detmold", "--ingress", "192.0.2.10"], Document),
        ("dns check", &["-t", "detmold", "--ingress", "192.0.2.10", "--nameserver", "127.0.0.1:1"], Document),
        ("servicekonto metadata", &["--tenant", "detmold"], Refused),
        ("servicekonto check", &["-t", "detmold", "--min-validity", "1d"], Document),
        ("servicekonto rebind", &["--group", "heinsberg", "--to", "bayernid"], Document),
        ("servicekonto confirm", &["--group", "heinsberg"], FailsHere),
        ("db provision", &["-t", "detmold", "--database-url", db], FailsHere),
        ("db migrate", &["-t", "detmold", "--database-url", db], FailsHere),
        ("db status", &["-t", "detmold", "--database-url", db], FailsHere),
        ("db offboard", &["-t", "detmold", "--database-url", db], FailsHere),
        ("db restore", &["-t", "detmold", "--database-url", db, "dump.sql"], Refused),
        ("serve", &["--database-url", db], Refused),
        ("content import", &["-t", "detmold", "--starter", "--database-url", db], FailsHere),
        ("content publish", &["-t", "detmold", "--all", "--database-url", db], FailsHere),
        ("content unpublish", &["-t", "detmold", "--all", "--database-url", db], FailsHere),
        ("content adopt", &["--from", "detmold", "--to", "hille", "--service", "x", "--database-url", db], FailsHere),
        ("content catalogue", &[], Document),
        ("rollout", &["-g", "krz", "--dry-run"], Document),
        ("rollout pause", &["-g", "krz"], FailsHere),
        ("rollout resume", &["-g", "krz"], FailsHere),
        ("status", &["-t", "detmold", "--no-cluster", "--check-timeout", "1s"], Document),
        ("render", &["-g", "krz"], Refused),
        ("diff", &["-g", "krz"], Refused),
        ("apply", &["-g", "krz"], Refused),
        ("offboard", &["-t", "detmold"], Refused),
        ("up", &["--state-dir", "state", "--database-url", db], FailsHere),
        ("down", &["--state-dir", "state"], Refused),
        ("completions", &["bash"], Refused),
        ("manpage", &[], Refused),
        ("version", &[], Document),
        ("feedback list", &["-t", "detmold", "--database-url", db], FailsHere),
        ("feedback export", &["-t", "detmold", "--database-url", db], FailsHere),
        ("audit", &["-t", "detmold", "--portal-address", "127.0.0.1:1"], FailsHere),
    ];
    let listed: BTreeSet<String> = cases.iter().map(|(p, _, _)| p.to_string()).collect();
    let paths: BTreeSet<String> = subcommand_paths().iter().map(|p| p.join(" ")).collect();
    assert_eq!(paths, listed, "every subcommand is classified here, and nothing else");
    // Carrying out an offboarding prints its steps: refused, while its plan is a document.
    let offboard_confirm = ["-t", "detmold", "--database-url", db, "--confirm"];
    let zone = ["-t", "detmold", "--ingress", "192.0.2.10", "--zone"];
    let mut cases = cases.to_vec();
    cases.push(("db offboard", &offboard_confirm, Refused));
    cases.push(("dns plan", &zone, Refused));

    let missing_kubeconfig = env.path().join("no-kubeconfig");
    for (path, args, expect) in cases {
        let mut cmd = env.command();
        cmd.args(["-o", "json"]).args(path.split(' ')).args(args);
        cmd.env_remove("DATABASE_URL").env("KUBECONFIG", &missing_kubeconfig).env_remove("HOME");
        cmd.env("PORTALCTL_SECRETS_DIR", env.path().join("secrets"));
        let out = cmd.output().unwrap();
        let (code, stdout, stderr) =
            (out.status.code(), String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
        let shown = format!("{path} {args:?}: exit {code:?}\nstdout:\n{stdout}\nstderr:\n{stderr}");
        match expect {
            Document => {
                assert!(matches!(code, Some(0 | 1)), "{shown}");
                serde_json::from_str::<serde_json::Value>(&stdout)
                    .unwrap_or_else(|e| panic!("not JSON ({e}): {shown}"));
            }
            Refused => {
                assert_eq!(code, Some(2), "{shown}");
                assert!(stdout.is_empty(), "{shown}");
                assert!(stderr.contains(&format!("`{path}")) && stderr.contains("does not print -o json"), "{shown}");
            }
            FailsHere => {
                assert!(matches!(code, Some(1 | 3)), "{shown}");
                assert!(
                    stdout.trim().is_empty() || serde_json::from_str::<serde_json::Value>(&stdout).is_ok(),
                    "{shown}"
                );
            }
        }
    }
}
