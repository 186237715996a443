//! Status reports for people: Markdown for tickets and chat, and one self-contained HTML file with a burn-up chart
//! (inline SVG) of portals installed and online over time, the per-Kreis breakdown and the stuck tenants. Pure.

use super::{GroupSummary, Mode, Phase, TenantStatus};
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

/// A burn-up chart as inline SVG: one step line per series (database set up, installed or running locally,
/// online or published), y from 0 to `total`. `id` makes the chart's title id unique in the page.
pub fn burnup_svg(history: &[HistoryEntry], total: usize, mode: Mode, id: &str) -> String {
    const W: f64 = 640.0;
    const H: f64 = 240.0;
    const PAD: f64 = 40.0;
    let series = [(Phase::Provisioned, "#595959"), (Phase::Deployed, "#005ea8"), (Phase::Live, "#1b5e20")];
    let points: Vec<Series> = series
        .iter()
        .map(|(p, colour)| {
            let pts = cumulative(history, *p).into_iter().filter_map(|(d, n)| day_number(&d).map(|x| (x, n))).collect();
            (p.german(mode), *colour, pts)
        })
        .collect();
    let xs: Vec<i64> = points.iter().flat_map(|(_, _, p)| p.iter().map(|(x, _)| *x)).collect();
    let title_id = format!("burnup-title-{id}");
    let mut svg = format!(
        "<svg xmlns=\"http://www.w3.org/2000/svg\" viewBox=\"0 0 {W} {H}\" role=\"img\" aria-labelledby=\"{title_id}\">\
         <title id=\"{title_id}\">Portale im Zeitverlauf: {}, {} und {}</title>",
        points[0].0, points[1].0, points[2].0
    );
    let (Some(&x0), Some(&x1)) = (xs.iter().min(), xs.iter().max()) else {
        svg.push_str("<text x=\"20\" y=\"40\">Noch keine Phasenhistorie erfasst.</text></svg>");
        return svg;
    };
    // All on one day (a fresh local mode): a day either side, so that the step stands in the middle.
    let (x0, x1) = if x0 == x1 { (x0 - 1, x1 + 1) } else { (x0, x1) };
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
    let day = |x: i64| {
        i32::try_from(x)
            .ok()
            .and_then(|j| time::Date::from_julian_day(j).ok())
            .map(|d| format!("{:02}.{:02}.{}", d.day(), u8::from(d.month()), d.year()))
            .unwrap_or_default()
    };
    let (first_date, last_date) = (day(x0), day(x1));
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
        // Lower rungs drawn wider, so that lines lying on each other stay visible as bands.
        let width = 2.5 + 3.0 * (points.len() - 1 - i) as f64;
        svg.push_str(&format!("<path d=\"{d}\" fill=\"none\" stroke=\"{colour}\" stroke-width=\"{width}\"/>"));
        svg.push_str(&format!(
            "<text x=\"{lx}\" y=\"{ly}\" font-size=\"13\" fill=\"{colour}\">{label}: {prev}</text>",
            lx = PAD + 10.0 + i as f64 * 190.0,
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
        let (installed, online) = (Phase::Deployed.german(g.mode), Phase::Live.german(g.mode));
        s.push_str(&format!("## {} ({})\n\n**{}**\n\n", g.display_name, g.group, g.total.headline_de(g.mode)));
        if let Some(image) = &g.image {
            s.push_str(&format!("Server-Image: `{}`\n\n", image.describe_de()));
        }
        s.push_str(&format!("| Kreis | Portale | {installed} | {online} |\n| --- | ---: | ---: | ---: |\n"));
        for k in &g.by_kreis {
            s.push_str(&format!("| {} | {} | {} | {} |\n", k.name, k.tenants, k.installed, share(k)));
        }
        s.push_str(&format!("\n| Welle | Portale | {installed} | {online} |\n| --- | ---: | ---: | ---: |\n"));
        for w in &g.by_wave {
            s.push_str(&format!("| {} | {} | {} | {} |\n", w.name, w.tenants, w.installed, share(w)));
        }
        let stuck: Vec<&TenantStatus> = statuses.iter().filter(|t| t.group == g.group && t.stuck.is_some()).collect();
        if !stuck.is_empty() {
            s.push_str("\n| Portal | Phase | hängt an |\n| --- | --- | --- |\n");
            for t in stuck {
                s.push_str(&format!(
                    "| {} | {} | {} |\n",
                    t.display_name,
                    t.phase.german(t.mode),
                    reason_de(t.stuck.as_deref().unwrap_or("")).replace('|', "\\|")
                ));
            }
        }
        s.push('\n');
    }
    s
}

/// "12 (31 %)", or "12 (Anteil unbekannt)" while some tenants are unknown.
fn share(t: &super::Tally) -> String {
    match t.online_percent {
        Some(p) => format!("{} ({p} %)", t.online),
        None => format!("{} (Anteil unbekannt)", t.online),
    }
}

/// A stuck reason (one line, as `status` prints it) in German, for the reports: the source and
/// the frequent reasons are translated, names and numbers kept.
pub fn reason_de(reason: &str) -> String {
    // The rung `compliant` names every blocker, separated by "; ".
    if reason.contains("; ") {
        return reason.split("; ").map(reason_de).collect::<Vec<_>>().join("; ");
    }
    if let Some(page) = reason.strip_suffix(" missing") {
        return format!("{page} fehlt");
    }
    if reason.starts_with("spec.legal.") {
        if let Some(field) = reason.strip_suffix(": placeholder") {
            return format!("{field}: Platzhalter");
        }
        if let Some(field) = reason.strip_suffix(": missing") {
            return format!("{field}: fehlt");
        }
    }
    let (source, rest) = reason.split_once(": ").unwrap_or(("", reason));
    let source_de = match source {
        "database" => "Datenbank",
        "cluster" => "Cluster",
        "DNS" => "DNS",
        "TLS" => "TLS",
        "portal" => "Portal",
        "content" => "Inhalte",
        "go-live" => "Go-live",
        "local" => "Lokal",
        "a11y" => "Barrierefreiheit",
        _ => return reason.to_string(),
    };
    let words: Vec<&str> = rest.split(' ').collect();
    let detail = match (source, words.as_slice()) {
        (_, ["unreachable"]) => "nicht erreichbar".to_string(),
        (_, ["not", "asked", ..]) => format!("nicht abgefragt{}", rest.strip_prefix("not asked").unwrap_or("")),
        ("database", ["schema", s, "does", "not", "exist"]) => format!("Schema {s} fehlt"),
        ("database", ["role", r, "does", "not", "exist"]) => format!("Rolle {r} fehlt"),
        ("database", ["schema", s, "at", "migration", v, "of", n]) => format!("Schema {s} auf Migration {v} von {n}"),
        ("content", [n, "of", m, "services", "published"]) => format!("{n} von {m} Leistungen veröffentlicht"),
        ("content", ["database", "not", "asked"]) => "Datenbank nicht abgefragt".to_string(),
        ("a11y", ["no", "accessibility", "audit", "yet"]) => "noch keine Prüfung".to_string(),
        ("a11y", [n, impact @ ("serious" | "critical"), "violations", "on", rest @ ..]) => format!(
            "{n} {} Verstöße auf {}",
            if *impact == "serious" { "schwerwiegende" } else { "kritische" },
            rest.join(" ")
        ),
        ("a11y", ["last", "audit", when, "is", "older", "than", "the", "last", "publish", at]) => {
            format!("letzte Prüfung {when} älter als die letzte Veröffentlichung {at}")
        }
        ("go-live", ["not", "published", "yet", ..]) => {
            "noch nicht veröffentlicht (goLive.published in der Mandantendatei)".to_string()
        }
        ("DNS", [h, "has", "no", "A/AAAA", "record"]) => format!("{h} hat keinen A/AAAA-Eintrag"),
        ("DNS", ["the", "ingress", "has", "no", "address", "yet"]) => "der Ingress hat noch keine Adresse".into(),
        ("TLS", ["certificate", c, "not", "ready"]) => format!("Zertifikat {c} nicht bereit"),
        ("TLS", ["certificate", "of", h, "not", "valid"]) => format!("Zertifikat von {h} ungültig"),
        ("cluster", ["not", "applied", ..]) => {
            format!("nicht angewendet{}", rest.strip_prefix("not applied").unwrap_or(""))
        }
        ("cluster", ["Deployment", d, "not", "available"]) => format!("Deployment {d} nicht verfügbar"),
        ("portal", [h, "did", "not", "answer", "in", "time"]) => format!("{h} antwortet nicht rechtzeitig"),
        ("portal", [h, "answers", "as", "tenant", o]) => format!("{h} antwortet als Mandant {o}"),
        ("portal", [h, "answers", code @ .., "for", "its", "home", "page"]) => {
            format!("{h} antwortet auf der Startseite mit {}", code.join(" "))
        }
        ("local", ["the", "local", "server", "does", "not", "serve", h, "yet", ..]) => {
            format!("der lokale Server bedient {h} noch nicht (Datenbank nicht eingerichtet? `portalctl up`)")
        }
        _ => rest.to_string(),
    };
    format!("{source_de}: {detail}")
}

/// A time for `<time datetime>`: RFC 3339 in UTC, whole seconds.
pub fn machine_time(t: time::OffsetDateTime) -> String {
    t.to_offset(time::UtcOffset::UTC)
        .replace_nanosecond(0)
        .ok()
        .and_then(|t| t.format(&time::format_description::well_known::Rfc3339).ok())
        .unwrap_or_default()
}

/// A time as people in Germany read it: `29.11.2026, 18:06 Uhr`, in German time (CET/CEST).
pub fn german_time(t: time::OffsetDateTime) -> String {
    let utc = t.to_offset(time::UtcOffset::UTC);
    // Summer time from the last Sunday of March to the last Sunday of October, 01:00 UTC each.
    let last_sunday = |month: time::Month| {
        let mut d = time::Date::from_calendar_date(utc.year(), month, month.length(utc.year())).expect("valid date");
        while d.weekday() != time::Weekday::Sunday {
            d = d.previous_day().expect("valid date");
        }
        d.with_hms(1, 0, 0).expect("valid time").assume_utc()
    };
    let summer = utc >= last_sunday(time::Month::March) && utc < last_sunday(time::Month::October);
    let local = utc.to_offset(time::UtcOffset::from_hms(if summer { 2 } else { 1 }, 0, 0).expect("valid offset"));
    format!(
        "{:02}.{:02}.{}, {:02}:{:02} Uhr",
        local.day(),
        u8::from(local.month()),
        local.year(),
        local.hour(),
        local.minute()
    )
}

#[derive(Serialize)]
struct HtmlTenant<'a> {
    #[serde(flatten)]
    status: &'a TenantStatus,
    phase_de: &'static str,
    stuck_de: Option<String>,
}

