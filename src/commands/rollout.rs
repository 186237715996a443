//! `portalctl rollout`: provision, apply and verify a group wave by wave; `rollout pause|resume`.

use super::kube::{ClusterArgs, PlatformArgs};
use super::Context;
use crate::cli::{DbConnArgs, SecretsArgs};
use crate::cluster::{self, ApplyMode, Cluster};
use crate::db::{self, TenantDb};
use crate::exit_codes::Exit;
use crate::output::{print_structured, render_table, table, OutputFormat};
use crate::render::{DesiredState, Object, ObjectKey};
use crate::rollout::{self, Event, Executor, Halt, Options, Outcome};
use crate::status::Check;
use crate::tenant::{Group, Tenant};
use anyhow::{bail, Context as _};
use clap::{Args, Subcommand};
use k8s_openapi::api::core::v1::ConfigMap;
use kube::api::{Api, Patch, PatchParams};
use std::collections::BTreeMap;
use std::time::{Duration, Instant};
use tokio::sync::OnceCell;

/// Name of the ConfigMap holding a group's rollout flags (in the group's namespace).
pub const ROLLOUT_CONFIGMAP: &str = "portalctl-rollout";

#[derive(Debug, Args)]
#[command(args_conflicts_with_subcommands = true)]
pub struct RolloutArgs {
    #[command(subcommand)]
    pub command: Option<RolloutCommand>,
    #[command(flatten)]
    pub run: RunArgs,
}

#[derive(Debug, Subcommand)]
pub enum RolloutCommand {
    /// Hold the group between waves: running and later rollouts (CI too) stop before the next wave.
    Pause(FlagArgs),
    /// Let a paused group continue.
    Resume(FlagArgs),
}

#[derive(Debug, Args)]
pub struct FlagArgs {
    /// The rollout group.
    #[arg(long, short = 'g')]
    pub group: String,
    #[command(flatten)]
    pub cluster: ClusterArgs,
}

#[derive(Debug, Args)]
pub struct RunArgs {
    /// The rollout group to roll out.
    #[arg(long, short = 'g')]
    pub group: Option<String>,
    /// Only this wave (earlier waves still gate it).
    #[arg(long, short = 'w')]
    pub wave: Option<String>,
    /// Tenants worked on at once within a wave.
    #[arg(long, default_value_t = 4, value_name = "N", alias = "parallel")]
    pub concurrency: usize,
    /// API requests in flight at once while applying one tenant's objects.
    #[arg(long, default_value_t = 8, value_name = "N")]
    pub api_concurrency: usize,
    /// Stop starting new tenants once more than K failed (those in flight finish).
    #[arg(long, default_value_t = 0, value_name = "K")]
    pub max_failures: usize,
    /// Open every gate (roll the next wave out even if an earlier one is not healthy).
    #[arg(long)]
    pub force: bool,
    /// Show the plan (waves and tenants in order) and change nothing.
    #[arg(long)]
    pub dry_run: bool,
    /// How long to wait for one tenant to become ready.
    #[arg(long, default_value = "5m", value_parser = super::kube::parse_duration, value_name = "DURATION")]
    pub timeout: Duration,
    /// Leave the databases alone (they are provisioned by other means).
    #[arg(long)]
    pub no_db: bool,
    #[command(flatten)]
    pub db: DbConnArgs,
    #[command(flatten)]
    pub secrets: SecretsArgs,
    #[command(flatten)]
    pub cluster: ClusterArgs,
    #[command(flatten)]
    pub platform: PlatformArgs,
}

pub fn run(ctx: &Context, args: RolloutArgs) -> anyhow::Result<Exit> {
    let rt = tokio::runtime::Builder::new_multi_thread().enable_all().build()?;
    match args.command {
        Some(RolloutCommand::Pause(f)) => rt.block_on(set_paused(ctx, &f, true)),
        Some(RolloutCommand::Resume(f)) => rt.block_on(set_paused(ctx, &f, false)),
        None => rt.block_on(run_rollout(ctx, &args.run)),
    }
}

