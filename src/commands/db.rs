//! `portalctl db provision|migrate|status|offboard`.

use super::{select, Context};
use crate::cli::{DbCommand, DbConnArgs, DbSslMode, SecretsArgs, SecretsMode, Selector};
use crate::db::connect::Resolved;
use crate::db::credentials::Store;
use crate::db::status::TenantStatus;
use crate::db::{self, ConnectOptions, SslMode, TenantDb};
use crate::exit_codes::Exit;
use crate::output::{print_structured, render_table, table, OutputFormat};
use anyhow::Context as _;
use indicatif::{ProgressBar, ProgressStyle};
use serde::Serialize;
use std::sync::Arc;
use std::time::Duration;

pub fn run(ctx: &Context, cmd: DbCommand) -> anyhow::Result<Exit> {
    let rt = tokio::runtime::Builder::new_multi_thread().enable_all().build().context("cannot start the runtime")?;
    rt.block_on(async {
        match cmd {
            DbCommand::Provision(a) => {
                provision(ctx, &a.conn, &a.select, store(&a.secrets, &a.cluster), a.concurrency).await
            }
            DbCommand::Migrate(a) => migrate(ctx, &a.conn, &a.select, a.concurrency).await,
            DbCommand::Status(a) => status(ctx, &a.conn, &a.select, &a.secrets, &a.cluster).await,
            DbCommand::Offboard(a) => offboard(ctx, &a).await,
            DbCommand::Restore(a) => restore(ctx, &a).await,
        }
    })
}

/// The error of a db operation as an outcome: an unreachable database is exit code 3,
/// anything else an error.
fn fail(err: db::Error) -> anyhow::Result<Exit> {
    if err.is_unavailable() {
        eprintln!("{} {err}", console::style("error:").for_stderr().red().bold());
        return Ok(Exit::Unavailable);
    }
    Err(err.into())
}

macro_rules! tri {
    ($e:expr) => {
        match $e {
            Ok(v) => v,
            Err(e) => return fail(e),
        }
    };
}

/// The connection options the `--database-url`/`--db-*` flags describe.
pub(crate) fn connect_options(conn: &DbConnArgs, url: &str) -> ConnectOptions {
    ConnectOptions {
        url: url.to_string(),
        sslmode: conn.db_sslmode.map(|m| match m {
            DbSslMode::Disable => SslMode::Disable,
            DbSslMode::Prefer => SslMode::Prefer,
            DbSslMode::Require => SslMode::Require,
            DbSslMode::VerifyFull => SslMode::VerifyFull,
        }),
        ca_file: conn.db_ca_file.clone(),
        connect_timeout: Duration::from_secs(conn.db_connect_timeout.max(1)),
    }
}

pub(crate) fn resolve(conn: &DbConnArgs) -> Result<Resolved, Exit> {
    let Some(url) = conn.database_url.as_deref().filter(|u| !u.is_empty()) else {
        eprintln!(
            "{} no database given: pass --database-url or set DATABASE_URL",
            console::style("error:").for_stderr().red().bold()
        );
        return Err(Exit::Usage);
    };
    let opts = connect_options(conn, url);
    opts.resolve().map_err(|e| {
        eprintln!("{} {e}", console::style("error:").for_stderr().red().bold());
        Exit::Usage
    })
}

/// The credential store: in Kubernetes mode through the cluster of `--kubeconfig`/`--context` (a group's
/// `clusterContext` when no `--context` is given), with portalctl's one client.
pub(crate) fn store(args: &SecretsArgs, cluster: &super::kube::ClusterArgs) -> Store {
    match args.secrets {
        SecretsMode::Local => Store::local(&args.secrets_dir),
        SecretsMode::Kubernetes => Store::kubernetes(crate::cluster::ConnectOptions {
            kubeconfig: cluster.kubeconfig.clone(),
            context: cluster.context.clone(),
            request_timeout: cluster.request_timeout,
            retry: Default::default(),
        }),
    }
}

