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

/// The chart as released: `helm package` stamps the crate version as chart version and
/// appVersion; the packaged chart, given values for an image pinned by digest, renders the
/// objects `portalctl render --image …@sha256:…` renders and passes `helm lint --strict`.
#[test]
fn the_packaged_chart_pins_the_image_by_digest_like_render() {
    if !helm_available() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let dest = dir.path().to_str().unwrap();
    let version = env!("CARGO_PKG_VERSION");
    let out = helm_py(&["package", &format!("{ROOT}/charts/serviceportal"), dest, version]);
    assert!(out.status.success(), "helm package: {}", String::from_utf8_lossy(&out.stderr));
    let tgz = String::from_utf8(out.stdout).unwrap().trim().to_string();
    assert!(tgz.ends_with(&format!("serviceportal-{version}.tgz")), "{tgz}");

    let image = format!("registry.example/portalctl@sha256:{}", "0123456789abcdef".repeat(4));
    let values = dir.path().join("values.yaml");
    let values = values.to_str().unwrap();
    portalctl(&["render", "--group", "krz", "--image", &image, "--helm-values", "--out", values]);
    let ours = portalctl(&["render", "--group", "krz", "--image", &image]);
    let objects = portalctl::render::chart::parse_stream(&ours).unwrap();
    let dep = objects.values().find(|o| o["kind"] == "Deployment").unwrap();
    assert_eq!(dep["spec"]["template"]["spec"]["containers"][0]["image"], image.as_str());
    let label = format!("sha256-{}", &"0123456789abcdef".repeat(4)[..56]);
    assert_eq!(dep["metadata"]["labels"]["app.kubernetes.io/version"], label.as_str(), "the label names the digest");
    let out = helm_py(&["template", &tgz, values, "krz", "portal-krz"]);
    assert!(out.status.success(), "helm template: {}", String::from_utf8_lossy(&out.stderr));
    let theirs = String::from_utf8(out.stdout).unwrap();
    let problems = portalctl::render::chart::compare(&ours, &theirs, "portal-krz").unwrap();
    assert!(problems.is_empty(), "packaged chart vs render:\n{}", problems.join("\n"));
    let lint = helm_py(&["lint", &tgz, values, "portal-krz"]);
    assert!(lint.status.success(), "helm lint --strict:\n{}", String::from_utf8_lossy(&lint.stdout));
}

/// Cargo.toml is where a version is bumped: the chart in the repository says the same.
#[test]
fn the_chart_carries_the_crate_version() {
    let chart = std::fs::read_to_string(Path::new(ROOT).join("charts/serviceportal/Chart.yaml")).unwrap();
    let version = env!("CARGO_PKG_VERSION");
    assert!(chart.lines().any(|l| l == format!("version: {version}")), "Chart.yaml version must be {version}");
    assert!(
        chart.lines().any(|l| l == format!("appVersion: \"{version}\"")),
        "Chart.yaml appVersion must be {version}"
    );
}
