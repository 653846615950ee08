//! Pure statistics over a run's samples: availability, probe latency, per-route deltas of the
//! request and 5xx counters, the p95 of each interval, version changes, and the breaches.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use super::breach::breach;
pub use super::breach::{Breach, BreachKind};
use super::machines;
use super::sample::Sample;
use super::scrape::{METRICS_ROUTE, MetricsScrape, RouteCounts};

/// The limits a watch holds the service to.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Limits {
    /// Availability under this (percent of samples) is a breach.
    pub availability_floor_pct: f64,
    /// An interval whose 5xx share of requests is at or over this (percent) is a breach.
    pub error_rate_pct: f64,
    /// An interval whose p95 latency (from the service's histogram) is over this is a breach.
    pub p95_ms: f64,
}

/// The counters' change over one interval (between two samples).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Interval {
    /// The end of the interval (the later sample).
    pub at: DateTime<Utc>,
    /// Requests answered in it, every route but `/metrics`.
    pub requests: f64,
    /// 5xx answers in it.
    pub server_errors: f64,
    /// p95 latency in it, estimated from the histogram buckets (`None` without requests).
    pub p95_ms: Option<f64>,
    /// The counters went down: the process restarted.
    pub counters_reset: bool,
}

/// A build change seen between two samples.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct VersionChange {
    /// The sample that first saw the new build.
    pub at: DateTime<Utc>,
    /// The build before (image, else commit).
    pub from: String,
    /// The build after.
    pub to: String,
}

/// Everything computed from a run's samples.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct WatchStats {
    /// Samples taken.
    pub samples: usize,
    /// Samples whose healthz and readyz answered 2xx.
    pub available: usize,
    /// `available / samples` in percent (100 without samples: nothing was seen down).
    pub availability_pct: f64,
    /// p95 of the healthz probe's latency, in milliseconds.
    pub probe_p95_ms: Option<f64>,
    /// Highest healthz probe latency, in milliseconds.
    pub probe_max_ms: Option<f64>,
    /// Request and 5xx deltas per route over the whole run.
    pub routes: BTreeMap<String, RouteCounts>,
    /// Each interval's deltas.
    pub intervals: Vec<Interval>,
    /// Builds that started serving during the run.
    pub version_changes: Vec<VersionChange>,
    /// Error and panic log lines counted.
    pub log_lines: u64,
    /// Machines seen starting again after Fly stopped them for idleness (no breach).
    #[serde(default)]
    pub machine_wakes: usize,
    /// Every breach, in time order.
    pub breaches: Vec<Breach>,
}

/// Computes the statistics and breaches of `samples` (in time order) against `limits`.
pub fn compute(samples: &[Sample], limits: &Limits) -> WatchStats {
    let available = samples.iter().filter(|s| s.available()).count();
    let availability_pct = if samples.is_empty() {
        100.0
    } else {
        available as f64 * 100.0 / samples.len() as f64
    };
    let mut latencies: Vec<f64> = samples
        .iter()
        .filter(|s| s.healthz.status.is_some())
        .map(|s| s.healthz.latency_ms)
        .collect();
    latencies.sort_by(f64::total_cmp);
    let mut breaches = Vec::new();
    if availability_pct < limits.availability_floor_pct {
        breaches.extend(outages(samples, availability_pct, limits));
    }
    let (routes, intervals) = deltas(samples);
    for interval in &intervals {
        if interval.requests > 0.0 {
            let rate = interval.server_errors * 100.0 / interval.requests;
            if rate >= limits.error_rate_pct {
                breaches.push(breach(
                    interval.at,
                    BreachKind::ErrorRate,
                    format!(
                        "{} of {} requests answered 5xx ({rate:.1} %, limit < {} %)",
                        interval.server_errors, interval.requests, limits.error_rate_pct
                    ),
                ));
            }
        }
        if let Some(p95) = interval.p95_ms.filter(|p95| *p95 > limits.p95_ms) {
            breaches.push(breach(
                interval.at,
                BreachKind::Latency,
                format!("p95 {p95:.0} ms over the limit of {} ms", limits.p95_ms),
            ));
        }
    }
    let version_changes = version_changes(samples);
    for change in &version_changes {
        let mut found = breach(
            change.at,
            BreachKind::VersionChange,
            format!("{} replaced {}", change.to, change.from),
        );
        found.to_build = Some(change.to.clone());
        breaches.push(found);
    }
    breaches.extend(restarts(samples, &intervals, &version_changes));
    let (crashes, machine_wakes) = machines::restarts(samples);
    breaches.extend(crashes);
    let mut log_lines = 0;
    for sample in samples {
        let Some(logs) = sample.logs.as_ref().filter(|l| l.total() > 0) else {
            continue;
        };
        log_lines += logs.total();
        breaches.push(breach(
            sample.at,
            BreachKind::LogLines,
            format!("{} panic and {} error lines", logs.panics, logs.errors),
        ));
    }
    breaches.sort_by_key(|b| (b.at, b.kind));
    WatchStats {
        samples: samples.len(),
        available,
        availability_pct,
        probe_p95_ms: nearest_rank(&latencies, 0.95),
        probe_max_ms: latencies.last().copied(),
        routes,
        intervals,
        version_changes,
        log_lines,
        machine_wakes,
        breaches,
    }
}

