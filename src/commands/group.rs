//! `portalctl group list|new`.

use super::Context;
use crate::cli::{GroupCommand, GroupNewArgs};
use crate::exit_codes::Exit;
use crate::municipality::Registry;
use crate::output::{print_structured, render_table, table, OutputFormat};
use crate::scaffold::{self, Draft, GroupDraft};
use crate::tenant::{MunicipalityKind, SourceFile};
use anyhow::{bail, Context as _};
use serde::Serialize;

pub fn run(ctx: &Context, cmd: GroupCommand) -> anyhow::Result<Exit> {
    match cmd {
        GroupCommand::List => list(ctx),
        GroupCommand::New(args) => new(ctx, &args),
    }
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct GroupRow<'a> {
    name: &'a str,
    display_name: &'a str,
    namespace: &'a str,
    waves: Vec<WaveRow<'a>>,
    tenants: usize,
    published: usize,
}

#[derive(Serialize)]
struct WaveRow<'a> {
    name: &'a str,
    tenants: usize,
}

fn list(ctx: &Context) -> anyhow::Result<Exit> {
    let catalog = ctx.catalog()?;
    let rows: Vec<GroupRow> = catalog
        .groups
        .iter()
        .map(|g| GroupRow {
            name: &g.name,
            display_name: &g.display_name,
            namespace: &g.namespace,
            waves: g
                .waves
                .iter()
                .map(|w| WaveRow {
                    name: &w.name,
                    tenants: catalog.tenants_of(&g.name).filter(|t| t.wave == w.name).count(),
                })
                .collect(),
            tenants: catalog.tenants_of(&g.name).count(),
            published: catalog.tenants_of(&g.name).filter(|t| t.published).count(),
        })
        .collect();
    match ctx.output {
        OutputFormat::Table => {
            let mut t = table(&["group", "tenants", "published", "waves", "namespace", "display name"]);
            for r in &rows {
                let waves: Vec<String> = r.waves.iter().map(|w| format!("{} ({})", w.name, w.tenants)).collect();
                t.add_row(vec![
                    r.name.to_string(),
                    r.tenants.to_string(),
                    r.published.to_string(),
                    waves.join(" → "),
                    r.namespace.to_string(),
                    r.display_name.to_string(),
                ]);
            }
            print!("{}", render_table(&t));
        }
        _ => print_structured(&rows, ctx.output)?,
    }
    Ok(Exit::Success)
}

/// The tenants a group of Kreise comprises, in AGS order (each Kreis's own portal after its communes).
fn drafts_for(kreise: &[String], with_kreis_tenants: bool) -> anyhow::Result<Vec<Draft>> {
    let r = Registry::official();
    let mut drafts = Vec::new();
    for k in kreise {
        if !(k.len() == 5 && k.bytes().all(|b| b.is_ascii_digit())) {
            bail!("--kreis {k:?}: a Kreis AGS has 5 digits, e.g. 05770 (Kreis Minden-Lübbecke)");
        }
        let Some(kreis) = r.kreis(k) else {
            bail!("--kreis {k}: no such Kreis in the official list");
        };
        if let Some(city) = r.municipality(&format!("{k}000")).filter(|m| m.is_kreisfrei()) {
            drafts.push(scaffold::draft_municipality(city));
            continue;
        }
        drafts.extend(r.in_kreis(k).map(scaffold::draft_municipality));
        if with_kreis_tenants {
            drafts.push(scaffold::draft_kreis(kreis));
        }
    }
    Ok(drafts)
}

