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
pub mod pre_reserve;
pub mod rate_limit;
pub mod replay;
pub mod reservations;
pub mod server;
pub mod state;
pub mod test_fixtures;
pub mod version;
pub mod webhooks;

use std::any::Any;
use std::convert::Infallible;
use std::panic::AssertUnwindSafe;
use std::pin::Pin;
use std::task::{Context, Poll};

use axum::Router;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use axum::body::HttpBody;
use axum::extract::{DefaultBodyLimit, MatchedPath, Request};
use axum::http::{HeaderName, HeaderValue};
use axum::response::{IntoResponse, Response};
use tower::{Layer, Service, ServiceBuilder};
use tower_http::request_id::{
    MakeRequestId, PropagateRequestIdLayer, RequestId, SetRequestIdLayer,
};
use tower_http::trace::TraceLayer;
use tracing::Span;

use crate::error::ApiError;
use crate::http::state::AppState;
use crate::telemetry::HttpMetrics;

/// The largest request body accepted.
pub const MAX_BODY_BYTES: usize = 64 * 1024;

/// Routes that load balancers, monitors and scrapers poll: their access-log lines (span and
/// "finished processing request") are at DEBUG, so a poller's rate sets neither the log
/// volume nor its cost. Every other request is logged at INFO with its request id.
pub const PROBE_ROUTES: [&str; 3] = cabanas_contract::routes::PROBES;

const REQUEST_ID: HeaderName = HeaderName::from_static("x-request-id");

/// The whole service as a router, used by `main` and by the tests.
pub fn app(state: AppState) -> Router {
    let (routes, _document) = openapi::documented_routes().split_for_parts();
    with_middleware(routes, state)
}

/// Wraps routes in the middleware every route of the service shares: panics and timeouts
/// become error responses, metrics by route template, request ids, tracing, the body limit,
/// and JSON errors for unknown paths and methods. Public so tests can put routes that
/// misbehave on purpose behind the same stack.
pub fn with_middleware(routes: Router<AppState>, state: AppState) -> Router {
    // One middleware for what every matched route shares (metrics by route template, the
    // rate limit, write health, the timeout), with a panic inside it still becoming an
    // error response that the metrics count under the route template.
    let per_route = PerRouteLayer {
        state: state.clone(),
    };

    let request_id = REQUEST_ID;
    let tracing = TraceLayer::new_for_http()
        .make_span_with(move |req: &Request| {
            let id = req
                .headers()
                .get(&request_id)
                .and_then(|v| v.to_str().ok())
                .unwrap_or("-");
            let path = req.uri().path();
            // A disabled span (a probe with the default filter) costs no formatting at all.
            if PROBE_ROUTES.contains(&path) {
                tracing::debug_span!("request", method = %req.method(), path, request_id = id)
            } else {
                tracing::info_span!("request", method = %req.method(), path, request_id = id)
            }
        })
        .on_response(|response: &Response, latency: Duration, span: &Span| {
            if !span.is_disabled() {
                tracing::info!(
                    status = response.status().as_u16(),
                    latency_ms = latency.as_secs_f64() * 1000.0,
                    "finished processing request"
                );
            }
        });

    let routes = routes
        .route_layer(per_route)
        .fallback(not_found)
        .method_not_allowed_fallback(method_not_allowed)
        .layer(DefaultBodyLimit::max(MAX_BODY_BYTES));
    // Outside the primary region, writes are replayed there before anything else runs.
    let routes = match state.regions.replay_writes_to() {
        Some(primary) => {
            let primary = primary.to_owned();
            routes.layer(axum::middleware::from_fn(move |request, next| {
                replay::replay_writes(primary.clone(), request, next)
            }))
        }
        None => routes,
    };
    routes
        .layer(edge::cors(&state.edge))
        .layer(
            ServiceBuilder::new()
                .layer(SetRequestIdLayer::new(REQUEST_ID, RequestIds::default()))
                .layer(tracing)
                .layer(PropagateRequestIdLayer::new(REQUEST_ID)),
        )
        .with_state(state)
}

