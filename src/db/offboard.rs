//! Offboarding a tenant: dump its schema with pg_dump first, prove the dump (pg_dump's
//! completion trailer, the schema's CREATE, fsync of file and directory, size and SHA-256 recorded
//! with the offboarding), then drop the schema and the role in one transaction, then remove the
//! stored credential. Nothing is dropped unless a complete dump of the schema is on disk.
//! [`restore`] brings a dump back.

use super::connect::Resolved;
use super::credentials::{Key, Owner, Store};
use super::quote::ident;
use super::{group_role, Error, Result, TenantDb, ADMIN_SCHEMA};
use serde::Serialize;
use std::path::{Path, PathBuf};
use tokio_postgres::Client;

/// What offboarding a tenant will do.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Plan {
    pub tenant: String,
    pub schema: String,
    pub role: String,
    pub group_role: String,
    pub schema_exists: bool,
    pub role_exists: bool,
    /// Where the dump goes (only when the schema exists).
    pub backup: Option<PathBuf>,
    /// Where the tenant's credential is kept.
    pub credential: String,
}

impl Plan {
    pub fn is_empty(&self) -> bool {
        !self.schema_exists && !self.role_exists
    }

    /// The plan in words, one step per line.
    pub fn steps(&self) -> Vec<String> {
        let mut steps = Vec::new();
        if let Some(b) = &self.backup {
            steps.push(format!("dump schema {} with pg_dump to {}", self.schema, b.display()));
        }
        if self.schema_exists {
            steps.push(format!("drop schema {} with all its tables and data", self.schema));
        }
        if self.role_exists {
            steps.push(format!("drop role {} (also revoking it from {})", self.role, self.group_role));
        }
        steps.push(format!("forget the tenant in {ADMIN_SCHEMA}.tenant and {ADMIN_SCHEMA}.phase_history"));
        steps.push(format!("remove the credential {}", self.credential));
        steps
    }
}

/// The credential key of a tenant.
pub fn tenant_key(t: &TenantDb) -> Key {
    Key {
        group: t.group.clone(),
        namespace: t.namespace.clone(),
        cluster_context: t.cluster_context.clone(),
        owner: Owner::Tenant(t.slug.clone()),
    }
}

/// Look at what exists and say what offboarding would do.
pub async fn plan(client: &Client, t: &TenantDb, store: &Store, backup_dir: &Path) -> Result<Plan> {
    t.check()?;
    let row = client
        .query_one(
            "SELECT EXISTS (SELECT 1 FROM pg_namespace WHERE nspname = $1::text),
                    EXISTS (SELECT 1 FROM pg_roles WHERE rolname = $1::text)",
            &[&t.schema],
        )
        .await
        .map_err(Error::query(format!("tenant {}: inspecting schema and role {}", t.slug, t.schema)))?;
    let schema_exists: bool = row.get(0);
    let stamp = time::OffsetDateTime::now_utc()
        .format(time::macros::format_description!("[year][month][day]T[hour][minute][second]Z"))
        .expect("a UTC time formats");
    Ok(Plan {
        tenant: t.slug.clone(),
        schema: t.schema.clone(),
        role: t.schema.clone(),
        group_role: group_role(&t.group)?,
        schema_exists,
        role_exists: row.get(1),
        backup: schema_exists.then(|| backup_dir.join(format!("{}-{}-{stamp}.sql", t.slug, t.schema))),
        credential: store.describe(&tenant_key(t)),
    })
}

/// pg_dump: the given path, else on PATH, else in PostgreSQL's bin directory.
pub fn find_pg_dump(explicit: Option<&Path>) -> Result<PathBuf> {
    find_pg_tool("pg_dump", explicit)
}

