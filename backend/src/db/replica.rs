//! The read replica of a machine's region, and how stale it may be before reads leave it.
//!
//! A machine outside the primary region reaches the primary across regions (tens of
//! milliseconds a round trip); its region's streaming replica answers locally. A replica can
//! fall behind (a slow link, replay paused by `pg_wal_replay_pause()`, a broken stream), and a
//! read served from it then shows a booking that is gone or misses one just made. So the
//! replica is used only while its lag is within `DATABASE_READ_MAX_LAG_MS`; past that, or
//! when the lag cannot be read, reads go to the primary.
//!
//! The lag is measured on the replica, without asking the primary:
//! - not in recovery (the URL names a primary): no lag;
//! - streaming (a WAL receiver runs), not paused, and everything received is replayed: no
//!   lag beyond the WAL in flight;
//! - otherwise `now() - pg_last_xact_replay_timestamp()`: the age of the newest replayed
//!   transaction, an upper bound of the staleness (on a primary that has been idle it
//!   overstates it, which only sends reads to the primary).
//!
//! Asking on every read would double the replica's work; the verdict is reused for a
//! quarter of the bound, so a read is at most 1.25 × the bound stale.

use std::sync::Mutex;
use std::time::{Duration, Instant};

use super::Db;

/// What tells the lag: see the module documentation for the three cases.
const LAG_SQL: &str = "SELECT CASE \
    WHEN NOT pg_is_in_recovery() THEN 0.0::float8 \
    WHEN NOT pg_is_wal_replay_paused() \
         AND EXISTS (SELECT 1 FROM pg_stat_wal_receiver) \
         AND pg_last_wal_receive_lsn() = pg_last_wal_replay_lsn() THEN 0.0::float8 \
    ELSE EXTRACT(EPOCH FROM (now() - pg_last_xact_replay_timestamp()))::float8 END";

/// A replica pool and its last freshness verdict.
#[derive(Debug)]
pub struct ReadReplica {
    db: Db,
    max_lag: Duration,
    verdict: Mutex<Option<(Instant, bool)>>,
}

impl ReadReplica {
    /// Wraps a pool on the replica; reads use it while its lag is at most `max_lag`.
    pub fn new(db: Db, max_lag: Duration) -> Self {
        Self {
            db,
            max_lag,
            verdict: Mutex::new(None),
        }
    }

    /// The staleness bound.
    pub fn max_lag(&self) -> Duration {
        self.max_lag
    }

    /// The replica's pool.
    pub fn db(&self) -> &Db {
        &self.db
    }

    /// The replica's lag now; `None` when it has replayed nothing yet.
    pub async fn lag(&self) -> Result<Option<Duration>, sqlx::Error> {
        let Db::Postgres(pg) = &self.db else {
            return Ok(Some(Duration::ZERO));
        };
        let seconds: Option<f64> = sqlx::query_scalar(LAG_SQL).fetch_one(pg.pool()).await?;
        Ok(seconds.map(|s| Duration::from_secs_f64(s.max(0.0))))
    }

    /// Whether reads may use the replica now: its lag is within the bound. The verdict is
    /// reused for a quarter of the bound; an error reading the lag counts as stale.
    pub async fn fresh(&self) -> bool {
        let reuse_for = self.max_lag / 4;
        if let Ok(verdict) = self.verdict.lock()
            && let Some((at, fresh)) = *verdict
            && at.elapsed() < reuse_for
        {
            return fresh;
        }
        let fresh = match self.lag().await {
            Ok(Some(lag)) => lag <= self.max_lag,
            Ok(None) => false,
            Err(error) => {
                tracing::warn!(error = %error, "cannot read the replica's lag; reading from the primary");
                false
            }
        };
        if let Ok(mut verdict) = self.verdict.lock() {
            *verdict = Some((Instant::now(), fresh));
        }
        fresh
    }
}
