//! The rows of the section tables, built from the result views.

use serde::Serialize;

use super::records::{CheckView, EndpointView, OverlapView};
use crate::verdict::Verdict;

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
    /// The load it ran at (model, concurrency or rate, bound, warm-up), when recorded.
    pub load: Option<String>,
    /// What the version endpoint said about the build that served.
    pub served: String,
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
    /// p99 limit, when the environment sets one.
    pub p99_limit_ms: Option<f64>,
    /// Slowest.
    pub max_ms: f64,
    /// Limit for the slowest request, when the environment sets one.
    pub max_limit_ms: Option<f64>,
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

pub(super) fn overlap_data(overlap: &OverlapView) -> OverlapData {
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
                if probe.verdict.is_none_or(|v| v == Verdict::Fail) {
                    problems.push(format!(
                        "round {}: {}: {}",
                        round.round,
                        probe.id,
                        probe.summary()
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

pub(super) fn check_row(check: &CheckView) -> CheckRow {
    let evidence = check.summary();
    CheckRow {
        name: check.id.clone(),
        verifies: check.verifies.clone(),
        verdict: check.verdict().label().to_string(),
        evidence,
        fix: check.fix.clone().unwrap_or_default(),
    }
}

pub(super) fn endpoint_row(e: &EndpointView) -> EndpointRow {
    let limit = |needle: &str| {
        e.thresholds
            .iter()
            .find(|t| t.check.id.contains(needle))
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
        p99_limit_ms: limit("p99"),
        max_ms: e.latency.max_ms,
        max_limit_ms: limit("max"),
        verdict: e.verdict.map(|v| v.label()).unwrap_or("FAIL").to_string(),
    }
}
