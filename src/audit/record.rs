//! Each tenant's audit result in the admin bookkeeping (`portalctl.audit`: tenant, audited_at, serious, critical,
//! findings as jsonb), so that `status` can tell whether the last audit was clean.

use super::{summarize, TenantAudit, Violation};
use crate::db::{self, connect::ConnectOptions};
use crate::status::AuditFact;
use std::collections::HashMap;

/// Whether this database has the audit table yet.
async fn table_exists(client: &tokio_postgres::Client) -> Result<bool, db::Error> {
    Ok(client
        .query_one("SELECT to_regclass('portalctl.audit') IS NOT NULL", &[])
        .await
        .map_err(db::Error::query("looking for portalctl.audit"))?
        .get(0))
}

/// Record every tenant's result (one row each, in one transaction). Creates the bookkeeping tables first when this
/// database has none yet.
pub async fn record(db: &ConnectOptions, audits: &[TenantAudit]) -> Result<(), db::Error> {
    let mut client = db.connect().await?;
    if !table_exists(&client).await? {
        db::provision::ensure_shared(&client).await?;
    }
    let tx = client.transaction().await.map_err(db::Error::query("recording the audit"))?;
    for a in audits {
        let findings = serde_json::to_string(&a.violations).expect("violations serialise");
        tx.execute(
            "INSERT INTO portalctl.audit (tenant, serious, critical, findings) VALUES ($1, $2, $3, $4::text::jsonb)",
            &[&a.tenant, &(a.serious as i32), &(a.critical as i32), &findings],
        )
        .await
        .map_err(db::Error::query(format!("recording the audit of {} in portalctl.audit", a.tenant)))?;
    }
    tx.commit().await.map_err(db::Error::query("recording the audit"))
}

/// The latest recorded audit of each of `tenants` that has one (none when the table does not exist yet): the input of
/// the `compliant` rung of `status`.
pub async fn latest(
    client: &tokio_postgres::Client,
    tenants: &[&str],
) -> Result<HashMap<String, AuditFact>, db::Error> {
    if !table_exists(client).await? {
        return Ok(HashMap::new());
    }
    let rows = client
        .query(
            "SELECT DISTINCT ON (tenant) tenant, (extract(epoch FROM audited_at) * 1000000)::int8,
                    serious, critical, findings::text
               FROM portalctl.audit WHERE tenant = ANY($1) ORDER BY tenant, audited_at DESC",
            &[&tenants],
        )
        .await
        .map_err(db::Error::query("reading portalctl.audit"))?;
    Ok(rows
        .iter()
        .filter_map(|r| {
            let micros: i64 = r.get(1);
            let audited_at = time::OffsetDateTime::from_unix_timestamp_nanos(i128::from(micros) * 1000).ok()?;
            let violations: Vec<Violation> = serde_json::from_str(r.get::<_, &str>(4)).unwrap_or_default();
            let fact = AuditFact {
                audited_at,
                serious: r.get::<_, i32>(2).max(0) as u32,
                critical: r.get::<_, i32>(3).max(0) as u32,
                findings: summarize(&violations),
            };
            Some((r.get::<_, String>(0), fact))
        })
        .collect())
}
