//! A real DNS server for tests: dnsmasq (Debian package `dnsmasq-base`) on a loopback port, authoritative for `.de`
//! with the records a test gives it.

use std::process::{Child, Command, Stdio};

pub struct DnsServer {
    child: Child,
    pub addr: std::net::SocketAddr,
}

impl DnsServer {
    /// Start dnsmasq answering `records` (name, IPv4). Returns `None` (and says why) when dnsmasq is not installed
    /// outside CI; in CI a missing dnsmasq fails the test.
    pub fn start(records: &[(&str, &str)]) -> Option<DnsServer> {
        let bin = ["/usr/sbin/dnsmasq", "/usr/bin/dnsmasq"].into_iter().find(|p| std::path::Path::new(p).exists());
        let Some(bin) = bin else {
            assert!(std::env::var("CI").is_err(), "dnsmasq is required in CI (.ci/run installs dnsmasq-base)");
            eprintln!("skipping: dnsmasq not installed (apt-get install dnsmasq-base)");
            return None;
        };
        let port = std::net::UdpSocket::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
        let mut cmd = Command::new(bin);
        cmd.args([
            "--keep-in-foreground",
            "--conf-file=/dev/null",
            "--pid-file=",
            "--no-resolv",
            "--no-hosts",
            "--bind-interfaces",
            "--listen-address=127.0.0.1",
            "--local=/de/",
            "--user=root",
        ])
        .arg(format!("--port={port}"));
        for (name, ip) in records {
            cmd.arg(format!("--host-record={name},{ip}"));
        }
        let child = cmd.stdout(Stdio::null()).stderr(Stdio::null()).spawn().expect("start dnsmasq");
        let addr: std::net::SocketAddr = format!("127.0.0.1:{port}").parse().unwrap();
        // Dropping the server kills and reaps dnsmasq, also when it never came up.
        let server = DnsServer { child, addr };
        // Wait until it answers on TCP (dnsmasq serves TCP and UDP on the same port).
        for _ in 0..100 {
            if std::net::TcpStream::connect(addr).is_ok() {
                return Some(server);
            }
            std::thread::sleep(std::time::Duration::from_millis(20));
        }
        panic!("dnsmasq did not start on {addr}");
    }
}

impl Drop for DnsServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