fn tenants(ctx: &Context, sel: &Selector) -> anyhow::Result<Vec<TenantDb>> {
    let catalog = ctx.catalog()?;
    let chosen = select(&catalog, sel)?;
    chosen.into_iter().map(|t| TenantDb::from_tenant(t).map_err(anyhow::Error::from)).collect()
}

/// Progress on stderr: a bar on a terminal, a line per finished tenant otherwise.
struct Progress {
    bar: Option<ProgressBar>,
    plain: bool,
    done: usize,
    total: usize,
    verb: &'static str,
}

impl Progress {
    fn new(ctx: &Context, verb: &'static str, total: usize) -> Progress {
        let tty = console::Term::stderr().is_term();
        let bar = (tty && !ctx.quiet).then(|| {
            let pb = ProgressBar::new(total as u64);
            pb.set_style(
                ProgressStyle::with_template("{prefix} [{bar:30}] {pos}/{len} {elapsed} {wide_msg}")
                    .expect("a valid template")
                    .progress_chars("=> "),
            );
            pb.set_prefix(verb);
            pb
        });
        Progress { bar, plain: !tty && !ctx.quiet, done: 0, total, verb }
    }

    fn finished(&mut self, tenant: &str, result: &str) {
        self.done += 1;
        if let Some(pb) = &self.bar {
            pb.set_message(tenant.to_string());
            pb.inc(1);
        } else if self.plain {
            eprintln!("{} [{}/{}] {tenant}: {result}", self.verb, self.done, self.total);
        }
    }

    fn failed(&mut self, tenant: &str, err: &db::Error) {
        let msg = err.to_string();
        let line = if msg.starts_with(&format!("tenant {tenant}:")) {
            format!("{} {msg}", console::style("error:").for_stderr().red().bold())
        } else {
            format!("{} tenant {tenant}: {msg}", console::style("error:").for_stderr().red().bold())
        };
        match &self.bar {
            Some(pb) => pb.println(line),
            None => eprintln!("{line}"),
        }
        self.done += 1;
        if let Some(pb) = &self.bar {
            pb.inc(1);
        }
    }

    fn finish(&self) {
        if let Some(pb) = &self.bar {
            pb.finish_and_clear();
        }
    }
}

/// One tenant's line in the results.
#[derive(Debug, Serialize)]
struct Row {
    tenant: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    changes: Option<Vec<String>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    from: Option<i32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    to: Option<i32>,
    result: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    error: Option<String>,
}

impl Row {
    /// A tenant whose step failed, with the reason.
    fn failed(tenant: String, e: &impl std::fmt::Display) -> Row {
        Row { tenant, changes: None, from: None, to: None, result: "failed".into(), error: Some(e.to_string()) }
    }
}

/// The exit code of a run over many tenants: 3 when the database went away during the run
/// (the failures say nothing about the tenants), 1 when some tenants failed, else 0.
fn tally_exit(failed: usize, unavailable: bool) -> Exit {
    match (failed, unavailable) {
        (_, true) => Exit::Unavailable,
        (0, false) => Exit::Success,
        _ => Exit::Failure,
    }
}

fn print_rows(ctx: &Context, rows: &[Row]) -> anyhow::Result<()> {
    match ctx.output {
        OutputFormat::Table => {
            let mut t = table(&["tenant", "result"]);
            for r in rows {
                t.add_row(vec![r.tenant.clone(), r.error.clone().map_or(r.result.clone(), |e| format!("FAILED: {e}"))]);
            }
            print!("{}", render_table(&t));
            Ok(())
        }
        f => print_structured(&rows, f),
    }
}

