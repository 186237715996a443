//! `portalctl status`: where every tenant stands on the go-live ladder, per tenant and in sum.

use super::kube::ClusterArgs;
use super::{select, Context};
use crate::cli::{DbConnArgs, Selector};
use crate::cluster::{self, wait::is_ready, Cluster};
use crate::exit_codes::Exit;
use crate::local::LocalState;
use crate::output::{render_table, table, OutputFormat};
use crate::render::{server_name, tls_secret_name, ObjectKey, GROUP_LABEL};
use crate::status::image::GroupImage;
use crate::status::probe::{self, ClusterFacts, PortalAccess, SourceProblem, Sources};
use crate::status::report::{self, HistoryEntry};
use crate::status::{assess, summarize, Check, GroupSummary, Mode, Phase, TenantStatus};
use crate::tenant::{Catalog, Group, Tenant};
use anyhow::bail;
use clap::Args;
use kube::api::DynamicObject;
use serde::Serialize;
use std::collections::HashMap;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

#[derive(Debug, Args)]
pub struct StatusArgs {
    #[command(flatten)]
    pub selector: Selector,
    /// Do not ask the cluster (deployed and everything above it become unknown).
    #[arg(long)]
    pub no_cluster: bool,
    #[command(flatten)]
    pub cluster: ClusterArgs,
    #[command(flatten)]
    pub db: DbConnArgs,
    /// Name server for the DNS checks, IP:PORT (repeatable; default: the system resolver).
    #[arg(long, value_name = "IP:PORT")]
    pub nameserver: Vec<SocketAddr>,
    /// Where hostnames must point when the cluster does not say: the ingress IP or host name.
    #[arg(long, value_name = "IP|HOST")]
    pub ingress: Option<String>,
    /// Check portals over plain HTTP at this address with each tenant's Host header, instead of
    /// https://<hostname> (local mode, tests).
    #[arg(long, value_name = "IP:PORT")]
    pub portal_address: Option<SocketAddr>,
    /// The portal server's operations listener, where each hostname's identity is asked (never
    /// public; in a cluster e.g. `kubectl -n portal-<group> port-forward svc/portal 9090:ops` and
    /// 127.0.0.1:9090). Without it `reachable` stays unknown.
    #[arg(long, value_name = "HOST:PORT")]
    pub ops_address: Option<String>,
    /// DNS and HTTP checks in flight at once.
    #[arg(long, default_value_t = 16, value_name = "N")]
    pub concurrency: usize,
    /// Timeout of each HTTP and DNS check.
    #[arg(long, default_value = "5s", value_parser = super::kube::parse_duration, value_name = "DURATION")]
    pub check_timeout: Duration,
    /// Refresh the table in place every interval until interrupted.
    #[arg(long, value_name = "DURATION", num_args = 0..=1, default_missing_value = "5s", value_parser = super::kube::parse_duration)]
    pub watch: Option<Duration>,
    /// Print how long each source took to stderr (to find what makes a status slow).
    #[arg(long)]
    pub timings: bool,
    /// Write the report (-o markdown|html) to this file instead of stdout.
    #[arg(long, value_name = "FILE")]
    pub out: Option<PathBuf>,
    /// Ask the local mode that `portalctl up` runs from this state directory (its database and
    /// portal server). Without any of --state-dir, --database-url, --portal-address, --ops-address,
    /// --no-cluster and --kubeconfig, `status` uses the local mode of `.portalctl` if `up` ran here.
    #[arg(long, value_name = "DIR")]
    pub state_dir: Option<PathBuf>,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct StatusDoc<'a> {
    /// `cluster` or `local`.
    mode: Mode,
    groups: &'a [GroupSummary],
    tenants: &'a [TenantStatus],
    /// Sources that could not be asked (each once); the exit code is then 3.
    problems: &'a [SourceProblem],
}

/// The default state directory of `portalctl up`.
pub(crate) const DEFAULT_STATE_DIR: &str = ".portalctl";

