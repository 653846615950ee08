//! `POST /api/v1/webhooks/mercadopago`: a payment notification.
//!
//! MercadoPago signs each notification in `x-signature: ts=<unix time>,v1=<hex>`, the
//! HMAC-SHA256, keyed by the webhook secret, of the manifest
//! `id:<data.id>;request-id:<x-request-id>;ts:<ts>;` where `data.id` is the query parameter
//! (lowercased: alphanumeric ids are signed in lowercase) and a part whose value is absent is
//! left out. A valid signature with a timestamp outside the tolerance is refused too, so a
//! captured notification cannot be replayed later.
//!
//! A trusted notification is never taken at its word: the payment is read back from the
//! MercadoPago API and the store decides ([`crate::store::payments::record_payment`]).

use std::collections::HashMap;
use std::time::Duration;

use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use chrono::{DateTime, Utc};
use serde_json::json;

use super::delivery::{
    DeliveryTooLarge, TooManyUnauthenticated, escape_controls, hmac_sha256_matches, refuse,
};
use crate::error::ApiError;
use crate::error::ErrorBody;
use crate::http::edge::{self, Client};
use crate::http::extract::{ApiBytes, ApiQuery};
use crate::http::state::AppState;
use crate::store::now;
use crate::store::payments::{self, MERCADOPAGO, PaymentOutcome, ReportedPayment};

/// The 200 body: what the notification led to.
#[derive(serde::Serialize, utoipa::ToSchema)]
pub struct NotificationOutcome {
    /// A payment outcome (e.g. `confirmed`, `duplicate`) or `ignored`.
    pub outcome: String,
}

/// The route.
pub const PATH: &str = cabanas_contract::routes::WEBHOOK_MERCADOPAGO;

/// Outcome labels of `mercadopago_notifications_total` besides the [`PaymentOutcome`]s:
/// refused signatures, notifications about other topics, and payments that could not be read.
pub const OTHER_OUTCOMES: [&str; 3] = ["bad_signature", "ignored", "fetch_failed"];

/// Why a notification's signature was refused. The label goes to logs; values never do.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SignatureError {
    /// No webhook secret is configured, so nothing can be trusted.
    NoSecret,
    /// No `x-signature` header.
    MissingSignature,
    /// No `x-request-id` header.
    MissingRequestId,
    /// `x-signature` lacks `ts` or `v1`, or `ts` is not a number.
    Malformed,
    /// The HMAC does not match.
    Mismatch,
    /// `ts` is older than the tolerance.
    Stale,
    /// `ts` is further in the future than the tolerance.
    Future,
}

impl SignatureError {
    /// A short name for logs.
    pub fn label(self) -> &'static str {
        match self {
            Self::NoSecret => "no_secret_configured",
            Self::MissingSignature => "missing_signature",
            Self::MissingRequestId => "missing_request_id",
            Self::Malformed => "malformed_signature",
            Self::Mismatch => "signature_mismatch",
            Self::Stale => "stale_timestamp",
            Self::Future => "future_timestamp",
        }
    }
}

/// The signed text: `id:<data.id>;request-id:<x-request-id>;ts:<ts>;`, leaving out a part
/// whose value is absent.
pub fn manifest(data_id: Option<&str>, request_id: Option<&str>, ts: &str) -> String {
    let mut text = String::new();
    if let Some(id) = data_id {
        text.push_str(&format!("id:{};", id.to_ascii_lowercase()));
    }
    if let Some(request_id) = request_id {
        text.push_str(&format!("request-id:{request_id};"));
    }
    text.push_str(&format!("ts:{ts};"));
    text
}

