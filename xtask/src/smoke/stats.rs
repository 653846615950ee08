//! Statistics: pure functions from what the load generator counted to the figures and the
//! threshold verdicts. Nothing here does I/O or looks at a clock.

use std::collections::BTreeMap;
use std::time::Duration;

use hdrhistogram::Histogram;
use serde::{Deserialize, Serialize};

use super::plan::EndpointPlan;
use crate::check::CheckResult;
use crate::verdict::Verdict;

/// Open model: a request sent later than this after its intended time counts as late.
pub const LATE_TOLERANCE: Duration = Duration::from_millis(10);

/// Open model: the share of the schedule, in percent, that may be late (or never sent before
/// the end) before the run is declared one where the generator could not keep the rate.
pub const MAX_LATE_SHARE_PCT: f64 = 1.0;

/// Highest latency the histogram tracks exactly: 60 s, in microseconds. Longer ones saturate.
pub const MAX_TRACKED_MICROS: u64 = 60_000_000;

/// Latencies in microseconds, 1 µs to 60 s at 3 significant digits. Its memory is fixed (about
/// 150 KB) however many requests it records.
#[derive(Debug, Clone)]
pub struct LatencyHistogram {
    inner: Histogram<u64>,
}

impl Default for LatencyHistogram {
    fn default() -> Self {
        LatencyHistogram::new()
    }
}

impl LatencyHistogram {
    /// An empty histogram.
    pub fn new() -> LatencyHistogram {
        let inner = Histogram::new_with_bounds(1, MAX_TRACKED_MICROS, 3)
            .expect("1 µs .. 60 s at 3 significant digits are valid histogram bounds");
        LatencyHistogram { inner }
    }

    /// Records one latency; values beyond 60 s count as 60 s, below 1 µs as 1 µs.
    pub fn record(&mut self, latency: Duration) {
        let micros = u64::try_from(latency.as_micros())
            .unwrap_or(u64::MAX)
            .max(1);
        self.inner.saturating_record(micros);
    }

    /// Adds every value of `other` (per-worker histograms are merged at the end).
    pub fn merge(&mut self, other: &LatencyHistogram) {
        // Same bounds on both sides, so adding cannot fail.
        let _ = self.inner.add(&other.inner);
    }

    /// How many latencies were recorded.
    pub fn len(&self) -> u64 {
        self.inner.len()
    }

    /// Whether nothing was recorded.
    pub fn is_empty(&self) -> bool {
        self.inner.is_empty()
    }
}

/// Latency figures in milliseconds. With `count == 0` every figure is 0, never NaN.
#[derive(Debug, Clone, Copy, PartialEq, Default, Serialize, Deserialize)]
pub struct LatencySummary {
    /// Requests the figures cover.
    pub count: u64,
    /// Fastest.
    pub min_ms: f64,
    /// Median.
    pub p50_ms: f64,
    /// 90th percentile.
    pub p90_ms: f64,
    /// 95th percentile.
    pub p95_ms: f64,
    /// 99th percentile.
    pub p99_ms: f64,
    /// 99.9th percentile.
    pub p99_9_ms: f64,
    /// Slowest.
    pub max_ms: f64,
    /// Arithmetic mean.
    pub mean_ms: f64,
}

/// Summarises a histogram. Percentiles are HDR's (the highest value equivalent to the sample
/// at that quantile, within 0.1 %).
pub fn summarize(histogram: &LatencyHistogram) -> LatencySummary {
    let h = &histogram.inner;
    if h.is_empty() {
        return LatencySummary::default();
    }
    let ms = |micros: u64| micros as f64 / 1000.0;
    LatencySummary {
        count: h.len(),
        min_ms: ms(h.min()),
        p50_ms: ms(h.value_at_quantile(0.50)),
        p90_ms: ms(h.value_at_quantile(0.90)),
        p95_ms: ms(h.value_at_quantile(0.95)),
        p99_ms: ms(h.value_at_quantile(0.99)),
        p99_9_ms: ms(h.value_at_quantile(0.999)),
        max_ms: ms(h.max()),
        mean_ms: h.mean() / 1000.0,
    }
}

