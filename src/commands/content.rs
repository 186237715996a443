//! `portalctl content`: import, publish/unpublish and adopt portal content, and list the
//! starter catalogue. Every write runs in one transaction in the tenant's schema.

use super::Context;
use crate::cli::{ContentAdoptArgs, ContentCommand, ContentImportArgs, ContentPublishArgs};
use crate::content::{self, store, Bundle, Kind};
use crate::exit_codes::Exit;
use crate::output::OutputFormat;
use crate::tenant::Tenant;
use anyhow::{bail, Context as _};

pub fn run(ctx: &Context, cmd: ContentCommand) -> anyhow::Result<Exit> {
    match cmd {
        ContentCommand::Import(a) => import(ctx, &a),
        ContentCommand::Publish(a) => publish(ctx, &a, true),
        ContentCommand::Unpublish(a) => publish(ctx, &a, false),
        ContentCommand::Adopt(a) => adopt(ctx, &a),
        ContentCommand::Catalogue => catalogue(ctx),
    }
}

fn tenant(ctx: &Context, slug: &str) -> anyhow::Result<Tenant> {
    let catalog = ctx.catalog()?;
    match catalog.tenant(slug) {
        Some(t) => Ok(t.clone()),
        None => bail!("no tenant {slug:?} in {}", ctx.tenants_dir.display()),
    }
}

fn runtime() -> anyhow::Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_current_thread().enable_all().build().context("cannot start the async runtime")
}

async fn connect(url: &str) -> anyhow::Result<tokio_postgres::Client> {
    let (client, conn) = tokio_postgres::connect(url, tokio_postgres::NoTls)
        .await
        .context("cannot connect to the database given by --database-url")?;
    tokio::spawn(async move {
        let _ = conn.await;
    });
    Ok(client)
}

/// The content to import: the starter catalogue fitted to the tenant's authority (with what it
/// left out), or the file as it is.
fn read_bundle(a: &ContentImportArgs, t: &Tenant) -> anyhow::Result<(Bundle, Option<content::Selected>)> {
    if a.starter {
        let authority = content::Authority::of(t);
        let selected = content::select_for(&content::starter(), authority, &own_tasks(a, t))
            .map_err(|e| anyhow::anyhow!("tenant {}: {e}", t.slug))?;
        return Ok((selected.bundle.clone(), Some(selected)));
    }
    let path = a.file.as_ref().context("give a FILE or --starter")?;
    let shown = path.display().to_string();
    let text = std::fs::read_to_string(path).with_context(|| format!("cannot read {shown}"))?;
    let ext = path.extension().map(|e| e.to_string_lossy().to_lowercase()).unwrap_or_default();
    let bundle = if ext == "csv" {
        let stem = path.file_stem().map(|s| s.to_string_lossy().to_lowercase()).unwrap_or_default();
        let kind =
            a.kind.or_else(|| Kind::from_stem(&stem)).ok_or(content::Error::UnknownKind { file: shown.clone() })?;
        content::parse_csv(&shown, &text, kind)?
    } else {
        content::parse_yaml(&shown, &text)?
    };
    Ok((bundle, None))
}

/// The Kreis tasks the tenant performs itself: its `spec.ownTasks` and those given by `--own-task`.
fn own_tasks(a: &ContentImportArgs, t: &Tenant) -> Vec<String> {
    let mut tasks = t.own_tasks.clone();
    for task in &a.own_tasks {
        if !tasks.contains(task) {
            tasks.push(task.clone());
        }
    }
    tasks
}

/// The warnings of a bundle, one line per kind: each record's where there are few, else the
/// count and the ids.
fn report_warnings(ctx: &Context, slug: &str, b: &Bundle) {
    let mut by_message: std::collections::BTreeMap<(String, String), Vec<content::Finding>> = Default::default();
    for w in content::warnings(b) {
        by_message.entry((w.field.clone(), w.message.clone())).or_default().push(w);
    }
    for ((_, message), list) in by_message {
        if list.len() <= 3 {
            for w in list {
                ctx.warn(format!("tenant {slug}: {w}"));
            }
        } else {
            let records: Vec<&str> = list.iter().map(|w| w.record.as_str()).collect();
            ctx.warn(format!("tenant {slug}: {message} ({} entries): {}", list.len(), records.join(", ")));
        }
    }
}

