//! Go-live status: the ladder of phases per tenant and the summary of a rollout group.
//!
//! **Architecture invariant:** this module is pure. The probes that look at the database, the cluster, DNS and the
//! portal (in `status::probe`) fill in [`Observation`]s; everything here turns observations into phases, reasons and
//! summaries, deterministically.

pub mod image;
pub mod probe;
pub mod report;

use crate::municipality::Registry;
use crate::tenant::{Catalog, Tenant};
use serde::Serialize;
use std::collections::BTreeMap;
use time::OffsetDateTime;

/// The go-live ladder, in order. "Installed" in the seed documents is `Deployed`; "online" is `Live`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, serde::Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Phase {
    /// A valid tenant file exists.
    Declared,
    /// Schema and role exist, migrations are current.
    Provisioned,
    /// Kubernetes objects are applied and ready.
    Deployed,
    /// DNS resolves to the ingress, TLS is valid, the portal answers as this tenant.
    Reachable,
    /// Enough services are published (the group's threshold).
    ContentReady,
    /// May be published: the legal pages are complete (none missing, no placeholder) and the last accessibility audit
    /// is clean (no serious or critical violation) and not older than the last publish ([`compliance`]).
    Compliant,
    /// The portal is published ("online").
    Live,
}

impl Phase {
    pub const ALL: [Phase; 7] = [
        Phase::Declared,
        Phase::Provisioned,
        Phase::Deployed,
        Phase::Reachable,
        Phase::ContentReady,
        Phase::Compliant,
        Phase::Live,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Phase::Declared => "declared",
            Phase::Provisioned => "provisioned",
            Phase::Deployed => "deployed",
            Phase::Reachable => "reachable",
            Phase::ContentReady => "content-ready",
            Phase::Compliant => "compliant",
            Phase::Live => "live",
        }
    }

    pub fn parse(s: &str) -> Option<Phase> {
        Phase::ALL.into_iter().find(|p| p.as_str() == s)
    }

    /// The phase's name where the tenants run: in local mode there is no cluster, and the rung
    /// `deployed` is "running locally" (`local`).
    pub fn label(self, mode: Mode) -> &'static str {
        match (self, mode) {
            (Phase::Deployed, Mode::Local) => "local",
            (p, _) => p.as_str(),
        }
    }

    /// The phase's name in German, for reports.
    pub fn german(self, mode: Mode) -> &'static str {
        match (self, mode) {
            (Phase::Declared, _) => "erfasst",
            (Phase::Provisioned, _) => "Datenbank eingerichtet",
            (Phase::Deployed, Mode::Cluster) => "installiert",
            (Phase::Deployed, Mode::Local) => "läuft lokal",
            (Phase::Reachable, _) => "erreichbar",
            (Phase::ContentReady, _) => "Inhalte bereit",
            (Phase::Compliant, _) => "rechtlich und barrierefrei geprüft",
            (Phase::Live, Mode::Cluster) => "online",
            (Phase::Live, Mode::Local) => "veröffentlicht",
        }
    }
}

/// Where the tenants run: in a Kubernetes cluster, or in the local mode of `portalctl up`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Mode {
    #[default]
    Cluster,
    /// `portalctl up`: one portal server and a PostgreSQL on this machine, no cluster, no DNS.
    Local,
}

/// The outcome of one check on the ladder.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "result", content = "detail", rename_all = "kebab-case")]
pub enum Check {
    /// The check passed.
    Pass,
    /// The check ran and failed; the text says why, in one line (e.g. "DNS: service.hille.de has no A/AAAA record").
    Fail(String),
    /// The check could not run (source unreachable or not configured); the text says which.
    Unknown(String),
}

impl Check {
    pub fn passed(&self) -> bool {
        matches!(self, Check::Pass)
    }

    /// `Pass` when every check passed, otherwise the first that did not.
    pub fn all(checks: impl IntoIterator<Item = Check>) -> Check {
        checks.into_iter().find(|c| !c.passed()).unwrap_or(Check::Pass)
    }
}

