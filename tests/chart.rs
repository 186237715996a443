//! The Helm chart yields the same objects as `portalctl render` for every bundled group, rendered
//! with real Helm (PyPI helm-python-sdk, driven by xtask/helm.py). Needs python3 with
//! helm-python-sdk installed (CI installs it); without it the test says so and does nothing.

use std::path::Path;
use std::process::Command;

const ROOT: &str = env!("CARGO_MANIFEST_DIR");

fn helm_py(args: &[&str]) -> std::process::Output {
    Command::new("python3").arg(Path::new(ROOT).join("xtask/helm.py")).args(args).output().expect("python3 runs")
}

fn portalctl(args: &[&str]) -> String {
    let out = Command::new(env!("CARGO_BIN_EXE_portalctl")).current_dir(ROOT).args(args).output().unwrap();
    assert!(out.status.success(), "portalctl {args:?}: {}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8(out.stdout).unwrap()
}

fn helm_available() -> bool {
    let ok = Command::new("python3")
        .arg(Path::new(ROOT).join("xtask/helm.py"))
        .arg("available")
        .output()
        .is_ok_and(|o| o.status.success());
    if !ok {
        eprintln!("SKIPPED: Helm (pip install helm-python-sdk) is not available");
    }
    ok
}

#[test]
fn chart_renders_the_same_objects_as_portalctl_for_every_bundled_group() {
    if !helm_available() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let chart = format!("{ROOT}/charts/serviceportal");
    // The bundled groups, and a fixture with a dedicated tenant and env/file Servicekonto references.
    let cases = [
        ("tenants", "krz", "portal-krz"),
        ("tenants", "heinsberg", "portal-heinsberg"),
        ("tenants", "emscher-lippe", "portal-emscher-lippe"),
        ("tests/fixtures/tenants", "ruhr", "portal-ruhr"),
    ];
    for (tenants, group, namespace) in cases {
        let values = dir.path().join(format!("{group}.yaml"));
        let values = values.to_str().unwrap();
        portalctl(&["--tenants", tenants, "render", "--group", group, "--helm-values", "--out", values]);
        let ours = portalctl(&["--tenants", tenants, "render", "--group", group]);
        let out = helm_py(&["template", &chart, values, group, namespace]);
        assert!(out.status.success(), "helm template: {}", String::from_utf8_lossy(&out.stderr));
        let theirs = String::from_utf8(out.stdout).unwrap();
        let problems = portalctl::render::chart::compare(&ours, &theirs, namespace).unwrap();
        assert!(problems.is_empty(), "group {group}:\n{}", problems.join("\n"));
        let n = portalctl::render::chart::parse_stream(&theirs).unwrap().len();
        assert!(n > 10, "group {group}: only {n} objects from the chart");

        let lint = helm_py(&["lint", &chart, values, namespace]);
        assert!(lint.status.success(), "helm lint --strict {group}:\n{}", String::from_utf8_lossy(&lint.stdout));
    }
}

#[test]
fn a_changed_value_is_caught() {
    if !helm_available() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let values = dir.path().join("heinsberg.yaml");
    let values_s = values.to_str().unwrap();
    portalctl(&["render", "--group", "heinsberg", "--helm-values", "--out", values_s]);
    let text =
        std::fs::read_to_string(&values).unwrap().replace("clusterIssuer: letsencrypt-prod", "clusterIssuer: other");
    std::fs::write(&values, text).unwrap();
    let ours = portalctl(&["render", "--group", "heinsberg"]);
    let out =
        helm_py(&["template", &format!("{ROOT}/charts/serviceportal"), values_s, "heinsberg", "portal-heinsberg"]);
    let problems =
        portalctl::render::chart::compare(&ours, &String::from_utf8(out.stdout).unwrap(), "portal-heinsberg").unwrap();
    assert_eq!(problems.len(), 11, "every Ingress differs: {problems:?}");
}
