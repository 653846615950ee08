//! Settings of the two outside services the booking loop talks to: MercadoPago (deposit
//! checkout and payment notifications) and the WhatsApp Cloud API (inbound messages).
//!
//! Everything is optional: without `MERCADOPAGO_ACCESS_TOKEN` pre-reservations carry no
//! `payment_url`; without a webhook secret the matching webhook refuses every request (401),
//! so a missing secret can never turn signature checking off.

use std::time::Duration;

use crate::config::Secret;
use crate::mercadopago::MercadoPago;

pub use crate::config::integrations::{
    DEFAULT_MERCADOPAGO_API_URL, DEFAULT_WEBHOOK_TOLERANCE_SECONDS, IntegrationsConfig,
};

/// What the handlers need at run time: the MercadoPago client (when a token is set) and the
/// webhook keys.
#[derive(Clone, Debug)]
pub struct Integrations {
    /// The MercadoPago API client; `None` without `MERCADOPAGO_ACCESS_TOKEN`.
    pub mercadopago: Option<MercadoPago>,
    /// Key of MercadoPago's `x-signature`.
    pub mercadopago_webhook_secret: Option<Secret>,
    /// Allowed distance between a signed timestamp and our clock.
    pub webhook_tolerance: Duration,
    /// Key of WhatsApp's `X-Hub-Signature-256`.
    pub whatsapp_app_secret: Option<Secret>,
    /// Token of the WhatsApp subscription handshake.
    pub whatsapp_verify_token: Option<Secret>,
    /// Whether a confirmed web booking is e-mailed: `SMTP_URL` and `SMTP_FROM` are set.
    pub email_confirmations: bool,
}

impl Integrations {
    /// Builds the run-time settings from the configuration.
    pub fn new(config: &IntegrationsConfig) -> Self {
        Self {
            mercadopago: config
                .mercadopago_access_token
                .as_ref()
                .map(|token| MercadoPago::new(&config.mercadopago_api_url, token.clone())),
            mercadopago_webhook_secret: config.mercadopago_webhook_secret.clone(),
            webhook_tolerance: config.webhook_tolerance,
            whatsapp_app_secret: config.whatsapp_app_secret.clone(),
            whatsapp_verify_token: config.whatsapp_verify_token.clone(),
            email_confirmations: config.smtp_url.is_some() && config.smtp_from.is_some(),
        }
    }

    /// Warns at start about integrations that are off, naming the variable to set.
    pub fn log_missing(&self) {
        if self.mercadopago.is_none() {
            tracing::info!(
                "MERCADOPAGO_ACCESS_TOKEN is not set: pre-reservations carry no payment_url"
            );
        }
        if self.mercadopago_webhook_secret.is_none() {
            tracing::warn!(
                "MERCADOPAGO_WEBHOOK_SECRET is not set: MercadoPago notifications answer 401"
            );
        }
        if self.whatsapp_app_secret.is_none() {
            tracing::warn!("WHATSAPP_APP_SECRET is not set: WhatsApp notifications answer 401");
        }
        if self.whatsapp_verify_token.is_none() {
            tracing::info!("WHATSAPP_VERIFY_TOKEN is not set: the WhatsApp handshake answers 403");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::ConfigError;
    use std::collections::HashMap;

    fn parse(vars: &[(&str, &str)]) -> Result<IntegrationsConfig, ConfigError> {
        let map: HashMap<&str, &str> = vars.iter().copied().collect();
        IntegrationsConfig::from_lookup(&|k: &str| map.get(k).map(|v| v.to_string()))
    }

    #[test]
    fn defaults_point_at_mercadopago_with_five_minutes_tolerance() {
        let config = parse(&[]).unwrap();
        assert_eq!(config.mercadopago_api_url, DEFAULT_MERCADOPAGO_API_URL);
        assert_eq!(config.webhook_tolerance, Duration::from_secs(300));
        assert!(config.mercadopago_access_token.is_none());
    }

    #[test]
    fn bad_values_name_the_variable_not_the_value() {
        let err = parse(&[("MERCADOPAGO_API_URL", "ftp://secret-host")]).unwrap_err();
        assert_eq!(err.var, "MERCADOPAGO_API_URL");
        assert!(!err.to_string().contains("secret-host"));
        let err = parse(&[("WEBHOOK_TOLERANCE_SECONDS", "0")]).unwrap_err();
        assert_eq!(err.var, "WEBHOOK_TOLERANCE_SECONDS");
    }

    #[test]
    fn secrets_do_not_print() {
        let config = parse(&[
            ("MERCADOPAGO_ACCESS_TOKEN", "APP_USR-token-hunter2"),
            ("WHATSAPP_APP_SECRET", "whatsapp-hunter3"),
            ("MERCADOPAGO_API_URL", "http://127.0.0.1:9/"),
        ])
        .unwrap();
        assert_eq!(config.mercadopago_api_url, "http://127.0.0.1:9");
        let shown = format!("{config:?} {:?}", Integrations::new(&config));
        assert!(!shown.contains("hunter"), "{shown}");
    }
}
