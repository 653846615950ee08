//! The template context: plain data built in Rust from the results. Templates only lay it
//! out; every verdict and state in it was computed here or in `assess`/`decision_map`.

use chrono::{DateTime, Utc};
use serde::Serialize;

use super::assess::{self, Assessment, Provenance};
use super::checklist::{CHECKLIST_PATH, Checklist};
use super::decision_map::{self, DecisionMap, MapInputs};
use super::records::{CheckView, EvidenceView, Results};
use crate::repo::GitState;

/// Everything a report is built from.
#[derive(Debug, Clone, Copy)]
pub struct Inputs<'a> {
    /// The environment reported on.
    pub environment: &'a str,
    /// Its Fly app, from `ops/deploy.toml`.
    pub app: Option<&'a str>,
    /// Its public URL, from `ops/deploy.toml`.
    pub url: Option<&'a str>,
    /// Whether it has deploys (it is in `ops/deploy.toml`).
    pub deployable: bool,
    /// Its latest results.
    pub results: &'a Results,
    /// Staging's latest results.
    pub staging: &'a Results,
    /// The production checklist, when present.
    pub checklist: Option<&'a Checklist>,
    /// The clock.
    pub now: DateTime<Utc>,
    /// What is checked out.
    pub head: Option<&'a GitState>,
}

/// The context every template sees.
#[derive(Debug, Clone, Serialize)]
pub struct ReportContext {
    /// Environment name.
    pub environment: String,
    /// Fly app, when configured.
    pub app: Option<String>,
    /// Public URL: configured, else the one smoke measured.
    pub url: Option<String>,
    /// Short HEAD commit, when in git.
    pub commit: Option<String>,
    /// Whether the tree has uncommitted changes.
    pub dirty: bool,
    /// `YYYY-MM-DD HH:MM UTC`.
    pub generated_at: String,
    /// The xtask version.
    pub tool_version: String,
    /// Whether the environment has deploys.
    pub deployable: bool,
    /// GO / NO-GO / INCOMPLETE and why.
    pub verdict: VerdictView,
    /// The decision map.
    pub map: DecisionMap,
    /// The predeploy section.
    pub predeploy: Section<Vec<CheckRow>>,
    /// The smoke section.
    pub smoke: Section<SmokeData>,
    /// The overlap section.
    pub overlap: Section<OverlapData>,
    /// The last deploy.
    pub deploy: Section<DeployData>,
    /// Production readiness.
    pub readiness: ReadinessView,
}

/// The overall verdict for templates.
#[derive(Debug, Clone, Serialize)]
pub struct VerdictView {
    /// `GO`, `NO-GO` or `INCOMPLETE`.
    pub label: String,
    /// Why.
    pub reasons: Vec<String>,
}

/// A section backed by one saved result.
#[derive(Debug, Clone, Serialize)]
pub struct Section<T> {
    /// Whether a result exists.
    pub present: bool,
    /// The command that produces it.
    pub command: String,
    /// Where it came from.
    pub provenance: Option<Provenance>,
    /// Its data.
    pub data: Option<T>,
}

impl<T> Section<T> {
    fn missing(command: String) -> Section<T> {
        Section {
            present: false,
            command,
            provenance: None,
            data: None,
        }
    }
}

/// One check row (predeploy or smoke).
#[derive(Debug, Clone, Serialize)]
pub struct CheckRow {
    /// Id or name.
    pub name: String,
    /// What it verifies.
    pub verifies: String,
    /// `PASS`, `WARN`, `SKIP`, `FAIL`.
    pub verdict: String,
    /// What was found.
    pub evidence: String,
    /// How to fix it, or empty.
    pub fix: String,
}

/// The smoke section's data.
#[derive(Debug, Clone, Serialize)]
pub struct SmokeData {
    /// The URL measured.
    pub url: String,
    /// Phase 1 checks.
    pub checks: Vec<CheckRow>,
    /// Whether the benchmark ran.
    pub benchmarked: bool,
    /// Per endpoint.
    pub endpoints: Vec<EndpointRow>,
}

/// One benchmarked endpoint.
#[derive(Debug, Clone, Serialize)]
pub struct EndpointRow {
    /// Name.
    pub name: String,
    /// Path.
    pub path: String,
    /// Measured requests.
    pub requests: u64,
    /// Error rate in percent.
    pub error_rate_pct: f64,
    /// Error rate limit in percent, when recorded.
    pub error_rate_limit_pct: Option<f64>,
    /// Latency percentiles in ms.
    pub p50_ms: f64,
    /// 95th percentile.
    pub p95_ms: f64,
    /// p95 limit, when recorded.
    pub p95_limit_ms: Option<f64>,
    /// 99th percentile.
    pub p99_ms: f64,
    /// Slowest.
    pub max_ms: f64,
    /// The endpoint's verdict.
    pub verdict: String,
}

