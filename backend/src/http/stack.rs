//! The layers every request passes before routing, as one tower service, [`App`]: the
//! request id, the access log, CORS and the replay of writes to the primary region.
//!
//! They wrap the routed router once. Put on it with `Router::layer`, axum would box each of
//! them into every route and clone every box on every request (an allocation per layer per
//! request); and a router around them (`fallback_service`) would route each request twice.
//! Each is a small service of its own with a switch, so `examples/stack` can run the same
//! stack with some of them off, and `cargo xtask bench --only layers` says what each costs.

use std::convert::Infallible;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::task::{Context, Poll};
use std::time::Instant;

use axum::Router;
use axum::extract::Request;
use axum::http::{HeaderName, HeaderValue};
use axum::response::Response;
use tower::{Layer, Service};
use tracing::Span;

use crate::http::cors::{Cors, CorsFuture, CorsLayer};

/// The routed router behind the replay of writes, with or without CORS.
type WithCors = Switch<Cors<Replay<Router>>, Replay<Router>>;

/// The routed router's future, behind the replay of writes.
type Routed = Answer<<Router as Service<Request>>::Future>;

/// The request id header: the client's, or a new one; always on the response.
pub const REQUEST_ID: HeaderName = HeaderName::from_static("x-request-id");

/// The shared middleware layers, each of which [`super::with_layers`] can leave out: the service
/// always runs with [`Layers::ALL`]; `examples/stack` adds them one at a time so
/// `cargo xtask bench` can say what each costs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Layers {
    /// Metrics by route template, the rate limit, write health, the request timeout and a
    /// handler panic turned into a 500 (one tower service, [`PerRouteLayer`]).
    pub per_route: bool,
    /// CORS for the configured origins.
    pub cors: bool,
    /// The request span and its access-log line.
    pub trace: bool,
    /// `x-request-id`: set when missing, copied to the response.
    pub request_id: bool,
}

impl Layers {
    /// Every layer: the service's stack.
    pub const ALL: Layers = Layers {
        per_route: true,
        cors: true,
        trace: true,
        request_id: true,
    };
    /// No shared layer at all.
    pub const NONE: Layers = Layers {
        per_route: false,
        cors: false,
        trace: false,
        request_id: false,
    };
    /// The layers' names, innermost first, as [`Layers::parse`] takes them.
    pub const NAMES: [&str; 4] = ["per-route", "cors", "trace", "request-id"];

    /// A comma-separated list of [`Layers::NAMES`], `all` or `none`.
    pub fn parse(list: &str) -> Result<Layers, String> {
        let mut layers = Layers::NONE;
        for name in list.split(',').map(str::trim).filter(|n| !n.is_empty()) {
            match name {
                "all" => layers = Layers::ALL,
                "none" => {}
                "per-route" => layers.per_route = true,
                "cors" => layers.cors = true,
                "trace" => layers.trace = true,
                "request-id" => layers.request_id = true,
                other => {
                    return Err(format!(
                        "unknown layer `{other}` (expected a comma-separated list of {}, or all, or none)",
                        Layers::NAMES.join(", ")
                    ));
                }
            }
        }
        Ok(layers)
    }
}

/// The whole service: the routed router inside the shared layers, outermost first.
#[derive(Clone)]
pub struct App {
    inner: WithRequestId<AccessLog<WithCors>>,
}

impl App {
    /// `routed` inside the layers that are on. `cors` is the configured policy, `primary`
    /// the region writes are replayed to (none in the primary region).
    pub fn new(routed: Router, layers: Layers, cors: CorsLayer, primary: Option<&str>) -> Self {
        let replay = Replay {
            inner: routed,
            primary: primary.map(Arc::from),
        };
        let cors = Switch {
            on: layers.cors,
            inner: cors.layer(replay.clone()),
            off: replay,
        };
        App {
            inner: WithRequestId {
                inner: AccessLog {
                    inner: cors,
                    on: layers.trace,
                },
                ids: layers.request_id.then(RequestIds::default),
            },
        }
    }
}

impl Service<Request> for App {
    type Response = Response;
    type Error = Infallible;
    type Future = RequestIdFuture<AccessLogFuture<SwitchFuture<CorsFuture<Routed>, Routed>>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: Request) -> Self::Future {
        self.inner.call(request)
    }
}