/// The local mode to ask, if any: named by `--state-dir`, or found in `.portalctl` when nothing
/// else says where to look.
fn local_mode(args: &StatusArgs) -> anyhow::Result<Option<(PathBuf, LocalState)>> {
    let (dir, explicit) = match &args.state_dir {
        Some(d) => (d.clone(), true),
        None => {
            let elsewhere = args.db.database_url.as_deref().is_some_and(|u| !u.is_empty())
                || args.portal_address.is_some()
                || args.ops_address.is_some()
                || args.no_cluster
                || args.cluster.kubeconfig.is_some();
            if elsewhere {
                return Ok(None);
            }
            (PathBuf::from(DEFAULT_STATE_DIR), false)
        }
    };
    match LocalState::read(&dir)? {
        Some(state) => Ok(Some((dir, state))),
        None if explicit => bail!(
            "{} holds no local mode (no {}): run `portalctl up --state-dir {}` first, or leave out --state-dir to \
             ask a cluster",
            dir.display(),
            crate::local::STATE_FILE,
            dir.display()
        ),
        None => Ok(None),
    }
}

pub fn run(ctx: &Context, args: &StatusArgs) -> anyhow::Result<Exit> {
    let rt = tokio::runtime::Builder::new_multi_thread().enable_all().build()?;
    loop {
        let (code, text) = rt.block_on(once(ctx, args))?;
        match args.watch {
            None => {
                crate::output::emit(args.out.as_deref(), &text)?;
                return Ok(code);
            }
            Some(every) => {
                let term = console::Term::stdout();
                let _ = term.clear_screen();
                print!("{text}");
                std::thread::sleep(every);
            }
        }
    }
}

