//! Each tenant's audit result in the admin bookkeeping (`portalctl.audit`: tenant, audited_at, serious, critical,
//! findings as jsonb), so that `status` can tell whether the last audit was clean. Only the latest runs of each tenant
//! are kept ([`DEFAULT_KEEP`], `audit --keep N`): older rows are deleted in the transaction that inserts the new ones.

use super::{summarize, TenantAudit, Violation};
use crate::db::{self, connect::ConnectOptions};
use crate::status::AuditFact;
use serde::{Deserialize, Serialize};
use std::collections::HashMap;

/// How many audit runs of each tenant `portalctl.audit` keeps unless `--keep` says otherwise.
pub const DEFAULT_KEEP: u32 = 10;

/// The `findings` column of one run: the violations and the checks that need review (each as [`Violation`]).
#[derive(Debug, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Findings {
    pub violations: Vec<Violation>,
    #[serde(default)]
    pub needs_review: Vec<Violation>,
}

impl Findings {
    /// Read a `findings` value: the object of today, or the plain list of violations that older runs recorded.
    pub fn parse(text: &str) -> Findings {
        #[derive(Deserialize)]
        #[serde(untagged)]
        enum Stored {
            Violations(Vec<Violation>),
            Current(Findings),
        }
        match serde_json::from_str(text) {
            Ok(Stored::Current(f)) => f,
            Ok(Stored::Violations(violations)) => Findings { violations, needs_review: Vec::new() },
            Err(_) => Findings::default(),
        }
    }
}

/// Whether this database has the audit table yet.
async fn table_exists(client: &tokio_postgres::Client) -> Result<bool, db::Error> {
    Ok(client
        .query_one("SELECT to_regclass('portalctl.audit') IS NOT NULL", &[])
        .await
        .map_err(db::Error::query("looking for portalctl.audit"))?
        .get(0))
}

/// Record every tenant's result (one row each, in one transaction) and delete each of these tenants' rows but the
/// latest `keep` (at least one: the new one) in the same transaction. Creates the bookkeeping tables first when this
/// database has none yet.
pub async fn record(db: &ConnectOptions, audits: &[TenantAudit], keep: u32) -> Result<(), db::Error> {
    let mut client = db.connect().await?;
    if !table_exists(&client).await? {
        db::provision::ensure_shared(&client).await?;
    }
    let tx = client.transaction().await.map_err(db::Error::query("recording the audit"))?;
    for a in audits {
        let findings = Findings { violations: a.violations.clone(), needs_review: a.needs_review.clone() };
        let findings = serde_json::to_string(&findings).expect("findings serialise");
        tx.execute(
            "INSERT INTO portalctl.audit (tenant, serious, critical, findings) VALUES ($1, $2, $3, $4::text::jsonb)",
            &[&a.tenant, &(a.serious as i32), &(a.critical as i32), &findings],
        )
        .await
        .map_err(db::Error::query(format!("recording the audit of {} in portalctl.audit", a.tenant)))?;
    }
    let tenants: Vec<&str> = audits.iter().map(|a| a.tenant.as_str()).collect();
    tx.execute(
        "DELETE FROM portalctl.audit a
          USING (SELECT tenant, audited_at,
                        row_number() OVER (PARTITION BY tenant ORDER BY audited_at DESC) AS n
                   FROM portalctl.audit WHERE tenant = ANY($1)) old
          WHERE a.tenant = old.tenant AND a.audited_at = old.audited_at AND old.n > $2",
        &[&tenants, &i64::from(keep.max(1))],
    )
    .await
    .map_err(db::Error::query("deleting old runs from portalctl.audit"))?;
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
            let audited_at = db::status::from_micros(r.get(1))?;
            let findings = Findings::parse(r.get::<_, &str>(4));
            let fact = AuditFact {
                audited_at,
                serious: r.get::<_, i32>(2).max(0) as u32,
                critical: r.get::<_, i32>(3).max(0) as u32,
                findings: summarize(&findings.violations),
                needs_review: u32::try_from(findings.needs_review.len()).unwrap_or(u32::MAX),
            };
            Some((r.get::<_, String>(0), fact))
        })
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn findings_of_older_runs_are_still_read() {
        let v = r##"{"impact":"critical","rule":"image-alt","help":"Images must have alternative text","page":"home","path":"/","selectors":["#seeded-image"]}"##;
        let old = Findings::parse(&format!("[{v}]"));
        assert_eq!((old.violations.len(), old.needs_review.len()), (1, 0));
        let new = Findings::parse(&format!(r#"{{"violations":[{v}],"needsReview":[{v}]}}"#));
        assert_eq!((new.violations.len(), new.needs_review.len()), (1, 1));
        assert_eq!(new.violations[0].rule, "image-alt");
        assert!(Findings::parse("null").violations.is_empty());
    }
}
