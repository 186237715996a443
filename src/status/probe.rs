//! The IO edge of go-live status: ask the database, the cluster, DNS and the portal itself, and turn the answers into
//! [`Observation`]s. One query per source for the whole selection where the source allows it (one LIST per kind, one
//! connection for all schemas); the rest bounded-concurrent.

use super::report::HistoryEntry;
use super::{Check, Mode, Observation, Phase, TenantStatus};
use crate::db::{self, TenantDb};
use crate::dns::{self, Target};
use crate::tenant::Tenant;
use futures::stream::{self, StreamExt};
use std::collections::HashMap;
use std::net::SocketAddr;
use std::time::Duration;

/// Tenants whose database queries are in flight at once on the one connection (tokio-postgres pipelines them).
const DB_PIPELINE: usize = 32;

/// What the cluster says about one tenant (gathered by the caller with one LIST per kind).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClusterFacts {
    /// Passed when the tenant's objects exist and its Deployment is available.
    pub deployed: Check,
    /// The address the tenant's Ingress got from the load balancer, if any.
    pub ingress_address: Option<String>,
}

/// How to reach the portals' public side (only `/` is asked there).
#[derive(Debug, Clone)]
pub enum PortalAccess {
    /// `https://<hostname>/`, resolved through DNS, certificate checked: what citizens do.
    Https,
    /// Plain HTTP to this address with the tenant's hostname in the Host header (tests).
    Direct(SocketAddr),
    /// The local mode of `portalctl up`: plain HTTP to this address with the tenant's hostname in
    /// the Host header, no DNS; the server's operations listener ([`Sources::ops`]) saying it
    /// serves the tenant is the rung `deployed` ("running locally").
    Local(SocketAddr),
}

/// Where the probes look.
#[derive(Debug, Clone)]
pub struct Sources {
    pub db: Option<db::connect::ConnectOptions>,
    /// Name servers for DNS checks (empty: the system resolver).
    pub nameservers: Vec<SocketAddr>,
    /// Where hostnames must point when the cluster does not say (an override).
    pub ingress: Option<Target>,
    pub portal: PortalAccess,
    /// `HOST:PORT` of a portal server's operations listener, where the identity of each hostname
    /// is asked (`/.well-known/portalctl/identity?host=<hostname>`). It is never public: in a
    /// cluster reach it through `kubectl port-forward svc/portal <port>:ops` or from a namespace
    /// the NetworkPolicy admits. `None`: the identity is not asked, and `reachable` stays unknown.
    pub ops: Option<String>,
    pub timeout: Duration,
    pub concurrency: usize,
}

/// The identity a portal's operations listener reports for a hostname at `/.well-known/portalctl/identity`.
#[derive(Debug, Clone, serde::Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Identity {
    pub tenant: String,
}

/// A source that could not be asked at all (not one tenant's problem): reported once, and the
/// command exits with [`crate::exit_codes::Exit::Unavailable`].
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "camelCase")]
pub struct SourceProblem {
    /// `database`, `cluster`, `portal`.
    pub source: &'static str,
    /// The cause and what to do, in one line.
    pub message: String,
}

/// How long the sources of one [`observe`] took (wall time), and the sources that failed as a whole.
#[derive(Debug, Clone, Default)]
pub struct Timings {
    /// Every tenant's database checks.
    pub database: Duration,
    /// DNS and portal checks of every tenant.
    pub dns_and_portal: Duration,
    /// Sources that could not be asked, each once.
    pub problems: Vec<SourceProblem>,
}