async fn set_paused(ctx: &Context, f: &FlagArgs, paused: bool) -> anyhow::Result<Exit> {
    let catalog = ctx.catalog()?;
    let group = catalog.group(&f.group).with_context(|| format!("no rollout group {:?}", f.group))?;
    let cluster = connect(&f.cluster, group).await?;
    write_flag(&cluster, group, paused).await?;
    if ctx.output != OutputFormat::Table {
        print_structured(&serde_json::json!({"group": group.name, "paused": paused}), ctx.output)?;
    }
    ctx.info(format!(
        "group {} {}",
        group.name,
        if paused { "paused: rollouts stop before the next wave" } else { "resumed" }
    ));
    Ok(Exit::Success)
}

/// The group's cluster. Where no kubeconfig is found but `portalctl up` runs the local mode here,
/// the error says so: the local mode has no cluster to roll out to, and `up` is what brings it up
/// to date (still exit 3: the cause stays the missing cluster).
async fn connect(args: &ClusterArgs, group: &Group) -> anyhow::Result<Cluster> {
    match super::kube::connect(args, group).await {
        Err(e) if is_no_config(&e) => {
            let dir = std::path::Path::new(super::status::DEFAULT_STATE_DIR);
            match crate::local::LocalState::read(dir) {
                Ok(Some(_)) => Err(e.context(format!(
                    "local mode ({}, started by `portalctl up`): there is no cluster to roll out to; run \
                     `portalctl up` again to bring the local portals up to date with the tenant files (`portalctl \
                     status` shows them), or give rollout a cluster",
                    dir.display()
                ))),
                _ => Err(e),
            }
        }
        other => other,
    }
}

fn is_no_config(e: &anyhow::Error) -> bool {
    matches!(e.downcast_ref::<cluster::Error>(), Some(cluster::Error::NoConfig { .. }))
}

async fn write_flag(cluster: &Cluster, group: &Group, paused: bool) -> anyhow::Result<()> {
    let api: Api<ConfigMap> = Api::namespaced(cluster.client.clone(), &group.namespace);
    let cm = serde_json::json!({
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {
            "name": ROLLOUT_CONFIGMAP,
            "labels": crate::render::common_labels(&group.name, &crate::render::image_version(&group.image), "rollout"),
        },
        "data": { "paused": if paused { "true" } else { "false" } },
    });
    api.patch(ROLLOUT_CONFIGMAP, &PatchParams::apply(cluster::FIELD_MANAGER), &Patch::Apply(&cm))
        .await
        .with_context(|| format!("writing {}/{ROLLOUT_CONFIGMAP}", group.namespace))?;
    Ok(())
}

async fn read_flag(cluster: &Cluster, group: &Group) -> Result<bool, String> {
    let api: Api<ConfigMap> = Api::namespaced(cluster.client.clone(), &group.namespace);
    match api.get_opt(ROLLOUT_CONFIGMAP).await {
        Ok(None) => Ok(false),
        Ok(Some(cm)) => Ok(cm.data.and_then(|d| d.get("paused").cloned()).as_deref() == Some("true")),
        Err(kube::Error::Api(s)) if s.code == 404 => Ok(false),
        Err(e) => Err(cluster::describe(&e)),
    }
}

/// The real executor: PostgreSQL for provisioning, the cluster for apply and verify.
struct Real {
    cluster: Cluster,
    state: DesiredState,
    secrets: BTreeMap<ObjectKey, Vec<u8>>,
    db: Option<(db::connect::Resolved, db::credentials::Store)>,
    /// Database connections between tenants (at most one per tenant in flight), so that a rollout connects
    /// `--concurrency` times, not once per tenant.
    idle: std::sync::Mutex<Vec<tokio_postgres::Client>>,
    shared_db: OnceCell<Result<(), String>>,
    platform: OnceCell<Result<(), String>>,
    /// Reads readiness for all tenants waiting at once.
    poller: cluster::wait::Poller,
    timeout: Duration,
    concurrency: usize,
}

