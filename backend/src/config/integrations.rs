//! The settings of MercadoPago and WhatsApp (`crate::integrations` builds the clients from
//! them). Everything is optional; see `crate::integrations` for what a missing one turns off.

use std::time::Duration;

pub use super::outbox::OutboxTiming;

use super::error::ConfigError;
use super::secret::Secret;

/// MercadoPago's public API.
pub const DEFAULT_MERCADOPAGO_API_URL: &str = "https://api.mercadopago.com";
/// The WhatsApp Cloud API: Meta's Graph API at the version this service was written
/// against. Graph API versions live about two years; v24.0 is the version Meta's Cloud API
/// examples show in late 2025 (https://developers.facebook.com/docs/whatsapp/cloud-api/reference/messages,
/// as mirrored in https://docs.kapso.ai/api/meta/whatsapp/messages/send-a-message); set
/// `WHATSAPP_API_URL` to move to a newer one without a release.
pub const DEFAULT_WHATSAPP_API_URL: &str = "https://graph.facebook.com/v24.0";
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
    /// `WHATSAPP_ACCESS_TOKEN`: the bearer token replies are sent with.
    pub whatsapp_access_token: Option<Secret>,
    /// `WHATSAPP_PHONE_NUMBER_ID`: the business number replies are sent from.
    pub whatsapp_phone_number_id: Option<String>,
    /// `WHATSAPP_API_URL`, default [`DEFAULT_WHATSAPP_API_URL`] (tests point it at a fake).
    pub whatsapp_api_url: String,
    /// `SMTP_URL`, `smtp://user:pass@host:port` (STARTTLS, required unless the host is
    /// loopback) or `smtps://…` (implicit TLS): where payment confirmations are e-mailed
    /// from. A secret (it carries the password). Unset: no confirmation goes by e-mail.
    pub smtp_url: Option<Secret>,
    /// `SMTP_FROM`, the sender of those e-mails (`Cabañas <reservas@example.com>`); required
    /// with `SMTP_URL`.
    pub smtp_from: Option<String>,
    /// How the outbox worker paces its sends (not read from the environment: the defaults
    /// are the production values; tests shorten them).
    pub outbox: OutboxTiming,
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
            whatsapp_access_token: None,
            whatsapp_phone_number_id: None,
            whatsapp_api_url: DEFAULT_WHATSAPP_API_URL.to_owned(),
            smtp_url: None,
            smtp_from: None,
            outbox: OutboxTiming::default(),
        }
    }
}

