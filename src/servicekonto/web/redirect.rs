//! Where to send the browser after login (`next` at `/anmelden`): only to a page of the
//! tenant's own origin, given as a path (starting with one `/`).
//!
//! The target is resolved against the tenant's base URL with the WHATWG URL parser (the one
//! browsers use) and accepted only if the result has exactly the tenant's origin; what is sent
//! in `Location` is the parsed URL's path, query and fragment, i.e. what was checked. Refused
//! outright (the target becomes `/`): control characters and backslashes — also when
//! percent-encoded once —, raw whitespace and invisible Unicode (zero-width, bidi controls),
//! and anything whose path would start with `//`. Browsers
//! drop tabs and newlines and read `\` as `/`, so `/\t/evil.example/` or `/\evil.example`
//! would otherwise leave the site.

use url::{Position, Url};

/// Longest target kept.
pub const MAX_TARGET_LEN: usize = 512;

/// The local target for `next`, or `/`.
pub fn local_target(base: &Url, next: Option<&str>) -> String {
    next.and_then(|n| checked(base, n)).unwrap_or_else(|| "/".to_string())
}

fn forbidden(c: char) -> bool {
    c.is_control()
        || c.is_whitespace()
        || c == '\\'
        || matches!(c, '\u{200b}'..='\u{200f}' | '\u{2028}'..='\u{202e}' | '\u{2060}'..='\u{2064}' | '\u{feff}')
}

fn checked(base: &Url, next: &str) -> Option<String> {
    if next.is_empty() || next.len() > MAX_TARGET_LEN || !next.starts_with('/') || next.chars().any(forbidden) {
        return None;
    }
    let decoded = percent_encoding::percent_decode_str(next).decode_utf8_lossy();
    if decoded.chars().any(|c| c.is_control() || c == '\\') || decoded.starts_with("//") {
        return None;
    }
    let url = base.join(next).ok()?;
    if url.origin() != base.origin() || url.username() != "" || url.password().is_some() {
        return None;
    }
    let target = &url[Position::BeforePath..];
    (target.starts_with('/') && !target.starts_with("//")).then(|| target.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    const BASE: &str = "https://service.detmold.de";

    #[test]
    fn only_paths_of_the_tenants_own_origin_are_kept() {
        let base = Url::parse(BASE).unwrap();
        let accepted = [
            ("/", "/"),
            ("/konto", "/konto"),
            ("/leistungen/hund?x=1#top", "/leistungen/hund?x=1#top"),
            ("/suche?q=Hund%20anmelden", "/suche?q=Hund%20anmelden"),
            ("/a/../b", "/b"),
            ("/straße", "/stra%C3%9Fe"),
            ("/%2e%2e/konto", "/konto"),
            ("/@evil.example", "/@evil.example"),
        ];
        for (next, want) in accepted {
            assert_eq!(local_target(&base, Some(next)), want, "{next:?}");
        }
        let refused = [
            // Control characters, raw and as axum decodes them from %09, %0a, %0d, %00.
            "/\t/evil.example/",
            "/\n/evil.example/",
            "/\r/evil.example/",
            "/\0/evil.example/",
            "/\u{7f}/evil.example/",
            "/\u{85}/evil.example/",
            // ... and once more percent-encoded (%2509 arrives as %09).
            "/%09/evil.example/",
            "/%0a/evil.example/",
            "/%0D/evil.example/",
            "/%00/evil.example/",
            // Backslashes, raw and encoded.
            "/\\evil.example",
            "\\/evil.example",
            "/\\/evil.example",
            "/%5cevil.example",
            "/%5C%5Cevil.example",
            // Scheme-relative and its disguises.
            "//evil.example",
            "//evil.example/x",
            "/%2fevil.example",
            "/%2F%2Fevil.example",
            "/.//evil.example",
            "/..//evil.example",
            // Absolute URLs and other schemes.
            "https://evil.example/",
            "http://service.detmold.de/konto",
            "http:evil.example",
            "javascript:alert(1)",
            "data:text/html,x",
            "mailto:x@evil.example",
            // Relative paths and empty.
            "evil.example",
            "",
            // Unicode look-alikes of whitespace, bidi and zero-width characters.
            "/\u{2028}/evil.example",
            "/\u{202e}lmth.x",
            "/\u{200b}/evil.example",
            "/\u{3000}evil",
            "/\u{a0}evil",
        ];
        for next in refused {
            assert_eq!(local_target(&base, Some(next)), "/", "{next:?} must be refused");
        }
        assert_eq!(local_target(&base, None), "/");
        assert_eq!(local_target(&base, Some(&format!("/{}", "a".repeat(MAX_TARGET_LEN)))), "/");
    }

    #[test]
    fn the_origin_must_match_exactly_also_in_local_http_mode() {
        let base = Url::parse("http://service.detmold.test:8080").unwrap();
        assert_eq!(local_target(&base, Some("/konto")), "/konto");
        assert_eq!(local_target(&base, Some("http://service.detmold.test:8080/konto")), "/");
        assert_eq!(local_target(&base, Some("//service.detmold.test:8081/konto")), "/");
    }
}
