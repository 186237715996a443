//! Offboarding a tenant: dump its schema with pg_dump first, check the dump, then drop the
//! schema and the role in one transaction, then remove the stored credential. Nothing is
//! dropped unless a non-empty dump of the schema is on disk.

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

/// pg_dump: the given path, else on PATH, else in PostgreSQL's bin directory
/// (`pg_config --bindir`, then the newest `/usr/lib/postgresql/*/bin`).
pub fn find_pg_dump(explicit: Option<&Path>) -> Result<PathBuf> {
    if let Some(p) = explicit {
        return if p.is_file() {
            Ok(p.to_path_buf())
        } else {
            Err(Error::Backup(format!("pg_dump not found at {}", p.display())))
        };
    }
    if let Some(path) = std::env::var_os("PATH") {
        for dir in std::env::split_paths(&path) {
            let candidate = dir.join("pg_dump");
            if candidate.is_file() {
                return Ok(candidate);
            }
        }
    }
    if let Ok(out) = std::process::Command::new("pg_config").arg("--bindir").output() {
        if out.status.success() {
            let dir = PathBuf::from(String::from_utf8_lossy(&out.stdout).trim());
            if dir.join("pg_dump").is_file() {
                return Ok(dir.join("pg_dump"));
            }
        }
    }
    let mut versions: Vec<(u32, PathBuf)> = std::fs::read_dir("/usr/lib/postgresql")
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|e| {
            let v: u32 = e.file_name().to_string_lossy().parse().ok()?;
            let p = e.path().join("bin/pg_dump");
            p.is_file().then_some((v, p))
        })
        .collect();
    versions.sort();
    versions.pop().map(|(_, p)| p).ok_or_else(|| {
        Error::Backup(
            "pg_dump not found on PATH, via pg_config or under /usr/lib/postgresql; install the PostgreSQL \
             client tools or pass --pg-dump"
                .into(),
        )
    })
}

/// Dump one schema (plain SQL, mode 0600) to `path`; checks that the dump succeeded, is
/// non-empty and creates the schema. Returns its size in bytes.
pub async fn dump_schema(pg_dump: &Path, conn: &Resolved, schema: &str, path: &Path) -> Result<u64> {
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
    let mut cmd = tokio::process::Command::new(pg_dump);
    cmd.arg("--no-password")
        .arg("--format=plain")
        // A quoted pattern matches exactly this schema, never a wildcard.
        .arg(format!("--schema={}", ident(schema)))
        .arg(format!("--file={}", partial.display()))
        .env_remove("PGSERVICE")
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped());
    for (k, v) in conn.libpq_env() {
        cmd.env(k, v);
    }
    let out = cmd.output().await.map_err(|e| Error::Backup(format!("cannot run {}: {e}", pg_dump.display())))?;
    let fail = |msg: String| {
        let _ = std::fs::remove_file(&partial);
        Err(Error::Backup(msg))
    };
    if !out.status.success() {
        let stderr = String::from_utf8_lossy(&out.stderr);
        return fail(format!("{} failed ({}): {}", pg_dump.display(), out.status, stderr.trim()));
    }
    let text = std::fs::read(&partial).map_err(Error::io(&partial))?;
    if text.is_empty() {
        return fail(format!("{} wrote an empty dump of schema {schema}", pg_dump.display()));
    }
    let create = format!("CREATE SCHEMA {schema};");
    let create_quoted = format!("CREATE SCHEMA {};", ident(schema));
    let body = String::from_utf8_lossy(&text);
    if !body.contains(&create) && !body.contains(&create_quoted) {
        return fail(format!("the dump of schema {schema} does not create the schema; not trusting it"));
    }
    std::fs::rename(&partial, path).map_err(Error::io(path))?;
    Ok(text.len() as u64)
}

/// Drop schema and role and forget the tenant, in one transaction.
pub async fn drop_tenant(client: &Client, t: &TenantDb) -> Result<()> {
    t.check()?;
    let q = ident(&t.schema);
    let what = format!("tenant {}: dropping schema and role {}", t.slug, t.schema);
    let role_exists: bool = client
        .query_one("SELECT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = $1::text)", &[&t.schema])
        .await
        .map_err(Error::query(what.clone()))?
        .get(0);
    let bookkeeping: bool = client
        .query_one("SELECT to_regclass('portalctl.tenant') IS NOT NULL", &[])
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
