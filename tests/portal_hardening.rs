//! The portal server against hostile and idle clients and a misbehaving tenant: security
//! headers on every response, NUL bytes in paths, slowloris and idle connections, the
//! connection cap under a low open-file limit, the shutdown deadline, a tenant whose table is
//! locked, and a database outage.

mod support;

use axum::body::Body;
use axum::http::{Request, StatusCode};
use portalctl::portal::{self, AppState};
use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};
use support::{TestEnv, CONTENT_A, CONTENT_B};
use tower::ServiceExt;

async fn get(state: &AppState, host: &str, uri: &str, headers: &[(&str, &str)]) -> axum::response::Response {
    let mut req = Request::builder().uri(uri).header("host", host);
    for (k, v) in headers {
        req = req.header(*k, *v);
    }
    portal::app(state.clone()).oneshot(req.body(Body::empty()).unwrap()).await.unwrap()
}

fn assert_security_headers(res: &axum::response::Response, what: &str) {
    let h = res.headers();
    let csp = h.get("content-security-policy").unwrap_or_else(|| panic!("{what}: no CSP")).to_str().unwrap();
    assert!(csp.contains("frame-ancestors 'none'"), "{what}: {csp}");
    assert!(csp.contains("default-src 'none'") && !csp.contains("unsafe-inline"), "{what}: {csp}");
    assert_eq!(h.get("x-frame-options").map(|v| v.to_str().unwrap()), Some("DENY"), "{what}");
    assert_eq!(h.get("x-content-type-options").map(|v| v.to_str().unwrap()), Some("nosniff"), "{what}");
    assert_eq!(
        h.get("referrer-policy").map(|v| v.to_str().unwrap()),
        Some("strict-origin-when-cross-origin"),
        "{what}"
    );
}

#[tokio::test]
async fn every_response_carries_the_security_headers() {
    let Some(env) = TestEnv::new(&["espelkamp"]).await else { return };
    env.import("espelkamp", CONTENT_A).await;
    let s = env.app_state(portal::pool(&env.portal_url, 2).unwrap());
    let a = env.tenant("espelkamp").hostnames[0].clone();
    let cases = [
        (a.as_str(), "/", StatusCode::OK),
        (a.as_str(), "/leistungen/hundeanmeldung", StatusCode::OK),
        (a.as_str(), "/static/portal.css", StatusCode::OK),
        (a.as_str(), "/gibt-es-nicht", StatusCode::NOT_FOUND),
        ("nobody.example", "/", StatusCode::NOT_FOUND),
        // The operations endpoints are not on the public listener; the 404 carries the headers too.
        ("localhost", "/healthz", StatusCode::NOT_FOUND),
    ];
    for (host, path, status) in cases {
        let res = get(&s, host, path, &[]).await;
        assert_eq!(res.status(), status, "{host}{path}");
        assert_security_headers(&res, &format!("{host}{path}"));
        assert!(res.headers().get("strict-transport-security").is_none(), "HSTS over plain http: {host}{path}");
    }
    // Over https (as the Ingress says): HSTS too.
    let res = get(&s, &a, "/", &[("x-forwarded-proto", "https")]).await;
    assert_eq!(res.headers()["strict-transport-security"], "max-age=31536000");
    // The login routes too, whatever they answer without a configured Servicekonto.
    let res = get(&s, &a, "/anmelden", &[]).await;
    assert_security_headers(&res, "/anmelden");

    // The pages need nothing inline: no <style>, no <script>, no style or on* attributes.
    let res = get(&s, &a, "/", &[]).await;
    let body = String::from_utf8(axum::body::to_bytes(res.into_body(), 1 << 20).await.unwrap().to_vec()).unwrap();
    for inline in ["<style", "<script", " style=", " onload=", " onclick="] {
        assert!(!body.contains(inline), "inline {inline} in the home page");
    }
}

/// The database is unreachable here: a path that would reach a query would answer 503.
#[tokio::test]
async fn nul_and_invalid_utf8_in_paths_are_404_before_any_query() {
    let Some(env) = TestEnv::new(&["espelkamp"]).await else { return };
    let nowhere = format!("postgres://nobody@127.0.0.1:{}/nothing", support::free_port());
    let s = env.app_state(portal::pool(&nowhere, 2).unwrap());
    let a = env.tenant("espelkamp").hostnames[0].clone();
    let res = get(&s, &a, "/leistungen/x", &[]).await;
    assert_eq!(res.status(), StatusCode::SERVICE_UNAVAILABLE, "a clean path does reach the database");
    for path in ["/leistungen/x%00.html", "/themen/%00", "/lebenslagen/a%0d%0ab", "/leistungen/%ff%fe", "/suche%00"] {
        let res = get(&s, &a, path, &[]).await;
        assert_eq!(res.status(), StatusCode::NOT_FOUND, "{path}");
        let body = String::from_utf8(axum::body::to_bytes(res.into_body(), 1 << 20).await.unwrap().to_vec()).unwrap();
        assert!(body.contains("Stadt Espelkamp"), "the tenant's own 404 page for {path}");
    }
    let res = get(&s, "nobody.example", "/leistungen/x%00.html", &[]).await;
    assert_eq!(res.status(), StatusCode::NOT_FOUND);
}