/// Observe every tenant. `cluster` is `None` when no cluster was asked (then `deployed` is unknown, and with it every
/// rung above it).
pub async fn observe(
    tenants: &[&Tenant],
    sources: &Sources,
    cluster: Option<&HashMap<String, ClusterFacts>>,
    cluster_problem: Option<&str>,
) -> (Vec<Observation>, Timings) {
    // The database and the DNS/portal checks do not depend on each other: both at once.
    let ((db_facts, audits, database, db_problem), (reached, dns_and_portal)) =
        tokio::join!(database_facts(tenants, sources), reachability(tenants, sources, cluster));
    let local = matches!(sources.portal, PortalAccess::Local(_));
    let mut problems: Vec<SourceProblem> = db_problem.into_iter().collect();
    // The operations listener failing for every tenant is one problem of the source.
    if let Some(ops) = &sources.ops {
        let down = |c: &Check| matches!(c, Check::Unknown(w) if w.contains("operations listener"));
        if !reached.is_empty() && reached.iter().all(|(d, r)| down(d) || down(r)) {
            problems.push(SourceProblem {
                source: "portal",
                message: if local {
                    format!(
                        "the local portal server does not answer on its operations listener {ops}; start it with \
                         `portalctl up`"
                    )
                } else {
                    format!("the operations listener {ops} does not answer; check --ops-address (port-forward?)")
                },
            });
        }
    }
    let observations = tenants
        .iter()
        .zip(reached)
        .map(|(t, (deployed_locally, reachable))| {
            let db = db_facts.get(&t.slug);
            let mut o = Observation::unknown("");
            o.mode = if local { Mode::Local } else { Mode::Cluster };
            // provisioned
            o.provisioned = match db {
                None => Check::Unknown("database: not asked (no --database-url)".into()),
                Some(Err(e)) => Check::Unknown(e.clone()),
                Some(Ok(s)) if !s.schema_exists => Check::Fail(format!("database: schema {} does not exist", s.schema)),
                Some(Ok(s)) if !s.role_exists => Check::Fail(format!("database: role {} does not exist", s.schema)),
                Some(Ok(s)) if !s.current => Check::Fail(format!(
                    "database: schema {} at migration {} of {}",
                    s.schema,
                    s.version.unwrap_or(0),
                    s.latest
                )),
                Some(Ok(_)) => Check::Pass,
            };
            let published =
                db.and_then(|r| r.as_ref().ok()).and_then(|s| s.published).map(|p| p.services.max(0) as u64);
            o.published_services = published;
            // deployed (in local mode: the local server serves the tenant)
            o.deployed = match (cluster.and_then(|c| c.get(&t.slug)), cluster_problem) {
                _ if local => deployed_locally,
                (Some(f), _) => f.deployed.clone(),
                (None, Some(p)) => Check::Unknown(p.to_string()),
                (None, None) => Check::Unknown("cluster: not asked".into()),
            };
            // reachable: DNS to the ingress, then the portal answers as this tenant
            o.reachable = reachable;
            // content-ready
            o.content_ready = match published {
                None => Check::Unknown("content: database not asked".into()),
                Some(n) if n >= u64::from(t.content_threshold) => Check::Pass,
                Some(n) => Check::Fail(format!("content: {n} of {} services published", t.content_threshold)),
            };
            // compliant: legal pages complete, the last accessibility audit clean and not older than the last
            // publish (the latest change to a published service)
            let asked = db.is_some_and(|r| r.is_ok());
            o.last_published_at =
                db.and_then(|r| r.as_ref().ok()).and_then(|s| s.published).and_then(|p| p.last_change);
            // The latest accessibility audit (`portalctl audit`, recorded in `portalctl.audit`).
            o.audit = audits.get(&t.slug).cloned();
            o.compliance_blockers = super::compliance_blockers(t, o.audit.as_ref(), o.last_published_at);
            o.compliant = match super::compliance(&o.compliance_blockers) {
                Check::Pass if !asked => Check::Unknown("a11y: last publish not known (database not asked)".into()),
                c => c,
            };
            // live
            o.live = if t.published {
                Check::Pass
            } else {
                Check::Fail("go-live: not published yet (goLive.published in the tenant file)".into())
            };
            o
        })
        .collect();
    (observations, Timings { database, dns_and_portal, problems })
}

/// Each tenant's database state, by slug.
type TenantFacts = HashMap<String, Result<db::status::TenantStatus, String>>;

/// Every tenant's database state: one connection, one query for what exists, the rest pipelined; then the latest
/// accessibility audit of each (one query). A database that cannot be reached is one [`SourceProblem`]; its tenants
/// say only "unreachable".
async fn database_facts(
    tenants: &[&Tenant],
    sources: &Sources,
) -> (TenantFacts, HashMap<String, super::AuditFact>, Duration, Option<SourceProblem>) {
    let started = std::time::Instant::now();
    let mut problem = None;
    let mut audits = HashMap::new();
    let facts = match &sources.db {
        None => HashMap::new(),
        Some(opts) => match opts.connect().await {
            Err(e) => {
                problem = Some(SourceProblem { source: "database", message: e.to_string() });
                tenants.iter().map(|t| (t.slug.clone(), Err("database: unreachable".to_string()))).collect()
            }
            Ok(client) => {
                let dbs: Vec<Result<TenantDb, String>> =
                    tenants.iter().map(|t| TenantDb::from_tenant(t).map_err(|e| format!("database: {e}"))).collect();
                let valid: Vec<TenantDb> = dbs.iter().filter_map(|d| d.as_ref().ok().cloned()).collect();
                let mut by_slug: HashMap<String, Result<db::status::TenantStatus, String>> =
                    match db::status::tenants_status(&client, &valid, DB_PIPELINE).await {
                        Ok(all) => valid
                            .iter()
                            .zip(all)
                            .map(|(t, r)| (t.slug.clone(), r.map_err(|e| format!("database: {e}"))))
                            .collect(),
                        Err(e) => valid.iter().map(|t| (t.slug.clone(), Err(format!("database: {e}")))).collect(),
                    };
                for (t, d) in tenants.iter().zip(dbs) {
                    if let Err(e) = d {
                        by_slug.insert(t.slug.clone(), Err(e));
                    }
                }
                // A read error leaves the audits out (`compliant` then says "no accessibility audit yet").
                let slugs: Vec<&str> = tenants.iter().map(|t| t.slug.as_str()).collect();
                match crate::audit::record::latest(&client, &slugs).await {
                    Ok(a) => audits = a,
                    Err(e) => tracing::warn!(error = %e, "cannot read the accessibility audits"),
                }
                by_slug
            }
        },
    };
    (facts, audits, started.elapsed(), problem)
}