/// Failed requests by kind. A request fails on a transport error or a status outside the
/// endpoint's expected set.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct ErrorCounts {
    /// The connection could not be opened (refused, DNS, TLS handshake).
    pub connect: u64,
    /// No complete answer within the per-request timeout.
    pub timeout: u64,
    /// The connection broke mid-request (closed, reset, malformed answer).
    pub transport: u64,
    /// Answers with an unexpected status, by status code.
    pub status: BTreeMap<u16, u64>,
}

impl ErrorCounts {
    /// All failed requests.
    pub fn total(&self) -> u64 {
        self.connect + self.timeout + self.transport + self.status.values().sum::<u64>()
    }

    /// Requests that never got an HTTP answer.
    pub fn transport_total(&self) -> u64 {
        self.connect + self.timeout + self.transport
    }

    /// Adds `other`'s counts.
    pub fn merge(&mut self, other: &ErrorCounts) {
        self.connect += other.connect;
        self.timeout += other.timeout;
        self.transport += other.transport;
        for (status, count) in &other.status {
            *self.status.entry(*status).or_default() += count;
        }
    }

    /// `connect 3, 404 x12`: the kinds that occurred, or `none`.
    pub fn describe(&self) -> String {
        let mut parts = Vec::new();
        for (kind, count) in [
            ("connect", self.connect),
            ("timeout", self.timeout),
            ("transport", self.transport),
        ] {
            if count > 0 {
                parts.push(format!("{kind} {count}"));
            }
        }
        parts.extend(
            self.status
                .iter()
                .map(|(status, count)| format!("{status} x{count}")),
        );
        if parts.is_empty() {
            "none".to_string()
        } else {
            parts.join(", ")
        }
    }
}

/// The share of failed requests in percent, or `None` when nothing was sent.
pub fn error_rate(errors: &ErrorCounts, attempted: u64) -> Option<f64> {
    (attempted > 0).then(|| errors.total() as f64 * 100.0 / attempted as f64)
}

/// Requests per second over `elapsed`; 0 for an empty interval.
pub fn throughput(requests: u64, elapsed: Duration) -> f64 {
    let secs = elapsed.as_secs_f64();
    if secs > 0.0 {
        requests as f64 / secs
    } else {
        0.0
    }
}

/// One limit held against one measured value: a check (id `p95 latency`, `error rate`, ...)
/// with the numbers it compared.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ThresholdOutcome {
    /// The check: id is what is limited, the evidence one sentence (`p95 1.20 ms < 200 ms`).
    #[serde(flatten)]
    pub check: CheckResult,
    /// The measured value, in `unit`; `None` when nothing was measured (always a failure).
    pub measured: Option<f64>,
    /// The limit, in `unit`; the value must be strictly below it.
    pub limit: f64,
    /// `ms` or `%`.
    pub unit: String,
}

impl ThresholdOutcome {
    fn new(
        metric: &str,
        endpoint: &EndpointPlan,
        measured: Option<f64>,
        (limit, unit): (f64, &str),
        pass: bool,
        evidence: String,
    ) -> ThresholdOutcome {
        let verdict = if pass { Verdict::Pass } else { Verdict::Fail };
        let fix = (!pass).then(|| {
            format!(
                "find what slows or fails {} (service logs, /metrics); if the limit is wrong \
                 for this environment, change [thresholds] in ops/deploy.toml",
                endpoint.path
            )
        });
        ThresholdOutcome {
            check: CheckResult::observed(
                metric,
                format!(
                    "{metric} of {} stays below {} {unit}",
                    endpoint.path,
                    fmt_num(limit)
                ),
                verdict,
                evidence,
                fix,
            ),
            measured,
            limit,
            unit: unit.to_string(),
        }
    }

    /// What is limited: `p95 latency`, `error rate`, ...
    pub fn metric(&self) -> &str {
        &self.check.id
    }

    /// Pass when the measured value is strictly below the limit.
    pub fn verdict(&self) -> Verdict {
        self.check.verdict
    }
}

