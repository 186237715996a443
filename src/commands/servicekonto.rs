//! `portalctl servicekonto …`: SP metadata, IdP checks, rebinding a group, confirming a rebind.

use super::{select, Context};
use crate::cli::{
    EnvironmentArg, ProviderArg, ServicekontoCommand, SkCheckArgs, SkConfirmArgs, SkMetadataArgs, SkRebindArgs,
};
use crate::exit_codes::Exit;
use crate::output::{print_structured, render_table, table, OutputFormat};
use crate::servicekonto::check::{self, Status};
use crate::servicekonto::metadata::{canonical_base_url, sp_metadata, SpMetadataParams};
use crate::servicekonto::{keys, rebind};
use crate::tenant::{Environment, Protocol, Provider};
use anyhow::{bail, Context as _};

pub fn run(ctx: &Context, cmd: ServicekontoCommand) -> anyhow::Result<Exit> {
    match cmd {
        ServicekontoCommand::Metadata(args) => metadata(ctx, &args),
        ServicekontoCommand::Check(args) => check(ctx, &args),
        ServicekontoCommand::Rebind(args) => rebind(ctx, &args),
        ServicekontoCommand::Confirm(args) => confirm(ctx, &args),
    }
}

fn env_of(e: EnvironmentArg) -> Environment {
    match e {
        EnvironmentArg::Integration => Environment::Integration,
        EnvironmentArg::Production => Environment::Production,
    }
}

fn provider_of(p: ProviderArg) -> Provider {
    match p {
        ProviderArg::Bundid => Provider::Bundid,
        ProviderArg::Bayernid => Provider::Bayernid,
        ProviderArg::Saml => Provider::Saml,
        ProviderArg::Oidc => Provider::Oidc,
    }
}

fn metadata(ctx: &Context, args: &SkMetadataArgs) -> anyhow::Result<Exit> {
    let catalog = ctx.catalog()?;
    let Some(tenant) = catalog.tenant(&args.tenant) else {
        bail!("no tenant {:?} in {}", args.tenant, ctx.tenants_dir.display());
    };
    let Some(binding) = &tenant.servicekonto else {
        bail!("tenant {} has no Servicekonto binding (spec.servicekonto or the group's defaults)", tenant.slug);
    };
    if binding.protocol != Protocol::Saml {
        bail!(
            "tenant {} is bound to {} (OpenID Connect): there is no SAML SP metadata; register redirect URI {}/anmelden/oidc/callback with the provider",
            tenant.slug,
            binding.provider.as_str(),
            canonical_base_url(tenant)
        );
    }
    let envs = match (args.environment.map(env_of), &args.out_dir) {
        (Some(env), _) => vec![env],
        (None, Some(_)) => vec![Environment::Integration, Environment::Production],
        (None, None) => vec![binding.environment],
    };
    let base = canonical_base_url(tenant);
    for env in envs {
        let (sp_keys, generated) = keys::load_or_generate(&args.secrets.secrets_dir, tenant, env)
            .with_context(|| format!("SP keys of tenant {}", tenant.slug))?;
        let paths = keys::KeyPaths::current(&args.secrets.secrets_dir, tenant, env);
        if generated {
            ctx.info(format!(
                "generated a new SP key pair for {} ({}): {} (mode 0600), {}",
                tenant.slug,
                keys::env_name(env),
                paths.key.display(),
                paths.cert.display()
            ));
        }
        let params = SpMetadataParams::for_environment(tenant, env, &base, &sp_keys)?;
        let xml = sp_metadata(&params)?;
        let file = match (&args.out, &args.out_dir) {
            (Some(path), _) => Some(path.clone()),
            (None, Some(dir)) => {
                std::fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
                Some(dir.join(format!("{}.saml-{}.metadata.xml", tenant.slug, keys::env_name(env))))
            }
            (None, None) => None,
        };
        match file {
            Some(path) => {
                std::fs::write(&path, &xml).with_context(|| format!("cannot write {}", path.display()))?;
                ctx.info(format!(
                    "wrote SP metadata of {} ({}, entity ID {}) to {}; upload it in BundID's self-service portal for the {} environment",
                    tenant.slug,
                    keys::env_name(env),
                    params.entity_id,
                    path.display(),
                    keys::env_name(env)
                ));
            }
            None => print!("{xml}"),
        }
    }
    Ok(Exit::Success)
}

