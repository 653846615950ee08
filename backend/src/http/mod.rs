//! The HTTP layer: one `router()` per resource, merged by [`app`] with the middleware
//! every route shares.

pub mod accommodations;
pub mod extract;
pub mod health;
pub mod pre_reserve;
pub mod reservations;
pub mod version;
pub mod webhooks;

use std::any::Any;

use axum::Router;
use axum::extract::{DefaultBodyLimit, Request, State};
use axum::http::HeaderName;
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use tower::ServiceBuilder;
use tower_http::catch_panic::CatchPanicLayer;
use tower_http::request_id::{MakeRequestUuid, PropagateRequestIdLayer, SetRequestIdLayer};
use tower_http::trace::{DefaultOnResponse, TraceLayer};
use tracing::Level;

use crate::AppState;
use crate::error::ApiError;
use crate::telemetry::track_http;

/// The largest request body accepted.
pub const MAX_BODY_BYTES: usize = 64 * 1024;

const REQUEST_ID: HeaderName = HeaderName::from_static("x-request-id");

/// The whole service as a router, used by `main` and by the tests.
pub fn app(state: AppState) -> Router {
    let routes = Router::new()
        .merge(health::router())
        .merge(accommodations::router())
        .merge(reservations::router())
        .merge(webhooks::router())
        .merge(version::router());
    with_middleware(routes, state)
}

/// Wraps routes in the middleware every route of the service shares: panics and timeouts
/// become error responses, metrics by route template, request ids, tracing, the body limit,
/// and JSON errors for unknown paths and methods. Public so tests can put routes that
/// misbehave on purpose behind the same stack.
pub fn with_middleware(routes: Router<AppState>, state: AppState) -> Router {
    // Innermost first: a handler panic or timeout still becomes an error response that
    // the metrics layer counts under the route template.
    let per_route = ServiceBuilder::new()
        .layer(middleware::from_fn(track_http))
        .layer(CatchPanicLayer::custom(panic_response))
        .layer(middleware::from_fn_with_state(state.clone(), timeout));

    let request_id = REQUEST_ID;
    let tracing = TraceLayer::new_for_http()
        .on_response(DefaultOnResponse::new().level(Level::INFO))
        .make_span_with(move |req: &Request| {
            let id = req
                .headers()
                .get(&request_id)
                .and_then(|v| v.to_str().ok())
                .unwrap_or("-");
            tracing::info_span!(
                "request",
                method = %req.method(),
                path = %req.uri().path(),
                request_id = %id,
            )
        });

    routes
        .route_layer(per_route)
        .fallback(not_found)
        .method_not_allowed_fallback(method_not_allowed)
        .layer(DefaultBodyLimit::max(MAX_BODY_BYTES))
        .layer(
            ServiceBuilder::new()
                .layer(SetRequestIdLayer::new(REQUEST_ID, MakeRequestUuid))
                .layer(tracing)
                .layer(PropagateRequestIdLayer::new(REQUEST_ID)),
        )
        .with_state(state)
}

async fn timeout(State(state): State<AppState>, request: Request, next: Next) -> Response {
    match tokio::time::timeout(state.request_timeout, next.run(request)).await {
        Ok(response) => response,
        Err(_) => ApiError::Timeout.into_response(),
    }
}

fn panic_response(panic: Box<dyn Any + Send + 'static>) -> Response {
    let message = panic
        .downcast_ref::<String>()
        .map(String::as_str)
        .or_else(|| panic.downcast_ref::<&str>().copied())
        .unwrap_or("unknown panic");
    ApiError::Internal(anyhow::anyhow!("handler panicked: {message}")).into_response()
}

async fn not_found() -> ApiError {
    ApiError::NotFound("no route matches this path".into())
}

async fn method_not_allowed() -> ApiError {
    ApiError::MethodNotAllowed
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
