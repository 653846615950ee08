//! Logs and metrics.

use std::io::IsTerminal;
use std::sync::OnceLock;
use std::time::Instant;

use axum::extract::{MatchedPath, Request};
use axum::middleware::Next;
use axum::response::Response;
use metrics_exporter_prometheus::{Matcher, PrometheusBuilder, PrometheusHandle};
use tracing_subscriber::EnvFilter;

/// Every metric the service exports; each appears in `/metrics` from startup.
pub const METRIC_NAMES: [&str; 7] = [
    "http_requests_total",
    "http_request_duration_seconds",
    "reservations_created_total",
    "reservations_date_overlap_total",
    "reservations_confirmed_total",
    "reservations_cancelled_total",
    "prereservations_expired_total",
];

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
            .try_init()
    };
    if result.is_err() {
        // Someone (a test harness) installed a subscriber first; keep theirs.
    }
}

/// The process-wide Prometheus handle.
///
/// A metrics recorder can be installed only once per process, and tests start many apps
/// in one process, so it is installed on first use and shared.
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
    counter!("reservations_confirmed_total").increment(0);
    counter!("reservations_cancelled_total").increment(0);
    counter!("prereservations_expired_total").increment(0);
    crate::http::webhooks::register_metrics();
}

/// The metric label for a booking channel.
pub fn channel_label(channel: &str) -> &'static str {
    KNOWN_CHANNELS
        .iter()
        .find(|known| **known == channel)
        .copied()
        .unwrap_or("other")
}

/// Middleware recording `http_requests_total` and `http_request_duration_seconds`,
/// labelled with the route template (`/api/v1/reservations/{code}`), never the raw path.
pub async fn track_http(request: Request, next: Next) -> Response {
    let route = request
        .extensions()
        .get::<MatchedPath>()
        .map(|p| p.as_str().to_owned())
        .unwrap_or_else(|| "unmatched".to_owned());
    let method = request.method().to_string();
    let started = Instant::now();
    let response = next.run(request).await;
    let status = response.status().as_u16().to_string();
    metrics::counter!("http_requests_total", "method" => method, "route" => route.clone(), "status" => status)
        .increment(1);
    metrics::histogram!("http_request_duration_seconds", "route" => route)
        .record(started.elapsed().as_secs_f64());
    response
}
