//! Writes land in the primary region. On a machine outside it (`FLY_REGION` differs from
//! `PRIMARY_REGION`) a request that may write, any method but `GET`, `HEAD` and `OPTIONS`
//! (pre-reserve, confirm, cancel, the webhooks, admin writes), is answered at once, before
//! its body is read or the database touched, with `fly-replay: region=<primary>`: Fly's
//! proxy then sends the same request again to a machine of the primary region
//! (<https://fly.io/docs/networking/dynamic-request-routing/>). Reads are served here.
//!
//! A replayed request carries Fly's `fly-replay-src` header. If one arrives here anyway (no
//! machine of the primary region took it), it is answered 503 instead of asking for another
//! replay, so a request never circles between regions.
//!
//! Fly replays request bodies up to 1 MB only (same page); the service's bodies are far
//! below that ([`super::MAX_BODY_BYTES`]).

use axum::extract::Request;
use axum::http::{HeaderName, HeaderValue, Method, StatusCode};
use axum::response::{IntoResponse, Response};

use crate::error::ErrorBody;

/// The response header asking Fly's proxy to replay the request.
pub const FLY_REPLAY: HeaderName = HeaderName::from_static("fly-replay");
/// The request header Fly's proxy adds to a replayed request.
pub const FLY_REPLAY_SRC: HeaderName = HeaderName::from_static("fly-replay-src");

/// Whether a request with `method` may write.
pub fn writes(method: &Method) -> bool {
    !matches!(*method, Method::GET | Method::HEAD | Method::OPTIONS)
}

/// The answer to a write that arrived outside the primary region, or `None` to serve it.
pub fn redirect_write(primary: &str, request: &Request) -> Option<Response> {
    if !writes(request.method()) {
        return None;
    }
    if request.headers().contains_key(FLY_REPLAY_SRC) {
        let body = ErrorBody {
            error: "unavailable".into(),
            detail: format!(
                "this write was replayed to region {primary} but reached another region: no \
                 machine of the primary region is serving; retry later"
            ),
            field: None,
        };
        return Some((StatusCode::SERVICE_UNAVAILABLE, axum::Json(body)).into_response());
    }
    let replay = HeaderValue::from_str(&format!("region={primary}")).ok()?;
    let body = ErrorBody {
        error: "replay".into(),
        detail: format!("writes are served in the primary region {primary}"),
        field: None,
    };
    let mut response = (StatusCode::CONFLICT, axum::Json(body)).into_response();
    response.headers_mut().insert(FLY_REPLAY, replay);
    Some(response)
}
