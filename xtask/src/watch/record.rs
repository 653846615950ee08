//! The stability record: what a watch saw, saved as the run record's `result`.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use super::plan::WatchPlan;
use super::sample::Sample;
use super::stats::{self, WatchStats};
use crate::verdict::Verdict;

/// One watch run.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StabilityRecord {
    /// The base URL watched.
    pub url: String,
    /// The Fly app whose logs were read, when they were.
    pub app: Option<String>,
    /// The plan it ran.
    pub plan: WatchPlan,
    /// Samples a full run takes.
    pub planned_samples: usize,
    /// When the first sample was taken (`None` without samples).
    pub first_sample_at: Option<DateTime<Utc>>,
    /// When the last sample was taken.
    pub last_sample_at: Option<DateTime<Utc>>,
    /// Samples that covered the app (every started machine sampled, see
    /// [`Sample::covers_app`]) out of those planned, in percent.
    pub coverage_pct: f64,
    /// Stopped by Ctrl-C before the end.
    pub interrupted: bool,
    /// Every sample, in time order.
    pub samples: Vec<Sample>,
    /// What the samples add up to, with the breaches.
    pub stats: WatchStats,
}

impl StabilityRecord {
    /// Builds the record of `samples` taken under `plan`.
    pub fn new(
        url: &str,
        app: Option<&str>,
        plan: &WatchPlan,
        samples: Vec<Sample>,
        interrupted: bool,
    ) -> StabilityRecord {
        let planned = plan.planned_samples();
        StabilityRecord {
            url: url.to_string(),
            app: app.map(str::to_string),
            plan: plan.clone(),
            planned_samples: planned,
            first_sample_at: samples.first().map(|s| s.at),
            last_sample_at: samples.last().map(|s| s.at),
            coverage_pct: (samples.iter().filter(|s| s.covers_app()).count() as f64 * 100.0
                / planned as f64)
                .min(100.0),
            interrupted,
            stats: stats::compute(&samples, &plan.limits),
            samples,
        }
    }

    /// Fails on any breach, and when no sample was taken (nothing was verified).
    pub fn verdict(&self) -> Verdict {
        if self.samples.is_empty() || !self.stats.breaches.is_empty() {
            Verdict::Fail
        } else {
            Verdict::Pass
        }
    }
}