/// Checks an `x-signature` header against the manifest and the clock.
///
/// `ts` is read as seconds, or as milliseconds when it is too large to be seconds (both
/// forms are in use).
pub fn verify_signature(
    x_signature: Option<&str>,
    x_request_id: Option<&str>,
    data_id: Option<&str>,
    secret: &[u8],
    now: DateTime<Utc>,
    tolerance: Duration,
) -> Result<(), SignatureError> {
    let header = x_signature.ok_or(SignatureError::MissingSignature)?;
    let request_id = x_request_id
        .filter(|r| !r.trim().is_empty())
        .ok_or(SignatureError::MissingRequestId)?;
    let (mut ts, mut v1) = (None, None);
    for part in header.split(',') {
        match part.split_once('=') {
            Some((key, value)) if key.trim() == "ts" => ts = Some(value.trim()),
            Some((key, value)) if key.trim() == "v1" => v1 = Some(value.trim()),
            _ => {}
        }
    }
    let (Some(ts), Some(v1)) = (ts, v1) else {
        return Err(SignatureError::Malformed);
    };
    let ts_number: i64 = ts.parse().map_err(|_| SignatureError::Malformed)?;
    let signed = manifest(data_id, Some(request_id), ts);
    if !hmac_sha256_matches(secret, signed.as_bytes(), v1) {
        return Err(SignatureError::Mismatch);
    }
    let ts_seconds = if ts_number >= 100_000_000_000 {
        ts_number / 1000
    } else {
        ts_number
    };
    let age = now.timestamp() - ts_seconds;
    let tolerance = i64::try_from(tolerance.as_secs()).unwrap_or(i64::MAX);
    if age > tolerance {
        return Err(SignatureError::Stale);
    }
    if -age > tolerance {
        return Err(SignatureError::Future);
    }
    Ok(())
}

/// The handler: verify, then read the payment back from MercadoPago and let the store decide.
/// Answers 200 for every trusted notification it has dealt with (including ones it ignores,
/// late payments and unknown codes), so that MercadoPago stops retrying; 503 when the payment
/// could not be read, so that it retries.
#[utoipa::path(
    post,
    path = "/api/v1/webhooks/mercadopago",
    operation_id = "mercadopago_notification",
    tag = "webhooks",
    params(
        ("data.id" = Option<String>, Query, description = "The notified resource (a payment id)"),
        ("type" = Option<String>, Query, description = "The notification topic, e.g. `payment`"),
        ("topic" = Option<String>, Query, description = "The topic in the older notification format"),
        ("x-signature" = Option<String>, Header, description = "`ts=<unix time>,v1=<hex HMAC-SHA256>` over the manifest, keyed by MERCADOPAGO_WEBHOOK_SECRET"),
        ("x-request-id" = Option<String>, Header, description = "Part of the signed manifest"),
    ),
    request_body(content = Object, description = "The notification as MercadoPago sends it; only `type` is read", content_type = "application/json"),
    responses(
        (status = 200, description = "Handled (including ignored topics and unknown codes)", body = NotificationOutcome),
        (status = 400, description = "A query parameter is not well formed", body = ErrorBody),
        (status = 401, description = "The signature is missing, invalid or too old", body = ErrorBody),
        DeliveryTooLarge,
        TooManyUnauthenticated,
        (status = 503, description = "The payment could not be read from MercadoPago; retried later", body = ErrorBody),
    )
)]
pub async fn notify(
    State(state): State<AppState>,
    client: Client,
    ApiQuery(query): ApiQuery<HashMap<String, String>>,
    headers: HeaderMap,
    ApiBytes(body): ApiBytes,
) -> Result<Response, ApiError> {
    let header = |name: &str| headers.get(name).and_then(|v| v.to_str().ok());
    let data_id = query.get("data.id").map(String::as_str);
    let integrations = &state.integrations;
    let verified = match &integrations.mercadopago_webhook_secret {
        None => Err(SignatureError::NoSecret),
        Some(secret) => verify_signature(
            header("x-signature"),
            header("x-request-id"),
            data_id,
            secret.expose().as_bytes(),
            now(),
            integrations.webhook_tolerance,
        ),
    };
    if let Err(reason) = verified {
        count("bad_signature");
        if let Some(limited) = edge::limit_unauthenticated(&state, PATH, &client) {
            return Ok(limited);
        }
        tracing::warn!(
            reason = reason.label(),
            "refused a MercadoPago notification"
        );
        return Ok(refuse(
            StatusCode::UNAUTHORIZED,
            "unauthorized",
            "the notification signature is missing, invalid or too old",
        ));
    }

    let kind = query
        .get("type")
        .or_else(|| query.get("topic"))
        .cloned()
        .or_else(|| body_type(&body));
    let payment_id = data_id.filter(|id| is_plain_id(id));
    let (Some("payment"), Some(payment_id)) = (kind.as_deref(), payment_id) else {
        count("ignored");
        tracing::info!(
            kind = kind.as_deref().unwrap_or("-"),
            "ignored a MercadoPago notification that is not about a payment"
        );
        return Ok(answer("ignored"));
    };

    let Some(client) = &integrations.mercadopago else {
        count("fetch_failed");
        return Err(ApiError::Unavailable(
            "MERCADOPAGO_ACCESS_TOKEN is not set: payments cannot be read".into(),
        ));
    };
    let payment = match client.payment(payment_id).await {
        Ok(payment) => payment,
        Err(err) => {
            count("fetch_failed");
            tracing::warn!(error = %err, "could not read a notified MercadoPago payment");
            return Err(ApiError::Unavailable(
                "the payment could not be read from MercadoPago; retry later".into(),
            ));
        }
    };
    let reported = reported_payment(payment);
    if reported.escaped {
        tracing::warn!(
            "a MercadoPago payment carried control characters; recorded with them written out"
        );
    }
    let reported = reported.payment;
    let outcome = payments::record_payment(
        &state.db,
        MERCADOPAGO,
        &reported,
        now(),
        state.integrations.email_confirmations,
    )
    .await?;
    count(outcome.as_str());
    if outcome == PaymentOutcome::Confirmed {
        metrics::counter!("reservations_confirmed_total").increment(1);
    }
    tracing::info!(
        payment_id = %reported.provider_payment_id,
        code = reported.reservation_code.as_deref().unwrap_or("-"),
        status = %reported.status,
        outcome = outcome.as_str(),
        "MercadoPago payment notification handled"
    );
    Ok(answer(outcome.as_str()))
}

