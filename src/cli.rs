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
  portalctl up                                       every bundled portal running locally (http://<slug>.localhost:8080/)
  portalctl status                                   where each tenant stands (after `up`: the local mode)
  portalctl validate                                 check every tenant file
  portalctl tenant list --group krz -o json          the krz tenants as JSON
  portalctl tenant new --ags 05770008 --group krz    onboard Espelkamp from the official list
  portalctl group new heinsberg --kreis 05370        a group of all communes of Kreis Heinsberg";

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
    /// Plan and check the DNS records of tenants' hostnames.
    #[command(subcommand)]
    Dns(DnsCommand),
    /// Citizen login (BundID and other SAML or OIDC accounts): SP metadata, IdP checks, rebinding.
    #[command(subcommand)]
    Servicekonto(ServicekontoCommand),
    /// Tenant databases: provision schemas and roles, migrate, check, offboard.
    #[command(subcommand)]
    Db(DbCommand),
    /// Run the portal server: every tenant's citizen portal, chosen by the Host header.
    Serve(ServeArgs),
    /// Import, publish and re-use portal content (services, facilities, staff).
    #[command(subcommand)]
    Content(ContentCommand),
    /// Citizens' feedback stored by the portals ("War diese Seite hilfreich?", barrier reports):
    /// list or export one tenant's (`-o csv|json`).
    #[command(subcommand)]
    Feedback(FeedbackCommand),
    /// Roll a group out wave by wave: provision, apply, verify; pilots first. `rollout pause|resume` hold a group.
    Rollout(crate::commands::rollout::RolloutArgs),
    /// Go-live status per tenant and in sum ("36 installed, 22 online"), from the cluster, the database, DNS and
    /// the portals themselves; `-o markdown|html` for reports.
    Status(crate::commands::status::StatusArgs),
    /// Accessibility audit of each tenant's pages (axe-core in headless Chromium) and their security headers;
    /// exit 1 on any serious or critical violation.
    Audit(crate::commands::audit::AuditArgs),
    /// Render a group's Kubernetes objects as YAML (for GitOps), or the Helm chart's values.
    Render(crate::commands::kube::RenderArgs),
    /// Show what `apply` would change (server-side dry run against the live objects); exit 1 when anything differs.
    Diff(crate::commands::kube::DiffArgs),
    /// Apply a group's Kubernetes objects with server-side apply; `--prune` removes tenants no longer declared.
    Apply(crate::commands::kube::ApplyArgs),
    /// Remove one tenant's Kubernetes objects from the cluster (lists them; `--yes` deletes).
    Offboard(crate::commands::kube::OffboardArgs),
    /// Local all-in-one mode: a private PostgreSQL, every tenant provisioned with the starter
    /// catalogue, and the portal server at http://<slug>.localhost:<port>.
    Up(UpArgs),
    /// Stop the local all-in-one mode (portal server and private PostgreSQL), keeping data.
    Down(DownArgs),
    /// Print a shell completion script: `portalctl completions bash > /etc/bash_completion.d/portalctl`
    /// (zsh: into a directory on `$fpath` as `_portalctl`; fish: `~/.config/fish/completions/portalctl.fish`).
    Completions {
        /// The shell.
        #[arg(value_enum)]
        shell: clap_complete::Shell,
    },
    /// Print the man page (roff): `portalctl manpage > /usr/local/share/man/man1/portalctl.1`.
    Manpage,
    /// Version, git revision, build date and enabled features of this binary (`-o json` for scripts).
    Version,
}

#[derive(Debug, Args)]
pub struct UpArgs {
    /// State directory of the local mode (PostgreSQL data, secrets, server log and pid).
    #[arg(long, default_value = ".portalctl", value_name = "DIR")]
    pub state_dir: PathBuf,
    /// Port of the private PostgreSQL (on 127.0.0.1).
    #[arg(long, default_value_t = 54330, value_name = "PORT")]
    pub db_port: u16,
    /// Port of the portal server (on 127.0.0.1).
    #[arg(long, default_value_t = 8080, value_name = "PORT")]
    pub port: u16,
    /// Port of the portal server's operations listener (on 127.0.0.1): /healthz, /readyz,
    /// /metrics and the identity endpoint.
    #[arg(long, default_value_t = 9090, value_name = "PORT")]
    pub ops_port: u16,
    /// Use this existing PostgreSQL server (a superuser URL) instead of starting a private one.
    #[arg(long, value_name = "URL", hide_env_values = true)]
    pub database_url: Option<String>,
    /// Seconds to wait for the portal server to become ready.
    #[arg(long, default_value_t = 60, value_name = "SECONDS")]
    pub timeout: u64,
}

