//! `render`, `diff`, `apply` and `offboard`: a group's Kubernetes objects from the tenant files
//! to YAML, and through server-side apply into a cluster.

use super::Context;
use crate::cluster::{self, progress::Progress, ApplyMode, Cluster, ConnectOptions};
use crate::exit_codes::Exit;
use crate::render::{self, DesiredState, Object, ObjectKey, Options, GROUP_LABEL, TENANT_LABEL};
use crate::tenant::{Catalog, Group, Tenant};
use anyhow::{bail, Context as _};
use clap::Args;
use futures::stream::{self, StreamExt};
use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

/// First line of every file `render --out DIR` writes; files with it are regenerated, stale ones removed.
const RENDER_HEADER: &str = "# Rendered by portalctl render; do not edit: change the tenant files and render again.";

/// Settings of the rendered platform that are not in the tenant files.
#[derive(Debug, Clone, Args)]
pub struct PlatformArgs {
    /// Ingress class of the tenants' Ingresses.
    #[arg(long, default_value = "nginx", value_name = "CLASS")]
    pub ingress_class: String,
    /// Namespace of the ingress controller: the only namespace allowed to reach the portal pods.
    #[arg(long, default_value = "ingress-nginx", value_name = "NAMESPACE")]
    pub ingress_namespace: String,
    /// cert-manager ClusterIssuer that issues the tenants' certificates.
    #[arg(long, default_value = "letsencrypt-prod", value_name = "ISSUER")]
    pub cluster_issuer: String,
    /// Replicas of each portal-server Deployment (also the autoscaler's minimum).
    #[arg(long, default_value_t = 2, value_name = "N")]
    pub replicas: i32,
    /// PostgreSQL host the portal server connects to.
    #[arg(long, default_value = "postgres", value_name = "HOST")]
    pub database_host: String,
    /// PostgreSQL port.
    #[arg(long, default_value_t = 5432, value_name = "PORT")]
    pub database_port: u16,
    /// PostgreSQL database holding all tenants' schemas.
    #[arg(long, default_value = "serviceportal", value_name = "NAME")]
    pub database_name: String,
    /// Namespace whose pods may reach the servers' operations port 9090 (metrics, readiness, identity);
    /// repeatable. Default: monitoring.
    #[arg(long = "ops-namespace", default_value = "monitoring", value_name = "NAMESPACE")]
    pub ops_namespaces: Vec<String>,
    /// Image of the portal server instead of the groups' `defaults.image`; pin it by digest
    /// (`registry/portalctl@sha256:…`, as `cargo xtask image` prints) so every replica runs one build.
    #[arg(long, value_parser = parse_image, value_name = "IMAGE")]
    pub image: Option<String>,
}

/// An image reference: `name[:tag]` or `name@sha256:<64 hex digits>`.
fn parse_image(s: &str) -> Result<String, String> {
    if s.is_empty() || s.contains(char::is_whitespace) {
        return Err(format!("{s:?} is not an image reference"));
    }
    if let Some((name, digest)) = s.split_once('@') {
        let hex = digest.strip_prefix("sha256:").unwrap_or("");
        if name.is_empty() || hex.len() != 64 || !hex.bytes().all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
        {
            return Err(format!("{s:?}: a digest is sha256: followed by 64 lowercase hex digits"));
        }
    }
    Ok(s.to_string())
}

impl PlatformArgs {
    pub(crate) fn options(&self) -> Options {
        Options {
            replicas: self.replicas,
            ingress_class: self.ingress_class.clone(),
            ingress_namespace: self.ingress_namespace.clone(),
            cluster_issuer: self.cluster_issuer.clone(),
            database_host: self.database_host.clone(),
            database_port: self.database_port,
            database_name: self.database_name.clone(),
            ops_namespaces: self.ops_namespaces.clone(),
            image: self.image.clone(),
            ..Options::default()
        }
    }
}