/// A payment read from MercadoPago, ready for the store.
struct Reported {
    payment: ReportedPayment,
    /// Whether a field held control characters (written out by [`escape_controls`]).
    escaped: bool,
}

/// The payment as the store records it, with control characters in its text fields written
/// out. Such a payment is recorded and acknowledged, not refused: the money may have moved,
/// so the cashier needs its row, while a refusal would only make MercadoPago retry and then
/// give up with nothing recorded. Written out, the fields match nothing the rule accepts (no
/// reservation code, status or currency holds a control character): the payment is
/// `unknown_reservation`, `not_approved` or `wrong_currency`, never `confirmed`.
fn reported_payment(payment: crate::mercadopago::Payment) -> Reported {
    let mut escaped = false;
    let mut clean = |text: String| match escape_controls(&text) {
        Some(written_out) => {
            escaped = true;
            written_out
        }
        None => text,
    };
    let payment = ReportedPayment {
        provider_payment_id: clean(payment.id),
        status: clean(payment.status),
        reservation_code: payment.external_reference.map(&mut clean),
        amount_cents: payment.amount_cents,
        currency: payment.currency.map(&mut clean),
    };
    Reported { payment, escaped }
}

fn count(outcome: &'static str) {
    metrics::counter!("mercadopago_notifications_total", "outcome" => outcome).increment(1);
}

fn answer(outcome: &str) -> Response {
    (StatusCode::OK, axum::Json(json!({ "outcome": outcome }))).into_response()
}

/// The notification body's `type`, when the body is JSON that has one.
fn body_type(body: &[u8]) -> Option<String> {
    let value: serde_json::Value = serde_json::from_slice(body).ok()?;
    value.get("type")?.as_str().map(str::to_owned)
}