fn new(ctx: &Context, args: &GroupNewArgs) -> anyhow::Result<Exit> {
    crate::names::check_slug(&args.name).context("group name")?;
    let existing = if ctx.tenants_dir.exists() { ctx.catalog()? } else { Default::default() };
    let taken: std::collections::HashSet<String> = existing.tenants.iter().map(|t| t.slug.clone()).collect();
    let dir = ctx.tenants_dir.join(&args.name);
    if dir.exists() {
        bail!("{} already exists; nothing was written (add single tenants with `portalctl tenant new`)", dir.display());
    }
    let mut drafts = drafts_for(&args.kreise, !args.no_kreis_tenants)?;
    // A commune that is already a tenant (of another group) stays where it is: left out, said once.
    let before = drafts.len();
    drafts.retain(|d| match existing.tenants.iter().find(|t| t.ags.as_deref() == Some(d.ags.as_str())) {
        Some(t) => {
            ctx.info(format!(
                "note: {} (AGS {}) is already tenant {} of group {} ({}); left out of group {}",
                d.display_name, d.ags, t.slug, t.group, t.source, args.name
            ));
            false
        }
        None => true,
    });
    if drafts.is_empty() && before > 0 {
        bail!("every commune of the given Kreise is already a tenant; nothing was written");
    }
    scaffold::resolve_collisions(&mut drafts, &taken);
    for d in &mut drafts {
        // `group new` has no --slug: the slug is changed in the file.
        d.note =
            d.note.take().map(|n| n.replace("pass --slug to choose another", "edit metadata.name to choose another"));
    }
    for p in &args.pilots {
        if !drafts.iter().any(|d| &d.slug == p) {
            let slugs: Vec<&str> = drafts.iter().map(|d| d.slug.as_str()).collect();
            bail!("--pilot {p:?} is not one of the group's tenants: {}", slugs.join(", "));
        }
    }
    let dachportal = match &args.dachportal {
        Some(name) => {
            let mut slugs = taken.clone();
            slugs.extend(drafts.iter().map(|d| d.slug.clone()));
            let hosts: std::collections::HashSet<String> = existing
                .tenants
                .iter()
                .flat_map(|t| t.hostnames.iter().cloned())
                .chain(drafts.iter().map(|d| d.hostname.clone()))
                .collect();
            let d = scaffold::draft_dachportal(&args.name, name, args.dachportal_hostname.as_deref(), &slugs, &hosts)
                .context("--dachportal")?;
            if let Some(note) = &d.note {
                ctx.info(format!("note: {note}"));
            }
            Some(d)
        }
        None => None,
    };
    let waves: Vec<String> =
        if args.pilots.is_empty() { vec!["main".into()] } else { vec!["pilot".into(), "main".into()] };
    let mut command = format!("portalctl group new {}", args.name);
    for k in &args.kreise {
        command.push_str(&format!(" --kreis {k}"));
    }
    for p in &args.pilots {
        command.push_str(&format!(" --pilot {p}"));
    }
    if args.no_kreis_tenants {
        command.push_str(" --no-kreis-tenants");
    }
    if let Some(name) = &args.dachportal {
        command.push_str(&format!(" --dachportal {}", scaffold::shell_quote(name)));
    }
    if let Some(h) = &args.dachportal_hostname {
        command.push_str(&format!(" --dachportal-hostname {}", scaffold::shell_quote(h)));
    }
    let r = Registry::official();
    let display_name = args.display_name.clone().unwrap_or_else(|| {
        let names: Vec<String> = args.kreise.iter().filter_map(|k| r.kreis(k)).map(|k| k.name.clone()).collect();
        format!("Serviceportale {}", names.join(", "))
    });
    let lands: std::collections::BTreeSet<&str> =
        args.kreise.iter().filter_map(|k| r.kreis(k)).map(|k| k.land.as_str()).collect();
    let land = (lands.len() == 1).then(|| lands.into_iter().next().unwrap_or_default().to_string());
    let gd = GroupDraft { name: args.name.clone(), display_name, operator: args.operator.clone(), waves, land };
    let mut files = vec![SourceFile {
        path: dir.join("group.yaml").display().to_string(),
        group_dir: args.name.clone(),
        stem: "group".into(),
        text: scaffold::group_yaml(&gd, &command),
    }];
    for d in &drafts {
        let wave = if args.pilots.contains(&d.slug) { "pilot" } else { "main" };
        let tenant_cmd = format!("portalctl group new {} (AGS {})", args.name, d.ags);
        files.push(SourceFile {
            path: dir.join(format!("{}.yaml", d.slug)).display().to_string(),
            group_dir: args.name.clone(),
            stem: d.slug.clone(),
            text: scaffold::tenant_yaml(d, &args.name, wave, &tenant_cmd),
        });
    }
    if let Some(d) = &dachportal {
        let name = args.dachportal.as_deref().unwrap_or_default();
        let tenant_cmd = format!("portalctl group new {} --dachportal {}", args.name, scaffold::shell_quote(name));
        files.push(SourceFile {
            path: dir.join(format!("{}.yaml", d.slug)).display().to_string(),
            group_dir: args.name.clone(),
            stem: d.slug.clone(),
            text: scaffold::dachportal_yaml(d, &args.name, "main", &tenant_cmd),
        });
    }
    for d in &drafts {
        if let Some(note) = &d.note {
            ctx.info(format!("note: {note}"));
        }
    }
    // The dry run validates exactly as the real run does.
    super::tenant::check_with(ctx, &files)?;
    if args.dry_run {
        match ctx.output {
            OutputFormat::Table => {
                for f in &files {
                    println!("---\n# {}\n{}", f.path, f.text);
                }
            }
            _ => {
                let docs: Vec<serde_json::Value> =
                    files.iter().map(|f| serde_json::json!({"file": f.path, "text": f.text})).collect();
                print_structured(
                    &serde_json::json!({"group": args.name, "directory": dir.display().to_string(), "written": false,
                        "files": docs}),
                    ctx.output,
                )?;
            }
        }
        return Ok(Exit::Success);
    }
    // Write everything into a hidden sibling directory, then rename it into place in one step.
    std::fs::create_dir_all(&ctx.tenants_dir)
        .with_context(|| format!("cannot create {}", ctx.tenants_dir.display()))?;
    let staging = ctx.tenants_dir.join(format!(".{}.staging-{}", args.name, std::process::id()));
    std::fs::create_dir(&staging).with_context(|| format!("cannot create {}", staging.display()))?;
    let result = (|| -> anyhow::Result<()> {
        for f in &files {
            let name = format!("{}.yaml", f.stem);
            std::fs::write(staging.join(&name), &f.text).with_context(|| format!("cannot write {name}"))?;
        }
        std::fs::rename(&staging, &dir).with_context(|| format!("cannot move the new group into {}", dir.display()))
    })();
    if let Err(e) = result {
        let _ = std::fs::remove_dir_all(&staging);
        return Err(e);
    }
    match ctx.output {
        OutputFormat::Table => {
            let mut t = table(&["tenant", "wave", "kind", "ags", "hostname"]);
            for d in &drafts {
                let wave = if args.pilots.contains(&d.slug) { "pilot" } else { "main" };
                t.add_row(vec![
                    d.slug.clone(),
                    wave.to_string(),
                    d.kind.as_str().to_string(),
                    d.ags.clone(),
                    d.hostname.clone(),
                ]);
            }
            if let Some(d) = &dachportal {
                t.add_row(vec![
                    d.slug.clone(),
                    "main".to_string(),
                    MunicipalityKind::Dachportal.as_str().to_string(),
                    "-".to_string(),
                    d.hostname.clone(),
                ]);
            }
            if !ctx.quiet {
                print!("{}", render_table(&t));
            }
        }
        _ => {
            let slugs: Vec<&str> =
                drafts.iter().map(|d| d.slug.as_str()).chain(dachportal.as_ref().map(|d| d.slug.as_str())).collect();
            print_structured(
                &serde_json::json!({"group": args.name, "directory": dir.display().to_string(), "written": true,
                    "tenants": slugs}),
                ctx.output,
            )?;
        }
    }
    let count = drafts.len() + usize::from(dachportal.is_some());
    ctx.info(format!("created group {} in {} with {count} tenant(s)", args.name, dir.display()));
    Ok(Exit::Success)
}
