//! A small MercadoPago API client: the deposit checkout of a pre-reservation
//! (`POST /checkout/preferences`) and reading one payment (`GET /v1/payments/{id}`).
//!
//! The access token travels in the `Authorization` header only; errors name the URL and the
//! HTTP status, never the token or the response body.

use std::time::Duration;

use chrono::{DateTime, SecondsFormat, Utc};
use serde::Deserialize;
use serde_json::json;

use crate::config::Secret;

/// The currency deposits are charged in (the cabins are in Argentina).
pub const CURRENCY: &str = "ARS";
/// The largest payment body read. A payment's JSON is a few KB; without a cap, five
/// notifications answered with 200 MB each would hold 1 GB in memory at once.
pub const MAX_PAYMENT_BYTES: usize = 64 * 1024;
/// How long one API call may take; below the service's request timeout.
const CALL_TIMEOUT: Duration = Duration::from_secs(10);

/// A MercadoPago API client. Cheap to clone.
#[derive(Clone)]
pub struct MercadoPago {
    http: reqwest::Client,
    base: String,
    token: Secret,
}

impl std::fmt::Debug for MercadoPago {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MercadoPago")
            .field("base", &self.base)
            .field("token", &self.token)
            .finish()
    }
}

/// Why a call failed. The text names the URL and what went wrong, never the token.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct MercadoPagoError(String);

/// The checkout MercadoPago created for a deposit.
#[derive(Debug, Clone, Deserialize)]
pub struct Preference {
    /// MercadoPago's preference id.
    pub id: String,
    /// Where the guest pays.
    pub init_point: String,
}

/// A payment as MercadoPago reports it.
#[derive(Debug, Clone, PartialEq)]
pub struct Payment {
    /// MercadoPago's payment id.
    pub id: String,
    /// `approved`, `pending`, `rejected`, ...
    pub status: String,
    /// Our reservation code, as the deposit checkout set it.
    pub external_reference: Option<String>,
    /// The amount paid, in cents.
    pub amount_cents: i64,
    /// ISO currency code, e.g. `ARS`.
    pub currency: Option<String>,
}

#[derive(Deserialize)]
struct PaymentBody {
    id: serde_json::Value,
    status: String,
    #[serde(default)]
    external_reference: Option<String>,
    #[serde(default)]
    transaction_amount: Option<f64>,
    #[serde(default)]
    currency_id: Option<String>,
}

impl MercadoPago {
    /// A client for the API at `base` (no trailing slash), authenticated by `token`.
    pub fn new(base: &str, token: Secret) -> Self {
        // reqwest is built without a default TLS provider; the first one installed wins.
        let _ = rustls::crypto::ring::default_provider().install_default();
        let http = reqwest::Client::builder()
            .timeout(CALL_TIMEOUT)
            .connect_timeout(Duration::from_secs(5))
            .build()
            .unwrap_or_default();
        Self {
            http,
            base: base.trim_end_matches('/').to_owned(),
            token,
        }
    }

    /// Creates the checkout for a reservation's deposit: one item, the reservation code as
    /// external reference, expiring when the pre-reservation does.
    pub async fn create_deposit_preference(
        &self,
        code: &str,
        deposit_cents: i64,
        expires_at: DateTime<Utc>,
    ) -> Result<Preference, MercadoPagoError> {
        let url = format!("{}/checkout/preferences", self.base);
        let body = json!({
            "items": [{
                "id": code,
                "title": format!("Deposit for reservation {code}"),
                "quantity": 1,
                "currency_id": CURRENCY,
                "unit_price": cents_to_amount(deposit_cents),
            }],
            "external_reference": code,
            "expires": true,
            "expiration_date_to": expires_at.to_rfc3339_opts(SecondsFormat::Millis, false),
        });
        let response = self
            .http
            .post(&url)
            .bearer_auth(self.token.expose())
            // A retried call must not create a second checkout for one reservation.
            .header("X-Idempotency-Key", format!("deposit-{code}"))
            .json(&body)
            .send()
            .await
            .map_err(|e| call_failed(&url, &e))?;
        let response = check_status(&url, response)?;
        response
            .json::<Preference>()
            .await
            .map_err(|e| MercadoPagoError(format!("{url} answered an unreadable preference: {e}")))
    }

    /// Reads one payment. `id` must already be checked to be a plain identifier.
    pub async fn payment(&self, id: &str) -> Result<Payment, MercadoPagoError> {
        let url = format!("{}/v1/payments/{id}", self.base);
        let response = self
            .http
            .get(&url)
            .bearer_auth(self.token.expose())
            .send()
            .await
            .map_err(|e| call_failed(&url, &e))?;
        let mut response = check_status(&url, response)?;
        // Read chunk by chunk so that no more than the cap (plus one chunk) is ever held,
        // whatever Content-Length says or omits.
        let mut bytes = Vec::new();
        while let Some(chunk) = response.chunk().await.map_err(|e| call_failed(&url, &e))? {
            if bytes.len() + chunk.len() > MAX_PAYMENT_BYTES {
                return Err(MercadoPagoError(format!(
                    "{url} answered more than {MAX_PAYMENT_BYTES} bytes, too large for a payment"
                )));
            }
            bytes.extend_from_slice(&chunk);
        }
        let body: PaymentBody = serde_json::from_slice(&bytes)
            .map_err(|e| MercadoPagoError(format!("{url} answered an unreadable payment: {e}")))?;
        let id = match body.id {
            serde_json::Value::String(s) => s,
            other => other.to_string(),
        };
        Ok(Payment {
            id,
            status: body.status,
            external_reference: body.external_reference.filter(|r| !r.is_empty()),
            amount_cents: body.transaction_amount.map(amount_to_cents).unwrap_or(0),
            currency: body.currency_id,
        })
    }
}

fn call_failed(url: &str, err: &reqwest::Error) -> MercadoPagoError {
    let kind = if err.is_timeout() {
        "timed out"
    } else if err.is_connect() {
        "could not connect"
    } else {
        "failed"
    };
    MercadoPagoError(format!("calling {url} {kind}"))
}

fn check_status(
    url: &str,
    response: reqwest::Response,
) -> Result<reqwest::Response, MercadoPagoError> {
    let status = response.status();
    if status.is_success() {
        Ok(response)
    } else {
        Err(MercadoPagoError(format!("{url} answered HTTP {status}")))
    }
}

/// `22200` → `222.0`, the decimal amount MercadoPago expects.
pub fn cents_to_amount(cents: i64) -> f64 {
    cents as f64 / 100.0
}

/// `222.0` → `22200`, rounding to the nearest cent (amounts arrive as binary floats).
pub fn amount_to_cents(amount: f64) -> i64 {
    (amount * 100.0).round() as i64
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn amounts_round_to_the_nearest_cent() {
        assert_eq!(amount_to_cents(222.0), 22_200);
        assert_eq!(amount_to_cents(0.29), 29);
        assert_eq!(amount_to_cents(0.1 + 0.2), 30);
        assert_eq!(cents_to_amount(22_245), 222.45);
    }

    #[test]
    fn debug_hides_the_token() {
        let client = MercadoPago::new("http://127.0.0.1:9/", Secret::new("APP_USR-hunter2"));
        let shown = format!("{client:?}");
        assert!(!shown.contains("hunter2"), "{shown}");
        assert!(shown.contains("http://127.0.0.1:9"), "{shown}");
    }
}
