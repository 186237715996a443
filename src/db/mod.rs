//! The tenants' database: one PostgreSQL schema per tenant, reached through its own
//! least-privilege role — provisioning, migrations, status and offboarding.
//!
//! # Model
//! - One database holds all tenants. Each tenant has a schema named `tenant.schema`
//!   (e.g. `t_espelkamp`) and a LOGIN role of the same name. The schema and its tables
//!   belong to the administrating role that runs `portalctl db`; the tenant role gets
//!   USAGE on its schema, SELECT/INSERT/UPDATE/DELETE on its tables and USAGE/SELECT on
//!   its sequences (through `ALTER DEFAULT PRIVILEGES`), USAGE on the shared schema
//!   `portalctl_ext` (extension `pg_trgm`), and nothing else: no CREATE anywhere, no access
//!   to other tenants' schemas, `CREATE` on `public` revoked from PUBLIC.
//! - Each rollout group has a LOGIN role `portal_<group>` (NOINHERIT) that is a member of
//!   every tenant role of the group; the portal server connects as this role and switches
//!   to a tenant with `SET LOCAL ROLE` per transaction.
//! - The admin-only schema `portalctl` keeps the bookkeeping: `portalctl.tenant` and
//!   `portalctl.phase_history`.
//! - Each group's login state (Servicekonto sessions and logins in progress) lives in the
//!   schema `portal_<group>` ([`login_schema`]), owned by the administrating role; only the
//!   group role may read and write its tables, no tenant role can.
//! - Migrations (`src/db/migrations/NNNN_name.sql`) are embedded in the binary and applied
//!   per tenant schema, each in its own transaction under a per-tenant advisory lock; the
//!   applied versions are recorded in `<schema>.schema_migrations`.
//! - Passwords are generated here, stored as SCRAM verifiers in PostgreSQL, handed to the
//!   credential store (local JSON files with mode 0600, or Kubernetes Secrets) and never
//!   printed or logged.
//!
//! **Architecture invariant:** every schema or role name that reaches SQL comes from the
//! validated tenant model (or is validated again here) *and* is quoted with
//! [`quote::ident`]; literals are quoted with [`quote::literal`]. Nothing is interpolated raw.
//!
//! See `docs/database.md` for the operator's view.

pub mod connect;
pub mod credentials;
pub mod migrations;
pub mod offboard;
pub mod provision;
pub mod quote;
pub mod status;
mod workers;

pub use connect::{ConnectOptions, SslMode};
pub use workers::for_each;

use crate::names;

/// Everything that can go wrong talking to the database or the credential store.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The server could not be reached or refused the login.
    #[error("cannot connect to PostgreSQL at {host}:{port}: {reason}")]
    Connect { host: String, port: u16, reason: String },
    /// The connection settings themselves are wrong (URL, TLS options, CA file).
    #[error("database connection settings: {0}")]
    Config(String),
    /// A statement failed; `what` says what was being done for whom.
    #[error("{what}: {reason}", reason = pg_reason(source))]
    Query {
        what: String,
        #[source]
        source: tokio_postgres::Error,
    },
    /// A migration failed; the schema stays at the version before it.
    #[error("schema {schema}: migration {version:04}_{name} failed, schema left at version {left_at}: {reason}", reason = pg_reason(source))]
    Migration {
        schema: String,
        version: i32,
        name: String,
        left_at: i32,
        #[source]
        source: tokio_postgres::Error,
    },
    /// A name that would reach SQL did not pass validation.
    #[error("{0}")]
    InvalidName(String),
    /// The state found in the database does not allow the operation.
    #[error("{0}")]
    Refused(String),
    /// Reading or writing a local file.
    #[error("{path}: {source}")]
    Io {
        path: String,
        #[source]
        source: std::io::Error,
    },
    /// Talking to the Kubernetes API for Secrets.
    #[error("Kubernetes: {what}: {source}")]
    Kube {
        what: String,
        #[source]
        source: Box<dyn std::error::Error + Send + Sync>,
    },
    /// pg_dump missing or failing.
    #[error("backup: {0}")]
    Backup(String),
}

pub type Result<T, E = Error> = std::result::Result<T, E>;

/// A query failed because the connection is gone: closed, broken (an IO error), or the
/// server refused to go on (SQLSTATE class 08, or 57P01–57P03: shutdown, crash, starting up).
fn connection_lost(e: &tokio_postgres::Error) -> bool {
    if e.is_closed() {
        return true;
    }
    if let Some(db) = e.as_db_error() {
        let code = db.code().code();
        return code.starts_with("08") || matches!(code, "57P01" | "57P02" | "57P03");
    }
    let mut source = std::error::Error::source(e);
    while let Some(cause) = source {
        if cause.downcast_ref::<std::io::Error>().is_some() {
            return true;
        }
        source = cause.source();
    }
    false
}

impl Error {
    /// True when the database could not be reached, or the connection was lost or the server
    /// shut down while working (exit code 3): the failure says nothing about the tenant.
    pub fn is_unavailable(&self) -> bool {
        match self {
            Error::Connect { .. } => true,
            Error::Query { source, .. } | Error::Migration { source, .. } => connection_lost(source),
            _ => false,
        }
    }

