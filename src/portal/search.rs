//! Search over a tenant's published services, facilities and staff: PostgreSQL full-text
//! search with German stemming, united with trigram similarity for typos, ranked, with
//! snippets. Words are OR-ed (German compounds like "Hundeanmeldung" do not stem to "Hund"
//! and "anmelden"), so that documents matching more words rank higher rather than none matching.
//! The query is always a bound parameter; output is HTML-escaped here. A Dachportal's search
//! also covers its members' published services ([`with_members`]).

use serde::Serialize;
use tokio_postgres::types::{ToSql, Type};

/// Longest query searched, in characters; longer input is cut.
pub const MAX_QUERY_CHARS: usize = 200;
/// Most results shown.
pub const MAX_RESULTS: i64 = 30;

// Private-use characters mark highlights inside ts_headline output, so that everything
// else can be HTML-escaped before the markers become <mark>.
const START: char = '\u{E000}';
const STOP: char = '\u{E001}';

/// Clean a raw query: control characters and highlight markers removed, whitespace
/// collapsed, length capped. Empty means "no query".
pub fn clean_query(raw: &str) -> String {
    let mut out = String::new();
    for word in raw.split(|c: char| c.is_whitespace() || c.is_control()) {
        let word: String = word.chars().filter(|c| !c.is_control() && *c != START && *c != STOP).collect();
        if word.is_empty() {
            continue;
        }
        if !out.is_empty() {
            out.push(' ');
        }
        out.push_str(&word);
        if out.chars().count() >= MAX_QUERY_CHARS {
            break;
        }
    }
    out.chars().take(MAX_QUERY_CHARS).collect::<String>().trim().to_string()
}

/// One hit.
#[derive(Debug, Clone, Serialize)]
pub struct Hit {
    pub kind: &'static str,
    pub kind_label: &'static str,
    pub id: String,
    pub title: String,
    pub href: String,
    /// Safe HTML: escaped text with `<mark>` around matched words.
    pub snippet: String,
    pub rank: f32,
    /// In a Dachportal's search: the member portal the service belongs to.
    pub member: Option<String>,
}

const SQL: &str = "
WITH q AS (SELECT replace(websearch_to_tsquery('german', $1)::text, ' & ', ' | ')::tsquery AS tsq, $1::text AS raw)
SELECT kind, id, title, snippet, rank, source FROM (
  SELECT 'service' AS kind, s.id, s.title,
         ts_headline('german', s.summary || ' ' || s.description, q.tsq,
                     'StartSel=\u{E000}, StopSel=\u{E001}, MaxWords=28, MinWords=12, MaxFragments=1') AS snippet,
         (ts_rank(s.search, q.tsq) + 1.0)::real AS rank, s.summary || ' ' || s.description AS source
    FROM service s, q WHERE s.published AND s.search @@ q.tsq
  UNION ALL
  SELECT 'service', s.id, s.title, s.summary, word_similarity(q.raw, s.title)::real, s.summary
    FROM service s, q WHERE s.published AND q.raw <% s.title AND NOT s.search @@ q.tsq
  UNION ALL
  SELECT 'facility', f.id, f.name,
         ts_headline('german', f.address || ' · ' || f.opening_hours, q.tsq,
                     'StartSel=\u{E000}, StopSel=\u{E001}, MaxWords=20, MinWords=8, MaxFragments=1'),
         (ts_rank(f.search, q.tsq) + 1.0)::real, f.address || ' · ' || f.opening_hours
    FROM facility f, q WHERE f.published AND f.search @@ q.tsq
  UNION ALL
  SELECT 'facility', f.id, f.name, f.address, word_similarity(q.raw, f.name)::real, f.address
    FROM facility f, q WHERE f.published AND q.raw <% f.name AND NOT f.search @@ q.tsq
  UNION ALL
  SELECT 'staff', p.id, p.name,
         ts_headline('german', p.position_title || ' · ' || p.topics, q.tsq,
                     'StartSel=\u{E000}, StopSel=\u{E001}, MaxWords=20, MinWords=8, MaxFragments=1'),
         (ts_rank(p.search, q.tsq) + 1.0)::real, p.position_title || ' · ' || p.topics
    FROM staff p, q WHERE p.published AND p.search @@ q.tsq
  UNION ALL
  SELECT 'staff', p.id, p.name, p.topics, word_similarity(q.raw, p.name)::real, p.topics
    FROM staff p, q WHERE p.published AND q.raw <% p.name AND NOT p.search @@ q.tsq
) r
ORDER BY rank DESC, title
LIMIT $2";

