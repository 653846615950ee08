//! The `payments` table and the deposit rule ([`rule::decide`]): an approved payment whose
//! external reference is a pre-reserved code, in the deposit's currency (ARS) and covering
//! its amount, confirms the reservation.
//!
//! Every payment MercadoPago tells us about is recorded with what happened to it, whatever
//! the outcome, so a late or short payment can be refunded or settled by hand.

pub mod outcome;
pub mod rule;

pub use self::outcome::{MERCADOPAGO, PaymentOutcome, ReportedPayment};

use chrono::{DateTime, Utc};
use sqlx::Row;

use self::rule::{Action, HeldReservation};
use crate::store::error::StoreError;
use crate::with_pool;

/// A stored payment, as tests and admins read it.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct StoredPayment {
    /// `mercadopago`.
    pub provider: String,
    /// The provider's payment id.
    pub provider_payment_id: String,
    /// The reservation code it named.
    pub reservation_code: Option<String>,
    /// The provider's last reported status.
    pub provider_status: String,
    /// Amount in cents.
    pub amount_cents: i64,
    /// ISO currency code, as reported.
    pub currency: Option<String>,
    /// What the service did (a [`PaymentOutcome`] name).
    pub outcome: String,
}

/// The statements of [`record_payment`], in the order it runs them.
mod sql {
    // The write comes first: it takes SQLite's write lock (no lock upgrade later) and, on
    // PostgreSQL, locks the payment row so that repeated notifications queue. RETURNING
    // gives the outcome stored before this notification ('received' for a new row).
    pub const UPSERT: &str = "INSERT INTO payments (provider, provider_payment_id, reservation_code, \
         provider_status, amount_cents, currency, received_at, updated_at) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $7) \
         ON CONFLICT (provider, provider_payment_id) DO UPDATE SET \
         provider_status = excluded.provider_status, amount_cents = excluded.amount_cents, \
         reservation_code = excluded.reservation_code, currency = excluded.currency, \
         updated_at = excluded.updated_at \
         RETURNING outcome";
    pub const FIND: &str = "SELECT id, status, deposit_cents, expires_at, payment_flag \
                        FROM reservations WHERE code = $1";
    pub const CONFIRM: &str = "UPDATE reservations SET status = 'confirmed', updated_at = $2 \
                           WHERE id = $1 AND status = 'pre_reserved' AND expires_at > $2";
    pub const EXPIRE: &str = "UPDATE reservations SET status = 'expired', updated_at = $2 \
                          WHERE id = $1 AND status = 'pre_reserved' AND expires_at <= $2";
    pub const FLAG: &str = "UPDATE reservations SET payment_flag = $2, updated_at = $3 \
                        WHERE id = $1 AND status = 'confirmed' AND payment_flag IS NULL";
    pub const SET_OUTCOME: &str = "UPDATE payments SET outcome = $3 \
                               WHERE provider = $1 AND provider_payment_id = $2 \
                               AND outcome IN ('received', 'not_approved')";
    // The guest hears of the confirmation through the outbox, queued in the confirming
    // transaction; the key queues it once per reservation. A booking made on WhatsApp is told
    // there; any other is e-mailed when SMTP is configured ($4) and the guest gave an address.
    pub const NOTIFY: &str = "INSERT INTO outbox (dedupe_key, channel, recipient, body, status, \
         next_attempt_at, created_at) SELECT 'payment-confirmed:' || code, \
         CASE WHEN channel = 'whatsapp' THEN 'whatsapp' ELSE 'email' END, \
         CASE WHEN channel = 'whatsapp' THEN contact_phone ELSE contact_email END, \
         $1, 'pending', $2, $2 FROM reservations WHERE id = $3 AND (channel = 'whatsapp' \
         OR ($4 AND contact_email IS NOT NULL AND TRIM(contact_email) <> '')) \
         ON CONFLICT (dedupe_key) DO NOTHING";
    pub const EVENT: &str = "INSERT INTO payment_events (provider, provider_payment_id, \
         reservation_code, provider_status, amount_cents, currency, outcome, received_at) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8)";
}

