//! Provisioning: the shared schemas, one login role per rollout group, and per tenant its
//! schema, role, privileges, credential and bookkeeping row. Every step first looks at what
//! exists and does only what is missing, so a second run changes nothing and says so.

use super::credentials::{generate_password, stored_credential, Check as Cred, Credential, Key, Owner, Store};
use super::quote::{ident, literal};
use super::{group_role, Error, Result, TenantDb, ADMIN_SCHEMA, EXT_SCHEMA};
use crate::db::connect::{Resolved, Target};
use serde::Serialize;
use tokio_postgres::Client;

/// Advisory lock (two-int key) serialising changes to shared catalog rows (the shared
/// schemas, grants on `portalctl_ext`), which PostgreSQL does not allow to be updated by
/// concurrent transactions.
pub(crate) const SHARED_LOCK: (i32, i32) = (0x706f_7274, 0);

/// What provisioning did to one object; empty `changes` means it was already in place.
#[derive(Debug, Clone, Serialize)]
pub struct Report {
    /// `shared`, a group's role name, or a tenant slug.
    pub name: String,
    pub changes: Vec<String>,
}

/// Create the shared schemas, the extension and the bookkeeping tables; lock down `public`.
pub async fn ensure_shared(client: &Client) -> Result<Report> {
    let row = client
        .query_one(
            "SELECT
               EXISTS (SELECT 1 FROM pg_namespace WHERE nspname = $1),
               (SELECT n.nspname::text FROM pg_extension e JOIN pg_namespace n ON n.oid = e.extnamespace
                 WHERE e.extname = 'pg_trgm'),
               EXISTS (SELECT 1 FROM pg_namespace n,
                         aclexplode(coalesce(n.nspacl, acldefault('n', n.nspowner))) a
                        WHERE n.nspname = 'public' AND a.grantee = 0 AND a.privilege_type = 'CREATE'),
               to_regclass(quote_ident($2) || '.tenant') IS NOT NULL
                 AND to_regclass(quote_ident($2) || '.phase_history') IS NOT NULL
                 AND to_regclass(quote_ident($2) || '.offboarded') IS NOT NULL
                 -- the phase check knows every rung (`compliant` came later)
                 AND NOT EXISTS (SELECT 1 FROM pg_constraint
                                  WHERE conrelid = to_regclass(quote_ident($2) || '.phase_history')
                                    AND contype = 'c' AND pg_get_constraintdef(oid) NOT LIKE '%compliant%')
                 AND to_regclass(quote_ident($2) || '.audit') IS NOT NULL",
            &[&EXT_SCHEMA, &ADMIN_SCHEMA],
        )
        .await
        .map_err(Error::query("inspecting the shared schemas"))?;
    let ext_schema: bool = row.get(0);
    let trgm_in: Option<String> = row.get(1);
    let public_open: bool = row.get(2);
    let bookkeeping: bool = row.get(3);
    if let Some(schema) = trgm_in.as_deref().filter(|s| *s != EXT_SCHEMA) {
        return Err(Error::Refused(format!(
            "extension pg_trgm is installed in schema {schema:?}, but tenants find it in {EXT_SCHEMA}; \
             move it with: ALTER EXTENSION pg_trgm SET SCHEMA {EXT_SCHEMA}"
        )));
    }
    let mut changes = Vec::new();
    if !ext_schema {
        changes.push(format!("created schema {EXT_SCHEMA}"));
    }
    if trgm_in.is_none() {
        changes.push(format!("created extension pg_trgm in {EXT_SCHEMA}"));
    }
    if public_open {
        changes.push("revoked CREATE on schema public from PUBLIC".into());
    }
    if !bookkeeping {
        changes.push(format!("created bookkeeping tables in schema {ADMIN_SCHEMA}"));
    }
    if changes.is_empty() {
        return Ok(Report { name: "shared".into(), changes });
    }
    let ext = ident(EXT_SCHEMA);
    let adm = ident(ADMIN_SCHEMA);
    let sql = format!(
        "BEGIN;
         SELECT pg_advisory_xact_lock({l0}, {l1});
         CREATE SCHEMA IF NOT EXISTS {ext};
         CREATE EXTENSION IF NOT EXISTS pg_trgm WITH SCHEMA {ext};
         REVOKE CREATE ON SCHEMA public FROM PUBLIC;
         CREATE SCHEMA IF NOT EXISTS {adm};
         REVOKE ALL ON SCHEMA {adm} FROM PUBLIC;
         CREATE TABLE IF NOT EXISTS {adm}.tenant (
             slug           text PRIMARY KEY,
             grp            text NOT NULL,
             schema         text NOT NULL UNIQUE,
             provisioned_at timestamptz NOT NULL DEFAULT now()
         );
         CREATE TABLE IF NOT EXISTS {adm}.phase_history (
             slug       text NOT NULL,
             phase      text NOT NULL,
             reached_at timestamptz NOT NULL DEFAULT now(),
             PRIMARY KEY (slug, phase)
         );
         ALTER TABLE {adm}.phase_history DROP CONSTRAINT IF EXISTS phase_history_phase_check;
         ALTER TABLE {adm}.phase_history ADD CONSTRAINT phase_history_phase_check CHECK (phase IN
             ('declared', 'provisioned', 'deployed', 'reachable', 'content-ready', 'compliant', 'live'));
         CREATE TABLE IF NOT EXISTS {adm}.offboarded (
             slug          text NOT NULL,
             grp           text NOT NULL,
             schema        text NOT NULL,
             dump_file     text,
             dump_bytes    bigint,
             dump_sha256   text,
             offboarded_at timestamptz NOT NULL DEFAULT now()
         );
         CREATE TABLE IF NOT EXISTS {adm}.audit (
             tenant     text NOT NULL,
             audited_at timestamptz NOT NULL DEFAULT clock_timestamp(),
             serious    integer NOT NULL,
             critical   integer NOT NULL,
             findings   jsonb NOT NULL,
             PRIMARY KEY (tenant, audited_at)
         );
         COMMIT;",
        l0 = SHARED_LOCK.0,
        l1 = SHARED_LOCK.1,
    );
    if let Err(e) = client.batch_execute(&sql).await {
        let _ = client.batch_execute("ROLLBACK").await;
        return Err(Error::Query { what: "creating the shared schemas".into(), source: e });
    }
    Ok(Report { name: "shared".into(), changes })
}

