//! Reading a tenant's content: every statement of a request runs in one transaction under the
//! tenant's role and search_path, sent to PostgreSQL as one pipeline (one round trip).
//!
//! On the wire, a [`read`] is
//!
//! ```text
//! BEGIN READ ONLY; SET LOCAL ROLE "<schema>"; SET LOCAL search_path = "<schema>", portalctl_ext;
//!   SET LOCAL statement_timeout = …; SET LOCAL lock_timeout = …
//! <statement 1> … <statement n>      (unnamed statements: Parse/Bind/Describe/Execute/Sync each)
//! COMMIT
//! ```
//!
//! all written before the first reply is read. PostgreSQL executes the messages in order, so
//! every statement runs as the tenant; if the setup fails, the transaction is aborted and the
//! statements after it are refused ("current transaction is aborted"), never run as the group role.
//!
//! **Prepared per tenant:** a statement made with [`Stmt::prepared`] (the search) is instead
//! prepared once per tenant on each connection of the tenant's own shard, inside the tenant's
//! transaction (after the setup, as the tenant's role and with its search_path), and kept in the
//! connection's statement cache under a text that names the tenant (`/* tenant t_x */ …`). Later
//! reads bind and execute it in the same single round trip; PostgreSQL reuses its plan, since
//! the statement always runs with the search_path it was prepared with (a prepared statement is
//! re-planned whenever the search_path differs, which with every tenant sharing one unnamed
//! statement was almost every time). The first read of a tenant on a connection costs one more
//! round trip (the Parse). On a connection borrowed from another shard, statements run unnamed
//! as usual, so that each backend holds plans only for the tenants of its own shard.
//!
//! **Why nothing leaks to the next request on a pooled connection:** the `SET LOCAL`s end with
//! their transaction. A connection goes back to the pool only after PostgreSQL has answered
//! every part of the pipeline without error, including the COMMIT — so its transaction is over
//! and its role and search_path are the login defaults again. In every other case (an error in
//! any part, a panic, or the request's future dropped half-way because the client went away) the
//! [`Lease`] detaches the connection from the pool and closes it; PostgreSQL then rolls the
//! open transaction back. `tests/portal_isolation.rs` checks both paths.

use crate::db::quote::ident;
use deadpool_postgres::{ClientWrapper, Object, Pool, PoolError, TimeoutType, Timeouts};
use futures::future::join_all;
use std::collections::HashSet;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio_postgres::types::{ToSql, Type};
use tokio_postgres::Row;