impl IntegrationsConfig {
    /// Reads the integration variables; `get` returns non-blank values only.
    pub fn from_lookup(get: &impl Fn(&str) -> Option<String>) -> Result<Self, ConfigError> {
        let secret = |name: &str| get(name).map(|v| Secret::new(v.trim()));
        let mercadopago_api_url = api_url(get, "MERCADOPAGO_API_URL", DEFAULT_MERCADOPAGO_API_URL)?;
        let whatsapp_api_url = api_url(get, "WHATSAPP_API_URL", DEFAULT_WHATSAPP_API_URL)?;
        let whatsapp_phone_number_id = match get("WHATSAPP_PHONE_NUMBER_ID") {
            Some(id) if id.trim().chars().all(|c| c.is_ascii_digit()) => Some(id.trim().to_owned()),
            Some(_) => {
                return Err(ConfigError {
                    var: "WHATSAPP_PHONE_NUMBER_ID",
                    reason: "must be the numeric phone number ID from Meta's WhatsApp Manager \
                             (API Setup), not the phone number"
                        .into(),
                });
            }
            None => None,
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
        let (smtp_url, smtp_from) = smtp(get)?;
        Ok(Self {
            mercadopago_access_token: secret("MERCADOPAGO_ACCESS_TOKEN"),
            mercadopago_webhook_secret: secret("MERCADOPAGO_WEBHOOK_SECRET"),
            mercadopago_api_url,
            webhook_tolerance: Duration::from_secs(tolerance),
            whatsapp_app_secret: secret("WHATSAPP_APP_SECRET"),
            whatsapp_verify_token: secret("WHATSAPP_VERIFY_TOKEN"),
            whatsapp_access_token: secret("WHATSAPP_ACCESS_TOKEN"),
            whatsapp_phone_number_id,
            whatsapp_api_url,
            smtp_url,
            smtp_from,
            outbox: OutboxTiming::default(),
        })
    }
}

/// `SMTP_URL` and `SMTP_FROM`, checked together. Errors never repeat the URL (it holds a
/// password).
fn smtp(
    get: &impl Fn(&str) -> Option<String>,
) -> Result<(Option<Secret>, Option<String>), ConfigError> {
    let Some(url) = get("SMTP_URL").map(|url| url.trim().to_owned()) else {
        return Ok((None, get("SMTP_FROM").map(|from| from.trim().to_owned())));
    };
    if super::smtp::SmtpUrl::parse(&url).is_none() {
        return Err(ConfigError {
            var: "SMTP_URL",
            reason: "must look like smtp://user:password@host:587 (STARTTLS) or \
                     smtps://user:password@host:465 (implicit TLS), without a ?query"
                .into(),
        });
    }
    let from = get("SMTP_FROM").map(|from| from.trim().to_owned());
    match &from {
        Some(from) if from.parse::<lettre::message::Mailbox>().is_ok() => {}
        Some(_) => {
            return Err(ConfigError {
                var: "SMTP_FROM",
                reason: "must be an address the mail is sent from, like \
                         reservas@example.com or 'Cabañas <reservas@example.com>'"
                    .into(),
            });
        }
        None => {
            return Err(ConfigError {
                var: "SMTP_FROM",
                reason: "must be set when SMTP_URL is: the address confirmations are sent from"
                    .into(),
            });
        }
    }
    Ok((Some(Secret::new(url)), from))
}

/// An API base URL from `var`, without a trailing slash, or `default`.
fn api_url(
    get: &impl Fn(&str) -> Option<String>,
    var: &'static str,
    default: &str,
) -> Result<String, ConfigError> {
    let Some(url) = get(var) else {
        return Ok(default.to_owned());
    };
    let url = url.trim().trim_end_matches('/').to_owned();
    if !(url.starts_with("https://") || url.starts_with("http://")) {
        return Err(ConfigError {
            var,
            reason: "must start with https:// (or http:// for a local fake)".into(),
        });
    }
    Ok(url)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn read(pairs: &[(&str, &str)]) -> Result<IntegrationsConfig, ConfigError> {
        let get = |name: &str| {
            pairs
                .iter()
                .find(|(k, _)| *k == name)
                .map(|(_, v)| (*v).to_owned())
        };
        IntegrationsConfig::from_lookup(&get)
    }

    #[test]
    fn whatsapp_sending_reads_its_three_variables() {
        let config = read(&[]).unwrap();
        assert_eq!(config.whatsapp_api_url, DEFAULT_WHATSAPP_API_URL);
        assert!(config.whatsapp_access_token.is_none());
        assert!(config.whatsapp_phone_number_id.is_none());
        let config = read(&[
            ("WHATSAPP_API_URL", "http://127.0.0.1:9/v24.0/"),
            ("WHATSAPP_PHONE_NUMBER_ID", " 106540352242922 "),
            ("WHATSAPP_ACCESS_TOKEN", "EAAG-token"),
        ])
        .unwrap();
        assert_eq!(config.whatsapp_api_url, "http://127.0.0.1:9/v24.0");
        assert_eq!(
            config.whatsapp_phone_number_id.as_deref(),
            Some("106540352242922")
        );
        assert_eq!(
            config.whatsapp_access_token.map(|t| t.expose().to_owned()),
            Some("EAAG-token".to_owned())
        );
    }

    #[test]
    fn smtp_needs_a_url_of_its_schemes_and_a_sender() {
        let config = read(&[]).unwrap();
        assert!(config.smtp_url.is_none());
        let config = read(&[
            ("SMTP_URL", " smtp://mailer:hunter2@smtp.example.com:587 "),
            ("SMTP_FROM", "Cabañas <reservas@example.com>"),
        ])
        .unwrap();
        assert_eq!(
            config.smtp_url.as_ref().map(Secret::expose),
            Some("smtp://mailer:hunter2@smtp.example.com:587")
        );
        assert!(!format!("{config:?}").contains("hunter2"));
        let err = read(&[("SMTP_URL", "smtp://mailer:hunter2@smtp.example.com")]).unwrap_err();
        assert_eq!(err.var, "SMTP_FROM");
        for bad in [
            "mailer:hunter2@smtp.example.com",
            "http://mailer:hunter2@smtp.example.com",
            "smtp://mailer:hunter2@smtp.example.com?tls=opportunistic",
        ] {
            let err = read(&[("SMTP_URL", bad), ("SMTP_FROM", "a@example.com")]).unwrap_err();
            assert_eq!(err.var, "SMTP_URL");
            assert!(!err.reason.contains("hunter2"), "{}", err.reason);
        }
        let err = read(&[
            ("SMTP_URL", "smtps://smtp.example.com"),
            ("SMTP_FROM", "not an address"),
        ])
        .unwrap_err();
        assert_eq!(err.var, "SMTP_FROM");
    }

    #[test]
    fn a_phone_number_instead_of_its_id_or_a_bad_url_is_named() {
        let err = read(&[("WHATSAPP_PHONE_NUMBER_ID", "+54 9 11 5555-0000")]).unwrap_err();
        assert_eq!(err.var, "WHATSAPP_PHONE_NUMBER_ID");
        assert!(!err.reason.contains("5555"), "{}", err.reason);
        let err = read(&[("WHATSAPP_API_URL", "graph.facebook.com")]).unwrap_err();
        assert_eq!(err.var, "WHATSAPP_API_URL");
    }
}
