//! The HTTP layer: one `router()` per resource, merged by [`app`] with the middleware
//! every route shares.

pub mod accommodations;
pub mod admin;
pub mod calendar;
pub mod cors;
pub mod edge;
pub mod extract;
pub mod health;
pub mod identity;
pub mod openapi;
pub mod per_route;
pub mod pre_reserve;
pub mod rate_limit;
pub mod replay;
pub mod reservations;
pub mod server;
pub mod stack;
pub mod state;
pub mod test_fixtures;
pub mod version;
pub mod webhooks;

use axum::Router;
use axum::extract::DefaultBodyLimit;

use crate::error::ApiError;
use crate::http::per_route::PerRouteLayer;
use crate::http::state::AppState;

pub use per_route::MAX_BODY_BYTES;
pub use stack::{App, Layers};

/// The whole service, used by `main` and by the tests.
pub fn app(state: AppState) -> App {
    let (routes, _document) = openapi::documented_routes().split_for_parts();
    with_middleware(routes, state)
}

/// Wraps routes in the middleware every route of the service shares: panics and timeouts
/// become error responses, metrics by route template, request ids, tracing, the body limit,
/// and JSON errors for unknown paths and methods. Public so tests can put routes that
/// misbehave on purpose behind the same stack.
pub fn with_middleware(routes: Router<AppState>, state: AppState) -> App {
    with_layers(routes, state, Layers::ALL)
}

/// [`with_middleware`] with only the chosen shared layers. The body limit, the JSON
/// fallbacks and the replay of writes to the primary region are always there.
///
/// Only the per-route layer (with the body limit) is put on each route: it needs the matched
/// route template. The others wrap the routed router once ([`stack::App`]).
pub fn with_layers(routes: Router<AppState>, state: AppState, layers: Layers) -> App {
    // One middleware for what every matched route shares (metrics by route template, the
    // rate limit, write health, the timeout), with a panic inside it still becoming an
    // error response that the metrics count under the route template.
    let routes = if layers.per_route {
        routes.route_layer(PerRouteLayer::new(state.clone()))
    } else {
        routes.route_layer(DefaultBodyLimit::max(MAX_BODY_BYTES))
    };
    let routed = routes
        .fallback(not_found)
        .method_not_allowed_fallback(method_not_allowed)
        .with_state(state.clone());
    App::new(
        routed,
        layers,
        edge::cors(&state.edge),
        state.regions.replay_writes_to(),
    )
}

async fn not_found() -> ApiError {
    ApiError::NotFound("no route matches this path".into())
}

async fn method_not_allowed() -> ApiError {
    ApiError::MethodNotAllowed
}

/// The route templates whose requests can be answered 429. Health, readiness, metrics and
/// reads are never limited.
pub const RATE_LIMITED_ROUTES: [&str; 3] = [
    edge::PRE_RESERVE,
    webhooks::mercadopago::PATH,
    webhooks::whatsapp::PATH,
];

/// Touches the HTTP layer's metrics with a zero, so each name is in `/metrics` before the
/// first event (the rest are registered with the recorder, [`crate::telemetry::prometheus`]).
pub fn register_metrics() {
    for route in RATE_LIMITED_ROUTES {
        metrics::counter!("http_rate_limited_total", "route" => route).increment(0);
    }
    webhooks::register_metrics();
}

/// Waits for SIGTERM or Ctrl-C, for graceful shutdown.
pub async fn shutdown_signal() {
    let ctrl_c = async {
        if let Err(err) = tokio::signal::ctrl_c().await {
            tracing::error!(error = %err, "cannot listen for Ctrl-C");
            std::future::pending::<()>().await;
        }
    };
    #[cfg(unix)]
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut signal) => {
                signal.recv().await;
            }
            Err(err) => {
                tracing::error!(error = %err, "cannot listen for SIGTERM");
                std::future::pending::<()>().await;
            }
        }
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();
    tokio::select! {
        () = ctrl_c => {},
        () = terminate => {},
    }
    tracing::info!("shutdown signal received; finishing in-flight requests");
}
