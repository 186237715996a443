//! The portal server's pipelined tenant reads (`portal::db::read`) against a real PostgreSQL:
//! every statement runs as the tenant, and nothing of one tenant's transaction — role,
//! search_path, an open transaction — survives on a pooled connection into the next request,
//! whether the request succeeded, failed, or was dropped half-way.

mod support;

use axum::body::Body;
use axum::http::{Request, StatusCode};
use portalctl::portal::db::{self, Stmt};
use portalctl::portal::{self, registry::Registry, AppState, Options};
use std::sync::Arc;
use std::time::Duration;
use support::{TestEnv, CONTENT_A, CONTENT_B};
use tower::ServiceExt;

async fn env() -> Option<TestEnv> {
    let env = TestEnv::new(&["espelkamp", "detmold"]).await?;
    env.import("espelkamp", CONTENT_A).await;
    env.import("detmold", CONTENT_B).await;
    Some(env)
}

/// Who a read runs as, where it looks, and which services it sees.
const WHO: &str = "SELECT current_user::text, current_setting('search_path'),
        (SELECT string_agg(id, ',' ORDER BY id) FROM service)";

async fn who(pool: &portal::Pools, schema: &str) -> (String, String, String) {
    let rows = db::read(pool, schema, &[Stmt::plain(WHO)]).await.expect("read as tenant");
    let r = &rows[0][0];
    (r.get(0), r.get(1), r.get::<_, Option<String>>(2).unwrap_or_default())
}

/// The pool's (only) connection, checked outside any tenant transaction: the group role, the
/// default search_path, and no transaction left open (in autocommit, a statement's
/// transaction starts with the statement).
async fn assert_clean(pool: &portal::Pools, env: &TestEnv) {
    let conn = pool.get("").await.unwrap();
    // Simple query protocol: the first statement of a transaction has statement_timestamp()
    // equal to transaction_timestamp().
    let msgs = conn
        .simple_query(
            "SELECT current_user, current_setting('search_path'), statement_timestamp() = transaction_timestamp()",
        )
        .await
        .unwrap();
    let r = msgs
        .iter()
        .find_map(|m| match m {
            tokio_postgres::SimpleQueryMessage::Row(r) => Some(r),
            _ => None,
        })
        .expect("one row");
    assert_eq!(r.get(0), Some(env.group_role.as_str()), "role leaked into the pooled connection");
    assert_eq!(r.get(1), Some("\"$user\", public"), "search_path leaked into the pooled connection");
    assert_eq!(r.get(2), Some("t"), "a transaction was left open on the pooled connection");
}

#[tokio::test]
async fn reads_run_as_the_tenant_and_leave_the_connection_clean() {
    let Some(env) = env().await else { return };
    let (a, b) = (env.tenant("espelkamp").schema.clone(), env.tenant("detmold").schema.clone());
    let pool = portal::pool(&env.portal_url, 1).unwrap();

    let (user, path, services) = who(&pool, &a).await;
    assert_eq!(user, a);
    assert_eq!(path, format!("{a}, portalctl_ext"));
    let (_, _, services_b) = who(&pool, &b).await;
    assert!(!services.is_empty() && !services_b.is_empty());
    assert_ne!(services, services_b, "each tenant sees its own services");
    assert_clean(&pool, &env).await;

    // The other tenant's tables, named explicitly, are refused by PostgreSQL.
    let sql = format!("SELECT count(*) FROM {b}.service");
    let err = db::read(&pool, &a, &[Stmt::plain(&sql)]).await.unwrap_err();
    assert!(format!("{err:?}").contains("permission denied"), "{err:?}");
    // The transaction is read-only.
    let err = db::read(&pool, &a, &[Stmt::plain("DELETE FROM service")]).await.unwrap_err();
    assert!(format!("{err:?}").contains("read-only"), "{err:?}");
    assert_clean(&pool, &env).await;
    assert_eq!(who(&pool, &a).await.2, services, "the failed reads changed nothing");
}

