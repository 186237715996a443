//! `portalctl validate`.

use super::Context;
use crate::cli::ValidateArgs;
use crate::diagnostics::{Diagnostic, Severity};
use crate::exit_codes::Exit;
use crate::output::{print_structured, OutputFormat};
use anyhow::Context as _;
use serde::Serialize;

#[derive(Serialize)]
struct Report<'a> {
    valid: bool,
    groups: usize,
    tenants: usize,
    errors: usize,
    warnings: usize,
    diagnostics: &'a [Diagnostic],
}

pub fn run(ctx: &Context, args: &ValidateArgs) -> anyhow::Result<Exit> {
    let started = std::time::Instant::now();
    let built = crate::tenant::load_dir(&ctx.tenants_dir)
        .with_context(|| format!("cannot load tenants from {}", ctx.tenants_dir.display()))?;
    let (errors, warnings) = (built.error_count(), built.warning_count());
    let valid = errors == 0 && !(args.strict && warnings > 0);
    // A tenant counts once its file parsed; groups likewise.
    let report = Report {
        valid,
        groups: built.catalog.groups.len(),
        tenants: built.catalog.tenants.len(),
        errors,
        warnings,
        diagnostics: &built.diagnostics,
    };
    match ctx.output {
        OutputFormat::Json | OutputFormat::Yaml | OutputFormat::Markdown | OutputFormat::Html | OutputFormat::Csv => {
            print_structured(&report, ctx.output)?
        }
        OutputFormat::Table => {
            for d in &built.diagnostics {
                if ctx.quiet && d.severity == Severity::Warning {
                    continue;
                }
                let styled = match d.severity {
                    Severity::Error => console::style(d.to_string()).for_stderr().red(),
                    Severity::Warning => console::style(d.to_string()).for_stderr().yellow(),
                };
                eprintln!("{styled}");
            }
            let summary = format!(
                "{} group(s), {} tenant(s) in {}: {} error(s), {} warning(s) [{:.0} ms]",
                report.groups,
                report.tenants,
                ctx.tenants_dir.display(),
                errors,
                warnings,
                started.elapsed().as_secs_f64() * 1000.0
            );
            if valid {
                ctx.info(format!("{} {summary}", console::style("✔").for_stderr().green()));
            } else {
                eprintln!("{} {summary}", console::style("✘").for_stderr().red());
            }
        }
    }
    Ok(if valid { Exit::Success } else { Exit::Failure })
}
