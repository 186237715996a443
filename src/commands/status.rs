//! `portalctl status`: where every tenant stands on the go-live ladder, per tenant and in sum.

use super::kube::ClusterArgs;
use super::{select, Context};
use crate::cli::{DbConnArgs, Selector};
use crate::cluster::{self, wait::is_ready, Cluster};
use crate::exit_codes::Exit;
use crate::output::{render_table, table, OutputFormat};
use crate::render::{server_name, tls_secret_name, ObjectKey, GROUP_LABEL};
use crate::status::probe::{self, ClusterFacts, PortalAccess, Sources};
use crate::status::report::{self, HistoryEntry};
use crate::status::{assess, summarize, Check, GroupSummary, Phase, TenantStatus};
use crate::tenant::{Catalog, Group, Tenant};
use anyhow::Context as _;
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
}

#[derive(Serialize)]
struct StatusDoc<'a> {
    groups: &'a [GroupSummary],
    tenants: &'a [TenantStatus],
}

pub fn run(ctx: &Context, args: &StatusArgs) -> anyhow::Result<Exit> {
    let rt = tokio::runtime::Builder::new_multi_thread().enable_all().build()?;
    loop {
        let (code, text) = rt.block_on(once(ctx, args))?;
        match args.watch {
            None => {
                emit(args, &text)?;
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

fn emit(args: &StatusArgs, text: &str) -> anyhow::Result<()> {
    match &args.out {
        Some(path) => std::fs::write(path, text).with_context(|| format!("cannot write {}", path.display())),
        None => {
            print!("{text}");
            Ok(())
        }
    }
}

async fn once(ctx: &Context, args: &StatusArgs) -> anyhow::Result<(Exit, String)> {
    // When each part ended, for --timings.
    let mut marks = vec![("", std::time::Instant::now())];
    let catalog = ctx.catalog()?;
    let tenants = select(&catalog, &args.selector)?;
    let db = match args.db.database_url.as_deref().filter(|u| !u.is_empty()) {
        None => None,
        Some(_) => Some(super::db::resolve(&args.db).map_err(|_| anyhow::anyhow!("invalid --database-url"))?),
    };
    let db_opts =
        db.as_ref().map(|_| super::db::connect_options(&args.db, args.db.database_url.as_deref().unwrap_or_default()));
    let sources = Sources {
        db: db_opts.clone(),
        nameservers: args.nameserver.clone(),
        ingress: args.ingress.as_deref().map(crate::dns::Target::parse).transpose()?,
        portal: match args.portal_address {
            Some(a) => PortalAccess::Direct(a),
            None => PortalAccess::Https,
        },
        ops: args.ops_address.clone(),
        timeout: args.check_timeout,
        concurrency: args.concurrency,
    };
    // The cluster: one LIST per kind and group.
    marks.push(("tenant files", std::time::Instant::now()));
    let mut facts: HashMap<String, ClusterFacts> = HashMap::new();
    let mut cluster_problem: Option<String> = None;
    if args.no_cluster {
        cluster_problem = Some("cluster: not asked (--no-cluster)".into());
    } else {
        for group in groups_of(&catalog, &tenants) {
            match super::kube::connect(&args.cluster, group).await {
                Err(e) => cluster_problem = Some(format!("cluster: {e:#}")),
                Ok(cluster) => match group_facts(&cluster, group, &tenants).await {
                    Ok(f) => facts.extend(f),
                    Err(e) => cluster_problem = Some(format!("cluster: {e}")),
                },
            }
        }
    }
    marks.push(("cluster (one LIST per kind)", std::time::Instant::now()));
    let (observations, observed) = probe::observe(&tenants, &sources, Some(&facts), cluster_problem.as_deref()).await;
    marks.push(("database, DNS and portals", std::time::Instant::now()));
    let statuses: Vec<TenantStatus> = tenants.iter().zip(observations).map(|(t, o)| assess(t, o)).collect();
    let summaries = summarize(&catalog, &statuses);
    let history: Vec<HistoryEntry> = match &db_opts {
        Some(opts) => probe::record_history(opts, &statuses).await.unwrap_or_else(|e| {
            eprintln!("warning: phase history not recorded: {e}");
            Vec::new()
        }),
        None => Vec::new(),
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
    let text = match ctx.output {
        OutputFormat::Table => table_text(&summaries, &statuses),
        OutputFormat::Markdown => report::markdown(&summaries, &statuses),
        OutputFormat::Html => {
            let now = time::OffsetDateTime::now_utc()
                .format(&time::format_description::well_known::Rfc3339)
                .unwrap_or_default();
            report::html(&summaries, &statuses, &history, &now)?
        }
        OutputFormat::Json | OutputFormat::Yaml => {
            crate::output::to_text(&StatusDoc { groups: &summaries, tenants: &statuses }, ctx.output)?
        }
    };
    let all_live = statuses.iter().all(|s| s.phase == Phase::Live);
    Ok((if all_live { Exit::Success } else { Exit::Failure }, text))
}

fn groups_of<'a>(catalog: &'a Catalog, tenants: &[&Tenant]) -> Vec<&'a Group> {
    catalog.groups.iter().filter(|g| tenants.iter().any(|t| t.group == g.name)).collect()
}

fn by_name(objs: Vec<DynamicObject>) -> HashMap<String, DynamicObject> {
    objs.into_iter().map(|o| (o.metadata.name.clone().unwrap_or_default(), o)).collect()
}

/// What the cluster says about each tenant of a group: one LIST per kind.
async fn group_facts(
    cluster: &Cluster,
    group: &Group,
    tenants: &[&Tenant],
) -> Result<HashMap<String, ClusterFacts>, cluster::Error> {
    let ns = &group.namespace;
    let selector = format!("{GROUP_LABEL}={}", group.name);
    let kind = |api_version, kind| cluster::kind_key(api_version, kind);
    let deployments = by_name(cluster.list_objects(&kind("apps/v1", "Deployment"), ns, &selector).await?);
    let ingresses = by_name(cluster.list_objects(&kind("networking.k8s.io/v1", "Ingress"), ns, &selector).await?);
    let configmaps = by_name(cluster.list_objects(&kind("v1", "ConfigMap"), ns, &selector).await?);
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
    Ok(out)
}

fn table_text(summaries: &[GroupSummary], statuses: &[TenantStatus]) -> String {
    let mut t = table(&["tenant", "group", "wave", "phase", "stuck at"]);
    for s in statuses {
        t.add_row(vec![
            s.tenant.clone(),
            s.group.clone(),
            s.wave.clone(),
            s.phase.as_str().to_string(),
            s.stuck.clone().unwrap_or_default(),
        ]);
    }
    let mut out = render_table(&t);
    out.push('\n');
    for g in summaries {
        out.push_str(&format!("{}: {}\n", g.group, g.total.headline()));
        for k in &g.by_kreis {
            out.push_str(&format!("  {:<28} {}\n", k.name, k.headline()));
        }
        for w in &g.by_wave {
            out.push_str(&format!("  wave {:<23} {}\n", w.name, w.headline()));
        }
    }
    out
}
