//! Connecting to PostgreSQL or SQLite, migrations, and reading database errors.
//!
//! The queries in [`crate::store`] are written once in the SQL both databases accept
//! (`$1` placeholders, `RETURNING`, `ON CONFLICT`) and run on either pool through
//! [`with_pool!`](crate::with_pool).

pub mod failure;
pub mod overlap_guard;
pub mod replica;
pub mod warm;

pub use self::failure::{WriteFailure, classify};

use std::collections::BTreeSet;
use std::str::FromStr;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use sqlx::migrate::Migrator;
use sqlx::postgres::{PgConnectOptions, PgPoolOptions};
use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions, SqliteSynchronous};
use sqlx::{PgPool, SqlitePool};

use crate::config::{Config, DatabaseUrl};

/// Migrations for PostgreSQL, embedded at compile time.
pub static POSTGRES_MIGRATOR: Migrator = sqlx::migrate!("migrations/postgres");
/// Migrations for SQLite, embedded at compile time.
pub static SQLITE_MIGRATOR: Migrator = sqlx::migrate!("migrations/sqlite");

/// How long a request waits for a pooled connection before answering 503.
const ACQUIRE_TIMEOUT: Duration = Duration::from_secs(5);

/// A connection pool to one of the two supported databases.
#[derive(Clone, Debug)]
pub enum Db {
    /// PostgreSQL: production, several instances.
    Postgres(Pg),
    /// SQLite: the embedded single-node default.
    Sqlite(SqlitePool),
}

/// Runs `$body` with `$pool` bound to the concrete pool, so one SQL text serves both.
#[macro_export]
macro_rules! with_pool {
    ($db:expr, $pool:ident => $body:expr) => {
        match $db {
            $crate::db::Db::Postgres(pg) => {
                let $pool = pg.pool();
                $body
            }
            $crate::db::Db::Sqlite($pool) => $body,
        }
    };
}

/// A PostgreSQL pool and the warm connections bookings hand to each other
/// ([`warm`]).
#[derive(Clone, Debug)]
pub struct Pg {
    pool: PgPool,
    warm: Arc<warm::Warm>,
}

impl Pg {
    /// Wraps `pool`; bookings may keep up to [`warm::budget`] of its connections warm.
    pub fn new(pool: PgPool) -> Self {
        let budget = warm::budget(pool.options().get_max_connections());
        let warm = warm::Warm::new(pool.clone(), budget, warm::ROTATE_AFTER);
        Self { pool, warm }
    }

    /// The pool, for every statement but a booking's.
    pub fn pool(&self) -> &PgPool {
        &self.pool
    }

    /// The warm connections, for bookings.
    pub fn warm(&self) -> &Arc<warm::Warm> {
        &self.warm
    }
}

/// A copy of `migrator` that accepts migrations applied by a newer release.
fn tolerant(migrator: &Migrator) -> Migrator {
    let mut copy = Migrator {
        migrations: migrator.migrations.clone(),
        ..Migrator::DEFAULT
    };
    copy.set_ignore_missing(true);
    copy
}

