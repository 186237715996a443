//! The HTTP side of the test cluster: request routing onto the store, the fault and logging layer in front of it,
//! and the accept loop.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex, MutexGuard};

use axum::body::Body;
use axum::extract::State;
use axum::http::{header, HeaderMap, HeaderValue, Method, Request, Response, StatusCode, Uri};
use axum::Router;
use bytes::Bytes;
use serde_json::Value;
use tokio::net::TcpListener;
use tower::ServiceExt;

use crate::controllers::ControllerSettings;
use crate::faults::{Fault, Faults};
use crate::resources::{self, ResourceType};
use crate::selector::Selector;
use crate::status::ApiError;
use crate::store::{Store, WriteOptions};
use crate::watches::{self, WatchRequest};

/// The bearer token the generated kubeconfig carries; other tokens get 401.
pub const TOKEN: &str = "testcluster-token";

/// One request as the cluster saw it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RequestRecord {
    pub method: String,
    pub path: String,
    /// The raw query string (without `?`), e.g. `fieldManager=portalctl&force=true`.
    pub query: String,
    /// `Content-Type` of the request, if any.
    pub content_type: Option<String>,
    /// HTTP status sent; 0 when the connection was dropped by an injected fault.
    pub status: u16,
}

impl RequestRecord {
    /// A decoded query parameter.
    pub fn param(&self, key: &str) -> Option<String> {
        parse_query(&self.query).remove(key)
    }

    /// The `fieldManager` query parameter.
    pub fn field_manager(&self) -> Option<String> {
        self.param("fieldManager")
    }

    /// Whether the request was a dry run (`dryRun=All`).
    pub fn dry_run(&self) -> bool {
        self.param("dryRun").as_deref() == Some("All")
    }

    /// Whether the request was a server-side apply.
    pub fn is_apply(&self) -> bool {
        self.method == "PATCH" && self.content_type.as_deref().is_some_and(|c| c.starts_with("application/apply-patch"))
    }
}

/// State shared by the server, the controllers and the [`crate::TestCluster`] handle.
#[derive(Debug)]
pub(crate) struct Shared {
    pub store: Mutex<Store>,
    pub faults: Faults,
    pub log: Mutex<Vec<RequestRecord>>,
    pub controllers: Mutex<ControllerSettings>,
    /// The store's resourceVersion after the latest write; watches wait on it.
    pub changes: tokio::sync::watch::Sender<u64>,
}

impl Shared {
    /// Tell watches that the store may have changed.
    pub(crate) fn notify(&self) {
        let rv = lock(&self.store).resource_version();
        self.changes.send_if_modified(|current| std::mem::replace(current, rv) != rv);
    }
}

/// Lock a mutex, recovering from poisoning (a panicking test must not wedge the cluster).
pub(crate) fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

/// RFC 3339 UTC timestamp with second precision, as Kubernetes writes them.
pub(crate) fn now_rfc3339() -> String {
    let now = time::OffsetDateTime::now_utc().replace_nanosecond(0).expect("zero nanoseconds are valid");
    now.format(&time::format_description::well_known::Rfc3339).expect("UTC timestamps format")
}

pub(crate) fn parse_query(query: &str) -> BTreeMap<String, String> {
    query
        .split('&')
        .filter(|p| !p.is_empty())
        .map(|p| {
            let (k, v) = p.split_once('=').unwrap_or((p, ""));
            (decode(k), decode(v))
        })
        .collect()
}

fn decode(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'+' => out.push(b' '),
            b'%' if i + 2 < bytes.len() => {
                match u8::from_str_radix(std::str::from_utf8(&bytes[i + 1..i + 3]).unwrap_or("zz"), 16) {
                    Ok(b) => {
                        out.push(b);
                        i += 2;
                    }
                    Err(_) => out.push(b'%'),
                }
            }
            b => out.push(b),
        }
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

fn json_response(code: u16, body: &Value) -> Response<Body> {
    let mut res = Response::new(Body::from(serde_json::to_vec(body).expect("JSON values serialize")));
    *res.status_mut() = StatusCode::from_u16(code).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    res.headers_mut().insert(header::CONTENT_TYPE, HeaderValue::from_static("application/json"));
    res
}

fn error_response(err: &ApiError) -> Response<Body> {
    json_response(err.code, &err.to_status())
}

/// The API router (no faults, no logging); see [`serve`] for the layer in front of it.
pub(crate) fn router(shared: Arc<Shared>) -> Router {
    Router::new().fallback(dispatch).with_state(shared)
}