fn import(ctx: &Context, a: &ContentImportArgs) -> anyhow::Result<Exit> {
    let t = tenant(ctx, &a.tenant)?;
    let (bundle, selected) = read_bundle(a, &t)?;
    if bundle.is_empty() {
        bail!("{}: no content in the file", bundle.file);
    }
    runtime()?.block_on(async {
        let mut client = connect(&a.db.database_url).await?;
        let tx = client.transaction().await?;
        store::enter_tenant(&tx, &t.schema, None).await?;
        store::import(&tx, &bundle).await.map_err(|e| anyhow::anyhow!("tenant {}: {e}", t.slug))?;
        if a.dry_run {
            tx.rollback().await?;
        } else {
            tx.commit().await?;
        }
        anyhow::Ok(())
    })?;
    if ctx.output != OutputFormat::Table {
        let counts: serde_json::Map<String, serde_json::Value> =
            bundle.counts().iter().map(|(k, n)| (k.to_string(), (*n).into())).collect();
        crate::output::print_structured(
            &serde_json::json!({"tenant": t.slug, "file": bundle.file, "written": !a.dry_run, "counts": counts}),
            ctx.output,
        )?;
    }
    let counts: Vec<String> = bundle.counts().iter().filter(|(_, n)| *n > 0).map(|(k, n)| format!("{n} {k}")).collect();
    let verb = if a.dry_run { "validated (dry run, nothing written)" } else { "imported" };
    ctx.info(format!("{}: {verb} {} from {}", t.slug, counts.join(", "), bundle.file));
    if let Some(sel) = &selected {
        let authority = content::Authority::of(&t);
        let tasks = own_tasks(a, &t);
        let own = if tasks.is_empty() {
            String::new()
        } else {
            format!(" performing the Kreis task(s) {} itself", tasks.join(", "))
        };
        ctx.info(format!(
            "{}: the services of a {}{own}; {} left out as another authority's task{}",
            t.slug,
            authority.label(),
            sel.left_out.len(),
            if sel.left_out.is_empty() { String::new() } else { format!(": {}", sel.left_out.join(", ")) }
        ));
    }
    report_warnings(ctx, &t.slug, &bundle);
    Ok(Exit::Success)
}

fn publish(ctx: &Context, a: &ContentPublishArgs, published: bool) -> anyhow::Result<Exit> {
    let t = tenant(ctx, &a.tenant)?;
    let target = if a.all { store::Target::All } else { store::Target::Services(a.services.clone()) };
    let n = runtime()?.block_on(async {
        let mut client = connect(&a.db.database_url).await?;
        let tx = client.transaction().await?;
        store::enter_tenant(&tx, &t.schema, None).await?;
        let n = store::set_published(&tx, &target, published)
            .await
            .map_err(|e| anyhow::anyhow!("tenant {}: {e}", t.slug))?;
        let placeholders = store::published_placeholders(&tx).await?;
        tx.commit().await?;
        anyhow::Ok((n, placeholders))
    })?;
    let (n, placeholders) = n;
    if ctx.output != OutputFormat::Table {
        crate::output::print_structured(
            &serde_json::json!({"tenant": t.slug, "published": published, "entries": n, "placeholders": placeholders}),
            ctx.output,
        )?;
    }
    let verb = if published { "published" } else { "unpublished" };
    ctx.info(format!("{}: {verb} {n} entr{}", t.slug, if n == 1 { "y" } else { "ies" }));
    if !placeholders.is_empty() {
        ctx.warn(format!(
            "tenant {}: {} published entr{} still hold placeholders (\"Platzhalter\"); replace them with the real \
             address, opening hours, phone and e-mail: {}",
            t.slug,
            placeholders.len(),
            if placeholders.len() == 1 { "y" } else { "ies" },
            placeholders.join(", ")
        ));
    }
    Ok(Exit::Success)
}

