//! The shapes of a reservation: as stored, as inserted, as availability shows it, and the
//! idempotent answer stored with it.

use std::sync::Arc;

use chrono::{DateTime, NaiveDate, Utc};
use rand::Rng;
use serde::Serialize;

use crate::store::status::ReservationStatus;

/// A stored reservation.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct Reservation {
    /// Primary key.
    pub id: i64,
    /// The public reservation code.
    pub code: String,
    /// The booked accommodation.
    pub accommodation_id: i64,
    /// First night.
    pub check_in: NaiveDate,
    /// Departure day (not a night of the stay).
    pub check_out: NaiveDate,
    /// Number of guests.
    pub guests: i32,
    /// Where the booking came from (web, whatsapp, ...).
    pub channel: String,
    /// Guest name.
    pub contact_name: String,
    /// Guest phone.
    pub contact_phone: String,
    /// Guest email, if given.
    pub contact_email: Option<String>,
    /// Where it is in its life.
    pub status: ReservationStatus,
    /// Total price in cents.
    pub total_price_cents: i64,
    /// Deposit in cents.
    pub deposit_cents: i64,
    /// When a pre-reservation stops holding the dates.
    pub expires_at: DateTime<Utc>,
    /// Creation time.
    pub created_at: DateTime<Utc>,
    /// Last status change.
    pub updated_at: DateTime<Utc>,
}

/// A validated, priced reservation to insert.
#[derive(Debug, Clone)]
pub struct NewReservation {
    /// The booked accommodation.
    pub accommodation_id: i64,
    /// First night.
    pub check_in: NaiveDate,
    /// Departure day.
    pub check_out: NaiveDate,
    /// Number of guests.
    pub guests: i32,
    /// Booking channel.
    pub channel: String,
    /// Guest name.
    pub contact_name: String,
    /// Guest phone.
    pub contact_phone: String,
    /// Guest email.
    pub contact_email: Option<String>,
    /// Total price in cents.
    pub total_price_cents: i64,
    /// Deposit in cents.
    pub deposit_cents: i64,
    /// End of the hold.
    pub expires_at: DateTime<Utc>,
}

/// A booking as availability shows it: dates and status, no personal data.
#[derive(Debug, Clone, Serialize, sqlx::FromRow, utoipa::ToSchema)]
pub struct Booking {
    /// First night.
    pub check_in: NaiveDate,
    /// Departure day.
    pub check_out: NaiveDate,
    /// `pre_reserved` or `confirmed`.
    #[schema(value_type = String)]
    pub status: ReservationStatus,
}

/// Makes reservation codes. Swappable so tests can force a collision.
pub type CodeGenerator = Arc<dyn Fn() -> String + Send + Sync>;

/// Codes like `CB-7K2M9QXA`: 8 characters from an alphabet without look-alikes
/// (no 0/O, 1/I), about 40 bits.
pub fn random_code() -> String {
    const ALPHABET: &[u8] = b"ABCDEFGHJKLMNPQRSTUVWXYZ23456789";
    let mut rng = rand::rng();
    let suffix: String = (0..8)
        .map(|_| ALPHABET[rng.random_range(0..ALPHABET.len())] as char)
        .collect();
    format!("CB-{suffix}")
}

/// The columns of `reservations`, in the order of [`Reservation`]'s fields.
macro_rules! columns {
    () => {
        "id, code, accommodation_id, check_in, check_out, guests, channel, contact_name, \
         contact_phone, contact_email, status, total_price_cents, deposit_cents, expires_at, \
         created_at, updated_at"
    };
}
pub(crate) use columns;

/// The idempotent answer stored in the same transaction as the reservation it describes,
/// so that a crash or a failed write can never leave one without the other.
#[derive(Clone)]
pub struct StoredAnswer {
    /// The claimed `Idempotency-Key`.
    pub key: String,
    /// The HTTP status to replay.
    pub status: u16,
    /// Renders the body to replay from the inserted reservation.
    pub render: fn(&Reservation) -> String,
    /// The canonical request to claim the key with, in the transaction that inserts the
    /// reservation and its answer (one statement on PostgreSQL), so a first request commits
    /// once. `None`: the caller already holds the key.
    pub claim: Option<String>,
}
