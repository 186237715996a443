//! The portal server's HTTP layer: the accept loop with its connection cap, hyper's HTTP/1.1
//! connections with a header read timeout, the request limits (concurrency, whole-request
//! timeout), security headers on every response, and the graceful-shutdown deadline.
//!
//! Limits and where they act (see `docs/portal.md`, "Limits and hardening"):
//! - **connections**: at most [`Limits::max_connections`] open (lowered to fit the process's
//!   open-file limit); a connection above the cap is closed at once. `accept` errors such as
//!   EMFILE back off instead of spinning.
//! - **header read timeout**: a request's head must arrive within
//!   [`Limits::header_read_timeout`] of its first byte; a kept-alive connection may wait at
//!   most [`Limits::idle_timeout`] for that first byte. Each connection has a [`ConnClock`]
//!   that its socket and its service move between idle, reading a head and busy, and a
//!   watchdog that closes it when the phase's time is up. (hyper's own header read timeout
//!   counts from the start of the wait, so it only backs this up at idle + header time.)
//! - **requests**: at most [`RequestLimits::max_concurrent`] in flight (more get 503 at once),
//!   each answered within [`RequestLimits::timeout`] (else 503).
//! - **shutdown**: on SIGTERM, no new connections; in-flight requests finish, but after
//!   [`Limits::shutdown_timeout`] the remaining connections are dropped.

use super::error::{LogDecision, ERROR_LOG};
use axum::error_handling::HandleErrorLayer;
use axum::extract::Request;
use axum::http::{header, HeaderValue};
use axum::middleware::Next;
use axum::response::Response;
use axum::{BoxError, Router};
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::server::graceful::GracefulShutdown;
use hyper_util::service::TowerToHyperService;
use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::{Duration, Instant};
use tokio::net::TcpListener;
use tokio::sync::Semaphore;
use tower::limit::GlobalConcurrencyLimitLayer;
use tower::ServiceBuilder;

/// Limits of the connection layer.
#[derive(Debug, Clone)]
pub struct Limits {
    /// Time for a request's head to arrive once its first byte has.
    pub header_read_timeout: Duration,
    /// Time a connection may wait for the first byte of its next request (right after
    /// connecting, and between requests on a kept-alive connection).
    pub idle_timeout: Duration,
    /// Open connections at most.
    pub max_connections: usize,
    /// How long in-flight requests may still run after SIGTERM.
    pub shutdown_timeout: Duration,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            header_read_timeout: Duration::from_secs(10),
            idle_timeout: Duration::from_secs(75),
            max_connections: 1024,
            shutdown_timeout: Duration::from_secs(10),
        }
    }
}

/// Limits of request handling.
#[derive(Debug, Clone)]
pub struct RequestLimits {
    /// Requests handled at once; more are refused with 503 at once.
    pub max_concurrent: usize,
    /// Time to answer a request, body included; then 503.
    pub timeout: Duration,
}

impl Default for RequestLimits {
    fn default() -> Self {
        RequestLimits { max_concurrent: 256, timeout: Duration::from_secs(30) }
    }
}

/// File descriptors kept free for the database pool, tenant files and logs below the
/// process's open-file limit when capping connections.
pub const RESERVED_FDS: u64 = 64;

/// The connection cap that fits the open-file limit `nofile` (None: unknown).
pub fn effective_max_connections(configured: usize, nofile: Option<u64>) -> usize {
    let fit = nofile.map(|n| n.saturating_sub(RESERVED_FDS).max(1)).unwrap_or(u64::MAX);
    configured.clamp(1, usize::try_from(fit).unwrap_or(usize::MAX))
}

/// The process's soft open-file limit.
fn open_file_limit() -> Option<u64> {
    let mut lim = libc::rlimit { rlim_cur: 0, rlim_max: 0 };
    // SAFETY: getrlimit writes into the struct we pass and nothing else.
    let rc = unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut lim) };
    (rc == 0 && lim.rlim_cur != libc::RLIM_INFINITY).then_some(lim.rlim_cur)
}

