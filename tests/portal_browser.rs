//! Headless Chromium against the real server: a tenant's home page and a search, checked in
//! the browser's DOM, with screenshots in `target/test-artifacts/`; and a BundID login through
//! the SAML HTTP-POST binding against the samlify test IdP. Runs always in CI
//! (`CI=true`); elsewhere it is skipped, with a message, when Chromium is not installed.

mod support;

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};
use support::TestEnv;

fn chromium() -> Option<PathBuf> {
    for c in ["/usr/bin/chromium", "/usr/bin/chromium-browser", "/usr/bin/google-chrome"] {
        if Path::new(c).exists() {
            return Some(c.into());
        }
    }
    if std::env::var("CI").is_ok_and(|v| v == "true") {
        panic!("chromium is missing in CI; .ci/run installs it with apt-get install -y chromium");
    }
    eprintln!("skipped: chromium is not installed (apt-get install chromium) and this is not CI");
    None
}

/// Run headless Chromium with `args` and the URL; returns stdout. Killed after 90 s.
fn browse(bin: &Path, profile: &Path, args: &[&str], url: &str) -> String {
    let mut cmd = Command::new(bin);
    cmd.args([
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-dev-shm-usage",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--no-first-run",
        "--hide-scrollbars",
        "--host-resolver-rules=MAP *.localhost 127.0.0.1",
    ])
    .arg(format!("--user-data-dir={}", profile.display()))
    .args(args)
    .arg(url)
    .stdout(Stdio::piped())
    .stderr(Stdio::null());
    let mut child = cmd.spawn().expect("start chromium");
    let deadline = Instant::now() + Duration::from_secs(90);
    loop {
        if child.try_wait().unwrap().is_some() {
            break;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            panic!("chromium did not finish loading {url}");
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    let out = child.wait_with_output().unwrap();
    String::from_utf8_lossy(&out.stdout).into_owned()
}

#[tokio::test(flavor = "multi_thread")]
async fn home_and_search_in_a_real_browser() {
    let Some(bin) = chromium() else { return };
    let Some(env) = TestEnv::new(&["espelkamp", "detmold"]).await else { return };
    for slug in ["espelkamp", "detmold"] {
        let out = env.portalctl().args(["content", "import", "--tenant", slug, "--starter", "-q"]).output().unwrap();
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    }
    let out = env.portalctl().args(["content", "publish", "--tenant", "espelkamp", "--all", "-q"]).output().unwrap();
    assert!(out.status.success());
    let server = env.start_server();
    let host = &env.tenant("espelkamp").hostnames[1];
    let base = format!("http://{host}:{}", server.port);
    let artifacts = support::repo_root().join("target/test-artifacts");
    std::fs::create_dir_all(&artifacts).unwrap();
    let profile = tempfile::tempdir().unwrap();

    // Home page: DOM as the browser built it.
    let dom = browse(&bin, profile.path(), &["--dump-dom", "--virtual-time-budget=3000"], &format!("{base}/"));
    assert!(dom.contains("<html lang=\"de\">"), "{dom}");
    assert!(dom.contains("Stadt Espelkamp"), "{dom}");
    assert!(dom.contains("<h2 id=\"lebenslagen\">Lebenslagen</h2>"), "{dom}");
    assert!(dom.contains("Hund und Haustier") && dom.contains("Familie und Kind"), "{dom}");
    assert!(!dom.contains("Stadt Detmold"));

    // Search with a typo, as a citizen would type it into the form.
    let url = format!("{base}/suche?q=Hundeanmeldng");
    let dom = browse(&bin, profile.path(), &["--dump-dom", "--virtual-time-budget=3000"], &url);
    let heading = dom.split("<h1 id=\"ergebnisse\">").nth(1).and_then(|s| s.split("</h1>").next()).unwrap_or("");
    assert!(heading.contains("Ergebnis") && heading.contains("Hundeanmeldng"), "heading {heading:?}\n{dom}");
    assert!(!heading.contains("Keine"), "{heading}");
    assert!(dom.contains("<a class=\"result-title\" href=\"/leistungen/hundeanmeldung\">Hundeanmeldung</a>"), "{dom}");

    // Screenshots: desktop home, desktop search, phone home.
    for (name, size, url) in [
        ("portal-home.png", "1280,1400", format!("{base}/")),
        ("portal-search.png", "1280,1000", format!("{base}/suche?q=Personalausweis")),
        ("portal-service.png", "1280,1200", format!("{base}/leistungen/gewerbeanmeldung")),
        ("portal-home-mobile.png", "390,1400", format!("{base}/")),
    ] {
        let path = artifacts.join(name);
        let _ = std::fs::remove_file(&path);
        browse(
            &bin,
            profile.path(),
            &[&format!("--screenshot={}", path.display()), &format!("--window-size={size}")],
            &url,
        );
        let png = std::fs::read(&path).unwrap_or_else(|e| panic!("no screenshot {}: {e}", path.display()));
        assert_eq!(&png[1..4], b"PNG");
        assert!(png.len() > 10_000, "{name} looks empty ({} bytes)", png.len());
    }
}

/// The BundID login in Chromium, end to end through the HTTP-POST binding: `/anmelden` answers
/// with the page whose one inline script — allowed only by its hash in the page's
/// Content-Security-Policy — posts the signed AuthnRequest to the samlify IdP (tests/idp/saml.js),
/// whose form posts the response to the ACS; the browser ends on the start page, logged in.
/// Needs `npm ci --prefix tests/idp` as well.
#[tokio::test(flavor = "multi_thread")]
async fn bundid_login_by_http_post_in_a_real_browser() {
    use portalctl::servicekonto::keys::{self, SpKeys};
    use portalctl::servicekonto::metadata::{self, SpMetadataParams};
    let Some(bin) = chromium() else { return };
    let Some(env) = TestEnv::new(&["detmold"]).await else { return };
    let host = env.tenant("detmold").hostnames[0].clone();
    let secrets = env.dir.path().join("servicekonto-secrets");
    std::fs::create_dir_all(&secrets).unwrap();
    let port = support::free_port();
    let bind = |idp_port: u16| {
        let path = env.group_dir().join("detmold.yaml");
        let text = std::fs::read_to_string(&path).unwrap();
        let base = text.split("  servicekonto:\n").next().unwrap().to_string();
        let binding = format!(
            "  servicekonto:\n    provider: bundid\n    environment: integration\n    trustLevel: substantiell\n    \
             idpMetadataUrl: http://127.0.0.1:{idp_port}/metadata\n"
        );
        std::fs::write(&path, format!("{base}{binding}")).unwrap();
    };

    // Our SP key pair and metadata for the tenant's canonical host, the IdP's own key pair.
    bind(9);
    let built = portalctl::tenant::load_dir(env.dir.path()).unwrap();
    assert_eq!(built.error_count(), 0, "{:#?}", built.diagnostics);
    let detmold = built.catalog.tenant("detmold").unwrap().clone();
    let (sp_keys, _) = keys::load_or_generate(&secrets, &detmold, portalctl::tenant::Environment::Integration).unwrap();
    let base = format!("http://{host}:{port}");
    let sp_md = metadata::sp_metadata(&SpMetadataParams::for_tenant(&detmold, &base, &sp_keys).unwrap()).unwrap();
    std::fs::write(secrets.join("sp-metadata.xml"), sp_md).unwrap();
    let now = time::OffsetDateTime::now_utc();
    let idp_keys =
        SpKeys::self_signed("Test IdP", "Test", now - time::Duration::hours(1), now + time::Duration::days(9)).unwrap();
    std::fs::write(secrets.join("idp.key.pem"), idp_keys.private_key_pem().unwrap()).unwrap();
    std::fs::write(secrets.join("idp.crt.pem"), &idp_keys.cert_pem).unwrap();
    let idp = support::idp::start_node(
        "saml.js",
        &[
            ("SP_METADATA", secrets.join("sp-metadata.xml").display().to_string()),
            ("IDP_KEY", secrets.join("idp.key.pem").display().to_string()),
            ("IDP_CERT", secrets.join("idp.crt.pem").display().to_string()),
        ],
    );
    bind(idp.port);
    for args in [
        &["content", "import", "--tenant", "detmold", "--starter", "-q"][..],
        &["content", "publish", "--tenant", "detmold", "--all", "-q"],
    ] {
        let out = env.portalctl().args(args).output().unwrap();
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    }
    let secrets_arg = secrets.display().to_string();
    let server = env.start_server_on(port, &["--insecure-http-cookies", "--secrets-dir", &secrets_arg]);

    let profile = tempfile::tempdir().unwrap();
    let resolve = format!("--host-resolver-rules=MAP {host} 127.0.0.1");
    let artifacts = support::repo_root().join("target/test-artifacts");
    std::fs::create_dir_all(&artifacts).unwrap();
    let screenshot = |name: &str, url: &str, extra: &[&str]| {
        let path = artifacts.join(name);
        let _ = std::fs::remove_file(&path);
        let shot = format!("--screenshot={}", path.display());
        let args: Vec<&str> = [resolve.as_str(), shot.as_str(), "--window-size=1280,1000"]
            .into_iter()
            .chain(extra.iter().copied())
            .collect();
        browse(&bin, profile.path(), &args, url);
        let png = std::fs::read(&path).unwrap_or_else(|e| panic!("no screenshot {}: {e}", path.display()));
        assert!(png.len() > 10_000 && &png[1..4] == b"PNG", "{name} looks empty");
    };

    // A service that needs "hoch" offers the Online-Ausweis login.
    screenshot("service-hoch-login.png", &format!("{base}/leistungen/fuehrungszeugnis"), &[]);

    let dom = browse(
        &bin,
        profile.path(),
        &[&resolve, "--dump-dom", "--virtual-time-budget=15000"],
        &format!("{base}/anmelden?next=/"),
    );
    let requests: Vec<serde_json::Value> =
        reqwest::get(format!("http://127.0.0.1:{}/requests", idp.port)).await.unwrap().json().await.unwrap();
    assert_eq!(requests.len(), 1, "the browser posted one AuthnRequest: {requests:?}\n{dom}");
    assert_eq!(requests[0]["binding"], "post", "{requests:?}");
    assert_eq!(requests[0]["organizationDisplayName"], "Stadt Detmold", "{requests:?}");
    assert!(requests[0]["refused"].is_null(), "{requests:?}");
    // Chromium sometimes dumps nothing when the last navigation of the chain (cross-site, back from
    // the IdP) swapped the page's process; the session cookie is in the profile, so load the start
    // page once more.
    let dom = if dom.trim().is_empty() {
        browse(&bin, profile.path(), &[&resolve, "--dump-dom"], &format!("{base}/"))
    } else {
        dom
    };
    assert!(
        dom.contains("class=\"user-name\">Erika Mustermann<") && dom.contains("Stadt Detmold"),
        "logged in on the tenant's start page:\n{dom}\n{}",
        server.log_text()
    );

    // Logged in at "substantiell": the service that needs "hoch" asks for the Online-Ausweis again.
    let url = format!("{base}/leistungen/fuehrungszeugnis");
    let dom = browse(&bin, profile.path(), &[&resolve, "--dump-dom"], &url);
    assert!(
        dom.contains("Vertrauensniveau „substantiell“ angemeldet") && dom.contains("Mit Online-Ausweis anmelden"),
        "{dom}"
    );
    screenshot("service-hoch-login-again.png", &url, &[]);
}
