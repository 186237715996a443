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
    ("login_message.html", include_str!("../../templates/servicekonto/login_message.html")),
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
}
