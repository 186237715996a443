//! `cargo xtask bench saml`: time and peak memory of validating the worst-case SAMLResponse
//! documents at the 512 KiB cap (deep nesting, a namespace bomb, the most elements, the most
//! text, and a valid response signed twice that fills the element limit), in the profile
//! xtask was built with: `cargo xtask bench saml` (dev profile, our code unoptimized: an upper
//! bound) or `cargo run --release -p xtask -- bench saml`. Peak memory is the rise of the process's peak RSS (VmHWM, reset through
//! /proc/self/clear_refs) over its RSS before the document.

use anyhow::{bail, Result};
use base64::Engine as _;
use portalctl::servicekonto::keys::{KeyPaths, SpKeys};
use portalctl::servicekonto::saml::{self, MAX_RESPONSE_LEN};
use portalctl::servicekonto::samples::{self, ASSERTION_SIG, RESPONSE_SIG};
use portalctl::servicekonto::xmldsig::sign_enveloped;
use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::atomic::{AtomicIsize, Ordering};
use std::time::Instant;

const RUNS: usize = 5;

/// The system allocator, counting live bytes and their peak.
struct Counting;

static LIVE: AtomicIsize = AtomicIsize::new(0);
static PEAK: AtomicIsize = AtomicIsize::new(0);

fn add(delta: isize) {
    let now = LIVE.fetch_add(delta, Ordering::Relaxed) + delta;
    PEAK.fetch_max(now, Ordering::Relaxed);
}

unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        add(layout.size() as isize);
        System.alloc(layout)
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        add(-(layout.size() as isize));
        System.dealloc(ptr, layout)
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        add(new_size as isize - layout.size() as isize);
        System.realloc(ptr, layout, new_size)
    }
}

#[global_allocator]
static ALLOC: Counting = Counting;

pub fn saml() -> Result<()> {
    let now = samples::FIXED_NOW;
    // The fuzz target's test key pair, so that the written documents are valid for it as well.
    let keys = crate::root().join("fuzz").join("keys");
    let idp = SpKeys::read(&KeyPaths { key: keys.join("idp.key.pem"), cert: keys.join("idp.crt.pem") })?;
    let response = samples::Response::fixed();
    let ex = response.expectations(idp.cert_der.clone(), now);
    let cap = MAX_RESPONSE_LEN / 4 * 3;
    let irt = response.in_response_to.as_str();
    let docs = vec![
        ("deep nesting", samples::deep_nesting(cap / 7 - 20, irt)),
        ("namespace bomb", samples::namespace_bomb(2000, 11_000, irt)),
        ("most elements and namespaces", samples::wide(cap, irt)),
        ("text and references", samples::text_heavy(cap, irt)),
        ("valid, signed twice, 4,000 elements", signed_large(&response, &idp, cap)?),
    ];
    let profile = if cfg!(debug_assertions) { "dev profile (unoptimized)" } else { "release profile" };
    println!(
        "bench saml: validate_response on documents at the {} KiB cap, best of {RUNS}, {profile}",
        MAX_RESPONSE_LEN / 1024
    );
    println!("{:<38} {:>8} {:>8} {:>9} {:>10}  result", "document", "XML KiB", "b64 KiB", "time ms", "heap MiB");
    let write_to = std::env::var_os("BENCH_SAML_WRITE").map(std::path::PathBuf::from);
    let mut worst = (0.0f64, 0.0f64);
    for (name, xml) in docs {
        let form = base64::engine::general_purpose::STANDARD.encode(&xml);
        if form.len() > MAX_RESPONSE_LEN {
            bail!("{name}: {} bytes of base64 exceed the cap", form.len());
        }
        if let Some(dir) = &write_to {
            std::fs::create_dir_all(dir)?;
            std::fs::write(dir.join(name.replace([' ', ','], "-")), &xml)?;
        }
        let mut best = f64::MAX;
        let mut peak = 0.0f64;
        let mut outcome = String::new();
        for _ in 0..RUNS {
            let before = LIVE.load(Ordering::Relaxed);
            PEAK.store(before, Ordering::Relaxed);
            let t = Instant::now();
            let result = saml::validate_response(&form, &ex);
            best = best.min(t.elapsed().as_secs_f64() * 1e3);
            peak = peak.max((PEAK.load(Ordering::Relaxed) - before) as f64 / (1024.0 * 1024.0));
            outcome = match result {
                Ok(id) => format!("accepted ({})", id.subject),
                Err(e) => format!("refused: {e}"),
            };
        }
        worst = (worst.0.max(best), worst.1.max(peak));
        println!(
            "{name:<38} {:>8.0} {:>8.0} {best:>9.2} {peak:>10.2}  {outcome}",
            xml.len() as f64 / 1024.0,
            form.len() as f64 / 1024.0
        );
    }
    println!("bench saml: worst case {:.2} ms, {:.2} MiB of heap at once", worst.0, worst.1);
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