#[derive(Debug, Args)]
pub struct DownArgs {
    /// State directory of the local mode.
    #[arg(long, default_value = ".portalctl", value_name = "DIR")]
    pub state_dir: PathBuf,
    /// Port of the private PostgreSQL (as given to `up`).
    #[arg(long, default_value_t = 54330, value_name = "PORT")]
    pub db_port: u16,
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
    #[arg(long, required_unless_present = "dachportal")]
    pub ags: Option<String>,
    /// Instead of a municipality: the group's regional umbrella portal ("Dachportal") with this display name,
    /// linking to every other tenant of the group.
    #[arg(long, value_name = "DISPLAY NAME", conflicts_with = "ags")]
    pub dachportal: Option<String>,
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
    /// Add the group's regional umbrella portal ("Dachportal") with this display name; its slug is derived from
    /// the name, and it links to every other tenant of the group.
    #[arg(long, value_name = "DISPLAY NAME")]
    pub dachportal: Option<String>,
    /// Hostname of the Dachportal (default: service.<group>.de).
    #[arg(long, value_name = "HOSTNAME", requires = "dachportal")]
    pub dachportal_hostname: Option<String>,
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

#[derive(Debug, Subcommand)]
pub enum DnsCommand {
    /// The records every hostname needs, as a table, JSON/YAML, or a zone-file snippet (`--zone`).
    Plan {
        #[command(flatten)]
        args: DnsArgs,
        /// Print a zone-file snippet instead of a table.
        #[arg(long)]
        zone: bool,
    },
    /// Resolve every hostname and report those that do not point at the ingress (exit code 1 if any).
    Check {
        #[command(flatten)]
        args: DnsArgs,
        /// Name server to ask, as IP:PORT (repeatable; default: the system resolver).
        #[arg(long, value_name = "IP:PORT")]
        nameserver: Vec<std::net::SocketAddr>,
    },
}

#[derive(Debug, Args)]
pub struct DnsArgs {
    #[command(flatten)]
    pub selector: Selector,
    /// Where the hostnames must point: the ingress's IP address (A/AAAA) or host name (CNAME).
    #[arg(long, value_name = "IP|HOST")]
    pub ingress: String,
}

#[derive(Debug, Subcommand)]
pub enum ServicekontoCommand {
    /// Write a tenant's SAML SP metadata for the IdP operator (generates the SP key pair if missing).
    Metadata(SkMetadataArgs),
    /// Fetch each binding's IdP metadata or OIDC discovery and JWKS; report certificate expiry.
    Check(SkCheckArgs),
    /// Move every tenant of a group to another provider (new SP keys and metadata per tenant).
    Rebind(SkRebindArgs),
    /// After the IdP operator confirmed the new metadata: drop the keys kept from before a rebind.
    Confirm(SkConfirmArgs),
}

/// Where SP keys and other credentials are kept in local mode.
#[derive(Debug, Args)]
pub struct SecretsDirArg {
    /// Directory of local credentials (SP keys: <group>/<tenant>.saml-<env>.key.pem, mode 0600).
    #[arg(long, env = "PORTALCTL_SECRETS_DIR", default_value = ".portalctl/secrets", value_name = "DIR")]
    pub secrets_dir: PathBuf,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum EnvironmentArg {
    /// The IdP's integration (test) environment; BundID: https://int.id.bund.de/idp.
    #[value(alias = "test")]
    Integration,
    /// The IdP's production environment; BundID: https://id.bund.de/idp.
    #[value(alias = "live")]
    Production,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum ProviderArg {
    /// The federal BundID (SAML 2.0).
    Bundid,
    /// BayernID (SAML 2.0).
    Bayernid,
    /// Any other SAML 2.0 identity provider.
    Saml,
    /// Any OpenID Connect provider.
    Oidc,
}

#[derive(Debug, Args)]
pub struct SkMetadataArgs {
    /// The tenant's slug.
    #[arg(long, short = 't')]
    pub tenant: String,
    /// Which registration: BundID has separate integration and production environments (default: the
    /// binding's; with --out-dir: both).
    #[arg(long, value_enum)]
    pub environment: Option<EnvironmentArg>,
    /// Write the metadata to this file instead of stdout.
    #[arg(long, value_name = "FILE", conflicts_with = "out_dir")]
    pub out: Option<PathBuf>,
    /// Write one metadata file per environment into this directory: <tenant>.saml-<environment>.metadata.xml.
    #[arg(long, value_name = "DIR")]
    pub out_dir: Option<PathBuf>,
    #[command(flatten)]
    pub secrets: SecretsDirArg,
}

#[derive(Debug, Args)]
pub struct SkCheckArgs {
    #[command(flatten)]
    pub selector: Selector,
    /// Warn when an IdP certificate expires within this time (e.g. 30d, 12h).
    #[arg(long, default_value = "30d", value_name = "DURATION")]
    pub min_validity: String,
}

#[derive(Debug, Args)]
pub struct SkRebindArgs {
    /// The rollout group whose tenants move.
    #[arg(long, short = 'g')]
    pub group: String,
    /// The provider to move to.
    #[arg(long, value_enum)]
    pub to: ProviderArg,
    /// Environment to generate SP keys for (default: each tenant's binding environment).
    #[arg(long, value_enum)]
    pub environment: Option<EnvironmentArg>,
    /// Also set servicekonto.idpMetadataUrl (the new IdP's metadata URL).
    #[arg(long, value_name = "URL")]
    pub idp_metadata_url: Option<String>,
    /// Carry out the plan: generate keys and metadata, write the tenant files. Without it, only print the plan.
    #[arg(long)]
    pub confirm: bool,
    #[command(flatten)]
    pub secrets: SecretsDirArg,
}

#[derive(Debug, Args)]
pub struct SkConfirmArgs {
    /// The rollout group whose rebind the IdP operator confirmed.
    #[arg(long, short = 'g')]
    pub group: String,
    #[command(flatten)]
    pub secrets: SecretsDirArg,
}

#[derive(Debug, Subcommand)]
pub enum DbCommand {
    /// Create each tenant's schema and login role, its group's portal role, and store the
    /// generated passwords (never printed). Idempotent.
    Provision(DbProvisionArgs),
    /// Apply the embedded migrations to every selected tenant schema.
    Migrate(DbMigrateArgs),
    /// Per tenant: schema, role, migration version against the latest, published content.
    Status(DbStatusArgs),
    /// Dump a tenant's schema, then drop schema and role. Without --confirm only shows the plan.
    Offboard(DbOffboardArgs),
    /// Restore a tenant's schema from an offboarding dump, then provision and migrate it.
    Restore(DbRestoreArgs),
}

/// How to reach the database (an administrating role: it creates schemas and roles).
#[derive(Debug, Args)]
pub struct DbConnArgs {
    /// PostgreSQL URL of an administrating role, e.g. postgres://admin@db.example:5432/portal.
    #[arg(long, env = "DATABASE_URL", hide_env_values = true, value_name = "URL")]
    pub database_url: Option<String>,
    /// TLS to the database: disable, prefer (TLS if offered, unchecked), require (TLS,
    /// checked only with --db-ca-file) or verify-full (chain and host name checked).
    /// Default: the URL's sslmode, else prefer.
    #[arg(long, value_enum, value_name = "MODE")]
    pub db_sslmode: Option<DbSslMode>,
    /// PEM file with the CA certificate(s) to verify the database server with.
    #[arg(long, value_name = "FILE")]
    pub db_ca_file: Option<PathBuf>,
    /// Seconds to wait for a connection before giving up.
    #[arg(long, default_value_t = 10, value_name = "SECONDS")]
    pub db_connect_timeout: u64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum DbSslMode {
    Disable,
    Prefer,
    Require,
    VerifyFull,
}

/// Where generated database credentials go.
#[derive(Debug, Args)]
pub struct SecretsArgs {
    /// local: JSON files (mode 0600) under --secrets-dir; kubernetes: Secrets <tenant>-db and
    /// portal-db in the group's namespace (server-side apply).
    #[arg(long, value_enum, default_value_t = SecretsMode::Local, value_name = "STORE")]
    pub secrets: SecretsMode,
    /// Directory for local credential files: <dir>/<group>/<tenant>.db.json.
    #[arg(long, default_value = ".portalctl/secrets", value_name = "DIR")]
    pub secrets_dir: PathBuf,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum SecretsMode {
    Local,
    Kubernetes,
}

#[derive(Debug, Args)]
pub struct DbProvisionArgs {
    #[command(flatten)]
    pub conn: DbConnArgs,
    #[command(flatten)]
    pub select: Selector,
    #[command(flatten)]
    pub secrets: SecretsArgs,
    /// The cluster of `--secrets kubernetes`.
    #[command(flatten)]
    pub cluster: crate::commands::kube::ClusterArgs,
    /// Tenants provisioned at once (one connection each).
    #[arg(long, default_value_t = 8, value_name = "N")]
    pub concurrency: usize,
}

#[derive(Debug, Args)]
pub struct DbMigrateArgs {
    #[command(flatten)]
    pub conn: DbConnArgs,
    #[command(flatten)]
    pub select: Selector,
    /// Tenants migrated at once (one connection each).
    #[arg(long, default_value_t = 8, value_name = "N")]
    pub concurrency: usize,
}

#[derive(Debug, Args)]
pub struct DbStatusArgs {
    #[command(flatten)]
    pub conn: DbConnArgs,
    #[command(flatten)]
    pub select: Selector,
    /// Where the credentials are kept: each stored tenant credential is checked by logging in
    /// with it; one that does not log in is a failure (exit 1).
    #[command(flatten)]
    pub secrets: SecretsArgs,
    /// The cluster of `--secrets kubernetes`.
    #[command(flatten)]
    pub cluster: crate::commands::kube::ClusterArgs,
}

#[derive(Debug, Args)]
pub struct DbOffboardArgs {
    #[command(flatten)]
    pub conn: DbConnArgs,
    /// The tenant to offboard.
    #[arg(long, short = 't', value_name = "TENANT")]
    pub tenant: String,
    /// Really do it. Without this flag only the plan is shown.
    #[arg(long)]
    pub confirm: bool,
    /// Where the schema dump is written before anything is dropped.
    #[arg(long, default_value = ".portalctl/backups", value_name = "DIR")]
    pub backup_dir: PathBuf,
    /// pg_dump to use (default: on PATH, else in PostgreSQL's bin directory).
    #[arg(long, env = "PORTALCTL_PG_DUMP", value_name = "PATH")]
    pub pg_dump: Option<PathBuf>,
    #[command(flatten)]
    pub secrets: SecretsArgs,
    /// The cluster of `--secrets kubernetes`.
    #[command(flatten)]
    pub cluster: crate::commands::kube::ClusterArgs,
}

#[derive(Debug, Args)]
pub struct DbRestoreArgs {
    #[command(flatten)]
    pub conn: DbConnArgs,
    /// The tenant to restore (its schema must not exist).
    #[arg(long, short = 't', value_name = "TENANT")]
    pub tenant: String,
    /// The dump written by `db offboard` (`<tenant>-<schema>-<time>.sql`).
    #[arg(value_name = "FILE")]
    pub file: PathBuf,
    /// psql to use (default: on PATH, else in PostgreSQL's bin directory).
    #[arg(long, env = "PORTALCTL_PSQL", value_name = "PATH")]
    pub psql: Option<PathBuf>,
    #[command(flatten)]
    pub secrets: SecretsArgs,
    /// The cluster of `--secrets kubernetes`.
    #[command(flatten)]
    pub cluster: crate::commands::kube::ClusterArgs,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum TenantSourceKind {
    /// The global --tenants directory, re-read when a file changes.
    Dir,
    /// ConfigMaps labelled portalctl.dev/tenant in the pod's own namespace.
    Kubernetes,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum LogFormat {
    Text,
    Json,
}

#[derive(Debug, Args)]
pub struct ServeArgs {
    /// Address to listen on (the public pages; no operations endpoints).
    #[arg(long, default_value = "127.0.0.1:8080", value_name = "ADDR")]
    pub listen: String,
    /// Address of the operations listener: /healthz, /readyz, /metrics and the identity endpoint
    /// (keep it off the public network; in a pod 0.0.0.0:9090 behind the NetworkPolicy).
    #[arg(long, default_value = "127.0.0.1:9090", value_name = "ADDR")]
    pub ops_listen: String,
    /// PostgreSQL URL of the group role (a member of every tenant role).
    #[arg(long, env = "DATABASE_URL", value_name = "URL", hide_env_values = true)]
    pub database_url: String,
    /// Where tenants come from.
    #[arg(long, value_enum, default_value_t = TenantSourceKind::Dir)]
    pub tenant_source: TenantSourceKind,
    /// Seconds between checks for added, changed or removed tenants.
    #[arg(long, default_value_t = 2, value_name = "SECONDS")]
    pub poll_interval: u64,
    /// Database connections in the pool (in shards of two; a tenant uses its shard and at most
    /// one borrowed connection).
    #[arg(long, default_value_t = 16)]
    pub pool_size: usize,
    /// Milliseconds a portal read may run (`statement_timeout`); then 503.
    #[arg(long, default_value_t = 5000, value_name = "MS")]
    pub statement_timeout_ms: u64,
    /// Milliseconds a portal read may wait for a lock on a tenant's table (`lock_timeout`); then 503.
    #[arg(long, default_value_t = 1000, value_name = "MS")]
    pub lock_timeout_ms: u64,
    /// Milliseconds a read waits for a database connection when its tenant's are all busy; then 503.
    #[arg(long, default_value_t = 2000, value_name = "MS")]
    pub pool_wait_ms: u64,
    /// Seconds for a request's headers to arrive once they have begun to.
    #[arg(long, default_value_t = 10, value_name = "SECONDS")]
    pub header_read_timeout: u64,
    /// Seconds a connection may stay open without a request (also between requests on a
    /// kept-alive connection); keep it above the Ingress's upstream keep-alive timeout.
    #[arg(long, default_value_t = 75, value_name = "SECONDS")]
    pub idle_timeout: u64,
    /// Seconds to answer a request, body included; then 503.
    #[arg(long, default_value_t = 30, value_name = "SECONDS")]
    pub request_timeout: u64,
    /// Open connections at most (lowered to fit `ulimit -n`); more are closed at once.
    #[arg(long, default_value_t = 1024, value_name = "N")]
    pub max_connections: usize,
    /// Requests handled at once; more are answered 503 at once.
    #[arg(long, default_value_t = 256, value_name = "N")]
    pub max_concurrent_requests: usize,
    /// Seconds in-flight requests may still run after SIGTERM before the server exits anyway.
    #[arg(long, default_value_t = 10, value_name = "SECONDS")]
    pub shutdown_timeout: u64,
    /// Milliseconds a rendered home page is reused as it is; an older one is re-rendered in the
    /// background and one older than twice this is never served (0: render every time).
    #[arg(long, default_value_t = 2000, value_name = "MS")]
    pub home_cache_ms: u64,
    /// Log format.
    #[arg(long, value_enum, default_value_t = LogFormat::Text)]
    pub log_format: LogFormat,
    /// Where Servicekonto SP keys and OIDC client secrets live.
    #[arg(long, default_value = ".portalctl/secrets", value_name = "DIR")]
    pub secrets_dir: PathBuf,
    /// Session cookies without `Secure` and login URLs over plain http (local use only).
    #[arg(long)]
    pub insecure_http_cookies: bool,
    /// Also serve every tenant on `<slug>.localhost` (local mode).
    #[arg(long)]
    pub local_hostnames: bool,
    /// The largest share (0–1) of the served tenants that one reload may remove; a larger
    /// removal (an emptied directory, a namespace being deleted) is refused and logged, and the
    /// server keeps serving. A restart accepts it.
    #[arg(long, default_value_t = crate::portal::source::DEFAULT_MAX_REMOVAL, value_name = "SHARE",
          value_parser = parse_share)]
    pub reload_max_removal: f64,
    /// Feedback submissions accepted per client address and hour (IPv6: per /64); more get 429.
    #[arg(long, default_value_t = 10, value_name = "N", value_parser = clap::value_parser!(u32).range(1..))]
    pub feedback_per_client: u32,
    /// Feedback submissions accepted per tenant and hour, all clients together; more get 429.
    #[arg(long, default_value_t = 300, value_name = "N", value_parser = clap::value_parser!(u32).range(1..))]
    pub feedback_per_tenant: u32,
    /// Templates that replace the embedded ones of the same name (layout.html, home.html, not_found.html, …); all
    /// are checked at start.
    #[arg(long, env = "PORTALCTL_TEMPLATES", value_name = "DIR")]
    pub templates: Option<PathBuf>,
}

#[derive(Debug, Subcommand)]
pub enum FeedbackCommand {
    /// Show a tenant's feedback: a table, or `-o json|yaml|csv`.
    List(FeedbackArgs),
    /// Write a tenant's feedback for further processing: CSV by default (`-o json` for JSON).
    Export(FeedbackArgs),
}

#[derive(Debug, Args)]
pub struct FeedbackArgs {
    /// The tenant whose feedback is read.
    #[arg(long, short = 't', value_name = "TENANT")]
    pub tenant: String,
    /// Only feedback received on or after this day (YYYY-MM-DD, UTC) or instant (RFC 3339).
    #[arg(long, value_name = "DATE", value_parser = parse_since)]
    pub since: Option<time::OffsetDateTime>,
    #[command(flatten)]
    pub conn: DbConnArgs,
}

fn parse_since(s: &str) -> Result<time::OffsetDateTime, String> {
    use time::format_description::well_known::Rfc3339;
    if let Ok(t) = time::OffsetDateTime::parse(s, &Rfc3339) {
        return Ok(t);
    }
    let day = time::macros::format_description!("[year]-[month]-[day]");
    time::Date::parse(s, &day)
        .map(|d| d.midnight().assume_utc())
        .map_err(|_| format!("{s:?} is neither a day (2026-11-29) nor an instant (2026-11-29T08:00:00Z)"))
}

fn parse_share(s: &str) -> Result<f64, String> {
    match s.parse::<f64>() {
        Ok(v) if (0.0..=1.0).contains(&v) => Ok(v),
        _ => Err(format!("{s:?} is not a share between 0 and 1")),
    }
}

#[derive(Debug, Args)]
pub struct ContentDb {
    /// PostgreSQL URL of a role that may write the tenants' schemas.
    #[arg(long, env = "PORTALCTL_DATABASE_URL", value_name = "URL", hide_env_values = true)]
    pub database_url: String,
}

#[derive(Debug, Subcommand)]
pub enum ContentCommand {
    /// Import services, facilities, staff, categories and Lebenslagen from YAML or CSV:
    /// validated first, then upserted in one transaction (all or nothing).
    Import(ContentImportArgs),
    /// Publish services (or everything) so that citizens see them.
    Publish(ContentPublishArgs),
    /// Take services (or everything) off the portal.
    Unpublish(ContentPublishArgs),
    /// Copy a service description from one tenant to another (Nachnutzung), unpublished.
    Adopt(ContentAdoptArgs),
    /// List the starter catalogue shipped with portalctl.
    Catalogue,
}

#[derive(Debug, Args)]
pub struct ContentImportArgs {
    /// The tenant whose content is imported.
    #[arg(long, short = 't')]
    pub tenant: String,
    /// A YAML file (sections categories, lebenslagen, facilities, staff, services) or a CSV file of one kind.
    #[arg(required_unless_present = "starter", conflicts_with = "starter")]
    pub file: Option<PathBuf>,
    /// Import the starter catalogue shipped with portalctl: the services that are the tenant's
    /// task (a Kreis the Kreis services, a Gemeinde or Stadt the municipal ones, a kreisfreie
    /// Stadt both; known from its AGS).
    #[arg(long)]
    pub starter: bool,
    /// With --starter: a Kreis task this Gemeinde or Stadt performs itself (e.g. `jugendamt`,
    /// `bauaufsicht` for a große kreisangehörige Stadt), in addition to the tenant's
    /// `spec.ownTasks`; repeatable or comma-separated.
    #[arg(long = "own-task", value_name = "TASK", requires = "starter", value_delimiter = ',')]
    pub own_tasks: Vec<String>,
    /// What a CSV file holds (default: from its name, e.g. services.csv).
    #[arg(long, value_enum)]
    pub kind: Option<crate::content::Kind>,
    /// Validate only; write nothing.
    #[arg(long)]
    pub dry_run: bool,
    #[command(flatten)]
    pub db: ContentDb,
}

#[derive(Debug, Args)]
pub struct ContentPublishArgs {
    /// The tenant.
    #[arg(long, short = 't')]
    pub tenant: String,
    /// A service id (repeatable).
    #[arg(long = "service", value_name = "ID", required_unless_present = "all", conflicts_with = "all")]
    pub services: Vec<String>,
    /// Every service, facility and staff entry of the tenant.
    #[arg(long)]
    pub all: bool,
    #[command(flatten)]
    pub db: ContentDb,
}

#[derive(Debug, Args)]
pub struct ContentAdoptArgs {
    /// The tenant whose description is re-used.
    #[arg(long)]
    pub from: String,
    /// The tenant that adopts it.
    #[arg(long)]
    pub to: String,
    /// The service id (repeatable).
    #[arg(long = "service", value_name = "ID", required = true)]
    pub services: Vec<String>,
    #[command(flatten)]
    pub db: ContentDb,
}
