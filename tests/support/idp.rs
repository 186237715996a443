//! The test identity providers of `tests/idp` (node: samlify for SAML, oidc-provider for
//! OpenID Connect), started as child processes on free loopback ports.

use std::io::BufRead as _;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

/// A node process running one of the test IdPs; killed on drop.
pub struct NodeIdp {
    child: Child,
    pub port: u16,
}

impl Drop for NodeIdp {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

pub fn idp_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/idp")
}

/// Start `tests/idp/<script>` with `env`; returns once it printed its port.
pub fn start_node(script: &str, env: &[(&str, String)]) -> NodeIdp {
    assert!(
        idp_dir().join("node_modules").is_dir(),
        "tests/idp/node_modules is missing: run `npm ci --prefix tests/idp` first"
    );
    let mut cmd = Command::new("node");
    // stdin stays open while this process lives; the IdP exits when it closes.
    cmd.arg(script).current_dir(idp_dir()).stdin(Stdio::piped()).stdout(Stdio::piped()).stderr(Stdio::inherit());
    for (k, v) in env {
        cmd.env(k, v);
    }
    let mut child = cmd.spawn().expect("node must be installed to run the identity providers");
    let stdout = child.stdout.take().unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in std::io::BufReader::new(stdout).lines().map_while(Result::ok) {
            if let Some(p) = line.strip_prefix("listening ") {
                let _ = tx.send(p.trim().parse::<u16>().unwrap());
            }
        }
    });
    let port = rx.recv_timeout(Duration::from_secs(30)).unwrap_or_else(|_| panic!("{script} did not start"));
    NodeIdp { child, port }
}
