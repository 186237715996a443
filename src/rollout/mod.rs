//! Rollout in waves: provision, deploy and verify every tenant of a group, pilots first.
//!
//! The engine is generic over an [`Executor`] that does the actual work (database, cluster, checks), so that the
//! orchestration — wave order, gates, bounded concurrency, failure budget, pause — is one piece of code whatever
//! the executor talks to.
//!
//! **Resumability by re-derivation:** every step is idempotent (provisioning converges, server-side apply of the same
//! objects is a no-op), so a rollout that was interrupted — Ctrl-C or `kill -9` at any point — is simply run again:
//! tenants already done cost a no-op each, nothing is duplicated, and nothing depends on a local journal that could be
//! lost or stale. The gate of a wave never trusts stored status: it re-checks the earlier waves' tenants now, after
//! their latest apply.

use crate::status::Check;
use crate::tenant::{Group, Tenant};
use futures::stream::{self, StreamExt};
use serde::Serialize;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// The steps of one tenant, in order.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Step {
    Provision,
    Apply,
    Verify,
}

impl Step {
    pub fn as_str(self) -> &'static str {
        match self {
            Step::Provision => "provision",
            Step::Apply => "apply",
            Step::Verify => "verify",
        }
    }
}

/// What does the work for each tenant. Implementations must make every method idempotent.
pub trait Executor: Sync {
    /// Create the tenant's schema and role and bring migrations up to date.
    fn provision(&self, tenant: &Tenant) -> impl std::future::Future<Output = Result<(), String>> + Send;
    /// Apply the tenant's Kubernetes objects (and the group's shared ones).
    fn apply(&self, tenant: &Tenant) -> impl std::future::Future<Output = Result<(), String>> + Send;
    /// Check, now, that the tenant is deployed and healthy.
    fn verify(&self, tenant: &Tenant) -> impl std::future::Future<Output = Check> + Send;
    /// Whether the group is paused (a persisted flag).
    fn paused(&self, group: &Group) -> impl std::future::Future<Output = Result<bool, String>> + Send;
}

/// How to roll out.
#[derive(Debug, Clone)]
pub struct Options {
    /// Tenants worked on at once within a wave.
    pub concurrency: usize,
    /// Stop starting new tenants once more than this many failed (in-flight ones finish).
    pub max_failures: usize,
    /// Only this wave (earlier waves still gate it).
    pub only_wave: Option<String>,
    /// Skip the gates.
    pub force: bool,
}

impl Default for Options {
    fn default() -> Self {
        Options { concurrency: 4, max_failures: 0, only_wave: None, force: false }
    }
}

/// How one tenant ended.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "result", rename_all = "kebab-case")]
pub enum Outcome {
    /// All steps done, verified healthy.
    Done,
    /// A step failed.
    Failed { step: Step, error: String },
    /// Not started (failure budget exhausted, gate held, paused).
    NotStarted { reason: String },
}

#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct TenantResult {
    pub tenant: String,
    pub wave: String,
    #[serde(flatten)]
    pub outcome: Outcome,
    pub seconds: f64,
    /// When each step ran, relative to the start of the rollout: where the time went.
    pub steps: Vec<StepTiming>,
}

/// One step of one tenant: when it started (seconds since the rollout started) and how long it took. `verify` is
/// waiting for the cluster (readiness); `provision` and `apply` are work.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct StepTiming {
    pub step: Step,
    pub started_at: f64,
    pub seconds: f64,
}

/// Why a rollout stopped before the end.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "kind", rename_all = "kebab-case")]
pub enum Halt {
    /// The group is paused.
    Paused,
    /// A wave's gate did not open.
    Gate { wave: String, waiting_for: Vec<String>, reasons: Vec<String> },
    /// More tenants failed than allowed.
    FailureBudget { failed: usize, allowed: usize },
}

#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Report {
    pub group: String,
    pub results: Vec<TenantResult>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub halted: Option<Halt>,
    pub seconds: f64,
    /// Where the time went (filled in at the end of the run).
    pub breakdown: Breakdown,
}

impl Report {
    pub fn failed(&self) -> usize {
        self.results.iter().filter(|r| matches!(r.outcome, Outcome::Failed { .. })).count()
    }

    pub fn done(&self) -> usize {
        self.results.iter().filter(|r| r.outcome == Outcome::Done).count()
    }

    /// Success means: nothing failed and nothing halted.
    pub fn success(&self) -> bool {
        self.failed() == 0 && self.halted.is_none()
    }
}