/// Holds the p95 latency (over every answered request) and the error rate against the
/// endpoint's limits. Zero answered requests fail: a benchmark that measured nothing never
/// passes. The error rate passes strictly below its limit; a limit of 0 allows no error.
pub fn evaluate(
    endpoint: &EndpointPlan,
    latency: &LatencySummary,
    errors: &ErrorCounts,
    attempted: u64,
    error_rate_limit_pct: f64,
) -> Vec<ThresholdOutcome> {
    let p95 = latency_limit(
        endpoint,
        "p95",
        latency.count,
        latency.p95_ms,
        endpoint.p95_ms,
    );
    let rate = error_rate(errors, attempted);
    let error = match rate {
        None => ThresholdOutcome::new(
            "error rate",
            endpoint,
            None,
            (error_rate_limit_pct, "%"),
            false,
            "no request was sent".into(),
        ),
        Some(rate) => {
            let pass =
                rate < error_rate_limit_pct || (error_rate_limit_pct == 0.0 && errors.total() == 0);
            let evidence = format!(
                "{} % {} {} % ({} of {attempted}: {})",
                fmt_num(rate),
                if pass { "<" } else { ">=" },
                fmt_num(error_rate_limit_pct),
                errors.total(),
                errors.describe()
            );
            ThresholdOutcome::new(
                "error rate",
                endpoint,
                Some(rate),
                (error_rate_limit_pct, "%"),
                pass,
                evidence,
            )
        }
    };
    let mut outcomes = vec![p95, error];
    // p99 and the slowest request, where the environment sets a limit on them.
    for (label, measured, limit) in [
        ("p99", latency.p99_ms, endpoint.p99_ms),
        ("max", latency.max_ms, endpoint.max_ms),
    ] {
        if let Some(limit) = limit {
            outcomes.push(latency_limit(
                endpoint,
                label,
                latency.count,
                measured,
                limit,
            ));
        }
    }
    outcomes
}

/// The metric name of the open model's late-send limit.
pub const LATE_SENDS: &str = "late sends";

/// Open model: the share of the schedule sent late (or never), held at or below
/// [`MAX_LATE_SHARE_PCT`]. Above it the generator could not keep the rate.
pub fn late_sends(endpoint: &EndpointPlan, late: u64, scheduled: u64) -> ThresholdOutcome {
    let limit = MAX_LATE_SHARE_PCT;
    let share = if scheduled == 0 {
        0.0
    } else {
        late as f64 * 100.0 / scheduled as f64
    };
    let pass = share <= limit;
    let evidence = format!(
        "{late} of {scheduled} sent more than {} ms late or not at all ({} % {} {} %){}",
        LATE_TOLERANCE.as_millis(),
        fmt_num(share),
        if pass { "<=" } else { ">" },
        fmt_num(limit),
        if pass {
            ""
        } else {
            ": the generator could not keep the rate"
        }
    );
    let fix = (!pass).then(|| {
        "lower --rate to what the target sustains, or raise --concurrency when every \
         connection was busy; the latencies of this run are partly the generator's"
            .to_string()
    });
    ThresholdOutcome {
        check: CheckResult::observed(
            LATE_SENDS,
            format!(
                "the generator sends the requests to {} on schedule (at most {} % late)",
                endpoint.path,
                fmt_num(limit)
            ),
            if pass { Verdict::Pass } else { Verdict::Fail },
            evidence,
            fix,
        ),
        measured: Some(share),
        limit,
        unit: "%".into(),
    }
}

/// `<label> latency` held strictly below `limit`; nothing measured fails.
fn latency_limit(
    endpoint: &EndpointPlan,
    label: &str,
    count: u64,
    measured: f64,
    limit: f64,
) -> ThresholdOutcome {
    let metric = format!("{label} latency");
    if count == 0 {
        let evidence = format!("no request completed (limit {} ms)", fmt_num(limit));
        return ThresholdOutcome::new(&metric, endpoint, None, (limit, "ms"), false, evidence);
    }
    let pass = measured < limit;
    let evidence = format!(
        "{label} {} ms {} {} ms",
        fmt_num(measured),
        if pass { "<" } else { ">=" },
        fmt_num(limit)
    );
    ThresholdOutcome::new(
        &metric,
        endpoint,
        Some(measured),
        (limit, "ms"),
        pass,
        evidence,
    )
}

