//! Prometheus metrics in text format: requests by tenant and status, a latency histogram,
//! tenants loaded. Counted by a middleware around every route.

use std::collections::HashMap;
use std::fmt::Write as _;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;
use std::time::Duration;

/// Upper bounds of the latency buckets, in seconds.
pub const BUCKETS: &[f64] = &[0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5];

#[derive(Debug, Default)]
pub struct Metrics {
    /// Responses by tenant, then status (looked up by `&str`: no allocation per request).
    requests: Mutex<HashMap<String, HashMap<u16, u64>>>,
    buckets: [AtomicU64; 11],
    count: AtomicU64,
    sum_micros: AtomicU64,
}

impl Metrics {
    pub fn record(&self, tenant: &str, status: u16, elapsed: Duration) {
        {
            let mut m = self.requests.lock().unwrap_or_else(|e| e.into_inner());
            match m.get_mut(tenant) {
                Some(by_status) => *by_status.entry(status).or_insert(0) += 1,
                None => {
                    m.insert(tenant.to_string(), HashMap::from([(status, 1)]));
                }
            }
        }
        let secs = elapsed.as_secs_f64();
        for (i, b) in BUCKETS.iter().enumerate() {
            if secs <= *b {
                self.buckets[i].fetch_add(1, Ordering::Relaxed);
            }
        }
        self.count.fetch_add(1, Ordering::Relaxed);
        self.sum_micros.fetch_add(elapsed.as_micros() as u64, Ordering::Relaxed);
    }

    /// The exposition text.
    pub fn render(&self, tenants_loaded: usize) -> String {
        let mut out = String::new();
        out.push_str("# HELP portal_requests_total HTTP requests by tenant and status.\n");
        out.push_str("# TYPE portal_requests_total counter\n");
        let mut rows: Vec<((String, u16), u64)> = self
            .requests
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .iter()
            .flat_map(|(t, by_status)| by_status.iter().map(|(s, n)| ((t.clone(), *s), *n)))
            .collect();
        rows.sort();
        for ((tenant, status), n) in rows {
            let _ = writeln!(out, "portal_requests_total{{tenant=\"{tenant}\",status=\"{status}\"}} {n}");
        }
        out.push_str("# HELP portal_request_duration_seconds Time to answer a request.\n");
        out.push_str("# TYPE portal_request_duration_seconds histogram\n");
        for (i, b) in BUCKETS.iter().enumerate() {
            let _ = writeln!(
                out,
                "portal_request_duration_seconds_bucket{{le=\"{b}\"}} {}",
                self.buckets[i].load(Ordering::Relaxed)
            );
        }
        let count = self.count.load(Ordering::Relaxed);
        let _ = writeln!(out, "portal_request_duration_seconds_bucket{{le=\"+Inf\"}} {count}");
        let _ = writeln!(
            out,
            "portal_request_duration_seconds_sum {}",
            self.sum_micros.load(Ordering::Relaxed) as f64 / 1e6
        );
        let _ = writeln!(out, "portal_request_duration_seconds_count {count}");
        out.push_str("# HELP portal_tenants_loaded Tenants the server currently serves.\n");
        out.push_str("# TYPE portal_tenants_loaded gauge\n");
        let _ = writeln!(out, "portal_tenants_loaded {tenants_loaded}");
        out
    }
}
