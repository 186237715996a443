//! `cargo xtask fuzz`: the libFuzzer target for the SAML response path (fuzz/, run with
//! `cargo +nightly fuzz`), bounded in time, per-input time and memory; and the generation of
//! its committed seed corpus.

use crate::root;
use anyhow::{bail, Context, Result};
use portalctl::servicekonto::keys::{KeyPaths, SpKeys};
use portalctl::servicekonto::samples;
use std::process::Command;

const TARGET: &str = "saml_response";
/// Largest input libFuzzer makes (the ACS accepts 384 KiB of XML; mutations of larger inputs are slow).
const MAX_LEN: &str = "-max_len=131072";
/// One input may take this long (seconds) before it counts as a hang.
const TIMEOUT: &str = "-timeout=5";
/// One allocation larger than this (MiB) is a finding; so is the whole process above the RSS limit.
/// libFuzzer checks `-malloc_limit_mb` only through a sanitizer's allocator hooks, and the target
/// is built without a sanitizer: its own global allocator reads this flag and enforces it.
const MALLOC_LIMIT: &str = "-malloc_limit_mb=64";
const RSS_LIMIT: &str = "-rss_limit_mb=1024";

pub fn run(args: &[&str]) -> Result<()> {
    match args {
        ["seeds"] => seeds(),
        [] => fuzz(60),
        ["--seconds", n] => fuzz(n.parse().with_context(|| format!("--seconds {n:?}"))?),
        other => bail!("usage: cargo xtask fuzz [--seconds N] | cargo xtask fuzz seeds (got {other:?})"),
    }
}

/// Run the target for `seconds` on the committed seeds (new inputs go to a scratch corpus
/// under the target directory); a crash, hang or allocation over the limit fails the run and
/// leaves the input in fuzz/artifacts/.
fn fuzz(seconds: u64) -> Result<()> {
    let fuzz_dir = root().join("fuzz");
    // The nightly, instrumented build gets its own directory beside the stable one, or the one
    // PORTALCTL_FUZZ_TARGET_DIR names (CI keeps it outside the clone, so later runs reuse it).
    let target_dir: std::path::PathBuf = match std::env::var_os("PORTALCTL_FUZZ_TARGET_DIR") {
        Some(dir) => dir.into(),
        None => std::env::var("CARGO_TARGET_DIR")
            .map_or_else(|_| fuzz_dir.join("target"), |t| std::path::Path::new(&t).join("fuzz")),
    };
    let scratch = target_dir.join("fuzz-corpus").join(TARGET);
    std::fs::create_dir_all(&scratch)?;
    let seeds = fuzz_dir.join("corpus").join(TARGET);
    // The nightly cargo must choose its own compiler: drop what the outer (stable) `cargo run`
    // set for xtask, or it would build with the stable rustc and rebuild everything each time.
    let mut cmd = Command::new("cargo");
    for (key, _) in std::env::vars_os() {
        let k = key.to_string_lossy();
        if ["CARGO", "RUSTC", "RUSTDOC", "RUSTUP_TOOLCHAIN", "RUSTC_WRAPPER", "RUSTC_WORKSPACE_WRAPPER"]
            .contains(&k.as_ref())
            || k.starts_with("CARGO_PKG_")
            || k.starts_with("CARGO_MANIFEST_")
        {
            cmd.env_remove(&key);
        }
    }
    let status = cmd
        .current_dir(&fuzz_dir)
        .env("CARGO_TARGET_DIR", &target_dir)
        .args(["+nightly", "fuzz", "run", "--sanitizer", "none", TARGET])
        .arg(&scratch)
        .arg(&seeds)
        .args(["--", MAX_LEN, TIMEOUT, MALLOC_LIMIT, RSS_LIMIT, "-print_final_stats=1"])
        .arg(format!("-max_total_time={seconds}"))
        .status()
        .context("cannot start `cargo +nightly fuzz` (rustup toolchain install nightly; cargo install cargo-fuzz)")?;
    if !status.success() {
        bail!("the fuzz run failed ({status}): see the reproducer in fuzz/artifacts/{TARGET}/");
    }
    Ok(())
}

/// Write the seed corpus: signed responses valid and tampered (XSW1–8, comment/CDATA/PI in the
/// NameID, foreign key, moved signature), encrypted ones (AES-GCM, AES-CBC), and the hostile
/// shapes (deep nesting, namespace bombs, entity expansion, external entities).
fn seeds() -> Result<()> {
    let fuzz_dir = root().join("fuzz");
    let keys = fuzz_dir.join("keys");
    let idp = SpKeys::read(&KeyPaths { key: keys.join("idp.key.pem"), cert: keys.join("idp.crt.pem") })?;
    let now = samples::FIXED_NOW;
    let foreign = SpKeys::self_signed("Elsewhere", "Test", now, now + time::Duration::days(1))?;
    let response = samples::Response::fixed();
    let mut docs: Vec<(String, String)> = samples::signed_corpus(&response, &idp.private_key, &foreign.private_key)?
        .into_iter()
        .map(|c| (c.name.to_string(), c.xml))
        .collect();
    let signed = docs.iter().find(|(n, _)| n == "assertion-signed").map(|(_, x)| x.clone()).unwrap_or_default();
    docs.push(("encrypted-gcm".into(), samples::encrypt_assertion(&signed, &idp.public_key(), false)?));
    docs.push(("encrypted-cbc".into(), samples::encrypt_assertion(&signed, &idp.public_key(), true)?));
    let irt = &response.in_response_to;
    docs.push(("deep-nesting-65".into(), samples::deep_nesting(65, irt)));
    docs.push(("deep-nesting-40000".into(), samples::deep_nesting(40_000, irt)));
    docs.push(("namespace-bomb-small".into(), samples::namespace_bomb(20, 40, irt)));
    docs.push(("namespace-bomb-127k".into(), samples::namespace_bomb(2000, 2900, irt)));
    docs.push(("wide-8k".into(), samples::wide(8192, irt)));
    docs.push(("text-4k".into(), samples::text_heavy(4096, irt)));
    docs.push((
        "billion-laughs".into(),
        format!(
            "<?xml version=\"1.0\"?><!DOCTYPE lolz [<!ENTITY lol \"lol\"><!ENTITY lol2 \"&lol;&lol;&lol;&lol;&lol;\"><!ENTITY lol3 \"&lol2;&lol2;&lol2;&lol2;\">]>{}",
            signed.replacen(">Erika<", ">&lol3;<", 1)
        ),
    ));
    docs.push((
        "xxe".into(),
        format!(
            "<!DOCTYPE r [<!ENTITY xxe SYSTEM \"file:///etc/passwd\">]>{}",
            signed.replacen(">Erika<", ">&xxe;<", 1)
        ),
    ));
    let dir = fuzz_dir.join("corpus").join(TARGET);
    std::fs::create_dir_all(&dir)?;
    for (name, xml) in &docs {
        std::fs::write(dir.join(name), xml)?;
    }
    println!("xtask: wrote {} seeds to {}", docs.len(), dir.display());
    Ok(())
}
