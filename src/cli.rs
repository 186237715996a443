//! The command line, parsed by clap. Parsing only: no IO happens here. The doc comments
//! are the help text.

use crate::output::OutputFormat;
use clap::{Args, Parser, Subcommand, ValueEnum};
use std::path::PathBuf;

const AFTER_HELP: &str = "\
Exit codes:
  0  success
  1  the command ran and found problems (invalid tenant files, failed tenants, differences)
  2  the command line was wrong
  3  a required service (cluster, database, DNS) could not be reached

Examples:
  portalctl validate                                 check every tenant file
  portalctl tenant list --group krz -o json          the krz tenants as JSON
  portalctl tenant new --ags 05770008 --group krz    onboard Espelkamp from the official list
  portalctl group new heinsberg --kreis 05370        a group of all communes of Kreis Heinsberg
  portalctl render --group krz --out manifests/       the krz objects as YAML files for GitOps
  portalctl diff --group krz && portalctl apply --group krz --prune --wait";

/// Onboard municipalities as tenants of a shared Serviceportal, roll the portal out to
/// Kubernetes in waves, and track go-live status across a rollout group.
#[derive(Debug, Parser)]
#[command(name = "portalctl", version, about, long_about = None, after_help = AFTER_HELP, propagate_version = true)]
pub struct Cli {
    #[command(flatten)]
    pub global: GlobalArgs,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Args)]
pub struct GlobalArgs {
    /// Directory of tenant declarations: one subdirectory per rollout group.
    #[arg(long, global = true, env = "PORTALCTL_TENANTS", default_value = "tenants", value_name = "DIR")]
    pub tenants: PathBuf,
    /// Output format.
    #[arg(short = 'o', long = "output", global = true, value_enum, default_value_t = OutputFormat::Table)]
    pub output: OutputFormat,
    /// Print only errors (and the requested data).
    #[arg(short, long, global = true)]
    pub quiet: bool,
    /// When to colour output: auto colours only a terminal, and honours NO_COLOR.
    #[arg(long, global = true, value_enum, default_value_t = ColorChoice::Auto, value_name = "WHEN")]
    pub color: ColorChoice,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum ColorChoice {
    Auto,
    Always,
    Never,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Check every group and tenant file: all findings at once, each with file, line, field and a hint.
    Validate(ValidateArgs),
    /// List, show and scaffold tenants.
    #[command(subcommand)]
    Tenant(TenantCommand),
    /// List and scaffold rollout groups.
    #[command(subcommand)]
    Group(GroupCommand),
    /// Look up municipalities and districts in the embedded official list.
    Municipality(MunicipalityArgs),
    /// Render a group's Kubernetes objects as YAML (for GitOps), or the Helm chart's values.
    Render(crate::commands::kube::RenderArgs),
    /// Show what `apply` would change (server-side dry run against the live objects); exit 1 when anything differs.
    Diff(crate::commands::kube::DiffArgs),
    /// Apply a group's Kubernetes objects with server-side apply; `--prune` removes tenants no longer declared.
    Apply(crate::commands::kube::ApplyArgs),
    /// Remove one tenant's Kubernetes objects from the cluster (lists them; `--yes` deletes).
    Offboard(crate::commands::kube::OffboardArgs),
}

#[derive(Debug, Args)]
pub struct ValidateArgs {
    /// Treat warnings as errors.
    #[arg(long)]
    pub strict: bool,
}

#[derive(Debug, Args, Default)]
pub struct Selector {
    /// Only tenants of this rollout group.
    #[arg(long, short = 'g', value_name = "GROUP")]
    pub group: Option<String>,
    /// Only tenants of this wave.
    #[arg(long, short = 'w', value_name = "WAVE")]
    pub wave: Option<String>,
    /// Only this tenant (repeatable).
    #[arg(long, short = 't', value_name = "TENANT")]
    pub tenant: Vec<String>,
}

#[derive(Debug, Subcommand)]
pub enum TenantCommand {
    /// List tenants with group, wave, hostname and schema.
    List(Selector),
    /// Show one tenant with every inherited value resolved.
    Show {
        /// The tenant's slug.
        slug: String,
    },
    /// Scaffold a tenant file from the official municipality list.
    New(TenantNewArgs),
}

#[derive(Debug, Args)]
pub struct TenantNewArgs {
    /// AGS of the municipality (8 digits) or of a Kreis (5 digits) for the Kreis's own portal.
    #[arg(long)]
    pub ags: String,
    /// The rollout group to add the tenant to (its directory must exist).
    #[arg(long, short = 'g')]
    pub group: String,
    /// Wave to put the tenant in (default: the group's last wave).
    #[arg(long)]
    pub wave: Option<String>,
    /// Override the derived slug.
    #[arg(long)]
    pub slug: Option<String>,
    /// Override the derived hostname (service.<slug>.de).
    #[arg(long)]
    pub hostname: Option<String>,
    /// Print the file instead of writing it.
    #[arg(long)]
    pub dry_run: bool,
}

#[derive(Debug, Subcommand)]
pub enum GroupCommand {
    /// List rollout groups with their waves and tenant counts.
    List,
    /// Scaffold a group: all communes of the given Kreise, plus the Kreise themselves.
    New(GroupNewArgs),
}

#[derive(Debug, Args)]
pub struct GroupNewArgs {
    /// Name of the group (a DNS label, e.g. krz).
    pub name: String,
    /// AGS of a Kreis (5 digits) whose communes join the group (repeatable). A kreisfreie
    /// Stadt's 5 digits add just the city.
    #[arg(long = "kreis", required = true, value_name = "AGS")]
    pub kreise: Vec<String>,
    /// Slug of a pilot commune (repeatable); pilots form the first wave.
    #[arg(long = "pilot", value_name = "SLUG")]
    pub pilots: Vec<String>,
    /// Do not add the Kreise themselves as tenants.
    #[arg(long)]
    pub no_kreis_tenants: bool,
    /// Human-readable name of the group.
    #[arg(long)]
    pub display_name: Option<String>,
    /// The IT service provider that operates the group.
    #[arg(long)]
    pub operator: Option<String>,
    /// Print what would be written instead of writing it.
    #[arg(long)]
    pub dry_run: bool,
}

#[derive(Debug, Args)]
pub struct MunicipalityArgs {
    /// Part of a name (case-insensitive) or an AGS prefix, e.g. "Oldendorf" or 05770.
    pub query: String,
    /// Only this Land (two-letter code, e.g. NW).
    #[arg(long)]
    pub land: Option<String>,
}