impl Db {
    /// Opens a pool with explicit sizes and timeouts. SQLite files are created if missing
    /// and run in WAL mode with a busy timeout and foreign keys on. PostgreSQL sessions get
    /// a lock timeout, a statement timeout and an idle-in-transaction timeout, so no
    /// session can hold locks for long whatever happens to the request that opened it.
    pub async fn connect(config: &Config) -> anyhow::Result<Self> {
        let redacted = config.database_url.redacted();
        match &config.database_url {
            DatabaseUrl::Postgres(url) => {
                let millis = |d: Duration| format!("{}ms", d.as_millis());
                let options = PgConnectOptions::from_str(url.expose())
                    .context("DATABASE_URL is not a valid PostgreSQL URL")?
                    .options([
                        ("lock_timeout", millis(config.database_lock_timeout)),
                        (
                            "statement_timeout",
                            millis(config.database_statement_timeout),
                        ),
                        (
                            "idle_in_transaction_session_timeout",
                            millis(config.database_idle_in_transaction_timeout),
                        ),
                    ]);
                let pool = PgPoolOptions::new()
                    .max_connections(config.database_max_connections.unwrap_or(10))
                    .min_connections(0)
                    // A ping on every acquire would double the round trips of a one-statement
                    // booking; only a connection idle long enough to have been dropped by the
                    // server or a proxy is checked before use.
                    .test_before_acquire(false)
                    .before_acquire(|conn, meta| {
                        Box::pin(async move {
                            if meta.idle_for >= warm::PING_IF_IDLE_FOR {
                                sqlx::Connection::ping(conn).await?;
                            }
                            Ok(true)
                        })
                    })
                    .after_release(|conn, _meta| Box::pin(released_outside_transaction(conn)))
                    .acquire_timeout(ACQUIRE_TIMEOUT)
                    .connect_with(options)
                    .await
                    .with_context(|| format!("cannot connect to PostgreSQL at {redacted}"))?;
                Ok(Self::Postgres(Pg::new(pool)))
            }
            DatabaseUrl::Sqlite(url) => {
                let options = SqliteConnectOptions::from_str(url.expose())
                    .context("DATABASE_URL is not a valid SQLite URL")?
                    .create_if_missing(true)
                    .journal_mode(SqliteJournalMode::Wal)
                    .synchronous(SqliteSynchronous::Normal)
                    .busy_timeout(config.database_lock_timeout)
                    .foreign_keys(true);
                let pool = SqlitePoolOptions::new()
                    .max_connections(config.database_max_connections.unwrap_or(5))
                    .acquire_timeout(ACQUIRE_TIMEOUT)
                    .connect_with(options)
                    .await
                    .with_context(|| format!("cannot open SQLite database {redacted}"))?;
                Ok(Self::Sqlite(pool))
            }
        }
    }

    /// `"postgres"` or `"sqlite"`, for logs.
    pub fn backend_name(&self) -> &'static str {
        match self {
            Self::Postgres(_) => "postgres",
            Self::Sqlite(_) => "sqlite",
        }
    }

    fn migrator(&self) -> &'static Migrator {
        match self {
            Self::Postgres(_) => &POSTGRES_MIGRATOR,
            Self::Sqlite(_) => &SQLITE_MIGRATOR,
        }
    }

    /// Applies every pending migration. Migrations newer than this binary are left alone, so
    /// that a rollback (`fly deploy --image <previous>`, whose release command runs
    /// `cabanas migrate`) works after a release that added one; migrations only ever add.
    pub async fn migrate(&self) -> anyhow::Result<()> {
        match self {
            Self::Postgres(pg) => tolerant(&POSTGRES_MIGRATOR).run(pg.pool()).await,
            Self::Sqlite(pool) => tolerant(&SQLITE_MIGRATOR).run(pool).await,
        }
        .context("running database migrations failed")
    }

    /// Versions the binary knows that the database has not successfully applied.
    pub async fn pending_migrations(&self) -> Result<Vec<i64>, sqlx::Error> {
        let table_exists: bool = match self {
            Self::Postgres(pg) => {
                sqlx::query_scalar("SELECT to_regclass('_sqlx_migrations') IS NOT NULL")
                    .fetch_one(pg.pool())
                    .await?
            }
            Self::Sqlite(pool) => {
                sqlx::query_scalar(
                    "SELECT EXISTS (SELECT 1 FROM sqlite_master \
                     WHERE type = 'table' AND name = '_sqlx_migrations')",
                )
                .fetch_one(pool)
                .await?
            }
        };
        let applied: BTreeSet<i64> = if table_exists {
            let sql = "SELECT version FROM _sqlx_migrations WHERE success";
            with_pool!(self, pool => sqlx::query_scalar::<_, i64>(sql).fetch_all(pool).await?)
                .into_iter()
                .collect()
        } else {
            BTreeSet::new()
        };
        Ok(self
            .migrator()
            .iter()
            .filter(|m| m.migration_type.is_up_migration() && !applied.contains(&m.version))
            .map(|m| m.version)
            .collect())
    }

    /// A round trip to the database.
    pub async fn ping(&self) -> Result<(), sqlx::Error> {
        with_pool!(self, pool => sqlx::query("SELECT 1").execute(pool).await.map(|_| ()))?;
        Ok(())
    }

    /// Closes the pool; later queries fail with `PoolClosed`.
    pub async fn close(&self) {
        if let Self::Postgres(pg) = self {
            pg.warm.drain();
        }
        with_pool!(self, pool => pool.close().await)
    }
}

