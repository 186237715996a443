//! `portalctl audit`: the accessibility audit of each tenant's pages (axe-core in headless Chromium) and their
//! security headers and legal pages; exit 1 on any serious or critical violation. `-o html` is a report for people.
//! See `docs/portal.md#accessibility-audit`.

use super::{select, Context};
use crate::audit::{self, browser, report, TenantAudit};
use crate::cli::{DbConnArgs, Selector};
use crate::exit_codes::Exit;
use crate::local::LocalState;
use crate::output::{render_table, table, to_text, OutputFormat};
use anyhow::{bail, Context as _};
use clap::Args;
use serde::Serialize;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

#[derive(Debug, Args)]
pub struct AuditArgs {
    #[command(flatten)]
    pub selector: Selector,
    /// Ask the portals over plain HTTP at this address with each tenant's hostname (Host header), instead of
    /// https://<hostname>.
    #[arg(long, value_name = "IP:PORT")]
    pub portal_address: Option<SocketAddr>,
    /// Audit the local mode that `portalctl up` runs from this state directory (its portal server; the result is
    /// recorded in its database). Without --portal-address, --database-url or --base-https, the local mode of
    /// `.portalctl` is used if `up` ran here.
    #[arg(long, value_name = "DIR")]
    pub state_dir: Option<PathBuf>,
    /// Ask the portals at https://<hostname>/ through DNS (as citizens do) even when a local mode is running.
    #[arg(long, conflicts_with_all = ["portal_address", "state_dir"])]
    pub base_https: bool,
    /// Record each tenant's result in `portalctl.audit` of this database (for the `compliant` rung of `status`).
    #[command(flatten)]
    pub db: DbConnArgs,
    /// Runs of each audited tenant kept in `portalctl.audit`; older ones are deleted when this run is recorded.
    #[arg(long, default_value_t = audit::record::DEFAULT_KEEP, value_parser = clap::value_parser!(u32).range(1..), value_name = "N")]
    pub keep: u32,
    /// Write the output (the report with -o html) to this file instead of stdout.
    #[arg(long, value_name = "FILE")]
    pub out: Option<PathBuf>,
    /// Chromium to drive (default: /usr/bin/chromium).
    #[arg(long, env = "PORTALCTL_CHROMIUM", value_name = "PATH")]
    pub chromium: Option<PathBuf>,
    /// node.js to run the audit script with.
    #[arg(long, env = "PORTALCTL_NODE", default_value = "node", value_name = "PATH")]
    pub node: PathBuf,
    /// The audit script and its npm packages (`npm ci --prefix tools/audit`; default: tools/audit here, else in
    /// the sources portalctl was built from).
    #[arg(long, env = "PORTALCTL_AUDIT_TOOLS", value_name = "DIR")]
    pub tools_dir: Option<PathBuf>,
    /// Tenants audited at once (one browser tab each).
    #[arg(long, default_value_t = 2, value_name = "N")]
    pub concurrency: usize,
    /// Time for each page to load.
    #[arg(long, default_value = "30s", value_parser = super::kube::parse_duration, value_name = "DURATION")]
    pub page_timeout: Duration,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct AuditDoc<'a> {
    /// No tenant has a serious or critical violation, and every page was checked.
    passed: bool,
    tenants: &'a [TenantAudit],
}