/// The overlap section's data.
#[derive(Debug, Clone, Serialize)]
pub struct OverlapData {
    /// One row per round.
    pub rounds: Vec<RoundRow>,
    /// Everything that broke the rule.
    pub problems: Vec<String>,
}

/// One overlap round.
#[derive(Debug, Clone, Serialize)]
pub struct RoundRow {
    /// 1-based.
    pub number: usize,
    /// N.
    pub requests: usize,
    /// Winner count.
    pub winners: usize,
    /// Reservation codes of the winners.
    pub codes: String,
    /// 409 `date_overlap` count.
    pub conflicts: usize,
    /// Other outcomes, `500 internal x2`.
    pub others: String,
    /// The round's verdict.
    pub verdict: String,
}

/// The last deploy.
#[derive(Debug, Clone, Serialize)]
pub struct DeployData {
    /// The Fly release version, when recorded.
    pub release: Option<String>,
    /// The image reference, when recorded.
    pub image: Option<String>,
    /// The deploy strategy, when recorded.
    pub strategy: Option<String>,
    /// When it started.
    pub time: String,
    /// Its verdict.
    pub verdict: String,
    /// A rollback after it, when there was one.
    pub rolled_back: Option<String>,
}

/// Production readiness progress.
#[derive(Debug, Clone, Serialize)]
pub struct ReadinessView {
    /// Where it is read from.
    pub path: String,
    /// The parsed checklist, when the file exists.
    pub checklist: Option<Checklist>,
}

/// Builds the context.
pub fn build(input: &Inputs) -> ReportContext {
    let head_commit = input.head.map(|g| g.commit.as_str());
    let r = input.results;
    let deployed = assess::deployed_at(r, input.deployable);
    let smoke_url = r.smoke.as_ref().and_then(|s| s.result.url.clone());
    let url = input.url.map(str::to_string).or(smoke_url);
    let map = decision_map::decision_map(&MapInputs {
        environment: input.environment,
        deployable: input.deployable,
        results: r,
        staging: input.staging,
        checklist: input.checklist,
        url: url.as_deref(),
        now: input.now,
        head: head_commit,
    });
    let command_of = |id: &str, fallback: String| {
        map.steps
            .iter()
            .find(|s| s.id == id)
            .and_then(|s| s.command.clone())
            .unwrap_or(fallback)
    };
    let assessment: Assessment = assess::assess(r, input.deployable, head_commit);

    let predeploy = match &r.predeploy {
        None => Section::missing(command_of("predeploy", "cargo xtask predeploy".into())),
        Some(rec) => Section {
            present: true,
            command: command_of("predeploy", String::new()),
            provenance: Some(assess::provenance(rec, input.now, head_commit, None)),
            data: Some(rec.result.checks.iter().map(check_row).collect()),
        },
    };
    let smoke_command = command_of("health", "cargo xtask smoke".into());
    let smoke = match &r.smoke {
        None => Section::missing(smoke_command),
        Some(rec) => Section {
            present: true,
            command: smoke_command,
            provenance: Some(assess::provenance(rec, input.now, head_commit, deployed)),
            data: Some(SmokeData {
                url: rec.result.url.clone().unwrap_or_default(),
                checks: rec.result.checks.iter().map(check_row).collect(),
                benchmarked: rec.result.benchmark.is_some(),
                endpoints: rec
                    .result
                    .benchmark
                    .iter()
                    .flat_map(|b| &b.endpoints)
                    .map(endpoint_row)
                    .collect(),
            }),
        },
    };
    let overlap_command = command_of("overlap", "cargo xtask overlap".into());
    let overlap = match &r.overlap {
        None => Section::missing(overlap_command),
        Some(rec) => Section {
            present: true,
            command: overlap_command,
            provenance: Some(assess::provenance(rec, input.now, head_commit, deployed)),
            data: Some(overlap_data(&rec.result)),
        },
    };
    let deploy_command = command_of(
        "deploy",
        format!("cargo xtask deploy --env {}", input.environment),
    );
    let deploy = match (&r.deploy, input.deployable) {
        (Some(rec), true) => Section {
            present: true,
            command: deploy_command,
            provenance: Some(assess::provenance(rec, input.now, head_commit, None)),
            data: Some(DeployData {
                release: rec
                    .result
                    .release
                    .as_ref()
                    .and_then(|r| r.version)
                    .map(|v| format!("v{v}")),
                image: rec
                    .result
                    .release
                    .as_ref()
                    .and_then(|r| r.image_ref.clone()),
                strategy: rec.result.strategy.clone(),
                time: assess::timestamp(rec.started_at),
                verdict: rec.verdict.label().to_string(),
                rolled_back: decision_map::rolled_back(r),
            }),
        },
        _ => Section::missing(deploy_command),
    };

    ReportContext {
        environment: input.environment.to_string(),
        app: input.app.map(str::to_string),
        url,
        commit: input.head.map(|g| g.short().to_string()),
        dirty: input.head.is_some_and(|g| g.dirty),
        generated_at: assess::timestamp(input.now),
        tool_version: env!("CARGO_PKG_VERSION").to_string(),
        deployable: input.deployable,
        verdict: VerdictView {
            label: assessment.overall.label().to_string(),
            reasons: assessment.reasons,
        },
        map,
        predeploy,
        smoke,
        overlap,
        deploy,
        readiness: ReadinessView {
            path: CHECKLIST_PATH.to_string(),
            checklist: input.checklist.cloned(),
        },
    }
}