/// Run a (cleaned, non-empty) query as tenant `schema` (see [`super::db::read`]).
pub async fn search(pool: &super::db::Pools, schema: &str, query: &str) -> super::db::Result<Vec<Hit>> {
    let params: &[(&(dyn ToSql + Sync), Type)] = &[(&query, Type::TEXT), (&MAX_RESULTS, Type::INT8)];
    let rows =
        super::db::read(pool, schema, &[super::db::Stmt::prepared(SQL, params)]).await?.pop().unwrap_or_default();
    Ok(rows
        .iter()
        .map(|r| {
            let kind: String = r.get(0);
            let id: String = r.get(1);
            let (kind, kind_label, href) = match kind.as_str() {
                "service" => ("service", "Leistung", format!("/leistungen/{id}")),
                "facility" => ("facility", "Einrichtung", format!("/einrichtungen#{id}")),
                _ => ("staff", "Ansprechpartner", format!("/ansprechpartner#{id}")),
            };
            Hit {
                kind,
                kind_label,
                title: r.get(2),
                snippet: highlight(&ellipsize(&r.get::<_, String>(3), &r.get::<_, String>(5))),
                rank: r.get(4),
                id,
                href,
                member: None,
            }
        })
        .collect())
}

/// Prepare the search of every tenant in `schemas` on the connections of its shard, one tenant
/// after the other, in the background after the server started: the first searches of a tenant
/// then find the backends' catalog caches warm and the plan kept (see [`super::db`]), instead of
/// paying 5–30 ms of catalog lookups and planning each. A tenant that cannot be read (not set up,
/// locked) is skipped.
pub async fn warm(pools: super::db::Pools, schemas: Vec<String>) {
    let started = std::time::Instant::now();
    let query = "Hund";
    let params: &[(&(dyn ToSql + Sync), Type)] = &[(&query, Type::TEXT), (&MAX_RESULTS, Type::INT8)];
    let mut warmed = 0;
    for schema in &schemas {
        // Five executions: PostgreSQL plans the first five of a prepared statement afresh.
        match pools.warm(schema, &[super::db::Stmt::prepared(SQL, params)], 5).await {
            Ok(()) => warmed += 1,
            Err(e) => tracing::debug!(schema = %schema, error = %e, "search not warmed"),
        }
    }
    tracing::info!(tenants = warmed, ms = started.elapsed().as_millis() as u64, "search prepared on every shard");
}

/// Mark where a snippet was cut from its source text: `… ` before it when it does not start where the text starts,
/// ` …` after it when it does not reach the text's end.
pub fn ellipsize(snippet: &str, source: &str) -> String {
    let plain: String = snippet.chars().filter(|c| *c != START && *c != STOP).collect();
    let (plain, source) = (plain.trim(), source.trim());
    if plain.is_empty() {
        return snippet.to_string();
    }
    let norm = |s: &str| s.split_whitespace().collect::<Vec<_>>().join(" ");
    let (plain, source) = (norm(plain), norm(source));
    let mut out = String::with_capacity(snippet.len() + 8);
    if !source.starts_with(&plain) {
        out.push_str("… ");
    }
    out.push_str(snippet.trim());
    if !source.ends_with(&plain) {
        out.push_str(" …");
    }
    out
}

/// A member portal a Dachportal's search covers: its schema (and role), name, and the address
/// of its home page (`https://<hostname>/`, or the local form) that result links start with.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Member {
    pub schema: String,
    pub display_name: String,
    pub base: String,
}

/// A member's published services, as in its own search (full text and trigram).
const MEMBER_SQL: &str = "
WITH q AS (SELECT replace(websearch_to_tsquery('german', $1)::text, ' & ', ' | ')::tsquery AS tsq, $1::text AS raw)
SELECT id, title, snippet, rank FROM (
  SELECT s.id, s.title,
         ts_headline('german', s.summary || ' ' || s.description, q.tsq,
                     'StartSel=\u{E000}, StopSel=\u{E001}, MaxWords=28, MinWords=12, MaxFragments=1') AS snippet,
         (ts_rank(s.search, q.tsq) + 1.0)::real AS rank
    FROM service s, q WHERE s.published AND s.search @@ q.tsq
  UNION ALL
  SELECT s.id, s.title, s.summary, word_similarity(q.raw, s.title)::real
    FROM service s, q WHERE s.published AND q.raw <% s.title AND NOT s.search @@ q.tsq
) r
ORDER BY rank DESC, title
LIMIT $2";

