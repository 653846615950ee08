//! PostgreSQL connections handed from one booking to the next without a round trip.
//!
//! sqlx's pool checks every connection it gets back with a ping (a Sync message and a wait
//! for ReadyForQuery) before another task may use it. For a booking, which is one statement
//! and one commit, that is a second round trip: it costs the service and PostgreSQL about as
//! much CPU as a tenth of the booking itself. A statement that ran to completion leaves its
//! connection ready for the next one, so a booking gives its connection back here instead,
//! and the next booking takes it from here without asking the pool.
//!
//! What keeps that safe:
//! - Only a statement that completed (rows read up to ReadyForQuery) or that PostgreSQL
//!   refused at statement level (an overlap, a duplicate code, a deadlock) keeps its
//!   connection warm. Anything else (I/O, a timeout, a shutdown, a cancelled task) goes back
//!   through sqlx's checked release, which discards a broken connection.
//! - Bookings hold at most [`budget`] connections at once, warm or in use; the rest of the
//!   pool stays in sqlx's fair queue, so readiness, reads and webhooks are never starved by a
//!   stream of bookings.
//! - A warm connection unused for [`PING_IF_IDLE_FOR`] is pinged
//!   before reuse (as the pool does) and handed back to the pool by a sweep, so an idle
//!   service keeps no connections out of the pool's reach.
//! - No warm connection is inside a transaction: one enters from the pool, whose release
//!   check ([`released_outside_transaction`](super::released_outside_transaction)) closes any
//!   connection that came back inside one, and stays only after a booking, a single
//!   statement in its own implicit transaction, ran to completion on it. Transactions are
//!   opened only by [`transaction`](super::transaction), which is never cut off mid-way.
//! - A connection goes back through the pool at least every [`ROTATE_AFTER`] however busy
//!   it is, so the pool's own checks (its ping, the connection's maximum lifetime) still
//!   run on it.

use std::sync::{Arc, Mutex, Weak};
use std::time::{Duration, Instant};

use sqlx::pool::PoolConnection;
use sqlx::{Connection, PgConnection, PgPool, Postgres};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

use super::failure::{WriteFailure, classify};

/// A pooled PostgreSQL connection idle at least this long is pinged before it is handed out.
pub const PING_IF_IDLE_FOR: Duration = Duration::from_secs(1);

/// The longest a connection stays warm, from the booking that took it from the pool.
pub const ROTATE_AFTER: Duration = Duration::from_secs(60);

/// How many of a pool's `max` connections bookings may hold at once: all but an eighth
/// (at least one), which stays with the other queries.
pub fn budget(max: u32) -> usize {
    let reserve = max.div_ceil(8).max(1);
    max.saturating_sub(reserve) as usize
}

/// A warm connection and the share of the budget it holds.
#[derive(Debug)]
struct Parked {
    conn: PoolConnection<Postgres>,
    permit: OwnedSemaphorePermit,
    /// When it went back here.
    since: Instant,
    /// When a booking took it from the pool.
    warm_since: Instant,
}

/// The warm connections of one pool.
#[derive(Debug)]
pub struct Warm {
    pool: PgPool,
    budget: Arc<Semaphore>,
    rotate_after: Duration,
    parked: Mutex<Vec<Parked>>,
}

/// A connection taken for one statement: give it back with [`Lease::finish`].
pub struct Lease {
    conn: PoolConnection<Postgres>,
    permit: Option<OwnedSemaphorePermit>,
    warm_since: Instant,
    home: Arc<Warm>,
}

impl Warm {
    /// Warm connections over `pool`, with at most `budget` of its connections held by
    /// bookings, each warm for at most `rotate_after` ([`ROTATE_AFTER`] in the service).
    /// Starts the sweep that hands idle ones back to the pool.
    pub fn new(pool: PgPool, budget: usize, rotate_after: Duration) -> Arc<Self> {
        let warm = Arc::new(Self {
            pool,
            budget: Arc::new(Semaphore::new(budget)),
            rotate_after,
            parked: Mutex::new(Vec::new()),
        });
        tokio::spawn(sweep(Arc::downgrade(&warm), PING_IF_IDLE_FOR));
        warm
    }

