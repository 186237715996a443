//! Writing content into a tenant's schema (the IO edge of [`crate::content`]): import as an
//! idempotent upsert, publish/unpublish, and adoption of a service from another tenant.
//! Every function runs inside the caller's transaction, so a failure leaves nothing half-done.

use super::{Bundle, Error, Known, Result};
use crate::db::quote::ident;
use tokio_postgres::Transaction;

/// Scope the transaction to a tenant: `SET LOCAL search_path = <schema>, portalctl_ext`,
/// and with `role` also `SET LOCAL ROLE <role>` so that PostgreSQL enforces the tenant's privileges.
pub async fn enter_tenant(tx: &Transaction<'_>, schema: &str, role: Option<&str>) -> Result<()> {
    let mut sql = String::new();
    if let Some(role) = role {
        sql.push_str(&format!("SET LOCAL ROLE {};", ident(role)));
    }
    sql.push_str(&format!("SET LOCAL search_path = {}, portalctl_ext", ident(schema)));
    tx.batch_execute(&sql).await?;
    Ok(())
}

/// Ids of categories, Lebenslagen and facilities already in the schema.
pub async fn known(tx: &Transaction<'_>) -> Result<Known> {
    let ids = |sql: &'static str| async move {
        Ok::<_, Error>(tx.query(sql, &[]).await?.iter().map(|r| r.get::<_, String>(0)).collect())
    };
    Ok(Known {
        categories: ids("SELECT id FROM category").await?,
        lebenslagen: ids("SELECT id FROM lebenslage").await?,
        facilities: ids("SELECT id FROM facility").await?,
    })
}