/// Where the cluster is, like kubectl.
#[derive(Debug, Clone, Args)]
pub struct ClusterArgs {
    /// Kubeconfig file (default: $KUBECONFIG, then ~/.kube/config, then the in-cluster service account).
    #[arg(long, value_name = "FILE")]
    pub kubeconfig: Option<PathBuf>,
    /// Kubeconfig context (default: the group's clusterContext, then the current context).
    #[arg(long, value_name = "NAME")]
    pub context: Option<String>,
    /// Timeout of one API request (e.g. 30s).
    #[arg(long, default_value = "30s", value_parser = parse_duration, value_name = "DURATION")]
    pub request_timeout: Duration,
}

#[derive(Debug, Args)]
pub struct RenderArgs {
    /// Only this rollout group (default: every group).
    #[arg(long, short = 'g', value_name = "GROUP")]
    pub group: Option<String>,
    /// Where to write: `-` for one multi-document YAML stream on stdout, or a directory that gets one
    /// file per object under `<DIR>/<group>/`, or in DIR itself when it is named after the group
    /// (`--out deploy/krz/`); stale files from an earlier render are removed. With
    /// `--helm-values`: `-` or a file.
    #[arg(long, default_value = "-", value_name = "DIR|FILE|-")]
    pub out: String,
    /// Write the values of the Helm chart charts/serviceportal for the group instead of objects.
    #[arg(long)]
    pub helm_values: bool,
    #[command(flatten)]
    pub platform: PlatformArgs,
}

#[derive(Debug, Args)]
pub struct DiffArgs {
    /// The rollout group (needed when there is more than one).
    #[arg(long, short = 'g', value_name = "GROUP")]
    pub group: Option<String>,
    /// Only this tenant's objects (repeatable).
    #[arg(long, short = 't', value_name = "TENANT")]
    pub tenant: Vec<String>,
    /// Also show, as deletions, the objects `apply --prune` would delete.
    #[arg(long, conflicts_with = "tenant")]
    pub prune: bool,
    /// API requests in flight at once.
    #[arg(long, default_value_t = 8, value_name = "N")]
    pub concurrency: usize,
    #[command(flatten)]
    pub cluster: ClusterArgs,
    #[command(flatten)]
    pub platform: PlatformArgs,
}

#[derive(Debug, Args)]
pub struct ApplyArgs {
    /// The rollout group (needed when there is more than one).
    #[arg(long, short = 'g', value_name = "GROUP")]
    pub group: Option<String>,
    /// Only this tenant's objects (repeatable); the group's shared objects are left alone.
    #[arg(long, short = 't', value_name = "TENANT")]
    pub tenant: Vec<String>,
    /// Delete the objects of tenants that are no longer declared (listed before deletion).
    #[arg(long, conflicts_with = "tenant")]
    pub prune: bool,
    /// Prune even when the declared tenants are empty or shrank by more than --prune-threshold.
    #[arg(long, requires = "prune")]
    pub force: bool,
    /// Largest shrink of the declared tenants, in percent of the last apply, that --prune accepts without --force.
    #[arg(long, default_value_t = 50, value_name = "PERCENT", value_parser = clap::value_parser!(u32).range(0..=100))]
    pub prune_threshold: u32,
    /// Take over fields that another field manager owns (server-side apply conflicts).
    #[arg(long)]
    pub force_conflicts: bool,
    /// Wait until Deployments are available, Ingresses have an address and certificates are ready.
    #[arg(long)]
    pub wait: bool,
    /// How long --wait waits (e.g. 5m, 90s).
    #[arg(long, default_value = "5m", value_parser = parse_duration, value_name = "DURATION")]
    pub timeout: Duration,
    /// API requests in flight at once.
    #[arg(long, default_value_t = 8, value_name = "N")]
    pub concurrency: usize,
    #[command(flatten)]
    pub cluster: ClusterArgs,
    #[command(flatten)]
    pub platform: PlatformArgs,
}

