//! `/api/v1/webhooks/whatsapp`: the WhatsApp Cloud API webhook.
//!
//! `GET` is Meta's subscription handshake: `hub.mode=subscribe` with `hub.verify_token`
//! equal to `WHATSAPP_VERIFY_TOKEN` echoes `hub.challenge`. `POST` delivers messages, signed
//! in `X-Hub-Signature-256: sha256=<hex>`, the HMAC-SHA256 of the raw body keyed by
//! `WHATSAPP_APP_SECRET`. Each inbound message is stored once per message id, with the
//! reply it gets queued in the outbox in the same transaction (`whatsapp_answer` words it;
//! `crate::outbox` sends it). Senders and texts are personal data: they are stored, never
//! logged.

use std::collections::HashMap;

use axum::extract::State;
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use chrono::{DateTime, Utc};
use serde::Deserialize;
use serde_json::json;

use super::delivery::{
    DeliveryTooLarge, TooManyUnauthenticated, constant_time_eq, hmac_sha256_matches, refuse,
};
use super::whatsapp_answer;
use crate::error::ApiError;
use crate::error::ErrorBody;
use crate::http::edge::{self, Client};
use crate::http::extract::{ApiBytes, ApiQuery};
use crate::http::state::AppState;
use crate::store::messages::{self, InboundMessage};
use crate::store::now;

/// The 200 body of a delivery.
#[derive(serde::Serialize, utoipa::ToSchema)]
pub struct DeliveryOutcome {
    /// Messages stored for the first time.
    pub stored: u64,
    /// Messages already stored by an earlier delivery.
    pub duplicates: u64,
}

/// The route.
pub const PATH: &str = cabanas_contract::routes::WEBHOOK_WHATSAPP;

/// Labels of `whatsapp_notifications_total`.
pub const NOTIFICATION_OUTCOMES: [&str; 3] = ["accepted", "bad_signature", "unreadable"];

/// The longest `hub.challenge` echoed back.
const MAX_CHALLENGE_LEN: usize = 256;

/// Why a delivery's signature was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SignatureError {
    /// No app secret is configured, so nothing can be trusted.
    NoSecret,
    /// No `X-Hub-Signature-256` header.
    Missing,
    /// The header is not `sha256=<hex>`.
    Malformed,
    /// The HMAC does not match the body.
    Mismatch,
}

impl SignatureError {
    /// A short name for logs.
    pub fn label(self) -> &'static str {
        match self {
            Self::NoSecret => "no_secret_configured",
            Self::Missing => "missing_signature",
            Self::Malformed => "malformed_signature",
            Self::Mismatch => "signature_mismatch",
        }
    }
}

/// Checks `X-Hub-Signature-256` against the raw body.
pub fn verify_signature(
    header: Option<&str>,
    body: &[u8],
    secret: &[u8],
) -> Result<(), SignatureError> {
    let header = header.ok_or(SignatureError::Missing)?;
    let hex = header
        .trim()
        .strip_prefix("sha256=")
        .ok_or(SignatureError::Malformed)?;
    if hmac_sha256_matches(secret, body, hex) {
        Ok(())
    } else {
        Err(SignatureError::Mismatch)
    }
}

