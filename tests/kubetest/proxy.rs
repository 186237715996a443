//! A fault-injecting reverse proxy in front of the real API server: plain HTTP on 127.0.0.1, forwarding to the
//! API server over TLS. Rules answer the next matching requests with 429 and `Retry-After`, 500 or 503, close the
//! connection without an answer, delay them, or end a watch stream after its first event. Every request is logged
//! with the status it got (0 = no answer).

use bytes::Bytes;
use http_body_util::{combinators::BoxBody, BodyExt, Full, StreamBody};
use hyper::body::{Frame, Incoming};
use hyper::{Request, Response, StatusCode};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// What happens to a request a rule matches.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Fault {
    /// 429 TooManyRequests with `Retry-After: <secs>` (header only: no `details.retryAfterSeconds` in the body).
    TooManyRequests { retry_after_secs: u64 },
    /// An error Status with this code (500, 503, …).
    Status(u16),
    /// Close the connection without an answer.
    Reset,
    /// Forward after waiting this long.
    Delay(Duration),
    /// Forward a watch, but end its stream after the first chunk of events.
    EndWatch,
}

/// A fault for the next `times` requests that match `method` and `path_contains` (when given).
#[derive(Debug, Clone)]
pub struct FaultRule {
    pub fault: Fault,
    pub times: usize,
    pub method: Option<String>,
    pub path_contains: Option<String>,
}

impl FaultRule {
    pub fn new(fault: Fault) -> FaultRule {
        FaultRule { fault, times: 1, method: None, path_contains: None }
    }
    pub fn times(mut self, n: usize) -> FaultRule {
        self.times = n;
        self
    }
    pub fn method(mut self, m: &str) -> FaultRule {
        self.method = Some(m.to_ascii_uppercase());
        self
    }
    pub fn path_contains(mut self, p: &str) -> FaultRule {
        self.path_contains = Some(p.to_string());
        self
    }
    fn matches(&self, method: &str, path_and_query: &str) -> bool {
        self.method.as_deref().is_none_or(|m| m.eq_ignore_ascii_case(method))
            && self.path_contains.as_deref().is_none_or(|p| path_and_query.contains(p))
    }
}

/// One request that went through the proxy.
#[derive(Debug, Clone)]
pub struct Logged {
    pub method: String,
    /// Path and query.
    pub uri: String,
    /// The status the client got; 0 when the connection was closed without an answer.
    pub status: u16,
    /// The fault that was injected, if any.
    pub fault: Option<Fault>,
    /// When the request arrived.
    pub at: std::time::Instant,
}

impl Logged {
    pub fn is_apply(&self) -> bool {
        self.method == "PATCH"
    }
}

struct Shared {
    upstream: String,
    client: reqwest::Client,
    rules: Mutex<Vec<FaultRule>>,
    log: Mutex<Vec<Logged>>,
}

/// The proxy; stops when dropped.
pub struct FaultProxy {
    pub addr: SocketAddr,
    shared: Arc<Shared>,
    kubeconfig: PathBuf,
    task: tokio::task::JoinHandle<()>,
    _dir: tempfile::TempDir,
}

/// The context name of the proxy's kubeconfig.
pub const CONTEXT: &str = "fault-proxy";

impl FaultProxy {
    /// Start a proxy to the cluster of `kubeconfig` (its current context) on the current runtime.
    pub async fn start(kubeconfig: &Path) -> FaultProxy {
        let text = std::fs::read_to_string(kubeconfig).expect("kubeconfig");
        let kc: serde_json::Value = serde_saphyr::from_str(&text).expect("kubeconfig YAML");
        let named = |list: &str, name: &serde_json::Value| {
            kc[list].as_array().and_then(|l| l.iter().find(|e| &e["name"] == name)).cloned().expect("kubeconfig entry")
        };
        let ctx = named("contexts", &kc["current-context"])["context"].clone();
        let cluster = named("clusters", &ctx["cluster"])["cluster"].clone();
        let user = named("users", &ctx["user"])["user"].clone();
        let mut builder = reqwest::Client::builder();
        if let Some(ca) = cluster["certificate-authority-data"].as_str() {
            use base64::Engine;
            let pem = base64::engine::general_purpose::STANDARD.decode(ca).expect("CA data");
            builder = builder.add_root_certificate(reqwest::Certificate::from_pem(&pem).expect("CA"));
        }
        let client = builder.build().unwrap();
        let upstream = cluster["server"].as_str().expect("server").trim_end_matches('/').to_string();
        let shared = Arc::new(Shared { upstream, client, rules: Mutex::new(Vec::new()), log: Mutex::new(Vec::new()) });
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let s = shared.clone();
        let task = tokio::spawn(async move {
            loop {
                let Ok((stream, _)) = listener.accept().await else { return };
                let s = s.clone();
                tokio::spawn(async move {
                    let svc = hyper::service::service_fn(move |req| handle(s.clone(), req));
                    let _ = hyper::server::conn::http1::Builder::new()
                        .serve_connection(hyper_util::rt::TokioIo::new(stream), svc)
                        .await;
                });
            }
        });
        let dir = tempfile::tempdir().unwrap();
        let token = user["token"].as_str().map(String::from);
        let path = dir.path().join("kubeconfig");
        std::fs::write(
            &path,
            format!(
                "apiVersion: v1\nkind: Config\nclusters:\n- name: {CONTEXT}\n  cluster:\n    server: http://{addr}\n\
                 users:\n- name: {CONTEXT}\n  user:\n    token: {}\ncontexts:\n- name: {CONTEXT}\n  context:\n    \
                 cluster: {CONTEXT}\n    user: {CONTEXT}\ncurrent-context: {CONTEXT}\n",
                token.expect("the test kubeconfig authenticates with a token")
            ),
        )
        .unwrap();
        FaultProxy { addr, shared, kubeconfig: path, task, _dir: dir }
    }

