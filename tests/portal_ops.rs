//! The operations endpoints (`/healthz`, `/readyz`, `/metrics`, the identity endpoint) live on
//! their own listener (`serve --ops-listen`) and are never answered on the public one, neither
//! on a tenant's host nor on a host no tenant claims: through the routers (`oneshot`) and
//! through the real `portalctl serve` process.

mod support;

use axum::body::Body;
use axum::http::{Request, StatusCode};
use portalctl::portal::{self, site::Site, AppState};
use support::{TestEnv, CONTENT_A, CONTENT_B};
use tower::ServiceExt;

const OPS_PATHS: &[&str] = &[
    "/healthz",
    "/readyz",
    "/metrics",
    "/.well-known/portalctl/identity",
    "/.well-known/portalctl/identity?host=service.detmold.test",
];

struct Harness {
    env: TestEnv,
    state: AppState,
}

async fn harness() -> Option<Harness> {
    let env = TestEnv::new(&["espelkamp", "detmold"]).await?;
    env.import("espelkamp", CONTENT_A).await;
    env.import("detmold", CONTENT_B).await;
    let state = env.app_state(portal::pool(&env.portal_url, 4).unwrap());
    Some(Harness { env, state })
}

async fn call(app: axum::Router, host: &str, uri: &str) -> (StatusCode, String) {
    let req = Request::builder().uri(uri).header("host", host).body(Body::empty()).unwrap();
    let res = app.oneshot(req).await.unwrap();
    let status = res.status();
    let body = axum::body::to_bytes(res.into_body(), 10 << 20).await.unwrap();
    (status, String::from_utf8(body.to_vec()).unwrap())
}

impl Harness {
    async fn public(&self, host: &str, uri: &str) -> (StatusCode, String) {
        call(portal::app(self.state.clone()), host, uri).await
    }
    async fn ops(&self, host: &str, uri: &str) -> (StatusCode, String) {
        call(portal::ops::app(self.state.clone()), host, uri).await
    }
    fn host(&self, slug: &str) -> String {
        self.env.tenant(slug).hostnames[0].clone()
    }
}

/// What an answer of an operations endpoint would give away.
fn assert_no_ops_data(body: &str, what: &str) {
    for leak in ["portal_requests_total", "portal_tenants_loaded", "ready:", "migrationVersion", "\"tenant\""] {
        assert!(!body.contains(leak), "{what} shows {leak:?}:\n{body}");
    }
}

#[tokio::test]
async fn the_public_listener_answers_no_operations_path_on_any_host() {
    let Some(h) = harness().await else { return };
    let (a, b) = (h.host("espelkamp"), h.host("detmold"));
    // Traffic for both tenants, so that the metrics would name them.
    assert_eq!(h.public(&a, "/").await.0, StatusCode::OK);
    assert_eq!(h.public(&b, "/").await.0, StatusCode::OK);
    assert!(h.ops("localhost", "/metrics").await.1.contains("tenant=\"detmold\""));

    for path in OPS_PATHS {
        // A tenant's host: its own ordinary 404 page, nothing of the other tenant.
        let (s, body) = h.public(&a, path).await;
        assert_eq!(s, StatusCode::NOT_FOUND, "{a}{path}");
        assert_no_ops_data(&body, &format!("{a}{path}"));
        assert!(!body.contains("detmold") && !body.contains("Detmold"), "{a}{path} names another tenant:\n{body}");
        // Hosts no tenant claims: the plain 404 naming no tenant.
        for host in ["nobody.example", "10.0.0.7:8080", "localhost", ""] {
            let (s, body) = h.public(host, path).await;
            assert_eq!(s, StatusCode::NOT_FOUND, "{host}{path}");
            assert_no_ops_data(&body, &format!("{host}{path}"));
            for name in ["espelkamp", "Espelkamp", "detmold", "Detmold"] {
                assert!(!body.contains(name), "{host}{path} names {name}:\n{body}");
            }
        }
    }
}

