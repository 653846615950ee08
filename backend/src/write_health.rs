//! The write path's health: whether the last write failed on transient database trouble.
//!
//! A database can answer `SELECT 1` while every write fails (a held SQLite write lock, a full
//! disk, a lock timeout), so `healthz` and `readyz` also report what the latest write met.
//! A failure is reported until a later write succeeds or [`WRITE_FAILURE_WINDOW`] passes
//! without another failure.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use axum::http::Method;
use axum::response::Response;

use crate::error::DatabaseTrouble;

/// How long a write failure keeps the service reported as failing writes.
pub const WRITE_FAILURE_WINDOW: Duration = Duration::from_secs(30);

/// The outcome of the latest write. Read by every `healthz` and `readyz`, so it is one atomic
/// (no lock the two worker threads would contend on).
#[derive(Debug)]
pub struct WriteHealth {
    /// When the window of the latest failure started counting, as nanoseconds after `epoch`,
    /// plus one; 0 when no failure is reported.
    last_failure: AtomicU64,
    epoch: Instant,
}

impl Default for WriteHealth {
    fn default() -> Self {
        Self {
            last_failure: AtomicU64::new(0),
            epoch: Instant::now(),
        }
    }
}

impl WriteHealth {
    /// A write failed on transient database trouble.
    pub fn failed(&self) {
        let since_epoch = self.epoch.elapsed().as_nanos();
        let stamp = u64::try_from(since_epoch).unwrap_or(u64::MAX - 1) + 1;
        self.last_failure.store(stamp, Ordering::Relaxed);
    }

    /// A write reached the database and got an answer.
    pub fn succeeded(&self) {
        // Only a store when something is reported: a success after a success writes nothing.
        if self.last_failure.load(Ordering::Relaxed) != 0 {
            self.last_failure.store(0, Ordering::Relaxed);
        }
    }

    /// How long ago the latest write failed, when it did so within the window and no write
    /// has succeeded since.
    pub fn failing_for(&self) -> Option<Duration> {
        match self.last_failure.load(Ordering::Relaxed) {
            0 => None,
            stamp => {
                let at = self.epoch + Duration::from_nanos(stamp - 1);
                Some(at.elapsed()).filter(|age| *age < WRITE_FAILURE_WINDOW)
            }
        }
    }
}

/// Records the outcome of a write request (any method but GET, HEAD and OPTIONS): a 503 from
/// database trouble is a failure; any answer below 500 a success.
pub fn record_write(writes: &WriteHealth, method: &Method, response: &Response) {
    if matches!(*method, Method::GET | Method::HEAD | Method::OPTIONS) {
        return;
    }
    if response.extensions().get::<DatabaseTrouble>().is_some() {
        writes.failed();
    } else if !response.status().is_server_error() {
        writes.succeeded();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_failure_is_reported_until_a_success() {
        let writes = WriteHealth::default();
        assert_eq!(writes.failing_for(), None);
        writes.failed();
        let age = writes.failing_for().expect("reported after a failure");
        assert!(age < WRITE_FAILURE_WINDOW);
        writes.succeeded();
        assert_eq!(writes.failing_for(), None);
    }

    #[test]
    fn a_failure_older_than_the_window_is_not_reported() {
        let writes = WriteHealth {
            last_failure: AtomicU64::new(0),
            epoch: Instant::now() - WRITE_FAILURE_WINDOW - Duration::from_secs(1),
        };
        // As if the failure happened at the epoch, a window and a second ago.
        writes.last_failure.store(1, Ordering::Relaxed);
        assert_eq!(writes.failing_for(), None);
    }
}