/// A PostgreSQL client program: the given path, else on PATH, else in PostgreSQL's bin
/// directory (`pg_config --bindir`, then the newest `/usr/lib/postgresql/*/bin`).
pub fn find_pg_tool(tool: &str, explicit: Option<&Path>) -> Result<PathBuf> {
    if let Some(p) = explicit {
        return if p.is_file() {
            Ok(p.to_path_buf())
        } else {
            Err(Error::Backup(format!("{tool} not found at {}", p.display())))
        };
    }
    if let Some(path) = std::env::var_os("PATH") {
        for dir in std::env::split_paths(&path) {
            let candidate = dir.join(tool);
            if candidate.is_file() {
                return Ok(candidate);
            }
        }
    }
    if let Ok(out) = std::process::Command::new("pg_config").arg("--bindir").output() {
        if out.status.success() {
            let dir = PathBuf::from(String::from_utf8_lossy(&out.stdout).trim());
            if dir.join(tool).is_file() {
                return Ok(dir.join(tool));
            }
        }
    }
    let mut versions: Vec<(u32, PathBuf)> = std::fs::read_dir("/usr/lib/postgresql")
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|e| {
            let v: u32 = e.file_name().to_string_lossy().parse().ok()?;
            let p = e.path().join("bin").join(tool);
            p.is_file().then_some((v, p))
        })
        .collect();
    versions.sort();
    versions.pop().map(|(_, p)| p).ok_or_else(|| {
        Error::Backup(format!(
            "{tool} not found on PATH, via pg_config or under /usr/lib/postgresql; install the PostgreSQL \
             client tools or pass --{tool}",
            tool = tool.replace('_', "-")
        ))
    })
}

/// Run a PostgreSQL client program against the connection: libpq environment (the password
/// never on a command line), no password prompt, no service file, stderr captured.
async fn run_pg_tool(tool: &Path, conn: &Resolved, args: &[String]) -> Result<std::process::Output> {
    let mut cmd = tokio::process::Command::new(tool);
    cmd.arg("--no-password")
        .args(args)
        .env_remove("PGSERVICE")
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped());
    for (k, v) in conn.libpq_env() {
        cmd.env(k, v);
    }
    cmd.output().await.map_err(|e| Error::Backup(format!("cannot run {}: {e}", tool.display())))
}

/// The last line pg_dump writes when, and only when, it finished the dump.
pub const DUMP_TRAILER: &str = "-- PostgreSQL database dump complete";

/// A dump on disk, as proven before anything is dropped.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Dump {
    pub path: PathBuf,
    pub bytes: u64,
    /// Hex SHA-256 of the file.
    pub sha256: String,
}

/// Check a dump of `schema` in memory: complete (pg_dump's trailer), and creating the schema.
pub fn check_dump(text: &[u8], schema: &str) -> std::result::Result<(), String> {
    if text.is_empty() {
        return Err(format!("the dump of schema {schema} is empty"));
    }
    let tail = String::from_utf8_lossy(&text[text.len().saturating_sub(512)..]);
    if !tail.lines().rev().take(8).any(|l| l.trim_end() == DUMP_TRAILER) {
        return Err(format!(
            "the dump of schema {schema} does not end with pg_dump's completion line ({DUMP_TRAILER:?}): it is truncated"
        ));
    }
    let body = String::from_utf8_lossy(text);
    let create = format!("CREATE SCHEMA {schema};");
    let create_quoted = format!("CREATE SCHEMA {};", ident(schema));
    if !body.contains(&create) && !body.contains(&create_quoted) {
        return Err(format!("the dump does not create schema {schema}"));
    }
    Ok(())
}

fn sha256_hex(bytes: &[u8]) -> String {
    use sha2::Digest;
    sha2::Sha256::digest(bytes).iter().map(|b| format!("{b:02x}")).collect()
}