/// Every tenant's `reachable` check (DNS to the ingress, the public portal answering `/`, then the identity on the
/// operations listener), bounded-concurrent, in order. In local mode each tenant's pair is (served by the local
/// server, its home page answers); otherwise the first of the pair is unused.
async fn reachability(
    tenants: &[&Tenant],
    sources: &Sources,
    cluster: Option<&HashMap<String, ClusterFacts>>,
) -> (Vec<(Check, Check)>, Duration) {
    let started = std::time::Instant::now();
    let resolver = dns::resolver(&sources.nameservers).ok();
    let http = reqwest::Client::builder().timeout(sources.timeout).redirect(reqwest::redirect::Policy::none()).build();
    let checks = stream::iter(tenants.iter().copied())
        .map(|t| {
            let target = cluster
                .and_then(|c| c.get(&t.slug))
                .and_then(|f| f.ingress_address.as_deref())
                .and_then(|a| Target::parse(a).ok())
                .or_else(|| sources.ingress.clone());
            let resolver = resolver.as_ref();
            let http = http.as_ref().ok();
            async move {
                match (&sources.portal, http) {
                    (PortalAccess::Local(addr), Some(http)) => {
                        local_checks(t, http, *addr, sources.ops.as_deref()).await
                    }
                    _ => (
                        Check::Unknown(String::new()),
                        reachable(t, target.as_ref(), resolver, http, &sources.portal, sources.ops.as_deref()).await,
                    ),
                }
            }
        })
        .buffered(sources.concurrency.max(1))
        .collect()
        .await;
    (checks, started.elapsed())
}

async fn reachable(
    t: &Tenant,
    target: Option<&Target>,
    resolver: Option<&hickory_resolver::TokioResolver>,
    http: Option<&reqwest::Client>,
    access: &PortalAccess,
    ops: Option<&str>,
) -> Check {
    let Some(target) = target else {
        return Check::Unknown("DNS: the ingress has no address yet".into());
    };
    let Some(resolver) = resolver else {
        return Check::Unknown("DNS: no resolver".into());
    };
    let records = dns::plan([t], target);
    for r in dns::check(resolver, &records).await {
        if let Some(p) = r.problem {
            return Check::Fail(p);
        }
    }
    let Some(http) = http else {
        return Check::Unknown("portal: no HTTP client".into());
    };
    let host = t.primary_hostname();
    // The public side, as citizens reach it: the home page answers (a host no tenant claims gets 404).
    let mut req = match access {
        PortalAccess::Https => http.get(format!("https://{host}/")),
        PortalAccess::Direct(addr) | PortalAccess::Local(addr) => {
            http.get(format!("http://{addr}/")).header(reqwest::header::HOST, host)
        }
    };
    req = req.header(reqwest::header::ACCEPT, "text/html");
    match req.send().await {
        Err(e) if e.is_connect() && format!("{e:?}").contains("certificate") => {
            return Check::Fail(format!("TLS: certificate of {host} not valid"));
        }
        Err(e) if e.is_timeout() => return Check::Fail(format!("portal: {host} did not answer in time")),
        Err(e) => return Check::Fail(format!("portal: {host} not reachable ({})", root_cause(&e))),
        Ok(resp) if !resp.status().is_success() => {
            return Check::Fail(format!("portal: {host} answers {} for its home page", resp.status()));
        }
        Ok(_) => {}
    }
    // Which tenant the server takes the hostname for: asked on the operations listener.
    let Some(ops) = ops else {
        return Check::Unknown(format!("portal: identity of {host} not asked (no --ops-address)"));
    };
    let url = format!("http://{ops}{}", crate::portal::ops::IDENTITY_PATH);
    match http.get(&url).query(&[("host", host)]).send().await {
        Err(e) if e.is_timeout() => Check::Unknown(format!("portal: operations listener {ops} did not answer in time")),
        Err(e) => Check::Unknown(format!("portal: operations listener {ops} not reachable ({})", root_cause(&e))),
        Ok(resp) if resp.status() == reqwest::StatusCode::NOT_FOUND => {
            Check::Fail(format!("portal: the server at {ops} serves no tenant at {host}"))
        }
        Ok(resp) if !resp.status().is_success() => {
            Check::Fail(format!("portal: {ops} answers {} for the identity of {host}", resp.status()))
        }
        Ok(resp) => match resp.json::<Identity>().await {
            Ok(id) if id.tenant == t.slug => Check::Pass,
            Ok(id) => Check::Fail(format!("portal: {host} answers as tenant {}", id.tenant)),
            Err(_) => Check::Fail(format!("portal: {ops} does not serve a portal identity")),
        },
    }
}