async fn provision(
    ctx: &Context,
    conn: &DbConnArgs,
    sel: &Selector,
    store: Store,
    concurrency: usize,
) -> anyhow::Result<Exit> {
    let tenants = tenants(ctx, sel)?;
    let resolved = match resolve(conn) {
        Ok(r) => r,
        Err(exit) => return Ok(exit),
    };
    let store = Arc::new(store);
    let client = tri!(resolved.connect().await);
    let shared = tri!(db::provision::ensure_shared(&client).await);
    for c in &shared.changes {
        ctx.info(format!("shared: {c}"));
    }
    let mut seen = std::collections::BTreeSet::new();
    for t in &tenants {
        if seen.insert(t.group.clone()) {
            let key = db::provision::group_key(t);
            let report = tri!(db::provision::ensure_group_role(&client, &t.group, &key, &store, &resolved).await);
            for c in &report.changes {
                ctx.info(format!("group {}: {c}", t.group));
            }
        }
    }
    drop(client);
    let mut progress = Progress::new(ctx, "provision", tenants.len());
    let work_store = store.clone();
    let work_conn = resolved.clone();
    let results = tri!(
        db::for_each(
            &resolved,
            tenants,
            concurrency,
            move |client, t: TenantDb| {
                let store = work_store.clone();
                let conn = work_conn.clone();
                async move { db::provision::provision_tenant(&client, &t, &store, &conn).await }
            },
            |t, r| match r {
                Ok(rep) if rep.changes.is_empty() => progress.finished(&t.slug, "unchanged"),
                Ok(_) => progress.finished(&t.slug, "changed"),
                Err(e) => progress.failed(&t.slug, e),
            },
        )
        .await
    );
    progress.finish();
    let (mut changed, mut unchanged, mut failed, mut unavailable) = (0, 0, 0, false);
    let mut rows = Vec::new();
    for (t, r) in results {
        rows.push(match r {
            Ok(rep) => {
                let result = if rep.changes.is_empty() {
                    unchanged += 1;
                    "unchanged".to_string()
                } else {
                    changed += 1;
                    rep.changes.join("; ")
                };
                Row { tenant: t.slug, changes: Some(rep.changes), from: None, to: None, result, error: None }
            }
            Err(e) => {
                failed += 1;
                unavailable |= e.is_unavailable();
                Row::failed(t.slug, &e)
            }
        });
    }
    print_rows(ctx, &rows)?;
    ctx.info(format!("provision: {} tenant(s): {changed} changed, {unchanged} unchanged, {failed} failed", rows.len()));
    Ok(tally_exit(failed, unavailable))
}

async fn migrate(ctx: &Context, conn: &DbConnArgs, sel: &Selector, concurrency: usize) -> anyhow::Result<Exit> {
    let tenants = tenants(ctx, sel)?;
    let resolved = match resolve(conn) {
        Ok(r) => r,
        Err(exit) => return Ok(exit),
    };
    let mut progress = Progress::new(ctx, "migrate", tenants.len());
    let results = tri!(
        db::for_each(
            &resolved,
            tenants,
            concurrency,
            |client, t: TenantDb| async move { db::migrations::migrate(&client, &t.schema).await },
            |t, r| match r {
                Ok(o) if o.applied.is_empty() => progress.finished(&t.slug, &format!("at version {}", o.to)),
                Ok(o) => progress.finished(&t.slug, &format!("{} → {}", o.from, o.to)),
                Err(e) => progress.failed(&t.slug, e),
            },
        )
        .await
    );
    progress.finish();
    let (mut changed, mut unchanged, mut failed, mut unavailable) = (0, 0, 0, false);
    let mut rows = Vec::new();
    for (t, r) in results {
        rows.push(match r {
            Ok(o) => {
                let result = if o.applied.is_empty() {
                    unchanged += 1;
                    format!("unchanged (version {})", o.to)
                } else {
                    changed += 1;
                    format!("migrated {} → {}", o.from, o.to)
                };
                Row { tenant: t.slug, changes: None, from: Some(o.from), to: Some(o.to), result, error: None }
            }
            Err(e) => {
                failed += 1;
                unavailable |= e.is_unavailable();
                Row::failed(t.slug, &e)
            }
        });
    }
    print_rows(ctx, &rows)?;
    ctx.info(format!(
        "migrate: {} tenant(s): {changed} migrated, {unchanged} unchanged, {failed} failed (latest version {})",
        rows.len(),
        db::migrations::LATEST
    ));
    Ok(tally_exit(failed, unavailable))
}

