//! The database part against a real PostgreSQL (`PORTALCTL_TEST_DATABASE_URL`, a superuser;
//! `.ci/postgres.sh` starts one). Each test makes its own database and uniquely named
//! group and tenant roles, and drops them at the end, so tests run in parallel.

mod kubetest;

use portalctl::db::migrations::{self, Migration, LATEST};
use portalctl::db::{self, quote, ConnectOptions, SslMode};
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::Duration;
use tokio_postgres::error::SqlState;
use tokio_postgres::{Client, NoTls};

/// The server URL, or `None` to skip (a missing server is an error under CI).
fn server_url() -> Option<String> {
    match std::env::var("PORTALCTL_TEST_DATABASE_URL") {
        Ok(u) if !u.is_empty() => Some(u),
        _ if std::env::var_os("CI").is_some() => panic!("PORTALCTL_TEST_DATABASE_URL is not set; run via .ci/run"),
        _ => {
            eprintln!("skipping: PORTALCTL_TEST_DATABASE_URL is not set (source .ci/postgres.sh)");
            None
        }
    }
}

/// Replace the database name in a `postgres://` URL.
fn with_dbname(url: &str, dbname: &str) -> String {
    let (base, query) = match url.split_once('?') {
        Some((b, q)) => (b, Some(q)),
        None => (url, None),
    };
    let after_scheme = base.find("://").map_or(0, |i| i + 3);
    let base = match base[after_scheme..].find('/') {
        Some(i) => &base[..after_scheme + i],
        None => base,
    };
    match query {
        Some(q) => format!("{base}/{dbname}?{q}"),
        None => format!("{base}/{dbname}"),
    }
}

async fn connect(url: &str) -> Client {
    let (client, conn) = tokio_postgres::connect(url, NoTls).await.unwrap_or_else(|e| panic!("connect {url}: {e}"));
    tokio::spawn(conn);
    client
}

/// A database of its own, a unique name stem for groups and schemas, and a temp directory.
struct TestDb {
    server: String,
    name: String,
    url: String,
    /// Unique stem: group `g<stem>`, schemas `t_<stem>_<slug>`.
    stem: String,
    dir: tempfile::TempDir,
}

impl TestDb {
    async fn create(tag: &str) -> Option<TestDb> {
        let server = server_url()?;
        let stem = format!("{tag}{}", std::process::id() % 100_000);
        let name = format!("portalctl_test_{stem}");
        let admin = connect(&server).await;
        admin.batch_execute(&format!("DROP DATABASE IF EXISTS {} WITH (FORCE)", quote::ident(&name))).await.unwrap();
        admin.batch_execute(&format!("CREATE DATABASE {}", quote::ident(&name))).await.unwrap();
        let url = with_dbname(&server, &name);
        Some(TestDb { server, name, url, stem, dir: tempfile::tempdir().unwrap() })
    }

    fn group(&self) -> String {
        format!("g{}", self.stem)
    }

    fn schema(&self, slug: &str) -> String {
        format!("t_{}_{}", self.stem, slug.replace('-', "_"))
    }

    fn tenants(&self) -> PathBuf {
        self.dir.path().join("tenants")
    }

    fn secrets(&self) -> PathBuf {
        self.dir.path().join("secrets")
    }

    /// Scaffold the group from real municipalities (`group new --kreis`), then give every
    /// tenant a schema name unique to this test.
    fn scaffold(&self, kreis: &str) {
        let out = self.run(&["group", "new", &self.group(), "--kreis", kreis, "-q"]);
        assert!(out.status.success(), "group new: {}", String::from_utf8_lossy(&out.stderr));
        let dir = self.tenants().join(self.group());
        for entry in std::fs::read_dir(&dir).unwrap() {
            let path = entry.unwrap().path();
            let text = std::fs::read_to_string(&path).unwrap();
            let replaced = text.replace("schema: t_", &format!("schema: t_{}_", self.stem));
            std::fs::write(&path, replaced).unwrap();
        }
    }

    fn slugs(&self) -> Vec<String> {
        let mut v: Vec<String> = std::fs::read_dir(self.tenants().join(self.group()))
            .unwrap()
            .map(|e| e.unwrap().path().file_stem().unwrap().to_string_lossy().into_owned())
            .filter(|s| s != "group")
            .collect();
        v.sort();
        v
    }

    fn command(&self) -> Command {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_portalctl"));
        cmd.current_dir(self.dir.path())
            .env("DATABASE_URL", &self.url)
            .env("PORTALCTL_TENANTS", self.tenants())
            .env("NO_COLOR", "1")
            .env_remove("PORTALCTL_PG_DUMP");
        cmd
    }

    fn run(&self, args: &[&str]) -> Output {
        self.command().args(args).output().unwrap()
    }

    /// `portalctl db <args> --secrets-dir <tmp>` where the subcommand takes secrets.
    fn db(&self, args: &[&str]) -> Output {
        let mut all = vec!["db"];
        all.extend_from_slice(args);
        let secrets = self.secrets();
        let secrets = secrets.to_str().unwrap();
        if matches!(args.first(), Some(&"provision") | Some(&"offboard") | Some(&"status")) {
            all.extend_from_slice(&["--secrets-dir", secrets]);
        }
        self.run(&all)
    }

    async fn client(&self) -> Client {
        connect(&self.url).await
    }
}

impl Drop for TestDb {
    fn drop(&mut self) {
        let server = self.server.clone();
        let name = self.name.clone();
        let stem = self.stem.clone();
        // Own thread and runtime: Drop may run inside a test's runtime.
        let _ = std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
            rt.block_on(async {
                let admin = connect(&server).await;
                let _ =
                    admin.batch_execute(&format!("DROP DATABASE IF EXISTS {} WITH (FORCE)", quote::ident(&name))).await;
                let roles = admin
                    .query(
                        "SELECT rolname::text FROM pg_roles WHERE rolname LIKE $1 OR rolname = $2 OR rolname = $3",
                        &[&format!("t\\_{stem}\\_%"), &format!("portal_g{stem}"), &format!("nologin_{stem}")],
                    )
                    .await
                    .unwrap_or_default();
                for r in roles {
                    let role: String = r.get(0);
                    let _ = admin.batch_execute(&format!("DROP ROLE IF EXISTS {}", quote::ident(&role))).await;
                }
            });
        })
        .join();
    }
}

