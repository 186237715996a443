//! `portalctl tenant list|show|new`.

use super::{select, Context};
use crate::cli::{TenantCommand, TenantNewArgs};
use crate::exit_codes::Exit;
use crate::output::{print_structured, render_table, table, OutputFormat};
use crate::scaffold;
use crate::tenant::{self, SourceFile};
use anyhow::{bail, Context as _};
use std::path::Path;

pub fn run(ctx: &Context, cmd: TenantCommand) -> anyhow::Result<Exit> {
    match cmd {
        TenantCommand::List(sel) => {
            let catalog = ctx.catalog()?;
            let tenants = select(&catalog, &sel)?;
            match ctx.output {
                OutputFormat::Table => {
                    let mut t = table(&["tenant", "group", "wave", "kind", "ags", "hostname", "schema", "published"]);
                    for x in &tenants {
                        t.add_row(vec![
                            x.slug.clone(),
                            x.group.clone(),
                            x.wave.clone(),
                            x.kind.as_str().to_string(),
                            // A Dachportal stands for the region and has no AGS.
                            x.ags.clone().unwrap_or_else(|| "-".into()),
                            x.primary_hostname().to_string(),
                            x.schema.clone(),
                            if x.published { "yes".into() } else { "no".into() },
                        ]);
                    }
                    print!("{}", render_table(&t));
                    ctx.info(format!("{} tenant(s)", tenants.len()));
                }
                _ => print_structured(&tenants, ctx.output)?,
            }
            Ok(Exit::Success)
        }
        TenantCommand::Show { slug } => {
            let catalog = ctx.catalog()?;
            let Some(t) = catalog.tenant(&slug) else {
                bail!("no tenant {slug:?} under {}", ctx.tenants_dir.display());
            };
            // Table output of a single object reads best as YAML.
            let fmt = if ctx.output == OutputFormat::Table { OutputFormat::Yaml } else { ctx.output };
            print_structured(t, fmt)?;
            Ok(Exit::Success)
        }
        TenantCommand::New(args) => new(ctx, &args),
    }
}

/// Write a file atomically: to a temporary sibling, then rename.
pub(super) fn write_atomic(path: &Path, text: &str) -> anyhow::Result<()> {
    let tmp = path.with_extension(format!("tmp-{}", std::process::id()));
    std::fs::write(&tmp, text).with_context(|| format!("cannot write {}", tmp.display()))?;
    std::fs::rename(&tmp, path).with_context(|| format!("cannot move {} into place", path.display()))
}

/// Validate the existing files plus new ones in memory; refuse on any error that appears.
pub(super) fn check_with(ctx: &Context, new_files: &[SourceFile]) -> anyhow::Result<()> {
    let mut files = tenant::load::read_dir(&ctx.tenants_dir).unwrap_or_default();
    files.extend_from_slice(new_files);
    let built = tenant::build(&files);
    if built.error_count() > 0 {
        for d in built.diagnostics.iter().filter(|d| d.severity == crate::diagnostics::Severity::Error) {
            eprintln!("{d}");
        }
        bail!("the new files would not validate; nothing was written");
    }
    Ok(())
}

fn new(ctx: &Context, args: &TenantNewArgs) -> anyhow::Result<Exit> {
    let catalog = ctx.catalog()?;
    let Some(group) = catalog.group(&args.group) else {
        bail!(
            "no rollout group {:?} under {}; create it with `portalctl group new`",
            args.group,
            ctx.tenants_dir.display()
        );
    };
    let wave = match &args.wave {
        Some(w) if group.wave_index(w).is_none() => {
            let known: Vec<&str> = group.waves.iter().map(|w| w.name.as_str()).collect();
            bail!("group {} has no wave {w:?}; waves: {}", group.name, known.join(", "));
        }
        Some(w) => w.clone(),
        None => group.waves.last().map(|w| w.name.clone()).unwrap_or_default(),
    };
    let ags = match (&args.ags, &args.dachportal) {
        (_, Some(name)) => return new_dachportal(ctx, args, &catalog, name, &wave),
        (Some(ags), None) => ags,
        (None, None) => bail!("give --ags (a municipality or Kreis) or --dachportal (the group's umbrella portal)"),
    };
    let Some(mut draft) = scaffold::draft_by_ags(ags) else {
        bail!("AGS {ags:?} is neither a municipality (8 digits) nor a Kreis (5 digits) of the official list; try `portalctl municipality <name>`");
    };
    if let Some(t) = catalog.tenants.iter().find(|t| t.ags.as_deref() == Some(draft.ags.as_str())) {
        bail!(
            "AGS {} ({}) is already tenant {} of group {} ({}); nothing was written (see it with `portalctl tenant \
             show {}`)",
            draft.ags,
            draft.display_name,
            t.slug,
            t.group,
            t.source,
            t.slug
        );
    }
    if args.slug.is_none() {
        let taken = catalog.tenants.iter().map(|t| t.slug.clone()).collect();
        scaffold::resolve_collisions(std::slice::from_mut(&mut draft), &taken);
    }
    if let Some(slug) = &args.slug {
        crate::names::check_slug(slug)?;
        draft.slug.clone_from(slug);
        draft.note = None;
        if args.hostname.is_none() {
            draft.hostname = format!("service.{slug}.de");
        }
    }
    if let Some(h) = &args.hostname {
        draft.hostname = crate::names::parse_hostname(h)?.ascii;
    }
    let mut command = format!("portalctl tenant new --ags {ags} --group {}", args.group);
    if let Some(s) = &args.slug {
        command.push_str(&format!(" --slug {s}"));
    }
    let text = scaffold::tenant_yaml(&draft, &group.name, &wave, &command);
    if let Some(note) = &draft.note {
        ctx.info(format!("note: {note}"));
    }
    let created = Created {
        tenant: &draft.slug,
        group: &group.name,
        wave: &wave,
        hostname: &draft.hostname,
        file: ctx.tenants_dir.join(&group.name).join(format!("{}.yaml", draft.slug)).display().to_string(),
        written: !args.dry_run,
        text: &text,
    };
    if args.dry_run {
        return created.print(ctx);
    }
    let path = write_new(ctx, &group.name, &draft.slug, &text)?;
    created.print(ctx)?;
    ctx.info(format!("created {} ({}, {})", path.display(), draft.display_name, draft.hostname));
    Ok(Exit::Success)
}