/// Dump one schema (plain SQL, mode 0600, without owners and grants — provisioning re-creates
/// those) to `path`, and prove the dump: pg_dump succeeded, the file is complete
/// ([`check_dump`]), and file and directory are on stable storage (fsync) before this returns.
pub async fn dump_schema(pg_dump: &Path, conn: &Resolved, schema: &str, path: &Path) -> Result<Dump> {
    use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};
    super::check_tenant_schema(schema)?;
    let dir = path.parent().unwrap_or(Path::new("."));
    std::fs::DirBuilder::new().recursive(true).mode(0o700).create(dir).map_err(Error::io(dir))?;
    let partial = path.with_extension("sql.partial");
    // Create it 0600 first: the dump holds the tenant's data.
    std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(&partial)
        .map_err(Error::io(&partial))?;
    let args = [
        "--format=plain".to_string(),
        "--no-owner".to_string(),
        "--no-privileges".to_string(),
        // A quoted pattern matches exactly this schema, never a wildcard.
        format!("--schema={}", ident(schema)),
        format!("--file={}", partial.display()),
    ];
    let out = run_pg_tool(pg_dump, conn, &args).await?;
    let fail = |msg: String| {
        let _ = std::fs::remove_file(&partial);
        Err(Error::Backup(msg))
    };
    if !out.status.success() {
        let stderr = String::from_utf8_lossy(&out.stderr);
        return fail(format!("{} failed ({}): {}", pg_dump.display(), out.status, stderr.trim()));
    }
    let text = std::fs::read(&partial).map_err(Error::io(&partial))?;
    if let Err(why) = check_dump(&text, schema) {
        return fail(format!("{why}; not trusting it"));
    }
    let sync = |p: &Path| std::fs::File::open(p).and_then(|f| f.sync_all());
    sync(&partial).map_err(Error::io(&partial))?;
    std::fs::rename(&partial, path).map_err(Error::io(path))?;
    sync(dir).map_err(Error::io(dir))?;
    Ok(Dump { path: path.to_path_buf(), bytes: text.len() as u64, sha256: sha256_hex(&text) })
}

/// What [`restore`] did.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Restored {
    pub tenant: String,
    pub schema: String,
    pub dump: Dump,
    /// Whether the SHA-256 matched the one recorded when the tenant was offboarded (`None`: no
    /// record of this file in this database, e.g. a restore into a fresh database).
    pub recorded_sha256_matched: Option<bool>,
}

/// Restore a tenant's schema from a dump written by [`dump_schema`]: refuses if the schema
/// exists; checks the dump ([`check_dump`]) and, where this database recorded the offboarding,
/// its SHA-256; creates the prerequisites (`portalctl_ext` with pg_trgm, the bookkeeping) first;
/// runs psql with `ON_ERROR_STOP` in one transaction, so a failing restore leaves nothing. The
/// caller provisions the tenant afterwards (role, privileges, credential) and migrates it.
pub async fn restore(client: &Client, psql: &Path, conn: &Resolved, t: &TenantDb, file: &Path) -> Result<Restored> {
    t.check()?;
    let text = std::fs::read(file).map_err(Error::io(file))?;
    check_dump(&text, &t.schema).map_err(|why| Error::Refused(format!("{}: {why}", file.display())))?;
    let dump = Dump { path: file.to_path_buf(), bytes: text.len() as u64, sha256: sha256_hex(&text) };
    super::provision::ensure_shared(client).await?;
    let exists: bool = client
        .query_one("SELECT EXISTS (SELECT 1 FROM pg_namespace WHERE nspname = $1::text)", &[&t.schema])
        .await
        .map_err(Error::query(format!("tenant {}: inspecting schema {}", t.slug, t.schema)))?
        .get(0);
    if exists {
        return Err(Error::Refused(format!(
            "tenant {}: schema {} exists; restoring over it is refused (offboard it first, or restore into another database)",
            t.slug, t.schema
        )));
    }
    let name = file.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
    let recorded: Option<String> = client
        .query_opt(
            "SELECT dump_sha256 FROM portalctl.offboarded WHERE slug = $1 AND dump_file = $2
              ORDER BY offboarded_at DESC LIMIT 1",
            &[&t.slug, &name],
        )
        .await
        .map_err(Error::query(format!("tenant {}: reading the offboarding record", t.slug)))?
        .map(|r| r.get(0));
    let recorded_sha256_matched = recorded.as_ref().map(|r| *r == dump.sha256);
    if recorded_sha256_matched == Some(false) {
        return Err(Error::Refused(format!(
            "{}: SHA-256 {} differs from {} recorded when tenant {} was offboarded; the file changed",
            file.display(),
            dump.sha256,
            recorded.unwrap_or_default(),
            t.slug
        )));
    }
    let args = ["--no-psqlrc", "--quiet", "--single-transaction", "--set", "ON_ERROR_STOP=1"].map(String::from);
    let mut args = args.to_vec();
    args.push(format!("--file={}", file.display()));
    let out = run_pg_tool(psql, conn, &args).await?;
    if !out.status.success() {
        let stderr = String::from_utf8_lossy(&out.stderr);
        return Err(Error::Backup(format!(
            "restoring {} failed ({}), nothing was restored: {}",
            file.display(),
            out.status,
            stderr.trim()
        )));
    }
    Ok(Restored { tenant: t.slug.clone(), schema: t.schema.clone(), dump, recorded_sha256_matched })
}