fn text(out: &Output) -> (String, String) {
    (String::from_utf8_lossy(&out.stdout).into_owned(), String::from_utf8_lossy(&out.stderr).into_owned())
}

fn assert_ok(out: &Output, what: &str) {
    let (o, e) = text(out);
    assert!(out.status.success(), "{what} failed ({}):\nstdout:\n{o}\nstderr:\n{e}", out.status);
}

async fn version(client: &Client, schema: &str) -> Option<i32> {
    migrations::current_version(client, schema).await.unwrap()
}

#[tokio::test(flavor = "multi_thread")]
async fn provision_and_migrate_change_nothing_the_second_time() {
    let Some(db) = TestDb::create("idem").await else { return };
    db.scaffold("05770");
    let slugs = db.slugs();
    assert!(slugs.len() >= 10, "Kreis Minden-Lübbecke has 11 communes plus the Kreis: {slugs:?}");

    let first = db.db(&["provision"]);
    assert_ok(&first, "first provision");
    let (out, err) = text(&first);
    assert!(out.contains("created role") && out.contains("created schema"), "{out}");
    assert!(err.contains(&format!("{} changed, 0 unchanged, 0 failed", slugs.len())), "{err}");

    let second = db.db(&["provision"]);
    assert_ok(&second, "second provision");
    let (out, err) = text(&second);
    assert!(err.contains(&format!("0 changed, {} unchanged, 0 failed", slugs.len())), "{err}");
    assert_eq!(out.lines().filter(|l| l.trim_end().ends_with("unchanged")).count(), slugs.len(), "{out}");
    assert!(!out.contains("created"), "{out}");

    // Credentials: one private file per tenant and one for the group; never printed.
    let group_dir = db.secrets().join(db.group());
    for slug in &slugs {
        let path = group_dir.join(format!("{slug}.db.json"));
        let meta = std::fs::metadata(&path).unwrap_or_else(|_| panic!("{} missing", path.display()));
        use std::os::unix::fs::PermissionsExt;
        assert_eq!(meta.permissions().mode() & 0o777, 0o600, "{}", path.display());
        let cred: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
        let password = cred["password"].as_str().unwrap();
        assert_eq!(cred["username"], db.schema(slug));
        assert!(password.len() >= 32);
        for o in [&first, &second] {
            let (out, err) = text(o);
            assert!(!out.contains(password) && !err.contains(password), "a password was printed");
        }
    }
    assert!(group_dir.join("_portal.db.json").exists());

    let m1 = db.db(&["migrate"]);
    assert_ok(&m1, "first migrate");
    let (out, err) = text(&m1);
    assert_eq!(out.matches(&format!("migrated 0 → {LATEST}")).count(), slugs.len(), "{out}");
    assert!(err.contains(&format!("{} migrated, 0 unchanged, 0 failed", slugs.len())), "{err}");
    let m2 = db.db(&["migrate", "--concurrency", "3"]);
    assert_ok(&m2, "second migrate");
    let (out, err) = text(&m2);
    assert!(err.contains(&format!("0 migrated, {} unchanged, 0 failed", slugs.len())), "{err}");
    assert!(!out.contains("migrated "), "{out}");

    // Status agrees, in JSON.
    let st = db.db(&["status", "-o", "json"]);
    assert_ok(&st, "status");
    let v: serde_json::Value = serde_json::from_slice(&st.stdout).unwrap();
    let rows = v.as_array().unwrap();
    assert_eq!(rows.len(), slugs.len());
    for r in rows {
        assert_eq!(r["schemaExists"], true);
        assert_eq!(r["roleExists"], true);
        assert_eq!(r["version"], LATEST);
        assert_eq!(r["current"], true);
        assert_eq!(r["published"]["services"], 0);
    }

    // Bookkeeping for the status ladder.
    let client = db.client().await;
    let n: i64 = client
        .query_one(
            "SELECT count(*) FROM portalctl.tenant t JOIN portalctl.phase_history h
               ON h.slug = t.slug AND h.phase = 'provisioned' WHERE t.grp = $1",
            &[&db.group()],
        )
        .await
        .unwrap()
        .get(0);
    assert_eq!(n as usize, slugs.len());
    // public is locked down.
    let public_create: bool =
        client.query_one("SELECT has_schema_privilege('public', 'public', 'CREATE')", &[]).await.unwrap().get(0);
    assert!(!public_create);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_tenant_role_cannot_read_or_write_another_tenants_schema() {
    let Some(db) = TestDb::create("iso").await else { return };
    db.scaffold("05770");
    assert_ok(&db.db(&["provision", "--tenant", "espelkamp", "--tenant", "minden"]), "provision");
    assert_ok(&db.db(&["migrate", "--tenant", "espelkamp", "--tenant", "minden"]), "migrate");
    let (a, b) = (db.schema("espelkamp"), db.schema("minden"));

    let cred: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(db.secrets().join(db.group()).join("espelkamp.db.json")).unwrap(),
    )
    .unwrap();
    let url = format!(
        "postgres://{}:{}@{}:{}/{}",
        cred["username"].as_str().unwrap(),
        cred["password"].as_str().unwrap(),
        cred["host"].as_str().unwrap(),
        cred["port"],
        cred["dbname"].as_str().unwrap()
    );
    let tenant_a = connect(&url).await;
    let who: String = tenant_a.query_one("SELECT current_user::text", &[]).await.unwrap().get(0);
    assert_eq!(who, a);

    // Its own schema: read and write.
    tenant_a
        .execute(&format!("INSERT INTO {}.category (id, title) VALUES ('a', 'A')", quote::ident(&a)), &[])
        .await
        .unwrap();
    let n: i64 =
        tenant_a.query_one(&format!("SELECT count(*) FROM {}.category", quote::ident(&a)), &[]).await.unwrap().get(0);
    assert_eq!(n, 1);

    let denied = |r: Result<_, tokio_postgres::Error>, what: &str| {
        let e = r.expect_err(what);
        assert_eq!(e.code(), Some(&SqlState::INSUFFICIENT_PRIVILEGE), "{what}: {e:?}");
    };
    let qb = quote::ident(&b);
    denied(tenant_a.query(&format!("SELECT * FROM {qb}.service"), &[]).await.map(|_| ()), "read B");
    denied(
        tenant_a.execute(&format!("INSERT INTO {qb}.category (id, title) VALUES ('x', 'X')"), &[]).await.map(|_| ()),
        "write B",
    );
    denied(tenant_a.execute(&format!("DELETE FROM {qb}.service"), &[]).await.map(|_| ()), "delete B");
    // No DDL anywhere, not even in its own schema or public; its version is read-only.
    denied(tenant_a.batch_execute(&format!("CREATE TABLE {}.x (i int)", quote::ident(&a))).await, "create in A");
    denied(tenant_a.batch_execute("CREATE TABLE public.x (i int)").await, "create in public");
    denied(tenant_a.batch_execute(&format!("DROP TABLE {}.service", quote::ident(&a))).await, "drop own table");
    denied(
        tenant_a.batch_execute(&format!("DELETE FROM {}.schema_migrations", quote::ident(&a))).await,
        "rewrite version",
    );
    denied(tenant_a.batch_execute("SELECT * FROM portalctl.tenant").await, "read bookkeeping");

    // The group's portal role reaches a tenant only through SET ROLE, and then only that one.
    let pcred: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(db.secrets().join(db.group()).join("_portal.db.json")).unwrap())
            .unwrap();
    assert_eq!(pcred["username"], format!("portal_{}", db.group()));
    let purl = url.replace(
        &format!("{}:{}", a, cred["password"].as_str().unwrap()),
        &format!("{}:{}", pcred["username"].as_str().unwrap(), pcred["password"].as_str().unwrap()),
    );
    let portal = connect(&purl).await;
    denied(portal.query(&format!("SELECT * FROM {}.service", quote::ident(&a)), &[]).await.map(|_| ()), "NOINHERIT");
    portal
        .batch_execute(&format!(
            "BEGIN; SET LOCAL ROLE {qa}; SET LOCAL search_path = {qa}, portalctl_ext;",
            qa = quote::ident(&a)
        ))
        .await
        .unwrap();
    let n: i64 =
        portal.query_one("SELECT count(*) FROM category WHERE similarity(title, 'A') > 0.5", &[]).await.unwrap().get(0);
    assert_eq!(n, 1, "pg_trgm from portalctl_ext is usable");
    denied(portal.query(&format!("SELECT * FROM {qb}.service"), &[]).await.map(|_| ()), "portal as A reads B");
    portal.batch_execute("ROLLBACK").await.unwrap();
}

