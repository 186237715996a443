//! The portal's schema as versioned migrations, embedded in the binary in order, and how
//! they are applied to one tenant schema.
//!
//! Each migration runs in its own transaction with `SET LOCAL search_path = <schema>,
//! portalctl_ext`, under a transaction-level advisory lock keyed by the schema, and records
//! its version in `<schema>.schema_migrations` in the same transaction: a migration that
//! fails leaves the schema at the version before it, and two processes migrating the same
//! schema at once apply each migration exactly once.

use super::quote::ident;
use super::{check_tenant_schema, Error, Result};
use tokio_postgres::Client;

/// One migration: `src/db/migrations/<version:04>_<name>.sql`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Migration {
    pub version: i32,
    pub name: &'static str,
    pub sql: &'static str,
}

/// Every migration, in order. A test checks that this list matches the directory.
pub const MIGRATIONS: &[Migration] = &[
    Migration { version: 1, name: "content", sql: include_str!("migrations/0001_content.sql") },
    Migration { version: 2, name: "feedback", sql: include_str!("migrations/0002_feedback.sql") },
    Migration { version: 3, name: "competence_leika", sql: include_str!("migrations/0003_competence_leika.sql") },
];

/// The version a current schema is at.
pub const LATEST: i32 = MIGRATIONS[MIGRATIONS.len() - 1].version;

/// Key space of the advisory locks taken per tenant schema (first half of the two-int key).
pub(crate) const LOCK_SPACE: i32 = 0x706f_7274; // "port"

/// What migrating one schema did.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Outcome {
    /// The version this run found: before the first migration it applied (another process
    /// may have applied earlier ones meanwhile), or the version it found current.
    pub from: i32,
    pub to: i32,
    /// Versions applied by this run (empty: already current).
    pub applied: Vec<i32>,
}

/// The version a schema is at: `None` if the schema does not exist, 0 if it was never migrated.
pub async fn current_version(client: &Client, schema: &str) -> Result<Option<i32>> {
    check_tenant_schema(schema)?;
    let row = client
        .query_one(
            "SELECT EXISTS (SELECT 1 FROM pg_namespace WHERE nspname = $1::text), \
                    to_regclass(quote_ident($1::text) || '.schema_migrations') IS NOT NULL",
            &[&schema],
        )
        .await
        .map_err(Error::query(format!("schema {schema}: reading its version")))?;
    let (exists, has_table): (bool, bool) = (row.get(0), row.get(1));
    if !exists {
        return Ok(None);
    }
    if !has_table {
        return Ok(Some(0));
    }
    let sql = format!("SELECT coalesce(max(version), 0) FROM {}.schema_migrations", ident(schema));
    let row =
        client.query_one(&sql, &[]).await.map_err(Error::query(format!("schema {schema}: reading its version")))?;
    Ok(Some(row.get(0)))
}

/// Apply every embedded migration to `schema` (which must exist).
pub async fn migrate(client: &Client, schema: &str) -> Result<Outcome> {
    migrate_schema(client, schema, MIGRATIONS).await
}

