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

use crate::AppState;
use crate::config::ConfigError;
use crate::error::ApiError;
use crate::http::webhooks::{mercadopago, whatsapp};

pub use super::rate_limit::{MAX_KEY_BYTES, RateLimiter};

/// The route templates whose requests can be answered 429. Health, readiness, metrics and
/// reads are never limited.
pub const RATE_LIMITED_ROUTES: [&str; 3] = [PRE_RESERVE, mercadopago::PATH, whatsapp::PATH];

/// Limited before the handler runs, whoever sends them (except an admin).
const LIMITED_BEFORE_HANDLER: [&str; 1] = [PRE_RESERVE];

/// The webhooks are limited by their handlers, only when a request fails its signature check
/// ([`limit_unauthenticated`]): webhooks authenticate by signature, not by address.
const PRE_RESERVE: &str = "/api/v1/reservations/pre-reserve";

/// The header Fly's proxy sets to the address of the client it serves.
pub const CLIENT_IP_HEADER: &str = "fly-client-ip";

/// The default of `RATE_LIMIT_PER_MINUTE`.
pub const DEFAULT_RATE_LIMIT_PER_MINUTE: u32 = 100;

/// `RATE_LIMIT_PER_MINUTE` and `ALLOWED_ORIGINS`.
#[derive(Clone, Debug)]
pub struct EdgeConfig {
    /// Requests a client may make to a limited route per minute; 0 turns the limit off.
    pub rate_limit_per_minute: u32,
    /// Origins allowed by CORS (`scheme://host[:port]`); empty allows none.
    pub allowed_origins: Vec<String>,
}

impl EdgeConfig {
    /// Reads the two variables through the same lookup as the rest of the configuration.
    pub fn from_lookup(get: &impl Fn(&str) -> Option<String>) -> Result<Self, ConfigError> {
        let rate_limit_per_minute = match get("RATE_LIMIT_PER_MINUTE") {
            Some(v) => v.trim().parse().map_err(|_| ConfigError {
                var: "RATE_LIMIT_PER_MINUTE",
                reason: "must be a whole number of requests (0 turns the limit off)".into(),
            })?,
            None => DEFAULT_RATE_LIMIT_PER_MINUTE,
        };
        let allowed_origins: Vec<String> = get("ALLOWED_ORIGINS")
            .map(|list| {
                list.split(',')
                    .map(|o| o.trim().trim_end_matches('/').to_owned())
                    .filter(|o| !o.is_empty())
                    .collect()
            })
            .unwrap_or_default();
        if let Some(bad) = allowed_origins.iter().position(|o| {
            !(o.starts_with("https://") || o.starts_with("http://"))
                || HeaderValue::from_str(o).is_err()
        }) {
            return Err(ConfigError {
                var: "ALLOWED_ORIGINS",
                reason: format!(
                    "entry {} is not an origin like https://example.com (comma-separated)",
                    bad + 1
                ),
            });
        }
        Ok(Self {
            rate_limit_per_minute,
            allowed_origins,
        })
    }
}

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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn origins_are_validated() {
        let parse = |v: &str| {
            let v = v.to_owned();
            EdgeConfig::from_lookup(&move |k: &str| (k == "ALLOWED_ORIGINS").then(|| v.clone()))
        };
        let ok = parse("https://a.example, http://localhost:3000/").unwrap();
        assert_eq!(
            ok.allowed_origins,
            ["https://a.example", "http://localhost:3000"]
        );
        assert_eq!(ok.rate_limit_per_minute, DEFAULT_RATE_LIMIT_PER_MINUTE);
        let err = parse("https://a.example,example.com").unwrap_err();
        assert_eq!(err.var, "ALLOWED_ORIGINS");
        assert!(err.reason.contains("entry 2"), "{}", err.reason);
    }
}