/// What a URL path addresses.
#[derive(Debug, PartialEq)]
enum Target {
    Version,
    CoreVersions,
    Groups,
    Resources { group: String, version: String },
    Collection { rt: &'static ResourceType, ns: Option<String> },
    Object { rt: &'static ResourceType, ns: String, name: String, status: bool },
    Unknown,
}

fn parse_target(path: &str) -> Target {
    let segs: Vec<&str> = path.trim_matches('/').split('/').collect();
    let (group, version, rest) = match segs.as_slice() {
        ["version"] => return Target::Version,
        ["api"] => return Target::CoreVersions,
        ["apis"] => return Target::Groups,
        ["api", version, rest @ ..] => ("", *version, rest),
        ["apis", group, version, rest @ ..] => (*group, *version, rest),
        _ => return Target::Unknown,
    };
    if !resources::serves_group_version(group, version) {
        return Target::Unknown;
    }
    let find = |plural: &str| resources::find(group, version, plural);
    let object = |rt: Option<&'static ResourceType>, ns: &str, name: &str, sub: Option<&str>| match (rt, sub) {
        (Some(rt), None) => Target::Object { rt, ns: ns.into(), name: name.into(), status: false },
        (Some(rt), Some("status")) if rt.status => {
            Target::Object { rt, ns: ns.into(), name: name.into(), status: true }
        }
        _ => Target::Unknown,
    };
    // `namespaces/<ns>/<resource>...` is a namespaced path when <resource> is a namespaced kind of this group.
    if let ["namespaces", ns, plural, tail @ ..] = rest {
        if let Some(rt) = find(plural).filter(|rt| rt.namespaced) {
            return match tail {
                [] => Target::Collection { rt, ns: Some(ns.to_string()) },
                [name] => object(Some(rt), ns, name, None),
                [name, sub] => object(Some(rt), ns, name, Some(sub)),
                _ => Target::Unknown,
            };
        }
    }
    match rest {
        [] => Target::Resources { group: group.into(), version: version.into() },
        [plural] => find(plural).map_or(Target::Unknown, |rt| Target::Collection { rt, ns: None }),
        [plural, name] => object(find(plural).filter(|rt| !rt.namespaced), "", name, None),
        [plural, name, sub] => object(find(plural).filter(|rt| !rt.namespaced), "", name, Some(sub)),
        _ => Target::Unknown,
    }
}

fn method_not_allowed(method: &Method, path: &str, what: &str) -> ApiError {
    ApiError::new(
        405,
        "MethodNotAllowed",
        format!("the server does not allow this method on the requested resource: {method} {path} ({what})"),
    )
}

async fn dispatch(
    State(shared): State<Arc<Shared>>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response<Body> {
    let path = uri.path().to_string();
    let query = parse_query(uri.query().unwrap_or_default());
    let public = matches!(path.as_str(), "/version" | "/healthz" | "/readyz" | "/livez");
    let authorized = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v == format!("Bearer {TOKEN}"));
    if !public && !authorized {
        return error_response(&ApiError::new(401, "Unauthorized", "Unauthorized"));
    }
    let wants_watch = query.get("watch").is_some_and(|w| w == "true" || w == "1");
    if let (Target::Collection { rt, ns }, true, true) = (parse_target(&path), method == Method::GET, wants_watch) {
        return match selectors(&query) {
            Ok((labels, fields)) => watches::respond(shared, WatchRequest::from_query(rt, ns, labels, fields, &query)),
            Err(err) => error_response(&err),
        };
    }
    let result = handle(&shared, &method, &path, &query, &headers, &body);
    if method != Method::GET {
        shared.notify();
    }
    match result {
        Ok((code, value)) => json_response(code, &value),
        Err(err) => error_response(&err),
    }
}

fn handle(
    shared: &Shared,
    method: &Method,
    path: &str,
    query: &BTreeMap<String, String>,
    headers: &HeaderMap,
    body: &[u8],
) -> Result<(u16, Value), ApiError> {
    let target = parse_target(path);
    let read_only = *method == Method::GET;
    match target {
        Target::Version if read_only => return Ok((200, resources::version_info())),
        Target::CoreVersions | Target::Groups if read_only && wants_aggregated(headers) => {
            return Ok((200, resources::aggregated(target == Target::CoreVersions)))
        }
        Target::CoreVersions if read_only => return Ok((200, resources::core_versions())),
        Target::Groups if read_only => return Ok((200, resources::group_list())),
        Target::Resources { group, version } if read_only => {
            return Ok((200, resources::resource_list(&group, &version)))
        }
        Target::Unknown => {
            if matches!(path, "/healthz" | "/readyz" | "/livez") {
                return Ok((200, Value::String("ok".into())));
            }
            return Err(ApiError::new(404, "NotFound", "the server could not find the requested resource"));
        }
        Target::Collection { .. } | Target::Object { .. } => {}
        _ => return Err(method_not_allowed(method, path, "discovery is read-only")),
    }

    let dry_run = query.get("dryRun").is_some_and(|v| v == "All")
        || (*method == Method::DELETE
            && serde_json::from_slice::<Value>(body)
                .ok()
                .and_then(|b| b.get("dryRun").cloned())
                .is_some_and(|d| d.as_array().is_some_and(|a| a.iter().any(|x| x == "All"))));
    if let Some(v) = query.get("dryRun").filter(|v| v.as_str() != "All") {
        return Err(ApiError::bad_request(format!("unsupported dryRun value {v:?}; only \"All\" is supported")));
    }
    let field_manager = query.get("fieldManager").cloned();
    let default_manager = headers
        .get(header::USER_AGENT)
        .and_then(|v| v.to_str().ok())
        .and_then(|ua| ua.split('/').next())
        .filter(|s| !s.is_empty())
        .unwrap_or("unknown")
        .to_string();
    let now = now_rfc3339();
    let manager = field_manager.clone().unwrap_or(default_manager);
    let opts = WriteOptions { manager: &manager, dry_run, now: &now };

    let mut store = lock(&shared.store);
    match target {
        Target::Collection { rt, ns } => match *method {
            Method::GET => {
                if query.get("watch").is_some_and(|w| w == "true" || w == "1") {
                    return Err(method_not_allowed(method, path, "watch is not implemented by the test cluster"));
                }
                let labels = Selector::parse(query.get("labelSelector").map(String::as_str).unwrap_or_default())
                    .map_err(ApiError::bad_request)?;
                let mut fields = Vec::new();
                for term in query.get("fieldSelector").map(String::as_str).unwrap_or_default().split(',') {
                    if term.is_empty() {
                        continue;
                    }
                    let (k, v) = term
                        .split_once("==")
                        .or_else(|| term.split_once('='))
                        .ok_or_else(|| ApiError::bad_request(format!("unsupported field selector {term:?}")))?;
                    if !matches!(k, "metadata.name" | "metadata.namespace") {
                        return Err(ApiError::bad_request(format!(
                            "field label not supported by the test cluster: {k}"
                        )));
                    }
                    fields.push((k.to_string(), v.to_string()));
                }
                Ok((200, store.list(rt, ns.as_deref(), &labels, &fields)?))
            }
            Method::POST => {
                let ns = match (rt.namespaced, ns) {
                    (true, Some(ns)) => ns,
                    (false, None) => String::new(),
                    _ => return Err(method_not_allowed(method, path, "create needs the object's own scope")),
                };
                let body = parse_json(body)?;
                let name = body.pointer("/metadata/name").and_then(Value::as_str).unwrap_or_default().to_string();
                check_writable(shared, rt, &ns, &name, "create")?;
                Ok((201, store.create(rt, &ns, body, opts)?))
            }
            _ => Err(method_not_allowed(method, path, "collections support GET and POST")),
        },
        Target::Object { rt, ns, name, status } => match *method {
            Method::GET => Ok((200, store.get(rt, &ns, &name)?)),
            Method::PUT => {
                check_writable(shared, rt, &ns, &name, "update")?;
                Ok((200, store.replace(rt, &ns, &name, status, parse_json(body)?, opts)?))
            }
            Method::DELETE if !status => {
                check_writable(shared, rt, &ns, &name, "delete")?;
                Ok((200, store.delete(rt, &ns, &name, dry_run)?))
            }
            Method::PATCH => {
                check_writable(shared, rt, &ns, &name, "patch")?;
                let content_type = headers.get(header::CONTENT_TYPE).and_then(|v| v.to_str().ok()).unwrap_or_default();
                let media = content_type.split(';').next().unwrap_or_default().trim();
                match media {
                    "application/apply-patch+yaml" | "application/apply-patch+json" => {
                        let Some(manager) = field_manager.filter(|m| !m.is_empty()) else {
                            return Err(ApiError::new(
                                422,
                                "Invalid",
                                "PatchOptions.meta.k8s.io \"\" is invalid: fieldManager: Required value: is required \
                                 for apply patch",
                            ));
                        };
                        let force = match query.get("force").map(String::as_str) {
                            None | Some("false") => false,
                            Some("true") => true,
                            Some(other) => return Err(ApiError::bad_request(format!("invalid force value {other:?}"))),
                        };
                        let body = parse_apply_body(body)?;
                        let opts = WriteOptions { manager: &manager, ..opts };
                        let (obj, created) = store.apply(rt, &ns, &name, status, &body, force, opts)?;
                        Ok((if created { 201 } else { 200 }, obj))
                    }
                    "application/merge-patch+json" | "application/strategic-merge-patch+json" => {
                        if query.contains_key("force") {
                            return Err(ApiError::bad_request("force is only allowed for apply patches"));
                        }
                        let patch = parse_json(body)?;
                        Ok((200, store.merge_patch(rt, &ns, &name, status, &patch, opts)?))
                    }
                    other => Err(ApiError::new(
                        415,
                        "UnsupportedMediaType",
                        format!("the test cluster does not support patches of type {other:?}"),
                    )),
                }
            }
            _ => Err(method_not_allowed(method, path, "objects support GET, PUT, PATCH and DELETE")),
        },
        _ => unreachable!("non-object targets returned above"),
    }
}

/// `labelSelector` and `fieldSelector` (only `metadata.name` and `metadata.namespace` equality).
fn selectors(query: &BTreeMap<String, String>) -> Result<(Selector, Vec<(String, String)>), ApiError> {
    let labels = Selector::parse(query.get("labelSelector").map(String::as_str).unwrap_or_default())
        .map_err(ApiError::bad_request)?;
    let mut fields = Vec::new();
    for term in query.get("fieldSelector").map(String::as_str).unwrap_or_default().split(',') {
        if term.is_empty() {
            continue;
        }
        let (k, v) = term
            .split_once("==")
            .or_else(|| term.split_once('='))
            .ok_or_else(|| ApiError::bad_request(format!("unsupported field selector {term:?}")))?;
        if !matches!(k, "metadata.name" | "metadata.namespace") {
            return Err(ApiError::bad_request(format!("field label not supported by the test cluster: {k}")));
        }
        fields.push((k.to_string(), v.to_string()));
    }
    Ok((labels, fields))
}

/// Whether the client prefers aggregated discovery (its first Accept entry asks for `APIGroupDiscoveryList` v2).
fn wants_aggregated(headers: &HeaderMap) -> bool {
    let accept = headers.get(header::ACCEPT).and_then(|v| v.to_str().ok()).unwrap_or_default();
    let first = accept.split(',').next().unwrap_or_default();
    first.contains("g=apidiscovery.k8s.io") && first.contains("v=v2;") && first.contains("as=APIGroupDiscoveryList")
}

fn check_writable(shared: &Shared, rt: &ResourceType, ns: &str, name: &str, verb: &str) -> Result<(), ApiError> {
    if rt.namespaced && shared.faults.writes_forbidden(ns) {
        return Err(ApiError::forbidden(rt, name, ns, verb));
    }
    Ok(())
}

fn parse_json(body: &[u8]) -> Result<Value, ApiError> {
    serde_json::from_slice(body).map_err(|e| ApiError::bad_request(format!("the request body is not valid JSON: {e}")))
}

/// Apply bodies are YAML (JSON is YAML too).
fn parse_apply_body(body: &[u8]) -> Result<Value, ApiError> {
    if let Ok(v) = serde_json::from_slice::<Value>(body) {
        return Ok(v);
    }
    let text = std::str::from_utf8(body).map_err(|_| ApiError::bad_request("the apply body is not UTF-8"))?;
    serde_saphyr::from_str::<Value>(text)
        .map_err(|e| ApiError::bad_request(format!("the apply body is not valid YAML: {e}")))
}

fn fault_response(fault: &Fault) -> Option<Response<Body>> {
    match fault {
        Fault::TooManyRequests { retry_after } => {
            let secs = retry_after.as_secs() + u64::from(retry_after.subsec_nanos() > 0);
            let message = "the server has received too many requests and has asked us to try again later \
                           (injected by the test cluster)";
            let mut err = ApiError::new(429, "TooManyRequests", message);
            err.details = Some(serde_json::json!({"retryAfterSeconds": secs}));
            let mut res = error_response(&err);
            res.headers_mut().insert(header::RETRY_AFTER, HeaderValue::from(secs));
            Some(res)
        }
        Fault::InternalError => Some(error_response(&ApiError::new(
            500,
            "InternalError",
            "Internal error occurred: injected by the test cluster",
        ))),
        Fault::Delay(_) | Fault::DropConnection => None,
    }
}

/// Serve connections until `shutdown` flips to true. Each request passes the fault layer (which may delay it,
/// answer it with an error, or drop the connection) and is logged.
pub(crate) async fn serve(
    listener: TcpListener,
    shared: Arc<Shared>,
    mut shutdown: tokio::sync::watch::Receiver<bool>,
) {
    let app = router(shared.clone());
    let mut connections = tokio::task::JoinSet::new();
    loop {
        let stream = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok((stream, _)) => stream,
                Err(_) => continue,
            },
            _ = shutdown.changed() => break,
        };
        let _ = stream.set_nodelay(true);
        let app = app.clone();
        let shared = shared.clone();
        let service = hyper::service::service_fn(move |req: Request<hyper::body::Incoming>| {
            let app = app.clone();
            let shared = shared.clone();
            async move { handle_one(app, shared, req).await }
        });
        connections.spawn(async move {
            let conn = hyper::server::conn::http1::Builder::new()
                .serve_connection(hyper_util::rt::TokioIo::new(stream), service);
            // Errors here are dropped connections (injected or by the client); nothing to report.
            let _ = conn.await;
        });
        while connections.try_join_next().is_some() {}
    }
    connections.abort_all();
}

