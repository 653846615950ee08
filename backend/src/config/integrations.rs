//! The settings of MercadoPago and WhatsApp (`crate::integrations` builds the clients from
//! them). Everything is optional; see `crate::integrations` for what a missing one turns off.

use std::time::Duration;

use super::error::ConfigError;
use super::secret::Secret;

/// MercadoPago's public API.
pub const DEFAULT_MERCADOPAGO_API_URL: &str = "https://api.mercadopago.com";
/// How far a notification's signed timestamp may be from our clock, by default.
pub const DEFAULT_WEBHOOK_TOLERANCE_SECONDS: u64 = 300;

/// The integration variables, parsed once with the rest of [`crate::Config`].
#[derive(Clone, Debug)]
pub struct IntegrationsConfig {
    /// `MERCADOPAGO_ACCESS_TOKEN`: creates deposit checkouts and reads payments.
    pub mercadopago_access_token: Option<Secret>,
    /// `MERCADOPAGO_WEBHOOK_SECRET`: the key of the `x-signature` HMAC.
    pub mercadopago_webhook_secret: Option<Secret>,
    /// `MERCADOPAGO_API_URL`, default [`DEFAULT_MERCADOPAGO_API_URL`] (tests point it at a
    /// fake on loopback).
    pub mercadopago_api_url: String,
    /// `WEBHOOK_TOLERANCE_SECONDS`, default 300: older or newer signed timestamps are refused.
    pub webhook_tolerance: Duration,
    /// `WHATSAPP_APP_SECRET`: the key of the `X-Hub-Signature-256` HMAC.
    pub whatsapp_app_secret: Option<Secret>,
    /// `WHATSAPP_VERIFY_TOKEN`: the token the subscription handshake must present.
    pub whatsapp_verify_token: Option<Secret>,
}

impl Default for IntegrationsConfig {
    fn default() -> Self {
        Self {
            mercadopago_access_token: None,
            mercadopago_webhook_secret: None,
            mercadopago_api_url: DEFAULT_MERCADOPAGO_API_URL.to_owned(),
            webhook_tolerance: Duration::from_secs(DEFAULT_WEBHOOK_TOLERANCE_SECONDS),
            whatsapp_app_secret: None,
            whatsapp_verify_token: None,
        }
    }
}

impl IntegrationsConfig {
    /// Reads the integration variables; `get` returns non-blank values only.
    pub fn from_lookup(get: &impl Fn(&str) -> Option<String>) -> Result<Self, ConfigError> {
        let secret = |name: &str| get(name).map(|v| Secret::new(v.trim()));
        let mercadopago_api_url = match get("MERCADOPAGO_API_URL") {
            Some(url) => {
                let url = url.trim().trim_end_matches('/').to_owned();
                if !(url.starts_with("https://") || url.starts_with("http://")) {
                    return Err(ConfigError {
                        var: "MERCADOPAGO_API_URL",
                        reason: "must start with https:// (or http:// for a local fake)".into(),
                    });
                }
                url
            }
            None => DEFAULT_MERCADOPAGO_API_URL.to_owned(),
        };
        let tolerance = match get("WEBHOOK_TOLERANCE_SECONDS") {
            Some(v) => v
                .trim()
                .parse::<u64>()
                .ok()
                .filter(|n| *n > 0)
                .ok_or_else(|| ConfigError {
                    var: "WEBHOOK_TOLERANCE_SECONDS",
                    reason: "must be a whole number of seconds, at least 1".into(),
                })?,
            None => DEFAULT_WEBHOOK_TOLERANCE_SECONDS,
        };
        Ok(Self {
            mercadopago_access_token: secret("MERCADOPAGO_ACCESS_TOKEN"),
            mercadopago_webhook_secret: secret("MERCADOPAGO_WEBHOOK_SECRET"),
            mercadopago_api_url,
            webhook_tolerance: Duration::from_secs(tolerance),
            whatsapp_app_secret: secret("WHATSAPP_APP_SECRET"),
            whatsapp_verify_token: secret("WHATSAPP_VERIFY_TOKEN"),
        })
    }
}
