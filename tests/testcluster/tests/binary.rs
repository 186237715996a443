//! The standalone `portalctl-testcluster` binary and the end-to-end cluster selection.

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};

use k8s_openapi::api::core::v1::Namespace;
use kube::api::{Api, ListParams};
use kube::config::{KubeConfigOptions, Kubeconfig};
use kube::{Client, Config};
use portalctl_testcluster::{E2eCluster, E2E_KUBECONFIG_ENV};

#[tokio::test]
async fn binary_prints_its_url_and_writes_a_working_kubeconfig() {
    let dir = tempfile::tempdir().unwrap();
    let kubeconfig_path = dir.path().join("kubeconfig.yaml");
    let mut child = Command::new(env!("CARGO_BIN_EXE_portalctl-testcluster"))
        .args(["--port", "0", "--readiness-delay-ms", "50", "--kubeconfig-out"])
        .arg(&kubeconfig_path)
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let mut url = String::new();
    BufReader::new(child.stdout.take().unwrap()).read_line(&mut url).unwrap();
    let url = url.trim().to_string();
    assert!(url.starts_with("http://127.0.0.1:"), "{url}");

    let kubeconfig = Kubeconfig::read_from(&kubeconfig_path).unwrap();
    assert_eq!(kubeconfig.clusters[0].cluster.as_ref().unwrap().server.as_deref(), Some(url.as_str()));
    let config = Config::from_custom_kubeconfig(kubeconfig, &KubeConfigOptions::default()).await.unwrap();
    let namespaces = Api::<Namespace>::all(Client::try_from(config).unwrap());
    let names: Vec<String> = namespaces
        .list(&ListParams::default())
        .await
        .unwrap()
        .items
        .into_iter()
        .map(|n| n.metadata.name.unwrap())
        .collect();
    assert_eq!(names, ["default", "kube-public", "kube-system"]);
    child.kill().unwrap();
    child.wait().unwrap();
}

#[tokio::test]
async fn e2e_cluster_follows_the_environment() {
    let cluster = E2eCluster::from_env().await.unwrap();
    match std::env::var_os(E2E_KUBECONFIG_ENV).filter(|v| !v.is_empty()) {
        Some(path) => {
            assert!(cluster.standin().is_none());
            assert_eq!(cluster.kubeconfig_path(), std::path::Path::new(&path));
        }
        None => {
            let standin = cluster.standin().expect("a stand-in when the variable is unset");
            assert_eq!(cluster.kubeconfig_path(), standin.kubeconfig_path());
            assert!(cluster.kubeconfig_path().exists());
        }
    }
}

#[test]
fn blocking_start_serves_synchronous_callers() {
    use std::io::{Read, Write};

    let cluster = portalctl_testcluster::TestCluster::start_blocking().unwrap();
    let mut stream = std::net::TcpStream::connect(cluster.addr()).unwrap();
    stream
        .write_all(b"GET /api/v1/namespaces HTTP/1.1\r\nHost: test\r\nAuthorization: Bearer testcluster-token\r\nConnection: close\r\n\r\n")
        .unwrap();
    let mut response = String::new();
    stream.read_to_string(&mut response).unwrap();
    assert!(response.starts_with("HTTP/1.1 200"), "{response}");
    assert!(response.contains("\"kind\":\"NamespaceList\""), "{response}");
    assert_eq!(cluster.requests().len(), 1);
    drop(cluster);

    let e2e = E2eCluster::from_env_blocking().unwrap();
    assert!(e2e.kubeconfig_path().exists() || std::env::var_os(E2E_KUBECONFIG_ENV).is_some());
}
