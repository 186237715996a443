//! The official list of German municipalities and districts, embedded in the binary
//! (`data/gemeinden-de.csv`, `data/kreise-de.csv`), and lookups by AGS.
//!
//! Source: the municipality cells of the German weather service's warn-cell list
//! (cell id = `8` + AGS). Names keep their umlauts, ß, parentheses and slashes.

use std::collections::BTreeMap;
use std::sync::OnceLock;

static GEMEINDEN_CSV: &str = include_str!("../data/gemeinden-de.csv");
static KREISE_CSV: &str = include_str!("../data/kreise-de.csv");

/// One municipality (Gemeinde) as listed officially.
#[derive(Debug, Clone, serde::Deserialize, serde::Serialize)]
#[serde(rename_all(serialize = "camelCase"))]
pub struct Municipality {
    /// Amtlicher Gemeindeschlüssel, 8 digits.
    pub ags: String,
    /// Official name with its type prefix (`Stadt Preußisch Oldendorf`).
    pub name: String,
    /// Name without the prefix (`Preußisch Oldendorf`); not unique across Germany.
    pub short: String,
    /// `stadt`, `gemeinde`, `mitgliedsgemeinde`, `große-kreisstadt`.
    #[serde(rename = "type")]
    pub typ: String,
    /// The district's AGS (first five digits).
    pub kreis_ags: String,
    /// The district's name.
    pub kreis: String,
    /// A district-free city (`yes` in the official list).
    #[serde(deserialize_with = "yes_no")]
    pub kreisfrei: bool,
    /// Two-letter Land code.
    pub land: String,
}

impl Municipality {
    /// A district-free city is its own district.
    pub fn is_kreisfrei(&self) -> bool {
        self.kreisfrei
    }
}

/// `yes` / `no` of the official list as a boolean.
fn yes_no<'de, D: serde::Deserializer<'de>>(d: D) -> Result<bool, D::Error> {
    match <String as serde::Deserialize>::deserialize(d)?.as_str() {
        "yes" => Ok(true),
        "no" | "" => Ok(false),
        other => Err(serde::de::Error::custom(format!("expected yes or no, found {other:?}"))),
    }
}

/// One district (Kreis) or district-free city.
#[derive(Debug, Clone, serde::Deserialize, serde::Serialize)]
pub struct Kreis {
    /// 5 digits.
    pub ags: String,
    /// Official name (`Kreis Minden-Lübbecke`, `Stadt Bottrop`).
    pub name: String,
    /// Two-letter Land code.
    pub land: String,
}

/// The official designation of a district. The source list writes every district called "Kreis" or "Landkreis" as
/// `Kreis <name>`; but "Kreis" is the official designation only in North Rhine-Westphalia, Schleswig-Holstein and
/// for three districts of Hesse (Bergstraße, Groß-Gerau, Offenbach). Everywhere else it is `Landkreis <name>`
/// (`Kreis Stade` → `Landkreis Stade`). Other names (`Region Hannover`, `Rhein-Sieg-Kreis`, `Stadt Bottrop`) are
/// kept as they are.
pub fn official_kreis_name(ags: &str, name: &str, land: &str) -> String {
    const HESSIAN_KREISE: &[&str] = &["06431", "06433", "06438"];
    match name.strip_prefix("Kreis ") {
        Some(rest) if !matches!(land, "NW" | "SH") && !HESSIAN_KREISE.contains(&ags) => format!("Landkreis {rest}"),
        _ => name.to_string(),
    }
}

/// The parsed tables, built once per process.
pub struct Registry {
    pub municipalities: Vec<Municipality>,
    pub kreise: Vec<Kreis>,
    by_ags: BTreeMap<String, usize>,
    kreis_by_ags: BTreeMap<String, usize>,
}

