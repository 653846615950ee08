//! The middleware of every matched route: `http_requests_total` and
//! `http_request_duration_seconds` by route template (never the raw path), the per-client
//! rate limit of the limited routes, the write-path health, the request timeout, a handler
//! panic turned into a 500, and the body limit the extractors read.
//!
//! A plain tower service with a future of its own: no allocation per request, one clock read
//! at the start (the timeout's deadline counts from it too) and one at the end, and the
//! route's metric handles kept after its first request.

use std::any::Any;
use std::convert::Infallible;
use std::panic::AssertUnwindSafe;
use std::pin::Pin;
use std::sync::{Arc, OnceLock};
use std::task::{Context, Poll};
use std::time::Instant;

use axum::body::HttpBody;
use axum::extract::{DefaultBodyLimit, MatchedPath, Request};
use axum::http::Method;
use axum::response::{IntoResponse, Response};
use tower::{Layer, Service};

use crate::error::ApiError;
use crate::http::edge;
use crate::http::state::AppState;
use crate::telemetry::{HttpMetrics, RouteMetrics};

/// The largest request body accepted.
pub const MAX_BODY_BYTES: usize = 64 * 1024;

/// Puts [`PerRoute`] on each route (`Router::route_layer`).
#[derive(Clone)]
pub struct PerRouteLayer {
    state: AppState,
}

impl PerRouteLayer {
    /// The layer over the service's state (its limiter, write health and timeout).
    pub fn new(state: AppState) -> Self {
        Self { state }
    }
}

/// The route's own service inside the body limit its extractors read.
impl<S> Layer<S> for PerRouteLayer {
    type Service = PerRoute<<DefaultBodyLimit as Layer<S>>::Service>;

    fn layer(&self, inner: S) -> Self::Service {
        PerRoute {
            inner: DefaultBodyLimit::max(MAX_BODY_BYTES).layer(inner),
            state: self.state.clone(),
            metrics: Arc::default(),
        }
    }
}

/// [`PerRouteLayer`] around one route.
#[derive(Clone)]
pub struct PerRoute<S> {
    inner: S,
    state: AppState,
    /// The metric handles of the route template this service serves, with the template.
    metrics: Arc<OnceLock<(MatchedPath, Arc<RouteMetrics>)>>,
}

impl<S> PerRoute<S> {
    fn metrics_of(&self, route: Option<&MatchedPath>) -> Arc<RouteMetrics> {
        let template = route.map_or("unmatched", MatchedPath::as_str);
        if let Some((kept, metrics)) = self.metrics.get()
            && kept.as_str() == template
        {
            return metrics.clone();
        }
        let metrics = HttpMetrics::global().for_route(template);
        if let Some(route) = route {
            let _ = self.metrics.set((route.clone(), metrics.clone()));
        }
        metrics
    }
}

impl<S, B> Service<Request> for PerRoute<S>
where
    S: Service<Request, Response = axum::http::Response<B>, Error = Infallible>,
    B: HttpBody<Data = axum::body::Bytes> + Send + 'static,
    B::Error: Into<axum::BoxError>,
{
    type Response = Response;
    type Error = Infallible;
    type Future = PerRouteFuture<S::Future>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: Request) -> Self::Future {
        let started = Instant::now();
        let method = request.method().clone();
        let route = request.extensions().get::<MatchedPath>();
        let metrics = self.metrics_of(route);
        let template = route.map_or("unmatched", MatchedPath::as_str);
        let stage = match edge::rate_limit(&self.state, template, &request) {
            Some(limited) => Stage::Answered {
                response: Some(limited),
            },
            None => {
                let deadline = tokio::time::Instant::from_std(started) + self.state.request_timeout;
                Stage::Handling {
                    handled: tokio::time::timeout_at(deadline, self.inner.call(request)),
                }
            }
        };
        PerRouteFuture {
            stage,
            started,
            method,
            metrics,
            state: self.state.clone(),
        }
    }
}

pin_project_lite::pin_project! {
    /// The response of [`PerRoute`]: the handler's within the timeout (or the 429, 500 or 503
    /// in its place), recorded in the metrics and the write health when it is ready.
    pub struct PerRouteFuture<F> {
        #[pin]
        stage: Stage<F>,
        started: Instant,
        method: Method,
        metrics: Arc<RouteMetrics>,
        state: AppState,
    }
}

pin_project_lite::pin_project! {
    #[project = StageProj]
    enum Stage<F> {
        Answered { response: Option<Response> },
        Handling {
            #[pin]
            handled: tokio::time::Timeout<F>,
        },
    }
}

impl<F, B> Future for PerRouteFuture<F>
where
    F: Future<Output = Result<axum::http::Response<B>, Infallible>>,
    B: HttpBody<Data = axum::body::Bytes> + Send + 'static,
    B::Error: Into<axum::BoxError>,
{
    type Output = Result<Response, Infallible>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = self.project();
        let response = match this.stage.project() {
            StageProj::Answered { response } => response
                .take()
                .expect("a per-route future is polled after it completed"),
            StageProj::Handling { handled } => {
                // A panic in the handler becomes a 500, still counted under its route.
                match std::panic::catch_unwind(AssertUnwindSafe(|| handled.poll(cx))) {
                    Ok(Poll::Pending) => return Poll::Pending,
                    Ok(Poll::Ready(Ok(Ok(response)))) => response.map(axum::body::Body::new),
                    Ok(Poll::Ready(Ok(Err(never)))) => match never {},
                    Ok(Poll::Ready(Err(_elapsed))) => ApiError::Timeout.into_response(),
                    Err(panic) => panic_response(panic),
                }
            }
        };
        crate::write_health::record_write(&this.state.writes, this.method, &response);
        this.metrics.record(
            this.method,
            response.status().as_u16(),
            this.started.elapsed(),
        );
        Poll::Ready(Ok(response))
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