/// What `tenant new` wrote (or, with `--dry-run`, would write): the file's text for people,
/// a document for `-o json|yaml`.
#[derive(serde::Serialize)]
#[serde(rename_all = "camelCase")]
struct Created<'a> {
    tenant: &'a str,
    group: &'a str,
    wave: &'a str,
    hostname: &'a str,
    /// The tenant file.
    file: String,
    /// False with `--dry-run`.
    written: bool,
    /// The file's text.
    text: &'a str,
}

impl Created<'_> {
    fn print(&self, ctx: &Context) -> anyhow::Result<Exit> {
        match ctx.output {
            OutputFormat::Table if !self.written => print!("{}", self.text),
            OutputFormat::Table => {}
            f => print_structured(self, f)?,
        }
        Ok(Exit::Success)
    }
}

/// Validate a new tenant file together with the existing ones, then write it; refuses to overwrite.
fn write_new(ctx: &Context, group: &str, slug: &str, text: &str) -> anyhow::Result<std::path::PathBuf> {
    let path = ctx.tenants_dir.join(group).join(format!("{slug}.yaml"));
    if path.exists() {
        bail!("{} already exists; nothing was written", path.display());
    }
    let file = SourceFile {
        path: path.display().to_string(),
        group_dir: group.to_string(),
        stem: slug.to_string(),
        text: text.to_string(),
    };
    check_with(ctx, &[file])?;
    write_atomic(&path, text)?;
    Ok(path)
}

/// `tenant new --dachportal NAME`: the group's regional umbrella portal, added to an existing group.
fn new_dachportal(
    ctx: &Context,
    args: &TenantNewArgs,
    catalog: &tenant::Catalog,
    name: &str,
    wave: &str,
) -> anyhow::Result<Exit> {
    if let Some(existing) = catalog.dachportal_of(&args.group) {
        bail!("group {} already has a Dachportal: {} ({})", args.group, existing.slug, existing.source);
    }
    let slugs = catalog.tenants.iter().map(|t| t.slug.clone()).collect();
    let hosts = catalog.tenants.iter().flat_map(|t| t.hostnames.iter().cloned()).collect();
    let mut draft = scaffold::draft_dachportal(&args.group, name, args.hostname.as_deref(), &slugs, &hosts)
        .context("--dachportal")?;
    if let Some(slug) = &args.slug {
        crate::names::check_slug(slug)?;
        draft.slug.clone_from(slug);
    }
    if let Some(note) = &draft.note {
        ctx.info(format!("note: {note}"));
    }
    let mut command =
        format!("portalctl tenant new --dachportal {} --group {}", scaffold::shell_quote(name), args.group);
    if let Some(s) = &args.slug {
        command.push_str(&format!(" --slug {s}"));
    }
    if let Some(h) = &args.hostname {
        command.push_str(&format!(" --hostname {}", scaffold::shell_quote(h)));
    }
    let text = scaffold::dachportal_yaml(&draft, &args.group, wave, &command);
    let created = Created {
        tenant: &draft.slug,
        group: &args.group,
        wave,
        hostname: &draft.hostname,
        file: ctx.tenants_dir.join(&args.group).join(format!("{}.yaml", draft.slug)).display().to_string(),
        written: !args.dry_run,
        text: &text,
    };
    if args.dry_run {
        return created.print(ctx);
    }
    write_new(ctx, &args.group, &draft.slug, &text)?;
    created.print(ctx)?;
    ctx.info(format!("created the Dachportal {} of group {} ({})", draft.slug, args.group, draft.hostname));
    Ok(Exit::Success)
}