/// Validate against the schema's existing ids and upsert everything. Running it twice
/// changes nothing the second time. `published` left out of a record keeps the stored state
/// (new records start unpublished).
pub async fn import(tx: &Transaction<'_>, b: &Bundle) -> Result<()> {
    let known = known(tx).await?;
    super::validate(b, &known)?;
    for (i, c) in b.categories.iter().enumerate() {
        let pos = c.position.unwrap_or(i as i32);
        tx.execute(
            "INSERT INTO category (id, title, position) VALUES ($1, $2, $3)
             ON CONFLICT (id) DO UPDATE SET title = EXCLUDED.title, position = EXCLUDED.position",
            &[&c.id, &c.title, &pos],
        )
        .await?;
    }
    for (i, l) in b.lebenslagen.iter().enumerate() {
        let pos = l.position.unwrap_or(i as i32);
        tx.execute(
            "INSERT INTO lebenslage (id, title, description, icon, position) VALUES ($1, $2, $3, $4, $5)
             ON CONFLICT (id) DO UPDATE SET title = EXCLUDED.title, description = EXCLUDED.description,
               icon = EXCLUDED.icon, position = EXCLUDED.position",
            &[&l.id, &l.title, &l.description, &l.icon, &pos],
        )
        .await?;
    }
    for f in &b.facilities {
        tx.execute(
            "INSERT INTO facility (id, name, address, opening_hours, phone, email, url, published, placeholder)
             VALUES ($1, $2, $3, $4, $5, $6, $7, coalesce($8, false), $9)
             ON CONFLICT (id) DO UPDATE SET name = EXCLUDED.name, address = EXCLUDED.address,
               opening_hours = EXCLUDED.opening_hours, phone = EXCLUDED.phone, email = EXCLUDED.email,
               url = EXCLUDED.url, published = coalesce($8, facility.published), placeholder = EXCLUDED.placeholder",
            &[
                &f.id,
                &f.name,
                &f.address,
                &f.opening_hours,
                &f.phone,
                &f.email,
                &f.url,
                &f.published,
                &f.placeholder.unwrap_or(false),
            ],
        )
        .await?;
    }
    for s in &b.staff {
        tx.execute(
            "INSERT INTO staff (id, name, position_title, topics, facility_id, phone, email, published, placeholder)
             VALUES ($1, $2, $3, $4, $5, $6, $7, coalesce($8, false), $9)
             ON CONFLICT (id) DO UPDATE SET name = EXCLUDED.name, position_title = EXCLUDED.position_title,
               topics = EXCLUDED.topics, facility_id = EXCLUDED.facility_id, phone = EXCLUDED.phone,
               email = EXCLUDED.email, published = coalesce($8, staff.published), placeholder = EXCLUDED.placeholder",
            &[
                &s.id,
                &s.name,
                &s.position_title,
                &s.topics,
                &s.facility,
                &s.phone,
                &s.email,
                &s.published,
                &s.placeholder.unwrap_or(false),
            ],
        )
        .await?;
    }
    for s in &b.services {
        let trust = s.trust_level.clone().unwrap_or_else(|| "basisregistrierung".into());
        tx.execute(
            "INSERT INTO service (id, title, summary, description, category_id, office, facility_id, costs,
               documents, online_url, external_portal, trust_level, published, published_at, competence, leika_key)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, coalesce($13, false),
               CASE WHEN $13 THEN now() END, $14, $15)
             ON CONFLICT (id) DO UPDATE SET title = EXCLUDED.title, summary = EXCLUDED.summary,
               description = EXCLUDED.description, category_id = EXCLUDED.category_id, office = EXCLUDED.office,
               facility_id = EXCLUDED.facility_id, costs = EXCLUDED.costs, documents = EXCLUDED.documents,
               online_url = EXCLUDED.online_url, external_portal = EXCLUDED.external_portal,
               trust_level = EXCLUDED.trust_level, competence = EXCLUDED.competence, leika_key = EXCLUDED.leika_key,
               published = coalesce($13, service.published),
               published_at = CASE WHEN $13 AND NOT service.published THEN now() ELSE service.published_at END,
               updated_at = CASE WHEN (service.title, service.summary, service.description, service.costs,
                   service.office, service.documents) IS DISTINCT FROM
                   (EXCLUDED.title, EXCLUDED.summary, EXCLUDED.description, EXCLUDED.costs, EXCLUDED.office,
                   EXCLUDED.documents) THEN now() ELSE service.updated_at END",
            &[
                &s.id,
                &s.title,
                &s.summary,
                &s.description,
                &s.category,
                &s.office,
                &s.facility,
                &s.costs,
                &s.documents,
                &s.online_url,
                &s.external_portal,
                &trust,
                &s.published,
                &s.competence.map(|c| c.as_str()),
                &s.leika_key,
            ],
        )
        .await?;
        tx.execute("DELETE FROM service_lebenslage WHERE service_id = $1", &[&s.id]).await?;
        for l in &s.lebenslagen {
            tx.execute(
                "INSERT INTO service_lebenslage (service_id, lebenslage_id) VALUES ($1, $2) ON CONFLICT DO NOTHING",
                &[&s.id, l],
            )
            .await?;
        }
    }
    Ok(())
}

/// What to publish or unpublish.
#[derive(Debug, Clone)]
pub enum Target {
    /// These services (each must exist).
    Services(Vec<String>),
    /// Every service, facility and staff entry.
    All,
}

/// Set the published flag; returns how many rows changed state.
pub async fn set_published(tx: &Transaction<'_>, target: &Target, published: bool) -> Result<u64> {
    let set_service = "UPDATE service SET published = $1,
        published_at = CASE WHEN $1 THEN coalesce(published_at, now()) ELSE NULL END
        WHERE published IS DISTINCT FROM $1";
    match target {
        Target::Services(ids) => {
            let mut n = 0;
            for id in ids {
                let exists = tx.query_opt("SELECT 1 FROM service WHERE id = $1", &[id]).await?;
                if exists.is_none() {
                    return Err(Error::NotFound(format!("no service {id:?}")));
                }
                n += tx.execute(&format!("{set_service} AND id = $2"), &[&published, id]).await?;
            }
            Ok(n)
        }
        Target::All => {
            let mut n = tx.execute(set_service, &[&published]).await?;
            n += tx.execute("UPDATE facility SET published = $1 WHERE published <> $1", &[&published]).await?;
            n += tx.execute("UPDATE staff SET published = $1 WHERE published <> $1", &[&published]).await?;
            Ok(n)
        }
    }
}