/// Where a rollout's time went. `working` is the wall time during which at least one tenant was being provisioned or
/// applied; `waiting` is the rest (only readiness waits, gate checks or nothing in flight). The per-step sums are
/// tenant-seconds (they overlap when tenants run concurrently).
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Breakdown {
    pub wall: f64,
    pub working: f64,
    pub waiting: f64,
    pub gates: f64,
    pub provision: f64,
    pub apply: f64,
    pub verify: f64,
}

impl Breakdown {
    /// Where the wall time went (pure; from the step timings), given the time spent at the gates.
    pub fn of(results: &[TenantResult], wall: f64, gates: f64) -> Breakdown {
        let mut b = Breakdown { wall, gates, ..Breakdown::default() };
        let mut work: Vec<(f64, f64)> = Vec::new();
        for s in results.iter().flat_map(|r| &r.steps) {
            match s.step {
                Step::Provision => b.provision += s.seconds,
                Step::Apply => b.apply += s.seconds,
                Step::Verify => b.verify += s.seconds,
            }
            if s.step != Step::Verify {
                work.push((s.started_at, s.started_at + s.seconds));
            }
        }
        work.sort_by(|a, b| a.0.total_cmp(&b.0));
        let mut covered = 0.0;
        let mut current: Option<(f64, f64)> = None;
        for (start, end) in work {
            current = match current {
                Some((s, e)) if start <= e => Some((s, e.max(end))),
                Some((s, e)) => {
                    covered += e - s;
                    Some((start, end))
                }
                None => Some((start, end)),
            };
        }
        if let Some((s, e)) = current {
            covered += e - s;
        }
        b.working = covered.min(b.wall);
        b.waiting = (b.wall - b.working).max(0.0);
        b
    }
}

