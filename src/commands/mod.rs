//! The command layer: resolve arguments into a context, run one command, map the outcome
//! to an exit code. The only place that uses `anyhow`.

pub mod audit;
mod content;
mod db;
mod dns;
mod feedback;
mod group;
pub mod kube;
mod local;
mod municipality;
pub mod rollout;
mod serve;
mod servicekonto;
pub mod status;
mod tenant;
mod validate;

use crate::cli::{Cli, ColorChoice, Command, Selector};
use crate::exit_codes::Exit;
use crate::output::OutputFormat;
use crate::tenant::{Catalog, Tenant};
use anyhow::{bail, Context as _};
use std::path::PathBuf;

/// What every command gets: the resolved global options.
#[derive(Debug, Clone)]
pub struct Context {
    /// The tenants directory.
    pub tenants_dir: PathBuf,
    pub output: OutputFormat,
    pub quiet: bool,
}

impl Context {
    /// Load and validate the catalog; any error in any file stops here, listing them all.
    pub fn catalog(&self) -> anyhow::Result<Catalog> {
        let built = crate::tenant::load_dir(&self.tenants_dir)
            .with_context(|| format!("cannot load tenants from {}", self.tenants_dir.display()))?;
        let errors = built.error_count();
        if errors > 0 {
            for d in built.diagnostics.iter().filter(|d| d.severity == crate::diagnostics::Severity::Error) {
                eprintln!("{d}");
            }
            bail!(
                "{errors} error(s) in the tenant files under {}; fix them first (portalctl validate)",
                self.tenants_dir.display()
            );
        }
        Ok(built.catalog)
    }

    /// Print an error line to stderr (always, also with `--quiet`).
    pub fn error(&self, msg: impl AsRef<str>) {
        eprintln!("{} {}", console::style("error:").for_stderr().red().bold(), msg.as_ref());
    }

    /// Print a warning line to stderr unless `--quiet`.
    pub fn warn(&self, msg: impl AsRef<str>) {
        if !self.quiet {
            eprintln!("{} {}", console::style("warning:").for_stderr().yellow().bold(), msg.as_ref());
        }
    }

    /// Print a status line unless `--quiet`; to stderr so that stdout stays machine-readable.
    pub fn info(&self, msg: impl AsRef<str>) {
        if !self.quiet {
            eprintln!("{}", msg.as_ref());
        }
    }
}

/// Pick the tenants a selector names; unknown names are errors, not silently ignored.
pub fn select<'a>(catalog: &'a Catalog, sel: &Selector) -> anyhow::Result<Vec<&'a Tenant>> {
    if let Some(g) = &sel.group {
        let Some(group) = catalog.group(g) else {
            let known: Vec<&str> = catalog.groups.iter().map(|g| g.name.as_str()).collect();
            bail!("no rollout group {g:?}; groups: {}", known.join(", "));
        };
        if let Some(w) = &sel.wave {
            if group.wave_index(w).is_none() {
                let known: Vec<&str> = group.waves.iter().map(|w| w.name.as_str()).collect();
                bail!("group {g} has no wave {w:?}; waves: {}", known.join(", "));
            }
        }
    }
    for t in &sel.tenant {
        if catalog.tenant(t).is_none() {
            bail!("no tenant {t:?} in {}", "the tenant files");
        }
    }
    Ok(catalog
        .tenants
        .iter()
        .filter(|t| sel.group.as_ref().is_none_or(|g| &t.group == g))
        .filter(|t| sel.wave.as_ref().is_none_or(|w| &t.wave == w))
        .filter(|t| sel.tenant.is_empty() || sel.tenant.contains(&t.slug))
        .collect())
}