/// The result of a tenant's last accessibility audit (`portalctl audit`), the input of the rung `compliant`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct AuditFact {
    /// When the audit ran.
    #[serde(with = "time::serde::rfc3339")]
    pub audited_at: OffsetDateTime,
    /// Violations of impact "serious".
    pub serious: u32,
    /// Violations of impact "critical".
    pub critical: u32,
    /// The serious and critical findings in one line each, e.g. "2 serious on /a-z (color-contrast)".
    pub findings: Vec<String>,
    /// Checks axe-core could not decide, for a person to look at (they never block `compliant`).
    pub needs_review: u32,
}

/// What the probes found out about one tenant: one check per rung above `declared`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Observation {
    pub provisioned: Check,
    pub deployed: Check,
    pub reachable: Check,
    pub content_ready: Check,
    pub compliant: Check,
    pub live: Check,
    /// Published services, when the database could be asked.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub published_services: Option<u64>,
    /// The tenant's last accessibility audit; `None`: never audited (or the audits could not be asked).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub audit: Option<AuditFact>,
    /// When the tenant's content was last published or changed ([`crate::db::status::Published::last_change`]):
    /// an audit older than this is stale.
    #[serde(skip_serializing_if = "Option::is_none", with = "time::serde::rfc3339::option")]
    pub last_published_at: Option<OffsetDateTime>,
    /// Everything that keeps the tenant from `compliant`, one line each (empty when it is compliant).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub compliance_blockers: Vec<String>,
    /// Where the tenant was observed (the cluster or the local mode).
    #[serde(skip)]
    pub mode: Mode,
}

impl Observation {
    /// Nothing observed yet: every rung unknown.
    pub fn unknown(why: &str) -> Observation {
        let u = || Check::Unknown(why.to_string());
        Observation {
            provisioned: u(),
            deployed: u(),
            reachable: u(),
            content_ready: u(),
            compliant: u(),
            live: u(),
            published_services: None,
            audit: None,
            last_published_at: None,
            compliance_blockers: Vec::new(),
            mode: Mode::Cluster,
        }
    }

    fn rungs(&self) -> [(Phase, &Check); 6] {
        [
            (Phase::Provisioned, &self.provisioned),
            (Phase::Deployed, &self.deployed),
            (Phase::Reachable, &self.reachable),
            (Phase::ContentReady, &self.content_ready),
            (Phase::Compliant, &self.compliant),
            (Phase::Live, &self.live),
        ]
    }
}

/// What keeps a tenant from `compliant`, one line each, in this order: the legal pages' gaps ("Impressum missing",
/// "spec.legal.imprint.address: placeholder"), then the accessibility audit ("a11y: no accessibility audit yet",
/// "a11y: 2 serious violations on /a-z (color-contrast)", "a11y: last audit … is older than the last publish …").
/// `last_publish` is `None` when nothing was ever published.
pub fn compliance_blockers(
    tenant: &Tenant,
    audit: Option<&AuditFact>,
    last_publish: Option<OffsetDateTime>,
) -> Vec<String> {
    let mut out: Vec<String> = tenant.legal_gaps().iter().map(crate::tenant::LegalGap::blocker).collect();
    match audit {
        None => out.push("a11y: no accessibility audit yet".into()),
        Some(a) => {
            if a.serious > 0 || a.critical > 0 {
                if a.findings.is_empty() {
                    out.push(format!("a11y: {} critical, {} serious violations", a.critical, a.serious));
                }
                out.extend(a.findings.iter().map(|f| {
                    let f = f.replacen(" serious on ", " serious violations on ", 1);
                    format!("a11y: {}", f.replacen(" critical on ", " critical violations on ", 1))
                }));
            }
            if let Some(p) = last_publish.filter(|p| a.audited_at < *p) {
                out.push(format!(
                    "a11y: last audit ({}) is older than the last publish ({})",
                    rfc3339(a.audited_at),
                    rfc3339(p)
                ));
            }
        }
    }
    out
}