/// Payment ids are short runs of letters, digits, `-` and `_`; anything else never reaches a
/// URL path.
fn is_plain_id(id: &str) -> bool {
    !id.is_empty()
        && id.len() <= 64
        && id
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::http::webhooks::hmac_sha256_hex;

    const SECRET: &[u8] = b"mp-webhook-secret-for-tests";
    const TOLERANCE: Duration = Duration::from_secs(300);

    fn at(ts: i64) -> DateTime<Utc> {
        DateTime::from_timestamp(ts, 0).unwrap()
    }

    fn sign(data_id: &str, request_id: &str, ts: i64, secret: &[u8]) -> String {
        let v1 = hmac_sha256_hex(
            secret,
            format!("id:{data_id};request-id:{request_id};ts:{ts};").as_bytes(),
        );
        format!("ts={ts},v1={v1}")
    }

    fn check(
        header: Option<&str>,
        request_id: Option<&str>,
        data_id: &str,
        now: i64,
    ) -> Result<(), SignatureError> {
        verify_signature(
            header,
            request_id,
            Some(data_id),
            SECRET,
            at(now),
            TOLERANCE,
        )
    }

    #[test]
    fn the_manifest_follows_mercadopagos_template() {
        assert_eq!(
            manifest(Some("123456"), Some("req-1"), "1704908010"),
            "id:123456;request-id:req-1;ts:1704908010;"
        );
        assert_eq!(
            manifest(Some("AbC9"), Some("r"), "1"),
            "id:abc9;request-id:r;ts:1;"
        );
        assert_eq!(manifest(None, Some("r"), "1"), "request-id:r;ts:1;");
    }

    #[test]
    fn a_valid_signature_passes_with_spaces_and_either_order() {
        let ts = 1_704_908_010;
        let header = sign("123456", "req-1", ts, SECRET);
        assert_eq!(
            check(Some(&header), Some("req-1"), "123456", ts + 10),
            Ok(())
        );
        let (t, v) = header.split_once(',').unwrap();
        let reordered = format!("{v}, {t}");
        assert_eq!(check(Some(&reordered), Some("req-1"), "123456", ts), Ok(()));
    }

    #[test]
    fn alphanumeric_ids_are_signed_in_lowercase() {
        let ts = 1_704_908_010;
        let header = sign("abc123", "req-1", ts, SECRET);
        assert_eq!(check(Some(&header), Some("req-1"), "ABC123", ts), Ok(()));
    }

    #[test]
    fn tampering_or_the_wrong_secret_is_a_mismatch() {
        let ts = 1_704_908_010;
        let header = sign("123456", "req-1", ts, SECRET);
        let mismatch = Err(SignatureError::Mismatch);
        assert_eq!(check(Some(&header), Some("req-1"), "123457", ts), mismatch);
        assert_eq!(check(Some(&header), Some("req-2"), "123456", ts), mismatch);
        let other_ts = header.replace(&format!("ts={ts}"), &format!("ts={}", ts + 1));
        assert_eq!(
            check(Some(&other_ts), Some("req-1"), "123456", ts),
            mismatch
        );
        let wrong_key = sign("123456", "req-1", ts, b"another-secret");
        assert_eq!(
            check(Some(&wrong_key), Some("req-1"), "123456", ts),
            mismatch
        );
    }

    #[test]
    fn stale_and_future_timestamps_are_refused() {
        let ts = 1_704_908_010;
        let header = sign("1", "r", ts, SECRET);
        assert_eq!(check(Some(&header), Some("r"), "1", ts + 300), Ok(()));
        assert_eq!(
            check(Some(&header), Some("r"), "1", ts + 301),
            Err(SignatureError::Stale)
        );
        assert_eq!(check(Some(&header), Some("r"), "1", ts - 300), Ok(()));
        assert_eq!(
            check(Some(&header), Some("r"), "1", ts - 301),
            Err(SignatureError::Future)
        );
    }

    #[test]
    fn millisecond_timestamps_are_read_as_milliseconds() {
        let ts_ms = 1_742_505_638_683_i64;
        let header = sign("1", "r", ts_ms, SECRET);
        assert_eq!(check(Some(&header), Some("r"), "1", ts_ms / 1000), Ok(()));
        assert_eq!(
            check(Some(&header), Some("r"), "1", ts_ms / 1000 + 3600),
            Err(SignatureError::Stale)
        );
    }

    #[test]
    fn missing_or_malformed_headers_are_refused() {
        let ts = 1_704_908_010;
        let header = sign("1", "r", ts, SECRET);
        assert_eq!(
            check(None, Some("r"), "1", ts),
            Err(SignatureError::MissingSignature)
        );
        assert_eq!(
            check(Some(&header), None, "1", ts),
            Err(SignatureError::MissingRequestId)
        );
        assert_eq!(
            check(Some(&header), Some(" "), "1", ts),
            Err(SignatureError::MissingRequestId)
        );
        let v1_only = header.split(',').nth(1).unwrap().to_owned();
        assert_eq!(
            check(Some(&v1_only), Some("r"), "1", ts),
            Err(SignatureError::Malformed)
        );
        assert_eq!(
            check(Some("ts=soon,v1=00"), Some("r"), "1", ts),
            Err(SignatureError::Malformed)
        );
        assert_eq!(
            check(Some(""), Some("r"), "1", ts),
            Err(SignatureError::Malformed)
        );
    }

    #[test]
    fn payment_ids_that_could_change_the_url_are_not_plain() {
        assert!(is_plain_id("123456789"));
        assert!(!is_plain_id("../v1/users/me"));
        assert!(!is_plain_id("1?x=1"));
        assert!(!is_plain_id(""));
    }
}