/// The request limits as layers for a router: a shared concurrency limit that sheds load
/// (503) instead of queueing, and a whole-request timeout (503).
pub fn request_limits<S: Clone + Send + Sync + 'static>(router: Router<S>, limits: &RequestLimits) -> Router<S> {
    let layers = ServiceBuilder::new()
        .layer(HandleErrorLayer::new(|e: BoxError| async move {
            let kind = if e.is::<tower::timeout::error::Elapsed>() { "request timeout" } else { "overloaded" };
            if let LogDecision::Log { suppressed } = ERROR_LOG.check(kind) {
                tracing::warn!(reason = kind, suppressed, "request refused with 503");
            }
            super::error::unavailable()
        }))
        .load_shed()
        .layer(GlobalConcurrencyLimitLayer::with_semaphore(Arc::new(Semaphore::new(limits.max_concurrent.max(1)))))
        .timeout(limits.timeout);
    router.layer(layers)
}

/// `Content-Security-Policy` of every response: no script at all, styles and images only from
/// the portal itself (images also from https URLs: tenant logos), never framed.
pub const CONTENT_SECURITY_POLICY: &str =
    "default-src 'none'; style-src 'self'; img-src 'self' https: http:; base-uri 'none'; frame-ancestors 'none'";

/// `Strict-Transport-Security` when the request came over https.
pub const HSTS: &str = "max-age=31536000";

/// Security headers on every response (kept when a handler set its own); HSTS when the
/// Ingress says the request came over https (`X-Forwarded-Proto`).
pub async fn security_headers(req: Request, next: Next) -> Response {
    let https = req
        .headers()
        .get("x-forwarded-proto")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split(',').next())
        .is_some_and(|p| p.trim().eq_ignore_ascii_case("https"));
    let mut res = next.run(req).await;
    let h = res.headers_mut();
    let mut set = |name: header::HeaderName, value: &'static str| {
        h.entry(name).or_insert(HeaderValue::from_static(value));
    };
    set(header::CONTENT_SECURITY_POLICY, CONTENT_SECURITY_POLICY);
    set(header::X_FRAME_OPTIONS, "DENY");
    set(header::X_CONTENT_TYPE_OPTIONS, "nosniff");
    set(header::REFERRER_POLICY, "strict-origin-when-cross-origin");
    if https {
        set(header::STRICT_TRANSPORT_SECURITY, HSTS);
    }
    res
}

/// Whether a request path is fit to route: percent-decoded, it is UTF-8 without control
/// characters (NUL above all, which PostgreSQL refuses in text).
pub fn path_is_clean(path: &str) -> bool {
    percent_encoding::percent_decode_str(path).decode_utf8().is_ok_and(|p| !p.chars().any(char::is_control))
}

