//! The result of a smoke run: plain data, saved in the run record and rendered later by
//! `report`. Built from measurements by pure functions.

use std::time::Duration;

use serde::{Deserialize, Serialize};

use super::load::EndpointMeasurement;
use super::plan::{EndpointPlan, LoadSettings};
use super::stats::{self, ErrorCounts, LatencySummary, ThresholdOutcome};
pub use crate::check::CheckResult;
use crate::verdict::Verdict;

/// Everything one smoke run found. This is the `result` of the `smoke` run record.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SmokeReport {
    /// The base URL measured.
    pub url: String,
    /// Phase 1: the readiness wait (when asked for) and the checks, in the order they ran.
    pub checks: Vec<CheckResult>,
    /// Phase 2, unless skipped with `--skip-bench`.
    pub benchmark: Option<BenchmarkReport>,
    /// Overall: any failed check or threshold fails.
    pub verdict: Verdict,
    /// What `GET /api/v1/version` answered (which build served the run).
    #[serde(default)]
    pub served_version: ServedVersion,
}

/// What the service's version endpoint answered during a smoke run. It informs the report's
/// freshness (the build that served) and never changes the smoke verdict.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(tag = "state", rename_all = "snake_case")]
pub enum ServedVersion {
    /// Not asked (checks skipped).
    #[default]
    NotAsked,
    /// 404: the service has no version endpoint.
    NoEndpoint,
    /// 200 with a JSON body.
    Answered {
        /// The body as the service sent it.
        body: serde_json::Value,
    },
    /// Anything else: another status, a body that is not JSON, a transport error.
    Unreadable {
        /// What happened.
        detail: String,
    },
}

impl ServedVersion {
    /// The commit the service says it was built from, when it says one.
    pub fn commit(&self) -> Option<&str> {
        match self {
            ServedVersion::Answered { body } => body.get("commit").and_then(|c| c.as_str()),
            _ => None,
        }
    }
}

impl SmokeReport {
    /// Assembles a report and computes its overall verdict.
    pub fn new(
        url: &str,
        checks: Vec<CheckResult>,
        benchmark: Option<BenchmarkReport>,
    ) -> SmokeReport {
        let verdict = Verdict::combine(
            checks
                .iter()
                .map(|c| c.verdict)
                .chain(benchmark.iter().map(|b| b.verdict)),
        );
        SmokeReport {
            url: url.to_string(),
            checks,
            benchmark,
            verdict,
            served_version: ServedVersion::NotAsked,
        }
    }

    /// Every failed check or threshold, one line each, for a short summary.
    pub fn failures(&self) -> Vec<String> {
        let mut lines: Vec<String> = self
            .checks
            .iter()
            .filter(|c| c.verdict == Verdict::Fail)
            .map(|c| format!("{}: {}", c.id, c.summary()))
            .collect();
        for endpoint in self.benchmark.iter().flat_map(|b| &b.endpoints) {
            for t in endpoint
                .thresholds
                .iter()
                .filter(|t| t.verdict() == Verdict::Fail)
            {
                lines.push(format!(
                    "{} {}: {}",
                    endpoint.name,
                    t.metric(),
                    t.check.summary()
                ));
            }
        }
        lines
    }
}

impl BenchmarkReport {
    /// The endpoints where the generator could not keep the open model's rate: more than
    /// [`super::stats::MAX_LATE_SHARE_PCT`] of the schedule late. Their latencies are partly
    /// the generator's, so the run cannot stand as a measurement.
    pub fn rate_not_kept(&self) -> Vec<&EndpointReport> {
        self.endpoints
            .iter()
            .filter(|e| {
                e.thresholds
                    .iter()
                    .any(|t| t.metric() == stats::LATE_SENDS && t.verdict() == Verdict::Fail)
            })
            .collect()
    }
}

/// Phase 2: the load settings used and one result per endpoint.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct BenchmarkReport {
    /// How the load was generated.
    pub load: LoadSettings,
    /// The results, in the order measured.
    pub endpoints: Vec<EndpointReport>,
    /// Any endpoint failing fails the benchmark.
    pub verdict: Verdict,
}

