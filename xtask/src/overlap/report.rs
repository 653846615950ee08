//! The result of an overlap run: plain data, saved in the result record and rendered later
//! (by this task's table, and by `cargo xtask report`).

use chrono::NaiveDate;
use serde::{Deserialize, Serialize};

use super::judge::{LatencySummary, RoundVerdict};
use crate::check::CheckResult;
use crate::verdict::Verdict;

/// Everything one `cargo xtask overlap` run measured.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct OverlapReport {
    /// Tag of this run, also in the synthetic guest name (`overlap-check <run id>`).
    pub run_id: String,
    /// The base URL raced against.
    pub url: String,
    /// The accommodation booked.
    pub accommodation_id: i64,
    /// N, the identical requests per round.
    pub concurrency: usize,
    /// Whether reservations were cancelled afterwards (`false` under `--no-cleanup`).
    pub cleanup_enabled: bool,
    /// Each round, in order.
    pub rounds: Vec<RoundReport>,
    /// Codes this run created that are still active (cleanup failed or was off).
    pub leftovers: Vec<String>,
    /// The cross-channel round, when it ran (`--cross-channel`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cross_channel: Option<ChannelRound>,
    /// Fail when the invariant broke in any round; Warn when it held but bookings were left
    /// behind; else Pass.
    pub verdict: Verdict,
}

/// One race and the checks after it.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct RoundReport {
    /// 1-based round number.
    pub round: u32,
    /// First night of the raced stay.
    pub check_in: NaiveDate,
    /// Departure day of the raced stay.
    pub check_out: NaiveDate,
    /// The race's verdict: exactly one 201, N-1 409 `date_overlap`, nothing else.
    pub race: RoundVerdict,
    /// Latency of the winning request from the release, in ms (the first, if several won).
    pub winner_latency_ms: Option<f64>,
    /// Latency of the 409 `date_overlap` answers from the release.
    pub conflict_latency: Option<LatencySummary>,
    /// Opening the N connections before the release, in ms.
    pub connect_ms: f64,
    /// From the release to the last answer, in ms.
    pub race_ms: f64,
    /// Wall time of the round: window, connections, race, checks and cleanup, in ms.
    pub round_ms: f64,
    /// After the race: availability shows exactly one active booking on the window.
    pub availability: Check,
    /// The boundary probes: back-to-back accepted, one night of overlap refused.
    pub boundary: Vec<Check>,
    /// What this round created and what cancelling it did.
    pub cleanup: CleanupReport,
    /// Fail if the race or a check failed; Warn if only cleanup fell short.
    pub verdict: Verdict,
}

/// A check after the race (`availability`, `back_to_back`, `overlap_by_one_night`, or the
/// skipped `boundary`): the shared check shape, so the report reads it like any other.
pub type Check = CheckResult;

/// A probe's check with what it saw; `verifies` and the fix follow from its name.
pub fn probe(name: &str, verdict: Verdict, detail: impl Into<String>) -> Check {
    let verifies = match name {
        "availability" => {
            "after the race, availability shows exactly one active booking on the raced stay"
        }
        "back_to_back" => "a stay starting on the winner's check-out day is accepted (201)",
        "overlap_by_one_night" => {
            "a stay overlapping the winner by one night is refused (409 date_overlap)"
        }
        _ => "the boundary probes run against a winner",
    };
    let fix = (verdict == Verdict::Fail).then(|| {
        "the database must refuse overlapping stays and accept touching ones: check the \
         exclusion constraint on reservations (cargo xtask predeploy, migrations check) and \
         the half-open [check_in, check_out) range it uses"
            .to_string()
    });
    CheckResult::observed(name, verifies, verdict, detail, fix)
}

/// The reservations a round created and what happened when cancelling them.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct CleanupReport {
    /// Every code this round created (race winners and accepted probes).
    pub created: Vec<String>,
    /// Codes cancelled.
    pub cancelled: Vec<String>,
    /// Codes that could not be cancelled, with the reason (or "cleanup disabled").
    pub failed: Vec<CleanupFailure>,
    /// Active bookings still on the window and its margin after cleanup, whoever made them.
    pub still_active: Option<usize>,
}

/// A reservation left behind.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct CleanupFailure {
    /// The reservation code.
    pub code: String,
    /// Why it was not cancelled.
    pub reason: String,
}

impl RoundReport {
    /// Problems of this round as sentences: the race's, then failed checks, then cleanup.
    pub fn problems(&self) -> Vec<String> {
        let mut problems = self.race.problems.clone();
        for check in std::iter::once(&self.availability).chain(&self.boundary) {
            if check.verdict == Verdict::Fail {
                problems.push(format!("{}: {}", check.id, check.summary()));
            }
        }
        for failure in &self.cleanup.failed {
            problems.push(format!(
                "not cleaned up: {} ({})",
                failure.code, failure.reason
            ));
        }
        if let Some(active) = self.cleanup.still_active.filter(|n| *n > 0) {
            problems.push(format!(
                "{active} active booking(s) remain on [{}, {}] after cleanup",
                self.check_in, self.check_out
            ));
        }
        problems
    }
}

/// What the cross-channel round measured.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ChannelRound {
    /// First night of the imported block.
    pub check_in: chrono::NaiveDate,
    /// Its departure day.
    pub check_out: chrono::NaiveDate,
    /// The import is in place: the feed synced and holds its block.
    pub import: Check,
    /// Requests that won the blocked dates (must be none).
    pub winners: Vec<String>,
    /// Requests refused with 409 `date_overlap`.
    pub conflicts: usize,
    /// Requests that ended any other way.
    pub others: usize,
    /// Zero winners and N conflicts.
    pub race: Check,
    /// The feed was removed and every winner cancelled.
    pub cleanup: Check,
    /// Fail when the import, the race or the cleanup failed.
    pub verdict: Verdict,
}