#[derive(Debug, Args)]
pub struct OffboardArgs {
    /// The tenant to remove (it may already be gone from the tenant files).
    #[arg(long, short = 't', value_name = "TENANT")]
    pub tenant: String,
    /// The tenant's rollout group (needed when the tenant is no longer declared).
    #[arg(long, short = 'g', value_name = "GROUP")]
    pub group: Option<String>,
    /// Delete the listed objects; without it, only list them.
    #[arg(long)]
    pub yes: bool,
    #[command(flatten)]
    pub cluster: ClusterArgs,
}

/// Parse `90`, `90s`, `500ms`, `5m` or `1h`.
pub fn parse_duration(s: &str) -> Result<Duration, String> {
    let s = s.trim();
    let split = s.find(|c: char| !c.is_ascii_digit()).unwrap_or(s.len());
    let (num, unit) = s.split_at(split);
    let n: u64 = num.parse().map_err(|_| format!("{s:?} is not a duration (e.g. 30s, 5m, 500ms)"))?;
    Ok(match unit {
        "" | "s" => Duration::from_secs(n),
        "ms" => Duration::from_millis(n),
        "m" => Duration::from_secs(n * 60),
        "h" => Duration::from_secs(n * 3600),
        _ => return Err(format!("{s:?}: unknown unit {unit:?} (use ms, s, m or h)")),
    })
}

fn runtime() -> anyhow::Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_multi_thread().enable_all().build().context("cannot start the async runtime")
}

fn find_group<'a>(catalog: &'a Catalog, name: &str) -> anyhow::Result<&'a Group> {
    catalog.group(name).with_context(|| {
        let known: Vec<&str> = catalog.groups.iter().map(|g| g.name.as_str()).collect();
        format!("no rollout group {name:?}; groups: {}", known.join(", "))
    })
}

/// The group a command works on: `--group`, the group of the named tenants, or the only one.
fn pick_group<'a>(catalog: &'a Catalog, group: Option<&str>, tenants: &[String]) -> anyhow::Result<&'a Group> {
    for t in tenants {
        let Some(tenant) = catalog.tenant(t) else { bail!("no tenant {t:?} in the tenant files") };
        if group.is_some_and(|g| g != tenant.group) {
            bail!("tenant {t} belongs to group {}, not {}", tenant.group, group.unwrap_or_default());
        }
    }
    if let Some(g) = group {
        return find_group(catalog, g);
    }
    if let Some(t) = tenants.first().and_then(|t| catalog.tenant(t)) {
        for other in tenants {
            if catalog.tenant(other).is_some_and(|o| o.group != t.group) {
                bail!("the tenants belong to different groups; pass one --group at a time");
            }
        }
        return find_group(catalog, &t.group);
    }
    match catalog.groups.as_slice() {
        [only] => Ok(only),
        _ => bail!(
            "pass --group; groups: {}",
            catalog.groups.iter().map(|g| g.name.as_str()).collect::<Vec<_>>().join(", ")
        ),
    }
}

fn desired<'a>(catalog: &'a Catalog, group: &'a Group, options: &Options) -> (DesiredState, Vec<&'a Tenant>) {
    let tenants: Vec<&Tenant> = catalog.tenants_of(&group.name).collect();
    (render::render(group, &tenants, options), tenants)
}

// ----- render -------------------------------------------------------------------------------