async fn once(ctx: &Context, args: &StatusArgs) -> anyhow::Result<(Exit, String)> {
    // When each part ended, for --timings.
    let mut marks = vec![("", std::time::Instant::now())];
    let catalog = ctx.catalog()?;
    let tenants = select(&catalog, &args.selector)?;
    let local = local_mode(args)?;
    let db_opts = match (&local, args.db.database_url.as_deref().filter(|u| !u.is_empty())) {
        (Some((dir, state)), _) => {
            let mut opts = super::db::connect_options(&args.db, &state.database_url(dir)?);
            if state.db_port.is_some() {
                opts.sslmode = Some(crate::db::SslMode::Disable);
            }
            Some(opts)
        }
        (None, None) => None,
        (None, Some(url)) => {
            super::db::resolve(&args.db).map_err(|_| anyhow::anyhow!("invalid --database-url"))?;
            Some(super::db::connect_options(&args.db, url))
        }
    };
    let sources = Sources {
        db: db_opts.clone(),
        nameservers: args.nameserver.clone(),
        ingress: args.ingress.as_deref().map(crate::dns::Target::parse).transpose()?,
        portal: match (&local, args.portal_address) {
            (Some((_, state)), _) => PortalAccess::Local(([127, 0, 0, 1], state.port).into()),
            (None, Some(a)) => PortalAccess::Direct(a),
            (None, None) => PortalAccess::Https,
        },
        ops: match &local {
            Some((_, state)) => Some(format!("127.0.0.1:{}", state.ops_port)),
            None => args.ops_address.clone(),
        },
        timeout: args.check_timeout,
        concurrency: args.concurrency,
    };
    let mode = if local.is_some() { Mode::Local } else { Mode::Cluster };
    // The cluster: one LIST per kind and group.
    marks.push(("tenant files", std::time::Instant::now()));
    let mut facts: HashMap<String, ClusterFacts> = HashMap::new();
    let mut images: HashMap<String, GroupImage> = HashMap::new();
    let mut cluster_problem: Option<String> = None;
    let mut problems: Vec<SourceProblem> = Vec::new();
    if local.is_some() {
        // No cluster in local mode: the local server stands in for `deployed`.
    } else if args.no_cluster {
        cluster_problem = Some("cluster: not asked (--no-cluster)".into());
    } else {
        for group in groups_of(&catalog, &tenants) {
            let failed = match super::kube::connect(&args.cluster, group).await {
                Err(e) => Some(format!("{e:#}")),
                Ok(cluster) => match group_facts(&cluster, group, &tenants).await {
                    Ok((f, image)) => {
                        facts.extend(f);
                        images.extend(image.map(|i| (group.name.clone(), i)));
                        None
                    }
                    Err(e) => Some(e.to_string()),
                },
            };
            if let Some(e) = failed {
                cluster_problem = Some("cluster: unreachable".into());
                let message = format!("group {}: {e}", group.name);
                if !problems.iter().any(|p| p.message == message) {
                    problems.push(SourceProblem { source: "cluster", message });
                }
            }
        }
    }
    marks.push(("cluster (one LIST per kind)", std::time::Instant::now()));
    let (observations, observed) = probe::observe(&tenants, &sources, Some(&facts), cluster_problem.as_deref()).await;
    marks.push(("database, DNS and portals", std::time::Instant::now()));
    for mut p in observed.problems.iter().cloned() {
        if let (Some((dir, LocalState { db_port: Some(port), .. })), "database") = (&local, p.source) {
            p.message = format!(
                "the local PostgreSQL on 127.0.0.1:{port} does not answer ({}); start the local mode with \
                 `portalctl up --state-dir {}`",
                p.message,
                dir.display()
            );
        }
        problems.push(p);
    }
    let statuses: Vec<TenantStatus> = tenants.iter().zip(observations).map(|(t, o)| assess(t, o)).collect();
    let mut summaries = summarize(&catalog, &statuses);
    for g in &mut summaries {
        g.image = images.remove(&g.group);
    }
    let db_reached = !problems.iter().any(|p| p.source == "database");
    let history: Vec<HistoryEntry> = match &db_opts {
        Some(opts) if db_reached => probe::record_history(opts, &statuses).await.unwrap_or_else(|e| {
            ctx.warn(format!("phase history not recorded: {e}"));
            Vec::new()
        }),
        _ => Vec::new(),
    };
    marks.push(("phase history", std::time::Instant::now()));
    if args.timings {
        for w in marks.windows(2) {
            eprintln!("timing: {:<28} {:>8.1} ms", w[1].0, (w[1].1 - w[0].1).as_secs_f64() * 1e3);
        }
        eprintln!("timing:   of which database        {:>8.1} ms", observed.database.as_secs_f64() * 1e3);
        eprintln!("timing:   of which DNS and portals {:>8.1} ms", observed.dns_and_portal.as_secs_f64() * 1e3);
        eprintln!(
            "timing: {:<28} {:>8.1} ms ({} tenants)",
            "total",
            marks[0].1.elapsed().as_secs_f64() * 1e3,
            tenants.len()
        );
    }
    // Each source that could not be asked, once (not once per tenant).
    for p in &problems {
        ctx.error(format!("{}: {}", p.source, p.message));
    }
    let text = match ctx.output {
        OutputFormat::Table => table_text(&summaries, &statuses),
        OutputFormat::Markdown => report::markdown(&summaries, &statuses),
        OutputFormat::Html => report::html(&summaries, &statuses, &history, time::OffsetDateTime::now_utc())?,
        OutputFormat::Json | OutputFormat::Yaml | OutputFormat::Csv => crate::output::to_text(
            &StatusDoc { mode, groups: &summaries, tenants: &statuses, problems: &problems },
            ctx.output,
        )?,
    };
    let all_live = statuses.iter().all(|s| s.phase == Phase::Live);
    let code = if !problems.is_empty() {
        Exit::Unavailable
    } else if all_live {
        Exit::Success
    } else {
        Exit::Failure
    };
    Ok((code, text))
}

fn groups_of<'a>(catalog: &'a Catalog, tenants: &[&Tenant]) -> Vec<&'a Group> {
    catalog.groups.iter().filter(|g| tenants.iter().any(|t| t.group == g.name)).collect()
}

fn by_name(objs: Vec<DynamicObject>) -> HashMap<String, DynamicObject> {
    objs.into_iter().map(|o| (o.metadata.name.clone().unwrap_or_default(), o)).collect()
}

