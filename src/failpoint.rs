//! Crash points for fault-injection tests: `PORTALCTL_FAILPOINTS=name[,name…]` makes the
//! process abort (as `kill -9` would: no unwinding, no cleanup) when it reaches a named point.
//! Without the variable a point costs one cached lookup.

use std::sync::OnceLock;

fn armed() -> &'static [String] {
    static ARMED: OnceLock<Vec<String>> = OnceLock::new();
    ARMED.get_or_init(|| {
        std::env::var("PORTALCTL_FAILPOINTS")
            .map(|v| v.split(',').map(str::trim).filter(|s| !s.is_empty()).map(String::from).collect())
            .unwrap_or_default()
    })
}

/// Abort the process here if the point `name` is armed.
pub fn hit(name: &str) {
    if armed().iter().any(|a| a == name) {
        eprintln!("failpoint {name}: aborting");
        std::process::abort();
    }
}