#[tokio::test]
async fn failed_setup_runs_nothing_as_the_group_role() {
    let Some(env) = env().await else { return };
    let a = env.tenant("espelkamp").schema.clone();
    let pool = portal::pool(&env.portal_url, 1).unwrap();
    // A schema whose role does not exist: SET LOCAL ROLE fails, so the statements after it in
    // the pipeline are refused instead of running as the group role.
    let err = db::read(&pool, "t_no_such_tenant", &[Stmt::plain(WHO)]).await.unwrap_err();
    assert!(format!("{err:?}").contains("t_no_such_tenant"), "{err:?}");
    assert_clean(&pool, &env).await;
    assert_eq!(who(&pool, &a).await.0, a);
}

#[tokio::test]
async fn a_read_dropped_half_way_does_not_leak_into_the_next() {
    let Some(env) = env().await else { return };
    let (a, b) = (env.tenant("espelkamp").schema.clone(), env.tenant("detmold").schema.clone());
    let (_, _, services_a) = {
        let pool = portal::pool(&env.portal_url, 1).unwrap();
        who(&pool, &a).await
    };
    let pool = portal::pool(&env.portal_url, 1).unwrap();
    for _ in 0..3 {
        // B's pipeline is on the wire (the sleep runs inside B's transaction) when the request
        // is dropped, as when a client goes away.
        let stmts = [Stmt::plain("SELECT pg_sleep(5)"), Stmt::plain(WHO)];
        let slow = db::read(&pool, &b, &stmts);
        assert!(tokio::time::timeout(Duration::from_millis(300), slow).await.is_err(), "B's read was not cut off");
        // The next read on the (single-connection) pool is A's alone.
        let (user, path, services) = who(&pool, &a).await;
        assert_eq!(user, a);
        assert_eq!(path, format!("{a}, portalctl_ext"));
        assert_eq!(services, services_a);
        assert_clean(&pool, &env).await;
    }
}

/// End to end through the router with a one-connection pool: a request that fails for tenant
/// B (its role was dropped) is followed on the same pool by requests for A that see only A.
#[tokio::test]
async fn a_failed_request_for_one_tenant_is_followed_by_clean_requests_for_another() {
    let Some(env) = env().await else { return };
    let registry = Arc::new(Registry::new());
    registry.replace(portal::source::Directory::new(env.dir.path()).load().unwrap().sites);
    let pool = portal::pool(&env.portal_url, 1).unwrap();
    let state = AppState::new(registry, pool.clone(), Options { home_cache_ttl: Duration::ZERO, ..Options::default() });
    let get = |host: String, uri: &'static str| {
        let app = portal::app(state.clone());
        async move {
            let req = Request::builder().uri(uri).header("host", host).body(Body::empty()).unwrap();
            let res = app.oneshot(req).await.unwrap();
            let status = res.status();
            let body = axum::body::to_bytes(res.into_body(), 10 << 20).await.unwrap();
            (status, String::from_utf8(body.to_vec()).unwrap())
        }
    };
    let host_a = env.tenant("espelkamp").hostnames[0].clone();
    let host_b = env.tenant("detmold").hostnames[0].clone();
    assert_eq!(get(host_b.clone(), "/leistungen").await.0, StatusCode::OK);
    // Take B's role away from the group role: B's requests now fail inside the pipeline.
    let admin = support::connect(&env.url).await;
    admin.batch_execute(&format!("REVOKE {} FROM {}", env.tenant("detmold").schema, env.group_role)).await.unwrap();
    for _ in 0..2 {
        let (s, _) = get(host_b.clone(), "/leistungen").await;
        assert_eq!(s, StatusCode::INTERNAL_SERVER_ERROR);
        let (s, body) = get(host_a.clone(), "/leistungen").await;
        assert_eq!(s, StatusCode::OK);
        assert!(body.contains("Hundeanmeldung"), "{body}");
        assert!(!body.contains("Bootsliegeplatz"), "B's service on A's page");
        let (s, body) = get(host_a.clone(), "/suche?q=Hafenamt").await;
        assert_eq!(s, StatusCode::OK);
        assert!(!body.contains("Bootsliegeplatz") && !body.contains("/leistungen/boot"), "{body}");
        assert_clean(&pool, &env).await;
    }
}

