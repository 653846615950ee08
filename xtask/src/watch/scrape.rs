//! Reading the service's `/metrics` (Prometheus text format, parsed by `prometheus-parse`):
//! request and 5xx counters per route, and the latency histogram summed over routes.

use std::collections::BTreeMap;

use prometheus_parse::{Scrape, Value};
use serde::{Deserialize, Serialize};

/// The request counter the service exports, labelled `method`, `route`, `status`.
pub const REQUESTS_METRIC: &str = "http_requests_total";
/// The latency histogram the service exports, labelled `route`.
pub const DURATION_METRIC: &str = "http_request_duration_seconds";
/// The scrape's own route: left out of the latency figures (the watch itself calls it).
pub const METRICS_ROUTE: &str = cabanas_contract::routes::METRICS;

/// Counters of one route, as read (cumulative since the process started).
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, Deserialize)]
pub struct RouteCounts {
    /// Requests answered, any status.
    pub requests: f64,
    /// Requests answered with a 5xx status.
    pub server_errors: f64,
}

/// What one scrape of `/metrics` says.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct MetricsScrape {
    /// Counters by route template (`/api/v1/reservations/{code}`).
    pub routes: BTreeMap<String, RouteCounts>,
    /// The latency histogram of every route but `/metrics`, summed: cumulative
    /// `(upper bound in seconds, count)` pairs, ascending, `+Inf` last.
    pub latency_buckets: Vec<(f64, f64)>,
}

/// Parses a scrape. Samples of other metrics are ignored; a body without the request
/// counter is an error (not the service's `/metrics`).
pub fn parse(text: &str) -> anyhow::Result<MetricsScrape> {
    let lines = text.lines().map(|line| Ok(line.to_string()));
    let scrape = Scrape::parse(lines)
        .map_err(|error| anyhow::anyhow!("not Prometheus text format: {error}"))?;
    let mut result = MetricsScrape::default();
    let mut buckets: BTreeMap<u64, (f64, f64)> = BTreeMap::new();
    let mut saw_requests = false;
    for sample in &scrape.samples {
        let route = sample
            .labels
            .get("route")
            .unwrap_or("unlabelled")
            .to_string();
        match (sample.metric.as_str(), &sample.value) {
            (REQUESTS_METRIC, Value::Counter(count) | Value::Untyped(count)) => {
                saw_requests = true;
                let counts = result.routes.entry(route).or_default();
                counts.requests += count;
                if sample
                    .labels
                    .get("status")
                    .is_some_and(|s| s.starts_with('5'))
                {
                    counts.server_errors += count;
                }
            }
            (DURATION_METRIC, Value::Histogram(counts)) if route != METRICS_ROUTE => {
                for bucket in counts {
                    // Ordered by the bound; f64 bits of non-negative numbers sort as numbers.
                    let entry = buckets
                        .entry(bucket.less_than.to_bits())
                        .or_insert((bucket.less_than, 0.0));
                    entry.1 += bucket.count;
                }
            }
            _ => {}
        }
    }
    if !saw_requests {
        anyhow::bail!("no `{REQUESTS_METRIC}` in the scrape: is this the service's /metrics?");
    }
    result.latency_buckets = buckets.into_values().collect();
    Ok(result)
}

#[cfg(test)]
mod tests {
    use super::*;

    const TEXT: &str = "\
# TYPE http_requests_total counter
http_requests_total{method=\"GET\",route=\"/api/v1/healthz\",status=\"200\"} 10
http_requests_total{method=\"GET\",route=\"/api/v1/healthz\",status=\"503\"} 2
http_requests_total{method=\"POST\",route=\"/api/v1/reservations/pre-reserve\",status=\"409\"} 3
# TYPE http_request_duration_seconds histogram
http_request_duration_seconds_bucket{route=\"/api/v1/healthz\",le=\"0.1\"} 11
http_request_duration_seconds_bucket{route=\"/api/v1/healthz\",le=\"1\"} 12
http_request_duration_seconds_bucket{route=\"/api/v1/healthz\",le=\"+Inf\"} 12
http_request_duration_seconds_sum{route=\"/api/v1/healthz\"} 0.5
http_request_duration_seconds_count{route=\"/api/v1/healthz\"} 12
http_request_duration_seconds_bucket{route=\"/metrics\",le=\"0.1\"} 100
http_request_duration_seconds_bucket{route=\"/metrics\",le=\"1\"} 100
http_request_duration_seconds_bucket{route=\"/metrics\",le=\"+Inf\"} 100
http_request_duration_seconds_sum{route=\"/metrics\"} 0.5
http_request_duration_seconds_count{route=\"/metrics\"} 100
";

    #[test]
    fn counts_requests_and_5xx_per_route() {
        let scrape = parse(TEXT).unwrap();
        let health = scrape.routes["/api/v1/healthz"];
        assert_eq!((health.requests, health.server_errors), (12.0, 2.0));
        let pre = scrape.routes["/api/v1/reservations/pre-reserve"];
        assert_eq!(
            (pre.requests, pre.server_errors),
            (3.0, 0.0),
            "409 is no 5xx"
        );
    }

    #[test]
    fn latency_leaves_out_the_scrape_route() {
        let scrape = parse(TEXT).unwrap();
        assert_eq!(scrape.latency_buckets.len(), 3);
        assert_eq!(scrape.latency_buckets[0], (0.1, 11.0));
        assert!(scrape.latency_buckets[2].0.is_infinite());
        assert_eq!(scrape.latency_buckets[2].1, 12.0);
    }

    #[test]
    fn a_body_without_the_request_counter_is_refused() {
        let error = parse("# TYPE up gauge\nup 1\n").unwrap_err();
        assert!(error.to_string().contains("http_requests_total"), "{error}");
    }
}
