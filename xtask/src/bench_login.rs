//! `cargo xtask bench login`: how many logins per second the portal server can start
//! (`GET /anmelden`) for a SAML tenant (a signed AuthnRequest: one RSA-3072 signature each) and
//! an OIDC tenant, under `wrk` load on loopback, with the local test identity providers of
//! `tests/idp` (their metadata and discovery documents are fetched once and cached). Each
//! start stores the login in progress (since sessions moved to PostgreSQL: one INSERT).
//!
//! `BENCH_LOGIN_BINARY=<path>` measures another server binary (e.g. a build from before a
//! change) with the same setup, which the freshly built binary does.

use crate::bench::{release_binary, tempfile_dir};
use crate::bench_serve::{free_port, get, lua, need, psql, uptime, url_db, vm_hwm_mib, wrk, Guard, Run};
use crate::root;
use anyhow::{bail, Context, Result};
use std::io::BufRead as _;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

const DB: &str = "portalctl_bench_login";
const GROUP: &str = "benchlogin";
const SAML_HOST: &str = "service.detmold.test";
const OIDC_HOST: &str = "service.espelkamp.test";

fn tenant_yaml(slug: &str, ags: &str, parent: &str, host: &str, binding: &str) -> String {
    format!(
        "apiVersion: portalctl.dev/v1alpha1\nkind: Tenant\nmetadata:\n  name: {slug}\nspec:\n  displayName: \"Stadt {slug}\"\n  \
         ags: \"{ags}\"\n  kind: stadt\n  parent: \"{parent}\"\n  wave: main\n  hostnames:\n    - {host}\n  servicekonto:\n{binding}"
    )
}

fn write_tenants(dir: &Path, saml_idp: &str, oidc_idp: &str, secret_file: &Path) -> Result<()> {
    let g = dir.join(GROUP);
    std::fs::create_dir_all(&g)?;
    std::fs::write(
        g.join("group.yaml"),
        format!(
            "apiVersion: portalctl.dev/v1alpha1\nkind: RolloutGroup\nmetadata:\n  name: {GROUP}\nspec:\n  \
             displayName: \"Login benchmark\"\n  waves:\n    - name: main\n"
        ),
    )?;
    let saml = format!(
        "    provider: bundid\n    environment: integration\n    trustLevel: substantiell\n    idpMetadataUrl: {saml_idp}/metadata\n"
    );
    std::fs::write(g.join("detmold.yaml"), tenant_yaml("detmold", "05766020", "05766", SAML_HOST, &saml))?;
    let oidc = format!(
        "    provider: oidc\n    trustLevel: substantiell\n    issuer: {oidc_idp}\n    clientId: portal-espelkamp\n    \
         credentials:\n      file: {}\n",
        secret_file.display()
    );
    std::fs::write(g.join("espelkamp.yaml"), tenant_yaml("espelkamp", "05770008", "05770", OIDC_HOST, &oidc))?;
    Ok(())
}

/// Start a test IdP (`tests/idp/<script>`); returns it and its port.
fn start_idp(script: &str, env: &[(&str, String)]) -> Result<(Child, u16)> {
    let idp = root().join("tests/idp");
    if !idp.join("node_modules").is_dir() {
        bail!("tests/idp/node_modules is missing: run `npm ci --prefix tests/idp`");
    }
    let mut child = Command::new("node")
        .arg(script)
        .current_dir(&idp)
        .envs(env.iter().map(|(k, v)| (k, v)))
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .context("node")?;
    let stdout = child.stdout.take().context("node stdout")?;
    let mut lines = std::io::BufReader::new(stdout).lines();
    let port = loop {
        match lines.next() {
            Some(Ok(l)) => {
                if let Some(p) = l.strip_prefix("listening ") {
                    break p.trim().parse::<u16>()?;
                }
            }
            _ => bail!("{script} did not start"),
        }
    };
    Ok((child, port))
}

fn portalctl(bin: &Path, tenants: &Path, secrets: &Path) -> Command {
    let mut c = Command::new(bin);
    c.arg("--tenants").arg(tenants).env("PORTALCTL_SECRETS_DIR", secrets).env("NO_COLOR", "1");
    c
}