/// The real server: a connection that sends nothing is closed after the idle timeout, one
/// that sends its head a byte every 0.4 s (slowloris) after the header read timeout, and a
/// kept-alive connection may wait longer than the header read timeout between requests.
#[tokio::test(flavor = "multi_thread")]
async fn slow_and_silent_clients_are_cut_off() {
    let Some(env) = TestEnv::new(&["espelkamp"]).await else { return };
    let server = env.start_server_with(&["--header-read-timeout", "1", "--idle-timeout", "3"], |c| c);
    let port = server.port;
    // The operations listener runs the same connection layer; its /healthz answers "ok\n".
    let ops_port = server.ops_port;
    let silent = std::thread::spawn(move || {
        let mut s = TcpStream::connect(("127.0.0.1", port)).unwrap();
        s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
        let t = Instant::now();
        let n = s.read(&mut [0u8; 64]);
        (t.elapsed(), n.map_err(|e| e.kind()))
    });
    let slow = std::thread::spawn(move || {
        let mut s = TcpStream::connect(("127.0.0.1", port)).unwrap();
        let t = Instant::now();
        for b in b"GET / HTTP/1.1\r\nHost: localhost\r\nX-Slow: aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa" {
            if s.write_all(&[*b]).is_err() {
                return t.elapsed();
            }
            std::thread::sleep(Duration::from_millis(400));
        }
        t.elapsed()
    });
    let kept_alive = std::thread::spawn(move || {
        let mut s = TcpStream::connect(("127.0.0.1", ops_port)).unwrap();
        s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
        let mut answers = Vec::new();
        for _ in 0..2 {
            s.write_all(b"GET /healthz HTTP/1.1\r\nHost: localhost\r\n\r\n").unwrap();
            let mut got = Vec::new();
            while !got.ends_with(b"ok\n") {
                let mut buf = [0u8; 512];
                match s.read(&mut buf) {
                    Ok(0) | Err(_) => break,
                    Ok(n) => got.extend_from_slice(&buf[..n]),
                }
            }
            answers.push(String::from_utf8_lossy(&got).into_owned());
            // Idle for longer than the header read timeout, shorter than the idle timeout.
            std::thread::sleep(Duration::from_millis(1800));
        }
        answers
    });
    let (elapsed, n) = silent.join().unwrap();
    assert!(matches!(n, Ok(0)) || matches!(n, Err(std::io::ErrorKind::ConnectionReset)), "{n:?}");
    assert!(
        elapsed > Duration::from_millis(2500) && elapsed < Duration::from_secs(6),
        "idle connection open for {elapsed:?}"
    );
    let elapsed = slow.join().unwrap();
    assert!(elapsed < Duration::from_millis(2500), "slowloris connection open for {elapsed:?}");
    for a in kept_alive.join().unwrap() {
        assert!(a.starts_with("HTTP/1.1 200"), "{a}");
    }
    assert_eq!(server.get_ops("localhost", "/healthz").status, 200);
}

/// Under `ulimit -n 128`, 300 idle connections neither exhaust the server's file descriptors
/// nor keep it from answering: the cap is lowered to fit the limit, connections above it are
/// closed at once, the idle ones after the header read timeout.
#[tokio::test(flavor = "multi_thread")]
async fn idle_connections_above_the_cap_are_shed_under_a_low_open_file_limit() {
    let Some(env) = TestEnv::new(&["espelkamp"]).await else { return };
    let server = env.start_server_with(&["--header-read-timeout", "1", "--idle-timeout", "2"], |mut cmd| {
        use std::os::unix::process::CommandExt as _;
        // SAFETY: setrlimit is async-signal-safe and touches only the child's limits.
        unsafe {
            cmd.pre_exec(|| {
                let lim = libc::rlimit { rlim_cur: 128, rlim_max: 128 };
                if libc::setrlimit(libc::RLIMIT_NOFILE, &lim) != 0 {
                    return Err(std::io::Error::last_os_error());
                }
                Ok(())
            })
        };
        cmd
    });
    assert!(server.log_text().contains("connection cap lowered"), "{}", server.log_text());
    let start = Instant::now();
    let mut idle = Vec::new();
    for _ in 0..300 {
        let s = TcpStream::connect(("127.0.0.1", server.port)).unwrap();
        s.set_read_timeout(Some(Duration::from_millis(20))).unwrap();
        idle.push(s);
    }
    // Connections above the cap are closed at once.
    std::thread::sleep(Duration::from_millis(300));
    let closed = idle
        .iter_mut()
        .filter_map(|s| match s.read(&mut [0u8; 16]) {
            Ok(n) => (n == 0).then_some(()),
            Err(e) => {
                (!matches!(e.kind(), std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut)).then_some(())
            }
        })
        .count();
    assert!(closed >= 300 - 64, "only {closed} of 300 connections closed at once");
    // The server answers again within the header read timeout, while the clients still hold
    // their sockets open.
    let deadline = start + Duration::from_secs(8);
    loop {
        if support::get(server.ops_port, "localhost", "/healthz").is_ok_and(|r| r.status == 200) {
            break;
        }
        assert!(Instant::now() < deadline, "no answer while idle connections are open");
        std::thread::sleep(Duration::from_millis(100));
    }
    let log = server.log_text();
    assert!(log.matches("Too many open files").count() <= 1, "{log}");
    assert!(log.matches("connection cap reached").count() <= 2, "log lines are rate-limited: {log}");
    drop(idle);
}

