//! The write path's health: whether the last write failed on transient database trouble.
//!
//! A database can answer `SELECT 1` while every write fails (a held SQLite write lock, a full
//! disk, a lock timeout), so `healthz` and `readyz` also report what the latest write met.
//! A failure is reported until a later write succeeds or [`WRITE_FAILURE_WINDOW`] passes
//! without another failure.

use std::sync::Mutex;
use std::time::{Duration, Instant};

use axum::http::Method;
use axum::response::Response;

use crate::error::DatabaseTrouble;

/// How long a write failure keeps the service reported as failing writes.
pub const WRITE_FAILURE_WINDOW: Duration = Duration::from_secs(30);

/// The outcome of the latest write.
#[derive(Debug, Default)]
pub struct WriteHealth {
    last_failure: Mutex<Option<Instant>>,
}

impl WriteHealth {
    /// A write failed on transient database trouble.
    pub fn failed(&self) {
        *self.lock() = Some(Instant::now());
    }

    /// A write reached the database and got an answer.
    pub fn succeeded(&self) {
        *self.lock() = None;
    }

    /// How long ago the latest write failed, when it did so within the window and no write
    /// has succeeded since.
    pub fn failing_for(&self) -> Option<Duration> {
        self.lock()
            .map(|at| at.elapsed())
            .filter(|age| *age < WRITE_FAILURE_WINDOW)
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Option<Instant>> {
        self.last_failure.lock().unwrap_or_else(|p| p.into_inner())
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