    pub(crate) fn query(what: impl Into<String>) -> impl FnOnce(tokio_postgres::Error) -> Error {
        let what = what.into();
        move |source| Error::Query { what, source }
    }

    pub(crate) fn io(path: &std::path::Path) -> impl FnOnce(std::io::Error) -> Error + '_ {
        move |source| Error::Io { path: path.display().to_string(), source }
    }

    /// The SQLSTATE of a failed statement, if the server reported one.
    pub fn sqlstate(&self) -> Option<&str> {
        match self {
            Error::Query { source, .. } | Error::Migration { source, .. } => source.code().map(|c| c.code()),
            _ => None,
        }
    }
}

/// The server's own words for a failed statement (message, detail, SQLSTATE), or the
/// client-side cause.
pub fn pg_reason(err: &tokio_postgres::Error) -> String {
    if let Some(db) = err.as_db_error() {
        let mut s = format!("{} (SQLSTATE {})", db.message(), db.code().code());
        if let Some(detail) = db.detail() {
            s.push_str(&format!("; {detail}"));
        }
        if db.code() == &tokio_postgres::error::SqlState::INSUFFICIENT_PRIVILEGE {
            s.push_str(
                "; this needs an administrating role (superuser, or CREATEROLE with CREATE on the database): pass \
                 its URL with --database-url",
            );
        }
        return s;
    }
    let mut s = err.to_string();
    let mut source = std::error::Error::source(err);
    while let Some(cause) = source {
        s.push_str(&format!(": {cause}"));
        source = cause.source();
    }
    s
}

/// What the database part needs to know about one tenant: taken from the validated tenant
/// model and checked again before use.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TenantDb {
    pub slug: String,
    pub group: String,
    /// Schema name, also the tenant role's name.
    pub schema: String,
    /// Kubernetes namespace of the group (for Secrets).
    pub namespace: String,
    /// kubeconfig context of the group, if it names one.
    pub cluster_context: Option<String>,
}

impl TenantDb {
    pub fn from_tenant(t: &crate::tenant::Tenant) -> Result<TenantDb> {
        let d = TenantDb {
            slug: t.slug.clone(),
            group: t.group.clone(),
            schema: t.schema.clone(),
            namespace: t.namespace.clone(),
            cluster_context: t.cluster_context.clone(),
        };
        d.check()?;
        Ok(d)
    }

    /// Validate every name that will reach SQL or Kubernetes.
    pub fn check(&self) -> Result<()> {
        names::check_slug(&self.slug).map_err(|e| Error::InvalidName(format!("tenant {}: {e}", self.slug)))?;
        names::check_slug(&self.group).map_err(|e| Error::InvalidName(format!("tenant {}: group {e}", self.slug)))?;
        check_tenant_schema(&self.schema).map_err(|e| Error::InvalidName(format!("tenant {}: {e}", self.slug)))?;
        group_role(&self.group)?;
        Ok(())
    }

    /// The tenant's role name: the same as its schema.
    pub fn role(&self) -> &str {
        &self.schema
    }
}

/// Name of the shared extension schema.
pub const EXT_SCHEMA: &str = "portalctl_ext";
/// Name of the admin-only bookkeeping schema.
pub const ADMIN_SCHEMA: &str = "portalctl";

/// A tenant schema name: a safe PostgreSQL identifier that does not collide with the
/// shared schemas or the group roles.
pub fn check_tenant_schema(schema: &str) -> Result<()> {
    names::check_schema_name(schema).map_err(|e| Error::InvalidName(e.to_string()))?;
    if schema == EXT_SCHEMA || schema == ADMIN_SCHEMA || schema.starts_with("portal_") {
        return Err(Error::InvalidName(format!(
            "schema name {schema:?} is reserved for portalctl's shared schemas and group roles"
        )));
    }
    Ok(())
}

/// The group's login role: `portal_<group with '-' replaced by '_'>`.
pub fn group_role(group: &str) -> Result<String> {
    names::check_slug(group).map_err(|e| Error::InvalidName(format!("group {e}")))?;
    let role = format!("portal_{}", group.replace('-', "_"));
    if role.len() > 63 {
        return Err(Error::InvalidName(format!(
            "group {group:?}: its role name {role:?} is longer than PostgreSQL's 63 bytes; use a shorter group name"
        )));
    }
    Ok(role)
}

/// The schema of the group's login state (citizen sessions, logins in progress): named like
/// the group role `portal_<group>`, a name no tenant schema may take; owned by the
/// administrating role, usable by that group role only (see `servicekonto::session`).
pub fn login_schema(group: &str) -> Result<String> {
    group_role(group)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn group_roles_replace_dashes() {
        assert_eq!(group_role("emscher-lippe").unwrap(), "portal_emscher_lippe");
        assert!(group_role("Bad Group").is_err());
        assert!(group_role(&"a".repeat(60)).is_err());
    }

    #[test]
    fn tenant_schemas_cannot_take_shared_names() {
        assert!(check_tenant_schema("t_espelkamp").is_ok());
        for bad in ["portalctl", "portalctl_ext", "portal_krz", "public", "pg_catalog", "t\"x", "T_x", ""] {
            assert!(check_tenant_schema(bad).is_err(), "{bad:?} accepted");
        }
    }
}
