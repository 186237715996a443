//! Colours of a commune's corporate design and the WCAG 2.1 contrast rules they must meet.
//! Pure: parsing and arithmetic only.

use std::fmt;

/// An sRGB colour written as `#rrggbb` (or `#rgb`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Rgb(pub u8, pub u8, pub u8);

impl Rgb {
    /// Parse `#rrggbb` or `#rgb` (case-insensitive).
    pub fn parse(s: &str) -> Option<Rgb> {
        let hex = s.strip_prefix('#')?;
        if !hex.chars().all(|c| c.is_ascii_hexdigit()) {
            return None;
        }
        let v = |i: usize, n: usize| u8::from_str_radix(&hex[i..i + n], 16).ok();
        match hex.len() {
            6 => Some(Rgb(v(0, 2)?, v(2, 2)?, v(4, 2)?)),
            3 => {
                let d = |i| v(i, 1).map(|x| x * 17);
                Some(Rgb(d(0)?, d(1)?, d(2)?))
            }
            _ => None,
        }
    }

    /// Relative luminance as defined by WCAG 2.1.
    pub fn luminance(self) -> f64 {
        let lin = |c: u8| {
            let c = f64::from(c) / 255.0;
            if c <= 0.04045 {
                c / 12.92
            } else {
                ((c + 0.055) / 1.055).powf(2.4)
            }
        };
        0.2126 * lin(self.0) + 0.7152 * lin(self.1) + 0.0722 * lin(self.2)
    }
}

impl fmt::Display for Rgb {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "#{:02x}{:02x}{:02x}", self.0, self.1, self.2)
    }
}

/// WCAG 2.1 contrast ratio between two colours, from 1.0 to 21.0.
pub fn contrast_ratio(a: Rgb, b: Rgb) -> f64 {
    let (la, lb) = (a.luminance(), b.luminance());
    let (hi, lo) = if la > lb { (la, lb) } else { (lb, la) };
    (hi + 0.05) / (lo + 0.05)
}

/// Minimum contrast for normal text, WCAG 2.1 success criterion 1.4.3 (level AA).
pub const AA_NORMAL_TEXT: f64 = 4.5;

/// A fully resolved theme: every colour present (group defaults and built-in defaults filled in).
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Theme {
    /// Brand colour: header bar, buttons, tiles.
    pub primary_color: String,
    /// Text drawn on the brand colour.
    pub on_primary_color: String,
    /// Body text.
    pub text_color: String,
    /// Page background.
    pub background_color: String,
    /// Links and focus outlines.
    pub accent_color: String,
    /// Logo URL or path under the portal's asset directory.
    pub logo: Option<String>,
    /// CSS font-family stack.
    pub font: String,
}

impl Default for Theme {
    fn default() -> Self {
        Theme {
            primary_color: "#004b87".into(),
            on_primary_color: "#ffffff".into(),
            text_color: "#1a1a1a".into(),
            background_color: "#ffffff".into(),
            accent_color: "#005ea8".into(),
            logo: None,
            font: "\"Source Sans 3\", \"Segoe UI\", Arial, sans-serif".into(),
        }
    }
}

/// The foreground/background pairs of a theme that carry text, with what each is used for.
pub fn text_pairs(t: &Theme) -> [(&'static str, &str, &'static str, &str, &'static str); 3] {
    [
        ("textColor", &t.text_color, "backgroundColor", &t.background_color, "body text"),
        ("onPrimaryColor", &t.on_primary_color, "primaryColor", &t.primary_color, "text on the header and buttons"),
        ("accentColor", &t.accent_color, "backgroundColor", &t.background_color, "links"),
    ]
}

/// Placeholder palettes for scaffolded tenants: each passes AA for all text pairs.
/// Real communes replace these with their corporate design.
pub const PALETTES: &[(&str, &str)] = &[
    ("#004b87", "#005ea8"),
    ("#8a1c1c", "#9b2226"),
    ("#1b5e20", "#2e7d32"),
    ("#4a148c", "#5e35b1"),
    ("#00695c", "#00796b"),
    ("#b33c00", "#a33a00"),
    ("#37474f", "#455a64"),
    ("#0d47a1", "#1565c0"),
];

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn contrast_matches_wcag_examples() {
        let black = Rgb::parse("#000").unwrap();
        let white = Rgb::parse("#ffffff").unwrap();
        assert!((contrast_ratio(black, white) - 21.0).abs() < 1e-9);
        assert!((contrast_ratio(white, white) - 1.0).abs() < 1e-9);
        // #767676 on white is the classic lightest AA grey (4.54:1); #777777 fails (4.48:1).
        assert!(contrast_ratio(Rgb::parse("#767676").unwrap(), white) >= AA_NORMAL_TEXT);
        assert!(contrast_ratio(Rgb::parse("#777777").unwrap(), white) < AA_NORMAL_TEXT);
    }

    #[test]
    fn parse_rejects_garbage() {
        for bad in ["", "red", "#12", "#1234567", "#gggggg", "004b87"] {
            assert_eq!(Rgb::parse(bad), None, "{bad}");
        }
    }

    #[test]
    fn placeholder_palettes_pass_aa() {
        let white = Rgb::parse("#ffffff").unwrap();
        for (primary, accent) in PALETTES {
            let p = Rgb::parse(primary).unwrap();
            let a = Rgb::parse(accent).unwrap();
            assert!(contrast_ratio(p, white) >= AA_NORMAL_TEXT, "{primary}");
            assert!(contrast_ratio(a, white) >= AA_NORMAL_TEXT, "{accent}");
        }
    }
}