/// The rung `compliant` from [`compliance_blockers`]: passed when there are none, else the blockers in one line,
/// the fields of one legal page with the same gap named together
/// ("spec.legal.imprint.{address, phone}: placeholder"); `complianceBlockers` in JSON keeps one entry per field.
pub fn compliance(blockers: &[String]) -> Check {
    if blockers.is_empty() {
        return Check::Pass;
    }
    // (page path, gap) → fields, in the order of first appearance; other blockers stay as they are.
    let mut lines: Vec<(String, Vec<String>)> = Vec::new();
    for b in blockers {
        let grouped = b.strip_prefix("spec.legal.").and_then(|rest| {
            let (path, gap) = rest.split_once(": ")?;
            let (page, field) = path.split_once('.')?;
            Some((format!("spec.legal.{page}.{{}}: {gap}"), field.to_string()))
        });
        match grouped {
            Some((key, field)) => match lines.iter_mut().find(|(k, _)| *k == key) {
                Some((_, fields)) => fields.push(field),
                None => lines.push((key, vec![field])),
            },
            None => lines.push((b.clone(), Vec::new())),
        }
    }
    let text: Vec<String> = lines
        .into_iter()
        .map(|(key, fields)| match fields.as_slice() {
            [] => key,
            [one] => key.replacen("{}", one, 1),
            many => key.replacen("{}", &format!("{{{}}}", many.join(", ")), 1),
        })
        .collect();
    Check::Fail(text.join("; "))
}

fn rfc3339(t: OffsetDateTime) -> String {
    t.format(&time::format_description::well_known::Rfc3339).unwrap_or_default()
}

/// One tenant's standing on the ladder.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct TenantStatus {
    pub tenant: String,
    pub display_name: String,
    pub group: String,
    pub wave: String,
    /// AGS of the Kreis.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub kreis: Option<String>,
    pub hostname: String,
    /// Where the tenant runs.
    pub mode: Mode,
    /// The highest phase whose check and all checks below it passed.
    #[serde(skip)]
    pub phase: Phase,
    /// [`Phase::label`] of `phase` for `target` (`local` instead of `deployed` in local mode).
    #[serde(rename = "phase")]
    pub phase_label: &'static str,
    /// Whether the tenant may stand higher than `phase`: the next check could not be made.
    pub unknown: bool,
    /// Why the tenant is not further up, in one line (absent when `live`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub stuck: Option<String>,
    pub checks: Observation,
}

/// Climb the ladder: the phase is the last rung before the first check that did not pass.
pub fn assess(tenant: &Tenant, obs: Observation) -> TenantStatus {
    let mut phase = Phase::Declared;
    let mut stuck = None;
    let mut unknown = false;
    for (rung, check) in obs.rungs() {
        match check {
            Check::Pass => phase = rung,
            Check::Fail(why) => {
                stuck = Some(why.clone());
                break;
            }
            Check::Unknown(why) => {
                stuck = Some(why.clone());
                unknown = true;
                break;
            }
        }
    }
    TenantStatus {
        tenant: tenant.slug.clone(),
        display_name: tenant.display_name.clone(),
        group: tenant.group.clone(),
        wave: tenant.wave.clone(),
        kreis: tenant.kreis.clone(),
        hostname: tenant.primary_hostname().to_string(),
        mode: obs.mode,
        phase,
        phase_label: phase.label(obs.mode),
        unknown,
        stuck,
        checks: obs,
    }
}

/// Counts for one slice of a group (the whole group, a Kreis, a wave).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Tally {
    pub name: String,
    pub tenants: usize,
    /// At least `deployed` ("installiert"; in local mode: running locally).
    pub installed: usize,
    /// `live` ("online"; in local mode: published).
    pub online: usize,
    /// Tenants whose standing could not be fully determined (a source could not be asked): they
    /// may stand higher than counted.
    pub unknown: usize,
    /// Share online in whole percent, rounded half up; `None` while any tenant is unknown (the
    /// share would be a guess).
    pub online_percent: Option<u32>,
    /// How many tenants stand at each phase.
    pub by_phase: BTreeMap<Phase, usize>,
}