/// Why a read failed.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("database pool: {0}")]
    Pool(#[from] PoolError),
    #[error("database: {0}")]
    Db(#[from] tokio_postgres::Error),
    #[error("database: a statement that always returns a row returned none")]
    NoRow,
}

pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Connections per shard of [`Pools`].
pub const SHARD_SIZE: usize = 2;

/// How long a portal read may take and wait, set on its transaction (`SET LOCAL`), and how
/// long it may wait for a pooled connection.
#[derive(Debug, Clone)]
pub struct ReadLimits {
    /// `statement_timeout` of every statement of a read.
    pub statement_timeout: Duration,
    /// `lock_timeout`: a read of a table that another session has locked (a long transaction,
    /// a locking migration) gives up after this instead of queueing behind the lock.
    pub lock_timeout: Duration,
    /// How long a read waits for a connection of its tenant's shard when none is free and the
    /// tenant has already borrowed one elsewhere.
    pub wait_timeout: Duration,
}

impl Default for ReadLimits {
    fn default() -> Self {
        ReadLimits {
            statement_timeout: Duration::from_secs(5),
            lock_timeout: Duration::from_secs(1),
            wait_timeout: Duration::from_secs(2),
        }
    }
}

/// The server's database connections, in shards of [`SHARD_SIZE`]. A tenant's reads take a
/// connection from the tenant's own shard when one is free there, else — at most one at a
/// time per tenant — from the next shard with a free one, else wait (at most
/// [`ReadLimits::wait_timeout`]) for one of its own. Each PostgreSQL backend thus serves a
/// fraction of the tenants and keeps only their tables and indexes in its catalog caches: the
/// first statement on a table in a backend costs milliseconds of catalog lookups (measured
/// 5–27 ms planning for the search with 396 tenant schemas, 0.5–0.8 ms once warm), and with
/// every connection serving every tenant each backend pays that for every tenant.
///
/// **One tenant cannot stall the others:** a tenant holds at most its own shard plus one
/// borrowed connection, and its reads give up after the [`ReadLimits`]. A tenant whose tables
/// are locked therefore ties up at most `SHARD_SIZE + 1` connections for at most the lock
/// timeout. Readiness probes use a connection of their own ([`Pools::ping`]) and never queue
/// behind tenant traffic.
#[derive(Clone)]
pub struct Pools {
    shards: Arc<[Pool]>,
    /// Tenants (by key) that hold a connection of another shard.
    borrowing: Arc<Mutex<HashSet<String>>>,
    /// The readiness probe's own connection.
    probe: Pool,
    limits: Arc<ReadLimits>,
}

/// A pooled connection for one tenant (dereferences to the pooled [`Object`]); while it is
/// borrowed from another shard, the tenant may borrow no second one.
pub struct Conn {
    obj: Object,
    _borrow: Option<Borrow>,
}

impl std::ops::Deref for Conn {
    type Target = Object;
    fn deref(&self) -> &Object {
        &self.obj
    }
}

impl Conn {
    /// Whether the connection belongs to the tenant's own shard (not borrowed from another).
    pub fn is_home(&self) -> bool {
        self._borrow.is_none()
    }
}

struct Borrow {
    key: String,
    borrowing: Arc<Mutex<HashSet<String>>>,
}

impl Drop for Borrow {
    fn drop(&mut self) {
        self.borrowing.lock().unwrap_or_else(|e| e.into_inner()).remove(&self.key);
    }
}

impl Pools {
    /// `max_size` connections in all: `max_size / SHARD_SIZE` shards (at least one); plus one
    /// for readiness probes.
    pub fn new(
        mut make: impl FnMut(usize) -> Result<Pool, String>,
        max_size: usize,
        limits: ReadLimits,
    ) -> Result<Pools, String> {
        let max_size = max_size.max(1);
        let n = (max_size / SHARD_SIZE).max(1);
        let shards =
            (0..n).map(|i| make(max_size / n + usize::from(i < max_size % n))).collect::<Result<Vec<_>, _>>()?;
        Ok(Pools { shards: shards.into(), borrowing: Arc::default(), probe: make(1)?, limits: Arc::new(limits) })
    }

    pub fn shards(&self) -> usize {
        self.shards.len()
    }

    pub fn limits(&self) -> &ReadLimits {
        &self.limits
    }

    /// The shard a tenant (by schema name) belongs to: FNV-1a, stable across restarts.
    pub fn shard_of(&self, key: &str) -> usize {
        let h = key.bytes().fold(0xcbf2_9ce4_8422_2325_u64, |h, b| (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3));
        (h % self.shards.len() as u64) as usize
    }

    /// A connection for tenant `key`: a free one of its own shard, else one borrowed from the
    /// next shard with a free one (if the tenant holds no borrowed one yet), else its own
    /// shard's next free one within the wait timeout.
    pub async fn get(&self, key: &str) -> Result<Conn, PoolError> {
        let n = self.shards.len();
        let home = self.shard_of(key);
        let create = Some(Duration::from_secs(5));
        let no_wait = Timeouts { wait: Some(Duration::ZERO), create, recycle: None };
        match self.shards[home].timeout_get(&no_wait).await {
            Err(PoolError::Timeout(TimeoutType::Wait)) => {}
            other => return other.map(|obj| Conn { obj, _borrow: None }),
        }
        let claimed = n > 1 && self.borrowing.lock().unwrap_or_else(|e| e.into_inner()).insert(key.to_string());
        if claimed {
            let borrow = Borrow { key: key.to_string(), borrowing: self.borrowing.clone() };
            for i in 1..n {
                match self.shards[(home + i) % n].timeout_get(&no_wait).await {
                    Err(PoolError::Timeout(TimeoutType::Wait)) => continue,
                    other => return other.map(|obj| Conn { obj, _borrow: Some(borrow) }),
                }
            }
        }
        let wait = Timeouts { wait: Some(self.limits.wait_timeout), create, recycle: None };
        self.shards[home].timeout_get(&wait).await.map(|obj| Conn { obj, _borrow: None })
    }

    /// Run `stmts` as tenant `key` on every connection of its own shard at once (opening them if
    /// need be), `times` times each in one pipeline: warms the backends' catalog caches for the
    /// tenant and prepares its [`Stmt::prepared`] statements until PostgreSQL keeps their plan
    /// (it plans the first five executions of a prepared statement afresh). Holds the shard for
    /// one pipeline; meanwhile its tenants' reads borrow or wait as usual.
    pub async fn warm(&self, key: &str, stmts: &[Stmt<'_>], times: usize) -> Result<()> {
        let shard = &self.shards[self.shard_of(key)];
        let t = Timeouts { wait: Some(self.limits.wait_timeout), create: Some(Duration::from_secs(5)), recycle: None };
        let mut leases = Vec::new();
        for _ in 0..shard.status().max_size {
            leases.push(Lease::new(Conn { obj: shard.timeout_get(&t).await?, _borrow: None }));
        }
        let repeated: Vec<Stmt<'_>> = (0..times)
            .flat_map(|_| stmts.iter().map(|s| Stmt { sql: s.sql, params: s.params, prepare: s.prepare }))
            .collect();
        let results = join_all(leases.iter().map(|l| pipeline(l.client(), key, &self.limits, &repeated, true))).await;
        for (lease, result) in leases.into_iter().zip(results) {
            result?;
            lease.release();
        }
        Ok(())
    }

    /// Whether the database answers, on the probe's own connection (never queued behind tenant
    /// reads), within `timeout`.
    pub async fn ping(&self, timeout: Duration) -> Result<(), String> {
        let probe = async {
            let t = Timeouts { wait: Some(timeout), create: Some(timeout), recycle: Some(timeout) };
            let conn = self.probe.timeout_get(&t).await.map_err(|e| e.to_string())?;
            conn.simple_query("SELECT 1").await.map(|_| ()).map_err(|e| e.to_string())
        };
        tokio::time::timeout(timeout, probe).await.unwrap_or_else(|_| Err("no answer in time".to_string()))
    }
}

/// One statement of a read: SQL with its bound parameters and their types (the types are
/// given so that no separate prepare round trip is needed).
pub struct Stmt<'a> {
    pub sql: &'a str,
    pub params: &'a [(&'a (dyn ToSql + Sync), Type)],
    /// Prepared once per tenant and connection and kept (see the module documentation).
    pub prepare: bool,
}