impl Real {
    async fn apply_objects(&self, objects: Vec<&Object>) -> Result<(), String> {
        let mode = ApplyMode { dry_run: false, force_conflicts: false };
        let failures = self.cluster.apply_all(&objects, &self.secrets, mode, self.concurrency, &|_, _| {}).await;
        match failures.into_iter().next() {
            Some((key, e)) => Err(format!("{key}: {e}")),
            None => Ok(()),
        }
    }

    /// The objects a tenant needs to be ready: its Ingress (and Certificate) and the Deployment serving it.
    fn readiness_of(&self, t: &Tenant) -> Vec<ObjectKey> {
        let serving = crate::render::server_name(t);
        let objects: Vec<&Object> = self
            .state
            .objects
            .iter()
            .filter(|o| {
                o.tenant() == Some(t.slug.as_str()) || (matches!(o, Object::Deployment(_)) && o.key().name == serving)
            })
            .collect();
        cluster::wait::readiness_checks(&objects)
    }

    /// Readiness now, from a round of the shared poller that started after this call (one LIST per kind for all
    /// tenants waiting at the time, not a GET per object).
    async fn check_now(&self, t: &Tenant) -> Check {
        let keys = self.readiness_of(t);
        let snap = match self.poller.read(&keys, Instant::now()).await {
            Ok(s) => s,
            Err(e) => return Check::Unknown(format!("cluster: {e}")),
        };
        match keys.iter().find(|k| !snap.ready(k)) {
            None => Check::Pass,
            Some(key) => Check::Fail(match snap.get(key) {
                None => format!("cluster: {key} does not exist"),
                Some(_) => format!("cluster: {key} not ready"),
            }),
        }
    }
}

impl Executor for Real {
    async fn provision(&self, t: &Tenant) -> Result<(), String> {
        let Some((conn, store)) = &self.db else { return Ok(()) };
        let idle = self.idle.lock().unwrap().pop().filter(|c| !c.is_closed());
        let client = match idle {
            Some(c) => c,
            None => conn.connect().await.map_err(|e| format!("database: {e}"))?,
        };
        let tdb = TenantDb::from_tenant(t).map_err(|e| e.to_string())?;
        self.shared_db
            .get_or_init(|| async {
                db::provision::ensure_shared(&client).await.map_err(|e| format!("database: {e}"))?;
                let key = db::provision::group_key(&tdb);
                db::provision::ensure_group_role(&client, &t.group, &key, store, conn)
                    .await
                    .map_err(|e| format!("database: {e}"))?;
                Ok(())
            })
            .await
            .clone()?;
        db::provision::provision_tenant(&client, &tdb, store, conn).await.map_err(|e| format!("database: {e}"))?;
        db::migrations::migrate(&client, &tdb.schema).await.map_err(|e| format!("database: {e}"))?;
        // Only a connection whose work succeeded goes back (a failed one may be mid-transaction).
        self.idle.lock().unwrap().push(client);
        Ok(())
    }

    async fn apply(&self, t: &Tenant) -> Result<(), String> {
        self.platform
            .get_or_init(|| async {
                let shared: Vec<&Object> = self.state.objects.iter().filter(|o| o.tenant().is_none()).collect();
                self.apply_objects(shared).await
            })
            .await
            .clone()?;
        self.apply_objects(self.state.of_tenant(&t.slug).collect()).await
    }

    async fn verify(&self, t: &Tenant) -> Check {
        // The poller paces the rounds (`POLL_INTERVAL`); no pause of its own between checks.
        rollout::wait_for(self.timeout, Duration::ZERO, || self.check_now(t)).await
    }

    async fn paused(&self, group: &Group) -> Result<bool, String> {
        read_flag(&self.cluster, group).await
    }
}