/// Apply `migrations` (ascending versions) to `schema`, each in its own transaction under
/// the schema's advisory lock. Stops at the first failure, which leaves the schema at the
/// last version that succeeded.
pub async fn migrate_schema(client: &Client, schema: &str, migrations: &[Migration]) -> Result<Outcome> {
    check_tenant_schema(schema)?;
    if migrations.windows(2).any(|w| w[0].version >= w[1].version) {
        return Err(Error::Refused("migrations must have ascending versions".into()));
    }
    let from = current_version(client, schema)
        .await?
        .ok_or_else(|| Error::Refused(format!("schema {schema} does not exist; run `portalctl db provision` first")))?;
    let q = ident(schema);
    let role_exists = client
        .query_one("SELECT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = $1)", &[&schema])
        .await
        .map_err(Error::query(format!("schema {schema}: looking up its role")))?
        .get::<_, bool>(0);
    let mut at = from;
    let mut applied = Vec::new();
    let mut found = from;
    for m in migrations.iter().filter(|m| m.version > from) {
        client.batch_execute("BEGIN").await.map_err(Error::query(format!("schema {schema}: BEGIN")))?;
        let step = async {
            client.execute("SELECT pg_advisory_xact_lock($1, hashtext($2))", &[&LOCK_SPACE, &schema]).await?;
            let mut setup = format!(
                "SET LOCAL search_path = {q}, {ext};\n\
                 CREATE TABLE IF NOT EXISTS {q}.schema_migrations (\n\
                     version integer PRIMARY KEY,\n\
                     name text NOT NULL,\n\
                     applied_at timestamptz NOT NULL DEFAULT now()\n\
                 );",
                ext = ident(super::EXT_SCHEMA)
            );
            if role_exists {
                // The tenant may read its version (the portal shows it) but never change it.
                setup.push_str(&format!(
                    "\nREVOKE INSERT, UPDATE, DELETE, TRUNCATE ON {q}.schema_migrations FROM {q};\
                     \nGRANT SELECT ON {q}.schema_migrations TO {q};"
                ));
            }
            client.batch_execute(&setup).await?;
            let done: i32 = client
                .query_one(&format!("SELECT coalesce(max(version), 0) FROM {q}.schema_migrations"), &[])
                .await?
                .get(0);
            if done >= m.version {
                // Another process got here first.
                return Ok::<_, tokio_postgres::Error>((done, false));
            }
            client.batch_execute(m.sql).await?;
            client
                .execute(
                    &format!("INSERT INTO {q}.schema_migrations (version, name) VALUES ($1, $2)"),
                    &[&m.version, &m.name],
                )
                .await?;
            if role_exists {
                // Tables made by another admin role do not get the default privileges.
                client
                    .batch_execute(&format!(
                        "GRANT SELECT, INSERT, UPDATE, DELETE ON ALL TABLES IN SCHEMA {q} TO {q};\n\
                         GRANT USAGE, SELECT ON ALL SEQUENCES IN SCHEMA {q} TO {q};\n\
                         REVOKE INSERT, UPDATE, DELETE, TRUNCATE ON {q}.schema_migrations FROM {q};"
                    ))
                    .await?;
            }
            Ok((m.version, true))
        }
        .await;
        match step {
            Ok((version, did)) => {
                client.batch_execute("COMMIT").await.map_err(|source| Error::Migration {
                    schema: schema.to_string(),
                    version: m.version,
                    name: m.name.to_string(),
                    left_at: at,
                    source,
                })?;
                if did && applied.is_empty() {
                    found = at;
                }
                at = at.max(version);
                if did {
                    applied.push(m.version);
                }
            }
            Err(source) => {
                let _ = client.batch_execute("ROLLBACK").await;
                return Err(Error::Migration {
                    schema: schema.to_string(),
                    version: m.version,
                    name: m.name.to_string(),
                    left_at: at,
                    source,
                });
            }
        }
    }
    Ok(Outcome { from: if applied.is_empty() { from } else { found }, to: at, applied })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_embedded_list_matches_the_directory_in_order() {
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("src/db/migrations");
        let mut files: Vec<String> = std::fs::read_dir(&dir)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .filter(|f| f.ends_with(".sql"))
            .collect();
        files.sort();
        let listed: Vec<String> = MIGRATIONS.iter().map(|m| format!("{:04}_{}.sql", m.version, m.name)).collect();
        assert_eq!(files, listed, "every file in src/db/migrations must be listed in MIGRATIONS, in order");
        for (i, m) in MIGRATIONS.iter().enumerate() {
            assert_eq!(m.version, i as i32 + 1, "versions are consecutive from 1");
            let on_disk = std::fs::read_to_string(dir.join(&listed[i])).unwrap();
            assert_eq!(m.sql, on_disk);
        }
        assert_eq!(LATEST, MIGRATIONS.len() as i32);
    }

    #[test]
    fn migrations_never_name_a_schema_or_manage_transactions() {
        for m in MIGRATIONS {
            let upper = m.sql.to_uppercase();
            for word in ["BEGIN;", "COMMIT", "ROLLBACK", "SET SEARCH_PATH"] {
                assert!(!upper.contains(word), "migration {} contains {word}", m.name);
            }
        }
    }
}
