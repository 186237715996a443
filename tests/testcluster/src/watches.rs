//! `?watch=true` on collections: a chunked stream of JSON watch events (`{"type": "ADDED", "object": {...}}`, one per
//! line), from the store's change history, until `timeoutSeconds` or shutdown.

use std::collections::{BTreeMap, VecDeque};
use std::sync::Arc;
use std::time::Duration;

use axum::body::Body;
use axum::http::{header, HeaderValue, Response};
use bytes::Bytes;
use serde_json::{json, Value};
use tokio::time::Instant;

use crate::resources::ResourceType;
use crate::selector::Selector;
use crate::server::{lock, Shared};
use crate::store::Store;

/// Default and maximum watch duration when the client gives no `timeoutSeconds`.
const DEFAULT_TIMEOUT: Duration = Duration::from_secs(1800);

/// What one watch request asks for.
pub(crate) struct WatchRequest {
    pub rt: &'static ResourceType,
    pub namespace: Option<String>,
    pub labels: Selector,
    pub fields: Vec<(String, String)>,
    /// `resourceVersion`; empty or "0" means "start with the current state as ADDED events".
    pub resource_version: String,
    pub timeout: Duration,
    pub bookmarks: bool,
    pub send_initial_events: bool,
}

impl WatchRequest {
    pub fn from_query(
        rt: &'static ResourceType,
        namespace: Option<String>,
        labels: Selector,
        fields: Vec<(String, String)>,
        query: &BTreeMap<String, String>,
    ) -> WatchRequest {
        let timeout = query
            .get("timeoutSeconds")
            .and_then(|t| t.parse::<u64>().ok())
            .map_or(DEFAULT_TIMEOUT, |s| Duration::from_secs(s).min(DEFAULT_TIMEOUT));
        WatchRequest {
            rt,
            namespace,
            labels,
            fields,
            resource_version: query.get("resourceVersion").cloned().unwrap_or_default(),
            timeout,
            bookmarks: query.get("allowWatchBookmarks").is_some_and(|v| v == "true"),
            send_initial_events: query.get("sendInitialEvents").is_some_and(|v| v == "true"),
        }
    }

    fn wants(&self, rt: &ResourceType, namespace: &str, object: &Value) -> bool {
        std::ptr::eq(rt, self.rt)
            && self.namespace.as_deref().is_none_or(|ns| ns == namespace)
            && Store::matches(object, &self.labels, &self.fields)
    }
}

fn line(kind: &str, object: &Value) -> Bytes {
    let mut text = serde_json::to_vec(&json!({"type": kind, "object": object})).expect("JSON values serialize");
    text.push(b'\n');
    Bytes::from(text)
}

fn bookmark(rt: &ResourceType, resource_version: u64, initial_events_end: bool) -> Bytes {
    let mut meta = json!({"resourceVersion": resource_version.to_string()});
    if initial_events_end {
        meta["annotations"] = json!({"k8s.io/initial-events-end": "true"});
    }
    line("BOOKMARK", &json!({"apiVersion": rt.api_version(), "kind": rt.kind, "metadata": meta}))
}

struct State {
    shared: Arc<Shared>,
    request: WatchRequest,
    changes: tokio::sync::watch::Receiver<u64>,
    last: u64,
    deadline: Instant,
    pending: VecDeque<Bytes>,
    done: bool,
}

/// Start a watch: initial events (when asked for) are computed now, later ones as the store changes.
pub(crate) fn respond(shared: Arc<Shared>, request: WatchRequest) -> Response<Body> {
    let mut changes = shared.changes.subscribe();
    changes.borrow_and_update();
    let mut pending = VecDeque::new();
    let mut done = false;
    let last = {
        let store = lock(&shared.store);
        let current = store.resource_version();
        let initial = request.send_initial_events || matches!(request.resource_version.as_str(), "" | "0");
        if initial {
            for obj in store.objects(request.rt, request.namespace.as_deref()) {
                if Store::matches(&obj, &request.labels, &request.fields) {
                    pending.push_back(line("ADDED", &obj));
                }
            }
            if request.send_initial_events && request.bookmarks {
                pending.push_back(bookmark(request.rt, current, true));
            }
            current
        } else {
            match request.resource_version.parse::<u64>() {
                Ok(rv) if store.events_since(rv).is_some() => rv,
                _ => {
                    let status = json!({"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure",
                        "message": format!("too old resource version: {} ({current})", request.resource_version),
                        "reason": "Expired", "code": 410});
                    pending.push_back(line("ERROR", &status));
                    done = true;
                    current
                }
            }
        }
    };
    let deadline = Instant::now() + request.timeout;
    let state = State { shared, request, changes, last, deadline, pending, done };
    let stream = futures::stream::unfold(state, |mut state| async move {
        loop {
            if let Some(chunk) = state.pending.pop_front() {
                return Some((Ok::<Bytes, std::io::Error>(chunk), state));
            }
            if state.done {
                return None;
            }
            state.changes.borrow_and_update();
            {
                let store = lock(&state.shared.store);
                match store.events_since(state.last) {
                    Some(events) => {
                        for e in events {
                            if state.request.wants(e.resource, &e.namespace, &e.object) {
                                state.pending.push_back(line(e.kind.as_str(), &e.object));
                            }
                        }
                    }
                    None => state.done = true,
                }
                state.last = store.resource_version();
            }
            if !state.pending.is_empty() {
                continue;
            }
            tokio::select! {
                changed = state.changes.changed() => {
                    if changed.is_err() {
                        state.done = true;
                    }
                }
                _ = tokio::time::sleep_until(state.deadline) => {
                    if state.request.bookmarks {
                        state.pending.push_back(bookmark(state.request.rt, state.last, false));
                    }
                    state.done = true;
                }
            }
        }
    });
    let mut res = Response::new(Body::from_stream(stream));
    res.headers_mut().insert(header::CONTENT_TYPE, HeaderValue::from_static("application/json"));
    res
}
