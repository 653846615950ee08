//! Notifications from outside services: MercadoPago payments and WhatsApp messages.
//!
//! Both are signed with HMAC-SHA256. A request is trusted only after its signature checks
//! out; until then nothing is written and nothing from it (body, headers) is logged. The
//! signature, not the address, is what the rate limit looks at: a signed delivery is never
//! limited, while one that fails the check spends its sender's budget
//! ([`crate::http::edge::limit_unauthenticated`]).

pub mod delivery;
pub mod mercadopago;
pub mod whatsapp;
mod whatsapp_answer;

pub use self::delivery::{constant_time_eq, escape_controls, hmac_sha256_hex, hmac_sha256_matches};

use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::http::state::AppState;
use crate::store::payments::PaymentOutcome;

/// Webhook routes.
pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(mercadopago::notify))
        .routes(routes!(whatsapp::handshake, whatsapp::notify))
}

/// Describes the webhook metrics and touches every label with a zero.
pub fn register_metrics() {
    use metrics::{counter, describe_counter};
    describe_counter!(
        "mercadopago_notifications_total",
        "MercadoPago payment notifications, by outcome"
    );
    describe_counter!(
        "whatsapp_notifications_total",
        "WhatsApp webhook deliveries, by outcome"
    );
    describe_counter!(
        "whatsapp_messages_total",
        "Inbound WhatsApp messages, by outcome (stored or duplicate)"
    );
    describe_counter!(
        "mercadopago_preferences_total",
        "Deposit checkouts requested from MercadoPago, by outcome"
    );
    for outcome in ["created", "failed"] {
        counter!("mercadopago_preferences_total", "outcome" => outcome).increment(0);
    }
    let payment_outcomes = PaymentOutcome::ALL.iter().map(|o| o.as_str());
    for outcome in payment_outcomes.chain(mercadopago::OTHER_OUTCOMES) {
        counter!("mercadopago_notifications_total", "outcome" => outcome).increment(0);
    }
    for outcome in whatsapp::NOTIFICATION_OUTCOMES {
        counter!("whatsapp_notifications_total", "outcome" => outcome).increment(0);
    }
    for outcome in ["stored", "duplicate"] {
        counter!("whatsapp_messages_total", "outcome" => outcome).increment(0);
    }
}