pub fn login() -> Result<()> {
    need("wrk", "wrk")?;
    need("psql", "postgresql-client")?;
    need("openssl", "openssl")?;
    need("node", "nodejs")?;
    let admin = std::env::var("PORTALCTL_TEST_DATABASE_URL")
        .context("set PORTALCTL_TEST_DATABASE_URL to a superuser URL (e.g. `source .ci/postgres.sh`)")?;
    let bin = release_binary()?;
    let server_bin = std::env::var_os("BENCH_LOGIN_BINARY").map(std::path::PathBuf::from).unwrap_or(bin.clone());
    let dir = tempfile_dir("login")?;
    let tenants = dir.join("tenants");
    let secrets = dir.join("secrets");
    std::fs::create_dir_all(&secrets)?;
    let secret_file = secrets.join("oidc-client-secret");
    std::fs::write(&secret_file, "bench-client-secret-0123456789abcdef")?;

    // 1. Tenants (IdP URLs filled in once the IdPs run), the SP key pair and metadata.
    write_tenants(&tenants, "http://127.0.0.1:9", "http://127.0.0.1:9", &secret_file)?;
    let sp_md = secrets.join("sp-metadata.xml");
    crate::run(portalctl(&bin, &tenants, &secrets).args(["servicekonto", "metadata", "--tenant", "detmold"]).args([
        "--environment",
        "integration",
        "--out",
        &sp_md.display().to_string(),
    ]))?;
    let (key, cert) = (secrets.join("idp.key.pem"), secrets.join("idp.crt.pem"));
    let ok = Command::new("openssl")
        .args(["req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "30", "-subj", "/CN=Bench IdP", "-keyout"])
        .arg(&key)
        .arg("-out")
        .arg(&cert)
        .stderr(Stdio::null())
        .status()?;
    if !ok.success() {
        bail!("openssl could not make the IdP's key pair");
    }

    // 2. The identity providers.
    let (saml, saml_port) = start_idp(
        "saml.js",
        &[
            ("SP_METADATA", sp_md.display().to_string()),
            ("IDP_KEY", key.display().to_string()),
            ("IDP_CERT", cert.display().to_string()),
        ],
    )?;
    let mut guard = Guard(vec![saml]);
    let port = free_port()?;
    let (oidc, oidc_port) = start_idp(
        "oidc.js",
        &[
            ("CLIENT_ID", "portal-espelkamp".to_string()),
            ("CLIENT_SECRET", "bench-client-secret-0123456789abcdef".to_string()),
            ("REDIRECT_URIS", format!("https://{OIDC_HOST}/anmelden/oidc/callback")),
        ],
    )?;
    guard.0.push(oidc);
    write_tenants(
        &tenants,
        &format!("http://127.0.0.1:{saml_port}"),
        &format!("http://127.0.0.1:{oidc_port}"),
        &secret_file,
    )?;

    // 3. The database: group role and its login store, the tenants' schemas and roles (`db provision`), and their
    // tables (`db migrate`; a tenant is served only once its schema is migrated).
    psql(&admin, &format!("DROP DATABASE IF EXISTS {DB} WITH (FORCE); CREATE DATABASE {DB};"))?;
    let url = url_db(&admin, None, DB);
    crate::run(
        portalctl(&bin, &tenants, &secrets)
            .args(["db", "provision", "--group", GROUP, "--secrets-dir"])
            .arg(dir.join("db-credentials"))
            .env("DATABASE_URL", &url),
    )?;
    crate::run(
        portalctl(&bin, &tenants, &secrets).args(["db", "migrate", "--group", GROUP]).env("DATABASE_URL", &url),
    )?;

    // 4. The server.
    let log = std::fs::File::create(dir.join("server.log"))?;
    let server = Command::new(&server_bin)
        .arg("--tenants")
        .arg(&tenants)
        .args(["serve", "--listen", &format!("127.0.0.1:{port}"), "--pool-size", "16", "--secrets-dir"])
        .arg(&secrets)
        .env("DATABASE_URL", url_db(&admin, Some(&format!("portal_{GROUP}")), DB))
        .env("PORTALCTL_LOG", "warn")
        .stdout(Stdio::null())
        .stderr(log)
        .spawn()?;
    let pid = server.id();
    guard.0.push(server);
    let t = Instant::now();
    loop {
        // A login start answers 303 (OIDC, SAML HTTP-Redirect) or 200 (the BundID profile's HTTP-POST page).
        let ready = [SAML_HOST, OIDC_HOST]
            .iter()
            .all(|h| get(port, h, "/anmelden?next=/konto").is_ok_and(|(s, _)| s == 303 || s == 200));
        if ready {
            break;
        }
        if t.elapsed() > Duration::from_secs(60) {
            bail!("the server does not start logins; see {}", dir.join("server.log").display());
        }
        std::thread::sleep(Duration::from_millis(200));
    }

    // 5. Load.
    let load_before = uptime();
    let scripts = dir.join("lua");
    std::fs::create_dir_all(&scripts)?;
    let path = ["/anmelden?next=/konto".to_string()];
    let mut runs: Vec<(&str, Run)> = Vec::new();
    for (name, host) in [("SAML /anmelden (32 conns)", SAML_HOST), ("OIDC /anmelden (32 conns)", OIDC_HOST)] {
        let script = scripts.join(format!("{host}.lua"));
        std::fs::write(&script, lua(&[host.to_string()], &path))?;
        runs.push((name, wrk(&script, port, 32)?));
    }
    let rss = vm_hwm_mib(pid)?;
    println!("bench login: server binary {}", server_bin.display());
    println!("| load | requests/s | p50 | p99 | non-2xx/3xx | requests |");
    println!("|---|---:|---:|---:|---:|---:|");
    for (name, r) in &runs {
        println!("| {name} | {:.0} | {:.2} ms | {:.2} ms | {} | {} |", r.rps, r.p50_ms, r.p99_ms, r.errors, r.requests);
    }
    println!("bench login: server peak RSS {rss:.1} MiB");
    println!("bench login: load before: {load_before}");
    println!("bench login: load after:  {}", uptime());
    drop(guard);
    let _ = psql(&admin, &format!("DROP DATABASE IF EXISTS {DB} WITH (FORCE);"));
    if runs.iter().any(|(_, r)| r.errors > 0) {
        bail!("some login starts failed");
    }
    Ok(())
}
