//! Status reports for people: Markdown for tickets and chat, and one self-contained HTML file with a burn-up chart
//! (inline SVG) of portals installed and online over time, the per-Kreis breakdown and the stuck tenants. Pure.

use super::{GroupSummary, Phase, TenantStatus};
use serde::Serialize;
use std::collections::BTreeMap;

/// When a tenant reached a phase (from `portalctl.phase_history`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, serde::Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct HistoryEntry {
    pub tenant: String,
    pub phase: Phase,
    /// `YYYY-MM-DD` (or an RFC 3339 timestamp; only the date is used).
    pub reached_at: String,
}

fn date(s: &str) -> &str {
    s.get(..10).unwrap_or(s)
}

/// Cumulative number of tenants that had reached `phase` (or a later one) by each date on which anything changed.
pub fn cumulative(history: &[HistoryEntry], phase: Phase) -> Vec<(String, usize)> {
    // A tenant counts from the first date it reached this phase or any later one.
    let mut first: BTreeMap<&str, &str> = BTreeMap::new();
    for h in history.iter().filter(|h| h.phase >= phase) {
        let d = date(&h.reached_at);
        first.entry(&h.tenant).and_modify(|e| *e = (*e).min(d)).or_insert(d);
    }
    let mut by_day: BTreeMap<&str, usize> = BTreeMap::new();
    for d in first.values() {
        *by_day.entry(d).or_insert(0) += 1;
    }
    let mut total = 0;
    by_day
        .into_iter()
        .map(|(d, n)| {
            total += n;
            (d.to_string(), total)
        })
        .collect()
}

/// Days since 1970-01-01 of a `YYYY-MM-DD` date (proleptic Gregorian), for the chart's x axis.
fn day_number(d: &str) -> Option<i64> {
    let fmt = time::macros::format_description!("[year]-[month]-[day]");
    time::Date::parse(date(d), &fmt).ok().map(|x| i64::from(x.to_julian_day()))
}

/// One line of the chart: label, colour, (day number, count) steps.
type Series<'a> = (&'a str, &'a str, Vec<(i64, usize)>);

/// A burn-up chart as inline SVG: one step line per series, y from 0 to `total`.
pub fn burnup_svg(history: &[HistoryEntry], total: usize) -> String {
    const W: f64 = 640.0;
    const H: f64 = 240.0;
    const PAD: f64 = 40.0;
    let series = [(Phase::Deployed, "installiert", "#005ea8"), (Phase::Live, "online", "#1b5e20")];
    let points: Vec<Series> = series
        .iter()
        .map(|(p, label, colour)| {
            let pts = cumulative(history, *p).into_iter().filter_map(|(d, n)| day_number(&d).map(|x| (x, n))).collect();
            (*label, *colour, pts)
        })
        .collect();
    let xs: Vec<i64> = points.iter().flat_map(|(_, _, p)| p.iter().map(|(x, _)| *x)).collect();
    let mut svg = format!(
        "<svg xmlns=\"http://www.w3.org/2000/svg\" viewBox=\"0 0 {W} {H}\" role=\"img\" aria-labelledby=\"burnup-title\">\
         <title id=\"burnup-title\">Portale im Zeitverlauf: installiert und online</title>"
    );
    let (Some(&x0), Some(&x1)) = (xs.iter().min(), xs.iter().max()) else {
        svg.push_str("<text x=\"20\" y=\"40\">Noch keine Phasenhistorie erfasst.</text></svg>");
        return svg;
    };
    let span = (x1 - x0).max(1) as f64;
    let ymax = total.max(1) as f64;
    let sx = |x: i64| PAD + (x - x0) as f64 / span * (W - 2.0 * PAD);
    let sy = |y: usize| H - PAD - y as f64 / ymax * (H - 2.0 * PAD);
    // Axes and gridline at the total.
    svg.push_str(&format!(
        "<line x1=\"{PAD}\" y1=\"{b}\" x2=\"{r}\" y2=\"{b}\" stroke=\"#1a1a1a\"/>\
         <line x1=\"{PAD}\" y1=\"{PAD}\" x2=\"{PAD}\" y2=\"{b}\" stroke=\"#1a1a1a\"/>\
         <line x1=\"{PAD}\" y1=\"{t}\" x2=\"{r}\" y2=\"{t}\" stroke=\"#767676\" stroke-dasharray=\"4 4\"/>\
         <text x=\"4\" y=\"{t}\" font-size=\"12\">{total}</text><text x=\"4\" y=\"{b}\" font-size=\"12\">0</text>",
        b = H - PAD,
        r = W - PAD,
        t = sy(total),
    ));
    let first_date = history.iter().map(|h| date(&h.reached_at)).min().unwrap_or("");
    let last_date = history.iter().map(|h| date(&h.reached_at)).max().unwrap_or("");
    svg.push_str(&format!(
        "<text x=\"{PAD}\" y=\"{y}\" font-size=\"12\">{first_date}</text>\
         <text x=\"{x}\" y=\"{y}\" font-size=\"12\" text-anchor=\"end\">{last_date}</text>",
        y = H - PAD + 18.0,
        x = W - PAD,
    ));
    for (i, (label, colour, pts)) in points.iter().enumerate() {
        if pts.is_empty() {
            continue;
        }
        let mut d = format!("M{:.1},{:.1}", sx(pts[0].0), sy(0));
        let mut prev = 0;
        for (x, n) in pts {
            d.push_str(&format!(" L{:.1},{:.1} L{:.1},{:.1}", sx(*x), sy(prev), sx(*x), sy(*n)));
            prev = *n;
        }
        d.push_str(&format!(" L{:.1},{:.1}", sx(x1), sy(prev)));
        svg.push_str(&format!("<path d=\"{d}\" fill=\"none\" stroke=\"{colour}\" stroke-width=\"2.5\"/>"));
        svg.push_str(&format!(
            "<text x=\"{lx}\" y=\"{ly}\" font-size=\"13\" fill=\"{colour}\">{label}: {prev}</text>",
            lx = PAD + 10.0 + i as f64 * 140.0,
            ly = PAD - 12.0,
        ));
    }
    svg.push_str("</svg>");
    svg
}