async fn status(
    ctx: &Context,
    conn: &DbConnArgs,
    sel: &Selector,
    secrets: &SecretsArgs,
    cluster: &super::kube::ClusterArgs,
) -> anyhow::Result<Exit> {
    let tenants = tenants(ctx, sel)?;
    let resolved = match resolve(conn) {
        Ok(r) => r,
        Err(exit) => return Ok(exit),
    };
    let store = Arc::new(store(secrets, cluster));
    let check_conn = resolved.clone();
    let results = tri!(
        db::for_each(
            &resolved,
            tenants,
            8,
            move |client, t: TenantDb| {
                let (store, conn) = (store.clone(), check_conn.clone());
                async move {
                    let mut s = db::status::tenant_status(&client, &t).await?;
                    if s.role_exists {
                        let key = db::offboard::tenant_key(&t);
                        s.credential =
                            Some(db::credentials::stored_credential(&store, &key, &conn, &t.schema, true).await?);
                    }
                    Ok(s)
                }
            },
            |_, _| {},
        )
        .await
    );
    let mut statuses: Vec<TenantStatus> = Vec::new();
    for (t, r) in results {
        statuses.push(r.with_context(|| format!("tenant {}", t.slug))?);
    }
    match ctx.output {
        OutputFormat::Table => {
            let mut t = table(&[
                "tenant",
                "group",
                "schema",
                "role",
                "credential",
                "version",
                "services",
                "facilities",
                "staff",
                "state",
            ]);
            for s in &statuses {
                let yes_no = |b: bool| if b { "yes" } else { "missing" };
                let count = |f: fn(&db::status::Published) -> i64| {
                    s.published.as_ref().map_or("-".to_string(), |p| f(p).to_string())
                };
                t.add_row(vec![
                    s.tenant.clone(),
                    s.group.clone(),
                    format!("{} ({})", s.schema, yes_no(s.schema_exists)),
                    yes_no(s.role_exists).to_string(),
                    s.credential.map_or("-", |c| c.describe()).to_string(),
                    s.version.map_or("-".to_string(), |v| format!("{v}/{}", s.latest)),
                    count(|p| p.services),
                    count(|p| p.facilities),
                    count(|p| p.staff),
                    state(s).to_string(),
                ]);
            }
            print!("{}", render_table(&t));
            let current = statuses.iter().filter(|s| s.current).count();
            ctx.info(format!(
                "{current} of {} tenant(s) current (latest version {})",
                statuses.len(),
                db::migrations::LATEST
            ));
        }
        f => print_structured(&statuses, f)?,
    }
    let refused: Vec<&str> = statuses
        .iter()
        .filter(|s| s.credential == Some(db::credentials::Check::Refused))
        .map(|s| s.tenant.as_str())
        .collect();
    if !refused.is_empty() {
        eprintln!(
            "{} stored credential does not log in for tenant(s) {}; `portalctl db provision` sets a new password and stores it",
            console::style("error:").red().bold(),
            refused.join(", ")
        );
        return Ok(Exit::Failure);
    }
    Ok(Exit::Success)
}

fn state(s: &TenantStatus) -> &'static str {
    match (s.schema_exists, s.role_exists, s.version) {
        (false, false, _) => "not provisioned",
        (false, true, _) | (true, false, _) => "incomplete",
        (true, true, Some(v)) if v == s.latest => "current",
        (true, true, Some(v)) if v > s.latest => "ahead of this portalctl",
        _ => "needs migrate",
    }
}

/// The one tenant a command names, and the resolved connection (or the exit code of bad
/// connection settings).
fn one_tenant(ctx: &Context, slug: &str, conn: &DbConnArgs) -> anyhow::Result<Result<(TenantDb, Resolved), Exit>> {
    let catalog = ctx.catalog()?;
    let Some(tenant) = catalog.tenant(slug) else {
        anyhow::bail!("no tenant {slug:?} under {}", ctx.tenants_dir.display());
    };
    let t = TenantDb::from_tenant(tenant)?;
    Ok(resolve(conn).map(|r| (t, r)))
}