pub fn render(ctx: &Context, args: &RenderArgs) -> anyhow::Result<Exit> {
    let catalog = ctx.catalog()?;
    let options = args.platform.options();
    let groups: Vec<&Group> = match &args.group {
        Some(g) => vec![find_group(&catalog, g)?],
        None => catalog.groups.iter().collect(),
    };
    if args.helm_values {
        let [group] = groups.as_slice() else { bail!("--helm-values writes one group's values; pass --group") };
        let tenants: Vec<&Tenant> = catalog.tenants_of(&group.name).collect();
        let values = render::values::helm_values(group, &tenants, &options);
        let text = format!(
            "# Values of charts/serviceportal for rollout group {}, generated from the tenant files:\n\
             #   portalctl render --group {} --helm-values\n# Do not edit; change the tenant files and generate again.\n{}",
            group.name,
            group.name,
            serde_saphyr::to_string(&values)?
        );
        if args.out == "-" {
            print!("{text}");
        } else {
            std::fs::write(&args.out, text).with_context(|| format!("cannot write {}", args.out))?;
            ctx.info(format!("wrote the chart values of group {} to {}", group.name, args.out));
        }
        return Ok(Exit::Success);
    }
    if args.out == "-" {
        let started = Instant::now();
        let mut out = String::new();
        let mut objects = 0;
        for group in &groups {
            if !out.is_empty() {
                out.push_str("---\n");
            }
            let (state, _) = desired(&catalog, group, &options);
            objects += state.objects.len();
            out.push_str(&state.to_yaml());
        }
        print!("{out}");
        ctx.info(format!("rendered {objects} objects in {:.1} ms", started.elapsed().as_secs_f64() * 1e3));
        return Ok(Exit::Success);
    }
    for group in &groups {
        let (state, _) = desired(&catalog, group, &options);
        // `--out deploy/krz/` for group krz is the group's directory already: not deploy/krz/krz/.
        let out = Path::new(&args.out);
        let dir = if out.file_name().is_some_and(|n| n == group.name.as_str()) {
            out.to_path_buf()
        } else {
            out.join(&group.name)
        };
        let written = write_dir(&dir, &state)?;
        ctx.info(format!("wrote {written} objects of group {} to {}", group.name, dir.display()));
    }
    Ok(Exit::Success)
}

/// One file per object; files of an earlier render that are no longer wanted are removed
/// (only files that carry the render header: nothing else in the directory is touched).
fn write_dir(dir: &Path, state: &DesiredState) -> anyhow::Result<usize> {
    std::fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
    let mut wanted = BTreeSet::new();
    for o in &state.objects {
        let key = o.key();
        let file = format!("{}-{}.yaml", key.kind.to_lowercase(), key.name);
        let text = format!("{RENDER_HEADER}\n{}", render::object_yaml(o));
        let path = dir.join(&file);
        std::fs::write(&path, text).with_context(|| format!("cannot write {}", path.display()))?;
        wanted.insert(file);
    }
    for entry in std::fs::read_dir(dir)? {
        let entry = entry?;
        let name = entry.file_name().to_string_lossy().to_string();
        if name.ends_with(".yaml") && !wanted.contains(&name) {
            let text = std::fs::read_to_string(entry.path()).unwrap_or_default();
            if text.starts_with(RENDER_HEADER) {
                std::fs::remove_file(entry.path())?;
            }
        }
    }
    Ok(wanted.len())
}

// ----- shared cluster plumbing ----------------------------------------------------------------

pub(crate) async fn connect(args: &ClusterArgs, group: &Group) -> anyhow::Result<Cluster> {
    let opts = ConnectOptions {
        kubeconfig: args.kubeconfig.clone(),
        context: args.context.clone().or_else(|| group.cluster_context.clone()),
        request_timeout: args.request_timeout,
        retry: Default::default(),
    };
    Ok(Cluster::connect(&opts).await?)
}

/// Resolve every Secret's value before anything is sent: a missing reference stops here.
pub(crate) fn resolve_secrets(objects: &[&Object]) -> anyhow::Result<BTreeMap<ObjectKey, Vec<u8>>> {
    let mut out = BTreeMap::new();
    for o in objects {
        if let Some(src) = o.secret_source() {
            let tenant = o.tenant().unwrap_or_default();
            out.insert(o.key(), cluster::secrets::resolve(tenant, src)?);
        }
    }
    Ok(out)
}

fn select_objects<'a>(state: &'a DesiredState, tenants: &[String]) -> Vec<&'a Object> {
    state
        .objects
        .iter()
        .filter(|o| tenants.is_empty() || o.tenant().is_some_and(|t| tenants.iter().any(|s| s == t)))
        .collect()
}

// ----- diff ---------------------------------------------------------------------------------