/// One breach per stretch of consecutive unavailable samples.
fn outages(samples: &[Sample], availability_pct: f64, limits: &Limits) -> Vec<Breach> {
    let mut found: Vec<Breach> = Vec::new();
    let mut open = false;
    for sample in samples {
        if sample.available() {
            open = false;
            continue;
        }
        let why = match (&sample.healthz, &sample.readyz) {
            (h, _) if !h.ok() => describe_probe("healthz", h),
            (_, r) => describe_probe("readyz", r),
        };
        match found.last_mut().filter(|_| open) {
            Some(last) => last.until = Some(sample.at),
            None => found.push(breach(
                sample.at,
                BreachKind::Availability,
                format!(
                    "down ({why}); availability {availability_pct:.1} % under the floor of {} %",
                    limits.availability_floor_pct
                ),
            )),
        }
        open = true;
    }
    found
}

fn describe_probe(name: &str, probe: &super::sample::Probe) -> String {
    match (probe.status, &probe.error) {
        (Some(status), _) => format!("{name} answered {status}"),
        (None, Some(error)) => format!("{name}: {error}"),
        (None, None) => format!("{name} did not answer"),
    }
}

/// Per-route totals over the run and each interval's deltas. Deltas are taken within one
/// counter series (the whole-app scrape, or one machine's) and summed over the series. A
/// series whose counters went down is a new process: its new value is the interval's delta.
fn deltas(samples: &[Sample]) -> (BTreeMap<String, RouteCounts>, Vec<Interval>) {
    let mut totals: BTreeMap<String, RouteCounts> = BTreeMap::new();
    let mut intervals = Vec::new();
    let mut previous: BTreeMap<Option<String>, &MetricsScrape> = BTreeMap::new();
    for sample in samples {
        let mut interval = Interval {
            at: sample.at,
            requests: 0.0,
            server_errors: 0.0,
            p95_ms: None,
            counters_reset: false,
        };
        let mut latency: Vec<(f64, f64)> = Vec::new();
        let mut compared = false;
        for (key, current) in machines::series(sample) {
            if let Some(before) = previous.insert(key, current) {
                compared = true;
                let reset = machines::went_back(before, current);
                interval.counters_reset |= reset;
                for (route, now) in &current.routes {
                    let then = if reset {
                        RouteCounts::default()
                    } else {
                        before.routes.get(route).copied().unwrap_or_default()
                    };
                    let delta = RouteCounts {
                        requests: now.requests - then.requests,
                        server_errors: now.server_errors - then.server_errors,
                    };
                    let total = totals.entry(route.clone()).or_default();
                    total.requests += delta.requests;
                    total.server_errors += delta.server_errors;
                    if route != METRICS_ROUTE {
                        interval.requests += delta.requests;
                        interval.server_errors += delta.server_errors;
                    }
                }
                let base: &[(f64, f64)] = if reset { &[] } else { &before.latency_buckets };
                add_buckets(&mut latency, &bucket_deltas(base, &current.latency_buckets));
            }
        }
        if compared {
            interval.p95_ms = histogram_quantile(0.95, &latency).map(|seconds| seconds * 1000.0);
            intervals.push(interval);
        }
    }
    (totals, intervals)
}

/// Adds cumulative buckets `more` into `sum`, bound by bound, keeping the bounds ascending.
fn add_buckets(sum: &mut Vec<(f64, f64)>, more: &[(f64, f64)]) {
    for (bound, count) in more {
        match sum.iter_mut().find(|(b, _)| b == bound) {
            Some(entry) => entry.1 += count,
            None => sum.push((*bound, *count)),
        }
    }
    sum.sort_by(|a, b| a.0.total_cmp(&b.0));
}

fn bucket_deltas(before: &[(f64, f64)], now: &[(f64, f64)]) -> Vec<(f64, f64)> {
    now.iter()
        .map(|(bound, count)| {
            let then = before
                .iter()
                .find(|(b, _)| b == bound)
                .map_or(0.0, |(_, c)| *c);
            (*bound, count - then)
        })
        .collect()
}

