//! `portalctl dns plan|check` against a real DNS server (dnsmasq on loopback).

mod support;

use support::dnsserver::DnsServer;
use support::repo_root;
use support::workdir::Workdir;

#[test]
fn plan_prints_a_zone_snippet_for_every_hostname() {
    let env = Workdir::with_tenants(&repo_root().join("tenants"));
    let zone = env.run(&["dns", "plan", "--group", "heinsberg", "--ingress", "192.0.2.10", "--zone"]).ok().to_string();
    assert_eq!(zone.lines().filter(|l| l.contains(" IN A ")).count(), 11, "{zone}");
    assert!(zone.contains("service.kreis-heinsberg.de.") && zone.contains("192.0.2.10"), "{zone}");
    let json: serde_json::Value =
        serde_json::from_str(env.run(&["dns", "plan", "-g", "krz", "--ingress", "lb.krz.example", "-o", "json"]).ok())
            .unwrap();
    assert_eq!(json[0]["type"], "CNAME");
    assert_eq!(json[0]["value"], "lb.krz.example.");
    let bad = env.run(&["dns", "plan", "--ingress", "not a host"]);
    bad.code(1);
    assert!(bad.stderr.contains("neither an IP address nor a valid host name"), "{}", bad.stderr);
}

#[test]
fn check_reports_missing_and_wrong_records() {
    let Some(dns) = DnsServer::start(&[
        ("service.erkelenz.de", "192.0.2.10"),
        ("service.gangelt.de", "198.51.100.7"),
        ("service.heinsberg.de", "192.0.2.10"),
    ]) else {
        return;
    };
    let env = Workdir::with_tenants(&repo_root().join("tenants"));
    let ns = dns.addr.to_string();
    let run =
        env.run(&["dns", "check", "-g", "heinsberg", "--ingress", "192.0.2.10", "--nameserver", &ns, "-o", "json"]);
    run.code(1);
    let results: serde_json::Value = serde_json::from_str(&run.stdout).unwrap();
    let by_tenant = |t: &str| results.as_array().unwrap().iter().find(|r| r["tenant"] == t).unwrap().clone();
    assert_eq!(by_tenant("erkelenz")["ok"], true);
    assert_eq!(by_tenant("heinsberg")["ok"], true);
    assert_eq!(by_tenant("gangelt")["problem"], "DNS: service.gangelt.de points to 198.51.100.7, expected 192.0.2.10");
    assert_eq!(by_tenant("hueckelhoven")["problem"], "DNS: service.hueckelhoven.de has no A/AAAA record");
    let ok_count = results.as_array().unwrap().iter().filter(|r| r["ok"] == true).count();
    assert_eq!(ok_count, 2);
    // Only the tenants that resolve correctly: exit 0.
    let good =
        env.run(&["dns", "check", "-t", "erkelenz", "-t", "heinsberg", "--ingress", "192.0.2.10", "--nameserver", &ns]);
    good.code(0);
    assert!(good.stderr.contains("2 of 2 name(s) resolve as planned"), "{}", good.stderr);
}
