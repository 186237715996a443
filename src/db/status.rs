//! Status per tenant: does the schema exist, does the role, which migration version is it
//! at against the latest, and how much content is published.

use super::migrations::{current_version, LATEST};
use super::quote::ident;
use super::{Error, Result, TenantDb};
use serde::Serialize;
use tokio_postgres::Client;

/// One tenant's database state.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct TenantStatus {
    pub tenant: String,
    pub group: String,
    pub schema: String,
    pub schema_exists: bool,
    pub role_exists: bool,
    /// Applied migration version; `None` without a schema.
    pub version: Option<i32>,
    pub latest: i32,
    /// Schema and role exist and the schema is at the latest version.
    pub current: bool,
    /// Published rows; `None` until the content tables exist.
    pub published: Option<Published>,
}

/// Counts of published content.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct Published {
    pub services: i64,
    pub facilities: i64,
    pub staff: i64,
}

/// Look at one tenant's schema and role.
pub async fn tenant_status(client: &Client, t: &TenantDb) -> Result<TenantStatus> {
    t.check()?;
    let schema = &t.schema;
    let role_exists: bool = client
        .query_one("SELECT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = $1::text)", &[schema])
        .await
        .map_err(Error::query(format!("tenant {}: looking up role {schema}", t.slug)))?
        .get(0);
    let version = current_version(client, schema).await?;
    let published = match version {
        Some(v) if v >= 1 => {
            let q = ident(schema);
            let row = client
                .query_one(
                    &format!(
                        "SELECT (SELECT count(*) FROM {q}.service WHERE published),
                                (SELECT count(*) FROM {q}.facility WHERE published),
                                (SELECT count(*) FROM {q}.staff WHERE published)"
                    ),
                    &[],
                )
                .await
                .map_err(Error::query(format!("tenant {}: counting published content", t.slug)))?;
            Some(Published { services: row.get(0), facilities: row.get(1), staff: row.get(2) })
        }
        _ => None,
    };
    Ok(TenantStatus {
        tenant: t.slug.clone(),
        group: t.group.clone(),
        schema: schema.clone(),
        schema_exists: version.is_some(),
        role_exists,
        version,
        latest: LATEST,
        current: role_exists && version == Some(LATEST),
        published,
    })
}
