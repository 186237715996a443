//! `portalctl feedback list|export`: the citizens' feedback one tenant's portal stored, read
//! as that tenant through an administrating connection; a table, JSON/YAML (camelCase) or CSV.
//! Feedback goes to stdout only, never into a log line.

use super::Context;
use crate::cli::{FeedbackArgs, FeedbackCommand};
use crate::exit_codes::Exit;
use crate::output::OutputFormat;
use crate::portal::feedback::{self, Entry};
use anyhow::{bail, Context as _};

pub fn run(ctx: &Context, cmd: FeedbackCommand) -> anyhow::Result<Exit> {
    match cmd {
        FeedbackCommand::List(a) => show(ctx, &a, ctx.output),
        // An export is CSV unless another machine format is asked for.
        FeedbackCommand::Export(a) => {
            let format = if ctx.output == OutputFormat::Table { OutputFormat::Csv } else { ctx.output };
            show(ctx, &a, format)
        }
    }
}

fn show(ctx: &Context, a: &FeedbackArgs, format: OutputFormat) -> anyhow::Result<Exit> {
    let catalog = ctx.catalog()?;
    let Some(tenant) = catalog.tenant(&a.tenant) else {
        bail!("no tenant {:?} in {}", a.tenant, ctx.tenants_dir.display());
    };
    let schema = tenant.schema.clone();
    let resolved = match super::db::resolve(&a.conn) {
        Ok(r) => r,
        Err(exit) => return Ok(exit),
    };
    let entries = super::block_on(async {
        let mut client = resolved.connect().await?;
        feedback::list(&mut client, &schema, a.since).await
    })?
    .map_err(|e| match e.sqlstate() {
        // 42P01: the feedback table does not exist yet.
        Some("42P01") => anyhow::anyhow!(
            "tenant {}: schema {schema} has no feedback table yet; run `portalctl db migrate --tenant {}`",
            a.tenant,
            a.tenant
        ),
        _ => anyhow::Error::new(e).context(format!("tenant {}", a.tenant)),
    })?;
    match format {
        OutputFormat::Csv => print!("{}", csv_text(&entries)?),
        OutputFormat::Table => {
            if entries.is_empty() {
                ctx.info(format!("no feedback for tenant {}", a.tenant));
            } else {
                print!("{}", table_text(&entries));
            }
        }
        other => print!("{}", crate::output::to_text(&entries, other)?),
    }
    Ok(Exit::Success)
}

/// A cell that a spreadsheet would take for a formula (`=`, `+`, `-`, `@`, tab, CR at the
/// start) gets a leading `'`, so that opening an export never runs what a citizen typed.
fn defuse(cell: &str) -> String {
    if cell.starts_with(['=', '+', '-', '@', '\t', '\r']) {
        format!("'{cell}")
    } else {
        cell.to_string()
    }
}

/// The entries as CSV with a header row (the JSON field names).
fn csv_text(entries: &[Entry]) -> anyhow::Result<String> {
    let mut w = csv::Writer::from_writer(Vec::new());
    w.write_record(["id", "receivedAt", "kind", "serviceId", "helpful", "page", "message", "email"])?;
    for e in entries {
        let helpful = match e.helpful {
            Some(true) => "true",
            Some(false) => "false",
            None => "",
        };
        w.write_record([
            e.id.to_string(),
            e.received_at.clone(),
            e.kind.as_str().to_string(),
            e.service_id.clone().unwrap_or_default(),
            helpful.to_string(),
            defuse(&e.page),
            defuse(&e.message),
            defuse(e.email.as_deref().unwrap_or("")),
        ])?;
    }
    String::from_utf8(w.into_inner().context("cannot write CSV")?).context("CSV is not UTF-8")
}

/// The entries as a table; long messages shortened (the whole text: `-o json` or `export`).
fn table_text(entries: &[Entry]) -> String {
    let mut t = crate::output::table(&["received", "kind", "service", "helpful", "message", "email"]);
    for e in entries {
        let mut message: String = e.message.replace('\n', " ").chars().take(60).collect();
        if e.message.chars().count() > 60 {
            message.push('…');
        }
        t.add_row(vec![
            e.received_at.clone(),
            e.kind.as_str().to_string(),
            e.service_id.clone().unwrap_or_else(|| "-".into()),
            e.helpful.map(|h| if h { "ja" } else { "nein" }).unwrap_or("-").to_string(),
            message,
            e.email.clone().unwrap_or_else(|| "-".into()),
        ]);
    }
    crate::output::render_table(&t)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::portal::feedback::Kind;

    #[test]
    fn csv_quotes_and_defuses_what_citizens_typed() {
        let e = Entry {
            id: 7,
            received_at: "2026-11-29T08:00:00Z".into(),
            kind: Kind::Accessibility,
            service_id: None,
            helpful: None,
            page: "/leistungen".into(),
            message: "=HYPERLINK(\"http://x\"), \"zitiert\"\nzweite Zeile".into(),
            email: Some("buerger@example.de".into()),
        };
        let text = csv_text(&[e]).unwrap();
        let mut r = csv::Reader::from_reader(text.as_bytes());
        assert_eq!(
            r.headers().unwrap().iter().collect::<Vec<_>>(),
            ["id", "receivedAt", "kind", "serviceId", "helpful", "page", "message", "email"]
        );
        let row = r.records().next().unwrap().unwrap();
        assert_eq!(&row[2], "accessibility");
        assert_eq!(&row[6], "'=HYPERLINK(\"http://x\"), \"zitiert\"\nzweite Zeile");
        assert_eq!(&row[7], "buerger@example.de");
    }
}