impl Registry {
    /// The embedded official data.
    pub fn official() -> &'static Registry {
        static REGISTRY: OnceLock<Registry> = OnceLock::new();
        REGISTRY.get_or_init(|| {
            Registry::from_csv(GEMEINDEN_CSV, KREISE_CSV).expect("embedded municipality data is well-formed")
        })
    }

    /// Build from CSV text in the format of `data/*.csv`.
    pub fn from_csv(gemeinden: &str, kreise: &str) -> Result<Registry, csv::Error> {
        let municipalities: Vec<Municipality> =
            csv::Reader::from_reader(gemeinden.as_bytes()).deserialize().collect::<Result<_, _>>()?;
        let mut municipalities = municipalities;
        let mut kreise: Vec<Kreis> =
            csv::Reader::from_reader(kreise.as_bytes()).deserialize().collect::<Result<_, _>>()?;
        for k in &mut kreise {
            k.name = official_kreis_name(&k.ags, &k.name, &k.land);
        }
        for m in &mut municipalities {
            m.kreis = official_kreis_name(&m.kreis_ags, &m.kreis, &m.land);
        }
        let by_ags = municipalities.iter().enumerate().map(|(i, m)| (m.ags.clone(), i)).collect();
        let kreis_by_ags = kreise.iter().enumerate().map(|(i, k)| (k.ags.clone(), i)).collect();
        Ok(Registry { municipalities, kreise, by_ags, kreis_by_ags })
    }

    /// The municipality with this 8-digit AGS.
    pub fn municipality(&self, ags: &str) -> Option<&Municipality> {
        self.by_ags.get(ags).map(|&i| &self.municipalities[i])
    }

    /// The district with this 5-digit AGS.
    pub fn kreis(&self, ags: &str) -> Option<&Kreis> {
        self.kreis_by_ags.get(ags).map(|&i| &self.kreise[i])
    }

    /// All municipalities of a district, in AGS order.
    pub fn in_kreis<'a>(&'a self, kreis_ags: &'a str) -> impl Iterator<Item = &'a Municipality> + 'a {
        self.municipalities.iter().filter(move |m| m.kreis_ags == kreis_ags)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn embedded_data_is_complete() {
        let r = Registry::official();
        assert_eq!(r.municipalities.len(), 10_790);
        assert_eq!(r.kreise.len(), 401);
        assert_eq!(r.municipalities.iter().filter(|m| m.land == "NW").count(), 396);
        let e = r.municipality("05770008").unwrap();
        assert_eq!(e.short, "Espelkamp");
        assert_eq!(r.kreis("05770").unwrap().name, "Kreis Minden-Lübbecke");
        assert_eq!(r.in_kreis("05770").count(), 11);
        assert_eq!(r.in_kreis("05758").count(), 9);
        assert_eq!(r.in_kreis("05766").count(), 16);
        assert_eq!(r.in_kreis("05370").count(), 10);
        assert_eq!(r.in_kreis("05562").count(), 10);
    }

    #[test]
    fn districts_carry_their_official_designation() {
        let r = Registry::official();
        let name = |ags: &str| r.kreis(ags).unwrap().name.as_str();
        assert_eq!(name("03359"), "Landkreis Stade");
        assert_eq!(name("09162"), "Stadt München");
        assert_eq!(name("05766"), "Kreis Lippe", "NRW: Kreis");
        assert_eq!(name("01051"), "Kreis Dithmarschen", "Schleswig-Holstein: Kreis");
        assert_eq!(name("06431"), "Kreis Bergstraße", "Hesse's own Kreise");
        assert_eq!(name("06633"), "Landkreis Kassel");
        assert_eq!(name("03241"), "Region Hannover");
        assert_eq!(name("05334"), "StädteRegion Aachen");
        // Municipalities name their district the same way.
        let stade = r.in_kreis("03359").next().unwrap();
        assert_eq!(stade.kreis, "Landkreis Stade");
        assert!(r
            .kreise
            .iter()
            .filter(|k| k.land != "NW" && k.land != "SH")
            .all(|k| !k.name.starts_with("Kreis ") || ["06431", "06433", "06438"].contains(&k.ags.as_str())));
    }
}