/// Run the parsed command line.
pub fn run(cli: Cli) -> anyhow::Result<Exit> {
    // Auto: colour on a terminal only, never with NO_COLOR (console decides per stream).
    match cli.global.color {
        ColorChoice::Always => {
            console::set_colors_enabled(true);
            console::set_colors_enabled_stderr(true);
        }
        ColorChoice::Never => {
            console::set_colors_enabled(false);
            console::set_colors_enabled_stderr(false);
        }
        ColorChoice::Auto => {}
    }
    let ctx = Context { tenants_dir: cli.global.tenants, output: cli.global.output, quiet: cli.global.quiet };
    let (name, supported) = outputs(&cli.command);
    if !supported.contains(&ctx.output) {
        let list: Vec<String> = supported.iter().map(|f| format!("{f:?}").to_lowercase()).collect();
        ctx.error(format!(
            "`{name}` does not print -o {}; it supports -o {}",
            format!("{:?}", ctx.output).to_lowercase(),
            list.join(", ")
        ));
        return Ok(Exit::Usage);
    }
    match cli.command {
        Command::Validate(args) => validate::run(&ctx, &args),
        Command::Tenant(cmd) => tenant::run(&ctx, cmd),
        Command::Group(cmd) => group::run(&ctx, cmd),
        Command::Municipality(args) => municipality::run(&ctx, &args),
        Command::Dns(cmd) => dns::run(&ctx, cmd),
        Command::Servicekonto(cmd) => servicekonto::run(&ctx, cmd),
        Command::Db(cmd) => db::run(&ctx, cmd),
        Command::Serve(args) => serve::run(&ctx, &args),
        Command::Content(cmd) => content::run(&ctx, cmd),
        Command::Feedback(cmd) => feedback::run(&ctx, cmd),
        Command::Rollout(args) => rollout::run(&ctx, args),
        Command::Status(args) => status::run(&ctx, &args),
        Command::Audit(args) => audit::run(&ctx, &args),
        Command::Render(args) => kube::render(&ctx, &args),
        Command::Diff(args) => kube::diff(&ctx, &args),
        Command::Apply(args) => kube::apply(&ctx, &args),
        Command::Offboard(args) => kube::offboard(&ctx, &args),
        Command::Up(args) => local::up(&ctx, &args),
        Command::Down(args) => local::down(&ctx, &args),
        Command::Version => version(&ctx),
        Command::Completions { shell } => {
            use clap::CommandFactory as _;
            clap_complete::generate(shell, &mut Cli::command(), "portalctl", &mut std::io::stdout());
            Ok(Exit::Success)
        }
        Command::Manpage => {
            use clap::CommandFactory as _;
            clap_mangen::Man::new(Cli::command())
                .render(&mut std::io::stdout())
                .context("cannot write the man page")?;
            Ok(Exit::Success)
        }
    }
}