async fn run_rollout(ctx: &Context, args: &RunArgs) -> anyhow::Result<Exit> {
    let catalog = ctx.catalog()?;
    let Some(group_name) = &args.group else { bail!("which group? pass --group (see `portalctl group list`)") };
    let group = catalog.group(group_name).with_context(|| format!("no rollout group {group_name:?}"))?;
    if let Some(w) = &args.wave {
        if group.wave_index(w).is_none() {
            bail!("group {} has no wave {w:?}", group.name);
        }
    }
    let tenants: Vec<&Tenant> = catalog.tenants_of(&group.name).collect();
    let plan = rollout::plan(group, &tenants);
    if args.dry_run {
        let rows: Vec<serde_json::Value> = plan
            .iter()
            .filter(|(w, _)| args.wave.as_ref().is_none_or(|x| x == w))
            .map(|(w, ts)| serde_json::json!({"wave": w, "tenants": ts.iter().map(|t| &t.slug).collect::<Vec<_>>()}))
            .collect();
        if ctx.output == OutputFormat::Table {
            for (i, r) in rows.iter().enumerate() {
                let ts = r["tenants"].as_array().map(|a| a.len()).unwrap_or(0);
                println!("wave {} {}: {ts} tenant(s)", i + 1, r["wave"].as_str().unwrap_or(""));
                for t in r["tenants"].as_array().into_iter().flatten() {
                    println!("  provision, apply, verify {}", t.as_str().unwrap_or(""));
                }
            }
        } else {
            print_structured(&rows, ctx.output)?;
        }
        return Ok(Exit::Success);
    }
    // The cluster first: without one (the local mode, say) the database flags do not matter.
    let cluster = match connect(&args.cluster, group).await {
        Ok(c) => c,
        Err(e) => {
            eprintln!("{} {e:#}", console::style("error:").for_stderr().red().bold());
            return Ok(Exit::Unavailable);
        }
    };
    let db = if args.no_db {
        None
    } else {
        let conn = match super::db::resolve(&args.db) {
            Ok(c) => c,
            Err(code) => {
                eprintln!("hint: pass --no-db when the databases are provisioned by other means");
                return Ok(code);
            }
        };
        Some((conn, super::db::store(&args.secrets, &args.cluster)))
    };
    let state = crate::render::render(group, &tenants, &args.platform.options());
    let all: Vec<&Object> = state.objects.iter().collect();
    let secrets = super::kube::resolve_secrets(&all)?;
    let poller = cluster::wait::Poller::new(
        cluster.clone(),
        format!("{}={}", crate::render::GROUP_LABEL, group.name),
        cluster::wait::POLL_INTERVAL,
    );
    let exec = Real {
        cluster,
        poller,
        state,
        secrets,
        db,
        idle: Default::default(),
        shared_db: OnceCell::new(),
        platform: OnceCell::new(),
        timeout: args.timeout,
        concurrency: args.api_concurrency,
    };
    let opts = Options {
        concurrency: args.concurrency,
        max_failures: args.max_failures,
        only_wave: args.wave.clone(),
        force: args.force,
    };
    let progress = Progress::new(ctx.quiet);
    let report = rollout::run(&exec, group, &tenants, &opts, &|e| progress.event(e)).await;
    progress.finish();
    match ctx.output {
        OutputFormat::Table => {
            let mut t = table(&["tenant", "wave", "result", "seconds"]);
            for r in &report.results {
                let result = match &r.outcome {
                    Outcome::Done => "done".to_string(),
                    Outcome::Failed { step, error } => format!("failed at {}: {error}", step.as_str()),
                    Outcome::NotStarted { reason } => format!("not started: {reason}"),
                };
                t.add_row(vec![r.tenant.clone(), r.wave.clone(), result, format!("{:.1}", r.seconds)]);
            }
            print!("{}", render_table(&t));
        }
        _ => print_structured(&report, ctx.output)?,
    }
    match &report.halted {
        Some(Halt::Paused) => {
            eprintln!("rollout of {} is paused (portalctl rollout resume --group {})", group.name, group.name)
        }
        Some(Halt::Gate { wave, reasons, .. }) => {
            eprintln!("wave {wave} held: earlier waves are not healthy yet:");
            for r in reasons {
                eprintln!("  {r}");
            }
            eprintln!("fix them and run again, or open the gate with --force");
        }
        Some(Halt::FailureBudget { failed, allowed }) => {
            eprintln!("stopped: {failed} tenant(s) failed, --max-failures allows {allowed}")
        }
        None => {}
    }
    let b = &report.breakdown;
    ctx.info(format!(
        "rollout {}: {} done, {} failed, {} reported in {:.1} s (provisioning or applying {:.1} s, only waiting {:.1} s)",
        group.name,
        report.done(),
        report.failed(),
        report.results.len(),
        report.seconds,
        b.working,
        b.waiting
    ));
    Ok(if report.success() { Exit::Success } else { Exit::Failure })
}