    /// A kubeconfig that reaches the cluster through the proxy (context [`CONTEXT`]).
    pub fn kubeconfig(&self) -> &Path {
        &self.kubeconfig
    }

    /// The proxy's kubeconfig with `namespace` as its context's namespace (what a client's default namespace is).
    pub fn kubeconfig_in(&self, namespace: &str) -> PathBuf {
        let text = std::fs::read_to_string(&self.kubeconfig).unwrap();
        let text = text.replace(
            &format!("    cluster: {CONTEXT}\n"),
            &format!("    cluster: {CONTEXT}\n    namespace: {namespace}\n"),
        );
        let path = self._dir.path().join(format!("kubeconfig-{namespace}"));
        std::fs::write(&path, text).unwrap();
        path
    }

    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    pub fn inject(&self, rule: FaultRule) {
        self.shared.rules.lock().unwrap().push(rule);
    }

    pub fn requests(&self) -> Vec<Logged> {
        self.shared.log.lock().unwrap().clone()
    }

    /// Stop accepting connections (the port is closed: clients get "connection refused").
    pub async fn shutdown(mut self) {
        self.task.abort();
        let _ = (&mut self.task).await;
    }
}

impl Drop for FaultProxy {
    fn drop(&mut self) {
        self.task.abort();
    }
}

type Body = BoxBody<Bytes, std::io::Error>;

fn full(b: impl Into<Bytes>) -> Body {
    Full::new(b.into()).map_err(|never| match never {}).boxed()
}

fn status_body(code: u16, reason: &str, message: &str) -> Body {
    full(
        serde_json::json!({"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure",
                           "message": message, "reason": reason, "code": code})
        .to_string(),
    )
}

async fn handle(s: Arc<Shared>, req: Request<Incoming>) -> Result<Response<Body>, std::io::Error> {
    let method = req.method().to_string();
    let uri = req.uri().path_and_query().map(|p| p.to_string()).unwrap_or_default();
    let fault = {
        let mut rules = s.rules.lock().unwrap();
        let hit = rules.iter_mut().find(|r| r.times > 0 && r.matches(&method, &uri));
        hit.map(|r| {
            r.times -= 1;
            r.fault.clone()
        })
    };
    let at = std::time::Instant::now();
    let log = |status: u16| {
        s.log.lock().unwrap().push(Logged {
            method: method.clone(),
            uri: uri.clone(),
            status,
            fault: fault.clone(),
            at,
        })
    };
    match &fault {
        Some(Fault::TooManyRequests { retry_after_secs }) => {
            log(429);
            return Ok(Response::builder()
                .status(429)
                .header("content-type", "application/json")
                .header("retry-after", retry_after_secs.to_string())
                .body(status_body(429, "TooManyRequests", "injected: too many requests, please try again later"))
                .unwrap());
        }
        Some(Fault::Status(code)) => {
            log(*code);
            let reason = if *code == 503 { "ServiceUnavailable" } else { "InternalError" };
            return Ok(Response::builder()
                .status(*code)
                .header("content-type", "application/json")
                .body(status_body(*code, reason, "injected server error"))
                .unwrap());
        }
        Some(Fault::Reset) => {
            log(0);
            // An error from the service makes hyper close the connection without an answer.
            return Err(std::io::Error::new(std::io::ErrorKind::ConnectionReset, "injected reset"));
        }
        Some(Fault::Delay(d)) => tokio::time::sleep(*d).await,
        Some(Fault::EndWatch) | None => {}
    }

    let (parts, body) = req.into_parts();
    let body = body.collect().await.map(|b| b.to_bytes()).unwrap_or_default();
    let mut up = s.client.request(parts.method.clone(), format!("{}{uri}", s.upstream));
    for (name, value) in &parts.headers {
        if !matches!(name.as_str(), "host" | "connection" | "content-length" | "transfer-encoding") {
            up = up.header(name, value);
        }
    }
    let resp = match up.body(body).send().await {
        Ok(r) => r,
        Err(e) => {
            log(502);
            return Ok(Response::builder()
                .status(StatusCode::BAD_GATEWAY)
                .body(status_body(502, "InternalError", &format!("proxy: {e}")))
                .unwrap());
        }
    };
    let status = resp.status();
    log(status.as_u16());
    let mut out = Response::builder().status(status.as_u16());
    for (name, value) in resp.headers() {
        if !matches!(name.as_str(), "connection" | "content-length" | "transfer-encoding") {
            out = out.header(name.as_str(), value.as_bytes());
        }
    }
    let end_after_first = fault == Some(Fault::EndWatch);
    // Stream the answer through (watches are long-lived chunked responses).
    let stream = futures::stream::unfold((resp, false), move |(mut resp, done)| async move {
        if done {
            return None;
        }
        match resp.chunk().await {
            Ok(Some(chunk)) => Some((Ok(Frame::data(chunk)), (resp, end_after_first))),
            Ok(None) => None,
            Err(e) => Some((Err(std::io::Error::other(e)), (resp, true))),
        }
    });
    Ok(out.body(BodyExt::boxed(StreamBody::new(stream))).unwrap())
}
