//! `portalctl audit`: the accessibility audit of each tenant's pages (axe-core in headless Chromium) and their
//! security headers; exit 1 on any serious or critical violation. See `docs/portal.md#accessibility-audit`.

use super::{select, Context};
use crate::audit::{self, browser, TenantAudit};
use crate::cli::{DbConnArgs, Selector};
use crate::exit_codes::Exit;
use crate::local::LocalState;
use crate::output::{print_structured, render_table, table, OutputFormat};
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
    let audits: Vec<TenantAudit> = raw.tenants.iter().map(audit::assess).collect();
    if let Some(db) = &db {
        super::block_on(audit::record::record(db, &audits))?.context("recording the audit in portalctl.audit")?;
        ctx.info(format!("recorded {} result(s) in portalctl.audit", audits.len()));
    }
    let passed = audits.iter().all(TenantAudit::passed);
    match ctx.output {
        OutputFormat::Table => print!("{}", text(&audits)),
        format => print_structured(&AuditDoc { passed, tenants: &audits }, format)?,
    }
    Ok(if passed { Exit::Success } else { Exit::Failure })
}

/// The summary per tenant, then every violation (most severe first) with rule, page and selectors.
fn text(audits: &[TenantAudit]) -> String {
    let mut t = table(&["tenant", "critical", "serious", "moderate", "minor", "pages", "result"]);
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
            let shown: Vec<&str> = x.selectors.iter().take(3).map(String::as_str).collect();
            let mut sel = shown.join(", ");
            if x.selectors.len() > 3 {
                sel.push_str(&format!(" (+{})", x.selectors.len() - 3));
            }
            v.add_row(vec![a.tenant.clone(), x.impact.as_str().into(), x.rule.clone(), x.path.clone(), sel]);
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
    out
}