/// The state of a role, as far as provisioning cares.
struct RoleState {
    exists: bool,
    can_login: bool,
    inherits: bool,
    /// Superuser, CREATEROLE, CREATEDB, BYPASSRLS or REPLICATION: not a role we may adopt.
    powerful: bool,
}

async fn role_state(client: &Client, role: &str) -> Result<RoleState> {
    let row = client
        .query_opt(
            "SELECT rolcanlogin, rolinherit,
                    rolsuper OR rolcreaterole OR rolcreatedb OR rolbypassrls OR rolreplication
               FROM pg_roles WHERE rolname = $1",
            &[&role],
        )
        .await
        .map_err(Error::query(format!("looking up role {role}")))?;
    Ok(match row {
        None => RoleState { exists: false, can_login: false, inherits: false, powerful: false },
        Some(r) => RoleState { exists: true, can_login: r.get(0), inherits: r.get(1), powerful: r.get(2) },
    })
}

/// `PASSWORD '<SCRAM-SHA-256 verifier>'`: the server stores the verifier and never sees the
/// password itself, so it cannot end up in a server log.
fn password_clause(password: &str) -> String {
    let verifier = postgres_protocol::password::scram_sha_256(password.as_bytes());
    format!("PASSWORD {}", literal(&verifier))
}

fn credential(role: &str, password: String, target: &Target) -> Credential {
    Credential {
        username: role.to_string(),
        password,
        host: target.host.clone(),
        port: target.port,
        dbname: target.dbname.clone(),
    }
}

/// The group's portal role `portal_<group>`: LOGIN NOINHERIT, with a stored credential.
pub async fn ensure_group_role(
    client: &Client,
    group: &str,
    key: &Key,
    store: &Store,
    conn: &Resolved,
) -> Result<Report> {
    let role = group_role(group)?;
    locked(client, &role, ensure_group_role_locked(client, group, &role, key, store, conn)).await
}

