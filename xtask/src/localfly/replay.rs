//! The proxy's dynamic request routing, as Fly's proxy does it
//! (<https://fly.io/docs/networking/dynamic-request-routing/>):
//!
//! - a machine's answer carrying `fly-replay: region=R` is not returned to the client: the
//!   proxy sends the same request again to a healthy machine of region R, adding
//!   `fly-replay-src: instance=<id>;region=<from>;t=<micros>`, and returns that answer. No
//!   machine serving in R is an error to the client (Fly: "If the target region doesn't host
//!   any healthy instances for the target app, the proxy throws an error").
//! - a request body over 1 MB cannot be replayed ("Requests larger than 1MB cannot be
//!   replayed"): the proxy answers an error instead.
//! - `fly-prefer-region: R` on a request sends it to a machine of R when one serves there,
//!   which is how a test (or a client) enters through a given region.
//!
//! Only `region=` is modelled; `instance=`, `app=`, `state=` and `elsewhere=` are not.

use axum::body::Bytes;
use axum::http::request::Parts;
use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use serde_json::json;

use super::regions;
use super::state::{App, Machine};

/// The response header asking for a replay.
pub const FLY_REPLAY: &str = "fly-replay";
/// The request header a replayed request carries.
pub const FLY_REPLAY_SRC: &str = "fly-replay-src";
/// The request header naming the region a request prefers.
pub const PREFER_REGION: &str = "fly-prefer-region";
/// The largest request body Fly's proxy replays.
pub const MAX_REPLAY_BODY: usize = 1024 * 1024;

/// The `region` field of a `fly-replay` header (`region=scl;state=x`), if any.
pub fn replay_region(headers: &HeaderMap) -> Option<String> {
    let value = headers.get(FLY_REPLAY)?.to_str().ok()?;
    value.split(';').find_map(|field| {
        let (key, value) = field.trim().split_once('=')?;
        (key.trim() == "region").then(|| value.trim().trim_matches('"').to_string())
    })
}

/// The machines a request may go to: those of its `fly-prefer-region` when any serves
/// there, else all of `healthy`.
pub fn preferred<'a>(
    app: &App,
    healthy: Vec<&'a Machine>,
    headers: &HeaderMap,
) -> Vec<&'a Machine> {
    let Some(region) = headers.get(PREFER_REGION).and_then(|v| v.to_str().ok()) else {
        return healthy;
    };
    let there: Vec<&Machine> = healthy
        .iter()
        .copied()
        .filter(|m| regions::region_of(app, &m.id) == region.trim())
        .collect();
    if there.is_empty() { healthy } else { there }
}

fn error(status: StatusCode, detail: String) -> Response {
    (
        status,
        axum::Json(json!({ "error": "replay_failed", "detail": detail })),
    )
        .into_response()
}

/// Follows a `fly-replay` in `answer` (from machine `from`); returns the answer to relay.
pub async fn follow(
    client: &reqwest::Client,
    app: &App,
    from: &Machine,
    request: &Parts,
    body: &Bytes,
    answer: reqwest::Response,
    hop_by_hop: impl Fn(&axum::http::HeaderName) -> bool,
) -> Result<reqwest::Response, Response> {
    let Some(region) = replay_region(answer.headers()) else {
        return Ok(answer);
    };
    if body.len() > MAX_REPLAY_BODY {
        return Err(error(
            StatusCode::PAYLOAD_TOO_LARGE,
            format!(
                "request body of {} bytes is over the 1MB replay limit",
                body.len()
            ),
        ));
    }
    let serving = regions::serving_in(app, &region);
    let Some(target) = serving.first() else {
        return Err(error(
            StatusCode::SERVICE_UNAVAILABLE,
            format!(
                "no healthy machine of {} in region {region} to replay to",
                app.name
            ),
        ));
    };
    let path = request.uri.path_and_query().map_or("/", |p| p.as_str());
    let url = format!("http://127.0.0.1:{}{path}", target.port);
    let mut replayed = client
        .request(request.method.clone(), &url)
        .body(body.clone());
    for (name, value) in &request.headers {
        if !hop_by_hop(name) && name != FLY_REPLAY_SRC {
            replayed = replayed.header(name, value);
        }
    }
    let micros = chrono::Utc::now().timestamp_micros();
    let source = format!(
        "instance={};region={};t={micros}",
        from.id,
        regions::region_of(app, &from.id)
    );
    if let Ok(source) = HeaderValue::from_str(&source) {
        replayed = replayed.header(FLY_REPLAY_SRC, source);
    }
    replayed.send().await.map_err(|e| {
        error(
            StatusCode::BAD_GATEWAY,
            format!("replaying to machine {}: {}", target.id, e.without_url()),
        )
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_region_field_of_fly_replay_is_read() {
        let mut headers = HeaderMap::new();
        assert_eq!(replay_region(&headers), None);
        headers.insert(FLY_REPLAY, HeaderValue::from_static("region=scl"));
        assert_eq!(replay_region(&headers).as_deref(), Some("scl"));
        headers.insert(FLY_REPLAY, HeaderValue::from_static("state=x; region=gru"));
        assert_eq!(replay_region(&headers).as_deref(), Some("gru"));
        headers.insert(FLY_REPLAY, HeaderValue::from_static("instance=00bb33ff"));
        assert_eq!(replay_region(&headers), None);
    }
}
