//! What the service does at its edge, before a handler runs: a per-client rate limit on
//! pre-reserve (and, through the webhook handlers, on webhook requests that fail their
//! signature check), and CORS.

use std::convert::Infallible;
use std::net::SocketAddr;
use std::time::Instant;

use axum::extract::{ConnectInfo, FromRequestParts, Request};
use axum::http::request::Parts;
use axum::http::{Extensions, HeaderMap, HeaderValue, header};
use axum::response::{IntoResponse, Response};

use crate::error::ApiError;
use crate::http::state::AppState;

pub use super::rate_limit::{MAX_KEY_BYTES, RateLimiter};
/// Kept here too: the edge's settings are read with the rest of the configuration.
pub use crate::config::edge::{DEFAULT_RATE_LIMIT_PER_MINUTE, EdgeConfig};

/// Limited before the handler runs, whoever sends them (except an admin).
const LIMITED_BEFORE_HANDLER: [&str; 1] = [PRE_RESERVE];

/// The pre-reserve route, limited before its handler. The webhooks are limited by their
/// handlers, only when a request fails its signature check ([`limit_unauthenticated`]):
/// webhooks authenticate by signature, not by address.
pub const PRE_RESERVE: &str = "/api/v1/reservations/pre-reserve";

/// The header Fly's proxy sets to the address of the client it serves.
pub const CLIENT_IP_HEADER: &str = "fly-client-ip";

/// Who a request comes from: `Fly-Client-IP` behind Fly's proxy, else the peer address.
/// At most [`MAX_KEY_BYTES`] of the header are kept (only those tell clients apart).
fn client_of(headers: &HeaderMap, extensions: &Extensions) -> String {
    if let Some(ip) = headers
        .get(CLIENT_IP_HEADER)
        .and_then(|v| v.to_str().ok())
        .map(str::trim)
        .filter(|v| !v.is_empty())
    {
        // `to_str` accepts visible ASCII only, so every byte offset is a character boundary.
        return ip[..ip.len().min(MAX_KEY_BYTES)].to_owned();
    }
    extensions
        .get::<ConnectInfo<SocketAddr>>()
        .map_or_else(|| "unknown".to_owned(), |info| info.0.ip().to_string())
}

/// The client a request comes from, as the rate limit keys it (see [`client_of`]), for
/// handlers that limit requests themselves (the webhooks, after their signature check).
#[derive(Debug, Clone)]
pub struct Client {
    key: String,
    /// The request carries a valid admin token, which passes every limit.
    admin: bool,
}

impl FromRequestParts<AppState> for Client {
    type Rejection = Infallible;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, Infallible> {
        Ok(Self {
            key: client_of(&parts.headers, &parts.extensions),
            admin: is_admin(state, &parts.headers),
        })
    }
}

/// Whether the request carries a valid admin token (operators and the overlap proof must not
/// be throttled).
fn is_admin(state: &AppState, headers: &HeaderMap) -> bool {
    let authorization = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok());
    authorization.is_some() && state.auth.verify(authorization).is_ok()
}

/// The rate limit of the routes limited before their handler runs ([`LIMITED_BEFORE_HANDLER`],
/// by `route`, the matched template): `None` lets the request through, `Some` is the 429 to
/// answer instead. A valid admin token passes.
pub fn rate_limit(state: &AppState, route: &str, request: &Request) -> Option<Response> {
    let &route = LIMITED_BEFORE_HANDLER.iter().find(|r| **r == route)?;
    if is_admin(state, request.headers()) {
        return None;
    }
    let client = client_of(request.headers(), request.extensions());
    limit(state, route, &client)
}

/// Counts an unauthenticated request to a webhook (no signature, a bad one, a failed
/// handshake) against `client`'s budget: `Some` is the 429 to answer instead of refusing it
/// outright. Correctly signed deliveries never come here: they are not limited, since they
/// arrive from the few addresses of MercadoPago and Meta, as many as the business brings.
/// A valid admin token passes, as on pre-reserve.
pub fn limit_unauthenticated(
    state: &AppState,
    route: &'static str,
    client: &Client,
) -> Option<Response> {
    if client.admin {
        return None;
    }
    limit(state, route, &client.key)
}

fn limit(state: &AppState, route: &'static str, client: &str) -> Option<Response> {
    let wait = state.rate_limiter.check(client, Instant::now()).err()?;
    metrics::counter!("http_rate_limited_total", "route" => route).increment(1);
    let seconds = wait.as_secs() + u64::from(wait.subsec_nanos() > 0);
    let mut response = ApiError::TooManyRequests.into_response();
    response
        .headers_mut()
        .insert(header::RETRY_AFTER, HeaderValue::from(seconds.max(1)));
    Some(response)
}

/// CORS for the configured origins ([`super::cors`]): preflights are answered; other origins
/// get no CORS headers, so browsers refuse them.
pub fn cors(config: &EdgeConfig) -> super::cors::CorsLayer {
    super::cors::CorsLayer::new(config.allowed_origins.iter().map(String::as_str))
}