#[tokio::test]
async fn the_ops_listener_answers_them() {
    let Some(h) = harness().await else { return };
    let a = h.host("espelkamp");
    let (s, body) = h.ops("10.0.0.7:9090", "/healthz").await;
    assert_eq!((s, body.as_str()), (StatusCode::OK, "ok\n"));
    let (s, body) = h.ops("10.0.0.7:9090", "/readyz").await;
    assert_eq!(s, StatusCode::OK, "{body}");
    assert!(body.contains("2 tenants"));

    // The identity of a hostname: named by ?host= (what `portalctl status` does) or by the Host header.
    for (host, uri) in [
        ("10.0.0.7:9090".to_string(), format!("/.well-known/portalctl/identity?host={a}")),
        (a.clone(), "/.well-known/portalctl/identity".to_string()),
    ] {
        let (s, body) = h.ops(&host, &uri).await;
        assert_eq!(s, StatusCode::OK, "{host}{uri}: {body}");
        let id: serde_json::Value = serde_json::from_str(&body).unwrap();
        assert_eq!(id["tenant"], "espelkamp");
        assert_eq!(id["group"], h.env.group.as_str());
        assert_eq!(id["version"], env!("CARGO_PKG_VERSION"));
        assert_eq!(id["migrationVersion"], portalctl::db::migrations::LATEST);
        assert_eq!(id["published"], serde_json::json!({"services": 1, "facilities": 1, "staff": 1}));
    }
    let (s, body) = h.ops("10.0.0.7:9090", "/.well-known/portalctl/identity?host=service.unbekannt.de").await;
    assert_eq!(s, StatusCode::NOT_FOUND);
    assert!(!body.contains("espelkamp") && !body.contains("detmold"), "{body}");
    let (s, _) = h.ops("10.0.0.7:9090", "/.well-known/portalctl/identity").await;
    assert_eq!(s, StatusCode::NOT_FOUND, "the ops address itself is no tenant");
    // No pages on the ops listener.
    assert_eq!(h.ops(&a, "/").await.0, StatusCode::NOT_FOUND);

    h.public(&a, "/").await;
    h.public(&a, "/gibt-es-nicht").await;
    let (_, m) = h.ops("localhost", "/metrics").await;
    assert!(m.contains("portal_requests_total{tenant=\"espelkamp\",status=\"200\"}"), "{m}");
    assert!(m.contains("portal_requests_total{tenant=\"espelkamp\",status=\"404\"}"), "{m}");
    assert!(m.contains("portal_request_duration_seconds_bucket{le=\"+Inf\"}"));
    assert!(m.contains("portal_tenants_loaded 2"));
    assert!(!m.contains("/metrics"), "requests to the ops listener are not tenant traffic");

    // No tenants: not ready.
    h.state.registry().replace(Vec::<Site>::new());
    let (s, _) = h.ops("localhost", "/readyz").await;
    assert_eq!(s, StatusCode::SERVICE_UNAVAILABLE);
}

/// The real server: two listeners; the public one never answers an operations path.
#[tokio::test(flavor = "multi_thread")]
async fn serve_keeps_operations_off_the_public_listener() {
    let Some(env) = TestEnv::new(&["espelkamp", "detmold"]).await else { return };
    let server = env.start_server();
    let (a, b) = (env.tenant("espelkamp").hostnames[0].clone(), env.tenant("detmold").hostnames[0].clone());
    assert_eq!(server.get(&b, "/").status, 200);
    for path in OPS_PATHS {
        for host in [a.as_str(), "nobody.example", "localhost"] {
            let r = server.get(host, path);
            assert_eq!(r.status, 404, "public {host}{path}");
            assert_no_ops_data(&r.body, &format!("public {host}{path}"));
            assert!(!r.body.contains("detmold"), "public {host}{path} names detmold:\n{}", r.body);
        }
    }
    assert_eq!(server.get_ops("localhost", "/healthz").status, 200);
    assert_eq!(server.get_ops("localhost", "/readyz").status, 200);
    let m = server.get_ops("localhost", "/metrics");
    assert!(m.body.contains("tenant=\"detmold\""), "{}", m.body);
    let id = server.get_ops("localhost", &format!("/.well-known/portalctl/identity?host={a}"));
    assert_eq!(id.status, 200);
    assert!(id.body.contains("\"tenant\":\"espelkamp\""), "{}", id.body);
    assert!(server.log_text().contains(&format!("127.0.0.1:{}", server.ops_port)), "the log names the ops address");
}
