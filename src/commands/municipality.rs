//! `portalctl municipality QUERY`: search the embedded official list.

use super::Context;
use crate::cli::MunicipalityArgs;
use crate::exit_codes::Exit;
use crate::municipality::{Municipality, Registry};
use crate::output::{print_structured, render_table, table, OutputFormat};

pub fn run(ctx: &Context, args: &MunicipalityArgs) -> anyhow::Result<Exit> {
    if args.query.trim().is_empty() {
        ctx.error("no name or AGS to look for: give a part of a name (`portalctl municipality Oldendorf`) or the start of an AGS (`portalctl municipality 05770`)");
        return Ok(Exit::Usage);
    }
    let q = args.query.trim().to_lowercase();
    let hits: Vec<&Municipality> = Registry::official()
        .municipalities
        .iter()
        .filter(|m| args.land.as_ref().is_none_or(|l| m.land.eq_ignore_ascii_case(l)))
        .filter(|m| m.ags.starts_with(args.query.trim()) || m.name.to_lowercase().contains(&q))
        .collect();
    match ctx.output {
        OutputFormat::Table => {
            let mut t = table(&["ags", "name", "kreis", "land", "slug"]);
            for m in &hits {
                let slug = crate::scaffold::draft_municipality(m).slug;
                t.add_row(vec![m.ags.clone(), m.name.clone(), m.kreis.clone(), m.land.clone(), slug]);
            }
            print!("{}", render_table(&t));
        }
        _ => print_structured(&hits, ctx.output)?,
    }
    Ok(if hits.is_empty() { Exit::Failure } else { Exit::Success })
}