/// Runs a unit of database work to completion in its own task, independently of the
/// caller: a request future dropped mid-way (client gone, request timeout) must not leave
/// a transaction open, or a statement half-sent, on a connection the pool hands out next.
pub async fn detached<T, F>(work: F) -> Result<T, sqlx::Error>
where
    T: Send + 'static,
    F: Future<Output = Result<T, sqlx::Error>> + Send + 'static,
{
    match tokio::spawn(work).await {
        Ok(result) => result,
        Err(err) if err.is_panic() => std::panic::resume_unwind(err.into_panic()),
        // Only when the runtime shuts down.
        Err(_) => Err(sqlx::Error::PoolClosed),
    }
}

/// Opens a transaction on `pool` and hands it to `work`, inside [`detached`]: the only way
/// the service opens a transaction (`clippy.toml` disallows `begin` everywhere else).
///
/// Why it must be detached: sqlx counts a transaction as open only once `BEGIN` has
/// answered. A request future dropped while `BEGIN` is on the wire (client gone, the
/// service's request timeout) leaves the server inside a transaction that sqlx believes
/// closed, and the connection goes back to the pool. Every later statement on it then runs
/// inside that transaction and is rolled back when `idle_in_transaction_session_timeout`
/// ends the session: writes answered 201 and 200 are lost. Run to completion in its own
/// task, a unit of work is never cut off in the middle.
///
/// `work` owns the transaction: it commits (`tx.commit()`) what it wants kept; dropping the
/// transaction without a commit rolls it back.
pub async fn transaction<DB, T, F, Fut>(pool: &sqlx::Pool<DB>, work: F) -> Result<T, sqlx::Error>
where
    DB: sqlx::Database,
    T: Send + 'static,
    F: FnOnce(sqlx::Transaction<'static, DB>) -> Fut + Send + 'static,
    Fut: Future<Output = Result<T, sqlx::Error>> + Send + 'static,
{
    let pool = pool.clone();
    detached(async move {
        #[allow(clippy::disallowed_methods)] // the one place a transaction begins
        let tx = pool.begin().await?;
        work(tx).await
    })
    .await
}

/// The release check of every pooled PostgreSQL connection: `false` (the pool closes it,
/// and the server rolls back whatever it held) when the session is inside a transaction.
///
/// sqlx counts a transaction from `BEGIN`'s answer on, so a connection whose `BEGIN` was
/// cut off comes back looking idle while the server holds a transaction open; handed out
/// again, every write on it would be lost with the session. [`transaction`] makes that cut
/// impossible in this crate; this check keeps such a connection from ever being reused
/// whatever the cause. One simple-protocol statement: in an implicit transaction `now()`
/// (the transaction's start) is the statement's own receipt time, inside an explicit one
/// it is the earlier `BEGIN`'s.
async fn released_outside_transaction(conn: &mut sqlx::PgConnection) -> Result<bool, sqlx::Error> {
    use sqlx::Row;
    let row = sqlx::raw_sql("SELECT now() = statement_timestamp()")
        .fetch_one(&mut *conn)
        .await?;
    let outside: bool = row.try_get(0)?;
    if !outside {
        metrics::counter!("db_connections_discarded_total", "reason" => "in_transaction")
            .increment(1);
        tracing::warn!("a pooled connection came back inside a transaction; closing it");
    }
    Ok(outside)
}