/// The middleware of every matched route, outermost first: `http_requests_total` and
/// `http_request_duration_seconds` by route template (never the raw path), the per-client
/// rate limit of the limited routes, the write-path health, the request timeout, and a
/// handler panic turned into a 500.
/// A plain tower service rather than `from_fn`: one allocation per request instead of a
/// boxed copy of the route and of the next layer.
#[derive(Clone)]
struct PerRouteLayer {
    state: AppState,
}

impl<S> Layer<S> for PerRouteLayer {
    type Service = PerRoute<S>;

    fn layer(&self, inner: S) -> PerRoute<S> {
        PerRoute {
            inner,
            state: self.state.clone(),
        }
    }
}

#[derive(Clone)]
struct PerRoute<S> {
    inner: S,
    state: AppState,
}

impl<S, B> Service<Request> for PerRoute<S>
where
    S: Service<Request, Response = axum::http::Response<B>, Error = Infallible>,
    S::Future: Send + 'static,
    B: HttpBody<Data = axum::body::Bytes> + Send + 'static,
    B::Error: Into<axum::BoxError>,
{
    type Response = Response;
    type Error = Infallible;
    type Future = Pin<Box<dyn Future<Output = Result<Response, Infallible>> + Send>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: Request) -> Self::Future {
        let started = Instant::now();
        let method = request.method().clone();
        let route = request.extensions().get::<MatchedPath>().cloned();
        let limited = edge::rate_limit(
            &self.state,
            route.as_ref().map_or("unmatched", MatchedPath::as_str),
            &request,
        );
        let handled = match limited {
            Some(limited) => Err(limited),
            None => Ok(self.inner.call(request)),
        };
        let state = self.state.clone();
        Box::pin(async move {
            let response = match handled {
                Err(limited) => limited,
                Ok(handled) => {
                    // A panic in the handler becomes a 500, still counted under its route.
                    let mut handled = std::pin::pin!(handled);
                    let caught = std::future::poll_fn(|cx| {
                        match std::panic::catch_unwind(AssertUnwindSafe(|| {
                            handled.as_mut().poll(cx)
                        })) {
                            Ok(Poll::Pending) => Poll::Pending,
                            Ok(Poll::Ready(result)) => Poll::Ready(Ok(result)),
                            Err(panic) => Poll::Ready(Err(panic)),
                        }
                    });
                    match tokio::time::timeout(state.request_timeout, caught).await {
                        Ok(Ok(Ok(response))) => response.map(axum::body::Body::new),
                        Ok(Ok(Err(never))) => match never {},
                        Ok(Err(panic)) => panic_response(panic),
                        Err(_) => ApiError::Timeout.into_response(),
                    }
                }
            };
            crate::write_health::record_write(&state.writes, &method, &response);
            HttpMetrics::global().record(
                route.as_ref().map_or("unmatched", MatchedPath::as_str),
                &method,
                response.status().as_u16(),
                started.elapsed(),
            );
            Ok(response)
        })
    }
}

/// Request ids without a system call per request: 32 hex digits, a random per-process
/// prefix and a counter, unique within the process and, with overwhelming likelihood,
/// across instances.
#[derive(Clone)]
struct RequestIds {
    prefix: u64,
    next: Arc<AtomicU64>,
}

impl Default for RequestIds {
    fn default() -> Self {
        Self {
            prefix: rand::random(),
            next: Arc::default(),
        }
    }
}

impl MakeRequestId for RequestIds {
    fn make_request_id<B>(&mut self, _: &axum::http::Request<B>) -> Option<RequestId> {
        const HEX: &[u8; 16] = b"0123456789abcdef";
        let n = self.next.fetch_add(1, Ordering::Relaxed);
        let mut id = [0u8; 32];
        for (i, digit) in id.iter_mut().enumerate() {
            let word = if i < 16 { self.prefix } else { n };
            *digit = HEX[((word >> (60 - 4 * (i % 16))) & 0xf) as usize];
        }
        HeaderValue::from_bytes(&id).ok().map(RequestId::new)
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
