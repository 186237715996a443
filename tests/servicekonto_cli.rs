//! `portalctl servicekonto metadata|check|rebind|confirm`, run as the real binary against
//! temporary tenant directories, a temporary secrets directory and real HTTP endpoints.

use axum::routing::get;
use axum::Router;
use portalctl::servicekonto::keys::SpKeys;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use time::{Duration, OffsetDateTime};

fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn portalctl(tenants: &Path, secrets: &Path, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_portalctl"))
        .arg("--tenants")
        .arg(tenants)
        .args(args)
        .env("PORTALCTL_SECRETS_DIR", secrets)
        .env("NO_COLOR", "1")
        .output()
        .unwrap()
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

fn redact_certificates(xml: &str) -> String {
    let mut out = String::new();
    let mut rest = xml;
    while let Some(i) = rest.find("<ds:X509Certificate>") {
        let j = rest[i..].find("</ds:X509Certificate>").unwrap() + i;
        out.push_str(&rest[..i]);
        out.push_str("<ds:X509Certificate>[certificate]");
        rest = &rest[j..];
    }
    out.push_str(rest);
    out
}

#[test]
fn metadata_generates_keys_once_and_writes_sp_metadata() {
    let secrets = tempfile::tempdir().unwrap();
    let out = portalctl(&repo().join("tenants"), secrets.path(), &["servicekonto", "metadata", "--tenant", "detmold"]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let xml = text(&out.stdout);
    let stderr = text(&out.stderr);
    assert!(stderr.contains("generated a new SP key pair"), "{stderr}");
    assert!(!xml.contains("PRIVATE KEY") && !stderr.contains("PRIVATE KEY"));
    insta::assert_snapshot!("sp_metadata_detmold", redact_certificates(&xml));

    let key = secrets.path().join("krz/detmold.saml-integration.key.pem");
    let cert = secrets.path().join("krz/detmold.saml-integration.crt.pem");
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt as _;
        assert_eq!(std::fs::metadata(&key).unwrap().permissions().mode() & 0o777, 0o600);
        assert_eq!(std::fs::metadata(secrets.path().join("krz")).unwrap().permissions().mode() & 0o777, 0o700);
    }
    // The certificate in the metadata is the stored one, names the host and is valid for years.
    let der = portalctl::servicekonto::keys::pem_to_der(&std::fs::read_to_string(&cert).unwrap()).unwrap();
    use base64::Engine as _;
    assert!(xml.contains(&base64::engine::general_purpose::STANDARD.encode(&der)));
    let info = portalctl::servicekonto::metadata::cert_info(&der).unwrap();
    assert!(info.subject.contains("service.detmold.de"), "{}", info.subject);
    assert!(info.not_after - OffsetDateTime::now_utc() > Duration::days(2 * 365));
    let parsed_key = portalctl::servicekonto::metadata::cert_rsa_key(&der).unwrap();
    use rsa::traits::PublicKeyParts as _;
    assert_eq!(parsed_key.size() * 8, portalctl::servicekonto::keys::RSA_BITS);

    // Second run: same key, written to a file, nothing generated.
    let key_before = std::fs::read(&key).unwrap();
    let file = secrets.path().join("detmold-integration.xml");
    let out = portalctl(
        &repo().join("tenants"),
        secrets.path(),
        &["servicekonto", "metadata", "--tenant", "detmold", "--out", file.to_str().unwrap()],
    );
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert!(!text(&out.stderr).contains("generated"));
    assert_eq!(std::fs::read(&key).unwrap(), key_before);
    assert_eq!(std::fs::read_to_string(&file).unwrap(), xml);

    // The production registration gets its own key pair and entity ID.
    let out = portalctl(
        &repo().join("tenants"),
        secrets.path(),
        &["servicekonto", "metadata", "--tenant", "detmold", "--environment", "production"],
    );
    assert!(out.status.success());
    assert!(secrets.path().join("krz/detmold.saml-production.key.pem").is_file());
    let production = text(&out.stdout);
    assert_ne!(redact_certificates(&production), production);
    assert_ne!(production, xml);
    assert!(production.contains(r#"entityID="https://service.detmold.de/saml/metadata""#), "{production}");
    assert!(xml.contains(r#"entityID="https://service.detmold.de/saml/metadata/integration""#), "{xml}");

    // --out-dir: one file per environment, each with its environment's key and entity ID.
    let dir = secrets.path().join("metadata");
    let out = portalctl(
        &repo().join("tenants"),
        secrets.path(),
        &["servicekonto", "metadata", "--tenant", "detmold", "--out-dir", dir.to_str().unwrap()],
    );
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert_eq!(std::fs::read_to_string(dir.join("detmold.saml-integration.metadata.xml")).unwrap(), xml);
    assert_eq!(std::fs::read_to_string(dir.join("detmold.saml-production.metadata.xml")).unwrap(), production);
    let mut files: Vec<_> = std::fs::read_dir(&dir).unwrap().map(|e| e.unwrap().file_name()).collect();
    files.sort();
    assert_eq!(files.len(), 2, "{files:?}");
    // The former environment name still works.
    let out = portalctl(
        &repo().join("tenants"),
        secrets.path(),
        &["servicekonto", "metadata", "--tenant", "detmold", "--environment", "live"],
    );
    assert!(out.status.success());
    assert_eq!(text(&out.stdout), production);

    // Unknown tenants are an error naming the tenant.
    let out = portalctl(&repo().join("tenants"), secrets.path(), &["servicekonto", "metadata", "--tenant", "nowhere"]);
    assert!(!out.status.success());
    assert!(text(&out.stderr).contains("nowhere"));
}

fn idp_metadata(entity: &str, cert: &SpKeys) -> String {
    format!(
        r#"<?xml version="1.0"?>
<md:EntityDescriptor xmlns:md="urn:oasis:names:tc:SAML:2.0:metadata" entityID="{entity}">
  <md:IDPSSODescriptor protocolSupportEnumeration="urn:oasis:names:tc:SAML:2.0:protocol" WantAuthnRequestsSigned="true">
    <md:KeyDescriptor use="signing"><ds:KeyInfo xmlns:ds="http://www.w3.org/2000/09/xmldsig#"><ds:X509Data><ds:X509Certificate>{}</ds:X509Certificate></ds:X509Data></ds:KeyInfo></md:KeyDescriptor>
    <md:SingleSignOnService Binding="urn:oasis:names:tc:SAML:2.0:bindings:HTTP-Redirect" Location="{entity}/sso"/>
  </md:IDPSSODescriptor>
</md:EntityDescriptor>"#,
        cert.cert_base64()
    )
}

fn write_tenants(dir: &Path, urls: &[(&str, &str)]) {
    let g = dir.join("e2e");
    std::fs::create_dir_all(&g).unwrap();
    std::fs::write(
        g.join("group.yaml"),
        "apiVersion: portalctl.dev/v1alpha1\nkind: RolloutGroup\nmetadata:\n  name: e2e\nspec:\n  displayName: \"Test\"\n  waves:\n    - name: main\n  defaults:\n    servicekonto:\n      provider: bundid\n",
    )
    .unwrap();
    let communes =
        [("detmold", "05766020", "05766"), ("espelkamp", "05770008", "05770"), ("blomberg", "05766016", "05766")];
    for ((slug, url), (_, ags, kreis)) in urls.iter().zip(communes) {
        std::fs::write(
            g.join(format!("{slug}.yaml")),
            format!(
                "apiVersion: portalctl.dev/v1alpha1\nkind: Tenant\nmetadata:\n  name: {slug}\nspec:\n  displayName: \"Stadt {slug}\"\n  ags: \"{ags}\"\n  kind: stadt\n  parent: \"{kreis}\"\n  wave: main\n  hostnames:\n    - service.{slug}.de\n  servicekonto:\n    idpMetadataUrl: {url}\n"
            ),
        )
        .unwrap();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn check_reports_expiring_certificates_and_unreachable_idps() {
    let now = OffsetDateTime::now_utc();
    let long = SpKeys::self_signed("IdP long", "Test", now - Duration::days(1), now + Duration::days(400)).unwrap();
    let short = SpKeys::self_signed("IdP short", "Test", now - Duration::days(1), now + Duration::days(10)).unwrap();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://127.0.0.1:{}", listener.local_addr().unwrap().port());
    let (long_md, short_md) =
        (idp_metadata(&format!("{base}/long"), &long), idp_metadata(&format!("{base}/short"), &short));
    let app = Router::new()
        .route("/long", get(move || async move { long_md }))
        .route("/short", get(move || async move { short_md }))
        .route("/broken", get(|| async { "<html>not metadata</html>" }));
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    // A port nobody listens on.
    let closed = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap().port()
    };

    let dir = tempfile::tempdir().unwrap();
    let secrets = dir.path().join("secrets");
    let run = |urls: Vec<String>, extra: Vec<&'static str>| {
        let secrets = secrets.clone();
        tokio::task::spawn_blocking(move || run_check(&secrets, urls, extra))
    };

    let (code, json) = run(vec![format!("{base}/long"), format!("{base}/long")], vec![]).await.unwrap();
    assert_eq!(code, Some(0), "{json:#}");
    assert_eq!(json.as_array().unwrap().len(), 2);
    assert_eq!(json[0]["status"], "ok");
    assert!(json[0]["certificates"][0]["daysLeft"].as_i64().unwrap() >= 399);

    let (code, json) = run(vec![format!("{base}/long"), format!("{base}/short")], vec![]).await.unwrap();
    assert_eq!(code, Some(1), "{json:#}");
    let espelkamp = json.as_array().unwrap().iter().find(|r| r["tenant"] == "espelkamp").unwrap();
    assert_eq!(espelkamp["status"], "warning");
    assert_eq!(espelkamp["certificates"][0]["daysLeft"].as_i64(), Some(9));
    assert!(espelkamp["message"].as_str().unwrap().contains("IdP short"));

    // The same certificate passes with a shorter minimum validity.
    let (code, _) = run(vec![format!("{base}/short")], vec!["--min-validity", "7d"]).await.unwrap();
    assert_eq!(code, Some(0));

    let (code, json) =
        run(vec![format!("{base}/long"), format!("{base}/broken"), format!("http://127.0.0.1:{closed}/md")], vec![])
            .await
            .unwrap();
    assert_eq!(code, Some(3), "{json:#}");
    let status = |slug: &str| json.as_array().unwrap().iter().find(|r| r["tenant"] == slug).unwrap()["status"].clone();
    assert_eq!(status("detmold"), "ok");
    assert_eq!(status("espelkamp"), "invalid");
    assert_eq!(status("blomberg"), "unreachable");
}

fn run_check(secrets: &Path, urls: Vec<String>, extra: Vec<&'static str>) -> (Option<i32>, serde_json::Value) {
    let tenants = tempfile::tempdir().unwrap();
    let pairs: Vec<(&str, &str)> =
        ["detmold", "espelkamp", "blomberg"].iter().zip(urls.iter()).map(|(s, u)| (*s, u.as_str())).collect();
    write_tenants(tenants.path(), &pairs);
    let mut args = vec!["servicekonto", "check", "-o", "json"];
    args.extend(extra);
    let out = portalctl(tenants.path(), secrets, &args);
    let json: serde_json::Value = serde_json::from_slice(&out.stdout)
        .unwrap_or_else(|e| panic!("{e}: {} {}", text(&out.stdout), text(&out.stderr)));
    (out.status.code(), json)
}

fn copy_heinsberg_subset(dir: &Path) -> PathBuf {
    let g = dir.join("heinsberg");
    std::fs::create_dir_all(&g).unwrap();
    for f in ["group.yaml", "gangelt.yaml", "selfkant.yaml"] {
        std::fs::copy(repo().join("tenants/heinsberg").join(f), g.join(f)).unwrap();
    }
    g
}

#[test]
fn rebind_plans_then_moves_a_group_all_or_nothing_and_confirm_drops_old_keys() {
    let tenants = tempfile::tempdir().unwrap();
    let secrets = tempfile::tempdir().unwrap();
    let g = copy_heinsberg_subset(tenants.path());
    let original = |f: &str| std::fs::read_to_string(repo().join("tenants/heinsberg").join(f)).unwrap();
    let now = |f: &str| std::fs::read_to_string(g.join(f)).unwrap();

    // Gangelt already has keys from its BundID registration.
    let out = portalctl(tenants.path(), secrets.path(), &["servicekonto", "metadata", "--tenant", "gangelt"]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let old_key = std::fs::read(secrets.path().join("heinsberg/gangelt.saml-integration.key.pem")).unwrap();

    // Plan only: nothing written.
    let out =
        portalctl(tenants.path(), secrets.path(), &["servicekonto", "rebind", "--group", "heinsberg", "--to", "saml"]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let plan = text(&out.stdout);
    assert!(plan.contains("gangelt") && plan.contains("selfkant") && plan.contains("bundid"), "{plan}");
    assert_eq!(now("gangelt.yaml"), original("gangelt.yaml"));
    assert!(!secrets.path().join("heinsberg/pending").exists());

    // Moving to OIDC without issuer/client ID fails validation: no file touched, nothing staged.
    let out = portalctl(
        tenants.path(),
        secrets.path(),
        &["servicekonto", "rebind", "--group", "heinsberg", "--to", "oidc", "--confirm"],
    );
    assert_eq!(out.status.code(), Some(1));
    assert!(text(&out.stderr).contains("issuer"), "{}", text(&out.stderr));
    assert_eq!(now("gangelt.yaml"), original("gangelt.yaml"));
    assert_eq!(now("selfkant.yaml"), original("selfkant.yaml"));
    assert!(!secrets.path().join("heinsberg/pending").exists());

    // With --confirm: provider line added, the rest of each file unchanged.
    let url = "https://idp.example.org/saml/metadata";
    let out = portalctl(
        tenants.path(),
        secrets.path(),
        &["servicekonto", "rebind", "--group", "heinsberg", "--to", "saml", "--idp-metadata-url", url, "--confirm"],
    );
    assert!(out.status.success(), "{}", text(&out.stderr));
    for f in ["gangelt.yaml", "selfkant.yaml"] {
        let expected = original(f)
            .replace("  servicekonto:\n", &format!("  servicekonto:\n    provider: saml\n    idpMetadataUrl: {url}\n"));
        assert_eq!(now(f), expected);
    }
    let out = portalctl(tenants.path(), secrets.path(), &["tenant", "show", "gangelt", "-o", "json"]);
    let shown: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(shown["servicekonto"]["provider"], "saml");

    let dir = secrets.path().join("heinsberg");
    let new_key = std::fs::read(dir.join("gangelt.saml-integration.key.pem")).unwrap();
    assert_ne!(new_key, old_key);
    assert_eq!(std::fs::read(dir.join("gangelt.saml-integration.previous.key.pem")).unwrap(), old_key);
    assert!(dir.join("selfkant.saml-integration.key.pem").is_file());
    assert!(!dir.join("selfkant.saml-integration.previous.key.pem").exists());
    let md = std::fs::read_to_string(dir.join("pending/gangelt.saml-integration.metadata.xml")).unwrap();
    assert!(md.contains("https://service.gangelt.de/anmelden/saml/acs"));
    let cert = std::fs::read_to_string(dir.join("gangelt.saml-integration.crt.pem")).unwrap();
    use base64::Engine as _;
    let der = portalctl::servicekonto::keys::pem_to_der(&cert).unwrap();
    assert!(
        md.contains(&base64::engine::general_purpose::STANDARD.encode(der)),
        "pending metadata carries the new certificate"
    );

    // A second rebind before confirmation is refused.
    let out = portalctl(
        tenants.path(),
        secrets.path(),
        &["servicekonto", "rebind", "--group", "heinsberg", "--to", "bundid", "--confirm"],
    );
    assert_eq!(out.status.code(), Some(1));
    assert!(text(&out.stderr).contains("unconfirmed rebind"), "{}", text(&out.stderr));
    assert!(now("gangelt.yaml").contains("provider: saml"));

    // Confirm: previous keys and the pending area go; the new keys stay.
    let out = portalctl(tenants.path(), secrets.path(), &["servicekonto", "confirm", "--group", "heinsberg"]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert!(!dir.join("gangelt.saml-integration.previous.key.pem").exists());
    assert!(!dir.join("pending").exists());
    assert_eq!(std::fs::read(dir.join("gangelt.saml-integration.key.pem")).unwrap(), new_key);
    let out = portalctl(tenants.path(), secrets.path(), &["servicekonto", "confirm", "--group", "heinsberg"]);
    assert_eq!(out.status.code(), Some(1));
}
