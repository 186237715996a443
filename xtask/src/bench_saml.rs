//! `cargo xtask bench saml`: time and peak memory of validating the worst-case SAMLResponse
//! documents at the 512 KiB cap (deep nesting, a namespace bomb, the most elements, the most
//! text, and a valid response signed twice that fills the element limit), in a release build.
//! Peak memory is the rise of the process's peak RSS (VmHWM, reset through
//! /proc/self/clear_refs) over its RSS before the document.

use crate::{cargo, root};
use anyhow::{bail, Context, Result};
use base64::Engine as _;
use portalctl::servicekonto::keys::SpKeys;
use portalctl::servicekonto::metadata::IdpMetadata;
use portalctl::servicekonto::saml::{self, Expectations, MAX_RESPONSE_LEN};
use portalctl::servicekonto::samples::{self, ASSERTION_SIG, RESPONSE_SIG};
use portalctl::servicekonto::xmldsig::sign_enveloped;
use std::process::Command;
use std::sync::Arc;
use std::time::Instant;

const RUNS: usize = 5;

pub fn saml() -> Result<()> {
    if cfg!(debug_assertions) {
        // Measure optimized code: rerun this benchmark from a release build of xtask.
        crate::run(cargo().args(["build", "--release", "--quiet", "--package", "xtask"]))?;
        let target: std::path::PathBuf =
            std::env::var("CARGO_TARGET_DIR").map(Into::into).unwrap_or_else(|_| root().join("target"));
        let status = Command::new(target.join("release").join("xtask"))
            .args(["bench", "saml"])
            .status()
            .context("cannot run the release xtask")?;
        if !status.success() {
            bail!("bench saml failed ({status})");
        }
        return Ok(());
    }
    let now = samples::FIXED_NOW;
    let idp = SpKeys::self_signed("IdP", "Bench", now - time::Duration::days(1), now + time::Duration::days(1))?;
    let response = samples::Response::fixed();
    let ex = Expectations {
        entity_id: response.sp_entity_id.clone(),
        acs_url: response.acs_url.clone(),
        request_id: response.in_response_to.clone(),
        idp: Arc::new(IdpMetadata {
            entity_id: response.idp_entity_id.clone(),
            sso_redirect: "https://idp.example/sso".into(),
            slo_redirect: None,
            signing_certs: vec![idp.cert_der.clone()],
        }),
        sp_key: None,
        allow_legacy_cbc: false,
        now,
        skew: time::Duration::seconds(90),
    };
    let cap = MAX_RESPONSE_LEN / 4 * 3;
    let irt = response.in_response_to.as_str();
    let docs = vec![
        ("deep nesting", samples::deep_nesting(cap / 7 - 20, irt)),
        ("namespace bomb", samples::namespace_bomb(2000, 11_000, irt)),
        ("4,096 elements, 200 namespaces", samples::wide(cap, irt)),
        ("text and references", samples::text_heavy(cap, irt)),
        ("valid, signed twice, 4,000 elements", signed_large(&response, &idp, cap)?),
    ];
    println!("bench saml: validate_response on documents at the {} KiB cap, best of {RUNS}", MAX_RESPONSE_LEN / 1024);
    println!("{:<38} {:>9} {:>9} {:>10} {:>12}  result", "document", "XML KiB", "b64 KiB", "time ms", "peak +MiB");
    let mut worst = (0.0f64, 0.0f64);
    for (name, xml) in docs {
        let form = base64::engine::general_purpose::STANDARD.encode(&xml);
        if form.len() > MAX_RESPONSE_LEN {
            bail!("{name}: {} bytes of base64 exceed the cap", form.len());
        }
        let mut best = f64::MAX;
        let mut peak = 0.0f64;
        let mut outcome = String::new();
        for _ in 0..RUNS {
            let before = rss_kib("VmRSS")?;
            std::fs::write("/proc/self/clear_refs", "5").context("resetting the peak RSS")?;
            let t = Instant::now();
            let result = saml::validate_response(&form, &ex);
            best = best.min(t.elapsed().as_secs_f64() * 1e3);
            peak = peak.max((rss_kib("VmHWM")? - before) as f64 / 1024.0);
            outcome = match result {
                Ok(id) => format!("accepted ({})", id.subject),
                Err(e) => format!("refused: {e}"),
            };
        }
        worst = (worst.0.max(best), worst.1.max(peak));
        println!(
            "{name:<38} {:>9.0} {:>9.0} {best:>10.2} {peak:>12.1}  {outcome}",
            xml.len() as f64 / 1024.0,
            form.len() as f64 / 1024.0
        );
    }
    println!("bench saml: worst case {:.2} ms, {:.1} MiB above the RSS before the document", worst.0, worst.1);
    Ok(())
}

/// A valid response, assertion and response signed, with as many attributes as fit below the
/// element limit and the size cap: the most work a document can cause on the accepting path.
fn signed_large(response: &samples::Response, idp: &SpKeys, cap: usize) -> Result<String> {
    let mut padding = String::new();
    for i in 0..1300 {
        padding.push_str(&format!(
            r#"<saml:Attribute Name="urn:example:attribute:{i}"><saml:AttributeValue xsi:type="xs:string">{}</saml:AttributeValue></saml:Attribute>"#,
            "v".repeat(120)
        ));
    }
    let xml = response.xml().replacen("</saml:AttributeStatement>", &format!("{padding}</saml:AttributeStatement>"), 1);
    let xml = sign_enveloped(&xml, "_assert", ASSERTION_SIG, &idp.private_key)?;
    let xml = sign_enveloped(&xml, "_resp", RESPONSE_SIG, &idp.private_key)?;
    if xml.len() > cap {
        bail!("the signed document has {} bytes, more than the cap", xml.len());
    }
    Ok(xml)
}

fn rss_kib(field: &str) -> Result<u64> {
    let status = std::fs::read_to_string("/proc/self/status")?;
    status
        .lines()
        .find_map(|l| l.strip_prefix(field).and_then(|r| r.trim_start_matches(':').trim().strip_suffix("kB")))
        .and_then(|v| v.trim().parse().ok())
        .with_context(|| format!("no {field} in /proc/self/status"))
}
