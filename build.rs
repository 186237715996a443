//! Build metadata for `portalctl version`: git revision, build date and enabled features.
//!
//! Reproducible: the build date is `SOURCE_DATE_EPOCH` when set, otherwise the commit time of
//! `HEAD` (never the wall clock), so the same source gives the same binary.

use std::process::Command;

fn git(args: &[&str]) -> Option<String> {
    let out = Command::new("git").args(args).output().ok()?;
    let text = String::from_utf8(out.stdout).ok()?.trim().to_string();
    (out.status.success() && !text.is_empty()).then_some(text)
}

fn main() {
    println!("cargo:rerun-if-env-changed=SOURCE_DATE_EPOCH");
    println!("cargo:rerun-if-env-changed=PORTALCTL_GIT_REVISION");
    // Re-run when HEAD moves: HEAD itself and the branch it points to (paths that exist only;
    // a missing path would re-run this script on every build).
    let mut watched = vec![git(&["rev-parse", "--git-path", "HEAD"])];
    if let Some(branch) = git(&["symbolic-ref", "-q", "HEAD"]) {
        watched.push(git(&["rev-parse", "--git-path", &branch]));
    }
    watched.push(git(&["rev-parse", "--git-path", "packed-refs"]));
    for path in watched.into_iter().flatten() {
        if std::path::Path::new(&path).exists() {
            println!("cargo:rerun-if-changed={path}");
        }
    }

    let revision = std::env::var("PORTALCTL_GIT_REVISION")
        .ok()
        .filter(|r| !r.is_empty())
        .or_else(|| git(&["rev-parse", "HEAD"]))
        .unwrap_or_else(|| "unknown".into());
    let epoch = std::env::var("SOURCE_DATE_EPOCH")
        .ok()
        .filter(|e| e.parse::<i64>().is_ok())
        .or_else(|| git(&["log", "-1", "--format=%ct"]))
        .unwrap_or_default();
    let mut features: Vec<String> = std::env::vars()
        .filter_map(|(k, _)| k.strip_prefix("CARGO_FEATURE_").map(|f| f.to_lowercase().replace('_', "-")))
        .collect();
    features.sort();
    println!("cargo:rustc-env=PORTALCTL_GIT_REVISION={revision}");
    println!("cargo:rustc-env=PORTALCTL_BUILD_EPOCH={epoch}");
    println!("cargo:rustc-env=PORTALCTL_FEATURES={}", features.join(","));
    println!("cargo:rustc-env=PORTALCTL_TARGET={}", std::env::var("TARGET").unwrap_or_default());
    println!("cargo:rustc-env=PORTALCTL_PROFILE={}", std::env::var("PROFILE").unwrap_or_default());
}