/// Connections are sharded by tenant; a tenant whose shard is busy borrows from another
/// shard instead of waiting, and that connection is just as clean.
#[tokio::test]
async fn a_busy_shard_lends_from_another() {
    let Some(env) = env().await else { return };
    let a = env.tenant("espelkamp").schema.clone();
    let pools = portal::pool(&env.portal_url, 4).unwrap();
    assert_eq!(pools.shards(), 2);
    let _held = (pools.get(&a).await.unwrap(), pools.get(&a).await.unwrap());
    let (user, _, _) = tokio::time::timeout(Duration::from_secs(2), who(&pools, &a)).await.expect("no waiting");
    assert_eq!(user, a);
}

/// The home page cache is per tenant, answers `If-None-Match` with 304, and never serves a
/// page older than twice its TTL: an unpublished service disappears from the home page.
#[tokio::test]
async fn home_cache_is_per_tenant_revalidates_and_expires() {
    let Some(env) = env().await else { return };
    let registry = Arc::new(Registry::new());
    registry.replace(portal::source::Directory::new(env.dir.path()).load().unwrap().sites);
    let pool = portal::pool(&env.portal_url, 2).unwrap();
    let ttl = Duration::from_millis(300);
    let state = AppState::new(registry, pool, Options { home_cache_ttl: ttl, ..Options::default() });
    let get = |host: String, etag: Option<String>| {
        let app = portal::app(state.clone());
        async move {
            let mut req = Request::builder().uri("/").header("host", host);
            if let Some(e) = etag {
                req = req.header("if-none-match", e);
            }
            let res = app.oneshot(req.body(Body::empty()).unwrap()).await.unwrap();
            let status = res.status();
            let etag = res.headers().get("etag").map(|v| v.to_str().unwrap().to_string());
            let body = axum::body::to_bytes(res.into_body(), 10 << 20).await.unwrap();
            (status, etag, String::from_utf8(body.to_vec()).unwrap())
        }
    };
    let host_a = env.tenant("espelkamp").hostnames[0].clone();
    let host_b = env.tenant("detmold").hostnames[0].clone();
    let (s, etag_a, home_a) = get(host_a.clone(), None).await;
    assert_eq!(s, StatusCode::OK);
    assert!(home_a.contains("Steuern und Zoll") && !home_a.contains("Wassersport"), "{home_a}");
    let (_, etag_b, home_b) = get(host_b.clone(), None).await;
    assert!(home_b.contains("Wassersport") && !home_b.contains("Steuern und Zoll"), "{home_b}");
    assert_ne!(etag_a, etag_b);
    // A's ETag revalidates A's page only.
    let (s, _, body) = get(host_a.clone(), etag_a.clone()).await;
    assert!(s == StatusCode::NOT_MODIFIED && body.is_empty(), "{s}");
    let (s, _, body) = get(host_b.clone(), etag_a.clone()).await;
    assert_eq!(s, StatusCode::OK);
    assert!(body.contains("Wassersport"));

    let admin = support::connect(&env.url).await;
    let a = &env.tenant("espelkamp").schema;
    admin.batch_execute(&format!("UPDATE {a}.service SET published = false")).await.unwrap();
    tokio::time::sleep(2 * ttl + Duration::from_millis(50)).await;
    let (s, etag, home) = get(host_a.clone(), etag_a.clone()).await;
    assert_eq!(s, StatusCode::OK, "a page older than twice the TTL was revalidated");
    assert!(!home.contains("Steuern und Zoll"), "unpublished service still on the home page: {home}");
    assert_ne!(etag, etag_a);
}

