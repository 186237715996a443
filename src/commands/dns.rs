//! `portalctl dns plan|check`.

use super::{select, Context};
use crate::cli::{DnsArgs, DnsCommand};
use crate::dns::{self, Target};
use crate::exit_codes::Exit;
use crate::output::{print_structured, render_table, table, OutputFormat};

pub fn run(ctx: &Context, cmd: DnsCommand) -> anyhow::Result<Exit> {
    match cmd {
        DnsCommand::Plan { args, zone } => {
            let (records, _) = records(ctx, &args)?;
            if zone {
                print!("{}", dns::zone_snippet(&records));
            } else if ctx.output == OutputFormat::Table {
                let mut t = table(&["tenant", "name", "type", "value", "ttl"]);
                for r in &records {
                    t.add_row(vec![
                        r.tenant.clone(),
                        r.name.clone(),
                        r.kind.to_string(),
                        r.value.clone(),
                        r.ttl.to_string(),
                    ]);
                }
                print!("{}", render_table(&t));
            } else {
                print_structured(&records, ctx.output)?;
            }
            Ok(Exit::Success)
        }
        DnsCommand::Check { args, nameserver } => {
            let (records, _) = records(ctx, &args)?;
            let resolver = dns::resolver(&nameserver)?;
            let results = super::block_on(dns::check(&resolver, &records))?;
            let bad = results.iter().filter(|r| !r.ok).count();
            if ctx.output == OutputFormat::Table {
                let mut t = table(&["tenant", "name", "expected", "found", "result"]);
                for r in &results {
                    let verdict = if r.ok { "ok".to_string() } else { r.problem.clone().unwrap_or_default() };
                    t.add_row(vec![r.tenant.clone(), r.name.clone(), r.expected.clone(), r.found.join(", "), verdict]);
                }
                print!("{}", render_table(&t));
                ctx.info(format!("{} of {} name(s) resolve as planned", results.len() - bad, results.len()));
            } else {
                print_structured(&results, ctx.output)?;
            }
            Ok(if bad == 0 { Exit::Success } else { Exit::Failure })
        }
    }
}

fn records(ctx: &Context, args: &DnsArgs) -> anyhow::Result<(Vec<dns::Record>, Target)> {
    let catalog = ctx.catalog()?;
    let tenants = select(&catalog, &args.selector)?;
    let target = Target::parse(&args.ingress)?;
    Ok((dns::plan(tenants, &target), target))
}