async fn handle_one(
    app: Router,
    shared: Arc<Shared>,
    req: Request<hyper::body::Incoming>,
) -> Result<Response<Body>, std::io::Error> {
    let mut record = RequestRecord {
        method: req.method().to_string(),
        path: req.uri().path().to_string(),
        query: req.uri().query().unwrap_or_default().to_string(),
        content_type: req.headers().get(header::CONTENT_TYPE).and_then(|v| v.to_str().ok()).map(str::to_string),
        status: 0,
    };
    let fault = shared.faults.take(&record.method, &record.path);
    let response = match &fault {
        Some(Fault::DropConnection) => None,
        Some(f @ (Fault::TooManyRequests { .. } | Fault::InternalError)) => fault_response(f),
        Some(Fault::Delay(d)) => {
            tokio::time::sleep(*d).await;
            Some(call(app, req).await)
        }
        None => Some(call(app, req).await),
    };
    record.status = response.as_ref().map_or(0, |r| r.status().as_u16());
    lock(&shared.log).push(record);
    response.ok_or_else(|| {
        std::io::Error::new(std::io::ErrorKind::ConnectionAborted, "connection dropped by an injected fault")
    })
}

async fn call(app: Router, req: Request<hyper::body::Incoming>) -> Response<Body> {
    match app.oneshot(req.map(Body::new)).await {
        Ok(res) => res,
        Err(never) => match never {},
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_map_to_targets() {
        let t = parse_target("/api/v1/namespaces/krz/configmaps/a");
        assert!(matches!(t, Target::Object { rt, ref ns, ref name, status: false }
                if rt.kind == "ConfigMap" && ns == "krz" && name == "a"));
        let t = parse_target("/api/v1/namespaces/krz");
        assert!(matches!(t, Target::Object { rt, ref name, .. } if rt.kind == "Namespace" && name == "krz"));
        let t = parse_target("/api/v1/namespaces/krz/status");
        assert!(matches!(t, Target::Object { rt, status: true, .. } if rt.kind == "Namespace"));
        let t = parse_target("/apis/apps/v1/namespaces/krz/deployments/portal/status");
        assert!(matches!(t, Target::Object { rt, status: true, .. } if rt.kind == "Deployment"));
        let t = parse_target("/apis/apps/v1/deployments");
        assert!(matches!(t, Target::Collection { rt, ns: None } if rt.kind == "Deployment"));
        let t = parse_target("/apis/cert-manager.io/v1/namespaces/x/certificates");
        assert!(matches!(t, Target::Collection { rt, ns: Some(_) } if rt.kind == "Certificate"));
        assert_eq!(parse_target("/apis/apps/v1"), Target::Resources { group: "apps".into(), version: "v1".into() });
        assert_eq!(parse_target("/api/v1/namespaces/krz/configmaps/a/status"), Target::Unknown);
        assert_eq!(parse_target("/api/v1/pods"), Target::Unknown);
        assert_eq!(parse_target("/apis/apps/v2/deployments"), Target::Unknown);
    }

    #[test]
    fn query_decoding() {
        let q = parse_query("labelSelector=a%3Db%2Cc+in+%28x%29&fieldManager=portalctl&force");
        assert_eq!(q["labelSelector"], "a=b,c in (x)");
        assert_eq!(q["fieldManager"], "portalctl");
        assert_eq!(q["force"], "");
    }
}