pub fn run(ctx: &Context, args: &AuditArgs) -> anyhow::Result<Exit> {
    let catalog = ctx.catalog()?;
    let tenants = select(&catalog, &args.selector)?;
    if tenants.is_empty() {
        bail!("no tenant selected");
    }
    let explicit_db = args.db.database_url.as_deref().filter(|u| !u.is_empty());
    let local = match (&args.state_dir, args.portal_address.is_some() || explicit_db.is_some() || args.base_https) {
        (Some(dir), _) => match LocalState::read(dir)? {
            Some(s) => Some((dir.clone(), s)),
            None => {
                bail!("{} holds no local mode: run `portalctl up --state-dir {}` first", dir.display(), dir.display())
            }
        },
        (None, false) => {
            LocalState::read(std::path::Path::new(".portalctl"))?.map(|s| (PathBuf::from(".portalctl"), s))
        }
        (None, true) => None,
    };
    let target = match (&local, args.portal_address) {
        (Some((_, state)), _) => browser::Target::Address(format!("127.0.0.1:{}", state.port)),
        (None, Some(a)) => browser::Target::Address(a.to_string()),
        (None, None) => browser::Target::Https,
    };
    let db = match (&local, explicit_db) {
        (_, Some(url)) => {
            super::db::resolve(&args.db).map_err(|_| anyhow::anyhow!("invalid --database-url"))?;
            Some(super::db::connect_options(&args.db, url))
        }
        (Some((dir, state)), None) => {
            let mut opts = super::db::connect_options(&args.db, &state.database_url(dir)?);
            if state.db_port.is_some() {
                opts.sslmode = Some(crate::db::SslMode::Disable);
            }
            Some(opts)
        }
        (None, None) => None,
    };
    let config = browser::Config {
        node: args.node.clone(),
        chromium: args.chromium.clone().unwrap_or_else(browser::default_chromium),
        tools_dir: args.tools_dir.clone().unwrap_or_else(browser::default_tools_dir),
        target,
        concurrency: args.concurrency,
        page_timeout: args.page_timeout,
        progress: !ctx.quiet,
    };
    let targets: Vec<browser::TenantTarget> = tenants
        .iter()
        .map(|t| browser::TenantTarget { tenant: t.slug.clone(), host: t.primary_hostname().to_string() })
        .collect();
    ctx.info(format!("auditing {} tenant(s) in headless Chromium ({})", targets.len(), config.chromium.display()));
    let raw = config.run(&targets)?;
    let audits: Vec<TenantAudit> = raw
        .tenants
        .iter()
        .map(|r| {
            let declared = tenants.iter().find(|t| t.slug == r.tenant).map(|t| audit::LegalDeclared::of(t));
            audit::assess(r, &declared.unwrap_or_default())
        })
        .collect();
    if let Some(db) = &db {
        super::block_on(audit::record::record(db, &audits, args.keep))?
            .context("recording the audit in portalctl.audit")?;
        ctx.info(format!("recorded {} result(s) in portalctl.audit (keeping {} per tenant)", audits.len(), args.keep));
    }
    let passed = audits.iter().all(TenantAudit::passed);
    let out = match ctx.output {
        OutputFormat::Table => text(&audits),
        OutputFormat::Html => {
            let entries: Vec<report::Entry> = audits
                .iter()
                .map(|a| report::Entry {
                    display_name: tenants.iter().find(|x| x.slug == a.tenant).map_or(&a.tenant, |x| &x.display_name),
                    host: targets.iter().find(|x| x.tenant == a.tenant).map_or("", |x| &x.host),
                    audit: a,
                })
                .collect();
            report::html(&entries, time::OffsetDateTime::now_utc())?
        }
        format => to_text(&AuditDoc { passed, tenants: &audits }, format)?,
    };
    crate::output::emit(args.out.as_deref(), &out)?;
    Ok(if passed { Exit::Success } else { Exit::Failure })
}

/// The summary per tenant, then every violation (most severe first) with rule, page and selectors, then what needs
/// review.
fn text(audits: &[TenantAudit]) -> String {
    let mut t = table(&["tenant", "critical", "serious", "moderate", "minor", "review", "pages", "result"]);
    for a in audits {
        let result = if a.passed() {
            "ok".to_string()
        } else if a.failed_pages > 0 && a.critical + a.serious == 0 {
            format!("FAILED ({} page(s) not checked)", a.failed_pages)
        } else {
            "FAILED".to_string()
        };
        t.add_row(vec![
            a.tenant.clone(),
            a.critical.to_string(),
            a.serious.to_string(),
            a.moderate.to_string(),
            a.minor.to_string(),
            a.needs_review.len().to_string(),
            a.pages.len().to_string(),
            result,
        ]);
    }
    let mut out = render_table(&t);
    let mut v = table(&["tenant", "impact", "rule", "page", "selector"]);
    let mut any = false;
    for a in audits {
        for x in &a.violations {
            any = true;
            v.add_row(row(&a.tenant, x));
        }
        for p in a.pages.iter().filter(|p| p.note.is_some()) {
            any = true;
            v.add_row(vec![
                a.tenant.clone(),
                "-".into(),
                "page".into(),
                p.path.clone(),
                p.note.clone().unwrap_or_default(),
            ]);
        }
    }
    if any {
        out.push('\n');
        out.push_str(&render_table(&v));
    }
    let review: Vec<Vec<String>> =
        audits.iter().flat_map(|a| a.needs_review.iter().map(|x| row(&a.tenant, x))).collect();
    if !review.is_empty() {
        let mut r = table(&["tenant", "impact", "rule", "page", "selector"]);
        for x in review {
            r.add_row(x);
        }
        out.push_str("\nneeds review (checks axe-core could not decide; they do not fail the audit):\n");
        out.push_str(&render_table(&r));
    }
    out
}

/// One finding as a table row: tenant, impact, rule, path, the first three selectors.
fn row(tenant: &str, x: &audit::Violation) -> Vec<String> {
    let shown: Vec<&str> = x.selectors.iter().take(3).map(String::as_str).collect();
    let mut sel = shown.join(", ");
    if x.selectors.len() > 3 {
        sel.push_str(&format!(" (+{})", x.selectors.len() - 3));
    }
    vec![tenant.to_string(), x.impact.as_str().into(), x.rule.clone(), x.path.clone(), sel]
}