fn overlap_data(overlap: &super::records::OverlapView) -> OverlapData {
    let mut problems = Vec::new();
    let rounds = overlap
        .rounds
        .iter()
        .map(|round| {
            let race = &round.race;
            problems.extend(
                race.problems
                    .iter()
                    .map(|p| format!("round {}: {p}", round.round)),
            );
            for probe in round.availability.iter().chain(&round.boundary) {
                if probe
                    .verdict
                    .is_none_or(|v| v == crate::verdict::Verdict::Fail)
                {
                    problems.push(format!(
                        "round {}: {}: {}",
                        round.round, probe.name, probe.detail
                    ));
                }
            }
            RoundRow {
                number: round.round,
                requests: race.requests,
                winners: race.winners.len(),
                codes: race.winners.join(", "),
                conflicts: race.conflicts,
                others: race
                    .others
                    .iter()
                    .map(|o| format!("{} x{}", o.label, o.count))
                    .collect::<Vec<_>>()
                    .join(", "),
                verdict: round
                    .verdict
                    .map(|v| v.label())
                    .unwrap_or("FAIL")
                    .to_string(),
            }
        })
        .collect();
    if !overlap.leftovers.is_empty() {
        problems.push(format!(
            "left active after cleanup: {}",
            overlap.leftovers.join(", ")
        ));
    }
    OverlapData { rounds, problems }
}

fn check_row(check: &CheckView) -> CheckRow {
    let evidence = match &check.evidence {
        EvidenceView::Text(text) => text.clone(),
        EvidenceView::Findings(findings) => {
            let worth_a_look: Vec<String> = findings
                .iter()
                .filter(|f| {
                    f.verdict
                        .is_some_and(|v| v != crate::verdict::Verdict::Pass)
                })
                .map(|f| {
                    let at = match (&f.path, f.line) {
                        (Some(p), Some(l)) => format!("{p}:{l}: "),
                        (Some(p), None) => format!("{p}: "),
                        _ => String::new(),
                    };
                    format!("{at}{}", f.message)
                })
                .collect();
            if worth_a_look.is_empty() {
                match findings.len() {
                    0 => String::new(),
                    1 => findings[0].message.clone(),
                    n => format!("{} (+{} more)", findings[0].message, n - 1),
                }
            } else {
                worth_a_look.join("\n")
            }
        }
    };
    CheckRow {
        name: check.label().to_string(),
        verifies: check.verifies.clone(),
        verdict: check.verdict().label().to_string(),
        evidence,
        fix: check.fix.clone().unwrap_or_default(),
    }
}

fn endpoint_row(e: &super::records::EndpointView) -> EndpointRow {
    let limit = |needle: &str| {
        e.thresholds
            .iter()
            .find(|t| t.metric.contains(needle))
            .map(|t| t.limit)
    };
    EndpointRow {
        name: e.name.clone(),
        path: e.path.clone(),
        requests: e.requests,
        error_rate_pct: e.error_rate_pct,
        error_rate_limit_pct: limit("error"),
        p50_ms: e.latency.p50_ms,
        p95_ms: e.latency.p95_ms,
        p95_limit_ms: limit("p95"),
        p99_ms: e.latency.p99_ms,
        max_ms: e.latency.max_ms,
        verdict: e.verdict.map(|v| v.label()).unwrap_or("FAIL").to_string(),
    }
}
