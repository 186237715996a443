//! The Kubernetes commands' behaviour that needs no API server: unreachable clusters, broken
//! kubeconfigs and unresolvable Secret references fail clearly, with the documented exit codes.

use std::process::{Command, Output};

const ROOT: &str = env!("CARGO_MANIFEST_DIR");

fn portalctl(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_portalctl"))
        .current_dir(ROOT)
        .env_remove("KUBECONFIG")
        .env("HOME", "/nonexistent-home-for-tests")
        .env_remove("KUBERNETES_SERVICE_HOST")
        .args(args)
        .output()
        .expect("portalctl runs")
}

fn kubeconfig(dir: &std::path::Path, server: &str, context: &str) -> String {
    let path = dir.join("kubeconfig");
    std::fs::write(
        &path,
        format!(
            "apiVersion: v1\nkind: Config\ncurrent-context: {context}\nclusters:\n- name: c\n  cluster:\n    server: {server}\n    insecure-skip-tls-verify: true\ncontexts:\n- name: {context}\n  context:\n    cluster: c\n    user: u\nusers:\n- name: u\n  user:\n    token: not-a-real-token\n"
        ),
    )
    .unwrap();
    path.to_str().unwrap().to_string()
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).to_string()
}

#[test]
fn an_unreachable_cluster_is_exit_code_3_naming_server_and_context() {
    let dir = tempfile::tempdir().unwrap();
    // Port 1 on loopback: nothing listens, the connection is refused at once.
    let kc = kubeconfig(dir.path(), "https://127.0.0.1:1", "lab");
    for cmd in [
        &["apply", "--group", "heinsberg"][..],
        &["diff", "--group", "heinsberg"],
        &["offboard", "--tenant", "selfkant"],
    ] {
        let mut args = cmd.to_vec();
        args.extend(["--kubeconfig", &kc]);
        let o = portalctl(&args);
        let err = stderr(&o);
        assert_eq!(o.status.code(), Some(3), "{cmd:?}: {err}");
        assert!(err.contains("https://127.0.0.1:1") && err.contains("context lab"), "{cmd:?}: {err}");
        assert_eq!(err.lines().filter(|l| l.starts_with("error:")).count(), 1, "one error line: {err}");
    }
}

#[test]
fn a_broken_kubeconfig_or_unknown_context_is_exit_code_3_naming_it() {
    let dir = tempfile::tempdir().unwrap();
    let broken = dir.path().join("broken");
    std::fs::write(&broken, "clusters: [this is not: a kubeconfig").unwrap();
    let o = portalctl(&["diff", "--group", "krz", "--kubeconfig", broken.to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(3), "{}", stderr(&o));
    assert!(stderr(&o).contains(broken.to_str().unwrap()), "{}", stderr(&o));

    let kc = kubeconfig(dir.path(), "https://127.0.0.1:1", "lab");
    let o = portalctl(&["diff", "--group", "krz", "--kubeconfig", &kc, "--context", "elsewhere"]);
    assert_eq!(o.status.code(), Some(3), "{}", stderr(&o));
    assert!(stderr(&o).contains("elsewhere"), "{}", stderr(&o));

    let o = portalctl(&["diff", "--group", "krz"]);
    assert_eq!(o.status.code(), Some(3), "no kubeconfig anywhere: {}", stderr(&o));
    assert!(stderr(&o).contains("--kubeconfig"), "{}", stderr(&o));
}

#[test]
fn an_unresolvable_secret_reference_stops_before_anything_is_sent() {
    let dir = tempfile::tempdir().unwrap();
    let kc = kubeconfig(dir.path(), "https://127.0.0.1:1", "lab");
    let o = Command::new(env!("CARGO_BIN_EXE_portalctl"))
        .current_dir(ROOT)
        .env_remove("GELSENKIRCHEN_SERVICEKONTO")
        .args(["--tenants", "tests/fixtures/tenants", "apply", "--tenant", "gelsenkirchen", "--kubeconfig", &kc])
        .output()
        .unwrap();
    let err = stderr(&o);
    // Exit 1, not 3: the reference is checked before the cluster is contacted.
    assert_eq!(o.status.code(), Some(1), "{err}");
    assert!(err.contains("tenant") && err.contains("GELSENKIRCHEN_SERVICEKONTO"), "{err}");
}

#[test]
fn prune_is_for_whole_groups_only() {
    let o = portalctl(&["apply", "--tenant", "selfkant", "--prune"]);
    assert_eq!(o.status.code(), Some(2), "{}", stderr(&o));
    let o = portalctl(&["apply", "--group", "krz", "--force"]);
    assert_eq!(o.status.code(), Some(2), "--force needs --prune: {}", stderr(&o));
}