async fn ensure_group_role_locked(
    client: &Client,
    group: &str,
    role: &str,
    key: &Key,
    store: &Store,
    conn: &Resolved,
) -> Result<Report> {
    let role = role.to_string();
    let q = ident(&role);
    let state = role_state(client, &role).await?;
    if state.powerful {
        return Err(Error::Refused(format!(
            "group {group}: role {role} exists with administrative attributes; portalctl will not adopt it"
        )));
    }
    let cred =
        if state.exists { stored_credential(store, key, conn, &role, state.can_login).await? } else { Cred::Missing };
    let mut changes = Vec::new();
    let mut sql = String::new();
    let mut password = None;
    if !state.exists {
        let pw = generate_password();
        sql.push_str(&format!("CREATE ROLE {q} LOGIN NOINHERIT {};\n", password_clause(&pw)));
        password = Some(pw);
        changes.push(format!("created role {role}"));
    } else {
        if !state.can_login || state.inherits {
            sql.push_str(&format!("ALTER ROLE {q} LOGIN NOINHERIT;\n"));
            changes.push(format!("set LOGIN NOINHERIT on role {role}"));
        }
        if let Some(why) = cred.reset_reason() {
            let pw = generate_password();
            sql.push_str(&format!("ALTER ROLE {q} {};\n", password_clause(&pw)));
            password = Some(pw);
            changes.push(format!("set a new password for role {role} ({why})"));
        }
    }
    if !login_store_ready(client, &role).await? {
        sql.push_str(&login_store_sql(&role));
        changes.push(format!("created login store schema {role} (sessions, logins in progress)"));
    }
    if sql.is_empty() {
        return Ok(Report { name: role, changes });
    }
    let what = format!("group {group}: role {role}");
    client.batch_execute("BEGIN").await.map_err(Error::query(what.clone()))?;
    let result = client.batch_execute(&sql).await.map_err(Error::query(what.clone()));
    finish(client, result, &what).await?;
    if let Some(pw) = password {
        store_after_commit(store, key, &credential(&role, pw, &conn.target()), &what).await?;
        changes.push(format!("stored credential in {}", store.describe(key)));
    }
    Ok(Report { name: role, changes })
}

/// Store a credential whose password has been committed. A failure here leaves the role
/// with a password that no stored credential holds, which the next run sees and repairs —
/// never the reverse (a stored credential the server does not accept).
async fn store_after_commit(store: &Store, key: &Key, cred: &Credential, what: &str) -> Result<()> {
    crate::failpoint::hit("provision-before-store");
    store.put(key, cred).await.map_err(|e| match e {
        Error::Io { path, source } => {
            Error::Io { path: format!("{path} ({what}: password set, run again to repair)"), source }
        }
        other => other,
    })
}

/// Advisory lock (first half of the two-int key) held while one role is provisioned, so that
/// two provisioning runs at once do not both create it: the second waits, then finds it in
/// place and reports it unchanged.
pub(crate) const ROLE_LOCK_SPACE: i32 = 0x726f_6c65;

/// Run `work` under the session-level advisory lock of `role`; the lock is released whatever
/// `work` returns (and with the connection, if the process dies).
async fn locked<T>(client: &Client, role: &str, work: impl std::future::Future<Output = Result<T>>) -> Result<T> {
    client
        .execute("SELECT pg_advisory_lock($1, hashtext($2))", &[&ROLE_LOCK_SPACE, &role])
        .await
        .map_err(Error::query(format!("waiting for the provisioning lock of role {role}")))?;
    let result = work.await;
    let unlock = client
        .execute("SELECT pg_advisory_unlock($1, hashtext($2))", &[&ROLE_LOCK_SPACE, &role])
        .await
        .map_err(Error::query(format!("releasing the provisioning lock of role {role}")));
    let value = result?;
    unlock?;
    Ok(value)
}