    /// A connection for one statement: the most recently used warm one (pinged first when
    /// it sat idle), else one from the pool. Beyond the budget it is an ordinary pooled
    /// connection, released through sqlx as usual.
    pub async fn lease(self: &Arc<Self>) -> Result<Lease, sqlx::Error> {
        let parked = self.lock().pop();
        let (conn, permit, warm_since) = match parked {
            Some(mut parked) => {
                if parked.since.elapsed() >= PING_IF_IDLE_FOR {
                    if let Err(err) = parked.conn.ping().await {
                        tracing::debug!(error = %err, "a warm connection failed its ping");
                        drop(parked.conn);
                        (self.pool.acquire().await?, parked.permit, Instant::now())
                    } else {
                        (parked.conn, parked.permit, parked.warm_since)
                    }
                } else {
                    (parked.conn, parked.permit, parked.warm_since)
                }
            }
            None => {
                let permit = Arc::clone(&self.budget).try_acquire_owned().ok();
                let conn = self.pool.acquire().await?;
                return Ok(Lease {
                    conn,
                    permit,
                    warm_since: Instant::now(),
                    home: Arc::clone(self),
                });
            }
        };
        Ok(Lease {
            conn,
            permit: Some(permit),
            warm_since,
            home: Arc::clone(self),
        })
    }

    /// How many connections are warm right now.
    pub fn parked(&self) -> usize {
        self.lock().len()
    }

    /// Hands every warm connection back to the pool (before the pool closes: a closing
    /// pool waits for every connection it lent).
    pub fn drain(&self) {
        let parked = std::mem::take(&mut *self.lock());
        drop(parked);
    }

    /// Hands back the warm connections idle for at least `idle`.
    fn release_idle(&self, idle: Duration) {
        let stale: Vec<Parked> = {
            let mut parked = self.lock();
            // Most recently used last: the stale ones are at the front.
            let fresh_from = parked
                .iter()
                .position(|parked| parked.since.elapsed() < idle)
                .unwrap_or(parked.len());
            parked.drain(..fresh_from).collect()
        };
        drop(stale);
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Vec<Parked>> {
        // A panic while holding the lock cannot leave the list half-changed.
        self.parked.lock().unwrap_or_else(|e| e.into_inner())
    }
}

impl Lease {
    /// The connection, for running the statement.
    pub fn conn(&mut self) -> &mut PgConnection {
        &mut self.conn
    }

    /// Gives the connection back after its statement returned `outcome`: warm when the
    /// statement completed or was refused at statement level, else through sqlx's check.
    pub fn finish<T>(self, outcome: &Result<T, sqlx::Error>) {
        let Lease {
            conn,
            permit,
            warm_since,
            home,
        } = self;
        let Some(permit) = permit else { return };
        let reusable = match outcome {
            Ok(_) => true,
            Err(err) => matches!(
                classify(err),
                WriteFailure::DateOverlap | WriteFailure::UniqueViolation | WriteFailure::Transient
            ),
        };
        let rotate = warm_since.elapsed() >= home.rotate_after;
        if reusable && !rotate && !conn.is_in_transaction() && !home.pool.is_closed() {
            home.lock().push(Parked {
                conn,
                permit,
                since: Instant::now(),
                warm_since,
            });
        }
    }
}

/// Every `idle`, hands back the connections that stayed warm that long; ends with the pool.
async fn sweep(warm: Weak<Warm>, idle: Duration) {
    let mut tick = tokio::time::interval(idle);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tick.tick().await;
        let Some(warm) = warm.upgrade() else { return };
        if warm.pool.is_closed() {
            warm.drain();
            return;
        }
        warm.release_idle(idle);
    }
}

#[cfg(test)]
mod tests {
    use super::budget;

    #[test]
    fn bookings_leave_an_eighth_of_the_pool_and_at_least_one_connection() {
        assert_eq!(budget(32), 28);
        assert_eq!(budget(10), 8);
        assert_eq!(budget(4), 3);
        assert_eq!(budget(2), 1);
        assert_eq!(budget(1), 0);
        assert_eq!(budget(0), 0);
    }
}