pub fn diff(ctx: &Context, args: &DiffArgs) -> anyhow::Result<Exit> {
    // A cluster that cannot be reached is exit 3, decided in `main` (`Exit::for_error`).
    runtime()?.block_on(diff_async(ctx, args))
}

async fn diff_async(ctx: &Context, args: &DiffArgs) -> anyhow::Result<Exit> {
    let catalog = ctx.catalog()?;
    let group = pick_group(&catalog, args.group.as_deref(), &args.tenant)?;
    let (state, _) = desired(&catalog, group, &args.platform.options());
    let objects = select_objects(&state, &args.tenant);
    let secrets = resolve_secrets(&objects)?;
    let cluster = connect(&args.cluster, group).await?;
    let results: Vec<anyhow::Result<Option<String>>> = stream::iter(objects.iter().map(|o| {
        let cluster = &cluster;
        let secrets = &secrets;
        async move {
            let key = o.key();
            let body = cluster::apply_body(o, secrets.get(&key).map(Vec::as_slice));
            let live = cluster.get(&key).await?;
            let mode = ApplyMode { dry_run: true, force_conflicts: true };
            let merged = match cluster.apply(&key, &body, mode).await {
                Ok(obj) => serde_json::to_value(obj)?,
                // The namespace does not exist yet: the object would be created as rendered.
                Err(cluster::Error::Api { code: Some(404), .. }) if live.is_none() => body.clone(),
                Err(e) => return Err(e.into()),
            };
            let mut after = cluster::diff::strip(merged);
            let mut before = live.map(|l| serde_json::to_value(l).map(cluster::diff::strip)).transpose()?;
            cluster::diff::mask_secrets(before.as_mut(), &mut after);
            let before = before.as_ref().map(cluster::diff::yaml);
            let after = cluster::diff::yaml(&after);
            Ok(cluster::diff::unified(&key.to_string(), before.as_deref(), Some(&after)))
        }
    }))
    .buffered(args.concurrency.max(1))
    .collect()
    .await;
    let mut changed = 0;
    for r in results {
        if let Some(text) = r? {
            changed += 1;
            print!("{}", colour_diff(&text));
        }
    }
    if args.prune {
        let desired_keys: BTreeSet<ObjectKey> = state.objects.iter().map(Object::key).collect();
        for (key, _) in live_tenant_objects(&cluster, &group.name, &group.namespace, None).await? {
            if desired_keys.contains(&key) {
                continue;
            }
            let Some(live) = cluster.get(&key).await? else { continue };
            let mut before = cluster::diff::strip(serde_json::to_value(live)?);
            let mut none = serde_json::json!({ "kind": key.kind });
            cluster::diff::mask_secrets(Some(&mut before), &mut none);
            if let Some(text) = cluster::diff::unified(&key.to_string(), Some(&cluster::diff::yaml(&before)), None) {
                changed += 1;
                print!("{}", colour_diff(&text));
            }
        }
    }
    if changed == 0 {
        ctx.info(format!("no differences: {} objects of group {} are as declared", objects.len(), group.name));
        Ok(Exit::Success)
    } else {
        ctx.info(format!("{changed} of {} objects of group {} differ", objects.len(), group.name));
        Ok(Exit::Failure)
    }
}

fn colour_diff(text: &str) -> String {
    if !console::colors_enabled() {
        return text.to_string();
    }
    text.lines()
        .map(|l| {
            let styled = if l.starts_with("+++") || l.starts_with("---") {
                console::style(l).bold().to_string()
            } else if l.starts_with('+') {
                console::style(l).green().to_string()
            } else if l.starts_with('-') {
                console::style(l).red().to_string()
            } else if l.starts_with("@@") {
                console::style(l).cyan().to_string()
            } else {
                l.to_string()
            };
            styled + "\n"
        })
        .collect()
}

// ----- apply and prune ------------------------------------------------------------------------

pub fn apply(ctx: &Context, args: &ApplyArgs) -> anyhow::Result<Exit> {
    // A cluster that cannot be reached is exit 3, decided in `main` (`Exit::for_error`).
    runtime()?.block_on(apply_async(ctx, args))
}

