//! `BOOKING_HORIZON_DAYS` and `AVAILABILITY_PAST_DAYS`: the dates the service accepts.

use super::error::ConfigError;
use super::lookup::parse_number;

/// The dates the business deals in, relative to today (UTC): stays must end within
/// `future_days`, availability looks back at most `past_days`. Both at most
/// [`BookingHorizon::MAX_DAYS`], which keeps every date the service stores or compares
/// within years 0001-9999, where both databases agree on their order.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct BookingHorizon {
    /// How far back availability may look, in days.
    pub past_days: u32,
    /// How far ahead a stay may end (and availability may look), in days.
    pub future_days: u32,
}

impl BookingHorizon {
    /// The largest horizon accepted either way: about 100 years.
    pub const MAX_DAYS: u32 = 36_500;

    /// Reads `BOOKING_HORIZON_DAYS` (default 730) and `AVAILABILITY_PAST_DAYS` (default 365).
    pub fn from_lookup(get: &impl Fn(&str) -> Option<String>) -> Result<Self, ConfigError> {
        let days = |var: &'static str, default: u32| {
            parse_number::<u32>(get, var, default, "must be a whole number of days").and_then(
                |days| match days {
                    1..=Self::MAX_DAYS => Ok(days),
                    _ => Err(ConfigError::invalid(
                        var,
                        format!("must be 1 to {} days", Self::MAX_DAYS),
                    )),
                },
            )
        };
        Ok(Self {
            future_days: days("BOOKING_HORIZON_DAYS", 730)?,
            past_days: days("AVAILABILITY_PAST_DAYS", 365)?,
        })
    }

    /// The first day availability may show.
    pub fn earliest(&self, today: chrono::NaiveDate) -> chrono::NaiveDate {
        today - chrono::Duration::days(i64::from(self.past_days))
    }

    /// The last day a stay may end on (its check-out day).
    pub fn latest(&self, today: chrono::NaiveDate) -> chrono::NaiveDate {
        today + chrono::Duration::days(i64::from(self.future_days))
    }
}
