//! Sending a text through the WhatsApp Cloud API:
//! `POST {WHATSAPP_API_URL}/{phone-number-id}/messages` with `Authorization: Bearer
//! {WHATSAPP_ACCESS_TOKEN}` and the body
//! `{"messaging_product":"whatsapp","recipient_type":"individual","to":…,"type":"text","text":{"preview_url":false,"body":…}}`;
//! a 200 answers `{"messages":[{"id":"wamid…"}]}`.
//! (Meta's reference: https://developers.facebook.com/docs/whatsapp/cloud-api/reference/messages;
//! the shapes as shown in https://dualhook.com/docs/messaging-overview.)
//!
//! What comes back is sorted by what the worker may do next, since the Cloud API takes no
//! idempotency key for sends (third-party gateways add one, e.g. `client_ref` at
//! https://whatisup.dev/docs/reference/idempotency, precisely because Meta has none):
//! - no connection was made, or Meta answered 429, 5xx, 401 or 403: nothing was sent, or
//!   nothing will be until Meta or the token recovers, so trying again is safe;
//! - any other 4xx: Meta refused this message (e.g. outside the 24-hour window) and will
//!   refuse it again;
//! - the request went out and no answer came in time: Meta may have sent it. Trying again
//!   could send it twice, so the worker does not (see `crate::outbox`).
//!
//! The token, the recipient and the text never appear in an error: errors are labels.

use std::time::Duration;

use serde::Deserialize;
use serde_json::json;

use crate::config::Secret;

/// What became of one send.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SendOutcome {
    /// Accepted; WhatsApp's message id when the answer carried one.
    Sent(Option<String>),
    /// Not sent; safe to try again (the label says why: `connect`, `http_503`, ...).
    Retry(String),
    /// Refused for good (`http_400`, ...).
    Refused(String),
    /// Perhaps sent: the request went out and no answer came (`timeout`, `transport`).
    Unknown(String),
}

/// A Cloud API client for one business phone number. Cheap to clone.
#[derive(Clone)]
pub struct CloudApi {
    http: reqwest::Client,
    messages_url: String,
    token: Secret,
}

impl std::fmt::Debug for CloudApi {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CloudApi")
            .field("messages_url", &self.messages_url)
            .field("token", &self.token)
            .finish()
    }
}

#[derive(Deserialize)]
struct Accepted {
    #[serde(default)]
    messages: Vec<AcceptedMessage>,
}

#[derive(Deserialize)]
struct AcceptedMessage {
    id: String,
}

impl CloudApi {
    /// A client sending from `phone_number_id` through the API at `base`, giving up on a
    /// send after `timeout`.
    pub fn new(base: &str, phone_number_id: &str, token: Secret, timeout: Duration) -> Self {
        // reqwest is built without a default TLS provider; the first one installed wins.
        let _ = rustls::crypto::ring::default_provider().install_default();
        let http = reqwest::Client::builder()
            .timeout(timeout)
            .connect_timeout(timeout.min(Duration::from_secs(5)))
            .build()
            .unwrap_or_default();
        Self {
            http,
            messages_url: format!("{}/{phone_number_id}/messages", base.trim_end_matches('/')),
            token,
        }
    }

    /// Sends `body` to the WhatsApp number `to`.
    pub async fn send_text(&self, to: &str, body: &str) -> SendOutcome {
        let request = json!({
            "messaging_product": "whatsapp",
            "recipient_type": "individual",
            "to": to,
            "type": "text",
            "text": { "preview_url": false, "body": body },
        });
        let response = self
            .http
            .post(&self.messages_url)
            .bearer_auth(self.token.expose())
            .json(&request)
            .send()
            .await;
        let response = match response {
            Ok(response) => response,
            Err(err) if err.is_connect() => return SendOutcome::Retry("connect".into()),
            Err(err) if err.is_timeout() => return SendOutcome::Unknown("timeout".into()),
            Err(_) => return SendOutcome::Unknown("transport".into()),
        };
        let status = response.status();
        let label = format!("http_{}", status.as_u16());
        if status.is_success() {
            // The message is sent whether or not its id can be read.
            let id = response
                .json::<Accepted>()
                .await
                .ok()
                .and_then(|a| a.messages.into_iter().next())
                .map(|m| m.id);
            return SendOutcome::Sent(id);
        }
        match status.as_u16() {
            401 | 403 | 408 | 429 | 500..=599 => SendOutcome::Retry(label),
            _ => SendOutcome::Refused(label),
        }
    }
}
