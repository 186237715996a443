//! `portalctl serve`: set up logging and run the portal server.

use super::Context;
use crate::cli::{LogFormat, ServeArgs, TenantSourceKind};
use crate::exit_codes::Exit;
use crate::portal::db::ReadLimits;
use crate::portal::feedback::Limits as FeedbackLimits;
use crate::portal::http::{Limits, RequestLimits};
use crate::portal::{Options, ServeConfig, SourceKind};
use anyhow::Context as _;
use std::num::NonZeroU32;
use std::time::Duration;

pub fn run(ctx: &Context, args: &ServeArgs) -> anyhow::Result<Exit> {
    let filter = tracing_subscriber::EnvFilter::try_from_env("PORTALCTL_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    // Colour only on a terminal and never with NO_COLOR (`up` writes the log to a file).
    let ansi = console::colors_enabled_stderr();
    let builder = tracing_subscriber::fmt().with_env_filter(filter).with_writer(std::io::stderr).with_ansi(ansi);
    match args.log_format {
        LogFormat::Json => builder.json().flatten_event(true).init(),
        LogFormat::Text => builder.init(),
    }
    let source = match args.tenant_source {
        TenantSourceKind::Dir => SourceKind::Directory(ctx.tenants_dir.clone()),
        TenantSourceKind::Kubernetes => SourceKind::Kubernetes,
    };
    let config = ServeConfig {
        listen: args.listen.clone(),
        ops_listen: args.ops_listen.clone(),
        database_url: args.database_url.clone(),
        source,
        poll_interval: Duration::from_secs(args.poll_interval.max(1)),
        pool_size: args.pool_size.max(1),
        read_limits: ReadLimits {
            statement_timeout: Duration::from_millis(args.statement_timeout_ms.max(1)),
            lock_timeout: Duration::from_millis(args.lock_timeout_ms.max(1)),
            wait_timeout: Duration::from_millis(args.pool_wait_ms),
        },
        options: Options {
            home_cache_ttl: Duration::from_millis(args.home_cache_ms),
            feedback: FeedbackLimits {
                per_client: NonZeroU32::new(args.feedback_per_client)
                    .context("--feedback-per-client must be at least 1")?,
                per_tenant: NonZeroU32::new(args.feedback_per_tenant)
                    .context("--feedback-per-tenant must be at least 1")?,
            },
        },
        limits: Limits {
            header_read_timeout: Duration::from_secs(args.header_read_timeout.max(1)),
            idle_timeout: Duration::from_secs(args.idle_timeout.max(1)),
            max_connections: args.max_connections.max(1),
            shutdown_timeout: Duration::from_secs(args.shutdown_timeout),
        },
        request_limits: RequestLimits {
            max_concurrent: args.max_concurrent_requests.max(1),
            timeout: Duration::from_secs(args.request_timeout.max(1)),
        },
        secrets_dir: args.secrets_dir.clone(),
        insecure_http_cookies: args.insecure_http_cookies,
        local_hostnames: args.local_hostnames,
        max_reload_removal: args.reload_max_removal,
        templates_dir: args.templates.clone(),
    };
    let rt = tokio::runtime::Runtime::new().context("cannot start the async runtime")?;
    rt.block_on(crate::portal::serve(config)).context("portal server")?;
    Ok(Exit::Success)
}
