//! The database probes behind `healthz` and `readyz`, shared by concurrent requests.
//!
//! Health endpoints are polled by load balancers, monitors and benchmarks; one database round
//! trip per request would let them load the database in proportion to their rate. Concurrent
//! requests share one in-flight probe, and a result younger than the probe's maximum age
//! (`HEALTH_CACHE_MS`) is reused, so the database sees at most a few probes a second however
//! often `healthz` and `readyz` are hit, and a failure still shows within that age.

use std::future::Future;
use std::sync::RwLock;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use crate::db::Db;
use crate::db::overlap_guard::overlap_guard_problem;

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

/// What one readiness check found: ready, or why not (in words safe to show).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReadinessResult {
    /// `None` when the database answers, every migration is applied and the overlap
    /// guarantee is in place.
    pub problem: Option<String>,
    /// When the check finished.
    pub at: Instant,
}

/// One value shared while fresh: one refresh in flight at a time, counted.
#[derive(Debug)]
struct Shared<T> {
    max_age: Duration,
    last: RwLock<Option<(Instant, T)>>,
    refresh: tokio::sync::Mutex<()>,
    refreshes: AtomicU64,
}

impl<T: Clone> Shared<T> {
    fn new(max_age: Duration) -> Self {
        Self {
            max_age,
            last: RwLock::new(None),
            refresh: tokio::sync::Mutex::new(()),
            refreshes: AtomicU64::new(0),
        }
    }

    /// The newest value if fresh, else a new one from `refresh` (shared with concurrent
    /// callers).
    async fn get<F: Future<Output = T>>(&self, refresh: impl FnOnce() -> F) -> T {
        if let Some(fresh) = self.fresh() {
            return fresh;
        }
        let _single_flight = self.refresh.lock().await;
        // Whoever held the lock before us may have just refreshed it.
        if let Some(fresh) = self.fresh() {
            return fresh;
        }
        self.refreshes.fetch_add(1, Ordering::Relaxed);
        let value = refresh().await;
        *self.last.write().unwrap_or_else(|p| p.into_inner()) =
            Some((Instant::now(), value.clone()));
        value
    }

    fn fresh(&self) -> Option<T> {
        let last = self.last.read().unwrap_or_else(|p| p.into_inner());
        last.as_ref()
            .filter(|(at, _)| at.elapsed() < self.max_age)
            .map(|(_, value)| value.clone())
    }
}

/// Coalesces database probes: one in flight at a time, results reused while fresh.
#[derive(Debug)]
pub struct HealthProbe {
    health: Shared<ProbeResult>,
    readiness: Shared<ReadinessResult>,
}

impl HealthProbe {
    /// A probe whose results are reused for `max_age` (zero: every request probes).
    pub fn new(max_age: Duration) -> Self {
        Self {
            health: Shared::new(max_age),
            readiness: Shared::new(max_age),
        }
    }

    /// How long a result is reused.
    pub fn max_age(&self) -> Duration {
        self.health.max_age
    }

    /// The newest `healthz` result if it is fresh, else a new probe (shared with concurrent
    /// callers).
    pub async fn check(&self, db: &Db) -> ProbeResult {
        self.health.get(|| probe(db)).await
    }

    /// The newest `readyz` result (database answers, migrations applied) if it is fresh,
    /// else a new check (shared with concurrent callers).
    pub async fn readiness(&self, db: &Db) -> ReadinessResult {
        self.readiness.get(|| check_readiness(db)).await
    }

    /// How many times `healthz` and `readyz` went to the database, in that order.
    pub fn database_checks(&self) -> (u64, u64) {
        (
            self.health.refreshes.load(Ordering::Relaxed),
            self.readiness.refreshes.load(Ordering::Relaxed),
        )
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

/// What makes the database not ready, if anything: it does not answer, a migration is
/// pending, or the overlap guarantee is gone (`crate::db::overlap_guard`).
async fn check_readiness(db: &Db) -> ReadinessResult {
    let checks = async {
        let pending = db.pending_migrations().await?;
        if !pending.is_empty() {
            return Ok(Some(format!(
                "{} database migration(s) pending: run `cabanas migrate`",
                pending.len()
            )));
        }
        let missing = db.missing_overlap_guard().await?;
        Ok::<_, sqlx::Error>((!missing.is_empty()).then(|| overlap_guard_problem(db, &missing)))
    };
    let problem = match tokio::time::timeout(UNHEALTHY_AFTER, checks).await {
        Err(_) => Some("the database did not answer in time".to_owned()),
        Ok(Err(err)) => {
            tracing::warn!(error = %err, "readiness check: database error");
            Some("the database is not answering".to_owned())
        }
        Ok(Ok(problem)) => problem,
    };
    ReadinessResult {
        problem,
        at: Instant::now(),
    }
}
