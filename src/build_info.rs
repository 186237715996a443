//! What this binary is: version, git revision, build date, enabled features and target
//! (`portalctl version`), recorded at build time by `build.rs`.

use serde::Serialize;

/// The build metadata of the running binary (`version -o json`: camelCase keys, like every
/// other JSON document of the CLI).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct BuildInfo {
    /// The crate version (`Cargo.toml`; also the image tag and the chart's `appVersion`).
    pub version: &'static str,
    /// The full git commit the binary was built from, or `unknown` outside a git checkout.
    pub git_revision: &'static str,
    /// The build date (RFC 3339, UTC): `SOURCE_DATE_EPOCH`, else the commit time; `None` when
    /// neither was known.
    pub build_date: Option<String>,
    /// The enabled cargo features of the `portalctl` crate, sorted.
    pub features: Vec<&'static str>,
    /// The target triple.
    pub target: &'static str,
    /// The cargo profile (`release` or `debug`).
    pub profile: &'static str,
}

/// The build metadata of this binary.
pub fn current() -> BuildInfo {
    BuildInfo {
        version: env!("CARGO_PKG_VERSION"),
        git_revision: env!("PORTALCTL_GIT_REVISION"),
        build_date: build_date(env!("PORTALCTL_BUILD_EPOCH")),
        features: env!("PORTALCTL_FEATURES").split(',').filter(|f| !f.is_empty()).collect(),
        target: env!("PORTALCTL_TARGET"),
        profile: env!("PORTALCTL_PROFILE"),
    }
}

/// Seconds since the epoch as an RFC 3339 date in UTC.
fn build_date(epoch: &str) -> Option<String> {
    let secs: i64 = epoch.parse().ok()?;
    let t = time::OffsetDateTime::from_unix_timestamp(secs).ok()?;
    t.format(&time::format_description::well_known::Rfc3339).ok()
}

#[cfg(test)]
mod tests {
    #[test]
    fn build_dates_are_rfc3339_in_utc() {
        assert_eq!(super::build_date("1700000000").as_deref(), Some("2023-11-14T22:13:20Z"));
        assert_eq!(super::build_date(""), None);
        assert_eq!(super::build_date("soon"), None);
    }

    #[test]
    fn the_current_build_names_its_version_and_target() {
        let info = super::current();
        assert_eq!(info.version, env!("CARGO_PKG_VERSION"));
        assert!(!info.target.is_empty());
        assert!(!info.git_revision.is_empty());
    }

    #[test]
    fn json_keys_are_camel_case() {
        let json = serde_json::to_value(super::current()).unwrap();
        let keys: Vec<&str> = json.as_object().unwrap().keys().map(String::as_str).collect();
        assert_eq!(keys, ["version", "gitRevision", "buildDate", "features", "target", "profile"]);
    }
}