/// A figure with as many decimals as it needs to be read: `1.23`, `45.6`, `3000`.
pub fn fmt_num(value: f64) -> String {
    if value.abs() >= 100.0 {
        format!("{value:.0}")
    } else if value.abs() >= 10.0 {
        format!("{value:.1}")
    } else {
        format!("{value:.2}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn histogram_of_millis(values: impl IntoIterator<Item = u64>) -> LatencyHistogram {
        let mut h = LatencyHistogram::new();
        for v in values {
            h.record(Duration::from_millis(v));
        }
        h
    }

    fn close(actual: f64, expected: f64) -> bool {
        (actual - expected).abs() <= expected * 0.002
    }

    #[test]
    fn uniform_distribution_percentiles() {
        let s = summarize(&histogram_of_millis(1..=1000));
        assert_eq!(s.count, 1000);
        assert!(close(s.min_ms, 1.0), "{s:?}");
        assert!(close(s.p50_ms, 500.0), "{s:?}");
        assert!(close(s.p90_ms, 900.0), "{s:?}");
        assert!(close(s.p95_ms, 950.0), "{s:?}");
        assert!(close(s.p99_ms, 990.0), "{s:?}");
        assert!(close(s.p99_9_ms, 999.0), "{s:?}");
        assert!(close(s.max_ms, 1000.0), "{s:?}");
        assert!(close(s.mean_ms, 500.5), "{s:?}");
    }

    #[test]
    fn a_slow_tail_shows_in_the_high_percentiles_only() {
        // 98 fast requests and 2 that took a second: p95 stays fast, p99 sees the tail.
        let s = summarize(&histogram_of_millis(
            (0..98).map(|_| 10).chain([1000, 1000]),
        ));
        assert!(close(s.p95_ms, 10.0), "{s:?}");
        assert!(close(s.p99_ms, 1000.0), "{s:?}");
    }

    #[test]
    fn empty_set_has_zero_figures_and_fails() {
        let s = summarize(&LatencyHistogram::new());
        assert_eq!(s, LatencySummary::default());
        assert!(
            [s.min_ms, s.p95_ms, s.mean_ms, s.max_ms]
                .iter()
                .all(|v| v.is_finite())
        );
        assert_eq!(error_rate(&ErrorCounts::default(), 0), None);
        let endpoint = EndpointPlan {
            name: "x".into(),
            path: "/x".into(),
            expect: vec![],
            p95_ms: 200.0,
            p99_ms: None,
            max_ms: None,
        };
        let outcomes = evaluate(&endpoint, &s, &ErrorCounts::default(), 0, 1.0);
        assert!(
            outcomes.iter().all(|o| o.verdict() == Verdict::Fail),
            "{outcomes:?}"
        );
        assert!(outcomes[0].check.summary().contains("no request completed"));
    }

    #[test]
    fn single_sample_is_every_percentile() {
        let s = summarize(&histogram_of_millis([42]));
        assert_eq!(s.count, 1);
        for v in [s.min_ms, s.p50_ms, s.p99_9_ms, s.max_ms, s.mean_ms] {
            assert!(close(v, 42.0), "{s:?}");
        }
    }

    #[test]
    fn out_of_range_latencies_saturate() {
        let mut h = LatencyHistogram::new();
        h.record(Duration::ZERO);
        h.record(Duration::from_secs(3600));
        let s = summarize(&h);
        assert_eq!(s.count, 2);
        assert!(s.min_ms > 0.0 && s.max_ms <= 60_100.0, "{s:?}");
    }

    #[test]
    fn merged_histograms_count_everything() {
        let mut a = histogram_of_millis(1..=500);
        a.merge(&histogram_of_millis(501..=1000));
        assert!(close(summarize(&a).p50_ms, 500.0));
    }

    #[test]
    fn error_rate_counts_every_kind() {
        let mut errors = ErrorCounts {
            connect: 1,
            timeout: 2,
            transport: 3,
            ..ErrorCounts::default()
        };
        errors.status.insert(404, 4);
        assert_eq!(errors.total(), 10);
        assert_eq!(error_rate(&errors, 200), Some(5.0));
        assert_eq!(
            errors.describe(),
            "connect 1, timeout 2, transport 3, 404 x4"
        );
    }

    /// Endpoint `/x` held to p95 100 ms only.
    fn endpoint_x() -> EndpointPlan {
        EndpointPlan {
            name: "x".into(),
            path: "/x".into(),
            expect: vec![],
            p95_ms: 100.0,
            p99_ms: None,
            max_ms: None,
        }
    }

    #[test]
    fn thresholds_pass_strictly_below_their_limits() {
        let endpoint = endpoint_x();
        let fast = LatencySummary {
            count: 100,
            p95_ms: 99.0,
            ..LatencySummary::default()
        };
        let slow = LatencySummary {
            count: 100,
            p95_ms: 100.0,
            ..LatencySummary::default()
        };
        let mut one_error = ErrorCounts::default();
        one_error.status.insert(500, 1);
        let ok = evaluate(&endpoint, &fast, &ErrorCounts::default(), 100, 1.0);
        assert!(ok.iter().all(|o| o.verdict() == Verdict::Pass), "{ok:?}");
        let bad = evaluate(&endpoint, &slow, &one_error, 100, 1.0);
        assert!(bad.iter().all(|o| o.verdict() == Verdict::Fail), "{bad:?}");
        assert_eq!(bad[1].measured, Some(1.0));
        let zero_limit = evaluate(&endpoint, &fast, &ErrorCounts::default(), 100, 0.0);
        assert_eq!(zero_limit[1].verdict(), Verdict::Pass);
    }

    #[test]
    fn p99_and_max_are_held_only_where_a_limit_is_set() {
        let mut endpoint = endpoint_x();
        let measured = LatencySummary {
            count: 100,
            p95_ms: 50.0,
            p99_ms: 150.0,
            max_ms: 900.0,
            ..LatencySummary::default()
        };
        let none = evaluate(&endpoint, &measured, &ErrorCounts::default(), 100, 1.0);
        assert_eq!(none.len(), 2);
        endpoint.p99_ms = Some(200.0);
        endpoint.max_ms = Some(500.0);
        let held = evaluate(&endpoint, &measured, &ErrorCounts::default(), 100, 1.0);
        let by_metric = |m: &str| held.iter().find(|o| o.metric() == m).unwrap().verdict();
        assert_eq!(by_metric("p99 latency"), Verdict::Pass);
        assert_eq!(by_metric("max latency"), Verdict::Fail);
        assert!(
            held.iter()
                .any(|o| o.check.summary() == "max 900 ms >= 500 ms"),
            "{held:?}"
        );
    }

    #[test]
    fn late_sends_above_the_share_mean_the_rate_was_not_kept() {
        let endpoint = EndpointPlan {
            name: "healthz".into(),
            path: "/api/v1/healthz".into(),
            expect: vec![],
            p95_ms: 200.0,
            p99_ms: None,
            max_ms: None,
        };
        let kept = late_sends(&endpoint, 10, 1000);
        assert_eq!(kept.verdict(), Verdict::Pass, "{kept:?}");
        assert!(!kept.check.summary().contains("could not keep"), "{kept:?}");
        let behind = late_sends(&endpoint, 11, 1000);
        assert_eq!(behind.verdict(), Verdict::Fail, "{behind:?}");
        assert_eq!(behind.metric(), LATE_SENDS);
        assert!(
            behind
                .check
                .summary()
                .contains("the generator could not keep the rate"),
            "{behind:?}"
        );
        assert!(behind.check.fix.is_some());
        assert_eq!(late_sends(&endpoint, 0, 0).verdict(), Verdict::Pass);
    }
}
