//! The database probe behind `healthz`, shared by concurrent requests.
//!
//! Health endpoints are polled by load balancers, monitors and benchmarks; one database round
//! trip per request would let them load the database in proportion to their rate. Concurrent
//! requests share one in-flight probe, and a result younger than [`HealthProbe::max_age`] is
//! reused, so the database sees at most a few probes a second however often `healthz` is hit,
//! and a failure still shows within that age.

use std::sync::Mutex;
use std::time::{Duration, Instant};

use crate::db::Db;

/// A database answering slower than this makes the service `degraded`.
pub const DEGRADED_AFTER: Duration = Duration::from_secs(1);
/// A database not answering within this makes the service `unhealthy`.
pub const UNHEALTHY_AFTER: Duration = Duration::from_secs(3);

/// What one probe of the database found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProbeResult {
    /// `healthy`, `degraded` or `unhealthy`.
    pub status: &'static str,
    /// How long the database took to answer (or to time out).
    pub latency: Duration,
    /// Why it is unhealthy, in words safe to show.
    pub error: Option<&'static str>,
    /// When the probe finished.
    pub at: Instant,
}

/// Coalesces database probes: one in flight at a time, results reused while fresh.
#[derive(Debug)]
pub struct HealthProbe {
    max_age: Duration,
    last: Mutex<Option<ProbeResult>>,
    refresh: tokio::sync::Mutex<()>,
}

impl HealthProbe {
    /// A probe whose results are reused for `max_age` (zero: every request probes).
    pub fn new(max_age: Duration) -> Self {
        Self {
            max_age,
            last: Mutex::new(None),
            refresh: tokio::sync::Mutex::new(()),
        }
    }

    /// How long a result is reused.
    pub fn max_age(&self) -> Duration {
        self.max_age
    }

    /// The newest result if it is fresh, else a new probe (shared with concurrent callers).
    pub async fn check(&self, db: &Db) -> ProbeResult {
        if let Some(fresh) = self.fresh() {
            return fresh;
        }
        let _single_flight = self.refresh.lock().await;
        // Whoever held the lock before us may have just refreshed it.
        if let Some(fresh) = self.fresh() {
            return fresh;
        }
        let result = probe(db).await;
        *self.last.lock().unwrap_or_else(|p| p.into_inner()) = Some(result.clone());
        result
    }

    fn fresh(&self) -> Option<ProbeResult> {
        let last = self.last.lock().unwrap_or_else(|p| p.into_inner());
        last.as_ref()
            .filter(|result| result.at.elapsed() < self.max_age)
            .cloned()
    }
}

async fn probe(db: &Db) -> ProbeResult {
    let started = Instant::now();
    let outcome = tokio::time::timeout(UNHEALTHY_AFTER, db.ping()).await;
    let latency = started.elapsed();
    let (status, error) = match outcome {
        Ok(Ok(())) if latency > DEGRADED_AFTER => ("degraded", None),
        Ok(Ok(())) => ("healthy", None),
        Ok(Err(err)) => {
            tracing::warn!(error = %err, "health check: database error");
            ("unhealthy", Some("the database returned an error"))
        }
        Err(_) => ("unhealthy", Some("the database did not answer in time")),
    };
    ProbeResult {
        status,
        latency,
        error,
        at: Instant::now(),
    }
}