impl Tally {
    fn add(&mut self, s: &TenantStatus) {
        self.tenants += 1;
        if s.phase >= Phase::Deployed {
            self.installed += 1;
        }
        if s.phase == Phase::Live {
            self.online += 1;
        }
        if s.unknown {
            self.unknown += 1;
        }
        *self.by_phase.entry(s.phase).or_insert(0) += 1;
        self.online_percent = (self.unknown == 0).then(|| self.percent());
    }

    /// Share of tenants online, in whole percent (rounded half up).
    pub fn percent(&self) -> u32 {
        if self.tenants == 0 {
            0
        } else {
            ((self.online * 200 + self.tenants) / (self.tenants * 2)) as u32
        }
    }

    /// "36 of 39 installed, 22 online (56 %)" — the way the project leads count; in local mode
    /// "64 of 64 running locally, 30 published (47 %)". Unknown is said, never counted as 0.
    pub fn headline(&self, mode: Mode) -> String {
        let (installed, online) = match mode {
            Mode::Cluster => ("installed", "online"),
            Mode::Local => ("running locally", "published"),
        };
        let n = self.tenants;
        if n > 0 && self.unknown == n && self.installed == 0 {
            return format!("state of all {n} tenants unknown");
        }
        let mut s = format!("{} of {n} {installed}, {} {online}", self.installed, self.online);
        match self.online_percent {
            Some(p) => s.push_str(&format!(" ({p} %)")),
            None => s.push_str(&format!(", {} unknown", self.unknown)),
        }
        s
    }

    /// [`Tally::headline`] in German, for reports.
    pub fn headline_de(&self, mode: Mode) -> String {
        let (installed, online) = match mode {
            Mode::Cluster => ("installiert", "online"),
            Mode::Local => ("laufen lokal", "veröffentlicht"),
        };
        let n = self.tenants;
        if n > 0 && self.unknown == n && self.installed == 0 {
            return format!("Stand aller {n} Portale unbekannt");
        }
        let mut s = format!("{} von {n} Portalen {installed}, {} {online}", self.installed, self.online);
        match self.online_percent {
            Some(p) => s.push_str(&format!(" ({p}\u{a0}%)")),
            None => s.push_str(&format!(", {} unbekannt", self.unknown)),
        }
        s
    }
}

/// The row of [`GroupSummary::by_kreis`] that counts a group's Dachportal, which stands for the whole region and
/// lies in no Kreis. Always the last row.
pub const REGION_ROW: &str = "Region";

/// A group's summary: in sum, per Kreis (plus the [`REGION_ROW`] for a Dachportal), per wave (in the group's wave
/// order).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct GroupSummary {
    pub group: String,
    pub display_name: String,
    /// Where the group's tenants were observed.
    pub mode: Mode,
    pub total: Tally,
    pub by_kreis: Vec<Tally>,
    pub by_wave: Vec<Tally>,
    /// The portal server's image as the cluster shows it; `None` in local mode, when the cluster was
    /// not asked, or before the group's Deployment exists. Filled in by the probe's caller.
    pub image: Option<image::GroupImage>,
}

