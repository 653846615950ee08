//! Logs and metrics.

use std::collections::HashMap;
use std::io::IsTerminal;
use std::sync::{Arc, OnceLock, RwLock};
use std::time::Duration;

use axum::http::Method;
use metrics::{Counter, Histogram};
use metrics_exporter_prometheus::{Matcher, PrometheusBuilder, PrometheusHandle};
use tracing_subscriber::EnvFilter;

/// Every metric the service exports; each appears in `/metrics` from startup. The list is
/// the service contract's, which the deploy tools check against.
pub use cabanas_contract::METRIC_NAMES;

/// Booking channels reported as metric labels; any other channel is labelled `other`,
/// so clients cannot grow the label set without bound.
pub const KNOWN_CHANNELS: [&str; 8] = [
    "web",
    "whatsapp",
    "phone",
    "email",
    "instagram",
    "airbnb",
    "booking",
    "walk_in",
];

/// Installs structured logging: JSON when stderr is not a terminal, `RUST_LOG` filters.
pub fn init_tracing() {
    let filter = EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| EnvFilter::new("info,sqlx=warn,tower_http=info"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    let result = if std::io::stderr().is_terminal() {
        builder.try_init()
    } else {
        builder
            .json()
            .flatten_event(true)
            .with_current_span(true)
            // The request span is the only one; the list would repeat it on every line.
            .with_span_list(false)
            .try_init()
    };
    if result.is_err() {
        // Someone (a test harness) installed a subscriber first; keep theirs.
    }
}

/// How often the recorder's upkeep runs (drains histogram samples into their summaries).
pub const METRICS_UPKEEP_INTERVAL: std::time::Duration = std::time::Duration::from_secs(5);

/// The process-wide Prometheus handle.
///
/// A metrics recorder can be installed only once per process, and tests start many apps
/// in one process, so it is installed on first use and shared. Installed this way the
/// recorder has no upkeep of its own: histogram samples pile up until a scrape renders
/// them (about 18 bytes per request while nothing scrapes `/metrics`). A thread, not a
/// task, runs the upkeep, so it outlives any one runtime.
pub fn prometheus() -> PrometheusHandle {
    static HANDLE: OnceLock<PrometheusHandle> = OnceLock::new();
    HANDLE
        .get_or_init(|| {
            let builder = PrometheusBuilder::new()
                .set_buckets_for_metric(
                    Matcher::Full("http_request_duration_seconds".into()),
                    &[0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0],
                )
                .expect("the bucket list is not empty");
            let handle = match builder.install_recorder() {
                Ok(handle) => handle,
                Err(err) => {
                    tracing::warn!(error = %err, "metrics recorder not installed; /metrics stays empty");
                    PrometheusBuilder::new().build_recorder().handle()
                }
            };
            register_metrics();
            let upkeep = handle.clone();
            let spawned = std::thread::Builder::new()
                .name("metrics-upkeep".into())
                .spawn(move || {
                    loop {
                        std::thread::sleep(METRICS_UPKEEP_INTERVAL);
                        upkeep.run_upkeep();
                    }
                });
            if let Err(err) = spawned {
                tracing::warn!(error = %err, "metrics upkeep not started; memory grows until /metrics is scraped");
            }
            handle
        })
        .clone()
}

/// Describes every metric and touches it with a zero, so that each name is in the output
/// before the first event.
fn register_metrics() {
    use metrics::{Unit, counter, describe_counter, describe_histogram, histogram};
    describe_counter!(
        "http_requests_total",
        "HTTP requests by method, route and status"
    );
    describe_histogram!(
        "http_request_duration_seconds",
        Unit::Seconds,
        "HTTP request latency by route"
    );
    describe_counter!(
        "reservations_created_total",
        "Pre-reservations created, by channel"
    );
    describe_counter!(
        "reservations_date_overlap_total",
        "Pre-reservations refused because the dates were taken"
    );
    describe_counter!("reservations_confirmed_total", "Reservations confirmed");
    describe_counter!("reservations_cancelled_total", "Reservations cancelled");
    describe_counter!(
        "prereservations_expired_total",
        "Pre-reservations expired by the sweep"
    );
    counter!("http_requests_total", "method" => "GET", "route" => "/metrics", "status" => "200")
        .increment(0);
    let _ = histogram!("http_request_duration_seconds", "route" => "/metrics");
    for channel in KNOWN_CHANNELS.iter().chain(["other"].iter()) {
        counter!("reservations_created_total", "channel" => *channel).increment(0);
    }
    counter!("reservations_date_overlap_total").increment(0);
    crate::outbox::register_metrics();
    counter!("reservations_confirmed_total").increment(0);
    counter!("reservations_cancelled_total").increment(0);
    counter!("prereservations_expired_total").increment(0);
    describe_counter!(
        "http_rate_limited_total",
        "Requests answered 429 by the per-client rate limit, by route"
    );
    describe_counter!(
        "db_connections_discarded_total",
        "Pooled PostgreSQL connections closed on release because they were inside a transaction"
    );
    counter!("db_connections_discarded_total", "reason" => "in_transaction").increment(0);
    describe_counter!(
        "db_reads_total",
        "Reads by the pool that served them: the region's replica, or the primary when there is \
         none or it lags past DATABASE_READ_MAX_LAG_MS"
    );
    for pool in ["replica", "primary"] {
        counter!("db_reads_total", "pool" => pool).increment(0);
    }
}

/// The metric label for a booking channel.
pub fn channel_label(channel: &str) -> &'static str {
    KNOWN_CHANNELS
        .iter()
        .find(|known| **known == channel)
        .copied()
        .unwrap_or("other")
}