/// Progress: a bar per wave and a line per tenant in flight on a terminal; plain lines otherwise.
struct Progress {
    multi: Option<indicatif::MultiProgress>,
    bars: std::sync::Mutex<BTreeMap<String, indicatif::ProgressBar>>,
    wave: std::sync::Mutex<Option<indicatif::ProgressBar>>,
    quiet: bool,
}

impl Progress {
    fn new(quiet: bool) -> Progress {
        let tty = console::Term::stderr().is_term() && !quiet;
        Progress {
            multi: tty.then(indicatif::MultiProgress::new),
            bars: Default::default(),
            wave: Default::default(),
            quiet,
        }
    }

    fn line(&self, s: String) {
        if self.quiet {
            return;
        }
        match &self.multi {
            Some(m) => {
                let _ = m.println(s);
            }
            None => eprintln!("{s}"),
        }
    }

    fn event(&self, e: Event) {
        match e {
            Event::WaveStarted { wave, tenants } => {
                if let Some(m) = &self.multi {
                    let pb = m.add(indicatif::ProgressBar::new(tenants as u64));
                    pb.set_style(
                        indicatif::ProgressStyle::with_template("wave {prefix:10} [{bar:30}] {pos}/{len} {elapsed}")
                            .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar()),
                    );
                    pb.set_prefix(wave.to_string());
                    *self.wave.lock().unwrap() = Some(pb);
                }
                self.line(format!("wave {wave}: {tenants} tenant(s)"));
            }
            Event::GateChecked { wave, open } => {
                self.line(format!("gate before wave {wave}: {}", if open { "open" } else { "held" }))
            }
            Event::TenantStarted { tenant } => {
                if let Some(m) = &self.multi {
                    let pb = m.add(indicatif::ProgressBar::new_spinner());
                    pb.enable_steady_tick(Duration::from_millis(120));
                    pb.set_message(format!("{tenant}: starting"));
                    self.bars.lock().unwrap().insert(tenant.to_string(), pb);
                }
            }
            Event::StepStarted { tenant, step } => {
                if let Some(pb) = self.bars.lock().unwrap().get(tenant) {
                    pb.set_message(format!("{tenant}: {}", step.as_str()));
                }
            }
            Event::TenantFinished { result } => {
                if let Some(pb) = self.bars.lock().unwrap().remove(&result.tenant) {
                    pb.finish_and_clear();
                }
                if let Some(pb) = self.wave.lock().unwrap().as_ref() {
                    pb.inc(1);
                }
                let what = match &result.outcome {
                    Outcome::Done => "done".to_string(),
                    Outcome::Failed { step, error } => format!("FAILED at {}: {error}", step.as_str()),
                    Outcome::NotStarted { reason } => format!("not started ({reason})"),
                };
                self.line(format!("  {} {what} ({:.1} s)", result.tenant, result.seconds));
            }
            Event::WaveFinished { wave } => {
                if let Some(pb) = self.wave.lock().unwrap().take() {
                    pb.finish();
                }
                self.line(format!("wave {wave} finished"));
            }
        }
    }

    fn finish(&self) {
        if let Some(m) = &self.multi {
            let _ = m.clear();
        }
    }
}
