//! Snapshot tests of `portalctl render` for the bundled groups, run through the real binary.

use std::process::Command;

fn render(args: &[&str]) -> String {
    let out = Command::new(env!("CARGO_BIN_EXE_portalctl"))
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .arg("render")
        .args(args)
        .output()
        .expect("portalctl runs");
    assert!(out.status.success(), "render {args:?} failed: {}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8(out.stdout).expect("UTF-8")
}

#[test]
fn bundled_groups_render_as_snapshotted() {
    for group in ["krz", "heinsberg", "emscher-lippe"] {
        let yaml = render(&["--group", group]);
        insta::assert_snapshot!(format!("render_{group}"), yaml);
    }
}

#[test]
fn dedicated_placement_and_secret_references_render_as_snapshotted() {
    let yaml = render(&["--tenants", "tests/fixtures/tenants", "--group", "ruhr"]);
    assert!(!yaml.contains("data:\n  credentials"), "no Secret data is rendered");
    insta::assert_snapshot!("render_fixture_ruhr", yaml);
}

#[test]
fn helm_values_render_as_snapshotted() {
    insta::assert_snapshot!("helm_values_heinsberg", render(&["--group", "heinsberg", "--helm-values"]));
}

#[test]
fn render_to_a_directory_writes_one_file_per_object_and_removes_stale_ones() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().to_str().unwrap();
    let stale = dir.path().join("heinsberg/ingress-gone.yaml");
    let foreign = dir.path().join("heinsberg/kustomization.yaml");
    std::fs::create_dir_all(stale.parent().unwrap()).unwrap();
    std::fs::write(&stale, "# Rendered by portalctl render; do not edit: change the tenant files and render again.\n")
        .unwrap();
    std::fs::write(&foreign, "resources: []\n").unwrap();
    render(&["--group", "heinsberg", "--out", out]);
    let stream = render(&["--group", "heinsberg"]);
    let files: Vec<_> = std::fs::read_dir(dir.path().join("heinsberg")).unwrap().map(|e| e.unwrap().path()).collect();
    let docs = stream.split("\n---\n").count();
    assert_eq!(files.len(), docs + 1, "one file per object plus the foreign file");
    assert!(!stale.exists(), "stale rendered file removed");
    assert!(foreign.exists(), "files portalctl did not write are left alone");
    let ingress = std::fs::read_to_string(dir.path().join("heinsberg/ingress-erkelenz.yaml")).unwrap();
    assert!(ingress.contains("secretName: erkelenz-tls"), "{ingress}");
    assert!(ingress.contains("cert-manager.io/cluster-issuer: letsencrypt-prod"), "{ingress}");
}

#[test]
fn out_named_after_the_group_is_the_groups_directory() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("deploy").join("krz");
    render(&["--group", "krz", "--out", &format!("{}/", out.display())]);
    assert!(out.join("ingress-detmold.yaml").is_file(), "written into deploy/krz/");
    assert!(!out.join("krz").exists(), "no deploy/krz/krz/");
}

#[test]
fn output_has_no_timestamps_and_is_stable() {
    let a = render(&["--group", "krz"]);
    let b = render(&["--group", "krz"]);
    assert_eq!(a, b);
    assert!(!a.contains("creationTimestamp"));
}

#[test]
fn image_references_with_a_malformed_digest_are_refused() {
    let out = Command::new(env!("CARGO_BIN_EXE_portalctl"))
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .args(["render", "--group", "krz", "--image", "registry.example/portalctl@sha256:abc"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2), "a bad --image is a command-line error");
    assert!(String::from_utf8_lossy(&out.stderr).contains("64 lowercase hex digits"));
}
