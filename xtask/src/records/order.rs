//! Which run is newer. A record's `started_at` is what the machine that ran it claimed; a
//! copied record or a skewed clock can claim a start in the future, and ordering by that
//! alone lets one stale PASS mask every later failure. So records rank by their claimed start
//! but never later than when this machine first saw them ([`super::seen`]), and those that
//! claim to have started, or whose file claims to have been written, after that are flagged.

use chrono::{DateTime, Duration, Utc};

/// How far a claimed start may lie after the save before the record counts as from the
/// future: clocks of one machine and its filesystem agree far better than this.
pub const CLOCK_TOLERANCE: Duration = Duration::minutes(5);

/// Where a record ranks: its claimed start, capped by when this machine saved it.
pub fn rank(started_at: DateTime<Utc>, saved_at: DateTime<Utc>) -> DateTime<Utc> {
    started_at.min(saved_at)
}

/// Whether a record claims to have started after this machine saved it.
pub fn from_future(started_at: DateTime<Utc>, saved_at: DateTime<Utc>) -> bool {
    started_at > saved_at + CLOCK_TOLERANCE
}

/// The warning a report and `status` show for a record from the future.
pub fn future_warning(
    task: &str,
    environment: &str,
    started_at: DateTime<Utc>,
    first_seen: DateTime<Utc>,
    file: &str,
) -> String {
    format!(
        "the {task} record for {environment} in {file} is dated in the future (it claims to \
         start at {}) but was first seen here at {}: a skewed clock or a copied record; it is \
         ranked by when it was first seen (check the clock of the machine that ran it, or \
         delete the file)",
        started_at.to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
        first_seen.to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(text: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(text).unwrap().to_utc()
    }

    #[test]
    fn a_claimed_future_start_ranks_at_its_save() {
        let saved = at("2026-12-01T10:00:00Z");
        let claimed = at("2030-01-01T00:00:00Z");
        assert_eq!(rank(claimed, saved), saved);
        assert!(from_future(claimed, saved));
        let honest = at("2026-12-01T09:59:00Z");
        assert_eq!(rank(honest, saved), honest);
        assert!(!from_future(honest, saved));
        // Within the tolerance: a coarse filesystem clock, not a warning.
        assert!(!from_future(saved + Duration::minutes(1), saved));
    }
}
