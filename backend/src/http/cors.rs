//! CORS for the configured origins, as a tower layer around every route.
//!
//! The policy: `GET` and `POST` from the origins in `ALLOWED_ORIGINS`, with the headers a
//! booking sends (`content-type`, `authorization`, `idempotency-key`), `retry-after` and
//! `x-request-id` readable by the page, preflights cached for 10 minutes. An origin not on
//! the list gets no `access-control-allow-origin`, so browsers refuse its requests.
//!
//! Every answer carries `vary: origin`; every `OPTIONS` request is answered here as a
//! preflight, without reaching a handler. The headers are those tower-http's `CorsLayer`
//! gave with the same policy; this layer exists because that one rebuilt its configuration
//! and its header map on every request, a fifth of what healthz cost the service. Here the
//! header values are constants, the origin list is shared, and a request adds at most three
//! headers to its response.

use std::convert::Infallible;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use axum::extract::Request;
use axum::http::header::{
    ACCESS_CONTROL_ALLOW_HEADERS, ACCESS_CONTROL_ALLOW_METHODS, ACCESS_CONTROL_ALLOW_ORIGIN,
    ACCESS_CONTROL_EXPOSE_HEADERS, ACCESS_CONTROL_MAX_AGE, ORIGIN, VARY,
};
use axum::http::{HeaderValue, Method};
use axum::response::Response;
use tower::{Layer, Service};

/// The methods a page may use.
pub const ALLOW_METHODS: HeaderValue = HeaderValue::from_static("GET,POST");
/// The request headers a page may send.
pub const ALLOW_HEADERS: HeaderValue =
    HeaderValue::from_static("content-type,authorization,idempotency-key");
/// The response headers a page may read.
pub const EXPOSE_HEADERS: HeaderValue = HeaderValue::from_static("retry-after,x-request-id");
/// How long a browser may cache a preflight, in seconds.
pub const MAX_AGE: HeaderValue = HeaderValue::from_static("600");
const VARY_ORIGIN: HeaderValue = HeaderValue::from_static("origin");

/// The layer: the allowed origins, shared by every route's copy.
#[derive(Clone, Debug)]
pub struct CorsLayer {
    origins: Arc<[HeaderValue]>,
}

impl CorsLayer {
    /// Allows exactly these origins (none when empty). Origins that are not valid header
    /// values can never match a request's `Origin` and are left out.
    pub fn new<'a>(origins: impl IntoIterator<Item = &'a str>) -> Self {
        Self {
            origins: origins
                .into_iter()
                .filter_map(|o| HeaderValue::from_str(o).ok())
                .collect(),
        }
    }

    /// The request's `Origin` when it is allowed: the value to echo back.
    fn allowed(&self, request: &Request) -> Option<HeaderValue> {
        let origin = request.headers().get(ORIGIN)?;
        self.origins
            .iter()
            .any(|o| o == origin)
            .then(|| origin.clone())
    }
}

impl<S> Layer<S> for CorsLayer {
    type Service = Cors<S>;

    fn layer(&self, inner: S) -> Cors<S> {
        Cors {
            inner,
            layer: self.clone(),
        }
    }
}

/// [`CorsLayer`] around one service.
#[derive(Clone, Debug)]
pub struct Cors<S> {
    inner: S,
    layer: CorsLayer,
}

impl<S> Service<Request> for Cors<S>
where
    S: Service<Request, Response = Response, Error = Infallible>,
{
    type Response = Response;
    type Error = Infallible;
    type Future = CorsFuture<S::Future>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: Request) -> Self::Future {
        let allow_origin = self.layer.allowed(&request);
        if request.method() == Method::OPTIONS {
            let mut response = Response::new(axum::body::Body::empty());
            let headers = response.headers_mut();
            headers.insert(VARY, VARY_ORIGIN);
            if let Some(origin) = allow_origin {
                headers.insert(ACCESS_CONTROL_ALLOW_ORIGIN, origin);
            }
            headers.insert(ACCESS_CONTROL_ALLOW_METHODS, ALLOW_METHODS);
            headers.insert(ACCESS_CONTROL_ALLOW_HEADERS, ALLOW_HEADERS);
            headers.insert(ACCESS_CONTROL_MAX_AGE, MAX_AGE);
            return CorsFuture {
                state: State::Preflight {
                    response: Some(response),
                },
            };
        }
        CorsFuture {
            state: State::Call {
                inner: self.inner.call(request),
                allow_origin,
            },
        }
    }
}

pin_project_lite::pin_project! {
    /// The response of [`Cors`]: a preflight answered at once, or the inner service's
    /// response with the CORS headers added.
    pub struct CorsFuture<F> {
        #[pin]
        state: State<F>,
    }
}

pin_project_lite::pin_project! {
    #[project = StateProj]
    enum State<F> {
        Preflight { response: Option<Response> },
        Call {
            #[pin]
            inner: F,
            allow_origin: Option<HeaderValue>,
        },
    }
}