pin_project_lite::pin_project! {
    /// A response at hand, or the inner service's future.
    #[project = AnswerProj]
    pub enum Answer<F> {
        /// Answered without the inner service.
        Now { response: Option<Response> },
        /// The inner service's answer.
        Inner {
            #[pin]
            future: F,
        },
    }
}

impl<F> Future for Answer<F>
where
    F: Future<Output = Result<Response, Infallible>>,
{
    type Output = Result<Response, Infallible>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        match self.project() {
            AnswerProj::Now { response } => Poll::Ready(Ok(response
                .take()
                .expect("an answer is polled after it completed"))),
            AnswerProj::Inner { future } => future.poll(cx),
        }
    }
}

/// A layer that is on or off: `inner` is the service with it, `off` the one without.
#[derive(Clone)]
struct Switch<S, T> {
    on: bool,
    inner: S,
    off: T,
}

impl<S, T> Service<Request> for Switch<S, T>
where
    S: Service<Request, Response = Response, Error = Infallible>,
    T: Service<Request, Response = Response, Error = Infallible>,
{
    type Response = Response;
    type Error = Infallible;
    type Future = SwitchFuture<S::Future, T::Future>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        if self.on {
            self.inner.poll_ready(cx)
        } else {
            self.off.poll_ready(cx)
        }
    }

    fn call(&mut self, request: Request) -> Self::Future {
        if self.on {
            SwitchFuture::On {
                future: self.inner.call(request),
            }
        } else {
            SwitchFuture::Off {
                future: self.off.call(request),
            }
        }
    }
}

pin_project_lite::pin_project! {
    /// The response of [`Switch`]: with the layer or without it.
    #[project = SwitchProj]
    pub enum SwitchFuture<A, B> {
        /// Through the layer.
        On { #[pin] future: A },
        /// Past it.
        Off { #[pin] future: B },
    }
}

impl<A, B> Future for SwitchFuture<A, B>
where
    A: Future<Output = Result<Response, Infallible>>,
    B: Future<Output = Result<Response, Infallible>>,
{
    type Output = Result<Response, Infallible>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        match self.project() {
            SwitchProj::On { future } => future.poll(cx),
            SwitchProj::Off { future } => future.poll(cx),
        }
    }
}

/// Outside the primary region, a write is answered with `fly-replay` before it reaches a
/// route ([`super::replay::redirect_write`]).
#[derive(Clone)]
struct Replay<S> {
    inner: S,
    primary: Option<Arc<str>>,
}

impl<S> Service<Request> for Replay<S>
where
    S: Service<Request, Response = Response, Error = Infallible>,
{
    type Response = Response;
    type Error = Infallible;
    type Future = Answer<S::Future>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: Request) -> Self::Future {
        if let Some(primary) = &self.primary
            && let Some(response) = crate::http::replay::redirect_write(primary, &request)
        {
            return Answer::Now {
                response: Some(response),
            };
        }
        Answer::Inner {
            future: self.inner.call(request),
        }
    }
}

/// The access log: a span per request (`method`, `path`, `request_id`) that the handler's
/// own events are logged in, and one line when the response is ready ("finished processing
/// request", with `status` and `latency_ms`), at INFO, or at DEBUG for the probe routes. A
/// 5xx is also logged at ERROR ("response failed"), probes included. When the span is off
/// (a probe with the default filter) the request passes without a clock read.
#[derive(Clone)]
struct AccessLog<S> {
    inner: S,
    on: bool,
}

impl<S> Service<Request> for AccessLog<S>
where
    S: Service<Request, Response = Response, Error = Infallible>,
{
    type Response = Response;
    type Error = Infallible;
    type Future = AccessLogFuture<S::Future>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: Request) -> Self::Future {
        if !self.on {
            return AccessLogFuture {
                inner: self.inner.call(request),
                logged: None,
                on: false,
            };
        }
        let span = request_span(&request);
        if span.is_disabled() {
            return AccessLogFuture {
                inner: self.inner.call(request),
                logged: None,
                on: true,
            };
        }
        let inner = {
            let _entered = span.enter();
            self.inner.call(request)
        };
        AccessLogFuture {
            inner,
            logged: Some((span, Instant::now())),
            on: true,
        }
    }
}