impl BenchmarkReport {
    /// Assembles the benchmark result and its verdict.
    pub fn new(load: LoadSettings, endpoints: Vec<EndpointReport>) -> BenchmarkReport {
        let verdict = if endpoints.is_empty() {
            Verdict::Fail
        } else {
            Verdict::combine(endpoints.iter().map(|e| e.verdict))
        };
        BenchmarkReport {
            load,
            endpoints,
            verdict,
        }
    }
}

/// The figures and threshold verdicts of one endpoint.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct EndpointReport {
    /// Short name.
    pub name: String,
    /// Path below the base URL.
    pub path: String,
    /// Statuses counted as success; empty means any 2xx.
    pub expect: Vec<u16>,
    /// Measured requests sent (warm-up excluded).
    pub requests: u64,
    /// Requests answered with an expected status.
    pub succeeded: u64,
    /// Failed requests by kind.
    pub errors: ErrorCounts,
    /// Failed share in percent (0 when nothing was sent; the threshold fails that case).
    pub error_rate_pct: f64,
    /// Open model: requests sent more than [`super::stats::LATE_TOLERANCE`] after their
    /// intended time (every connection busy, or the generator itself behind; their latency
    /// still counts from the intended time), plus those due before the end and never sent.
    /// Always 0 in the closed model.
    pub late: u64,
    /// Open model: requests the schedule held (`rate` × duration, or `--requests`); 0 in the
    /// closed model. `throughput_rps` is the rate achieved.
    #[serde(default)]
    pub scheduled: u64,
    /// Measured wall time in milliseconds.
    pub elapsed_ms: f64,
    /// Requests ended (answered or failed) per second of measured time.
    pub throughput_rps: f64,
    /// Latency of every answered request, whatever its status.
    pub latency: LatencySummary,
    /// Latency of the successful requests only, shown beside `latency`.
    pub success_latency: LatencySummary,
    /// Open model only: the latency of every answered request counted from when it was
    /// released to a load thread rather than from its intended time, leaving out the
    /// pacing's own wait (up to the batch interval at high rates). `latency` is the figure
    /// the thresholds judge; this one is what a generator that counts from its own release
    /// reports (oha's `--latency-correction` counts from its ticker's wake).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub latency_from_release: Option<LatencySummary>,
    /// The p95 and error-rate limits with their measured values.
    pub thresholds: Vec<ThresholdOutcome>,
    /// Fail when any threshold fails.
    pub verdict: Verdict,
}

/// Turns one endpoint's raw measurement into its figures and verdicts.
pub fn endpoint_report(
    plan: &EndpointPlan,
    measurement: &EndpointMeasurement,
    error_rate_limit_pct: f64,
) -> EndpointReport {
    let latency = stats::summarize(&measurement.latency);
    let success_latency = stats::summarize(&measurement.success_latency);
    let requests = measurement.succeeded + measurement.errors.total();
    let thresholds = stats::evaluate(
        plan,
        &latency,
        &measurement.errors,
        requests,
        error_rate_limit_pct,
    );
    let mut thresholds = thresholds;
    if measurement.scheduled > 0 {
        thresholds.push(stats::late_sends(
            plan,
            measurement.late,
            measurement.scheduled,
        ));
    }
    let verdict = Verdict::combine(thresholds.iter().map(|t| t.verdict()));
    EndpointReport {
        name: plan.name.clone(),
        path: plan.path.clone(),
        expect: plan.expect.clone(),
        requests,
        succeeded: measurement.succeeded,
        errors: measurement.errors.clone(),
        error_rate_pct: stats::error_rate(&measurement.errors, requests).unwrap_or(0.0),
        late: measurement.late,
        scheduled: measurement.scheduled,
        elapsed_ms: millis(measurement.elapsed),
        throughput_rps: stats::throughput(requests, measurement.elapsed),
        latency,
        success_latency,
        latency_from_release: (measurement.scheduled > 0).then(|| {
            measurement
                .from_release
                .as_ref()
                .map(stats::summarize)
                .unwrap_or_default()
        }),
        thresholds,
        verdict,
    }
}

fn millis(d: Duration) -> f64 {
    // Microsecond resolution is all a wall-clock interval is worth.
    (d.as_secs_f64() * 1_000_000.0).round() / 1000.0
}