/// A Markdown report: per group the headline, per Kreis and wave, and the stuck tenants.
pub fn markdown(summaries: &[GroupSummary], statuses: &[TenantStatus]) -> String {
    let mut s = String::new();
    for g in summaries {
        s.push_str(&format!("## {} ({})\n\n**{}**\n\n", g.display_name, g.group, g.total.headline()));
        s.push_str("| Kreis | Portale | installiert | online |\n| --- | ---: | ---: | ---: |\n");
        for k in &g.by_kreis {
            s.push_str(&format!(
                "| {} | {} | {} | {} ({} %) |\n",
                k.name, k.tenants, k.installed, k.online, k.online_percent
            ));
        }
        s.push_str("\n| Welle | Portale | installiert | online |\n| --- | ---: | ---: | ---: |\n");
        for w in &g.by_wave {
            s.push_str(&format!(
                "| {} | {} | {} | {} ({} %) |\n",
                w.name, w.tenants, w.installed, w.online, w.online_percent
            ));
        }
        let stuck: Vec<&TenantStatus> = statuses.iter().filter(|t| t.group == g.group && t.stuck.is_some()).collect();
        if !stuck.is_empty() {
            s.push_str("\n| Portal | Phase | hängt an |\n| --- | --- | --- |\n");
            for t in stuck {
                s.push_str(&format!(
                    "| {} | {} | {} |\n",
                    t.display_name,
                    t.phase.as_str(),
                    t.stuck.as_deref().unwrap_or("").replace('|', "\\|")
                ));
            }
        }
        s.push('\n');
    }
    s
}

#[derive(Serialize)]
struct HtmlGroup<'a> {
    summary: &'a GroupSummary,
    chart: String,
    tenants: Vec<&'a TenantStatus>,
}