/// Published facilities and staff entries that still hold placeholders, as `facility ID` / `staff ID`.
pub async fn published_placeholders(tx: &Transaction<'_>) -> Result<Vec<String>> {
    let rows = tx
        .query(
            "SELECT 'facility ' || id FROM facility WHERE published AND placeholder
             UNION ALL SELECT 'staff ' || id FROM staff WHERE published AND placeholder ORDER BY 1",
            &[],
        )
        .await?;
    Ok(rows.iter().map(|r| r.get(0)).collect())
}

/// A service description as read from the source tenant for adoption.
#[derive(Debug, Clone)]
pub struct Adoptable {
    pub service: super::Service,
    /// Category title, so that the target can get the category if it lacks it.
    pub category_title: Option<String>,
}

/// Read a service from the (source) tenant's schema.
pub async fn read_service(tx: &Transaction<'_>, id: &str) -> Result<Adoptable> {
    let row = tx
        .query_opt(
            "SELECT s.id, s.title, s.summary, s.description, s.category_id, s.office, s.costs, s.documents,
                    s.online_url, s.external_portal, s.trust_level, c.title, s.competence, s.leika_key
             FROM service s LEFT JOIN category c ON c.id = s.category_id WHERE s.id = $1",
            &[&id],
        )
        .await?
        .ok_or_else(|| Error::NotFound(format!("no service {id:?}")))?;
    Ok(Adoptable {
        service: super::Service {
            id: row.get(0),
            title: row.get(1),
            summary: row.get(2),
            description: row.get(3),
            category: row.get(4),
            office: row.get(5),
            costs: row.get(6),
            documents: row.get(7),
            online_url: row.get(8),
            external_portal: row.get(9),
            trust_level: Some(row.get(10)),
            competence: row.get::<_, Option<&str>>(12).and_then(super::Competence::parse),
            leika_key: row.get(13),
            ..Default::default()
        },
        category_title: row.get(11),
    })
}

/// Write an adopted service into the target tenant's schema: the description copied, the
/// origin recorded, unpublished (the target reviews it first). Local fields the target set
/// before (facility, Lebenslagen) are kept when the service already exists.
pub async fn write_adopted(tx: &Transaction<'_>, a: &Adoptable, origin_tenant: &str) -> Result<()> {
    let s = &a.service;
    if let (Some(cat), Some(title)) = (&s.category, &a.category_title) {
        tx.execute("INSERT INTO category (id, title) VALUES ($1, $2) ON CONFLICT (id) DO NOTHING", &[cat, title])
            .await?;
    }
    tx.execute(
        "INSERT INTO service (id, title, summary, description, category_id, office, costs, documents, online_url,
           external_portal, trust_level, origin_tenant, origin_service, published, competence, leika_key)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $1, false, $13, $14)
         ON CONFLICT (id) DO UPDATE SET title = EXCLUDED.title, summary = EXCLUDED.summary,
           description = EXCLUDED.description, category_id = EXCLUDED.category_id, office = EXCLUDED.office,
           costs = EXCLUDED.costs, documents = EXCLUDED.documents, online_url = EXCLUDED.online_url,
           external_portal = EXCLUDED.external_portal, trust_level = EXCLUDED.trust_level,
           origin_tenant = EXCLUDED.origin_tenant, origin_service = EXCLUDED.origin_service,
           competence = EXCLUDED.competence, leika_key = EXCLUDED.leika_key, published = false, published_at = NULL, updated_at = now()",
        &[
            &s.id,
            &s.title,
            &s.summary,
            &s.description,
            &s.category,
            &s.office,
            &s.costs,
            &s.documents,
            &s.online_url,
            &s.external_portal,
            &s.trust_level,
            &origin_tenant,
            &s.competence.map(|c| c.as_str()),
            &s.leika_key,
        ],
    )
    .await?;
    Ok(())
}
