//! How the outbox worker paces itself: how often it looks for due messages, how it backs off
//! after a failed send, and how long a claim on a message lasts.

use std::time::Duration;

/// The worker's timings. The defaults are the production values; tests shorten them so a
/// retry happens in milliseconds, not minutes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct OutboxTiming {
    /// How long the worker waits before looking again when nothing is due.
    pub poll_interval: Duration,
    /// The wait after the first failed attempt; it doubles with every further failure.
    pub backoff_base: Duration,
    /// The longest wait between two attempts (the doubling stops here).
    pub backoff_max: Duration,
    /// How long one send may take before its outcome is called unknown.
    pub send_timeout: Duration,
    /// Attempts after which a message that keeps failing is given up (`failed`).
    pub max_attempts: u32,
}

impl Default for OutboxTiming {
    /// Polls every 2 s; backs off 2 s, 4 s, ... up to 10 min; 20 attempts span about 2.5
    /// hours of outage, well inside WhatsApp's 24-hour window for free-form replies.
    fn default() -> Self {
        Self {
            poll_interval: Duration::from_secs(2),
            backoff_base: Duration::from_secs(2),
            backoff_max: Duration::from_secs(600),
            send_timeout: Duration::from_secs(10),
            max_attempts: 20,
        }
    }
}

impl OutboxTiming {
    /// The wait before attempt `failed + 1`, after `failed` failures (1 or more): the base
    /// doubled per earlier failure, never more than the maximum.
    pub fn backoff(&self, failed: u32) -> Duration {
        let doublings = failed.saturating_sub(1).min(30);
        self.backoff_base
            .saturating_mul(1u32 << doublings)
            .min(self.backoff_max)
    }

    /// How long a claim on a message lasts: longer than any send can take (the HTTP client
    /// gives up at `send_timeout`), plus 2 s for the whole-second timestamps the database
    /// keeps, so a live worker's claim never runs out under it and a second worker never
    /// sends the same message.
    pub fn lease(&self) -> Duration {
        let whole_seconds = self.send_timeout.as_secs() + 1;
        Duration::from_secs(whole_seconds + 2)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_from_the_base_and_stops_at_the_maximum() {
        let timing = OutboxTiming::default();
        let waits: Vec<u64> = (1..=11).map(|n| timing.backoff(n).as_secs()).collect();
        assert_eq!(waits, [2, 4, 8, 16, 32, 64, 128, 256, 512, 600, 600]);
        assert_eq!(timing.backoff(u32::MAX), timing.backoff_max);
    }

    #[test]
    fn a_claim_outlasts_the_send_timeout() {
        let mut timing = OutboxTiming::default();
        assert!(timing.lease() > timing.send_timeout + Duration::from_secs(1));
        timing.send_timeout = Duration::from_millis(300);
        assert_eq!(timing.lease(), Duration::from_secs(3));
    }
}
