//! The SAML response path as the ACS runs it, on arbitrary XML: the root-tag peek, the bounded
//! parser, exclusive canonicalization, and the full validation (signature verification,
//! decryption, conditions) with a fixed IdP/SP key pair (fuzz/keys, test only) and a fixed
//! clock, so that the seed corpus's signed responses stay valid.
//!
//! Run bounded with `cargo xtask fuzz [--seconds N]`.
//!
//! libFuzzer's `-malloc_limit_mb` needs a sanitizer's allocator hooks, and this target is built
//! without a sanitizer (`--sanitizer none`, for speed); so the global allocator here enforces
//! the limit itself: one allocation larger than `-malloc_limit_mb` (read from the command line)
//! aborts, which libFuzzer reports as a crash and keeps the input.

#![no_main]

use base64::Engine as _;
use libfuzzer_sys::fuzz_target;
use portalctl::servicekonto::keys::{KeyPaths, SpKeys};
use portalctl::servicekonto::saml::{self, Expectations};
use portalctl::servicekonto::samples;
use portalctl::servicekonto::xml::{self, Limits};
use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::OnceLock;

/// The largest single allocation allowed, in bytes (0: no limit, until `init` has read it).
static MALLOC_LIMIT: AtomicUsize = AtomicUsize::new(0);

struct Limited;

impl Limited {
    fn check(size: usize) {
        let limit = MALLOC_LIMIT.load(Ordering::Relaxed);
        if limit != 0 && size > limit {
            // Written without allocating; abort is libFuzzer's "deadly signal" (input saved).
            let msg = b"==fuzz== ERROR: an allocation over -malloc_limit_mb\n";
            let _ = std::io::Write::write_all(&mut std::io::stderr().lock(), msg);
            std::process::abort();
        }
    }
}

unsafe impl GlobalAlloc for Limited {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        Limited::check(layout.size());
        System.alloc(layout)
    }
    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        Limited::check(layout.size());
        System.alloc_zeroed(layout)
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        Limited::check(new_size);
        System.realloc(ptr, layout, new_size)
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        System.dealloc(ptr, layout)
    }
}

#[global_allocator]
static ALLOC: Limited = Limited;

/// `-malloc_limit_mb=N` of the command line (libFuzzer's own default: `-rss_limit_mb`, 2048).
fn read_malloc_limit() {
    let flag =
        |name: &str| std::env::args().filter_map(|a| a.strip_prefix(name).and_then(|v| v.parse::<usize>().ok())).last();
    let mb = flag("-malloc_limit_mb=").filter(|&m| m > 0).or_else(|| flag("-rss_limit_mb=")).unwrap_or(2048);
    MALLOC_LIMIT.store(mb << 20, Ordering::Relaxed);
}

fn expectations() -> &'static Expectations {
    static EX: OnceLock<Expectations> = OnceLock::new();
    EX.get_or_init(|| {
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("keys");
        let keys =
            SpKeys::read(&KeyPaths { key: dir.join("idp.key.pem"), cert: dir.join("idp.crt.pem") }).expect("fuzz/keys");
        Expectations {
            sp_key: Some(keys.private_key.clone()),
            allow_legacy_cbc: true,
            ..samples::Response::fixed().expectations(keys.cert_der.clone(), samples::FIXED_NOW)
        }
    })
}

fuzz_target!(init: read_malloc_limit(), |data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else { return };
    let form = base64::engine::general_purpose::STANDARD.encode(text);
    let _ = saml::peek_in_response_to(&form);
    if let Ok(doc) = xml::parse(text, &Limits::SAML) {
        let root = doc.root();
        let _ = xml::exc_c14n(root, None, &[]);
        let _ = root.in_scope_namespaces();
    }
    let _ = saml::validate_response(&form, expectations());
});