fn check(ctx: &Context, args: &SkCheckArgs) -> anyhow::Result<Exit> {
    let min_validity =
        check::parse_min_validity(&args.min_validity).map_err(|e| anyhow::anyhow!("--min-validity {e}"))?;
    let catalog = ctx.catalog()?;
    let tenants: Vec<_> = select(&catalog, &args.selector)?.into_iter().filter(|t| t.servicekonto.is_some()).collect();
    if tenants.is_empty() {
        if ctx.output != OutputFormat::Table {
            print_structured(&Vec::<()>::new(), ctx.output)?;
        }
        ctx.info("no selected tenant has a Servicekonto binding");
        return Ok(Exit::Success);
    }
    let http = crate::servicekonto::http_client();
    let now = time::OffsetDateTime::now_utc();
    let rt = tokio::runtime::Runtime::new().context("cannot start the async runtime")?;
    let reports = rt.block_on(check::check_all(&http, &tenants, min_validity, now));
    match ctx.output {
        OutputFormat::Table => {
            let mut t = table(&["tenant", "provider", "status", "expires", "days", "source", "message"]);
            for r in &reports {
                let first = r.certificates.iter().min_by_key(|c| c.not_after);
                t.add_row(vec![
                    r.tenant.clone(),
                    r.provider.clone(),
                    r.status.as_str().to_string(),
                    first.map(|c| c.not_after.date().to_string()).unwrap_or_else(|| "-".into()),
                    first.map(|c| c.days_left.to_string()).unwrap_or_else(|| "-".into()),
                    r.source.clone(),
                    r.message.clone(),
                ]);
            }
            print!("{}", render_table(&t));
        }
        _ => print_structured(&reports, ctx.output)?,
    }
    let worst = reports.iter().map(|r| r.status).max().unwrap_or(Status::Ok);
    let count = |s: Status| reports.iter().filter(|r| r.status == s).count();
    ctx.info(format!(
        "{} binding(s): {} ok, {} warning, {} invalid, {} unreachable",
        reports.len(),
        count(Status::Ok),
        count(Status::Warning),
        count(Status::Invalid),
        count(Status::Unreachable)
    ));
    Ok(match worst {
        Status::Ok => Exit::Success,
        Status::Warning | Status::Invalid => Exit::Failure,
        Status::Unreachable => Exit::Unavailable,
    })
}

fn rebind(ctx: &Context, args: &SkRebindArgs) -> anyhow::Result<Exit> {
    let catalog = ctx.catalog()?;
    let files = crate::tenant::load::read_dir(&ctx.tenants_dir)?;
    let to = provider_of(args.to);
    let opts =
        rebind::Options { environment: args.environment.map(env_of), idp_metadata_url: args.idp_metadata_url.clone() };
    let plan = rebind::plan(&files, &catalog, &args.group, to, &opts)
        .with_context(|| format!("cannot rebind group {} to {}", args.group, to.as_str()))?;
    {
        match ctx.output {
            OutputFormat::Table => {
                let mut t = table(&["tenant", "from", "to", "environment", "new sp keys", "file"]);
                for c in &plan.changes {
                    t.add_row(vec![
                        c.tenant.clone(),
                        c.from.clone().unwrap_or_else(|| "-".into()),
                        c.to.clone(),
                        keys::env_name(c.environment).to_string(),
                        if c.new_keys { "yes".into() } else { "no".into() },
                        c.path.clone(),
                    ]);
                }
                print!("{}", render_table(&t));
            }
            _ => print_structured(&plan, ctx.output)?,
        }
        if !plan.unchanged.is_empty() {
            ctx.info(format!("already bound to {}: {}", plan.to, plan.unchanged.join(", ")));
        }
    }
    if !args.confirm {
        ctx.info(format!(
            "plan only: {} tenant(s) would move to {}; run again with --confirm to generate keys and write the tenant files",
            plan.changes.len(),
            plan.to
        ));
        return Ok(Exit::Success);
    }
    if plan.changes.is_empty() {
        ctx.info("nothing to do");
        return Ok(Exit::Success);
    }
    let record = rebind::apply(&plan, &args.secrets.secrets_dir)
        .with_context(|| format!("rebind of group {} failed", args.group))?;
    for t in &record.tenants {
        match &t.metadata {
            Some(md) => ctx.info(format!("{}: new SP metadata {}", t.slug, md.display())),
            None => ctx.info(format!("{}: rebound", t.slug)),
        }
    }
    ctx.info(format!(
        "{} tenant(s) moved to {}. Upload each metadata file to the IdP operator (BundID: self-service portal, per environment); \
         the previous keys are kept until `portalctl servicekonto confirm --group {}`",
        record.tenants.len(),
        record.to,
        record.group
    ));
    Ok(Exit::Success)
}

fn confirm(ctx: &Context, args: &SkConfirmArgs) -> anyhow::Result<Exit> {
    let record = rebind::confirm(&args.secrets.secrets_dir, &args.group)?;
    let kept = record.tenants.iter().filter(|t| t.previous_key.is_some()).count();
    if ctx.output != OutputFormat::Table {
        print_structured(
            &serde_json::json!({"group": record.group, "to": record.to, "removedKeyPairs": kept}),
            ctx.output,
        )?;
    }
    ctx.info(format!(
        "rebind of group {} to {} confirmed: removed {} previous key pair(s) and the pending area",
        record.group, record.to, kept
    ));
    Ok(Exit::Success)
}