/// Accept connections on `listener` and serve `app` on them until `shutdown` completes; then
/// stop accepting and give in-flight requests at most `limits.shutdown_timeout` to finish.
pub async fn serve(listener: TcpListener, app: Router, limits: &Limits, shutdown: impl Future<Output = ()>) {
    let cap = effective_max_connections(limits.max_connections, open_file_limit());
    if cap < limits.max_connections {
        tracing::warn!(
            configured = limits.max_connections,
            cap,
            "connection cap lowered to fit the open-file limit (ulimit -n)"
        );
    }
    let slots = Arc::new(Semaphore::new(cap));
    let mut http = hyper::server::conn::http1::Builder::new();
    http.timer(TokioTimer::new())
        .header_read_timeout(limits.idle_timeout + limits.header_read_timeout)
        .keep_alive(true);
    let graceful = GracefulShutdown::new();
    let mut backoff = Duration::ZERO;
    tokio::pin!(shutdown);
    loop {
        let accepted = tokio::select! {
            r = listener.accept() => r,
            () = &mut shutdown => break,
        };
        let (stream, peer) = match accepted {
            Ok((stream, peer)) => {
                backoff = Duration::ZERO;
                (stream, peer)
            }
            // The peer gave up before we accepted: nothing to do.
            Err(e)
                if matches!(e.kind(), std::io::ErrorKind::ConnectionAborted | std::io::ErrorKind::ConnectionReset) =>
            {
                continue
            }
            // Out of file descriptors or memory: wait for connections to close.
            Err(e) => {
                backoff = (backoff * 2).clamp(Duration::from_millis(5), Duration::from_secs(1));
                if let LogDecision::Log { suppressed } = ERROR_LOG.check("accept error") {
                    tracing::warn!(error = %e, suppressed, backoff_ms = backoff.as_millis() as u64, "accept error");
                }
                tokio::time::sleep(backoff).await;
                continue;
            }
        };
        let Ok(slot) = slots.clone().try_acquire_owned() else {
            drop(stream);
            if let LogDecision::Log { suppressed } = ERROR_LOG.check("connection cap") {
                tracing::warn!(cap, suppressed, "connection cap reached; connection closed");
            }
            continue;
        };
        let _ = stream.set_nodelay(true);
        let clock = Arc::new(ConnClock::new());
        let io = TokioIo::new(Clocked { inner: stream, clock: clock.clone() });
        let conn = http.serve_connection(
            io,
            ClockedService { inner: TowerToHyperService::new(app.clone()), clock: clock.clone(), peer },
        );
        let conn = graceful.watch(conn);
        let (idle, header) = (limits.idle_timeout, limits.header_read_timeout);
        tokio::spawn(async move {
            tokio::select! {
                _ = conn => {}
                () = clock.expired(idle, header) => {}
            }
            drop(slot);
        });
    }
    drop(listener);
    let open = cap - slots.available_permits();
    tracing::info!(open_connections = open, "no longer accepting connections; finishing in-flight requests");
    if tokio::time::timeout(limits.shutdown_timeout, graceful.shutdown()).await.is_err() {
        let open = cap - slots.available_permits();
        tracing::warn!(
            open_connections = open,
            deadline_secs = limits.shutdown_timeout.as_secs_f64(),
            "shutdown deadline reached; closing the remaining connections"
        );
    }
}

/// Where a connection is in its request cycle, and since when: one atomic word, milliseconds
/// since the connection was accepted shifted left by two, and the phase in the low bits.
pub struct ConnClock {
    accepted: Instant,
    state: AtomicU64,
    /// Wakes the watchdog on a change of phase.
    changed: tokio::sync::Notify,
}

const IDLE: u64 = 0;
const HEAD: u64 = 1;
const BUSY: u64 = 2;

impl ConnClock {
    fn new() -> ConnClock {
        ConnClock { accepted: Instant::now(), state: AtomicU64::new(IDLE), changed: tokio::sync::Notify::new() }
    }

    fn now_ms(&self) -> u64 {
        self.accepted.elapsed().as_millis() as u64
    }

    fn set(&self, phase: u64) {
        self.state.store((self.now_ms() << 2) | phase, Ordering::Release);
        self.changed.notify_one();
    }

    /// Bytes arrived: an idle connection starts reading a head.
    fn bytes_read(&self) {
        let idle = self.state.load(Ordering::Acquire);
        if idle & 3 == IDLE
            && self
                .state
                .compare_exchange(idle, (self.now_ms() << 2) | HEAD, Ordering::AcqRel, Ordering::Acquire)
                .is_ok()
        {
            self.changed.notify_one();
        }
    }

    /// Completes when the connection has been idle for `idle` or reading a head for `header`.
    async fn expired(&self, idle: Duration, header: Duration) {
        loop {
            let s = self.state.load(Ordering::Acquire);
            let since = self.accepted + Duration::from_millis(s >> 2);
            let deadline = match s & 3 {
                IDLE => since + idle,
                HEAD => since + header,
                // The request timeout bounds a busy connection; look again later.
                _ => Instant::now() + header,
            };
            if Instant::now() >= deadline && s & 3 != BUSY {
                return;
            }
            tokio::select! {
                () = tokio::time::sleep_until(deadline.into()) => {
                    if self.state.load(Ordering::Acquire) == s && s & 3 != BUSY {
                        return;
                    }
                }
                () = self.changed.notified() => {}
            }
        }
    }
}

/// A socket that tells its [`ConnClock`] when bytes arrive.
struct Clocked {
    inner: tokio::net::TcpStream,
    clock: Arc<ConnClock>,
}

impl tokio::io::AsyncRead for Clocked {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut tokio::io::ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        let before = buf.filled().len();
        let res = Pin::new(&mut self.inner).poll_read(cx, buf);
        if matches!(res, Poll::Ready(Ok(()))) && buf.filled().len() > before {
            self.clock.bytes_read();
        }
        res
    }
}

