//! The status of a reservation, the states of its machine:
//! `pre_reserved` → `confirmed` | `cancelled` | `expired`; `confirmed` → `cancelled`.
//! `blocked` stands apart: dates another channel's calendar holds, owned by an imported feed
//! (`crate::store::calendar`) and replaced by its next sync, never by these transitions.
//!
//! Stored as TEXT (the `reservations.status` column, and the literals in the store's SQL)
//! and shown in JSON as the same snake_case words, so neither representation changed when
//! the string constants became this enum.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};
use sqlx::encode::IsNull;
use sqlx::error::BoxDynError;

/// Where a reservation is in its life.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ReservationStatus {
    /// Waiting for its deposit; holds its dates until `expires_at`.
    PreReserved,
    /// Paid (or confirmed by an admin): a stay.
    Confirmed,
    /// Cancelled by an admin; its dates are free.
    Cancelled,
    /// Outlived its time to live unpaid; its dates are free.
    Expired,
    /// Dates taken on another channel, imported from its calendar feed; no guest, no price.
    Blocked,
}

impl ReservationStatus {
    /// Every status, in the order of the machine.
    pub const ALL: [Self; 5] = [
        Self::PreReserved,
        Self::Confirmed,
        Self::Cancelled,
        Self::Expired,
        Self::Blocked,
    ];

    /// The word stored in the database and shown in JSON.
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::PreReserved => "pre_reserved",
            Self::Confirmed => "confirmed",
            Self::Cancelled => "cancelled",
            Self::Expired => "expired",
            Self::Blocked => "blocked",
        }
    }
}

impl fmt::Display for ReservationStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A status word the service never writes.
#[derive(Debug, thiserror::Error)]
#[error(
    "unknown reservation status {0:?} (expected pre_reserved, confirmed, cancelled, expired or blocked)"
)]
pub struct UnknownStatus(String);

impl FromStr for ReservationStatus {
    type Err = UnknownStatus;

    fn from_str(text: &str) -> Result<Self, UnknownStatus> {
        Self::ALL
            .into_iter()
            .find(|status| status.as_str() == text)
            .ok_or_else(|| UnknownStatus(text.to_owned()))
    }
}

// TEXT on both databases: the status is read and written as the `str` it is stored as.
impl<DB: sqlx::Database> sqlx::Type<DB> for ReservationStatus
where
    str: sqlx::Type<DB>,
{
    fn type_info() -> DB::TypeInfo {
        <str as sqlx::Type<DB>>::type_info()
    }

    fn compatible(ty: &DB::TypeInfo) -> bool {
        <str as sqlx::Type<DB>>::compatible(ty)
    }
}

impl<'r, DB: sqlx::Database> sqlx::Decode<'r, DB> for ReservationStatus
where
    &'r str: sqlx::Decode<'r, DB>,
{
    fn decode(value: DB::ValueRef<'r>) -> Result<Self, BoxDynError> {
        Ok(<&str as sqlx::Decode<'r, DB>>::decode(value)?.parse()?)
    }
}

impl<'q, DB: sqlx::Database> sqlx::Encode<'q, DB> for ReservationStatus
where
    &'static str: sqlx::Encode<'q, DB>,
{
    fn encode_by_ref(&self, buf: &mut DB::ArgumentBuffer) -> Result<IsNull, BoxDynError> {
        <&'static str as sqlx::Encode<'q, DB>>::encode(self.as_str(), buf)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn json_and_text_are_the_same_words() {
        for status in ReservationStatus::ALL {
            let json = serde_json::to_string(&status).unwrap();
            assert_eq!(json, format!("\"{}\"", status.as_str()));
            assert_eq!(
                serde_json::from_str::<ReservationStatus>(&json).unwrap(),
                status
            );
            assert_eq!(
                status.as_str().parse::<ReservationStatus>().unwrap(),
                status
            );
        }
        assert_eq!(ReservationStatus::PreReserved.to_string(), "pre_reserved");
        let err = "PRE_RESERVED".parse::<ReservationStatus>().unwrap_err();
        assert!(err.to_string().contains("PRE_RESERVED"), "{err}");
    }
}
