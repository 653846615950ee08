//! How long and how often a watch samples, and the pacing of the samples.

use std::time::Duration;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use super::stats::Limits;

/// A resolved watch: duration, interval, limits.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct WatchPlan {
    /// How long the run lasts, in milliseconds.
    pub duration_ms: u64,
    /// Time between two samples, in milliseconds.
    pub every_ms: u64,
    /// The limits breaches are judged against.
    pub limits: Limits,
    /// Error/panic log lines kept per sample.
    pub log_lines_kept: usize,
}

impl WatchPlan {
    /// A plan; refuses an interval of zero or longer than the run.
    pub fn new(
        duration: Duration,
        every: Duration,
        limits: Limits,
        log_lines_kept: usize,
    ) -> anyhow::Result<WatchPlan> {
        if every.is_zero() {
            anyhow::bail!("--every must be longer than zero, e.g. --every 30s");
        }
        if every > duration {
            anyhow::bail!(
                "--every ({}s) is longer than --for ({}s): the run would take one sample; \
                 shorten --every or lengthen --for",
                every.as_secs_f64(),
                duration.as_secs_f64()
            );
        }
        Ok(WatchPlan {
            duration_ms: duration.as_millis() as u64,
            every_ms: every.as_millis().max(1) as u64,
            limits,
            log_lines_kept,
        })
    }

    /// Samples in a full run: one at the start, then one every interval up to the end.
    pub fn planned_samples(&self) -> usize {
        (self.duration_ms / self.every_ms) as usize + 1
    }

    /// The interval.
    pub fn every(&self) -> Duration {
        Duration::from_millis(self.every_ms)
    }
}

/// Decides when each sample is taken: waits for its turn and says what time it is. The run
/// uses the wall clock; tests step through chosen instants (and change the world between).
pub trait Pacer {
    /// Waits until sample `index` (0-based) is due, then returns the time it is taken at.
    fn wait(&mut self, index: usize) -> impl Future<Output = DateTime<Utc>>;
}

/// The wall clock: sample `i` at `start + i * every`.
#[derive(Debug)]
pub struct WallClock {
    start: tokio::time::Instant,
    every: Duration,
}

impl WallClock {
    /// Starts now.
    pub fn start(every: Duration) -> WallClock {
        WallClock {
            start: tokio::time::Instant::now(),
            every,
        }
    }
}

impl Pacer for WallClock {
    async fn wait(&mut self, index: usize) -> DateTime<Utc> {
        let due = self.start + self.every * index as u32;
        tokio::time::sleep_until(due).await;
        Utc::now()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn limits() -> Limits {
        Limits {
            availability_floor_pct: 99.0,
            error_rate_pct: 1.0,
            p95_ms: 3000.0,
        }
    }

    #[test]
    fn ten_minutes_every_thirty_seconds_is_twenty_one_samples() {
        let plan = WatchPlan::new(
            Duration::from_secs(600),
            Duration::from_secs(30),
            limits(),
            5,
        )
        .unwrap();
        assert_eq!(plan.planned_samples(), 21);
    }

    #[test]
    fn an_interval_longer_than_the_run_is_refused() {
        let error = WatchPlan::new(
            Duration::from_secs(10),
            Duration::from_secs(30),
            limits(),
            5,
        )
        .unwrap_err();
        assert!(error.to_string().contains("--every"), "{error}");
        assert!(WatchPlan::new(Duration::from_secs(10), Duration::ZERO, limits(), 5).is_err());
    }
}