/// Local mode: (`deployed`: the local server's operations listener names this tenant for its
/// hostname, `reachable`: the home page answers on the public listener). No DNS, no TLS.
async fn local_checks(t: &Tenant, http: &reqwest::Client, public: SocketAddr, ops: Option<&str>) -> (Check, Check) {
    let host = t.primary_hostname();
    let served = match ops {
        None => Check::Unknown("local: the operations listener is not known".into()),
        Some(ops) => {
            let url = format!("http://{ops}{}", crate::portal::ops::IDENTITY_PATH);
            match http.get(&url).query(&[("host", host)]).send().await {
                Err(_) => Check::Unknown(format!("local: operations listener {ops} not reachable")),
                Ok(resp) if resp.status() == reqwest::StatusCode::NOT_FOUND => Check::Fail(format!(
                    "local: the local server does not serve {host} yet (database not set up? run `portalctl up`)"
                )),
                Ok(resp) if !resp.status().is_success() => {
                    Check::Fail(format!("local: {ops} answers {} for the identity of {host}", resp.status()))
                }
                Ok(resp) => match resp.json::<Identity>().await {
                    Ok(id) if id.tenant == t.slug => Check::Pass,
                    Ok(id) => Check::Fail(format!("local: {host} is served as tenant {}", id.tenant)),
                    Err(_) => Check::Fail(format!("local: {ops} does not serve a portal identity")),
                },
            }
        }
    };
    let home = http
        .get(format!("http://{public}/"))
        .header(reqwest::header::HOST, host)
        .header(reqwest::header::ACCEPT, "text/html")
        .send()
        .await;
    let reachable = match home {
        Err(e) if e.is_timeout() => Check::Fail(format!("portal: {host} did not answer in time")),
        Err(e) => Check::Fail(format!("portal: {public} not reachable ({})", root_cause(&e))),
        Ok(resp) if !resp.status().is_success() => {
            Check::Fail(format!("portal: {host} answers {} for its home page", resp.status()))
        }
        Ok(_) => Check::Pass,
    };
    (served, reachable)
}

fn root_cause(e: &(dyn std::error::Error + 'static)) -> String {
    let mut cur = e;
    while let Some(next) = cur.source() {
        cur = next;
    }
    cur.to_string()
}

/// Record the phase each tenant reached (and every phase below it) in `portalctl.phase_history`, keeping the first
/// time each was seen. Returns the whole history of these tenants.
pub async fn record_history(
    db: &db::connect::ConnectOptions,
    statuses: &[TenantStatus],
) -> Result<Vec<HistoryEntry>, db::Error> {
    let client = db.connect().await?;
    let exists: bool = client
        .query_one("SELECT to_regclass('portalctl.phase_history') IS NOT NULL", &[])
        .await
        .map_err(db::Error::query("looking for portalctl.phase_history"))?
        .get(0);
    if !exists {
        return Ok(Vec::new());
    }
    // Every (tenant, phase) pair reached, in one statement.
    let (slugs, phases): (Vec<&str>, Vec<&str>) = statuses
        .iter()
        .flat_map(|s| {
            Phase::ALL
                .into_iter()
                .filter(move |p| *p > Phase::Declared && *p <= s.phase)
                .map(move |p| (s.tenant.as_str(), p.as_str()))
        })
        .unzip();
    client
        .execute(
            "INSERT INTO portalctl.phase_history (slug, phase) SELECT * FROM unnest($1::text[], $2::text[])
             ON CONFLICT DO NOTHING",
            &[&slugs, &phases],
        )
        .await
        .map_err(db::Error::query("recording phases in portalctl.phase_history"))?;
    let slugs: Vec<&str> = statuses.iter().map(|s| s.tenant.as_str()).collect();
    let rows = client
        .query(
            "SELECT slug, phase, to_char(reached_at AT TIME ZONE 'UTC', 'YYYY-MM-DD') FROM portalctl.phase_history
             WHERE slug = ANY($1) ORDER BY reached_at, slug, phase",
            &[&slugs],
        )
        .await
        .map_err(db::Error::query("reading portalctl.phase_history"))?;
    Ok(rows
        .iter()
        .filter_map(|r| {
            let phase = Phase::parse(r.get::<_, &str>(1))?;
            Some(HistoryEntry { tenant: r.get(0), phase, reached_at: r.get(2) })
        })
        .collect())
}