fn request_span(request: &Request) -> Span {
    let path = request.uri().path();
    let method = request.method();
    // Load balancers, monitors and scrapers poll the probe routes: their lines are at DEBUG,
    // so a poller's rate sets neither the log volume nor its cost. A disabled span (a probe
    // with the default filter) evaluates no field: not even the request id is looked up.
    if cabanas_contract::routes::PROBES.contains(&path) {
        tracing::debug_span!("request", method = %method, path, request_id = request_id_of(request))
    } else {
        tracing::info_span!("request", method = %method, path, request_id = request_id_of(request))
    }
}

fn request_id_of(request: &Request) -> &str {
    request
        .headers()
        .get(&REQUEST_ID)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("-")
}

pin_project_lite::pin_project! {
    /// The response of [`AccessLog`], logged when it is ready.
    pub struct AccessLogFuture<F> {
        #[pin]
        inner: F,
        logged: Option<(Span, Instant)>,
        on: bool,
    }
}

impl<F> Future for AccessLogFuture<F>
where
    F: Future<Output = Result<Response, Infallible>>,
{
    type Output = Result<Response, Infallible>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = self.project();
        let Some((span, started)) = this.logged else {
            let Ok(response) = std::task::ready!(this.inner.poll(cx));
            if *this.on && response.status().is_server_error() {
                tracing::error!(status = response.status().as_u16(), "response failed");
            }
            return Poll::Ready(Ok(response));
        };
        let _entered = span.enter();
        let Ok(response) = std::task::ready!(this.inner.poll(cx));
        let status = response.status().as_u16();
        let latency_ms = started.elapsed().as_secs_f64() * 1000.0;
        tracing::info!(status, latency_ms, "finished processing request");
        if response.status().is_server_error() {
            tracing::error!(status, latency_ms, "response failed");
        }
        Poll::Ready(Ok(response))
    }
}

/// Sets `x-request-id` on a request that has none, and copies the request's to a response
/// that has none.
#[derive(Clone)]
struct WithRequestId<S> {
    inner: S,
    ids: Option<RequestIds>,
}

impl<S> Service<Request> for WithRequestId<S>
where
    S: Service<Request, Response = Response, Error = Infallible>,
{
    type Response = Response;
    type Error = Infallible;
    type Future = RequestIdFuture<S::Future>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, mut request: Request) -> Self::Future {
        let Some(ids) = &self.ids else {
            return RequestIdFuture {
                inner: self.inner.call(request),
                id: None,
            };
        };
        let id = match request.headers().get(&REQUEST_ID) {
            Some(id) => id.clone(),
            None => {
                let id = ids.next();
                request.headers_mut().insert(REQUEST_ID, id.clone());
                id
            }
        };
        RequestIdFuture {
            inner: self.inner.call(request),
            id: Some(id),
        }
    }
}

pin_project_lite::pin_project! {
    /// The response of [`WithRequestId`], with the request's id.
    pub struct RequestIdFuture<F> {
        #[pin]
        inner: F,
        id: Option<HeaderValue>,
    }
}

impl<F> Future for RequestIdFuture<F>
where
    F: Future<Output = Result<Response, Infallible>>,
{
    type Output = Result<Response, Infallible>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = self.project();
        let Ok(mut response) = std::task::ready!(this.inner.poll(cx));
        if let Some(id) = this.id.take() {
            response.headers_mut().entry(REQUEST_ID).or_insert(id);
        }
        Poll::Ready(Ok(response))
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

impl RequestIds {
    fn next(&self) -> HeaderValue {
        const HEX: &[u8; 16] = b"0123456789abcdef";
        let n = self.next.fetch_add(1, Ordering::Relaxed);
        let mut id = [0u8; 32];
        for (i, digit) in id.iter_mut().enumerate() {
            let word = if i < 16 { self.prefix } else { n };
            *digit = HEX[((word >> (60 - 4 * (i % 16))) & 0xf) as usize];
        }
        HeaderValue::from_bytes(&id).expect("hex digits are a valid header value")
    }
}