/// Objects of a group's tenants in the cluster, each with its tenant label.
async fn live_tenant_objects(
    cluster: &Cluster,
    group: &str,
    namespace: &str,
    tenant: Option<&str>,
) -> anyhow::Result<Vec<(ObjectKey, String)>> {
    let selector = match tenant {
        Some(t) => format!("{GROUP_LABEL}={group},{TENANT_LABEL}={t}"),
        None => format!("{GROUP_LABEL}={group},{TENANT_LABEL}"),
    };
    let mut out = Vec::new();
    for kind in cluster::tenant_kinds() {
        for l in cluster.list(&kind, namespace, &selector).await? {
            let Some(slug) = l.labels.get(TENANT_LABEL).cloned() else { continue };
            if cluster::is_tenant_object_name(l.key.kind, &l.key.name, &slug) {
                out.push((l.key, slug));
            }
        }
    }
    Ok(out)
}

async fn apply_async(ctx: &Context, args: &ApplyArgs) -> anyhow::Result<Exit> {
    let started = Instant::now();
    let catalog = ctx.catalog()?;
    let group = pick_group(&catalog, args.group.as_deref(), &args.tenant)?;
    let (state, tenants) = desired(&catalog, group, &args.platform.options());
    let objects = select_objects(&state, &args.tenant);
    let secrets = resolve_secrets(&objects)?;
    let cluster = connect(&args.cluster, group).await?;
    let whole_group = args.tenant.is_empty();
    let declared: BTreeSet<String> = tenants.iter().map(|t| t.slug.clone()).collect();

    // Decide on pruning before changing anything: a refusal leaves the cluster untouched.
    let mut to_prune = Vec::new();
    if args.prune {
        let desired_keys: BTreeSet<ObjectKey> = state.objects.iter().map(Object::key).collect();
        let live = live_tenant_objects(&cluster, &group.name, &group.namespace, None).await?;
        let live_tenants: BTreeSet<&str> = live.iter().map(|(_, t)| t.as_str()).collect();
        let previous = match cluster.read_state(&group.namespace).await? {
            Some(s) => s.tenants.len(),
            None => live_tenants.len(),
        };
        to_prune =
            live.iter().filter(|(k, _)| !desired_keys.contains(k)).map(|(k, t)| (k.clone(), t.clone())).collect();
        if !to_prune.is_empty() {
            eprintln!("prune: {} object(s) of tenants no longer declared in group {}:", to_prune.len(), group.name);
            for (k, t) in &to_prune {
                eprintln!("  {k}  (tenant {t})");
            }
        }
        if let Some(why) = cluster::state::prune_refusal(previous, declared.len(), args.prune_threshold) {
            if !args.force {
                bail!("refusing to prune: {why}. Nothing was changed. If this is intended, run again with --force");
            }
            eprintln!("prune: {why}; going ahead because of --force");
        }
    }

    let mode = ApplyMode { dry_run: false, force_conflicts: args.force_conflicts };
    let progress = Progress::new(objects.len(), "apply", ctx.quiet);
    let failures = cluster
        .apply_all(&objects, &secrets, mode, args.concurrency, &|key, r| {
            progress.done(&match r {
                Ok(()) => format!("applied {key}"),
                Err(e) => format!("failed  {key}: {e}"),
            })
        })
        .await;
    progress.finish();
    if !failures.is_empty() {
        for (_, e) in &failures {
            eprintln!("{} {e}", console::style("error:").for_stderr().red().bold());
        }
        if let Some((_, e)) = failures.iter().find(|(_, e)| e.is_unavailable()) {
            return Err(anyhow::anyhow!("{e}")).context("apply failed");
        }
        bail!("{} object(s) of group {} could not be applied; nothing was pruned", failures.len(), group.name);
    }

    let mut pruned = 0;
    if !to_prune.is_empty() {
        let progress = Progress::new(to_prune.len(), "prune", ctx.quiet);
        let results: Vec<cluster::Result<()>> = stream::iter(to_prune.iter().map(|(k, _)| {
            let cluster = &cluster;
            let progress = &progress;
            async move {
                let r = cluster.delete(k).await;
                progress.done(&format!("deleted {k}"));
                r
            }
        }))
        .buffer_unordered(args.concurrency.max(1))
        .collect()
        .await;
        progress.finish();
        for r in results {
            r?;
            pruned += 1;
        }
    }
    if whole_group {
        let list: Vec<String> = declared.iter().cloned().collect();
        cluster.write_state(&group.name, &group.namespace, &list).await?;
    }
    ctx.info(format!(
        "applied {} objects of group {} ({} tenants){} in {:.1} s",
        objects.len(),
        group.name,
        if whole_group { declared.len() } else { args.tenant.len() },
        if args.prune { format!(", pruned {pruned}") } else { String::new() },
        started.elapsed().as_secs_f64()
    ));
    if args.wait {
        let checks = cluster::wait::readiness_checks(&objects);
        ctx.info(format!("waiting up to {:?} for {} objects to become ready", args.timeout, checks.len()));
        cluster.wait_ready(checks, args.timeout).await?;
        ctx.info("ready");
    }
    Ok(Exit::Success)
}

