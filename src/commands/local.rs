//! `portalctl up` / `portalctl down`: the local all-in-one mode. A private PostgreSQL under the
//! state directory (or an existing server), every tenant provisioned and migrated, the starter
//! catalogue imported and published where a tenant has no content yet, and the portal server
//! running in the background at `http://<slug>.localhost:<port>`.

use super::Context;
use crate::cli::{DownArgs, UpArgs};
use crate::content::{self, store};
use crate::db::connect::Resolved;
use crate::db::credentials::Store;
use crate::db::{self, ConnectOptions, SslMode, TenantDb};
use crate::exit_codes::Exit;
use crate::local::{self, LocalPostgres};
use crate::output::{print_structured, render_table, table, OutputFormat};
use crate::tenant::Tenant;
use anyhow::{bail, Context as _};
use serde::Serialize;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

const PID_FILE: &str = "serve.pid";
const LOG_FILE: &str = "serve.log";

/// One tenant as served locally.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
struct Row {
    tenant: String,
    group: String,
    display_name: String,
    url: String,
    hostname: String,
    /// Published services, from the portal's identity endpoint.
    services: Option<u64>,
    /// Whether the local URL answers and the identity endpoint names this tenant for it.
    serving: bool,
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
struct Summary {
    already_running: bool,
    port: u16,
    /// Port of the operations listener (health, metrics, identity).
    ops_port: u16,
    pid: u32,
    state_dir: String,
    database: String,
    /// Tenants whose database objects this run created or changed (none when already running).
    provisioned_changed: usize,
    /// Tenants that got the starter catalogue in this run.
    catalogue_imported: usize,
    tenants: Vec<Row>,
}

fn abs(path: &Path) -> anyhow::Result<PathBuf> {
    Ok(if path.is_absolute() { path.to_path_buf() } else { std::env::current_dir()?.join(path) })
}

/// Whether a process with this pid is alive (not a zombie) and is a `portalctl serve`.
fn serve_alive(pid: u32) -> bool {
    let Ok(stat) = std::fs::read_to_string(format!("/proc/{pid}/stat")) else { return false };
    // The state follows the parenthesised command name.
    let zombie = stat.rsplit_once(')').map(|(_, rest)| rest.trim_start().starts_with(['Z', 'X'])).unwrap_or(true);
    if zombie {
        return false;
    }
    std::fs::read(format!("/proc/{pid}/cmdline"))
        .map(|c| c.split(|b| *b == 0).any(|arg| arg == b"serve"))
        .unwrap_or(false)
}

fn read_pid(state: &Path) -> Option<u32> {
    std::fs::read_to_string(state.join(PID_FILE)).ok()?.trim().parse().ok()
}

/// As root, PostgreSQL runs as `postgres`, which must be able to reach `<state>/postgres`.
fn check_traversable(state: &Path) -> anyhow::Result<()> {
    use std::os::unix::fs::PermissionsExt as _;
    if !std::fs::read_to_string("/proc/self/status")
        .map(|s| s.lines().any(|l| l.starts_with("Uid:") && l.split_whitespace().nth(1) == Some("0")))
        .unwrap_or(false)
    {
        return Ok(());
    }
    let meta = std::fs::metadata(state).with_context(|| format!("cannot read {}", state.display()))?;
    let mode = meta.permissions().mode();
    if mode & 0o001 == 0 {
        // Traverse only: the secrets below stay private (their files are 0600).
        std::fs::set_permissions(state, std::fs::Permissions::from_mode((mode & 0o7777) | 0o011))
            .with_context(|| format!("cannot make {} traversable for the postgres user", state.display()))?;
    }
    for dir in state.ancestors().skip(1) {
        let Ok(m) = std::fs::metadata(dir) else { continue };
        if m.permissions().mode() & 0o001 == 0 {
            bail!(
                "{} is not traversable by the postgres user (PostgreSQL does not run as root); choose a --state-dir \
                 elsewhere or run `chmod o+x {}`",
                dir.display(),
                dir.display()
            );
        }
    }
    Ok(())
}

pub fn up(ctx: &Context, args: &UpArgs) -> anyhow::Result<Exit> {
    let catalog = ctx.catalog()?;
    let tenants_dir = abs(&ctx.tenants_dir)?;
    std::fs::create_dir_all(&args.state_dir)
        .with_context(|| format!("cannot create the state directory {}", args.state_dir.display()))?;
    let state = abs(&args.state_dir)?;
    let rt = tokio::runtime::Builder::new_multi_thread().enable_all().build().context("cannot start the runtime")?;

    // Already running: converge. The running server keeps its ports and database (as recorded
    // by the `up` that started it); new and changed tenants get their databases here, and the
    // server serves them once they are ready (removed tenant files are no longer served; their
    // data is kept).
    let running = read_pid(&state).filter(|p| serve_alive(*p));
    let recorded = match running {
        Some(_) => local::LocalState::read(&state)?,
        None => None,
    };
    let (port, ops_port) = recorded.as_ref().map_or((args.port, args.ops_port), |r| (r.port, r.ops_port));
    if let Some(pid) = running {
        ctx.info(format!("portalctl is already running (portal server pid {pid}); bringing it up to date"));
    } else {
        // Fail before any work if the server could not listen.
        check_port_free(args.port)?;
        check_port_free(args.ops_port)?;
    }
    let external = match &recorded {
        Some(r) if r.db_port.is_none() => Some(r.database_url(&state)?),
        Some(_) => None,
        None => args.database_url.clone(),
    };
    let db_port = recorded.as_ref().and_then(|r| r.db_port).unwrap_or(args.db_port);
    let url = match &external {
        Some(url) => url.clone(),
        None => {
            let pg = match LocalPostgres::new(&state, db_port) {
                Ok(pg) => pg,
                Err(e @ local::Error::NoBinaries) => {
                    ctx.error(e.to_string());
                    return Ok(Exit::Unavailable);
                }
                Err(e) => return Err(e.into()),
            };
            check_traversable(&state)?;
            let started = pg.start().context("cannot start the private PostgreSQL")?;
            if started {
                ctx.info(format!("PostgreSQL started on 127.0.0.1:{db_port} (data in {})", pg.data_dir().display()));
            } else if running.is_none() {
                ctx.info(format!("PostgreSQL already running on 127.0.0.1:{db_port}"));
            }
            pg.url()
        }
    };
    let mut opts = ConnectOptions::new(url.clone());
    if external.is_none() {
        opts.sslmode = Some(SslMode::Disable);
    }
    let resolved = opts.resolve()?;
    let secrets = state.join("secrets");
    let tdbs: Vec<TenantDb> = catalog.tenants.iter().map(TenantDb::from_tenant).collect::<Result<_, _>>()?;
    let (provisioned, imported) = rt.block_on(prepare(&resolved, &secrets, &tdbs, &catalog.tenants))?;
    ctx.info(format!(
        "databases: {} tenant(s) provisioned and migrated ({provisioned} changed); starter catalogue imported and \
         published for {imported}",
        tdbs.len()
    ));

    let timeout = Duration::from_secs(args.timeout.max(1));
    let pid = match running {
        Some(pid) => pid,
        None => {
            let recorded = local::LocalState {
                port: args.port,
                ops_port: args.ops_port,
                db_port: args.database_url.is_none().then_some(args.db_port),
            };
            recorded.write(&state, args.database_url.as_deref())?;
            let pid = start_server(ctx, args, &state, &tenants_dir, &secrets, &url)?;
            rt.block_on(wait_ready(args.ops_port, pid, &state, timeout))?;
            pid
        }
    };
    // The server picks changed tenant files up at its next poll: wait until it serves them all.
    let rows = rt.block_on(wait_serving(&catalog.tenants, port, ops_port, pid, &state, timeout))?;
    let summary = Summary {
        already_running: running.is_some(),
        port,
        ops_port,
        pid,
        state_dir: state.display().to_string(),
        database: match &external {
            Some(_) => "existing PostgreSQL from --database-url".to_string(),
            None => format!("private PostgreSQL on 127.0.0.1:{db_port}"),
        },
        provisioned_changed: provisioned,
        catalogue_imported: imported,
        tenants: rows,
    };
    print_summary(ctx, &summary)
}

/// Ask every tenant until each is served, the server exits, or `timeout` passes; the last answers.
async fn wait_serving(
    tenants: &[Tenant],
    port: u16,
    ops_port: u16,
    pid: u32,
    state: &Path,
    timeout: Duration,
) -> anyhow::Result<Vec<Row>> {
    let start = Instant::now();
    loop {
        let rows = identities(tenants, port, ops_port).await;
        if rows.iter().all(|r| r.serving) || start.elapsed() > timeout {
            return Ok(rows);
        }
        if !serve_alive(pid) {
            bail!("the portal server exited; see {}", state.join(LOG_FILE).display());
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
}

/// `db provision` + `db migrate` for every tenant, then the starter catalogue (the services that
/// are the tenant's task; none for a Dachportal) where a tenant has no content yet. Returns (tenants changed by provisioning, tenants given the catalogue).
async fn prepare(
    resolved: &Resolved,
    secrets: &Path,
    tdbs: &[TenantDb],
    tenants: &[Tenant],
) -> anyhow::Result<(usize, usize)> {
    let store = std::sync::Arc::new(Store::local(secrets));
    let client = resolved.connect().await.context("cannot connect to PostgreSQL")?;
    db::provision::ensure_shared(&client).await?;
    let mut seen = std::collections::BTreeSet::new();
    for t in tdbs {
        if seen.insert(t.group.clone()) {
            let key = db::provision::group_key(t);
            db::provision::ensure_group_role(&client, &t.group, &key, &store, resolved).await?;
        }
    }
    drop(client);
    let (work_store, work_conn) = (store.clone(), resolved.clone());
    let results = db::for_each(
        resolved,
        tdbs.to_vec(),
        4,
        move |client, t: TenantDb| {
            let (store, conn) = (work_store.clone(), work_conn.clone());
            async move {
                let rep = db::provision::provision_tenant(&client, &t, &store, &conn).await?;
                db::migrations::migrate(&client, &t.schema).await?;
                Ok(!rep.changes.is_empty())
            }
        },
        |_, _| {},
    )
    .await?;
    let mut changed = 0;
    for (t, r) in results {
        if r.with_context(|| format!("tenant {}", t.slug))? {
            changed += 1;
        }
    }
    let mut client = resolved.connect().await.context("cannot connect to PostgreSQL")?;
    let starter = content::starter();
    let mut imported = 0;
    for t in tenants {
        // The services that are the tenant's task; a Dachportal has none of its own.
        let Ok(fitted) = content::select_for(&starter, content::Authority::of(t), &t.own_tasks) else { continue };
        let tx = client.transaction().await?;
        store::enter_tenant(&tx, &t.schema, None).await.with_context(|| format!("tenant {}", t.slug))?;
        let row = tx.query_one("SELECT count(*) FROM service", &[]).await?;
        if row.get::<_, i64>(0) == 0 {
            store::import(&tx, &fitted.bundle)
                .await
                .with_context(|| format!("tenant {}: starter catalogue", t.slug))?;
            store::set_published(&tx, &store::Target::All, true)
                .await
                .with_context(|| format!("tenant {}: publish", t.slug))?;
            imported += 1;
        }
        tx.commit().await.with_context(|| format!("tenant {}", t.slug))?;
    }
    Ok((changed, imported))
}

fn check_port_free(port: u16) -> anyhow::Result<()> {
    if let Err(e) = std::net::TcpListener::bind(("127.0.0.1", port)) {
        bail!("port {port} on 127.0.0.1 is not free ({e}); choose another with --port");
    }
    Ok(())
}

/// Start `portalctl serve` in the background; returns its pid.
fn start_server(
    ctx: &Context,
    args: &UpArgs,
    state: &Path,
    tenants_dir: &Path,
    secrets: &Path,
    url: &str,
) -> anyhow::Result<u32> {
    use std::os::unix::process::CommandExt as _;
    let listen = format!("127.0.0.1:{}", args.port);
    let ops_listen = format!("127.0.0.1:{}", args.ops_port);
    check_port_free(args.port)?;
    check_port_free(args.ops_port)?;
    let log_path = state.join(LOG_FILE);
    let log = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(&log_path)
        .with_context(|| format!("cannot open {}", log_path.display()))?;
    let exe = std::env::current_exe().context("cannot find the portalctl binary")?;
    let child = Command::new(exe)
        .arg("--tenants")
        .arg(tenants_dir)
        .args(["serve", "--listen", &listen, "--ops-listen", &ops_listen])
        .args(["--local-hostnames", "--insecure-http-cookies", "--secrets-dir"])
        .arg(secrets)
        // Through the environment, so that a password never shows in the process list.
        .env("DATABASE_URL", url)
        .stdin(Stdio::null())
        .stdout(log.try_clone()?)
        .stderr(log)
        // Its own process group: a Ctrl-C in this terminal does not reach it.
        .process_group(0)
        .spawn()
        .context("cannot start the portal server")?;
    let pid = child.id();
    std::fs::write(state.join(PID_FILE), format!("{pid}\n"))?;
    ctx.info(format!("portal server started (pid {pid}, log {})", log_path.display()));
    Ok(pid)
}

/// Wait until the operations listener on `ops_port` says ready.
async fn wait_ready(ops_port: u16, pid: u32, state: &Path, timeout: Duration) -> anyhow::Result<()> {
    let http = reqwest::Client::builder().timeout(Duration::from_secs(2)).build()?;
    let url = format!("http://127.0.0.1:{ops_port}/readyz");
    let start = Instant::now();
    loop {
        if let Ok(r) = http.get(&url).send().await {
            if r.status().is_success() {
                return Ok(());
            }
        }
        if !serve_alive(pid) {
            bail!("the portal server exited; see {}", state.join(LOG_FILE).display());
        }
        if start.elapsed() > timeout {
            bail!("the portal server did not become ready within {timeout:?}; see {}", state.join(LOG_FILE).display());
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// Ask every tenant's local URL for its home page, and the operations listener which tenant
/// that URL is.
async fn identities(tenants: &[Tenant], port: u16, ops_port: u16) -> Vec<Row> {
    use futures::StreamExt as _;
    let http = reqwest::Client::builder().timeout(Duration::from_secs(5)).build().expect("static client");
    let home = format!("http://127.0.0.1:{port}/");
    let url = format!("http://127.0.0.1:{ops_port}{}", crate::portal::ops::IDENTITY_PATH);
    futures::stream::iter(tenants)
        .map(|t| {
            let (http, home, url) = (http.clone(), home.clone(), url.clone());
            async move {
                let host = format!("{}.localhost:{port}", t.slug);
                let answers = http.get(&home).header("host", &host).send().await.is_ok_and(|r| r.status().is_success());
                let id: Option<serde_json::Value> = match http.get(&url).query(&[("host", &host)]).send().await {
                    Ok(r) if r.status().is_success() => r.json().await.ok(),
                    _ => None,
                };
                let serving = answers && id.as_ref().and_then(|v| v["tenant"].as_str()) == Some(t.slug.as_str());
                Row {
                    tenant: t.slug.clone(),
                    group: t.group.clone(),
                    display_name: t.display_name.clone(),
                    url: format!("http://{host}/"),
                    hostname: t.primary_hostname().to_string(),
                    services: id.as_ref().and_then(|v| v["published"]["services"].as_u64()),
                    serving,
                }
            }
        })
        .buffered(8)
        .collect()
        .await
}

fn print_summary(ctx: &Context, s: &Summary) -> anyhow::Result<Exit> {
    let serving = s.tenants.iter().filter(|r| r.serving).count();
    match ctx.output {
        OutputFormat::Table => {
            let mut t = table(&["tenant", "group", "name", "local URL", "services", "serving"]);
            for r in &s.tenants {
                t.add_row(vec![
                    r.tenant.clone(),
                    r.group.clone(),
                    r.display_name.clone(),
                    r.url.clone(),
                    r.services.map_or("-".into(), |n| n.to_string()),
                    if r.serving { "yes".into() } else { "NO".into() },
                ]);
            }
            print!("{}", render_table(&t));
        }
        f => print_structured(s, f)?,
    }
    ctx.info(format!(
        "{serving} of {} portals running at http://<tenant>.localhost:{} ({}; state in {}); stop with `portalctl down`",
        s.tenants.len(),
        s.port,
        s.database,
        s.state_dir
    ));
    Ok(if serving == s.tenants.len() { Exit::Success } else { Exit::Failure })
}

pub fn down(ctx: &Context, args: &DownArgs) -> anyhow::Result<Exit> {
    let state = abs(&args.state_dir)?;
    let mut stopped = Vec::new();
    if let Some(pid) = read_pid(&state) {
        if serve_alive(pid) {
            let status = Command::new("kill").args(["-TERM", &pid.to_string()]).status().context("cannot run kill")?;
            if !status.success() {
                bail!("cannot stop the portal server (pid {pid})");
            }
            let start = Instant::now();
            while serve_alive(pid) {
                if start.elapsed() > Duration::from_secs(30) {
                    bail!("the portal server (pid {pid}) did not stop within 30 s");
                }
                std::thread::sleep(Duration::from_millis(100));
            }
            stopped.push(format!("portal server (pid {pid})"));
        }
        let _ = std::fs::remove_file(state.join(PID_FILE));
    }
    let pg_dir = state.join("postgres");
    if pg_dir.join("data").join("PG_VERSION").is_file() {
        // The port `up` recorded, where it ran with another --db-port.
        let db_port = local::LocalState::read(&state).ok().flatten().and_then(|s| s.db_port).unwrap_or(args.db_port);
        let pg = LocalPostgres::new(&state, db_port)?;
        if pg.stop().context("cannot stop the private PostgreSQL")? {
            stopped.push("PostgreSQL".to_string());
        }
    }
    if stopped.is_empty() {
        ctx.info(format!("nothing is running (state in {})", state.display()));
    } else {
        ctx.info(format!("stopped {}; data kept in {}", stopped.join(" and "), state.display()));
    }
    Ok(Exit::Success)
}