/// A command's name and the `-o` formats it prints, per subcommand: an unsupported one is refused
/// (exit 2) before anything runs, never silently replaced by another. A command whose output is a
/// document of its own kind (SP metadata XML, a zone-file snippet, a man page) or a log of steps
/// taken prints only that, so `-o json|yaml` is refused for it.
fn outputs(command: &Command) -> (&'static str, &'static [OutputFormat]) {
    use crate::cli::{ContentCommand, DbCommand, DnsCommand, GroupCommand, ServicekontoCommand, TenantCommand};
    use OutputFormat::{Csv, Html, Json, Markdown, Table, Yaml};
    const STRUCTURED: &[OutputFormat] = &[Table, Json, Yaml];
    const TEXT: &[OutputFormat] = &[Table];
    match command {
        Command::Status(_) => ("status", &[Table, Json, Yaml, Markdown, Html]),
        // Kubernetes manifests are YAML; `-o yaml` says so, `-o table` is the default.
        Command::Render(_) => ("render", &[Table, Yaml]),
        Command::Diff(_) => ("diff", TEXT),
        Command::Apply(_) => ("apply", TEXT),
        Command::Offboard(_) => ("offboard", TEXT),
        Command::Serve(_) => ("serve", TEXT),
        Command::Down(_) => ("down", TEXT),
        Command::Completions { .. } => ("completions", TEXT),
        Command::Manpage => ("manpage", TEXT),
        Command::Version => ("version", STRUCTURED),
        Command::Validate(_) => ("validate", STRUCTURED),
        Command::Tenant(TenantCommand::List(_)) => ("tenant list", STRUCTURED),
        Command::Tenant(TenantCommand::Show { .. }) => ("tenant show", STRUCTURED),
        Command::Tenant(TenantCommand::New(_)) => ("tenant new", STRUCTURED),
        Command::Group(GroupCommand::List) => ("group list", STRUCTURED),
        Command::Group(GroupCommand::New(_)) => ("group new", STRUCTURED),
        Command::Municipality(_) => ("municipality", STRUCTURED),
        Command::Dns(DnsCommand::Plan { zone: true, .. }) => ("dns plan --zone", TEXT),
        Command::Dns(DnsCommand::Plan { .. }) => ("dns plan", STRUCTURED),
        Command::Dns(DnsCommand::Check { .. }) => ("dns check", STRUCTURED),
        Command::Servicekonto(ServicekontoCommand::Metadata(_)) => ("servicekonto metadata", TEXT),
        Command::Servicekonto(ServicekontoCommand::Check(_)) => ("servicekonto check", STRUCTURED),
        Command::Servicekonto(ServicekontoCommand::Rebind(_)) => ("servicekonto rebind", STRUCTURED),
        Command::Servicekonto(ServicekontoCommand::Confirm(_)) => ("servicekonto confirm", STRUCTURED),
        Command::Db(DbCommand::Provision(_)) => ("db provision", STRUCTURED),
        Command::Db(DbCommand::Migrate(_)) => ("db migrate", STRUCTURED),
        Command::Db(DbCommand::Status(_)) => ("db status", STRUCTURED),
        // The plan is a document; carrying it out prints the steps as they happen.
        Command::Db(DbCommand::Offboard(a)) if a.confirm => ("db offboard --confirm", TEXT),
        Command::Db(DbCommand::Offboard(_)) => ("db offboard", STRUCTURED),
        Command::Db(DbCommand::Restore(_)) => ("db restore", TEXT),
        Command::Content(ContentCommand::Import(_)) => ("content import", STRUCTURED),
        Command::Content(ContentCommand::Publish(_)) => ("content publish", STRUCTURED),
        Command::Content(ContentCommand::Unpublish(_)) => ("content unpublish", STRUCTURED),
        Command::Content(ContentCommand::Adopt(_)) => ("content adopt", STRUCTURED),
        Command::Content(ContentCommand::Catalogue) => ("content catalogue", STRUCTURED),
        Command::Feedback(_) => ("feedback", &[Table, Json, Yaml, Csv]),
        Command::Rollout(_) => ("rollout", STRUCTURED),
        Command::Audit(_) => ("audit", &[Table, Json, Yaml, Html]),
        Command::Up(_) => ("up", STRUCTURED),
    }
}

/// Run a future to completion on a fresh multi-threaded runtime (commands are synchronous at the top).
pub fn block_on<F: std::future::Future>(f: F) -> anyhow::Result<F::Output> {
    let rt = tokio::runtime::Builder::new_multi_thread().enable_all().build()?;
    Ok(rt.block_on(f))
}

/// `portalctl version`: what this binary is, as a short text or (`-o json|yaml`) a document.
fn version(ctx: &Context) -> anyhow::Result<Exit> {
    let info = crate::build_info::current();
    if ctx.output != OutputFormat::Table {
        crate::output::print_structured(&info, ctx.output)?;
        return Ok(Exit::Success);
    }
    let features = if info.features.is_empty() { "none".to_string() } else { info.features.join(",") };
    println!("portalctl {}", info.version);
    println!("revision:   {}", info.git_revision);
    println!("build date: {}", info.build_date.as_deref().unwrap_or("unknown"));
    println!("features:   {features}");
    println!("target:     {} ({})", info.target, info.profile);
    Ok(Exit::Success)
}