fn adopt(ctx: &Context, a: &ContentAdoptArgs) -> anyhow::Result<Exit> {
    let from = tenant(ctx, &a.from)?;
    let to = tenant(ctx, &a.to)?;
    if from.slug == to.slug {
        bail!("--from and --to name the same tenant {:?}", from.slug);
    }
    runtime()?.block_on(async {
        let mut client = connect(&a.db.database_url).await?;
        let tx = client.transaction().await?;
        let mut adopted = Vec::new();
        store::enter_tenant(&tx, &from.schema, None).await?;
        for id in &a.services {
            adopted.push(store::read_service(&tx, id).await.map_err(|e| anyhow::anyhow!("tenant {}: {e}", from.slug))?);
        }
        store::enter_tenant(&tx, &to.schema, None).await?;
        for s in &adopted {
            store::write_adopted(&tx, s, &from.slug).await.map_err(|e| anyhow::anyhow!("tenant {}: {e}", to.slug))?;
        }
        tx.commit().await?;
        anyhow::Ok(())
    })?;
    if ctx.output != OutputFormat::Table {
        crate::output::print_structured(
            &serde_json::json!({"from": from.slug, "to": to.slug, "services": a.services, "published": false}),
            ctx.output,
        )?;
    }
    ctx.info(format!(
        "{}: adopted {} from {} (unpublished; review, then portalctl content publish --tenant {} --service ID)",
        to.slug,
        a.services.join(", "),
        from.slug,
        to.slug
    ));
    Ok(Exit::Success)
}

fn catalogue(ctx: &Context) -> anyhow::Result<Exit> {
    let b = content::starter();
    let titles: std::collections::HashMap<&str, &str> =
        b.categories.iter().map(|c| (c.id.as_str(), c.title.as_str())).collect();
    match ctx.output {
        OutputFormat::Table => {
            let mut t = crate::output::table(&["id", "service", "category", "trust level", "competence", "LeiKa"]);
            for s in &b.services {
                t.add_row(vec![
                    s.id.clone(),
                    s.title.clone(),
                    s.category.as_deref().and_then(|c| titles.get(c)).unwrap_or(&"").to_string(),
                    s.trust_level.clone().unwrap_or_default(),
                    s.competence.map(|c| c.as_str()).unwrap_or_default().to_string(),
                    s.leika_key.clone().unwrap_or_else(|| "unknown".into()),
                ]);
            }
            print!("{}", crate::output::render_table(&t));
        }
        _ => {
            let v: Vec<serde_json::Value> = b
                .services
                .iter()
                .map(|s| {
                    serde_json::json!({
                        "id": s.id, "title": s.title, "category": s.category, "summary": s.summary,
                        "trustLevel": s.trust_level, "externalPortal": s.external_portal,
                        "competence": s.competence, "leikaKey": s.leika_key, "task": s.task,
                    })
                })
                .collect();
            crate::output::print_structured(&v, ctx.output)?;
        }
    }
    let count = |c: content::Competence| b.services.iter().filter(|s| s.competence == Some(c)).count();
    let placeholders = b.facilities.iter().filter(|f| f.placeholder == Some(true)).count()
        + b.staff.iter().filter(|p| p.placeholder == Some(true)).count();
    ctx.info(format!(
        "{} services in {} categories, {} Lebenslagen; {} municipal, {} of the Kreis, {} of both; {} without a LeiKa \
         key; {} facilities and staff entries with placeholders",
        b.services.len(),
        b.categories.len(),
        b.lebenslagen.len(),
        count(content::Competence::Gemeinde),
        count(content::Competence::Kreis),
        count(content::Competence::Both),
        b.services.iter().filter(|s| s.leika_key.is_none()).count(),
        placeholders,
    ));
    Ok(Exit::Success)
}