/// `GET`: the subscription handshake.
#[utoipa::path(
    get,
    path = "/api/v1/webhooks/whatsapp",
    operation_id = "whatsapp_subscription",
    tag = "webhooks",
    params(
        ("hub.mode" = Option<String>, Query, description = "`subscribe`"),
        ("hub.verify_token" = Option<String>, Query, description = "Must equal WHATSAPP_VERIFY_TOKEN"),
        ("hub.challenge" = Option<String>, Query, description = "Echoed back on success (1-256 visible ASCII characters)"),
    ),
    responses(
        (status = 200, description = "The challenge, echoed", content_type = "text/plain", body = String),
        (status = 400, description = "A query parameter is not well formed", body = ErrorBody),
        (status = 403, description = "The handshake does not match the verify token", body = ErrorBody),
        TooManyUnauthenticated,
    )
)]
pub async fn handshake(
    State(state): State<AppState>,
    client: Client,
    ApiQuery(query): ApiQuery<HashMap<String, String>>,
) -> Response {
    let expected = state.integrations.whatsapp_verify_token.as_ref();
    let mode_ok = query.get("hub.mode").map(String::as_str) == Some("subscribe");
    let token_ok = match (expected, query.get("hub.verify_token")) {
        (Some(expected), Some(given)) => {
            constant_time_eq(expected.expose().as_bytes(), given.as_bytes())
        }
        _ => false,
    };
    let challenge = query.get("hub.challenge").filter(|c| {
        !c.is_empty() && c.len() <= MAX_CHALLENGE_LEN && c.chars().all(|ch| ch.is_ascii_graphic())
    });
    match challenge {
        Some(challenge) if mode_ok && token_ok => {
            tracing::info!("WhatsApp webhook subscription verified");
            (
                StatusCode::OK,
                [(header::CONTENT_TYPE, "text/plain; charset=utf-8")],
                challenge.clone(),
            )
                .into_response()
        }
        _ => {
            if let Some(limited) = edge::limit_unauthenticated(&state, PATH, &client) {
                return limited;
            }
            tracing::warn!("refused a WhatsApp subscription handshake");
            refuse(
                StatusCode::FORBIDDEN,
                "forbidden",
                "the subscription handshake does not match this service's verify token",
            )
        }
    }
}

#[derive(Deserialize)]
struct Notification {
    #[serde(default)]
    entry: Vec<Entry>,
}

#[derive(Deserialize)]
struct Entry {
    #[serde(default)]
    changes: Vec<Change>,
}

#[derive(Deserialize)]
struct Change {
    #[serde(default)]
    value: ChangeValue,
}

#[derive(Deserialize, Default)]
struct ChangeValue {
    #[serde(default)]
    messages: Vec<Message>,
    #[serde(default)]
    contacts: Vec<Contact>,
}

/// A sender's WhatsApp profile, delivered next to their messages.
#[derive(Deserialize)]
struct Contact {
    wa_id: String,
    #[serde(default)]
    profile: Option<Profile>,
}

#[derive(Deserialize)]
struct Profile {
    name: String,
}

/// The profile names of the senders in a delivery, by WhatsApp number (empty when the
/// body carries none, or cannot be read).
fn contact_names(body: &[u8]) -> HashMap<String, String> {
    let Ok(notification) = serde_json::from_slice::<Notification>(body) else {
        return HashMap::new();
    };
    notification
        .entry
        .into_iter()
        .flat_map(|e| e.changes)
        .flat_map(|c| c.value.contacts)
        .filter_map(|c| Some((c.wa_id, c.profile?.name)))
        .collect()
}

#[derive(Deserialize)]
struct Message {
    id: String,
    from: String,
    #[serde(default)]
    timestamp: Option<String>,
    #[serde(rename = "type", default)]
    kind: Option<String>,
    #[serde(default)]
    text: Option<Text>,
}

#[derive(Deserialize)]
struct Text {
    body: String,
}

/// Reads the inbound messages of a delivery (status updates carry none).
///
/// A message id, sender or type holding a control character is not one WhatsApp sends: the
/// delivery is unreadable (400). A text keeps its line breaks and tabs (people type them);
/// a NUL, which PostgreSQL cannot store, becomes U+FFFD, so the message is stored and
/// acknowledged rather than refused and redelivered by Meta for days.
fn inbound_messages(body: &[u8], received: DateTime<Utc>) -> Result<Vec<InboundMessage>, ()> {
    let notification: Notification = serde_json::from_slice(body).map_err(drop)?;
    let messages: Vec<Message> = notification
        .entry
        .into_iter()
        .flat_map(|e| e.changes)
        .flat_map(|c| c.value.messages)
        .collect();
    let has_control = |text: &str| text.chars().any(char::is_control);
    let unreadable = messages.iter().any(|m| {
        has_control(&m.id) || has_control(&m.from) || m.kind.as_deref().is_some_and(has_control)
    });
    if unreadable {
        return Err(());
    }
    Ok(messages
        .into_iter()
        .map(|m| InboundMessage {
            sent_at: m
                .timestamp
                .and_then(|t| t.trim().parse::<i64>().ok())
                .and_then(|t| DateTime::from_timestamp(t, 0))
                .unwrap_or(received),
            message_type: m.kind.unwrap_or_else(|| "unknown".into()),
            body: m.text.map(|t| t.body.replace('\0', "\u{fffd}")),
            message_id: m.id,
            sender: m.from,
        })
        .collect())
}

