//! What the store refuses, in the domain's words. The HTTP layer maps each to its status and
//! body in one place (`impl From<StoreError> for crate::error::ApiError`); the store knows
//! nothing of HTTP.

use crate::store::status::ReservationStatus;

/// Why a store operation did not happen.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The database's overlap guarantee refused the dates: they collide with an active
    /// reservation of the same accommodation.
    #[error("the accommodation is already booked for some of these dates")]
    DateOverlap,
    /// No reservation has this code.
    #[error("no reservation has the code {0}")]
    NotFound(String),
    /// The pre-reservation outlived its time to live.
    #[error("the pre-reservation has expired")]
    Expired,
    /// The reservation's status does not allow the action.
    #[error("a reservation in status {status} cannot be {action}")]
    InvalidState {
        /// The status it is in.
        status: ReservationStatus,
        /// What was asked, as a past participle (`confirmed`, `cancelled`).
        action: &'static str,
    },
    /// Another request holds this idempotency key and has not answered yet.
    #[error("a request with this Idempotency-Key is still being processed")]
    IdempotencyInProgress,
    /// The idempotency key was used with another request.
    #[error("this Idempotency-Key was already used with a different request")]
    IdempotencyKeyReused,
    /// The store found its own data in a state it never writes.
    #[error("{0}")]
    Inconsistent(&'static str),
    /// The database failed (transient or not; the caller reads it with `crate::db::classify`).
    #[error(transparent)]
    Database(#[from] sqlx::Error),
}