#[tokio::test(flavor = "multi_thread")]
async fn two_migrate_processes_at_once_do_not_collide() {
    let Some(db) = TestDb::create("conc").await else { return };
    db.scaffold("05770");
    assert_ok(&db.db(&["provision"]), "provision");
    let spawn = || {
        db.command()
            .args(["db", "migrate", "--concurrency", "4"])
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .unwrap()
    };
    let (p1, p2) = (spawn(), spawn());
    let (o1, o2) = (p1.wait_with_output().unwrap(), p2.wait_with_output().unwrap());
    assert_ok(&o1, "migrate 1");
    assert_ok(&o2, "migrate 2");
    // Each schema was migrated exactly once, by one of the two.
    let migrated = text(&o1).0.matches("migrated 0 →").count() + text(&o2).0.matches("migrated 0 →").count();
    assert_eq!(migrated, db.slugs().len());
    let client = db.client().await;
    for slug in db.slugs() {
        let schema = db.schema(&slug);
        assert_eq!(version(&client, &schema).await, Some(LATEST), "{slug}");
        let rows: i64 = client
            .query_one(&format!("SELECT count(*) FROM {}.schema_migrations", quote::ident(&schema)), &[])
            .await
            .unwrap()
            .get(0);
        assert_eq!(rows, LATEST as i64, "{slug}");
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn a_migration_failing_midway_leaves_the_schema_at_its_previous_version() {
    let Some(db) = TestDb::create("fail").await else { return };
    let client = db.client().await;
    db::provision::ensure_shared(&client).await.unwrap();
    let schema = db.schema("broken");
    client.batch_execute(&format!("CREATE SCHEMA {}", quote::ident(&schema))).await.unwrap();

    let good = migrations::MIGRATIONS[0];
    let bad = Migration {
        version: 2,
        name: "half_done",
        sql: "CREATE TABLE half_done (x int);\nINSERT INTO half_done VALUES (1);\nSELECT 1 / 0;",
    };
    let err = migrations::migrate_schema(&client, &schema, &[good, bad]).await.unwrap_err();
    match &err {
        db::Error::Migration { version, left_at, .. } => assert_eq!((*version, *left_at), (2, 1)),
        other => panic!("expected a migration error, got {other:?}"),
    }
    assert_eq!(err.sqlstate(), Some("22012"), "division by zero");
    assert!(err.to_string().contains(&schema) && err.to_string().contains("0002_half_done"), "{err}");
    assert_eq!(version(&client, &schema).await, Some(1));
    let half: bool = client
        .query_one("SELECT to_regclass($1::text) IS NULL", &[&format!("{schema}.half_done")])
        .await
        .unwrap()
        .get(0);
    assert!(half, "the failed migration's table was rolled back");
    // The connection is usable and a fixed migration applies on top.
    let fixed = Migration { version: 2, name: "half_done", sql: "CREATE TABLE half_done (x int);" };
    let outcome = migrations::migrate_schema(&client, &schema, &[good, fixed]).await.unwrap();
    assert_eq!((outcome.from, outcome.to, outcome.applied), (1, 2, vec![2]));
}

#[tokio::test(flavor = "multi_thread")]
async fn one_failing_tenant_is_named_and_the_others_are_migrated() {
    let Some(db) = TestDb::create("one").await else { return };
    db.scaffold("05770");
    assert_ok(&db.db(&["provision"]), "provision");
    let client = db.client().await;
    let victim = db.schema("hille");
    // Something in the way of the first migration.
    client.batch_execute(&format!("CREATE TABLE {}.category (x int)", quote::ident(&victim))).await.unwrap();
    let out = db.db(&["migrate"]);
    assert_eq!(out.status.code(), Some(1));
    let (_, err) = text(&out);
    assert!(err.contains("tenant hille") && err.contains("already exists"), "{err}");
    assert!(err.contains(&format!("{} migrated, 0 unchanged, 1 failed", db.slugs().len() - 1)), "{err}");
    for slug in db.slugs() {
        let expected = if slug == "hille" { Some(0) } else { Some(LATEST) };
        assert_eq!(version(&client, &db.schema(&slug)).await, expected, "{slug}");
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn hostile_names_never_reach_sql_unquoted() {
    let Some(db) = TestDb::create("host").await else { return };
    let client = db.client().await;
    let hostile = format!("t_{}\"; DROP SCHEMA public CASCADE; --", db.stem);
    // The library refuses names that did not pass validation...
    let err = migrations::migrate_schema(&client, &hostile, migrations::MIGRATIONS).await.unwrap_err();
    assert!(matches!(err, db::Error::InvalidName(_)), "{err:?}");
    // ...and quoting keeps even such a name one identifier, and a literal one string.
    client.batch_execute(&format!("CREATE SCHEMA {}", quote::ident(&hostile))).await.unwrap();
    let names: Vec<String> = client
        .query("SELECT nspname::text FROM pg_namespace WHERE nspname IN ($1, 'public')", &[&hostile])
        .await
        .unwrap()
        .iter()
        .map(|r| r.get(0))
        .collect();
    assert_eq!(names.len(), 2, "the hostile schema exists under its exact name and public survived: {names:?}");
    for lit in ["it's", "'; DROP TABLE x; --", r"back\slash\'", "E'\\x41'"] {
        let got: String = client.query_one(&format!("SELECT {}::text", quote::literal(lit)), &[]).await.unwrap().get(0);
        assert_eq!(got, lit);
    }
    // A tenant file with such a schema name is rejected before anything reaches the database.
    db.scaffold("05770");
    let file = db.tenants().join(db.group()).join("espelkamp.yaml");
    let yaml = std::fs::read_to_string(&file).unwrap();
    let yaml = yaml.replace(&format!("schema: {}", db.schema("espelkamp")), "schema: 't_x\"; DROP SCHEMA public; --'");
    std::fs::write(&file, yaml).unwrap();
    let out = db.db(&["provision"]);
    assert_eq!(out.status.code(), Some(1));
    let exists: bool =
        client.query_one("SELECT to_regclass('portalctl.tenant') IS NOT NULL", &[]).await.unwrap().get(0);
    assert!(!exists, "nothing was provisioned");
}

#[tokio::test(flavor = "multi_thread")]
async fn an_unreachable_or_refusing_database_is_a_clear_error_with_exit_code_3() {
    let Some(db) = TestDb::create("down").await else { return };
    db.scaffold("05770");
    let out = db
        .command()
        .args(["db", "status", "--database-url", "postgres://postgres@127.0.0.1:1/postgres"])
        .output()
        .unwrap();
    let (_, err) = text(&out);
    assert_eq!(out.status.code(), Some(3), "{err}");
    assert!(err.contains("127.0.0.1:1") && err.contains("connection refused"), "{err}");
    assert!(!err.contains("panicked") && !err.contains("backtrace"), "{err}");

    // A role that may not log in: the server's reason, host and port.
    let role = format!("nologin_{}", db.stem);
    db.client().await.batch_execute(&format!("CREATE ROLE {} NOLOGIN", quote::ident(&role))).await.unwrap();
    let opts = ConnectOptions::new(db.url.clone()).resolve().unwrap();
    let t = opts.target();
    let url = format!("postgres://{role}@{}:{}/{}", t.host, t.port, t.dbname);
    let out = db.command().args(["db", "migrate", "--database-url", &url, "--db-sslmode", "disable"]).output().unwrap();
    let (_, err) = text(&out);
    assert_eq!(out.status.code(), Some(3), "{err}");
    assert!(err.contains(&format!("{}:{}", t.host, t.port)) && err.contains("not permitted to log in"), "{err}");

    // Library level too.
    let mut o = ConnectOptions::new("postgres://postgres@127.0.0.1:1/postgres");
    o.sslmode = Some(SslMode::Disable);
    assert!(o.connect().await.unwrap_err().is_unavailable());

    // No URL at all is a usage error.
    let out = db.command().env_remove("DATABASE_URL").args(["db", "status"]).output().unwrap();
    assert_eq!(out.status.code(), Some(2));
}

#[tokio::test(flavor = "multi_thread")]
async fn offboard_dumps_the_schema_then_drops_schema_and_role() {
    let Some(db) = TestDb::create("off").await else { return };
    db.scaffold("05770");
    assert_ok(&db.db(&["provision", "--tenant", "espelkamp", "--tenant", "rahden"]), "provision");
    assert_ok(&db.db(&["migrate", "--tenant", "espelkamp", "--tenant", "rahden"]), "migrate");
    let client = db.client().await;
    let schema = db.schema("espelkamp");
    let q = quote::ident(&schema);
    client
        .batch_execute(&format!(
            "INSERT INTO {q}.service (id, title, published) VALUES ('personalausweis', 'Personalausweis beantragen (Espelkamp-Test)', true)"
        ))
        .await
        .unwrap();
    let backups = db.dir.path().join("backups");
    let backups_s = backups.to_str().unwrap();

    // Without --confirm: the plan, nothing done.
    let out = db.db(&["offboard", "--tenant", "espelkamp", "--backup-dir", backups_s]);
    assert_ok(&out, "offboard plan");
    let (o, _) = text(&out);
    assert!(o.contains("would") && o.contains(&format!("drop schema {schema}")), "{o}");
    assert_eq!(version(&client, &schema).await, Some(LATEST));
    assert!(!backups.exists());

    // pg_dump failing: refuse, drop nothing.
    let out = db
        .command()
        .args(["db", "offboard", "--tenant", "espelkamp", "--confirm", "--backup-dir", backups_s])
        .args(["--secrets-dir", db.secrets().to_str().unwrap()])
        .env("PORTALCTL_PG_DUMP", "/bin/false")
        .output()
        .unwrap();
    let (_, e) = text(&out);
    assert_eq!(out.status.code(), Some(1), "{e}");
    assert!(e.contains("refusing to drop"), "{e}");
    assert_eq!(version(&client, &schema).await, Some(LATEST));

    // With --confirm: dump first, then drop.
    let out = db.db(&["offboard", "--tenant", "espelkamp", "--confirm", "--backup-dir", backups_s]);
    assert_ok(&out, "offboard");
    let (o, _) = text(&out);
    let line = o.lines().find(|l| l.starts_with("backup: ")).unwrap_or_else(|| panic!("no backup line: {o}"));
    let path = Path::new(line.trim_start_matches("backup: ").split(" (").next().unwrap());
    assert!(path.starts_with(&backups), "{}", path.display());
    let dump = std::fs::read_to_string(path).unwrap();
    assert!(dump.contains("Personalausweis beantragen (Espelkamp-Test)"), "the dump holds the data");
    assert!(dump.contains(&format!("CREATE SCHEMA {schema};")));
    use std::os::unix::fs::PermissionsExt;
    assert_eq!(std::fs::metadata(path).unwrap().permissions().mode() & 0o777, 0o600);

    assert_eq!(version(&client, &schema).await, None, "schema dropped");
    let role: bool = client
        .query_one("SELECT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = $1::text)", &[&schema])
        .await
        .unwrap()
        .get(0);
    assert!(!role, "role dropped");
    let booked: i64 =
        client.query_one("SELECT count(*) FROM portalctl.tenant WHERE slug = 'espelkamp'", &[]).await.unwrap().get(0);
    assert_eq!(booked, 0);
    assert!(!db.secrets().join(db.group()).join("espelkamp.db.json").exists());
    // The other tenant is untouched.
    assert_eq!(version(&client, &db.schema("rahden")).await, Some(LATEST));
}

#[tokio::test(flavor = "multi_thread")]
async fn kubernetes_mode_applies_secrets_server_side_and_offboard_deletes_them() {
    let Some(db) = TestDb::create("kube").await else { return };
    let Some(kubeconfig) = kubetest::kubeconfig() else { return };
    db.scaffold("05770");
    let kube = kubetest::Kube::connect(&kubeconfig).await;
    let ns = format!("portal-{}", db.group());
    kube.ensure_namespace(&ns).await;
    // --kubeconfig and --context are honoured: KUBECONFIG points nowhere.
    let context = "portalctl-test";
    let run = |args: &[&str]| {
        let mut cmd = db.command();
        cmd.arg("db").args(args).args(["--secrets", "kubernetes", "--kubeconfig"]).arg(&kubeconfig);
        cmd.args(["--context", context]).env("KUBECONFIG", "/nonexistent/kubeconfig");
        cmd.output().unwrap()
    };
    let secrets: kube::Api<k8s_openapi::api::core::v1::Secret> = kube::Api::namespaced(kube.client.clone(), &ns);
    let first = run(&["provision", "--tenant", "espelkamp"]);
    assert_ok(&first, "provision");
    let s = secrets.get("espelkamp-db").await.expect("tenant Secret applied");
    let labels = s.metadata.labels.clone().unwrap();
    let expected = portalctl::render::common_labels(&db.group(), env!("CARGO_PKG_VERSION"), "database-credentials");
    for (k, v) in &expected {
        assert_eq!(labels.get(k), Some(v), "the project's label set: {labels:?}");
    }
    assert_eq!(labels["portalctl.dev/tenant"], "espelkamp");
    let managed = s.metadata.managed_fields.clone().unwrap();
    assert!(
        managed.iter().all(|m| m.manager.as_deref() == Some(portalctl::cluster::FIELD_MANAGER)
            && m.operation.as_deref() == Some("Apply")),
        "server-side apply under portalctl's one field manager: {managed:?}"
    );
    let password = String::from_utf8(s.data.clone().unwrap()["password"].0.clone()).unwrap();
    assert_eq!(password.len(), 32);
    assert!(secrets.get_opt("portal-db").await.unwrap().is_some(), "group Secret applied");
    let (out, err) = text(&first);
    assert!(out.contains(&format!("Secret {ns}/espelkamp-db")), "{out}");
    assert!(!out.contains(&password) && !err.contains(&password));

    // Second run: the Secrets are there, nothing changes, nothing is written.
    let rv = s.metadata.resource_version.clone();
    let second = run(&["provision", "--tenant", "espelkamp"]);
    assert_ok(&second, "second provision");
    assert!(text(&second).1.contains("0 changed, 1 unchanged"), "{}", text(&second).1);
    assert_eq!(secrets.get("espelkamp-db").await.unwrap().metadata.resource_version, rv);

    let off = run(&[
        "offboard",
        "--tenant",
        "espelkamp",
        "--confirm",
        "--backup-dir",
        db.dir.path().join("b").to_str().unwrap(),
    ]);
    assert_ok(&off, "offboard");
    // Deleted with foreground propagation: the garbage collector removes it moments later.
    kubetest::eventually("the tenant Secret is gone", Duration::from_secs(30), || async {
        secrets.get_opt("espelkamp-db").await.unwrap().is_none()
    })
    .await;
    assert!(secrets.get_opt("portal-db").await.unwrap().is_some(), "the group's Secret stays");
    kube.delete_namespace(&ns).await;
}

/// The batched status of many tenants (what `portalctl status` uses) says exactly what the per-tenant status says,
/// in every state a tenant can be in: no schema, a schema without migrations, a role missing, migrated with content.
#[tokio::test(flavor = "multi_thread")]
async fn the_batched_status_agrees_with_the_per_tenant_status() {
    let Some(db) = TestDb::create("batch").await else { return };
    db.scaffold("05758"); // Kreis Herford: nine communes and the Kreis
    assert_ok(&db.db(&["provision"]), "provision");
    assert_ok(&db.db(&["migrate"]), "migrate");
    let client = db.client().await;
    let slugs = db.slugs();
    let tenant = |slug: &str| db::TenantDb {
        slug: slug.to_string(),
        group: db.group(),
        schema: db.schema(slug),
        namespace: format!("portal-{}", db.group()),
        cluster_context: None,
    };
    // Vary the states: one schema gone, one without its migrations table, one role gone, content in one.
    let (gone, bare, roleless, full) = (&slugs[0], &slugs[1], &slugs[2], &slugs[3]);
    client.batch_execute(&format!("DROP SCHEMA {} CASCADE", quote::ident(&db.schema(gone)))).await.unwrap();
    client.batch_execute(&format!("DROP TABLE {}.schema_migrations", quote::ident(&db.schema(bare)))).await.unwrap();
    let role = quote::ident(&db.schema(roleless));
    client.batch_execute(&format!("DROP OWNED BY {role}; DROP ROLE {role}")).await.unwrap();
    let url = db.url.clone();
    assert_ok(&db.run(&["content", "import", "--tenant", full, "--starter", "--database-url", &url]), "import");
    assert_ok(&db.run(&["content", "publish", "--tenant", full, "--all", "--database-url", &url]), "publish");
    // And one tenant that was never provisioned at all.
    let mut tenants: Vec<db::TenantDb> = slugs.iter().map(|s| tenant(s)).collect();
    tenants.push(db::TenantDb { schema: format!("t_{}_nowhere", db.stem), ..tenant("nowhere") });

    let batched = db::status::tenants_status(&client, &tenants, 4).await.unwrap();
    assert_eq!(batched.len(), tenants.len());
    for (t, b) in tenants.iter().zip(&batched) {
        let one = db::status::tenant_status(&client, t).await.unwrap();
        let b = b.as_ref().unwrap_or_else(|e| panic!("{}: {e}", t.slug));
        assert_eq!(serde_json::to_value(b).unwrap(), serde_json::to_value(&one).unwrap(), "{}", t.slug);
    }
    let by = |slug: &str| batched.iter().flatten().find(|s| s.tenant == slug).unwrap();
    assert!(!by(gone).schema_exists);
    assert_eq!(by(bare).version, Some(0));
    assert!(!by(roleless).role_exists && !by(roleless).current);
    assert!(by(full).published.unwrap().services >= 40, "{:?}", by(full).published);
    assert!(by(&slugs[4]).current && by(&slugs[4]).published.unwrap().services == 0);
    assert!(!by("nowhere").schema_exists && !by("nowhere").role_exists);

    // A migrated schema that lost a content table is an error naming the tenant, not "nothing published".
    let broken = &slugs[5];
    client.batch_execute(&format!("DROP TABLE {}.staff CASCADE", quote::ident(&db.schema(broken)))).await.unwrap();
    let err = db::status::tenant_status(&client, &tenant(broken)).await.unwrap_err().to_string();
    assert!(err.contains(&format!("tenant {broken}: counting published content")), "{err}");
    let batched = db::status::tenants_status(&client, &tenants, 4).await.unwrap();
    let i = slugs.iter().position(|s| s == broken).unwrap();
    assert!(batched[i].is_err(), "{:?}", batched[i]);
    assert!(batched[i + 1].is_ok(), "the next tenant is unaffected");
}

// ---- Credentials are stored only once they are true (crash points, repair) ----

/// Make the server ask these roles for their password over TCP (the test cluster trusts
/// everyone otherwise): prepend `scram-sha-256` lines for them to pg_hba.conf and reload,
/// then wait until a wrong password is refused.
async fn require_passwords(db: &TestDb, roles: &[String]) {
    let admin = db.client().await;
    let hba: String = admin.query_one("SHOW hba_file", &[]).await.unwrap().get(0);
    let old = std::fs::read_to_string(&hba).unwrap();
    let mut text: String = roles.iter().map(|r| format!("host all {r} 127.0.0.1/32 scram-sha-256\n")).collect();
    text.push_str(&old);
    std::fs::write(&hba, text).unwrap();
    admin.batch_execute("SELECT pg_reload_conf()").await.unwrap();
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    for role in roles {
        loop {
            if !logs_in(db, role, "certainly-not-the-password").await {
                break;
            }
            assert!(std::time::Instant::now() < deadline, "pg_hba.conf reload did not take effect for {role}");
            tokio::task::yield_now().await;
        }
    }
}

async fn logs_in(db: &TestDb, role: &str, password: &str) -> bool {
    let mut cfg: tokio_postgres::Config = db.url.parse().unwrap();
    cfg.user(role).password(password);
    cfg.connect(NoTls).await.is_ok()
}

fn stored_password(db: &TestDb, file: &str) -> Option<String> {
    let path = db.secrets().join(db.group()).join(file);
    let text = std::fs::read_to_string(path).ok()?;
    let cred: serde_json::Value = serde_json::from_str(&text).unwrap();
    cred["password"].as_str().map(String::from)
}

fn write_stored_password(db: &TestDb, file: &str, password: &str) {
    let path = db.secrets().join(db.group()).join(file);
    let mut cred: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
    cred["password"] = serde_json::Value::String(password.into());
    std::fs::write(&path, serde_json::to_string(&cred).unwrap()).unwrap();
}

/// Poll `pg_locks` until `n` sessions wait for an advisory lock of key space `space`.
async fn wait_for_lock_waiters(admin: &Client, space: i32, n: i64) {
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    loop {
        let waiting: i64 = admin
            .query_one(
                "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND NOT granted AND classid = $1::int::oid",
                &[&space],
            )
            .await
            .unwrap()
            .get(0);
        if waiting >= n {
            return;
        }
        assert!(std::time::Instant::now() < deadline, "no {n} waiters for advisory lock space {space:#x}");
        tokio::task::yield_now().await;
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn a_crash_while_provisioning_never_leaves_a_stored_credential_that_does_not_log_in() {
    let Some(db) = TestDb::create("credcrash").await else { return };
    db.scaffold("05770");
    let slug = "espelkamp";
    let role = db.schema(slug);
    let group_role = format!("portal_{}", db.group());
    assert_ok(&db.db(&["provision", "--tenant", slug]), "first provision");
    require_passwords(&db, &[role.clone(), group_role.clone()]).await;
    let file = format!("{slug}.db.json");
    let first = stored_password(&db, &file).expect("credential stored");
    assert!(logs_in(&db, &role, &first).await, "the first credential logs in");

    // The observed reproduction: the role's grant on the shared schema and its credential
    // are gone, another session holds the shared lock, and provisioning is killed while it
    // waits for that lock — after it chose a new password, before COMMIT.
    let admin = db.client().await;
    admin.batch_execute(&format!("REVOKE USAGE ON SCHEMA portalctl_ext FROM {}", quote::ident(&role))).await.unwrap();
    std::fs::remove_file(db.secrets().join(db.group()).join(&file)).unwrap();
    let holder = db.client().await;
    holder.batch_execute("BEGIN; SELECT pg_advisory_xact_lock(1886351988, 0)").await.unwrap();
    let secrets = db.secrets();
    let mut child = db
        .command()
        .args(["db", "provision", "--tenant", slug, "--secrets-dir", secrets.to_str().unwrap()])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    wait_for_lock_waiters(&admin, 1886351988, 1).await;
    child.kill().unwrap(); // SIGKILL
    child.wait().unwrap();
    holder.batch_execute("ROLLBACK").await.unwrap();
    if let Some(pw) = stored_password(&db, &file) {
        assert!(logs_in(&db, &role, &pw).await, "a credential was stored whose password was never committed");
    }

    let again = db.db(&["provision", "--tenant", slug]);
    assert_ok(&again, "provision after the crash");
    let pw = stored_password(&db, &file).expect("credential stored again");
    assert!(logs_in(&db, &role, &pw).await, "the repaired credential logs in");

    // A crash between COMMIT and storing the credential (failpoint) on the group role: the
    // next run sees no stored credential and repairs it.
    std::fs::remove_file(db.secrets().join(db.group()).join("_portal.db.json")).unwrap();
    let crashed = db
        .command()
        .env("PORTALCTL_FAILPOINTS", "provision-before-store")
        .args(["db", "provision", "--tenant", slug, "--secrets-dir", secrets.to_str().unwrap()])
        .output()
        .unwrap();
    assert!(!crashed.status.success(), "the failpoint aborts the run");
    assert_eq!(stored_password(&db, "_portal.db.json"), None, "nothing stored before the crash point");
    assert_ok(&db.db(&["provision", "--tenant", slug]), "provision after the crash after COMMIT");
    let gpw = stored_password(&db, "_portal.db.json").expect("group credential stored");
    assert!(logs_in(&db, &group_role, &gpw).await, "the group credential logs in");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_stored_credential_that_does_not_log_in_is_reset_for_tenant_and_group_roles() {
    let Some(db) = TestDb::create("credfix").await else { return };
    db.scaffold("05770");
    let slug = "hille";
    let role = db.schema(slug);
    let group_role = format!("portal_{}", db.group());
    assert_ok(&db.db(&["provision", "--tenant", slug]), "first provision");
    require_passwords(&db, &[role.clone(), group_role.clone()]).await;

    let out = db.db(&["status", "--tenant", slug]);
    assert_ok(&out, "db status with a good credential");
    assert!(text(&out).0.contains("logs in"), "{}", text(&out).0);
    // Someone changed the passwords behind portalctl's back.
    write_stored_password(&db, &format!("{slug}.db.json"), "stale-password-0000000000000000");
    write_stored_password(&db, "_portal.db.json", "stale-password-1111111111111111");
    let out = db.db(&["status", "--tenant", slug]);
    let (o, e) = text(&out);
    assert_eq!(out.status.code(), Some(1), "db status fails on a credential that does not log in:\n{o}\n{e}");
    assert!(o.contains("does not log in") && e.contains(slug), "{o}\n{e}");
    let out = db.db(&["provision", "--tenant", slug]);
    assert_ok(&out, "provision repairs");
    let (o, e) = text(&out);
    assert!(
        format!("{o}{e}").matches("the stored credential does not log in").count() == 2,
        "both repairs are reported:\n{o}\n{e}"
    );
    for (r, f) in [(&role, format!("{slug}.db.json")), (&group_role, "_portal.db.json".to_string())] {
        let pw = stored_password(&db, &f).unwrap();
        assert!(logs_in(&db, r, &pw).await, "{r} logs in with its repaired credential");
        assert!(!format!("{o}{e}").contains(&pw), "a password was printed");
    }
    // And a correct credential is left alone.
    let out = db.db(&["provision", "--tenant", slug]);
    let (o, e) = text(&out);
    assert!(!format!("{o}{e}").contains("new password"), "{o}\n{e}");
}

#[tokio::test(flavor = "multi_thread")]
async fn two_provisioning_runs_of_a_new_group_at_once_both_succeed() {
    let Some(db) = TestDb::create("provrace").await else { return };
    db.scaffold("05770");
    let group_role = format!("portal_{}", db.group());
    // Both runs reach the group role at the same moment: hold its provisioning lock until
    // both wait for it.
    let holder = db.client().await;
    holder.execute("SELECT pg_advisory_lock($1, hashtext($2))", &[&0x726f_6c65i32, &group_role]).await.unwrap();
    let secrets = db.secrets();
    let spawn = || {
        db.command()
            .args(["db", "provision", "--tenant", "hille", "--secrets-dir", secrets.to_str().unwrap()])
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .unwrap()
    };
    let (a, b) = (spawn(), spawn());
    wait_for_lock_waiters(&holder, 0x726f_6c65, 2).await;
    holder.execute("SELECT pg_advisory_unlock($1, hashtext($2))", &[&0x726f_6c65i32, &group_role]).await.unwrap();
    let (a, b) = (a.wait_with_output().unwrap(), b.wait_with_output().unwrap());
    assert_ok(&a, "first concurrent provision");
    assert_ok(&b, "second concurrent provision");
    let all = format!("{}{}{}{}", text(&a).0, text(&a).1, text(&b).0, text(&b).1);
    assert!(!all.contains("23505"), "{all}");
    assert_eq!(all.matches(&format!("created role {group_role}")).count(), 1, "{all}");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_connection_lost_during_migrate_exits_3() {
    let Some(db) = TestDb::create("migdrop").await else { return };
    db.scaffold("05770");
    assert_ok(&db.db(&["provision", "--tenant", "hille"]), "provision");
    let schema = db.schema("hille");
    // Hold the schema's migration lock, wait until `db migrate` queues behind it, then end
    // its server session as a failover or restart would.
    let holder = db.client().await;
    holder.batch_execute("BEGIN").await.unwrap();
    holder.execute("SELECT pg_advisory_xact_lock(1886351988, hashtext($1))", &[&schema]).await.unwrap();
    let child = db
        .command()
        .args(["db", "migrate", "--tenant", "hille"])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let admin = db.client().await;
    wait_for_lock_waiters(&admin, 1886351988, 1).await;
    admin
        .batch_execute(
            "SELECT pg_terminate_backend(pid) FROM pg_locks
              WHERE locktype = 'advisory' AND NOT granted AND classid = 1886351988::int::oid",
        )
        .await
        .unwrap();
    let out = child.wait_with_output().unwrap();
    holder.batch_execute("ROLLBACK").await.unwrap();
    let (o, e) = text(&out);
    assert_eq!(out.status.code(), Some(3), "a lost connection is exit 3:\n{o}\n{e}");
    assert!(e.contains("hille"), "the tenant is named:\n{e}");
    // Run again: it converges.
    assert_ok(&db.db(&["migrate", "--tenant", "hille"]), "migrate after the connection came back");
    assert_eq!(version(&db.client().await, &schema).await, Some(LATEST));
}

/// Every table's rows (as text, ordered) and every index definition of a schema, for comparing
/// a restored schema with the original.
async fn schema_fingerprint(client: &Client, schema: &str) -> Vec<String> {
    let mut out = Vec::new();
    for r in client
        .query("SELECT indexname::text, indexdef FROM pg_indexes WHERE schemaname = $1 ORDER BY 1", &[&schema])
        .await
        .unwrap()
    {
        let (name, def): (String, String) = (r.get(0), r.get(1));
        out.push(format!("index {name}: {def}"));
    }
    let tables: Vec<String> = client
        .query("SELECT tablename::text FROM pg_tables WHERE schemaname = $1 ORDER BY 1", &[&schema])
        .await
        .unwrap()
        .iter()
        .map(|r| r.get(0))
        .collect();
    for t in tables {
        let q = format!(
            "SELECT coalesce(string_agg(x::text, E'\\n' ORDER BY x::text), '') FROM {}.{} x",
            quote::ident(schema),
            quote::ident(&t)
        );
        let rows: String = client.query_one(&q, &[]).await.unwrap().get(0);
        out.push(format!("table {t}:\n{rows}"));
    }
    out
}

#[tokio::test(flavor = "multi_thread")]
async fn offboard_proves_its_dump_and_restore_brings_back_every_table_and_index() {
    let Some(db) = TestDb::create("restore").await else { return };
    db.scaffold("05770");
    let slug = "luebbecke";
    assert_ok(&db.db(&["provision", "--tenant", slug]), "provision");
    assert_ok(&db.db(&["migrate", "--tenant", slug]), "migrate");
    let schema = db.schema(slug);
    let client = db.client().await;
    client
        .batch_execute(&format!(
            "INSERT INTO {q}.service (id, title, published) VALUES ('hundesteuer', 'Hund anmelden (Lübbecke-Test)', true)",
            q = quote::ident(&schema)
        ))
        .await
        .unwrap();
    let before = schema_fingerprint(&client, &schema).await;
    assert!(before.iter().any(|l| l.contains("gin_trgm_ops")), "the schema has trigram indexes: {before:#?}");
    let backups = db.dir.path().join("backups");
    let backups_s = backups.to_str().unwrap();

    // A pg_dump that exits 0 after writing a truncated file is not trusted.
    let real = portalctl::db::offboard::find_pg_dump(None).unwrap();
    let fake = db.dir.path().join("truncating-pg_dump");
    std::fs::write(
        &fake,
        format!(
            "#!/bin/sh\n\"{}\" \"$@\" || exit $?\nfor a in \"$@\"; do case \"$a\" in --file=*) f=\"${{a#--file=}}\";; esac; done\n\
             truncate -s 1500 \"$f\"\nexit 0\n",
            real.display()
        ),
    )
    .unwrap();
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&fake, std::fs::Permissions::from_mode(0o755)).unwrap();
    let out = db
        .command()
        .args(["db", "offboard", "--tenant", slug, "--confirm", "--backup-dir", backups_s])
        .args(["--secrets-dir", db.secrets().to_str().unwrap()])
        .env("PORTALCTL_PG_DUMP", &fake)
        .output()
        .unwrap();
    let (_, e) = text(&out);
    assert_eq!(out.status.code(), Some(1), "{e}");
    assert!(e.contains("truncated") && e.contains("refusing to drop"), "{e}");
    assert_eq!(version(&client, &schema).await, Some(LATEST), "schema kept");
    assert_eq!(schema_fingerprint(&client, &schema).await, before);

    // The real offboarding: dump proven, size and SHA-256 printed and recorded.
    let out = db.db(&["offboard", "--tenant", slug, "--confirm", "--backup-dir", backups_s]);
    assert_ok(&out, "offboard");
    let (o, _) = text(&out);
    let line = o.lines().find(|l| l.starts_with("backup: ")).unwrap_or_else(|| panic!("no backup line: {o}"));
    let path = PathBuf::from(line.trim_start_matches("backup: ").split(" (").next().unwrap());
    let bytes = std::fs::read(&path).unwrap();
    let sha: String = {
        use sha2::Digest;
        sha2::Sha256::digest(&bytes).iter().map(|b| format!("{b:02x}")).collect()
    };
    assert!(line.contains(&sha), "{line}");
    let row = client
        .query_one("SELECT dump_file, dump_bytes, dump_sha256 FROM portalctl.offboarded WHERE slug = $1", &[&slug])
        .await
        .unwrap();
    assert_eq!(row.get::<_, String>(0), path.file_name().unwrap().to_string_lossy());
    assert_eq!(row.get::<_, i64>(1), bytes.len() as i64);
    assert_eq!(row.get::<_, String>(2), sha);
    assert_eq!(version(&client, &schema).await, None, "schema dropped");

    // Restore into a fresh database: prerequisites first, every table and index back.
    let fresh = TestDb::create("restfresh").await.unwrap();
    let restore = |db_url: &str| {
        db.command()
            .env("DATABASE_URL", db_url)
            .args(["db", "restore", "--tenant", slug, path.to_str().unwrap()])
            .args(["--secrets-dir", db.secrets().to_str().unwrap()])
            .output()
            .unwrap()
    };
    let out = restore(&fresh.url);
    assert_ok(&out, "restore into a fresh database");
    let (o, _) = text(&out);
    assert!(o.contains(&format!("restored schema {schema}")) && o.contains(&sha), "{o}");
    let fresh_client = fresh.client().await;
    assert_eq!(schema_fingerprint(&fresh_client, &schema).await, before, "restored schema differs");
    // The tenant role can read its restored content with its stored credential's role.
    fresh_client.batch_execute(&format!("SET ROLE {}", quote::ident(&schema))).await.unwrap();
    let n: i64 = fresh_client
        .query_one(&format!("SELECT count(*) FROM {}.service", quote::ident(&schema)), &[])
        .await
        .unwrap()
        .get(0);
    assert_eq!(n, 1);
    // A second restore over the existing schema is refused.
    let out = restore(&fresh.url);
    assert_eq!(out.status.code(), Some(1));
    assert!(text(&out).1.contains("exists"), "{}", text(&out).1);

    // In the original database the recorded SHA-256 is checked: a changed file is refused.
    let mut changed = bytes.clone();
    let at = changed.windows(12).position(|w| w == b"Hund anmelde").unwrap();
    changed[at] = b'K';
    std::fs::write(&path, &changed).unwrap();
    let out = restore(&db.url);
    assert_eq!(out.status.code(), Some(1));
    assert!(text(&out).1.contains("differs"), "{}", text(&out).1);
    std::fs::write(&path, &bytes).unwrap();
    assert_ok(&restore(&db.url), "restore into the original database");
    assert_eq!(schema_fingerprint(&db.client().await, &schema).await, before);
}
