//! Prices in integer cents; decimal strings only at the JSON edge.
//!
//! A night costs the base price, times the weekend multiplier when it is a Friday or
//! Saturday night (the night of date `d` starts on `d`). The multiplier is in basis points
//! (12000 = 1.20x). Every rounding is half up to the cent.

use chrono::{Datelike, NaiveDate, Weekday};

/// Basis points in 1.00x.
pub const BASIS_POINTS: i64 = 10_000;
/// Percentage of the total asked as a deposit.
pub const DEPOSIT_PERCENT: i64 = 30;

/// The price of a stay.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Quote {
    /// Number of nights, `check_out - check_in`.
    pub nights: i64,
    /// The sum of the nightly prices, in cents.
    pub total_cents: i64,
    /// [`DEPOSIT_PERCENT`] of the total, rounded half up, in cents.
    pub deposit_cents: i64,
}

/// Divides a non-negative numerator, rounding half up.
fn div_half_up(numerator: i64, denominator: i64) -> i64 {
    (numerator + denominator / 2) / denominator
}

/// Whether the night starting on `date` is charged at the weekend rate.
pub fn is_weekend_night(date: NaiveDate) -> bool {
    matches!(date.weekday(), Weekday::Fri | Weekday::Sat)
}

/// The price of one weekend night, in cents.
pub fn weekend_night_cents(base_cents: i64, multiplier_bp: i64) -> i64 {
    div_half_up(base_cents * multiplier_bp, BASIS_POINTS)
}

/// The deposit for a total, in cents.
pub fn deposit_cents(total_cents: i64) -> i64 {
    div_half_up(total_cents * DEPOSIT_PERCENT, 100)
}

/// Prices the stay `[check_in, check_out)`. The caller has validated the dates.
pub fn quote(
    check_in: NaiveDate,
    check_out: NaiveDate,
    base_cents: i64,
    multiplier_bp: i64,
) -> Quote {
    let weekend = weekend_night_cents(base_cents, multiplier_bp);
    let total_cents = check_in
        .iter_days()
        .take_while(|d| *d < check_out)
        .map(|d| {
            if is_weekend_night(d) {
                weekend
            } else {
                base_cents
            }
        })
        .sum();
    Quote {
        nights: (check_out - check_in).num_days(),
        total_cents,
        deposit_cents: deposit_cents(total_cents),
    }
}

/// Formats cents as a decimal string: `12345` → `"123.45"`.
pub fn format_cents(cents: i64) -> String {
    let sign = if cents < 0 { "-" } else { "" };
    let abs = cents.unsigned_abs();
    format!("{sign}{}.{:02}", abs / 100, abs % 100)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn date(s: &str) -> NaiveDate {
        s.parse().unwrap()
    }

    #[test]
    fn friday_and_saturday_nights_are_weekend_nights() {
        // 2030-01-04 is a Friday.
        assert!(!is_weekend_night(date("2030-01-03")));
        assert!(is_weekend_night(date("2030-01-04")));
        assert!(is_weekend_night(date("2030-01-05")));
        assert!(!is_weekend_night(date("2030-01-06")));
    }

    #[test]
    fn a_week_has_two_weekend_nights() {
        // Mon 2030-01-07 .. Mon 2030-01-14: 5 weekday nights + Fri + Sat.
        let q = quote(date("2030-01-07"), date("2030-01-14"), 10_000, 12_000);
        assert_eq!(q.nights, 7);
        assert_eq!(q.total_cents, 5 * 10_000 + 2 * 12_000);
        assert_eq!(q.deposit_cents, 22_200);
    }

    #[test]
    fn sunday_night_is_a_weekday_night() {
        let q = quote(date("2030-01-06"), date("2030-01-07"), 10_000, 12_000);
        assert_eq!(q.total_cents, 10_000);
    }

    #[test]
    fn weekend_price_rounds_half_up_to_the_cent() {
        // 1.25 * 1.10 = 1.375 -> 1.38
        assert_eq!(weekend_night_cents(125, 11_000), 138);
        // 0.99 * 1.15 = 1.1385 -> 1.14
        assert_eq!(weekend_night_cents(99, 11_500), 114);
    }

    #[test]
    fn deposit_is_thirty_percent_rounded_half_up() {
        assert_eq!(deposit_cents(10_000), 3_000);
        // 0.30 * 0.05 = 0.015 -> 0.02 (half up, not to even)
        assert_eq!(deposit_cents(5), 2);
        // 0.30 * 0.01 = 0.003 -> 0.00
        assert_eq!(deposit_cents(1), 0);
        // 0.30 * 123.45 = 37.035 -> 37.04
        assert_eq!(deposit_cents(12_345), 3_704);
    }

    #[test]
    fn cents_format_as_decimal_strings() {
        assert_eq!(format_cents(12_345), "123.45");
        assert_eq!(format_cents(5), "0.05");
        assert_eq!(format_cents(0), "0.00");
        assert_eq!(format_cents(-150), "-1.50");
    }
}
