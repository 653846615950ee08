//! The service's contract with the tools that ship and watch it, in one place: the paths
//! probes, scrapers and checks call, and the metric families `/metrics` exports from startup.
//!
//! The backend serves these (its tests fail when a path here is missing from its OpenAPI
//! document or a name from its exporter), and `xtask` calls them (smoke, watch, the release
//! gates, the image check, overlap), so the two cannot drift apart. No dependencies: both
//! crates build it in a moment.

/// Route paths of the service.
pub mod routes {
    /// Liveness: the process answers.
    pub const HEALTHZ: &str = "/api/v1/healthz";
    /// Readiness: the process answers and its database is reachable.
    pub const READYZ: &str = "/api/v1/readyz";
    /// Prometheus exposition of [`crate::METRIC_NAMES`] and the process metrics.
    pub const METRICS: &str = "/metrics";
    /// The commit and build the running binary was made from.
    pub const VERSION: &str = "/api/v1/version";
    /// The OpenAPI document.
    pub const OPENAPI: &str = "/api/v1/openapi.json";
    /// The public list of accommodations.
    pub const ACCOMMODATIONS: &str = "/api/v1/reservations/accommodations";
    /// MercadoPago's payment notifications.
    pub const WEBHOOK_MERCADOPAGO: &str = "/api/v1/webhooks/mercadopago";
    /// Meta's WhatsApp deliveries.
    pub const WEBHOOK_WHATSAPP: &str = "/api/v1/webhooks/whatsapp";

    /// Routes that load balancers, monitors and scrapers poll.
    pub const PROBES: [&str; 3] = [HEALTHZ, READYZ, METRICS];
    /// Webhook routes: each refuses a request without a valid signature.
    pub const WEBHOOKS: [&str; 2] = [WEBHOOK_MERCADOPAGO, WEBHOOK_WHATSAPP];
}

/// Every metric family the service exports; each appears in `/metrics` from startup, so a
/// scrape right after a deploy already shows all of them.
pub const METRIC_NAMES: [&str; 10] = [
    "http_requests_total",
    "http_request_duration_seconds",
    "reservations_created_total",
    "reservations_date_overlap_total",
    "reservations_confirmed_total",
    "reservations_cancelled_total",
    "prereservations_expired_total",
    "http_rate_limited_total",
    "outbox_pending",
    "outbox_sends_total",
];

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_unique_and_paths_absolute() {
        let mut names = METRIC_NAMES.to_vec();
        names.sort_unstable();
        names.dedup();
        assert_eq!(names.len(), METRIC_NAMES.len(), "a metric is listed twice");
        for path in routes::PROBES.iter().chain(&routes::WEBHOOKS) {
            assert!(path.starts_with('/'), "{path}");
        }
    }
}