/// `POST`: a signed delivery. 401 without a valid signature (nothing stored or logged from
/// it), 400 when a signed body is not a WhatsApp notification, else 200 once stored.
#[utoipa::path(
    post,
    path = "/api/v1/webhooks/whatsapp",
    operation_id = "whatsapp_message",
    tag = "webhooks",
    params(
        ("x-hub-signature-256" = Option<String>, Header, description = "`sha256=<hex HMAC-SHA256 of the body>` keyed by WHATSAPP_APP_SECRET"),
    ),
    request_body(content = Object, description = "A WhatsApp Cloud API notification", content_type = "application/json"),
    responses(
        (status = 200, description = "Stored; each new message's reply (availability, a pre-reservation, or help) is queued to be sent", body = DeliveryOutcome),
        (status = 400, description = "A signed body is not a WhatsApp notification", body = ErrorBody),
        (status = 401, description = "The signature is missing or invalid", body = ErrorBody),
        DeliveryTooLarge,
        TooManyUnauthenticated,
        (status = 503, description = "The database is not available", body = ErrorBody),
    )
)]
pub async fn notify(
    State(state): State<AppState>,
    client: Client,
    headers: HeaderMap,
    ApiBytes(body): ApiBytes,
) -> Result<Response, ApiError> {
    let signature = headers
        .get("x-hub-signature-256")
        .and_then(|v| v.to_str().ok());
    let verified = match &state.integrations.whatsapp_app_secret {
        None => Err(SignatureError::NoSecret),
        Some(secret) => verify_signature(signature, &body, secret.expose().as_bytes()),
    };
    if let Err(reason) = verified {
        count("bad_signature");
        if let Some(limited) = edge::limit_unauthenticated(&state, PATH, &client) {
            return Ok(limited);
        }
        tracing::warn!(reason = reason.label(), "refused a WhatsApp delivery");
        return Ok(refuse(
            StatusCode::UNAUTHORIZED,
            "unauthorized",
            "the delivery signature is missing or invalid",
        ));
    }
    let received = now();
    let Ok(inbound) = inbound_messages(&body, received) else {
        count("unreadable");
        tracing::warn!("a signed WhatsApp delivery is not a notification this service reads");
        return Err(ApiError::BadRequest(
            "the body is not a WhatsApp Cloud API notification".into(),
        ));
    };
    let names = contact_names(&body);
    let (mut stored, mut duplicates) = (0u64, 0u64);
    for message in &inbound {
        // A redelivery was answered the first time; a concurrent one is caught by the
        // message id's unique constraint below, and its booking by the idempotency key.
        if messages::is_stored(&state.db, &message.message_id).await? {
            duplicates += 1;
            continue;
        }
        let name = names.get(&message.sender).map(String::as_str);
        let reply = whatsapp_answer::reply_to(&state, message, name).await?;
        if messages::store_inbound(&state.db, message, Some(&reply), received).await? {
            stored += 1;
        } else {
            duplicates += 1;
        }
    }
    count("accepted");
    metrics::counter!("whatsapp_messages_total", "outcome" => "stored").increment(stored);
    metrics::counter!("whatsapp_messages_total", "outcome" => "duplicate").increment(duplicates);
    tracing::info!(stored, duplicates, "WhatsApp delivery handled");
    Ok((
        StatusCode::OK,
        axum::Json(json!({ "stored": stored, "duplicates": duplicates })),
    )
        .into_response())
}

