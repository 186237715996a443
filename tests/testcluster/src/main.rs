//! `portalctl-testcluster`: run the test cluster stand-in standalone (for benchmarks and manual use). Test
//! infrastructure only; it is not a Kubernetes API server.

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use clap::Parser;
use portalctl_testcluster::{write_kubeconfig, TestCluster};

/// Run the in-memory Kubernetes API stand-in used by portalctl's tests until interrupted.
#[derive(Debug, Parser)]
#[command(name = "portalctl-testcluster", version)]
struct Args {
    /// Port on 127.0.0.1 to listen on (0: any free port).
    #[arg(long, default_value_t = 0)]
    port: u16,
    /// Write a kubeconfig for the cluster to this file.
    #[arg(long)]
    kubeconfig_out: Option<PathBuf>,
    /// Milliseconds after a spec change until a Deployment becomes Available.
    #[arg(long, default_value_t = 200)]
    readiness_delay_ms: u64,
    /// Address Ingresses get as their load-balancer IP.
    #[arg(long, default_value = "192.0.2.10")]
    load_balancer_ip: String,
}

#[tokio::main]
async fn main() -> ExitCode {
    let args = Args::parse();
    let cluster = match TestCluster::builder()
        .port(args.port)
        .readiness_delay(Duration::from_millis(args.readiness_delay_ms))
        .load_balancer_ip(&args.load_balancer_ip)
        .start()
        .await
    {
        Ok(cluster) => cluster,
        Err(err) => {
            eprintln!("error: {}", error_chain(&err));
            return ExitCode::FAILURE;
        }
    };
    if let Some(path) = &args.kubeconfig_out {
        if let Err(err) = write_kubeconfig(cluster.url(), path) {
            eprintln!("error: {}", error_chain(&err));
            return ExitCode::FAILURE;
        }
    }
    println!("{}", cluster.url());
    wait_for_signal().await;
    cluster.shutdown().await;
    ExitCode::SUCCESS
}

/// Ctrl-C or SIGTERM.
async fn wait_for_signal() {
    let mut term = match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
        Ok(term) => term,
        Err(_) => {
            let _ = tokio::signal::ctrl_c().await;
            return;
        }
    };
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {}
        _ = term.recv() => {}
    }
}

fn error_chain(err: &dyn std::error::Error) -> String {
    let mut text = err.to_string();
    let mut source = err.source();
    while let Some(s) = source {
        text.push_str(": ");
        text.push_str(&s.to_string());
        source = s.source();
    }
    text
}