/// Whether the group's login store (schema [`super::login_schema`], named like the group role)
/// exists with both tables and the group role's privileges on them.
async fn login_store_ready(client: &Client, role: &str) -> Result<bool> {
    let row = client
        .query_one(
            "SELECT CASE WHEN to_regclass(quote_ident($1::text) || '.login_session') IS NULL
                          OR to_regclass(quote_ident($1::text) || '.login_pending') IS NULL
                          OR NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = $1::text) THEN false
                     ELSE (SELECT bool_and(has_table_privilege($1::text, quote_ident($1::text) || '.' || t, p))
                             FROM (VALUES ('login_session', 'SELECT'), ('login_session', 'INSERT'),
                                          ('login_session', 'DELETE'), ('login_pending', 'SELECT'),
                                          ('login_pending', 'INSERT'), ('login_pending', 'UPDATE'),
                                          ('login_pending', 'DELETE')) AS w(t, p))
                END",
            &[&role],
        )
        .await
        .map_err(Error::query(format!("inspecting the login store schema {role}")))?;
    Ok(row.get(0))
}

/// The login store of a group: owned by the administrating role, no access for PUBLIC (so
/// none for tenant roles), USAGE and the row privileges the server needs for the group role.
/// Token hashes, tenant, JSON data and expiry (unix seconds) per row; see `servicekonto::session`.
fn login_store_sql(role: &str) -> String {
    let q = ident(role);
    format!(
        "CREATE SCHEMA IF NOT EXISTS {q};
         REVOKE ALL ON SCHEMA {q} FROM PUBLIC;
         GRANT USAGE ON SCHEMA {q} TO {q};
         CREATE TABLE IF NOT EXISTS {q}.login_session (
             id_hash    bytea PRIMARY KEY,
             tenant     text NOT NULL,
             data       text NOT NULL,
             expires_at bigint NOT NULL
         );
         CREATE INDEX IF NOT EXISTS login_session_expires ON {q}.login_session (expires_at);
         CREATE TABLE IF NOT EXISTS {q}.login_pending (
             key_hash   bytea PRIMARY KEY,
             tenant     text NOT NULL,
             data       text NOT NULL,
             expires_at bigint NOT NULL
         );
         CREATE INDEX IF NOT EXISTS login_pending_expires ON {q}.login_pending (expires_at);
         REVOKE ALL ON {q}.login_session, {q}.login_pending FROM PUBLIC;
         GRANT SELECT, INSERT, DELETE ON {q}.login_session TO {q};
         GRANT SELECT, INSERT, UPDATE, DELETE ON {q}.login_pending TO {q};\n"
    )
}

/// COMMIT on success, ROLLBACK on failure.
async fn finish(client: &Client, result: Result<()>, what: &str) -> Result<()> {
    match result {
        Ok(()) => client.batch_execute("COMMIT").await.map_err(Error::query(format!("{what}: COMMIT"))),
        Err(e) => {
            let _ = client.batch_execute("ROLLBACK").await;
            Err(e)
        }
    }
}

/// Provision one tenant: role, password, schema, privileges, group membership, bookkeeping —
/// each only if missing, all in one transaction — and then the credential. The credential is
/// stored only after COMMIT, so that a stored credential is always one the server accepts; a
/// crash in between leaves a role without a stored credential, which the next run sees and
/// repairs. A stored credential that the server refuses is repaired the same way.
pub async fn provision_tenant(client: &Client, t: &TenantDb, store: &Store, conn: &Resolved) -> Result<Report> {
    t.check()?;
    locked(client, t.role(), provision_tenant_locked(client, t, store, conn)).await
}