/// SIGTERM with a half-sent request open: the server exits after the shutdown deadline.
#[tokio::test(flavor = "multi_thread")]
async fn a_half_sent_request_does_not_hold_up_shutdown() {
    let Some(env) = TestEnv::new(&["espelkamp"]).await else { return };
    let mut server = env
        .start_server_with(&["--header-read-timeout", "60", "--idle-timeout", "60", "--shutdown-timeout", "1"], |c| c);
    let mut half = TcpStream::connect(("127.0.0.1", server.port)).unwrap();
    half.write_all(b"GET / HTTP/1.1\r\nHost: localhost\r\n").unwrap();
    std::thread::sleep(Duration::from_millis(200));
    let t = Instant::now();
    let status = server.terminate();
    assert!(status.success(), "{status}");
    assert!(t.elapsed() < Duration::from_secs(5), "shutdown took {:?}", t.elapsed());
    assert!(server.log_text().contains("portal server stopped"));
}

/// One tenant's table is locked by another session: its reads give up with 503 after the lock
/// timeout and hold at most its shard plus one borrowed connection, so the other tenants keep
/// answering at once and readiness stays green.
#[tokio::test(flavor = "multi_thread")]
async fn a_locked_tenant_does_not_stall_the_others() {
    let Some(env) = TestEnv::new(&["espelkamp", "detmold", "kirchlengern"]).await else { return };
    env.import("espelkamp", CONTENT_A).await;
    env.import("detmold", CONTENT_B).await;
    env.import("kirchlengern", CONTENT_B).await;
    let server = env.start_server();
    let locked = env.tenant("espelkamp").hostnames[0].clone();
    let others = [env.tenant("detmold").hostnames[0].clone(), env.tenant("kirchlengern").hostnames[0].clone()];
    let mut admin = support::connect(&env.url).await;
    let tx = admin.transaction().await.unwrap();
    tx.batch_execute(&format!("LOCK TABLE {}.service IN ACCESS EXCLUSIVE MODE", env.tenant("espelkamp").schema))
        .await
        .unwrap();

    let port = server.port;
    let stalled: Vec<_> = (0..40)
        .map(|_| {
            let host = locked.clone();
            std::thread::spawn(move || {
                let t = Instant::now();
                (support::get(port, &host, "/leistungen"), t.elapsed())
            })
        })
        .collect();
    std::thread::sleep(Duration::from_millis(300));
    for round in 0..5 {
        for host in &others {
            let t = Instant::now();
            let r = server.get(host, "/leistungen");
            assert_eq!(r.status, 200, "round {round}, {host}: {}", r.body);
            assert!(t.elapsed() < Duration::from_millis(1500), "round {round}, {host}: {:?}", t.elapsed());
        }
        let t = Instant::now();
        let r = server.get_ops("localhost", "/readyz");
        assert_eq!(r.status, 200, "{}", r.body);
        assert!(t.elapsed() < Duration::from_millis(1500), "readyz took {:?}", t.elapsed());
    }
    for h in stalled {
        let (r, elapsed) = h.join().unwrap();
        let r = r.expect("an answer for the locked tenant");
        assert_eq!(r.status, 503, "{}", r.body);
        assert!(r.headers.to_ascii_lowercase().contains("retry-after: 5"), "{}", r.headers);
        assert!(elapsed < Duration::from_secs(15), "{elapsed:?}");
    }
    tx.rollback().await.unwrap();
    assert_eq!(server.get(&locked, "/leistungen").status, 200);
}