/// Progress events, for a progress bar or a plain log.
#[derive(Debug, Clone)]
pub enum Event<'a> {
    WaveStarted { wave: &'a str, tenants: usize },
    GateChecked { wave: &'a str, open: bool },
    TenantStarted { tenant: &'a str },
    StepStarted { tenant: &'a str, step: Step },
    TenantFinished { result: &'a TenantResult },
    WaveFinished { wave: &'a str },
}

/// The waves of a group with their tenants, in rollout order (pure). Waves without tenants are kept, empty.
pub fn plan<'a>(group: &'a Group, tenants: &[&'a Tenant]) -> Vec<(&'a str, Vec<&'a Tenant>)> {
    group
        .waves
        .iter()
        .map(|w| (w.name.as_str(), tenants.iter().copied().filter(|t| t.wave == w.name).collect()))
        .collect()
}

/// Roll the tenants of one group out, wave by wave.
pub async fn run<E: Executor>(
    exec: &E,
    group: &Group,
    tenants: &[&Tenant],
    opts: &Options,
    on_event: &(dyn Fn(Event) + Sync),
) -> Report {
    let started = Instant::now();
    let mut report = Report {
        group: group.name.clone(),
        results: Vec::new(),
        halted: None,
        seconds: 0.0,
        breakdown: Breakdown::default(),
    };
    let mut gates = 0.0;
    let waves = plan(group, tenants);
    let failed = AtomicUsize::new(0);
    for (i, (wave, members)) in waves.iter().enumerate() {
        if opts.only_wave.as_ref().is_some_and(|w| w != wave) {
            continue;
        }
        match exec.paused(group).await {
            Ok(false) => {}
            Ok(true) => {
                report.halted = Some(Halt::Paused);
                break;
            }
            Err(e) => {
                report.halted = Some(Halt::Gate {
                    wave: wave.to_string(),
                    waiting_for: vec![],
                    reasons: vec![format!("cannot read the pause flag: {e}")],
                });
                break;
            }
        }
        // Gate: every tenant of the earlier waves is deployed and healthy, checked now.
        if i > 0 && !opts.force {
            let gate_started = Instant::now();
            let earlier: Vec<&Tenant> = waves[..i].iter().flat_map(|(_, m)| m.iter().copied()).collect();
            let n = earlier.len();
            let checks: Vec<(String, Check)> = stream::iter(earlier)
                // Readiness checks only read; all of them at once share the executor's polls.
                .map(|t| async move { (t.slug.clone(), exec.verify(t).await) })
                .buffer_unordered(n.max(1))
                .collect()
                .await;
            let mut waiting: Vec<(String, String)> = checks
                .into_iter()
                .filter_map(|(slug, c)| match c {
                    Check::Pass => None,
                    Check::Fail(why) | Check::Unknown(why) => Some((slug, why)),
                })
                .collect();
            waiting.sort();
            gates += gate_started.elapsed().as_secs_f64();
            on_event(Event::GateChecked { wave, open: waiting.is_empty() });
            if !waiting.is_empty() {
                report.halted = Some(Halt::Gate {
                    wave: wave.to_string(),
                    waiting_for: waiting.iter().map(|(s, _)| s.clone()).collect(),
                    reasons: waiting.iter().map(|(s, w)| format!("{s}: {w}")).collect(),
                });
                break;
            }
        }
        on_event(Event::WaveStarted { wave, tenants: members.len() });
        let results = Mutex::new(Vec::new());
        // `concurrency` bounds the work (provision and apply); a tenant waiting for readiness holds no slot, so
        // the waits of a wave run together and the executor can read them in shared polls.
        let slots = tokio::sync::Semaphore::new(opts.concurrency.max(1));
        stream::iter(members.iter().copied())
            .map(|t| {
                let failed = &failed;
                let results = &results;
                let slots = &slots;
                async move {
                    // FIFO: tenants start in plan order.
                    let slot = slots.acquire().await.expect("the semaphore is never closed");
                    let t0 = Instant::now();
                    let mut steps = Vec::new();
                    let outcome = if failed.load(Ordering::SeqCst) > opts.max_failures {
                        Outcome::NotStarted { reason: "failure budget exhausted".into() }
                    } else {
                        on_event(Event::TenantStarted { tenant: &t.slug });
                        let o = one(exec, t, started, &mut steps, on_event, slot).await;
                        if matches!(o, Outcome::Failed { .. }) {
                            failed.fetch_add(1, Ordering::SeqCst);
                        }
                        o
                    };
                    let r = TenantResult {
                        tenant: t.slug.clone(),
                        wave: t.wave.clone(),
                        outcome,
                        seconds: t0.elapsed().as_secs_f64(),
                        steps,
                    };
                    on_event(Event::TenantFinished { result: &r });
                    results.lock().unwrap().push(r);
                }
            })
            .buffer_unordered(members.len().max(1))
            .collect::<()>()
            .await;
        let mut results = results.into_inner().unwrap();
        results.sort_by(|a, b| a.tenant.cmp(&b.tenant));
        report.results.extend(results);
        on_event(Event::WaveFinished { wave });
        let n = failed.load(Ordering::SeqCst);
        if n > opts.max_failures {
            report.halted = Some(Halt::FailureBudget { failed: n, allowed: opts.max_failures });
            break;
        }
    }
    report.seconds = started.elapsed().as_secs_f64();
    report.breakdown = Breakdown::of(&report.results, report.seconds, gates);
    report
}

async fn one<E: Executor>(
    exec: &E,
    t: &Tenant,
    rollout_started: Instant,
    steps: &mut Vec<StepTiming>,
    on_event: &(dyn Fn(Event) + Sync),
    slot: tokio::sync::SemaphorePermit<'_>,
) -> Outcome {
    let mut timed = |step: Step, at: Instant| {
        steps.push(StepTiming {
            step,
            started_at: (at - rollout_started).as_secs_f64(),
            seconds: at.elapsed().as_secs_f64(),
        })
    };
    on_event(Event::StepStarted { tenant: &t.slug, step: Step::Provision });
    let at = Instant::now();
    let provisioned = exec.provision(t).await;
    timed(Step::Provision, at);
    if let Err(error) = provisioned {
        return Outcome::Failed { step: Step::Provision, error };
    }
    on_event(Event::StepStarted { tenant: &t.slug, step: Step::Apply });
    let at = Instant::now();
    let applied = exec.apply(t).await;
    timed(Step::Apply, at);
    if let Err(error) = applied {
        return Outcome::Failed { step: Step::Apply, error };
    }
    drop(slot);
    on_event(Event::StepStarted { tenant: &t.slug, step: Step::Verify });
    let at = Instant::now();
    let verified = exec.verify(t).await;
    timed(Step::Verify, at);
    match verified {
        Check::Pass => Outcome::Done,
        Check::Fail(error) | Check::Unknown(error) => Outcome::Failed { step: Step::Verify, error },
    }
}

/// Poll a check until it passes or the timeout runs out; returns the last result.
pub async fn wait_for<F, Fut>(timeout: Duration, interval: Duration, mut check: F) -> Check
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Check>,
{
    let deadline = Instant::now() + timeout;
    loop {
        let c = check().await;
        if c.passed() || Instant::now() >= deadline {
            return c;
        }
        tokio::time::sleep(interval).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::{BTreeMap, BTreeSet};

    /// An executor that records what it was asked and fails where told to.
    #[derive(Default)]
    struct Recorder {
        log: Mutex<Vec<String>>,
        fail_apply: BTreeSet<String>,
        unhealthy: BTreeSet<String>,
        /// Verify passes only once this many tenants were applied (by wave), as readiness that arrives together.
        ready_after_applies: BTreeMap<String, usize>,
        paused: bool,
        in_flight: AtomicUsize,
        max_in_flight: AtomicUsize,
    }

    impl Executor for Recorder {
        async fn provision(&self, t: &Tenant) -> Result<(), String> {
            let now = self.in_flight.fetch_add(1, Ordering::SeqCst) + 1;
            self.max_in_flight.fetch_max(now, Ordering::SeqCst);
            tokio::time::sleep(Duration::from_millis(5)).await;
            self.in_flight.fetch_sub(1, Ordering::SeqCst);
            self.log.lock().unwrap().push(format!("provision {}", t.slug));
            Ok(())
        }
        async fn apply(&self, t: &Tenant) -> Result<(), String> {
            self.log.lock().unwrap().push(format!("apply {}", t.slug));
            if self.fail_apply.contains(&t.slug) {
                return Err("cluster: 500 Internal Server Error".into());
            }
            Ok(())
        }
        async fn verify(&self, t: &Tenant) -> Check {
            if let Some(&n) = self.ready_after_applies.get(&t.wave) {
                let deadline = Instant::now() + Duration::from_secs(5);
                loop {
                    let applied = self.log.lock().unwrap().iter().filter(|l| l.starts_with("apply ")).count();
                    if applied >= n {
                        break;
                    }
                    if Instant::now() >= deadline {
                        return Check::Fail(format!("{} not ready: {applied} of {n} applied", t.slug));
                    }
                    tokio::time::sleep(Duration::from_millis(5)).await;
                }
            }
            if self.unhealthy.contains(&t.slug) {
                Check::Fail(format!("deployment: {} not available", t.slug))
            } else {
                Check::Pass
            }
        }
        async fn paused(&self, _: &Group) -> Result<bool, String> {
            Ok(self.paused)
        }
    }

    fn catalog() -> crate::tenant::Catalog {
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tenants");
        crate::tenant::load_dir(&dir).unwrap().catalog
    }

    fn rollout(rec: &Recorder, opts: &Options) -> Report {
        let c = catalog();
        let group = c.group("krz").unwrap().clone();
        let tenants: Vec<&Tenant> = c.tenants_of("krz").collect();
        let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
        rt.block_on(run(rec, &group, &tenants, opts, &|_| {}))
    }

    #[test]
    fn pilots_go_first_and_everything_is_done() {
        let rec = Recorder::default();
        let report = rollout(&rec, &Options { concurrency: 4, ..Options::default() });
        assert!(report.success(), "{report:?}");
        assert_eq!(report.done(), 39);
        let log = rec.log.lock().unwrap();
        let first_main = log.iter().position(|l| l == "provision minden").unwrap();
        for pilot in ["detmold", "espelkamp", "kirchlengern"] {
            let applied = log.iter().position(|l| l == &format!("apply {pilot}")).unwrap();
            assert!(applied < first_main, "{pilot} must be applied before the main wave starts");
        }
        assert!(rec.max_in_flight.load(Ordering::SeqCst) <= 4, "concurrency bound");
        assert!(rec.max_in_flight.load(Ordering::SeqCst) >= 2, "work ran concurrently");
    }

    #[test]
    fn a_tenant_waiting_for_readiness_holds_no_slot() {
        // Every tenant of a wave becomes ready only once the whole wave is applied: with one slot, this finishes
        // only if the waits run beside the work (where they can share polls) instead of occupying the slot.
        let c = catalog();
        let group = c.group("krz").unwrap();
        let tenants: Vec<&Tenant> = c.tenants_of("krz").collect();
        let mut applied = 0;
        let mut ready_after_applies = BTreeMap::new();
        for (wave, members) in plan(group, &tenants) {
            applied += members.len();
            ready_after_applies.insert(wave.to_string(), applied);
        }
        let rec = Recorder { ready_after_applies, ..Recorder::default() };
        let report = rollout(&rec, &Options { concurrency: 1, ..Options::default() });
        assert!(report.success(), "{report:?}");
        assert_eq!(report.done(), 39);
        assert_eq!(rec.max_in_flight.load(Ordering::SeqCst), 1, "the work stays bounded by --concurrency");
    }

    #[test]
    fn an_unhealthy_pilot_holds_the_next_wave() {
        let rec = Recorder { unhealthy: ["espelkamp".to_string()].into(), ..Recorder::default() };
        let report = rollout(&rec, &Options { max_failures: 5, ..Options::default() });
        assert_eq!(report.failed(), 1);
        match &report.halted {
            Some(Halt::Gate { wave, waiting_for, reasons }) => {
                assert_eq!(wave, "main");
                assert_eq!(waiting_for, &["espelkamp".to_string()]);
                assert!(reasons[0].contains("not available"));
            }
            other => panic!("expected a held gate, got {other:?}"),
        }
        assert!(!rec.log.lock().unwrap().iter().any(|l| l == "provision minden"), "main wave must not start");
        // --force opens the gate.
        let rec = Recorder { unhealthy: ["espelkamp".to_string()].into(), ..Recorder::default() };
        let forced = rollout(&rec, &Options { force: true, max_failures: 5, ..Options::default() });
        assert_eq!(forced.done(), 38);
    }

    #[test]
    fn the_failure_budget_stops_new_work_but_reports_everything() {
        let fail: BTreeSet<String> = ["minden", "hille", "luebbecke", "rahden"].iter().map(|s| s.to_string()).collect();
        let rec = Recorder { fail_apply: fail, ..Recorder::default() };
        let report = rollout(&rec, &Options { concurrency: 1, max_failures: 1, ..Options::default() });
        assert_eq!(report.halted, Some(Halt::FailureBudget { failed: 2, allowed: 1 }));
        let by: BTreeMap<&str, &Outcome> = report.results.iter().map(|r| (r.tenant.as_str(), &r.outcome)).collect();
        assert_eq!(by.len(), 39, "every tenant of the started waves is reported");
        assert!(by.values().any(|o| matches!(o, Outcome::NotStarted { .. })));
        assert!(matches!(by["hille"], Outcome::Failed { step: Step::Apply, .. }));
    }

    #[test]
    fn every_step_is_timed_in_order() {
        let rec = Recorder::default();
        let report = rollout(&rec, &Options { concurrency: 2, ..Options::default() });
        for r in &report.results {
            let steps: Vec<Step> = r.steps.iter().map(|s| s.step).collect();
            assert_eq!(steps, [Step::Provision, Step::Apply, Step::Verify], "{}", r.tenant);
            for w in r.steps.windows(2) {
                assert!(w[1].started_at >= w[0].started_at + w[0].seconds - 1e-9, "{}: {:?}", r.tenant, r.steps);
            }
            // The recorder's provision sleeps 5 ms.
            assert!(r.steps[0].seconds >= 0.004, "{}: {:?}", r.tenant, r.steps);
        }
        let b = report.breakdown;
        assert!(b.provision >= 39.0 * 0.004, "{b:?}");
        assert!(b.working > 0.0 && b.working <= b.wall, "{b:?}");
        assert!((b.working + b.waiting - b.wall).abs() < 1e-9, "{b:?}");
    }

    #[test]
    fn the_breakdown_merges_overlapping_work() {
        let step = |step, started_at, seconds| StepTiming { step, started_at, seconds };
        let result = |steps: Vec<StepTiming>| TenantResult {
            tenant: "t".into(),
            wave: "main".into(),
            outcome: Outcome::Done,
            seconds: 0.0,
            steps,
        };
        let results = vec![
            // work 0–2 and 1–3 overlap (0–3), then verify 3–9
            result(vec![step(Step::Provision, 0.0, 2.0), step(Step::Verify, 3.0, 6.0)]),
            result(vec![step(Step::Apply, 1.0, 2.0), step(Step::Verify, 3.0, 5.0)]),
            // work 5–6, separate
            result(vec![step(Step::Apply, 5.0, 1.0)]),
        ];
        let b = Breakdown::of(&results, 10.0, 0.5);
        assert_eq!(b.working, 4.0);
        assert_eq!(b.waiting, 6.0);
        assert_eq!((b.provision, b.apply, b.verify, b.gates), (2.0, 3.0, 11.0, 0.5));
    }

    #[test]
    fn a_paused_group_does_nothing() {
        let rec = Recorder { paused: true, ..Recorder::default() };
        let report = rollout(&rec, &Options::default());
        assert_eq!(report.halted, Some(Halt::Paused));
        assert!(rec.log.lock().unwrap().is_empty());
    }

    #[test]
    fn a_second_run_converges_to_the_same_result() {
        let rec = Recorder::default();
        let first = rollout(&rec, &Options::default());
        let second = rollout(&rec, &Options::default());
        assert_eq!(first.done(), second.done());
        assert!(second.success());
    }
}