/// A Dachportal's search: its own hits and the published services of its `members`, ranked
/// together, each member's hit linking to the service page on the member's own portal. Each
/// member is read in a transaction of its own under the member's role — exactly what the
/// member's own portal shows anyone — so the Dachportal's role never reads another schema. A
/// member whose read fails is left out (and logged) rather than failing the page.
pub async fn with_members(pool: &super::db::Pools, own: Vec<Hit>, members: &[Member], query: &str) -> Vec<Hit> {
    let params: &[(&(dyn ToSql + Sync), Type)] = &[(&query, Type::TEXT), (&MAX_RESULTS, Type::INT8)];
    let stmts = [super::db::Stmt::with(MEMBER_SQL, params)];
    let reads = members.iter().map(|m| super::db::read(pool, &m.schema, &stmts));
    let mut hits = own;
    for (m, res) in members.iter().zip(futures::future::join_all(reads).await) {
        let rows = match res {
            Ok(mut r) => r.pop().unwrap_or_default(),
            Err(e) => {
                tracing::warn!(member = %m.schema, error = %e, "Dachportal search: a member portal left out");
                continue;
            }
        };
        hits.extend(rows.iter().map(|r| {
            let id: String = r.get(0);
            let title: String = r.get(1);
            Hit {
                kind: "service",
                kind_label: "Leistung",
                title: format!("{title} – {}", m.display_name),
                href: format!("{}leistungen/{id}", m.base),
                snippet: highlight(&r.get::<_, String>(2)),
                rank: r.get(3),
                id,
                member: Some(m.display_name.clone()),
            }
        }));
    }
    hits.sort_by(|a, b| b.rank.total_cmp(&a.rank).then_with(|| a.title.cmp(&b.title)));
    hits.truncate(MAX_RESULTS as usize);
    hits
}

/// HTML-escape text and turn the highlight markers into balanced `<mark>` elements.
pub fn highlight(text: &str) -> String {
    let mut out = String::with_capacity(text.len() + 16);
    let mut open = false;
    for c in text.chars() {
        match c {
            START if !open => {
                out.push_str("<mark>");
                open = true;
            }
            STOP if open => {
                out.push_str("</mark>");
                open = false;
            }
            START | STOP => {}
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    if open {
        out.push_str("</mark>");
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn queries_are_cleaned_and_capped() {
        assert_eq!(clean_query("  Hund \t anmelden\n"), "Hund anmelden");
        assert_eq!(clean_query("\u{0}\u{E000}"), "");
        let long = "x".repeat(10_000);
        assert_eq!(clean_query(&long).chars().count(), MAX_QUERY_CHARS);
        let words = "wort ".repeat(3000);
        assert!(clean_query(&words).chars().count() <= MAX_QUERY_CHARS);
    }

    #[test]
    fn snippets_cut_from_longer_text_get_an_ellipsis_where_cut() {
        let text = "Hunde melden Sie innerhalb von vier Wochen an. Jeder Hund muss zur Hundesteuer angemeldet werden.";
        assert_eq!(ellipsize(text, text), text, "the whole text: no ellipsis");
        assert_eq!(
            ellipsize("Jeder \u{E000}Hund\u{E001} muss zur Hundesteuer", text),
            "… Jeder \u{E000}Hund\u{E001} muss zur Hundesteuer …"
        );
        assert_eq!(ellipsize("Hunde melden Sie", text), "Hunde melden Sie …");
        assert_eq!(
            ellipsize("zur \u{E000}Hundesteuer\u{E001} angemeldet werden.", text),
            "… zur \u{E000}Hundesteuer\u{E001} angemeldet werden."
        );
        assert_eq!(highlight(&ellipsize("Hunde melden", text)), "Hunde melden …");
    }

    #[test]
    fn highlight_escapes_everything_but_marks() {
        assert_eq!(
            highlight("<script>\u{E000}Hund\u{E001} & \"Katze\"\u{E000}"),
            "&lt;script&gt;<mark>Hund</mark> &amp; &quot;Katze&quot;<mark></mark>"
        );
    }
}