/// Prometheus's `histogram_quantile`: linear interpolation inside the bucket that holds
/// the quantile; a quantile in the `+Inf` bucket is the highest finite bound. `buckets` are
/// cumulative `(upper bound, count)` pairs, ascending. `None` without observations.
pub fn histogram_quantile(q: f64, buckets: &[(f64, f64)]) -> Option<f64> {
    let total = buckets.last()?.1;
    if total <= 0.0 {
        return None;
    }
    let rank = q * total;
    let mut lower_bound = 0.0;
    let mut lower_count = 0.0;
    for (bound, count) in buckets {
        if *count >= rank {
            if bound.is_infinite() {
                return Some(lower_bound);
            }
            let in_bucket = count - lower_count;
            if in_bucket <= 0.0 {
                return Some(*bound);
            }
            return Some(lower_bound + (bound - lower_bound) * (rank - lower_count) / in_bucket);
        }
        lower_bound = *bound;
        lower_count = *count;
    }
    Some(lower_bound)
}

fn nearest_rank(sorted: &[f64], q: f64) -> Option<f64> {
    if sorted.is_empty() {
        return None;
    }
    let rank = (q * sorted.len() as f64).ceil() as usize;
    Some(sorted[rank.clamp(1, sorted.len()) - 1])
}

fn version_changes(samples: &[Sample]) -> Vec<VersionChange> {
    let mut changes = Vec::new();
    let mut current: Option<String> = None;
    for sample in samples {
        let Some(identity) = machines::app_identity(sample) else {
            continue;
        };
        match &current {
            Some(before) if *before != identity => changes.push(VersionChange {
                at: sample.at,
                from: before.clone(),
                to: identity.clone(),
            }),
            _ => {}
        }
        current = Some(identity);
    }
    changes
}

/// Restarts of the same build seen through the whole-app URL (samples without a machine
/// list; [`machines::restarts`] judges the others): the counters reset, or a machine reports
/// a new start time. A reset in the interval of a version change is that deploy.
fn restarts(samples: &[Sample], intervals: &[Interval], changes: &[VersionChange]) -> Vec<Breach> {
    let mut found = Vec::new();
    let deploy_at = |at: DateTime<Utc>| changes.iter().any(|change| change.at == at);
    let per_machine = |at: DateTime<Utc>| {
        samples
            .iter()
            .any(|s| s.at == at && (s.machines.is_some() || s.machines_error.is_some()))
    };
    let mut started: BTreeMap<String, String> = BTreeMap::new();
    for sample in samples.iter().filter(|s| !per_machine(s.at)) {
        let Some(build) = &sample.build else { continue };
        let (Some(machine), Some(start)) = (&build.machine, &build.started_at) else {
            continue;
        };
        let before = started.insert(machine.clone(), start.clone());
        if before.is_some_and(|before| before != *start) && !deploy_at(sample.at) {
            found.push(breach(
                sample.at,
                BreachKind::Restart,
                format!("machine {machine} restarted (serving since {start})"),
            ));
        }
    }
    for interval in intervals
        .iter()
        .filter(|i| i.counters_reset && !per_machine(i.at))
    {
        if !deploy_at(interval.at) && !found.iter().any(|b: &Breach| b.at == interval.at) {
            found.push(breach(
                interval.at,
                BreachKind::Restart,
                "the request counters went back: the service restarted".to_string(),
            ));
        }
    }
    found
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quantile_interpolates_inside_its_bucket() {
        let buckets = [(0.1, 50.0), (1.0, 100.0), (f64::INFINITY, 100.0)];
        let p95 = histogram_quantile(0.95, &buckets).unwrap();
        assert!((p95 - 0.91).abs() < 1e-9, "{p95}");
        assert_eq!(histogram_quantile(0.5, &buckets), Some(0.1));
        assert_eq!(
            histogram_quantile(0.95, &[(1.0, 0.0), (f64::INFINITY, 0.0)]),
            None
        );
        let slow = [(1.0, 1.0), (f64::INFINITY, 100.0)];
        assert_eq!(
            histogram_quantile(0.95, &slow),
            Some(1.0),
            "+Inf reports the top bound"
        );
    }

    #[test]
    fn nearest_rank_of_twenty() {
        let values: Vec<f64> = (1..=20).map(f64::from).collect();
        assert_eq!(nearest_rank(&values, 0.95), Some(19.0));
        assert_eq!(nearest_rank(&[], 0.95), None);
    }
}