fn count(outcome: &'static str) {
    metrics::counter!("whatsapp_notifications_total", "outcome" => outcome).increment(1);
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::http::webhooks::hmac_sha256_hex;

    const SECRET: &[u8] = b"whatsapp-app-secret";
    const BODY: &[u8] = br#"{"object":"whatsapp_business_account","entry":[]}"#;

    fn header_for(body: &[u8], secret: &[u8]) -> String {
        format!("sha256={}", hmac_sha256_hex(secret, body))
    }

    #[test]
    fn a_valid_signature_passes() {
        let header = header_for(BODY, SECRET);
        assert_eq!(verify_signature(Some(&header), BODY, SECRET), Ok(()));
    }

    #[test]
    fn tampered_body_or_wrong_secret_is_a_mismatch() {
        let header = header_for(BODY, SECRET);
        let mut tampered = BODY.to_vec();
        tampered[2] ^= 1;
        assert_eq!(
            verify_signature(Some(&header), &tampered, SECRET),
            Err(SignatureError::Mismatch)
        );
        let wrong = header_for(BODY, b"another-secret");
        assert_eq!(
            verify_signature(Some(&wrong), BODY, SECRET),
            Err(SignatureError::Mismatch)
        );
    }

    #[test]
    fn missing_or_malformed_headers_are_refused() {
        assert_eq!(
            verify_signature(None, BODY, SECRET),
            Err(SignatureError::Missing)
        );
        let bare_hex = hmac_sha256_hex(SECRET, BODY);
        assert_eq!(
            verify_signature(Some(&bare_hex), BODY, SECRET),
            Err(SignatureError::Malformed)
        );
        let sha1 = format!("sha1={bare_hex}");
        assert_eq!(
            verify_signature(Some(&sha1), BODY, SECRET),
            Err(SignatureError::Malformed)
        );
        assert_eq!(
            verify_signature(Some("sha256=nothex"), BODY, SECRET),
            Err(SignatureError::Mismatch)
        );
    }

    #[test]
    fn messages_are_read_from_every_entry_and_change() {
        let body = br#"{"entry":[{"changes":[{"value":{"messages":[
            {"id":"wamid.A","from":"5491155550000","timestamp":"1700000000","type":"text","text":{"body":"hola"}},
            {"id":"wamid.B","from":"5491155550001","timestamp":"1700000001","type":"image"}
          ]}},{"value":{"statuses":[{"id":"wamid.X"}]}}]}]}"#;
        let received = DateTime::from_timestamp(1_800_000_000, 0).unwrap();
        let messages = inbound_messages(body, received).unwrap();
        assert_eq!(messages.len(), 2);
        assert_eq!(messages[0].message_id, "wamid.A");
        assert_eq!(messages[0].body.as_deref(), Some("hola"));
        assert_eq!(messages[0].sent_at.timestamp(), 1_700_000_000);
        assert_eq!(messages[1].message_type, "image");
        assert_eq!(messages[1].body, None);
        assert!(inbound_messages(b"not json", received).is_err());
    }

    #[test]
    fn a_nul_in_a_text_is_replaced_and_control_characters_in_ids_are_unreadable() {
        let received = DateTime::from_timestamp(1_800_000_000, 0).unwrap();
        let text = br#"{"entry":[{"changes":[{"value":{"messages":[
            {"id":"wamid.A","from":"5491155550000","type":"text","text":{"body":"a\u0000b\nc"}}
          ]}}]}]}"#;
        let messages = inbound_messages(text, received).unwrap();
        assert_eq!(messages[0].body.as_deref(), Some("a\u{fffd}b\nc"));
        let id = br#"{"entry":[{"changes":[{"value":{"messages":[
            {"id":"wamid.\u0000","from":"5491155550000","type":"text"}
          ]}}]}]}"#;
        assert!(inbound_messages(id, received).is_err());
    }
}