impl<F> Future for CorsFuture<F>
where
    F: Future<Output = Result<Response, Infallible>>,
{
    type Output = Result<Response, Infallible>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        match self.project().state.project() {
            StateProj::Preflight { response } => Poll::Ready(Ok(response
                .take()
                .expect("a preflight future is polled after it completed"))),
            StateProj::Call {
                inner,
                allow_origin,
            } => {
                let Ok(mut response) = std::task::ready!(inner.poll(cx));
                let headers = response.headers_mut();
                // A handler's own `vary` stays; `origin` is added to it.
                headers.append(VARY, VARY_ORIGIN);
                headers.insert(ACCESS_CONTROL_EXPOSE_HEADERS, EXPOSE_HEADERS);
                if let Some(origin) = allow_origin.take() {
                    headers.insert(ACCESS_CONTROL_ALLOW_ORIGIN, origin);
                }
                Poll::Ready(Ok(response))
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicUsize, Ordering};

    use axum::body::Body;
    use tower::ServiceExt;

    use super::*;

    /// A handler that answers with its own `vary` and counts its calls.
    fn handler(
        calls: Arc<AtomicUsize>,
    ) -> Cors<
        impl Service<Request, Response = Response, Error = Infallible, Future = impl Send> + Clone,
    > {
        let inner = tower::service_fn(move |_: Request| {
            calls.fetch_add(1, Ordering::SeqCst);
            async {
                let mut response = Response::new(Body::from("ok"));
                response
                    .headers_mut()
                    .insert(VARY, HeaderValue::from_static("accept-encoding"));
                Ok::<_, Infallible>(response)
            }
        });
        CorsLayer::new(["https://book.example", "not a\nheader value"]).layer(inner)
    }

    fn request(method: Method, origin: Option<&'static str>) -> Request {
        let mut request = Request::builder().method(method).uri("/api/v1/version");
        if let Some(origin) = origin {
            request = request.header(ORIGIN, origin);
        }
        request.body(Body::empty()).unwrap()
    }

    fn values(response: &Response, name: axum::http::HeaderName) -> Vec<&str> {
        response
            .headers()
            .get_all(name)
            .iter()
            .map(|v| v.to_str().unwrap())
            .collect()
    }

    #[tokio::test]
    async fn an_allowed_origin_is_echoed_and_the_handlers_vary_kept() {
        let calls = Arc::new(AtomicUsize::new(0));
        let response = handler(calls.clone())
            .oneshot(request(Method::GET, Some("https://book.example")))
            .await
            .unwrap();
        assert_eq!(calls.load(Ordering::SeqCst), 1);
        assert_eq!(
            values(&response, ACCESS_CONTROL_ALLOW_ORIGIN),
            ["https://book.example"]
        );
        assert_eq!(values(&response, VARY), ["accept-encoding", "origin"]);
        assert_eq!(
            values(&response, ACCESS_CONTROL_EXPOSE_HEADERS),
            ["retry-after,x-request-id"]
        );
    }

    #[tokio::test]
    async fn other_origins_and_no_origin_get_no_allow_origin() {
        for origin in [Some("https://evil.example"), Some("not a"), None] {
            let response = handler(Arc::default())
                .oneshot(request(Method::POST, origin))
                .await
                .unwrap();
            assert!(
                response
                    .headers()
                    .get(ACCESS_CONTROL_ALLOW_ORIGIN)
                    .is_none(),
                "{origin:?}"
            );
            assert_eq!(values(&response, VARY), ["accept-encoding", "origin"]);
        }
    }

    #[tokio::test]
    async fn a_preflight_is_answered_without_the_handler() {
        let calls = Arc::new(AtomicUsize::new(0));
        for origin in ["https://book.example", "https://evil.example"] {
            let response = handler(calls.clone())
                .oneshot(request(Method::OPTIONS, Some(origin)))
                .await
                .unwrap();
            assert_eq!(response.status(), axum::http::StatusCode::OK);
            let allowed = values(&response, ACCESS_CONTROL_ALLOW_ORIGIN);
            if origin == "https://book.example" {
                assert_eq!(allowed, [origin]);
            } else {
                assert!(allowed.is_empty());
            }
            assert_eq!(
                values(&response, ACCESS_CONTROL_ALLOW_METHODS),
                ["GET,POST"]
            );
            assert_eq!(
                values(&response, ACCESS_CONTROL_ALLOW_HEADERS),
                ["content-type,authorization,idempotency-key"]
            );
            assert_eq!(values(&response, ACCESS_CONTROL_MAX_AGE), ["600"]);
            assert_eq!(values(&response, VARY), ["origin"]);
        }
        assert_eq!(calls.load(Ordering::SeqCst), 0);
    }
}
