//! What both webhooks do with a delivery before trusting it: check its HMAC-SHA256
//! signature, write out control characters in what they store, and refuse it with the
//! API's error body (and the refusals every webhook route documents alike).

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use hmac::{Hmac, KeyInit, Mac};
use serde_json::json;
use sha2::Sha256;
use utoipa::IntoResponses;

use crate::error::ErrorBody;

type HmacSha256 = Hmac<Sha256>;

/// Whether `signature_hex` is the HMAC-SHA256 of `message` under `key`. The comparison runs
/// in constant time (`Mac::verify_slice`); malformed hex is simply not a match.
pub fn hmac_sha256_matches(key: &[u8], message: &[u8], signature_hex: &str) -> bool {
    let Ok(expected) = hex::decode(signature_hex.trim()) else {
        return false;
    };
    let Ok(mut mac) = HmacSha256::new_from_slice(key) else {
        return false;
    };
    mac.update(message);
    mac.verify_slice(&expected).is_ok()
}

/// The lowercase hex HMAC-SHA256 of `message` under `key` (for signing in tests and tools).
pub fn hmac_sha256_hex(key: &[u8], message: &[u8]) -> String {
    let mut mac = HmacSha256::new_from_slice(key).expect("HMAC takes keys of any length");
    mac.update(message);
    mac.finalize()
        .into_bytes()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// `text` with every control character written out as `\u{…}`, so that a field from an
/// outside service can be stored (PostgreSQL refuses NUL in text) and read by a person;
/// `None` when there is none to write out.
pub fn escape_controls(text: &str) -> Option<String> {
    if !text.chars().any(char::is_control) {
        return None;
    }
    Some(
        text.chars()
            .map(|c| {
                if c.is_control() {
                    format!("\\u{{{:04x}}}", u32::from(c))
                } else {
                    c.to_string()
                }
            })
            .collect(),
    )
}

/// Equality that takes the same time wherever the inputs differ (for shared tokens).
pub fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    if a.len() != b.len() {
        return false;
    }
    a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// The API's error body with `status`, without `WWW-Authenticate` (webhook senders do not
/// authenticate with bearer tokens).
pub(super) fn refuse(status: StatusCode, code: &str, detail: &str) -> Response {
    (
        status,
        axum::Json(json!({ "error": code, "detail": detail })),
    )
        .into_response()
}

/// The 429 of [`crate::http::edge::limit_unauthenticated`], which every webhook route answers
/// alike: the limit counts only requests whose signature (or verify token) fails.
#[derive(IntoResponses)]
#[response(
    status = 429,
    description = "Too many unauthenticated requests from this client; see Retry-After",
    headers(("Retry-After" = u64, description = "Seconds until a request is accepted again"))
)]
#[allow(dead_code)] // Only the OpenAPI document is built from it; the limiter answers.
pub struct TooManyUnauthenticated(ErrorBody);

/// The 413 of the body limit on the signed deliveries (64 KiB).
#[derive(IntoResponses)]
#[response(
    status = 413,
    description = "The body is larger than 64 KiB (`payload_too_large`)"
)]
#[allow(dead_code)] // Only the OpenAPI document is built from it; ApiBytes answers.
pub struct DeliveryTooLarge(ErrorBody);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hmac_matches_rfc_4231_case_2() {
        let key = b"Jefe";
        let message = b"what do ya want for nothing?";
        let expected = "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843";
        assert_eq!(hmac_sha256_hex(key, message), expected);
        assert!(hmac_sha256_matches(key, message, expected));
        assert!(hmac_sha256_matches(key, message, &expected.to_uppercase()));
        assert!(!hmac_sha256_matches(
            key,
            b"what do ya want for nothing!",
            expected
        ));
        assert!(!hmac_sha256_matches(b"Jefa", message, expected));
        assert!(!hmac_sha256_matches(key, message, &expected[..62]));
        assert!(!hmac_sha256_matches(key, message, "zz"));
        assert!(!hmac_sha256_matches(key, message, ""));
    }

    #[test]
    fn control_characters_are_written_out() {
        assert_eq!(escape_controls("CB-ABC123"), None);
        assert_eq!(escape_controls("señá"), None);
        assert_eq!(
            escape_controls("CB-\0ABC\n").as_deref(),
            Some("CB-\\u{0000}ABC\\u{000a}")
        );
    }

    #[test]
    fn constant_time_eq_compares_whole_values() {
        assert!(constant_time_eq(b"token", b"token"));
        assert!(!constant_time_eq(b"token", b"tokem"));
        assert!(!constant_time_eq(b"token", b"token2"));
    }
}