/// The self-contained HTML report (no external assets), rendered from `templates/report/status.html.tera`.
pub fn html(
    summaries: &[GroupSummary],
    statuses: &[TenantStatus],
    history: &[HistoryEntry],
    generated_at: &str,
) -> Result<String, tera::Error> {
    let mut tera = tera::Tera::default();
    tera.add_raw_template("status.html", include_str!("../../templates/report/status.html.tera"))?;
    let groups: Vec<HtmlGroup> = summaries
        .iter()
        .map(|g| {
            let members: Vec<&TenantStatus> = statuses.iter().filter(|t| t.group == g.group).collect();
            let slugs: std::collections::BTreeSet<&str> = members.iter().map(|t| t.tenant.as_str()).collect();
            let hist: Vec<HistoryEntry> =
                history.iter().filter(|h| slugs.contains(h.tenant.as_str())).cloned().collect();
            HtmlGroup { summary: g, chart: burnup_svg(&hist, g.total.tenants), tenants: members }
        })
        .collect();
    let mut ctx = tera::Context::new();
    ctx.insert("groups", &groups);
    ctx.insert("generated_at", generated_at);
    ctx.insert("version", env!("CARGO_PKG_VERSION"));
    tera.render("status.html", &ctx)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn h(t: &str, p: Phase, d: &str) -> HistoryEntry {
        HistoryEntry { tenant: t.into(), phase: p, reached_at: d.into() }
    }

    #[test]
    fn cumulative_counts_each_tenant_once_from_its_first_date() {
        let hist = vec![
            h("detmold", Phase::Deployed, "2021-08-01"),
            h("detmold", Phase::Live, "2022-04-01"),
            h("espelkamp", Phase::Deployed, "2021-08-01"),
            h("espelkamp", Phase::Live, "2023-01-01"),
            h("hille", Phase::Deployed, "2022-06-15T10:00:00Z"),
        ];
        assert_eq!(cumulative(&hist, Phase::Deployed), vec![("2021-08-01".into(), 2), ("2022-06-15".into(), 3)]);
        assert_eq!(cumulative(&hist, Phase::Live), vec![("2022-04-01".into(), 1), ("2023-01-01".into(), 2)]);
        let svg = burnup_svg(&hist, 3);
        assert!(svg.starts_with("<svg") && svg.ends_with("</svg>"));
        assert!(svg.contains("installiert: 3") && svg.contains("online: 2"), "{svg}");
        assert!(burnup_svg(&[], 3).contains("Noch keine Phasenhistorie"));
    }

    #[test]
    fn html_and_markdown_reports_show_the_headline_the_kreise_and_the_stuck() {
        use crate::status::{assess, summarize, Check, Observation};
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tenants");
        let catalog = crate::tenant::load_dir(&dir).unwrap().catalog;
        let statuses: Vec<TenantStatus> = catalog
            .tenants_of("heinsberg")
            .map(|t| {
                let mut o = Observation::unknown("x");
                o.provisioned = Check::Pass;
                o.deployed = Check::Pass;
                if t.slug == "gangelt" {
                    o.reachable = Check::Fail("DNS: service.gangelt.de has no A/AAAA record".into());
                } else {
                    o.reachable = Check::Pass;
                    o.content_ready = Check::Pass;
                    o.live = Check::Pass;
                }
                assess(t, o)
            })
            .collect();
        let sums = summarize(&catalog, &statuses);
        let hist = vec![h("gangelt", Phase::Deployed, "2020-08-01"), h("heinsberg", Phase::Live, "2020-09-02")];
        let page = html(&sums, &statuses, &hist, "2026-11-23T12:00:00Z").unwrap();
        assert!(page.contains("11 von 11 Portalen installiert, 10 online (91&nbsp;%)"), "{page}");
        assert!(page.contains("Kreis Heinsberg"));
        assert!(page.contains("DNS: service.gangelt.de has no A&#x2F;AAAA record"), "escaped as HTML");
        assert!(page.contains("<svg") && page.contains("lang=\"de\""));
        let md = markdown(&sums, &statuses);
        assert!(md.contains("**11 of 11 installed, 10 online (91 %)**"), "{md}");
        assert!(
            md.contains("| Stadt Gangelt | deployed | DNS: service.gangelt.de has no A/AAAA record |")
                || md.contains("| Gemeinde Gangelt | deployed |"),
            "{md}"
        );
    }

    #[test]
    fn the_dachportal_appears_under_region_in_both_reports() {
        use crate::status::{assess, summarize, Observation, REGION_ROW};
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tenants");
        let catalog = crate::tenant::load_dir(&dir).unwrap().catalog;
        let statuses: Vec<TenantStatus> = catalog
            .tenants_of("emscher-lippe")
            .map(|t| assess(t, Observation::unknown("database: not asked")))
            .collect();
        let sums = summarize(&catalog, &statuses);
        let md = markdown(&sums, &statuses);
        assert!(md.contains(&format!("| {REGION_ROW} | 1 | 0 | 0 (0 %) |")), "{md}");
        assert!(md.contains("| Serviceportal Emscher-Lippe | declared | database: not asked |"), "{md}");
        assert!(!md.contains("|  |"), "no nameless row: {md}");
        let page = html(&sums, &statuses, &[], "2026-11-23T12:00:00Z").unwrap();
        assert!(page.contains(&format!("<th scope=\"row\">{REGION_ROW}</th>")), "{page}");
        assert!(!page.contains("<th scope=\"row\"></th>"), "no nameless row");
    }
}