async fn provision_tenant_locked(client: &Client, t: &TenantDb, store: &Store, conn: &Resolved) -> Result<Report> {
    let role = t.role();
    let grole = group_role(&t.group)?;
    let row = client
        .query_one(
            "SELECT
               r.oid IS NOT NULL,
               coalesce(r.rolcanlogin, false),
               coalesce(r.rolsuper OR r.rolcreaterole OR r.rolcreatedb OR r.rolbypassrls OR r.rolreplication, false),
               n.oid IS NOT NULL,
               coalesce(n.nspowner = (SELECT oid FROM pg_roles WHERE rolname = current_user), false),
               CASE WHEN r.oid IS NULL OR n.oid IS NULL THEN false ELSE
                 has_schema_privilege(r.oid, n.oid, 'USAGE')
                 AND NOT has_schema_privilege(r.oid, n.oid, 'CREATE')
                 AND has_schema_privilege(r.oid, $3::text, 'USAGE')
                 AND (SELECT count(*) FROM pg_default_acl d, aclexplode(d.defaclacl) a
                       WHERE d.defaclnamespace = n.oid
                         AND d.defaclrole = (SELECT oid FROM pg_roles WHERE rolname = current_user)
                         AND a.grantee = r.oid
                         AND ((d.defaclobjtype = 'r' AND a.privilege_type IN ('SELECT', 'INSERT', 'UPDATE', 'DELETE'))
                           OR (d.defaclobjtype = 'S' AND a.privilege_type IN ('USAGE', 'SELECT')))) = 6
               END,
               EXISTS (SELECT 1 FROM pg_auth_members m JOIN pg_roles g ON g.oid = m.member
                        WHERE m.roleid = r.oid AND g.rolname = $2::text),
               EXISTS (SELECT 1 FROM portalctl.tenant x
                        WHERE x.slug = $4::text AND x.schema = $1::text AND x.grp = $5::text)
                 AND EXISTS (SELECT 1 FROM portalctl.phase_history h WHERE h.slug = $4::text AND h.phase = 'provisioned'),
               to_regclass(quote_ident($1::text) || '.schema_migrations') IS NOT NULL
             FROM (SELECT 1) AS one
             LEFT JOIN pg_roles r ON r.rolname = $1::text
             LEFT JOIN pg_namespace n ON n.nspname = $1::text",
            &[&role, &grole, &EXT_SCHEMA, &t.slug, &t.group],
        )
        .await
        .map_err(Error::query(format!("tenant {}: inspecting schema and role {role}", t.slug)))?;
    let role_exists: bool = row.get(0);
    let can_login: bool = row.get(1);
    let powerful: bool = row.get(2);
    let schema_exists: bool = row.get(3);
    let owned: bool = row.get(4);
    let privileges_ok: bool = row.get(5);
    let member: bool = row.get(6);
    let booked: bool = row.get(7);
    let has_versions: bool = row.get(8);
    if powerful {
        return Err(Error::Refused(format!(
            "tenant {}: role {role} exists with administrative attributes; portalctl will not adopt it",
            t.slug
        )));
    }
    let key = Key {
        group: t.group.clone(),
        namespace: t.namespace.clone(),
        cluster_context: t.cluster_context.clone(),
        owner: Owner::Tenant(t.slug.clone()),
    };
    let cred = if role_exists { stored_credential(store, &key, conn, role, can_login).await? } else { Cred::Missing };

    let q = ident(role);
    let mut sql = String::new();
    let mut changes = Vec::new();
    let mut password = None;
    let mut ext_grant = None;
    if !role_exists {
        let pw = generate_password();
        sql.push_str(&format!("CREATE ROLE {q} LOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE {};\n", password_clause(&pw)));
        password = Some(pw);
        changes.push(format!("created role {role}"));
    } else {
        if !can_login {
            sql.push_str(&format!("ALTER ROLE {q} LOGIN;\n"));
            changes.push(format!("enabled LOGIN for role {role}"));
        }
        if let Some(why) = cred.reset_reason() {
            let pw = generate_password();
            sql.push_str(&format!("ALTER ROLE {q} {};\n", password_clause(&pw)));
            password = Some(pw);
            changes.push(format!("set a new password for role {role} ({why})"));
        }
    }
    if !schema_exists {
        sql.push_str(&format!("CREATE SCHEMA {q};\n"));
        changes.push(format!("created schema {role}"));
    } else if !owned {
        sql.push_str(&format!("ALTER SCHEMA {q} OWNER TO CURRENT_USER;\n"));
        changes.push(format!("took ownership of schema {role}"));
    }
    if !privileges_ok {
        sql.push_str(&format!(
            "REVOKE ALL ON SCHEMA {q} FROM PUBLIC;
             REVOKE CREATE ON SCHEMA {q} FROM {q};
             GRANT USAGE ON SCHEMA {q} TO {q};
             ALTER DEFAULT PRIVILEGES IN SCHEMA {q} GRANT SELECT, INSERT, UPDATE, DELETE ON TABLES TO {q};
             ALTER DEFAULT PRIVILEGES IN SCHEMA {q} GRANT USAGE, SELECT ON SEQUENCES TO {q};
             GRANT SELECT, INSERT, UPDATE, DELETE ON ALL TABLES IN SCHEMA {q} TO {q};
             GRANT USAGE, SELECT ON ALL SEQUENCES IN SCHEMA {q} TO {q};\n"
        ));
        // Last before COMMIT: the shared lock serialises this grant across workers, so it
        // is held as briefly as possible.
        ext_grant = Some(format!(
            "SELECT pg_advisory_xact_lock({l0}, {l1});\nGRANT USAGE ON SCHEMA {ext} TO {q};",
            ext = ident(EXT_SCHEMA),
            l0 = SHARED_LOCK.0,
            l1 = SHARED_LOCK.1,
        ));
        if has_versions {
            sql.push_str(&format!("REVOKE INSERT, UPDATE, DELETE, TRUNCATE ON {q}.schema_migrations FROM {q};\n"));
        }
        changes.push(format!("granted role {role} its privileges"));
    }
    if !member {
        sql.push_str(&format!("GRANT {q} TO {};\n", ident(&grole)));
        changes.push(format!("granted role {role} to {grole}"));
    }
    if sql.is_empty() && booked && password.is_none() {
        return Ok(Report { name: t.slug.clone(), changes });
    }
    let what = format!("tenant {}: schema and role {role}", t.slug);
    client.batch_execute("BEGIN").await.map_err(Error::query(what.clone()))?;
    let result = async {
        client.batch_execute(&sql).await.map_err(Error::query(what.clone()))?;
        if !booked {
            client
                .execute(
                    "INSERT INTO portalctl.tenant (slug, grp, schema) VALUES ($1, $2, $3)
                     ON CONFLICT (slug) DO UPDATE SET grp = excluded.grp, schema = excluded.schema",
                    &[&t.slug, &t.group, &role],
                )
                .await
                .map_err(Error::query(format!("tenant {}: recording it in portalctl.tenant", t.slug)))?;
            client
                .execute(
                    "INSERT INTO portalctl.phase_history (slug, phase) VALUES ($1, 'provisioned')
                     ON CONFLICT DO NOTHING",
                    &[&t.slug],
                )
                .await
                .map_err(Error::query(format!("tenant {}: recording its phase", t.slug)))?;
            if changes.is_empty() {
                changes.push("recorded as provisioned".into());
            }
        }
        if let Some(grant) = &ext_grant {
            client.batch_execute(grant).await.map_err(Error::query(format!("{what}: USAGE on {EXT_SCHEMA}")))?;
        }
        Ok(())
    }
    .await;
    finish(client, result, &what).await?;
    if let Some(pw) = password {
        store_after_commit(store, &key, &credential(role, pw, &conn.target()), &what).await?;
        changes.push(format!("stored credential in {}", store.describe(&key)));
    }
    Ok(Report { name: t.slug.clone(), changes })
}

/// The portal role's credential key of a group (from any of its tenants).
pub fn group_key(t: &TenantDb) -> Key {
    Key {
        group: t.group.clone(),
        namespace: t.namespace.clone(),
        cluster_context: t.cluster_context.clone(),
        owner: Owner::Portal,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn passwords_reach_sql_only_as_quoted_scram_verifiers() {
        let clause = password_clause("it's a \\ secret");
        assert!(clause.starts_with("PASSWORD 'SCRAM-SHA-256$4096:"), "{clause}");
        assert!(!clause.contains("secret"));
        assert!(clause.ends_with('\''));
    }
}