/// The handles of `http_requests_total` and `http_request_duration_seconds`, per route
/// template, method and status: registered once, then reused, so recording a request
/// allocates no label strings and takes no registry lookup.
#[derive(Default)]
pub struct HttpMetrics {
    routes: RwLock<HashMap<String, Arc<RouteMetrics>>>,
}

/// The handles of one route template.
pub struct RouteMetrics {
    route: String,
    duration: Histogram,
    requests: RwLock<Vec<(Method, u16, Counter)>>,
}

impl HttpMetrics {
    /// The process-wide instance (the recorder is process-wide too).
    pub fn global() -> &'static HttpMetrics {
        static METRICS: OnceLock<HttpMetrics> = OnceLock::new();
        METRICS.get_or_init(HttpMetrics::default)
    }

    /// The handles of `route` (a route template), registered on first use; a caller that
    /// keeps them records without the lookup.
    pub fn for_route(&self, route: &str) -> Arc<RouteMetrics> {
        if let Some(metrics) = self
            .routes
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .get(route)
        {
            return metrics.clone();
        }
        self.routes
            .write()
            .unwrap_or_else(|p| p.into_inner())
            .entry(route.to_owned())
            .or_insert_with(|| {
                Arc::new(RouteMetrics {
                    route: route.to_owned(),
                    duration: metrics::histogram!("http_request_duration_seconds", "route" => route.to_owned()),
                    requests: RwLock::default(),
                })
            })
            .clone()
    }
}

impl RouteMetrics {
    /// Records one request of the route template these handles are for.
    pub fn record(&self, method: &Method, status: u16, elapsed: Duration) {
        self.duration.record(elapsed.as_secs_f64());
        {
            let requests = self.requests.read().unwrap_or_else(|p| p.into_inner());
            if let Some((_, _, counter)) = requests
                .iter()
                .find(|(m, s, _)| m == method && *s == status)
            {
                counter.increment(1);
                return;
            }
        }
        let counter = metrics::counter!(
            "http_requests_total",
            "method" => method.to_string(),
            "route" => self.route.clone(),
            "status" => status.to_string()
        );
        counter.increment(1);
        self.requests
            .write()
            .unwrap_or_else(|p| p.into_inner())
            .push((method.clone(), status, counter));
    }
}