// ----- offboard -----------------------------------------------------------------------------

pub fn offboard(ctx: &Context, args: &OffboardArgs) -> anyhow::Result<Exit> {
    // A cluster that cannot be reached is exit 3, decided in `main` (`Exit::for_error`).
    runtime()?.block_on(offboard_async(ctx, args))
}

async fn offboard_async(ctx: &Context, args: &OffboardArgs) -> anyhow::Result<Exit> {
    let catalog = ctx.catalog()?;
    crate::names::check_slug(&args.tenant).map_err(|e| anyhow::anyhow!("--tenant {:?}: {e}", args.tenant))?;
    let declared = catalog.tenant(&args.tenant);
    let group = match (&args.group, declared) {
        (Some(g), _) => find_group(&catalog, g)?,
        (None, Some(t)) => find_group(&catalog, &t.group)?,
        (None, None) => {
            bail!("tenant {} is not declared in the tenant files; pass --group to say where it was", args.tenant)
        }
    };
    if let Some(t) = declared {
        eprintln!(
            "warning: tenant {} is still declared in {}; the next apply of group {} will recreate its objects",
            t.slug, t.source, group.name
        );
    }
    let cluster = connect(&args.cluster, group).await?;
    let objects = live_tenant_objects(&cluster, &group.name, &group.namespace, Some(&args.tenant)).await?;
    if objects.is_empty() {
        ctx.info(format!("tenant {} has no objects in namespace {}", args.tenant, group.namespace));
        return Ok(Exit::Success);
    }
    eprintln!("objects of tenant {} in group {}:", args.tenant, group.name);
    for (k, _) in &objects {
        println!("{k}");
    }
    if !args.yes {
        eprintln!("nothing deleted; run again with --yes to delete these {} object(s)", objects.len());
        return Ok(Exit::Success);
    }
    let progress = Progress::new(objects.len(), "offboard", ctx.quiet);
    for (k, _) in &objects {
        cluster.delete(k).await?;
        progress.done(&format!("deleted {k}"));
    }
    progress.finish();
    ctx.info(format!("offboarded tenant {}: {} object(s) deleted", args.tenant, objects.len()));
    Ok(Exit::Success)
}

#[cfg(test)]
mod tests {
    use super::parse_duration;
    use std::time::Duration;

    #[test]
    fn durations() {
        assert_eq!(parse_duration("90"), Ok(Duration::from_secs(90)));
        assert_eq!(parse_duration("5m"), Ok(Duration::from_secs(300)));
        assert_eq!(parse_duration("250ms"), Ok(Duration::from_millis(250)));
        assert!(parse_duration("5x").is_err());
        assert!(parse_duration("m").is_err());
    }
}