impl<'a> Stmt<'a> {
    /// A statement without parameters.
    pub const fn plain(sql: &'a str) -> Stmt<'a> {
        Stmt { sql, params: &[], prepare: false }
    }

    pub const fn with(sql: &'a str, params: &'a [(&'a (dyn ToSql + Sync), Type)]) -> Stmt<'a> {
        Stmt { sql, params, prepare: false }
    }

    /// A statement whose planning costs more than its execution (the search): prepared once per
    /// tenant on the connections of the tenant's own shard, then executed from the statement
    /// cache with its plan kept.
    pub const fn prepared(sql: &'a str, params: &'a [(&'a (dyn ToSql + Sync), Type)]) -> Stmt<'a> {
        Stmt { sql, params, prepare: true }
    }
}

/// The text under which a [`Stmt::prepared`] statement of tenant `schema` is prepared and cached:
/// the SQL behind a comment naming the tenant, so that no tenant ever executes a statement
/// prepared in another tenant's transaction. `None` (run it unnamed) for a schema name that is not
/// plain lower-case letters, digits and underscores (`Site::check` allows no other anyway).
pub fn prepared_text(schema: &str, sql: &str) -> Option<String> {
    let plain = !schema.is_empty() && schema.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_');
    plain.then(|| format!("/* tenant {schema} */ {sql}"))
}

/// A pooled connection that goes back to the pool only when [`Lease::release`] says it is
/// clean; dropped any other way it is closed instead.
pub struct Lease(Option<Conn>);

impl Lease {
    pub fn new(conn: Conn) -> Lease {
        Lease(Some(conn))
    }

    pub fn client(&self) -> &ClientWrapper {
        &self.0.as_ref().expect("a lease holds its connection until released").obj
    }

    /// Whether the connection belongs to the tenant's own shard (see [`Conn::is_home`]).
    pub fn is_home(&self) -> bool {
        self.0.as_ref().is_some_and(Conn::is_home)
    }

    /// The connection is outside any transaction: back to the pool.
    pub fn release(mut self) {
        drop(self.0.take());
    }
}

impl Drop for Lease {
    fn drop(&mut self) {
        if let Some(conn) = self.0.take() {
            // Detach from the pool; dropping the client aborts its connection task, which
            // closes the socket.
            drop(Object::take(conn.obj));
        }
    }
}

/// The simple-query batch that opens the tenant's transaction with the read limits. `schema`
/// is a validated identifier (see `Site::check`) and is quoted anyway.
pub fn setup_sql(schema: &str, limits: &ReadLimits) -> String {
    setup_sql_as(schema, limits, "BEGIN READ ONLY")
}

/// As [`setup_sql`], opening the transaction with `begin`.
fn setup_sql_as(schema: &str, limits: &ReadLimits, begin: &str) -> String {
    let q = ident(schema);
    format!(
        "{begin}; SET LOCAL ROLE {q}; SET LOCAL search_path = {q}, portalctl_ext; \
         SET LOCAL statement_timeout = {}; SET LOCAL lock_timeout = {}",
        limits.statement_timeout.as_millis().max(1),
        limits.lock_timeout.as_millis().max(1)
    )
}

/// Run `stmts` as tenant `schema` (its role and search_path) in one read-only transaction, in
/// one round trip (two when a [`Stmt::prepared`] statement is new on the connection); the rows
/// of each statement, in order.
pub async fn read(pools: &Pools, schema: &str, stmts: &[Stmt<'_>]) -> Result<Vec<Vec<Row>>> {
    let lease = Lease::new(pools.get(schema).await?);
    let rows = pipeline(lease.client(), schema, pools.limits(), stmts, lease.is_home()).await?;
    lease.release();
    Ok(rows)
}

/// Run `stmts` as tenant `schema` in one read-write transaction, in one round trip, exactly
/// like [`read`] otherwise (the tenant's role and search_path, the limits, the connection
/// closed after any error). For the few writes of the public portal (citizens' feedback).
pub async fn write(pools: &Pools, schema: &str, stmts: &[Stmt<'_>]) -> Result<Vec<Vec<Row>>> {
    let lease = Lease::new(pools.get(schema).await?);
    let setup = setup_sql_as(schema, pools.limits(), "BEGIN READ WRITE");
    let rows = run(lease.client(), schema, &setup, stmts, false).await?;
    lease.release();
    Ok(rows)
}

/// The pipeline itself on one client: setup, statements, COMMIT; every part must succeed.
/// `cache`: use the connection's statement cache for [`Stmt::prepared`] statements.
pub async fn pipeline(
    client: &ClientWrapper,
    schema: &str,
    limits: &ReadLimits,
    stmts: &[Stmt<'_>],
    cache: bool,
) -> Result<Vec<Vec<Row>>> {
    run(client, schema, &setup_sql(schema, limits), stmts, cache).await
}

/// [`pipeline`] with the transaction's opening batch `setup`.
async fn run(
    client: &ClientWrapper,
    schema: &str,
    setup: &str,
    stmts: &[Stmt<'_>],
    cache: bool,
) -> Result<Vec<Vec<Row>>> {
    let texts: Vec<Option<String>> =
        stmts.iter().map(|s| if s.prepare && cache { prepared_text(schema, s.sql) } else { None }).collect();
    // `join!` and `join_all` poll their futures in order, and each future writes its messages
    // on its first poll: the order on the wire is setup, (Parse of statements new on this
    // connection,) statements, COMMIT. A cached statement is ready at once, so with all of them
    // cached everything is written before the first reply is read.
    let statements = async {
        let prepared = join_all(stmts.iter().zip(&texts).map(|(s, text)| async move {
            match text {
                Some(text) => {
                    let types: Vec<Type> = s.params.iter().map(|(_, t)| t.clone()).collect();
                    client.prepare_typed_cached(text, &types).await.map(Some)
                }
                None => Ok(None),
            }
        }))
        .await
        .into_iter()
        .collect::<Result<Vec<_>, _>>()?;
        let (results, commit) = futures::join!(
            join_all(stmts.iter().zip(prepared).map(|(s, prepared)| async move {
                match prepared {
                    Some(statement) => {
                        let values: Vec<&(dyn ToSql + Sync)> = s.params.iter().map(|(v, _)| *v).collect();
                        client.query(&statement, &values).await
                    }
                    None => client.query_typed(s.sql, s.params).await,
                }
            })),
            client.batch_execute("COMMIT"),
        );
        Ok::<_, Error>((results, commit))
    };
    let (begin, rest) = futures::join!(client.batch_execute(setup), statements);
    begin?;
    let (results, commit) = rest?;
    let rows = results.into_iter().collect::<Result<Vec<_>, _>>()?;
    commit?;
    Ok(rows)
}

#[cfg(test)]
mod tests {
    #[test]
    fn shards_split_the_connections_and_tenants_stay_put() {
        let sizes = std::cell::RefCell::new(Vec::new());
        let make = |n: usize| {
            sizes.borrow_mut().push(n);
            let cfg: tokio_postgres::Config = "postgres://x@127.0.0.1/x".parse().unwrap();
            let mgr = deadpool_postgres::Manager::new(cfg, tokio_postgres::NoTls);
            deadpool_postgres::Pool::builder(mgr).max_size(n).build().map_err(|e| e.to_string())
        };
        let pools = super::Pools::new(make, 17, Default::default()).unwrap();
        assert_eq!(pools.shards(), 8);
        assert_eq!(sizes.borrow().iter().sum::<usize>(), 17 + 1, "the shards and the probe's own connection");
        assert_eq!(super::Pools::new(make, 1, Default::default()).unwrap().shards(), 1);
        assert_eq!(pools.shard_of("t_aachen"), pools.shard_of("t_aachen"));
        let used: std::collections::HashSet<usize> = (0..100).map(|i| pools.shard_of(&format!("t_{i}"))).collect();
        assert_eq!(used.len(), 8, "tenants spread over all shards");
    }

    #[test]
    fn setup_quotes_the_schema() {
        let limits = super::ReadLimits::default();
        assert_eq!(
            super::setup_sql("t_a", &limits),
            "BEGIN READ ONLY; SET LOCAL ROLE \"t_a\"; SET LOCAL search_path = \"t_a\", portalctl_ext; \
             SET LOCAL statement_timeout = 5000; SET LOCAL lock_timeout = 1000"
        );
        assert!(super::setup_sql("x\"y", &limits).contains("\"x\"\"y\""));
    }
}
