//! Status per tenant: does the schema exist, does the role, which migration version is it
//! at against the latest, and how much content is published.

use super::migrations::LATEST;
use super::quote::ident;
use super::{Error, Result, TenantDb};
use futures::stream::{self, StreamExt};
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
    /// The stored credential of the tenant role, checked by logging in (`db status` only).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub credential: Option<super::credentials::Check>,
}

impl TenantStatus {
    fn new(t: &TenantDb, role_exists: bool, version: Option<i32>, published: Option<Published>) -> TenantStatus {
        TenantStatus {
            tenant: t.slug.clone(),
            group: t.group.clone(),
            schema: t.schema.clone(),
            schema_exists: version.is_some(),
            role_exists,
            version,
            latest: LATEST,
            current: role_exists && version == Some(LATEST),
            published,
            credential: None,
        }
    }
}

/// Counts of published content.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct Published {
    pub services: i64,
    pub facilities: i64,
    pub staff: i64,
    /// The last publish: the latest `published_at` or `updated_at` of a published service (`None`: nothing
    /// published). An accessibility audit older than this is stale (status rung `compliant`).
    #[serde(skip)]
    pub last_change: Option<time::OffsetDateTime>,
}

/// SQL for [`Published::last_change`] of the schema `q` (quoted), in microseconds since the epoch.
fn last_change_sql(q: &str) -> String {
    format!(
        "(SELECT (extract(epoch FROM max(greatest(published_at, updated_at))) * 1000000)::bigint
          FROM {q}.service WHERE published)"
    )
}

/// A timestamp read as microseconds since the epoch (`(extract(epoch FROM t) * 1000000)::bigint`; the driver has
/// no `time` support), `None` for NULL or out of range.
pub fn from_micros(us: Option<i64>) -> Option<time::OffsetDateTime> {
    us.and_then(|us| time::OffsetDateTime::from_unix_timestamp_nanos(i128::from(us) * 1000).ok())
}

/// Look at one tenant's schema and role.
pub async fn tenant_status(client: &Client, t: &TenantDb) -> Result<TenantStatus> {
    t.check()?;
    let mut one = tenants_status(client, std::slice::from_ref(t), 1).await?;
    one.pop().expect("one status per tenant")
}

/// Many tenants at once: one query finds which schemas, roles, migration tables and content tables exist, then one
/// query per existing schema reads its version and published counts, `pipeline` of them in flight on the one
/// connection. The outer error is a failure of the first query.
pub async fn tenants_status(
    client: &Client,
    tenants: &[TenantDb],
    pipeline: usize,
) -> Result<Vec<Result<TenantStatus>>> {
    let valid: Vec<&TenantDb> = tenants.iter().filter(|t| t.check().is_ok()).collect();
    let schemas: Vec<&str> = valid.iter().map(|t| t.schema.as_str()).collect();
    let rows = client
        .query(
            "SELECT s,
                    EXISTS (SELECT 1 FROM pg_namespace WHERE nspname = s),
                    to_regclass(quote_ident(s) || '.schema_migrations') IS NOT NULL,
                    to_regclass(quote_ident(s) || '.service') IS NOT NULL
                      AND to_regclass(quote_ident(s) || '.facility') IS NOT NULL
                      AND to_regclass(quote_ident(s) || '.staff') IS NOT NULL,
                    EXISTS (SELECT 1 FROM pg_roles WHERE rolname = s)
             FROM unnest($1::text[]) AS u(s)",
            &[&schemas],
        )
        .await
        .map_err(Error::query(format!("looking up the schemas and roles of {} tenants", schemas.len())))?;
    let found: std::collections::HashMap<String, (bool, bool, bool, bool)> =
        rows.iter().map(|r| (r.get(0), (r.get(1), r.get(2), r.get(3), r.get(4)))).collect();
    let queries: Vec<_> =
        tenants.iter().map(|t| status_of(client, t, found.get(&t.schema).copied().unwrap_or_default())).collect();
    let statuses = stream::iter(queries).buffered(pipeline.max(1)).collect().await;
    Ok(statuses)
}

/// One tenant's status, given what exists: (schema, migrations table, content tables, role).
async fn status_of(client: &Client, t: &TenantDb, found: (bool, bool, bool, bool)) -> Result<TenantStatus> {
    t.check()?;
    let (exists, has_migrations, has_content, role_exists) = found;
    let q = ident(&t.schema);
    let (version, published) = match (exists, has_migrations, has_content) {
        (false, _, _) => (None, None),
        (true, false, _) => (Some(0), None),
        (true, true, false) => {
            let version: i32 = client
                .query_one(&format!("SELECT coalesce(max(version), 0) FROM {q}.schema_migrations"), &[])
                .await
                .map_err(Error::query(format!("schema {}: reading its version", t.schema)))?
                .get(0);
            // Migrated, yet a content table is missing: counting fails and the error names it.
            let published = if version >= 1 { Some(count_published(client, t).await?) } else { None };
            (Some(version), published)
        }
        (true, true, true) => {
            let row = client
                .query_one(
                    &format!(
                        "SELECT (SELECT coalesce(max(version), 0) FROM {q}.schema_migrations),
                                (SELECT count(*) FROM {q}.service WHERE published),
                                (SELECT count(*) FROM {q}.facility WHERE published),
                                (SELECT count(*) FROM {q}.staff WHERE published),
                                {last}",
                        last = last_change_sql(&q)
                    ),
                    &[],
                )
                .await
                .map_err(Error::query(format!("tenant {}: reading version and published content", t.slug)))?;
            let version: i32 = row.get(0);
            let published = (version >= 1).then(|| Published {
                services: row.get(1),
                facilities: row.get(2),
                staff: row.get(3),
                last_change: from_micros(row.get(4)),
            });
            (Some(version), published)
        }
    };
    Ok(TenantStatus::new(t, role_exists, version, published))
}

async fn count_published(client: &Client, t: &TenantDb) -> Result<Published> {
    let q = ident(&t.schema);
    let row = client
        .query_one(
            &format!(
                "SELECT (SELECT count(*) FROM {q}.service WHERE published),
                        (SELECT count(*) FROM {q}.facility WHERE published),
                        (SELECT count(*) FROM {q}.staff WHERE published),
                        {last}",
                last = last_change_sql(&q)
            ),
            &[],
        )
        .await
        .map_err(Error::query(format!("tenant {}: counting published content", t.slug)))?;
    Ok(Published {
        services: row.get(0),
        facilities: row.get(1),
        staff: row.get(2),
        last_change: from_micros(row.get(3)),
    })
}