/// A statement prepared per tenant (`Stmt::prepared`, the search) is prepared inside the
/// tenant's transaction, kept on the connection under a text naming the tenant, and executed
/// from there on: each tenant gets its own, runs as itself, and a second read prepares nothing.
#[tokio::test]
async fn prepared_statements_are_per_tenant_and_reused() {
    let Some(env) = env().await else { return };
    let (a, b) = (env.tenant("espelkamp").schema.clone(), env.tenant("detmold").schema.clone());
    let pool = portal::pool(&env.portal_url, 1).unwrap();
    let (_, _, services_a) = who(&pool, &a).await;
    let (_, _, services_b) = who(&pool, &b).await;
    let prepared_who = |schema: String| {
        let pool = pool.clone();
        async move {
            let rows = db::read(&pool, &schema, &[Stmt::prepared(WHO, &[])]).await.expect("prepared read");
            let r = &rows[0][0];
            (r.get::<_, String>(0), r.get::<_, String>(1), r.get::<_, Option<String>>(2).unwrap_or_default())
        }
    };
    for _ in 0..3 {
        assert_eq!(prepared_who(a.clone()).await, (a.clone(), format!("{a}, portalctl_ext"), services_a.clone()));
    }
    assert_eq!(prepared_who(b.clone()).await, (b.clone(), format!("{b}, portalctl_ext"), services_b.clone()));
    assert_eq!(prepared_who(a.clone()).await.2, services_a);
    // The session's prepared statements: one per tenant, prepared once, executed every time.
    let prepared = db::read(
        &pool,
        &a,
        &[Stmt::plain("SELECT statement, (generic_plans + custom_plans)::int FROM pg_prepared_statements")],
    )
    .await
    .unwrap();
    let mut prepared: Vec<(String, i32)> = prepared[0].iter().map(|r| (r.get(0), r.get(1))).collect();
    prepared.sort();
    let mut expected = vec![(format!("/* tenant {a} */ {WHO}"), 4), (format!("/* tenant {b} */ {WHO}"), 1)];
    expected.sort();
    assert_eq!(prepared, expected);
    assert_eq!(db::prepared_text("t_a */ DROP", WHO), None, "only plain schema names are put into a comment");

    // A failed setup runs no prepared statement either; the connection is closed, and the next
    // one prepares afresh.
    let err = db::read(&pool, "t_no_such_tenant", &[Stmt::prepared(WHO, &[])]).await.unwrap_err();
    assert!(format!("{err:?}").contains("t_no_such_tenant"), "{err:?}");
    assert_clean(&pool, &env).await;
    assert_eq!(prepared_who(b.clone()).await.0, b);
    assert_clean(&pool, &env).await;
}

/// Warming a tenant prepares its statements on every connection of its shard, five executions
/// each (after which PostgreSQL keeps the plan), and leaves the connections clean.
#[tokio::test]
async fn warming_prepares_on_every_connection_of_the_shard() {
    let Some(env) = env().await else { return };
    let a = env.tenant("espelkamp").schema.clone();
    let pool = portal::pool(&env.portal_url, 2).unwrap();
    assert_eq!(pool.shards(), 1);
    pool.warm(&a, &[Stmt::prepared(WHO, &[])], 5).await.unwrap();
    let (c1, c2) = (pool.get(&a).await.unwrap(), pool.get(&a).await.unwrap());
    for conn in [&c1, &c2] {
        let rows = conn
            .query_typed("SELECT statement, (generic_plans + custom_plans)::int FROM pg_prepared_statements", &[])
            .await
            .unwrap();
        let prepared: Vec<(String, i32)> = rows.iter().map(|r| (r.get(0), r.get(1))).collect();
        assert_eq!(prepared, vec![(format!("/* tenant {a} */ {WHO}"), 5)]);
    }
    drop((c1, c2));
    assert_clean(&pool, &env).await;
    assert!(pool.warm("t_no_such_tenant", &[Stmt::prepared(WHO, &[])], 1).await.is_err());
}