async fn offboard(ctx: &Context, a: &crate::cli::DbOffboardArgs) -> anyhow::Result<Exit> {
    let (t, resolved) = match one_tenant(ctx, &a.tenant, &a.conn)? {
        Ok(v) => v,
        Err(exit) => return Ok(exit),
    };
    let store = store(&a.secrets, &a.cluster);
    let client = tri!(resolved.connect().await);
    let plan = tri!(db::offboard::plan(&client, &t, &store, &a.backup_dir).await);
    if !a.confirm {
        match ctx.output {
            OutputFormat::Table => {
                if plan.is_empty() {
                    println!("tenant {}: schema and role {} do not exist; nothing to drop", t.slug, t.schema);
                }
                println!("offboarding tenant {} would:", t.slug);
                for step in plan.steps() {
                    println!("  - {step}");
                }
                ctx.info("nothing was changed; add --confirm to do it");
            }
            f => print_structured(&plan, f)?,
        }
        return Ok(Exit::Success);
    }
    tri!(db::provision::ensure_shared(&client).await);
    let mut dump = None;
    if let Some(backup) = &plan.backup {
        let pg_dump = tri!(db::offboard::find_pg_dump(a.pg_dump.as_deref()));
        let d = match db::offboard::dump_schema(&pg_dump, &resolved, &t.schema, backup).await {
            Ok(d) => d,
            Err(e) => {
                return Err(anyhow::Error::from(e)
                    .context(format!("tenant {}: refusing to drop anything without a backup", t.slug)))
            }
        };
        println!("backup: {} ({} bytes, sha256 {})", backup.display(), d.bytes, d.sha256);
        dump = Some(d);
    }
    tri!(db::offboard::drop_tenant(&client, &t, dump.as_ref()).await);
    if plan.schema_exists {
        println!("dropped schema {}", t.schema);
    }
    if plan.role_exists {
        println!("dropped role {}", t.schema);
    }
    let key = db::offboard::tenant_key(&t);
    if tri!(store.remove(&key).await) {
        println!("removed credential {}", store.describe(&key));
    }
    ctx.info(format!("tenant {} offboarded", t.slug));
    Ok(Exit::Success)
}

async fn restore(ctx: &Context, a: &crate::cli::DbRestoreArgs) -> anyhow::Result<Exit> {
    let (t, resolved) = match one_tenant(ctx, &a.tenant, &a.conn)? {
        Ok(v) => v,
        Err(exit) => return Ok(exit),
    };
    let psql = tri!(db::offboard::find_pg_tool("psql", a.psql.as_deref()));
    let store = store(&a.secrets, &a.cluster);
    let client = tri!(resolved.connect().await);
    let restored = match db::offboard::restore(&client, &psql, &resolved, &t, &a.file).await {
        Ok(r) => r,
        Err(e) if e.is_unavailable() => return fail(e),
        Err(e) => return Err(anyhow::Error::from(e).context(format!("tenant {}: restore", t.slug))),
    };
    let checked = match restored.recorded_sha256_matched {
        Some(true) => "matches the offboarding record",
        _ => "no offboarding record in this database to compare with",
    };
    println!(
        "restored schema {} from {} ({} bytes, sha256 {}: {checked})",
        t.schema,
        a.file.display(),
        restored.dump.bytes,
        restored.dump.sha256
    );
    let key = db::provision::group_key(&t);
    tri!(db::provision::ensure_group_role(&client, &t.group, &key, &store, &resolved).await);
    let report = tri!(db::provision::provision_tenant(&client, &t, &store, &resolved).await);
    for c in &report.changes {
        println!("{c}");
    }
    let migrated = tri!(db::migrations::migrate(&client, &t.schema).await);
    if !migrated.applied.is_empty() {
        println!("migrated {} → {}", migrated.from, migrated.to);
    }
    ctx.info(format!("tenant {} restored", t.slug));
    Ok(Exit::Success)
}