/// Records `payment` and applies the deposit rule, in one transaction: the `payments` row
/// (the payment's current state), one `payment_events` row (this delivery, append-only),
/// and what the rule does to the reservation.
///
/// The `payments` row keeps its first meaningful outcome: only `received` and
/// `not_approved` (nothing decided yet) are ever replaced, so a confirming payment stays
/// `confirmed` through its repeats and a later refund; each delivery's own outcome is in
/// `payment_events`.
///
/// `email_confirmations` says whether a confirmed guest who did not book on WhatsApp is
/// e-mailed (SMTP is configured).
///
/// Idempotent: the conditional updates that confirm and flag run at most once per
/// reservation, and a repeated notification of a payment that already confirmed (or whose
/// refund already flagged the stay) reports `Duplicate`.
pub async fn record_payment(
    db: &crate::db::Db,
    provider: &str,
    payment: &ReportedPayment,
    now: DateTime<Utc>,
    email_confirmations: bool,
) -> Result<PaymentOutcome, StoreError> {
    let provider = provider.to_owned();
    let payment = payment.clone();
    // One unit of work in its own task: a notification cut off mid-way (MercadoPago gave
    // up, the request timeout) must not leave its transaction open on a pooled connection.
    let (outcome, expired) = with_pool!(db, pool => {
        crate::db::transaction(pool, move |mut tx| async move {
        let provider = provider.as_str();
        let payment = &payment;
        // UPSERT and EVENT take the reported payment as $1 to $6.
        let reported = |statement: &'static str| {
            sqlx::query(statement)
                .bind(provider)
                .bind(&payment.provider_payment_id)
                .bind(&payment.reservation_code)
                .bind(&payment.status)
                .bind(payment.amount_cents)
                .bind(&payment.currency)
        };
        let previous: String = reported(sql::UPSERT)
            .bind(now)
            .fetch_one(&mut *tx)
            .await?
            .try_get(0)?;
        let held: Option<HeldReservation> = match &payment.reservation_code {
            Some(code) => sqlx::query_as(sql::FIND).bind(code).fetch_optional(&mut *tx).await?,
            None => None,
        };
        let (mut outcome, action) = rule::decide(payment, &previous, held.as_ref(), now);
        // EXPIRE and CONFIRM change the reservation `id` ($1) at `now` ($2), if its status
        // still allows it: the rows changed say whether it did.
        let mut change_status = async |statement: &'static str, id: i64| {
            sqlx::query(statement)
                .bind(id)
                .bind(now)
                .execute(&mut *tx)
                .await
                .map(|done| done.rows_affected())
        };
        let mut expired = 0;
        match action {
            Action::None => {}
            Action::Expire(id) => expired = change_status(sql::EXPIRE, id).await?,
            Action::Confirm(id) => {
                let confirmed = change_status(sql::CONFIRM, id).await?;
                if confirmed != 1 {
                    outcome = PaymentOutcome::AlreadyConfirmed;
                } else if let Some(code) = &payment.reservation_code {
                    sqlx::query(sql::NOTIFY)
                        .bind(crate::guest_replies::payment_confirmed(code))
                        .bind(now)
                        .bind(id)
                        .bind(email_confirmations)
                        .execute(&mut *tx)
                        .await?;
                }
            }
            Action::Flag { id, flag } => {
                let flagged = sqlx::query(sql::FLAG)
                    .bind(id)
                    .bind(flag)
                    .bind(now)
                    .execute(&mut *tx)
                    .await?
                    .rows_affected();
                if flagged != 1 {
                    outcome = PaymentOutcome::Duplicate;
                }
            }
        }
        sqlx::query(sql::SET_OUTCOME)
            .bind(provider)
            .bind(&payment.provider_payment_id)
            .bind(outcome.as_str())
            .execute(&mut *tx)
            .await?;
        reported(sql::EVENT)
            .bind(outcome.as_str())
            .bind(now)
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        Ok((outcome, expired))
        })
        .await?
    });
    if expired > 0 {
        metrics::counter!("prereservations_expired_total").increment(expired);
    }
    Ok(outcome)
}

/// The payments recorded for a reservation code, oldest first.
pub async fn for_reservation(
    db: &crate::db::Db,
    code: &str,
) -> Result<Vec<StoredPayment>, sqlx::Error> {
    const SQL: &str = "SELECT provider, provider_payment_id, reservation_code, provider_status, \
                       amount_cents, currency, outcome FROM payments WHERE reservation_code = $1 \
                       ORDER BY id";
    with_pool!(db, pool => {
        sqlx::query_as::<_, StoredPayment>(SQL).bind(code).fetch_all(pool).await
    })
}

/// One delivery of a payment, as `payment_events` keeps it.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct PaymentEvent {
    /// The provider's payment id.
    pub provider_payment_id: String,
    /// The provider's status in this delivery.
    pub provider_status: String,
    /// Amount in cents, as reported in this delivery.
    pub amount_cents: i64,
    /// ISO currency code, as reported in this delivery.
    pub currency: Option<String>,
    /// What this delivery led to (a [`PaymentOutcome`] name).
    pub outcome: String,
}

/// Every delivery about payments for a reservation code, oldest first.
pub async fn history(db: &crate::db::Db, code: &str) -> Result<Vec<PaymentEvent>, sqlx::Error> {
    const SQL: &str = "SELECT provider_payment_id, provider_status, amount_cents, currency, \
                       outcome FROM payment_events WHERE reservation_code = $1 ORDER BY id";
    with_pool!(db, pool => {
        sqlx::query_as::<_, PaymentEvent>(SQL).bind(code).fetch_all(pool).await
    })
}

/// The reservation's payment flag (`refunded`, `charged_back`): set when the deposit that
/// confirmed it went back to the payer. `None` for an unflagged or unknown reservation.
pub async fn payment_flag(db: &crate::db::Db, code: &str) -> Result<Option<String>, sqlx::Error> {
    const SQL: &str = "SELECT payment_flag FROM reservations WHERE code = $1";
    let flag: Option<Option<String>> = with_pool!(db, pool => {
        sqlx::query_scalar(SQL).bind(code).fetch_optional(pool).await?
    });
    Ok(flag.flatten())
}

/// How many payments are recorded in all (bad signatures must leave this unchanged).
pub async fn count(db: &crate::db::Db) -> Result<i64, sqlx::Error> {
    with_pool!(db, pool => {
        sqlx::query_scalar::<_, i64>("SELECT COUNT(*) FROM payments").fetch_one(pool).await
    })
}