/// Drop schema and role and forget the tenant, in one transaction that also records the
/// offboarding with its dump (file name, size, SHA-256) in `portalctl.offboarded`.
pub async fn drop_tenant(client: &Client, t: &TenantDb, dump: Option<&Dump>) -> Result<()> {
    t.check()?;
    let q = ident(&t.schema);
    let what = format!("tenant {}: dropping schema and role {}", t.slug, t.schema);
    let role_exists: bool = client
        .query_one("SELECT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = $1::text)", &[&t.schema])
        .await
        .map_err(Error::query(what.clone()))?
        .get(0);
    let bookkeeping: bool = client
        .query_one(
            "SELECT to_regclass('portalctl.tenant') IS NOT NULL AND to_regclass('portalctl.offboarded') IS NOT NULL",
            &[],
        )
        .await
        .map_err(Error::query(what.clone()))?
        .get(0);
    let mut sql = format!(
        "SELECT pg_advisory_xact_lock({space}, hashtext({lit}));
         SELECT pg_advisory_xact_lock({l0}, {l1});
         DROP SCHEMA IF EXISTS {q} CASCADE;\n",
        space = super::migrations::LOCK_SPACE,
        lit = super::quote::literal(&t.schema),
        l0 = super::provision::SHARED_LOCK.0,
        l1 = super::provision::SHARED_LOCK.1,
    );
    if role_exists {
        // DROP OWNED revokes what the role was granted in this database (portalctl_ext).
        sql.push_str(&format!("DROP OWNED BY {q};\nDROP ROLE {q};\n"));
    }
    client.batch_execute("BEGIN").await.map_err(Error::query(what.clone()))?;
    let result = async {
        client.batch_execute(&sql).await.map_err(Error::query(what.clone()))?;
        if bookkeeping {
            client
                .execute("DELETE FROM portalctl.phase_history WHERE slug = $1", &[&t.slug])
                .await
                .map_err(Error::query(what.clone()))?;
            client
                .execute("DELETE FROM portalctl.tenant WHERE slug = $1", &[&t.slug])
                .await
                .map_err(Error::query(what.clone()))?;
            let file = dump.and_then(|d| d.path.file_name()).map(|n| n.to_string_lossy().into_owned());
            let bytes = dump.map(|d| d.bytes as i64);
            let sha = dump.map(|d| d.sha256.clone());
            client
                .execute(
                    "INSERT INTO portalctl.offboarded (slug, grp, schema, dump_file, dump_bytes, dump_sha256)
                     VALUES ($1, $2, $3, $4, $5, $6)",
                    &[&t.slug, &t.group, &t.schema, &file, &bytes, &sha],
                )
                .await
                .map_err(Error::query(format!("{what}: recording the offboarding")))?;
        }
        Ok(())
    }
    .await;
    match result {
        Ok(()) => client.batch_execute("COMMIT").await.map_err(Error::query(format!("{what}: COMMIT"))),
        Err(e) => {
            let _ = client.batch_execute("ROLLBACK").await;
            Err(e)
        }
    }
}
