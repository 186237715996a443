//! Fault injection for the test cluster: answer the next requests with 429 or 500, delay them, drop their
//! connection, or refuse writes in a namespace.

use std::collections::BTreeSet;
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// What happens to a request a rule matches.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Fault {
    /// 429 TooManyRequests with a `Retry-After` header (whole seconds, rounded up).
    TooManyRequests { retry_after: Duration },
    /// 500 InternalError.
    InternalError,
    /// Handle the request normally after waiting this long.
    Delay(Duration),
    /// Close the connection without sending a response.
    DropConnection,
}

/// A fault for the next `times` requests that match `method` and `path_contains` (when given).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FaultRule {
    pub fault: Fault,
    pub times: usize,
    /// HTTP method, e.g. `PATCH` (case-insensitive); `None` matches every method.
    pub method: Option<String>,
    /// Substring of the request path; `None` matches every path.
    pub path_contains: Option<String>,
}

impl FaultRule {
    /// A rule for the next request of any method and path.
    pub fn new(fault: Fault) -> FaultRule {
        FaultRule { fault, times: 1, method: None, path_contains: None }
    }

    /// Apply to the next `n` matching requests.
    pub fn times(mut self, n: usize) -> FaultRule {
        self.times = n;
        self
    }

    /// Only requests with this method.
    pub fn method(mut self, method: &str) -> FaultRule {
        self.method = Some(method.to_ascii_uppercase());
        self
    }

    /// Only requests whose path contains this substring.
    pub fn path_contains(mut self, fragment: &str) -> FaultRule {
        self.path_contains = Some(fragment.to_string());
        self
    }

    fn matches(&self, method: &str, path: &str) -> bool {
        self.method.as_deref().is_none_or(|m| m.eq_ignore_ascii_case(method))
            && self.path_contains.as_deref().is_none_or(|p| path.contains(p))
    }
}

#[derive(Debug, Default)]
struct State {
    rules: Vec<FaultRule>,
    forbidden_namespaces: BTreeSet<String>,
}

/// Runtime handle to the cluster's faults; cheap to clone.
#[derive(Debug, Clone, Default)]
pub struct Faults {
    state: Arc<Mutex<State>>,
}

impl Faults {
    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Add a rule; rules are consulted in the order they were added.
    pub fn inject(&self, rule: FaultRule) {
        self.lock().rules.push(rule);
    }

    /// The next `n` requests (any method and path) get `fault`.
    pub fn next(&self, n: usize, fault: Fault) {
        self.inject(FaultRule::new(fault).times(n));
    }

    /// Writes (POST, PUT, PATCH, DELETE) in this namespace get 403 Forbidden until [`Faults::allow_writes`].
    pub fn forbid_writes(&self, namespace: &str) {
        self.lock().forbidden_namespaces.insert(namespace.to_string());
    }

    pub fn allow_writes(&self, namespace: &str) {
        self.lock().forbidden_namespaces.remove(namespace);
    }

    /// Remove all rules and namespace restrictions.
    pub fn clear(&self) {
        let mut state = self.lock();
        state.rules.clear();
        state.forbidden_namespaces.clear();
    }

    /// How many injected faults are still pending.
    pub fn pending(&self) -> usize {
        self.lock().rules.iter().map(|r| r.times).sum()
    }

    /// Take the fault for a request, if a rule matches (consuming one of its uses).
    pub(crate) fn take(&self, method: &str, path: &str) -> Option<Fault> {
        let mut state = self.lock();
        let idx = state.rules.iter().position(|r| r.times > 0 && r.matches(method, path))?;
        let rule = &mut state.rules[idx];
        rule.times -= 1;
        let fault = rule.fault.clone();
        if rule.times == 0 {
            state.rules.remove(idx);
        }
        Some(fault)
    }

    pub(crate) fn writes_forbidden(&self, namespace: &str) -> bool {
        self.lock().forbidden_namespaces.contains(namespace)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rules_are_consumed_in_order_and_filtered() {
        let f = Faults::default();
        f.inject(FaultRule::new(Fault::InternalError).times(2).method("patch").path_contains("/configmaps/"));
        f.next(1, Fault::DropConnection);
        assert_eq!(f.pending(), 3);
        assert_eq!(f.take("GET", "/api/v1/namespaces/a/configmaps/x"), Some(Fault::DropConnection));
        assert_eq!(f.take("GET", "/api/v1/namespaces/a/configmaps/x"), None);
        assert_eq!(f.take("PATCH", "/api/v1/namespaces/a/configmaps/x"), Some(Fault::InternalError));
        assert_eq!(f.take("PATCH", "/api/v1/namespaces/a/secrets/x"), None);
        assert_eq!(f.take("PATCH", "/api/v1/namespaces/a/configmaps/y"), Some(Fault::InternalError));
        assert_eq!(f.pending(), 0);
        f.forbid_writes("a");
        assert!(f.writes_forbidden("a"));
        f.clear();
        assert!(!f.writes_forbidden("a"));
    }
}