/// Summaries of every group that has tenants in `statuses`, in the catalog's group order.
pub fn summarize(catalog: &Catalog, statuses: &[TenantStatus]) -> Vec<GroupSummary> {
    let registry = Registry::official();
    let mut out = Vec::new();
    for group in &catalog.groups {
        let of_group: Vec<&TenantStatus> = statuses.iter().filter(|s| s.group == group.name).collect();
        if of_group.is_empty() {
            continue;
        }
        let mut total = Tally { name: group.name.clone(), ..Tally::default() };
        let mut by_kreis: BTreeMap<String, Tally> = BTreeMap::new();
        let mut region: Option<Tally> = None;
        let mut by_wave: Vec<Tally> =
            group.waves.iter().map(|w| Tally { name: w.name.clone(), ..Tally::default() }).collect();
        for s in &of_group {
            total.add(s);
            match &s.kreis {
                Some(kreis_ags) => {
                    let name = registry.kreis(kreis_ags).map(|k| k.name.clone()).unwrap_or_else(|| kreis_ags.clone());
                    by_kreis.entry(name.clone()).or_insert_with(|| Tally { name, ..Tally::default() }).add(s);
                }
                // Only a Dachportal has no Kreis: it is counted for the region, not under a made-up Kreis.
                None => region.get_or_insert_with(|| Tally { name: REGION_ROW.into(), ..Tally::default() }).add(s),
            }
            if let Some(w) = by_wave.iter_mut().find(|w| w.name == s.wave) {
                w.add(s);
            }
        }
        out.push(GroupSummary {
            group: group.name.clone(),
            display_name: group.display_name.clone(),
            mode: of_group[0].mode,
            total,
            by_kreis: by_kreis.into_values().chain(region).collect(),
            by_wave,
            image: None,
        });
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn catalog() -> Catalog {
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tenants");
        let built = crate::tenant::load_dir(&dir).unwrap();
        assert_eq!(built.error_count(), 0);
        built.catalog
    }

    fn obs(passing: usize, why: &str) -> Observation {
        let mut checks: Vec<Check> =
            (0..6).map(|i| if i < passing { Check::Pass } else { Check::Fail(why.into()) }).collect();
        let live = checks.pop().unwrap();
        let compliant = checks.pop().unwrap();
        let content = checks.pop().unwrap();
        let reach = checks.pop().unwrap();
        let dep = checks.pop().unwrap();
        let prov = checks.pop().unwrap();
        Observation {
            provisioned: prov,
            deployed: dep,
            reachable: reach,
            content_ready: content,
            compliant,
            live,
            published_services: None,
            audit: None,
            last_published_at: None,
            compliance_blockers: Vec::new(),
            mode: Mode::Cluster,
        }
    }

    #[test]
    fn the_phase_is_the_last_rung_before_the_first_failure() {
        let c = catalog();
        let t = c.tenant("hille").unwrap();
        assert_eq!(assess(t, obs(0, "database: schema t_hille does not exist")).phase, Phase::Declared);
        let s = assess(t, obs(2, "DNS: service.hille.de has no A/AAAA record"));
        assert_eq!(s.phase, Phase::Deployed);
        assert_eq!(s.stuck.as_deref(), Some("DNS: service.hille.de has no A/AAAA record"));
        let live = assess(t, obs(6, ""));
        assert_eq!((live.phase, live.stuck), (Phase::Live, None));
        // A later rung passing does not lift a tenant over an earlier failure.
        let mut o = obs(6, "");
        o.deployed = Check::Unknown("cluster: unreachable".into());
        let s = assess(t, o);
        assert_eq!((s.phase, s.stuck.as_deref()), (Phase::Provisioned, Some("cluster: unreachable")));
    }

    #[test]
    fn compliant_needs_complete_legal_pages_and_a_fresh_clean_audit() {
        let c = catalog();
        let mut t = c.tenant("erkelenz").unwrap().clone();
        // The bundled tenants have scaffolded legal pages: placeholders block, and nothing was audited.
        let b = compliance_blockers(&t, None, None);
        assert!(b.contains(&"spec.legal.imprint.address: placeholder".to_string()), "{b:?}");
        assert_eq!(b.last().map(String::as_str), Some("a11y: no accessibility audit yet"));
        t.legal = crate::tenant::legal::example_complete();
        t.legal.imprint = None;
        assert_eq!(compliance_blockers(&t, None, None), ["Impressum missing", "a11y: no accessibility audit yet"]);
        t.legal = crate::tenant::legal::example_complete();

        let published = time::macros::datetime!(2026-11-29 10:00 UTC);
        let clean = AuditFact {
            audited_at: time::macros::datetime!(2026-11-29 11:00 UTC),
            serious: 0,
            critical: 0,
            findings: Vec::new(),
            needs_review: 3,
        };
        assert_eq!(compliance_blockers(&t, Some(&clean), Some(published)), Vec::<String>::new());
        let dirty =
            AuditFact { serious: 2, findings: vec!["2 serious on /a-z (color-contrast)".into()], ..clean.clone() };
        assert_eq!(
            compliance_blockers(&t, Some(&dirty), Some(published)),
            ["a11y: 2 serious violations on /a-z (color-contrast)"]
        );
        let stale = AuditFact { audited_at: time::macros::datetime!(2026-11-29 9:00 UTC), ..clean.clone() };
        assert_eq!(
            compliance_blockers(&t, Some(&stale), Some(published)),
            ["a11y: last audit (2026-11-29T09:00:00Z) is older than the last publish (2026-11-29T10:00:00Z)"]
        );

        // On the ladder: compliant sits between content-ready and live, and names what blocks it.
        let mut o = obs(4, "");
        o.compliance_blockers = compliance_blockers(&t, Some(&dirty), Some(published));
        o.compliant = compliance(&o.compliance_blockers);
        o.live = Check::Pass;
        let s = assess(&t, o);
        assert_eq!(s.phase, Phase::ContentReady);
        assert_eq!(s.stuck.as_deref(), Some("a11y: 2 serious violations on /a-z (color-contrast)"));
        let json = serde_json::to_value(&s).unwrap();
        assert_eq!(json["checks"]["compliant"]["result"], "fail");
        assert_eq!(json["checks"]["complianceBlockers"][0], "a11y: 2 serious violations on /a-z (color-contrast)");
        // One line for people: the fields of one page with the same gap together.
        let line = |b: &[&str]| match compliance(&b.iter().map(|s| s.to_string()).collect::<Vec<_>>()) {
            Check::Fail(text) => text,
            other => panic!("{other:?}"),
        };
        assert_eq!(
            line(&[
                "spec.legal.imprint.address: placeholder",
                "spec.legal.imprint.phone: placeholder",
                "spec.legal.accessibility.status: missing",
                "Datenschutz missing",
                "spec.legal.accessibility.date: placeholder",
                "a11y: no accessibility audit yet",
            ]),
            "spec.legal.imprint.{address, phone}: placeholder; spec.legal.accessibility.status: missing; \
             Datenschutz missing; spec.legal.accessibility.date: placeholder; a11y: no accessibility audit yet"
        );
        let mut o = obs(4, "");
        o.compliant = compliance(&compliance_blockers(&t, Some(&clean), Some(published)));
        o.live = Check::Fail("go-live: not published yet".into());
        assert_eq!(assess(&t, o).phase, Phase::Compliant);
    }

    #[test]
    fn summary_counts_like_the_project_leads() {
        let c = catalog();
        let statuses: Vec<TenantStatus> = c
            .tenants_of("krz")
            .enumerate()
            .map(|(i, t)| {
                assess(t, if i % 39 < 22 { obs(6, "") } else { obs(2, "content: 12 of 40 services published") })
            })
            .collect();
        let sums = summarize(&c, &statuses);
        assert_eq!(sums.len(), 1);
        let krz = &sums[0];
        assert_eq!(krz.total.tenants, 39);
        assert_eq!(krz.total.installed, 39);
        assert_eq!(krz.total.online, 22);
        assert_eq!(krz.total.headline(Mode::Cluster), "39 of 39 installed, 22 online (56 %)");
        let kreise: Vec<&str> = krz.by_kreis.iter().map(|k| k.name.as_str()).collect();
        assert_eq!(kreise, ["Kreis Herford", "Kreis Lippe", "Kreis Minden-Lübbecke"]);
        assert_eq!(krz.by_kreis.iter().map(|k| k.tenants).sum::<usize>(), 39);
        assert_eq!(krz.by_wave.iter().map(|w| w.name.as_str()).collect::<Vec<_>>(), ["pilot", "main"]);
        assert_eq!(krz.by_wave[0].tenants, 3);
    }

    #[test]
    fn the_dachportal_counts_for_the_region_not_for_a_kreis() {
        let c = catalog();
        let statuses: Vec<TenantStatus> = c
            .tenants_of("emscher-lippe")
            .map(|t| assess(t, if t.is_dachportal() { obs(6, "") } else { obs(2, "DNS: no record") }))
            .collect();
        assert_eq!(statuses.len(), 14);
        let sums = summarize(&c, &statuses);
        let el = &sums[0];
        let rows: Vec<(&str, usize, usize)> =
            el.by_kreis.iter().map(|k| (k.name.as_str(), k.tenants, k.online)).collect();
        assert_eq!(
            rows,
            [
                ("Kreis Recklinghausen", 11, 0),
                ("Stadt Bottrop", 1, 0),
                ("Stadt Gelsenkirchen", 1, 0),
                (REGION_ROW, 1, 1)
            ]
        );
        assert!(el.by_kreis.iter().all(|k| !k.name.is_empty()), "no nameless Kreis row");
        assert_eq!(el.total.headline(Mode::Cluster), "14 of 14 installed, 1 online (7 %)");
        // A group without a Dachportal has no Region row.
        let krz: Vec<TenantStatus> = c.tenants_of("krz").map(|t| assess(t, obs(6, ""))).collect();
        assert!(summarize(&c, &krz)[0].by_kreis.iter().all(|k| k.name != REGION_ROW));
    }

    #[test]
    fn percent_rounds_half_up() {
        let t = Tally { tenants: 36, online: 22, ..Tally::default() };
        assert_eq!(t.percent(), 61);
        let t = Tally { tenants: 0, ..Tally::default() };
        assert_eq!(t.percent(), 0);
    }

    #[test]
    fn unknown_is_said_not_counted_as_zero() {
        let c = catalog();
        let down = |t| assess(t, Observation::unknown("database: unreachable"));
        let statuses: Vec<TenantStatus> = c.tenants_of("krz").map(down).collect();
        let sums = summarize(&c, &statuses);
        assert_eq!(sums[0].total.headline(Mode::Cluster), "state of all 39 tenants unknown");
        assert_eq!(sums[0].total.online_percent, None);
        // Some known, some not: the counts are lower bounds and the share is not given.
        let statuses: Vec<TenantStatus> =
            c.tenants_of("krz").enumerate().map(|(i, t)| if i < 3 { assess(t, obs(6, "")) } else { down(t) }).collect();
        let sums = summarize(&c, &statuses);
        assert_eq!(sums[0].total.headline(Mode::Cluster), "3 of 39 installed, 3 online, 36 unknown");
    }

    #[test]
    fn in_local_mode_deployed_is_running_locally() {
        let c = catalog();
        let statuses: Vec<TenantStatus> = c
            .tenants_of("heinsberg")
            .map(|t| {
                let mut o = obs(if t.published { 6 } else { 5 }, "go-live: not published yet");
                o.mode = Mode::Local;
                assess(t, o)
            })
            .collect();
        let published = statuses.iter().filter(|s| s.phase == Phase::Live).count();
        let sums = summarize(&c, &statuses);
        assert_eq!(sums[0].mode, Mode::Local);
        let pct = ((published * 200 + 11) / 22) as u32;
        assert_eq!(
            sums[0].total.headline(Mode::Local),
            format!("11 of 11 running locally, {published} published ({pct} %)")
        );
        assert_eq!(Phase::Deployed.label(Mode::Local), "local");
        let json = serde_json::to_value(&statuses[0]).unwrap();
        assert_eq!(json["mode"], "local");
        assert!(json["phase"] == "live" || json["phase"] == "compliant", "{json}");
        assert_eq!(json["unknown"], false);
    }
}
