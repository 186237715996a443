//! The portal's tera templates, embedded in the binary so that it is self-contained.

/// Every template, by name.
pub const TEMPLATES: &[(&str, &str)] = &[
    ("layout.html", include_str!("../../templates/portal/layout.html")),
    ("home.html", include_str!("../../templates/portal/home.html")),
    ("list.html", include_str!("../../templates/portal/list.html")),
    ("service.html", include_str!("../../templates/portal/service.html")),
    ("facilities.html", include_str!("../../templates/portal/facilities.html")),
    ("staff.html", include_str!("../../templates/portal/staff.html")),
    ("search.html", include_str!("../../templates/portal/search.html")),
    ("not_found.html", include_str!("../../templates/portal/not_found.html")),
    ("feedback.html", include_str!("../../templates/portal/feedback.html")),
    ("feedback_result.html", include_str!("../../templates/portal/feedback_result.html")),
    ("error.html", include_str!("../../templates/portal/error.html")),
    ("legal.html", include_str!("../../templates/portal/legal.html")),
];

/// The portal's stylesheet (`/static/portal.css`), the same for every tenant.
pub const PORTAL_CSS: &str = include_str!("../../templates/portal/portal.css");

/// A short hex digest of `text`, for cache-busting asset URLs and ETags.
pub fn digest(text: &str) -> String {
    use std::hash::{Hash as _, Hasher as _};
    let mut h = std::collections::hash_map::DefaultHasher::new();
    text.hash(&mut h);
    format!("{:016x}", h.finish())
}

/// The templates, parsed; `.html` output is auto-escaped.
pub fn tera() -> tera::Tera {
    let mut t = tera::Tera::default();
    t.add_raw_templates(TEMPLATES.iter().copied()).expect("embedded portal templates parse");
    t.set_escape_fn(escape_html);
    t
}

/// The embedded templates with those of `dir` in place of the embedded ones of the same name (`layout.html`,
/// `home.html`, …): a commune's own design, or a test's. Every file in `dir` must be one of [`TEMPLATES`], and all
/// must parse.
pub fn tera_with_overrides(dir: &std::path::Path) -> Result<tera::Tera, String> {
    let entries = std::fs::read_dir(dir).map_err(|e| format!("templates directory {}: {e}", dir.display()))?;
    let mut replaced: Vec<(String, String)> = Vec::new();
    for entry in entries {
        let path = entry.map_err(|e| format!("templates directory {}: {e}", dir.display()))?.path();
        let name = path.file_name().and_then(|n| n.to_str()).unwrap_or_default().to_string();
        if !TEMPLATES.iter().any(|(n, _)| *n == name) {
            let known: Vec<&str> = TEMPLATES.iter().map(|(n, _)| *n).collect();
            return Err(format!("{}: not a portal template (known: {})", path.display(), known.join(", ")));
        }
        let text = std::fs::read_to_string(&path).map_err(|e| format!("{}: {e}", path.display()))?;
        replaced.push((name, text));
    }
    let mut t = tera::Tera::default();
    let all = TEMPLATES.iter().map(|(n, text)| {
        let own = replaced.iter().find(|(r, _)| r == n).map(|(_, t)| t.as_str());
        (*n, own.unwrap_or(text))
    });
    t.add_raw_templates(all).map_err(|e| format!("templates in {}: {}", dir.display(), super::error::chain(&e)))?;
    t.set_escape_fn(escape_html);
    Ok(t)
}

/// HTML escaping for text and attribute values (tera's default also escapes `/`, which makes
/// every URL in the page unreadable without making it any safer in quoted attributes).
pub fn escape_html(input: &str) -> String {
    let mut out = String::with_capacity(input.len());
    for c in input.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#x27;"),
            c => out.push(c),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    #[test]
    fn templates_parse() {
        let t = super::tera();
        assert!(t.get_template_names().any(|n| n == "layout.html"));
    }

    #[test]
    fn a_directory_replaces_templates_by_name_and_rejects_strangers() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(
            dir.path().join("not_found.html"),
            "{% extends \"layout.html\" %}{% block content %}Eigene Seite{% endblock content %}",
        )
        .unwrap();
        let t = super::tera_with_overrides(dir.path()).unwrap();
        let mut c = tera::Context::new();
        c.insert("site", &serde_json::json!({ "displayName": "Stadt Espelkamp", "links": {} }));
        c.insert("assets", &serde_json::json!({ "css": "1", "theme": "2" }));
        c.insert("legal_links", &serde_json::json!([]));
        let html = t.render("not_found.html", &c).unwrap();
        assert!(html.contains("Eigene Seite") && html.contains("Stadt Espelkamp"), "{html}");
        std::fs::write(dir.path().join("sneaky.html"), "x").unwrap();
        assert!(super::tera_with_overrides(dir.path()).unwrap_err().contains("not a portal template"));
        std::fs::remove_file(dir.path().join("sneaky.html")).unwrap();
        std::fs::write(dir.path().join("home.html"), "{% if %}").unwrap();
        assert!(super::tera_with_overrides(dir.path()).is_err());
    }
}
