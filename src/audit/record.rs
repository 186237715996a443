//! Each tenant's audit result in the admin bookkeeping (`portalctl.audit`: tenant, audited_at, serious, critical,
//! findings as jsonb), so that `status` can tell whether the last audit was clean.

use super::{summarize, TenantAudit, Violation};
use crate::db::{self, connect::ConnectOptions};
use std::collections::HashMap;

/// The latest audit of one tenant, as recorded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Recorded {
    /// RFC 3339, UTC, seconds.
    pub audited_at: String,
    pub serious: u32,
    pub critical: u32,
    /// The blocking findings in one line each (`2 serious on /leistungen (color-contrast)`).
    pub findings: Vec<String>,
}

/// Record every tenant's result (one row each, in one transaction). Creates the bookkeeping tables first when this
/// database has none yet.
pub async fn record(db: &ConnectOptions, audits: &[TenantAudit]) -> Result<(), db::Error> {
    let mut client = db.connect().await?;
    let exists: bool = client
        .query_one("SELECT to_regclass('portalctl.audit') IS NOT NULL", &[])
        .await
        .map_err(db::Error::query("looking for portalctl.audit"))?
        .get(0);
    if !exists {
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

/// The latest recorded audit of each of `tenants` that has one (none when the table does not exist yet).
pub async fn latest(client: &tokio_postgres::Client, tenants: &[&str]) -> Result<HashMap<String, Recorded>, db::Error> {
    let exists: bool = client
        .query_one("SELECT to_regclass('portalctl.audit') IS NOT NULL", &[])
        .await
        .map_err(db::Error::query("looking for portalctl.audit"))?
        .get(0);
    if !exists {
        return Ok(HashMap::new());
    }
    let rows = client
        .query(
            "SELECT DISTINCT ON (tenant) tenant,
                    to_char(audited_at AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS\"Z\"'),
                    serious, critical, findings::text
               FROM portalctl.audit WHERE tenant = ANY($1) ORDER BY tenant, audited_at DESC",
            &[&tenants],
        )
        .await
        .map_err(db::Error::query("reading portalctl.audit"))?;
    Ok(rows
        .iter()
        .map(|r| {
            let violations: Vec<Violation> = serde_json::from_str(r.get::<_, &str>(4)).unwrap_or_default();
            let rec = Recorded {
                audited_at: r.get(1),
                serious: r.get::<_, i32>(2).max(0) as u32,
                critical: r.get::<_, i32>(3).max(0) as u32,
                findings: summarize(&violations),
            };
            (r.get::<_, String>(0), rec)
        })
        .collect())
}