#[derive(Serialize)]
struct HtmlGroup<'a> {
    summary: &'a GroupSummary,
    headline: String,
    installed_label: &'static str,
    online_label: &'static str,
    /// (German phase name, tenants at it), in ladder order.
    phases: Vec<(&'static str, usize)>,
    chart: String,
    /// Which server image the group runs ([`super::image::GroupImage::describe_de`]), when the cluster said.
    image_de: Option<String>,
    tenants: Vec<HtmlTenant<'a>>,
}

/// The self-contained HTML report (no external assets), rendered from `templates/report/status.html.tera`.
/// `generated_at` is when the observations were made.
pub fn html(
    summaries: &[GroupSummary],
    statuses: &[TenantStatus],
    history: &[HistoryEntry],
    generated_at: time::OffsetDateTime,
) -> Result<String, tera::Error> {
    let mut tera = tera::Tera::default();
    tera.add_raw_template("report.css", include_str!("../../templates/report/report.css"))?;
    tera.add_raw_template("status.html", include_str!("../../templates/report/status.html.tera"))?;
    let groups: Vec<HtmlGroup> = summaries
        .iter()
        .map(|g| {
            let members: Vec<&TenantStatus> = statuses.iter().filter(|t| t.group == g.group).collect();
            let slugs: std::collections::BTreeSet<&str> = members.iter().map(|t| t.tenant.as_str()).collect();
            let hist: Vec<HistoryEntry> =
                history.iter().filter(|h| slugs.contains(h.tenant.as_str())).cloned().collect();
            HtmlGroup {
                summary: g,
                headline: g.total.headline_de(g.mode),
                installed_label: Phase::Deployed.german(g.mode),
                online_label: Phase::Live.german(g.mode),
                phases: g.total.by_phase.iter().map(|(p, n)| (p.german(g.mode), *n)).collect(),
                chart: burnup_svg(&hist, g.total.tenants, g.mode, &g.group),
                image_de: g.image.as_ref().map(|i| i.describe_de()),
                tenants: members
                    .into_iter()
                    .map(|t| HtmlTenant {
                        status: t,
                        phase_de: t.phase.german(t.mode),
                        stuck_de: t.stuck.as_deref().map(reason_de),
                    })
                    .collect(),
            }
        })
        .collect();
    let mut ctx = tera::Context::new();
    ctx.insert("groups", &groups);
    ctx.insert("generated_at", &machine_time(generated_at));
    ctx.insert("generated_at_de", &german_time(generated_at));
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
        let svg = burnup_svg(&hist, 3, Mode::Cluster, "krz");
        assert!(svg.starts_with("<svg") && svg.ends_with("</svg>"));
        assert!(svg.contains("installiert: 3") && svg.contains("online: 2"), "{svg}");
        assert!(svg.contains("01.08.2021") && svg.contains("01.01.2023"), "dates for people: {svg}");
        assert!(svg.contains("id=\"burnup-title-krz\""));
        assert!(burnup_svg(&[], 3, Mode::Cluster, "krz").contains("Noch keine Phasenhistorie"));
        // Everything on one day (a fresh local mode) still draws the steps.
        let today = vec![h("detmold", Phase::Live, "2026-11-29"), h("hille", Phase::Deployed, "2026-11-29")];
        let svg = burnup_svg(&today, 2, Mode::Local, "krz");
        assert!(svg.contains("läuft lokal: 2") && svg.contains("veröffentlicht: 1"), "{svg}");
        assert!(svg.contains("<path"), "{svg}");
        assert!(svg.contains(">28.11.2026<") && svg.contains(">30.11.2026<"), "a day either side: {svg}");
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
                    o.compliant = Check::Pass;
                    o.live = Check::Pass;
                }
                assess(t, o)
            })
            .collect();
        let mut sums = summarize(&catalog, &statuses);
        let image =
            "registry.example/portalctl@sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef";
        let dep = serde_json::json!({"spec": {"template": {"spec": {"containers": [{"image": image}]}}}});
        let pod = serde_json::json!({"metadata": {}, "spec": {"containers": [{"image": image}]}});
        sums[0].image = crate::status::image::GroupImage::observe(&[dep], &[pod.clone(), pod]);
        let hist = vec![h("gangelt", Phase::Deployed, "2020-08-01"), h("heinsberg", Phase::Live, "2020-09-02")];
        let at = time::macros::datetime!(2026-11-29 17:06:27.932278814 UTC);
        let page = html(&sums, &statuses, &hist, at).unwrap();
        assert!(page.contains("11 von 11 Portalen installiert, 10 online (91\u{a0}%)"), "{page}");
        assert!(page.contains("Kreis Heinsberg"));
        assert!(page.contains("DNS: service.gangelt.de hat keinen A&#x2F;AAAA-Eintrag"), "German, escaped: {page}");
        assert!(page.contains("<svg") && page.contains("lang=\"de\""));
        assert!(page.contains("<time datetime=\"2026-11-29T17:06:27Z\">29.11.2026, 18:06 Uhr</time>"), "{page}");
        assert!(page.contains(">installiert<") && !page.contains(">deployed<"), "phases in German: {page}");
        let shown = image.replace('/', "&#x2F;");
        assert!(page.contains(&format!("Server-Image: <code class=\"image\">{shown} (2 Pods)</code>")), "{page}");
        let md = markdown(&sums, &statuses);
        assert!(md.contains(&format!("Server-Image: `{image} (2 Pods)`")), "{md}");
        assert!(md.contains("**11 von 11 Portalen installiert, 10 online (91\u{a0}%)**"), "{md}");
        assert!(
            md.contains("| Stadt Gangelt | installiert | DNS: service.gangelt.de hat keinen A/AAAA-Eintrag |")
                || md.contains("| Gemeinde Gangelt | installiert |"),
            "{md}"
        );
    }

    #[test]
    fn ids_are_unique_in_a_report_of_many_groups() {
        use crate::status::{assess, summarize, Observation};
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tenants");
        let catalog = crate::tenant::load_dir(&dir).unwrap().catalog;
        let statuses: Vec<TenantStatus> =
            catalog.tenants.iter().map(|t| assess(t, Observation::unknown("database: unreachable"))).collect();
        let sums = summarize(&catalog, &statuses);
        assert!(sums.len() >= 3);
        let hist: Vec<HistoryEntry> =
            catalog.tenants.iter().map(|t| h(&t.slug, Phase::Provisioned, "2026-11-29")).collect();
        let page = html(&sums, &statuses, &hist, time::macros::datetime!(2026-11-29 17:06 UTC)).unwrap();
        let mut ids = std::collections::BTreeSet::new();
        for part in page.split(" id=\"").skip(1) {
            let id = part.split('"').next().unwrap();
            assert!(ids.insert(id.to_string()), "id {id} twice");
        }
        assert!(ids.len() >= 2 * sums.len(), "{ids:?}");
        assert!(page.contains("Stand aller"), "unknown said as unknown");
        well_formed(&page);
    }

    /// Every element is closed in order (void elements and self-closed SVG elements aside), and
    /// attribute values are quoted: a strict check that the template does not drift into tag soup.
    /// (`tests/local.rs` also runs the W3C Nu validator on a real report where it is installed.)
    fn well_formed(page: &str) {
        const VOID: [&str; 4] = ["meta", "br", "img", "input"];
        let mut stack: Vec<&str> = Vec::new();
        let mut rest = page;
        while let Some(start) = rest.find('<') {
            let end = start + rest[start..].find('>').expect("every tag ends");
            let tag = &rest[start + 1..end];
            rest = &rest[end + 1..];
            if tag.starts_with('!') {
                continue;
            }
            let name = tag.trim_start_matches('/').split([' ', '/']).next().unwrap();
            assert!(!tag.contains("=\"\"") || tag.contains("style"), "empty attribute in <{tag}>");
            if let Some(closing) = tag.strip_prefix('/') {
                assert_eq!(stack.pop(), Some(closing.trim()), "</{closing}> closes the wrong element");
            } else if !tag.ends_with('/') && !VOID.contains(&name) {
                stack.push(name);
            }
            if !tag.starts_with('/') && (name == "style" || name == "title") {
                // Raw text up to the end tag.
                let close = format!("</{name}>");
                let at = rest.find(&close).expect("raw text element closed");
                rest = &rest[at..];
            }
        }
        assert!(stack.is_empty(), "unclosed: {stack:?}");
    }

    #[test]
    fn reasons_are_translated_for_the_report() {
        for (en, de) in [
            ("database: unreachable", "Datenbank: nicht erreichbar"),
            ("content: 12 of 40 services published", "Inhalte: 12 von 40 Leistungen veröffentlicht"),
            (
                "go-live: not published yet (goLive.published in the tenant file)",
                "Go-live: noch nicht veröffentlicht (goLive.published in der Mandantendatei)",
            ),
            ("TLS: certificate hille-tls not ready", "TLS: Zertifikat hille-tls nicht bereit"),
            (
                "portal: service.hille.de answers as tenant loehne",
                "Portal: service.hille.de antwortet als Mandant loehne",
            ),
            (
                "portal: service.hille.de answers 503 Service Unavailable for its home page",
                "Portal: service.hille.de antwortet auf der Startseite mit 503 Service Unavailable",
            ),
            ("database: schema t_hille at migration 0 of 1", "Datenbank: Schema t_hille auf Migration 0 von 1"),
            (
                "Impressum missing; spec.legal.privacy.controller: placeholder; a11y: no accessibility audit yet",
                "Impressum fehlt; spec.legal.privacy.controller: Platzhalter; Barrierefreiheit: noch keine Prüfung",
            ),
            (
                "a11y: 2 serious violations on /a-z (color-contrast)",
                "Barrierefreiheit: 2 schwerwiegende Verstöße auf /a-z (color-contrast)",
            ),
        ] {
            assert_eq!(reason_de(en), de);
        }
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
        assert!(md.contains(&format!("| {REGION_ROW} | 1 | 0 | 0 (Anteil unbekannt) |")), "{md}");
        assert!(md.contains("| Serviceportal Emscher-Lippe | erfasst | Datenbank: nicht abgefragt |"), "{md}");
        assert!(!md.contains("|  |"), "no nameless row: {md}");
        let page = html(&sums, &statuses, &[], time::macros::datetime!(2026-07-01 10:00 UTC)).unwrap();
        assert!(page.contains("01.07.2026, 12:00 Uhr"), "summer time: {page}");
        assert!(page.contains(&format!("<th scope=\"row\">{REGION_ROW}</th>")), "{page}");
        assert!(!page.contains("<th scope=\"row\"></th>"), "no nameless row");
    }
}