/// A tenant holds at most its own shard and one borrowed connection: a fourth concurrent read
/// waits for its own shard (and gives up after the wait timeout) although another shard has
/// free connections, which stay free for that shard's tenants.
#[tokio::test]
async fn a_tenant_borrows_at_most_one_connection_from_other_shards() {
    let Some(env) = TestEnv::new(&["espelkamp", "detmold", "kirchlengern"]).await else { return };
    let limits = portal::db::ReadLimits { wait_timeout: Duration::from_millis(300), ..Default::default() };
    let pools = portal::pool_with(&env.portal_url, 6, limits).unwrap();
    assert_eq!(pools.shards(), 3);
    let schemas: Vec<String> = env.tenants.iter().map(|t| t.schema.clone()).collect();
    let a = &schemas[0];
    let held = (pools.get(a).await.unwrap(), pools.get(a).await.unwrap(), pools.get(a).await.unwrap());
    let t = Instant::now();
    let fourth = pools.get(a).await;
    assert!(fourth.is_err(), "a second borrowed connection");
    assert!(t.elapsed() >= Duration::from_millis(250), "gave up without waiting for its own shard");
    // Any tenant of another shard still gets a connection at once.
    let other = (0..100).map(|i| format!("t_probe_{i}")).find(|k| pools.shard_of(k) != pools.shard_of(a)).unwrap();
    let t = Instant::now();
    let c = pools.get(&other).await.expect("a connection for another shard's tenant");
    assert!(t.elapsed() < Duration::from_millis(250));
    drop((held, c));
    // Returned: the tenant may borrow again.
    let again = (pools.get(a).await.unwrap(), pools.get(a).await.unwrap(), pools.get(a).await.unwrap());
    drop(again);
}

/// A TCP forwarder to PostgreSQL that can be cut: every connection through it closed, new
/// ones refused.
struct CuttableProxy {
    port: u16,
    task: tokio::task::JoinHandle<()>,
}

impl CuttableProxy {
    async fn start(target: std::net::SocketAddr) -> CuttableProxy {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let task = tokio::spawn(async move {
            let mut conns = tokio::task::JoinSet::new();
            while let Ok((mut down, _)) = listener.accept().await {
                conns.spawn(async move {
                    if let Ok(mut up) = tokio::net::TcpStream::connect(target).await {
                        let _ = tokio::io::copy_bidirectional(&mut down, &mut up).await;
                    }
                });
            }
        });
        CuttableProxy { port, task }
    }

    /// Close every connection and the listener (the JoinSet aborts its tasks when dropped).
    fn cut(&self) {
        self.task.abort();
    }
}

/// The database goes away: pages answer 503 with Retry-After (not 500), readiness 503, and the
/// log gets a handful of lines, not one per request.
#[tokio::test(flavor = "multi_thread")]
async fn a_database_outage_answers_503_and_logs_a_bounded_number_of_lines() {
    let Some(env) = TestEnv::new(&["espelkamp"]).await else { return };
    env.import("espelkamp", CONTENT_A).await;
    let pg: std::net::SocketAddr = {
        let rest = env.portal_url.rsplit_once('@').unwrap().1;
        rest.split('/').next().unwrap().parse().expect("the test database is on IP:port")
    };
    let proxy = CuttableProxy::start(pg).await;
    let mut env = env;
    env.portal_url = env.portal_url.replace(&pg.to_string(), &format!("127.0.0.1:{}", proxy.port));
    let server = env.start_server();
    let a = env.tenant("espelkamp").hostnames[0].clone();
    assert_eq!(server.get(&a, "/leistungen").status, 200);
    proxy.cut();

    let port = server.port;
    let workers: Vec<_> = (0..8)
        .map(|_| {
            let host = a.clone();
            std::thread::spawn(move || {
                let mut seen = Vec::new();
                for path in ["/leistungen", "/", "/suche?q=Hund", "/leistungen/hundeanmeldung"].repeat(25) {
                    seen.push(support::get(port, &host, path).expect("an answer"));
                }
                seen
            })
        })
        .collect();
    let mut answers = 0;
    for w in workers {
        for r in w.join().unwrap() {
            assert_eq!(r.status, 503, "{}", r.body);
            let headers = r.headers.to_ascii_lowercase();
            assert!(headers.contains("retry-after: 5"), "{}", r.headers);
            assert!(headers.contains("content-security-policy: "), "error pages carry the security headers too");
            answers += 1;
        }
    }
    assert_eq!(answers, 800);
    let r = server.get_ops("localhost", "/readyz");
    assert_eq!(r.status, 503);
    let log = server.log_text();
    let lines = log.lines().filter(|l| l.contains("WARN") || l.contains("ERROR")).count();
    assert!(lines <= 20, "{lines} warning and error lines for 800 failed requests:\n{log}");
    assert!(log.contains("database unavailable"), "{log}");
    drop(env);
}
