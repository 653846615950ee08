//! Queries, one module per table. Each query is one SQL text that runs on both databases.

pub mod accommodations;
pub mod calendar;
pub mod error;
pub mod idempotency;
pub mod messages;
pub mod outbox;
pub mod payments;
pub mod reads;
pub mod reservations;
pub mod status;

pub use self::error::StoreError;

use chrono::{DateTime, SubsecRound, Utc};

/// The current time at whole seconds.
///
/// SQLite stores timestamps as RFC 3339 text, which orders correctly only at a fixed
/// width, so every timestamp the service writes or compares is truncated to the second.
pub fn now() -> DateTime<Utc> {
    Utc::now().trunc_subsecs(0)
}