/// What the cluster says about each tenant of a group, and which image the group runs: one LIST per
/// kind.
async fn group_facts(
    cluster: &Cluster,
    group: &Group,
    tenants: &[&Tenant],
) -> Result<(HashMap<String, ClusterFacts>, Option<GroupImage>), cluster::Error> {
    let ns = &group.namespace;
    let selector = format!("{GROUP_LABEL}={}", group.name);
    let kind = |api_version, kind| cluster::kind_key(api_version, kind);
    let deployments = by_name(cluster.list_objects(&kind("apps/v1", "Deployment"), ns, &selector).await?);
    let ingresses = by_name(cluster.list_objects(&kind("networking.k8s.io/v1", "Ingress"), ns, &selector).await?);
    let configmaps = by_name(cluster.list_objects(&kind("v1", "ConfigMap"), ns, &selector).await?);
    // The pods of the group's Deployments say which image the replicas run; a role that may not
    // list pods still learns what the Deployments ask for.
    let pods = match cluster.list_objects(&kind("v1", "Pod"), ns, &selector).await {
        Ok(pods) => pods,
        Err(cluster::Error::Api { code: Some(403), .. }) => Vec::new(),
        Err(e) => return Err(e),
    };
    let as_json = |objs: &mut dyn Iterator<Item = &DynamicObject>| -> Vec<serde_json::Value> {
        objs.filter_map(|o| serde_json::to_value(o).ok()).collect()
    };
    let image = GroupImage::observe(&as_json(&mut deployments.values()), &as_json(&mut pods.iter()));
    // Certificates are created by cert-manager (not labelled by us); without cert-manager the kind does not exist
    // (404) and there is nothing to check.
    let certificates = match cluster.list_objects(&kind("cert-manager.io/v1", "Certificate"), ns, "").await {
        Ok(list) => Some(by_name(list)),
        Err(cluster::Error::Api { code: Some(404), .. }) => None,
        Err(e) => return Err(e),
    };
    let key = |kind: &'static str, api: &'static str, name: &str| ObjectKey {
        api_version: api,
        kind,
        namespace: Some(ns.clone()),
        name: name.to_string(),
    };
    let mut out = HashMap::new();
    for t in tenants.iter().filter(|t| t.group == group.name) {
        let serving = server_name(t);
        let ingress = ingresses.get(&t.slug);
        let ingress_address = ingress.and_then(|i| {
            let lb = &i.data["status"]["loadBalancer"]["ingress"][0];
            lb["ip"].as_str().or_else(|| lb["hostname"].as_str()).map(String::from)
        });
        let cert_name = tls_secret_name(&t.slug);
        let deployed = if !configmaps.contains_key(&format!("{}-tenant", t.slug)) {
            Check::Fail(format!("cluster: not applied (no ConfigMap {}-tenant in {ns})", t.slug))
        } else if ingress.is_none() {
            Check::Fail(format!("cluster: no Ingress {} in {ns}", t.slug))
        } else if !is_ready(&key("Deployment", "apps/v1", &serving), deployments.get(&serving)) {
            Check::Fail(format!("cluster: Deployment {serving} not available"))
        } else if !is_ready(&key("Ingress", "networking.k8s.io/v1", &t.slug), ingress) {
            Check::Fail(format!("cluster: Ingress {} has no load-balancer address yet", t.slug))
        } else if certificates
            .as_ref()
            .is_some_and(|c| !is_ready(&key("Certificate", "cert-manager.io/v1", &cert_name), c.get(&cert_name)))
        {
            Check::Fail(format!("TLS: certificate {cert_name} not ready"))
        } else {
            Check::Pass
        };
        out.insert(t.slug.clone(), ClusterFacts { deployed, ingress_address });
    }
    Ok((out, image))
}

fn table_text(summaries: &[GroupSummary], statuses: &[TenantStatus]) -> String {
    let mut t = table(&["tenant", "group", "wave", "phase", "stuck at"]);
    for s in statuses {
        t.add_row(vec![
            s.tenant.clone(),
            s.group.clone(),
            s.wave.clone(),
            if s.unknown { format!("{} (or higher: unknown)", s.phase_label) } else { s.phase_label.to_string() },
            s.stuck.clone().unwrap_or_default(),
        ]);
    }
    let mut out = render_table(&t);
    out.push('\n');
    for g in summaries {
        out.push_str(&format!("{}: {}\n", g.group, g.total.headline(g.mode)));
        if let Some(image) = &g.image {
            out.push_str(&format!("  image {}\n", image.describe()));
        }
        for k in &g.by_kreis {
            out.push_str(&format!("  {:<28} {}\n", k.name, k.headline(g.mode)));
        }
        for w in &g.by_wave {
            out.push_str(&format!("  wave {:<23} {}\n", w.name, w.headline(g.mode)));
        }
    }
    out
}