impl tokio::io::AsyncWrite for Clocked {
    fn poll_write(mut self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &[u8]) -> Poll<std::io::Result<usize>> {
        Pin::new(&mut self.inner).poll_write(cx, buf)
    }
    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.inner).poll_flush(cx)
    }
    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }
    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[std::io::IoSlice<'_>],
    ) -> Poll<std::io::Result<usize>> {
        Pin::new(&mut self.inner).poll_write_vectored(cx, bufs)
    }
    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }
}

/// The connection's service: busy from the parsed head until the response is ready, idle after.
/// It puts the connection's peer address into every request's extensions (as axum's
/// [`ConnectInfo`](axum::extract::ConnectInfo)).
#[derive(Clone)]
struct ClockedService<S> {
    inner: S,
    clock: Arc<ConnClock>,
    peer: std::net::SocketAddr,
}

impl<S, B> hyper::service::Service<hyper::Request<B>> for ClockedService<S>
where
    S: hyper::service::Service<hyper::Request<B>>,
    S::Future: Send + 'static,
{
    type Response = S::Response;
    type Error = S::Error;
    type Future = Pin<Box<dyn Future<Output = Result<S::Response, S::Error>> + Send>>;

    fn call(&self, mut req: hyper::Request<B>) -> Self::Future {
        req.extensions_mut().insert(axum::extract::ConnectInfo(self.peer));
        self.clock.set(BUSY);
        let clock = self.clock.clone();
        let fut = self.inner.call(req);
        Box::pin(async move {
            let res = fut.await;
            clock.set(IDLE);
            res
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn requests_above_the_limit_and_slow_ones_get_503() {
        use axum::body::Body;
        use axum::routing::get;
        use tower::ServiceExt as _;
        let gate = Arc::new(tokio::sync::Notify::new());
        let g = gate.clone();
        let router: Router = Router::new()
            .route("/wait", get(move || async move { g.notified().await }))
            .route("/sleep", get(|| tokio::time::sleep(Duration::from_secs(60))));
        let router = request_limits(router, &RequestLimits { max_concurrent: 2, timeout: Duration::from_millis(300) });
        let call = |path: &'static str| {
            let r = router.clone();
            async move { r.oneshot(axum::http::Request::get(path).body(Body::empty()).unwrap()).await.unwrap() }
        };
        let held: Vec<_> = (0..2).map(|_| tokio::spawn(call("/wait"))).collect();
        tokio::time::sleep(Duration::from_millis(50)).await;
        let t = std::time::Instant::now();
        let shed = call("/wait").await;
        assert_eq!(shed.status(), axum::http::StatusCode::SERVICE_UNAVAILABLE);
        assert_eq!(shed.headers()[header::RETRY_AFTER], "5");
        assert!(t.elapsed() < Duration::from_millis(200), "shed at once, not queued");
        gate.notify_waiters();
        for h in held {
            assert_eq!(h.await.unwrap().status(), axum::http::StatusCode::OK);
        }
        let t = std::time::Instant::now();
        assert_eq!(call("/sleep").await.status(), axum::http::StatusCode::SERVICE_UNAVAILABLE);
        assert!(t.elapsed() < Duration::from_secs(2));
    }

    #[test]
    fn the_connection_cap_fits_the_open_file_limit() {
        assert_eq!(effective_max_connections(1024, Some(1024)), 1024 - RESERVED_FDS as usize);
        assert_eq!(effective_max_connections(100, Some(1024)), 100);
        assert_eq!(effective_max_connections(100, None), 100);
        assert_eq!(effective_max_connections(100, Some(10)), 1);
    }

    #[test]
    fn paths_with_nul_controls_or_bad_utf8_are_not_clean() {
        assert!(path_is_clean("/leistungen/hundeanmeldung"));
        assert!(path_is_clean("/themen/m%C3%BCll"));
        for bad in ["/leistungen/x%00.html", "/x%0a", "/x%7f", "/x%ff", "/x%C3", "/%c0%80"] {
            assert!(!path_is_clean(bad), "{bad}");
        }
    }
}
