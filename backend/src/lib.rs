//! sist-cabanas reservation service: pre-reservations of cabins, confirmed by an admin,
//! with the no-double-booking guarantee enforced by the database (PostgreSQL or SQLite).
//!
//! Start the app from a configuration with [`build_state`] and [`http::app`]; [`serve`]
//! does both and listens until SIGTERM or Ctrl-C.

pub mod auth;
pub mod calendar;
pub mod config;
pub mod db;
pub mod error;
pub mod guest_replies;
pub mod guest_request;
pub mod health_probe;
pub mod http;
pub mod integrations;
pub mod mercadopago;
pub mod outbox;
pub mod pricing;
pub mod store;
pub mod telemetry;
pub mod write_health;

use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, bail};
use tokio::net::TcpListener;
use tokio::task::JoinHandle;

use crate::health_probe::HealthProbe;

pub use crate::auth::AdminAuth;
pub use crate::config::Config;
pub use crate::db::Db;
pub use crate::http::app;
pub use crate::http::state::{AppState, Services};
pub use crate::store::reservations::{CodeGenerator, expire_stale, random_code};

// Built here, at the top, where every service the state holds is in reach.
impl AppState {
    /// State over an already-migrated database.
    pub fn new(db: Db, config: &Config) -> Self {
        let state = Self::from(Services {
            db,
            auth: Arc::new(AdminAuth::new(
                config.jwt_secret.as_ref(),
                config.admin_emails.clone(),
            )),
            pre_reservation_ttl: chrono::Duration::minutes(i64::from(
                config.pre_reservation_ttl_minutes,
            )),
            codes: Arc::new(random_code),
            metrics: telemetry::prometheus(),
            request_timeout: config.request_timeout,
            health: Arc::new(HealthProbe::new(config.health_cache)),
            integrations: Arc::new(integrations::Integrations::new(&config.integrations)),
            identity: Arc::new(http::version::ServiceIdentity::from_env()),
            horizon: config.horizon,
            accommodations: Arc::new(store::accommodations::AccommodationCache::new(
                config.accommodations_cache,
            )),
            writes: Arc::default(),
            rate_limiter: Arc::new(http::edge::RateLimiter::new(
                config.edge.rate_limit_per_minute,
            )),
            edge: config.edge.clone(),
            calendar: Arc::new(calendar::CalendarSync::new(&config.calendar)),
            regions: config.regions.clone(),
            replica: None,
        });
        http::register_metrics();
        calendar::register_metrics();
        state
    }
}

/// Connects and prepares the database for serving: SQLite is migrated in place;
/// PostgreSQL must already be migrated (by `cabanas migrate`, the release command),
/// so that several instances never race to migrate.
pub async fn build_state(config: &Config) -> anyhow::Result<AppState> {
    let db = Db::connect(config).await?;
    match db {
        Db::Sqlite(_) => db.migrate().await?,
        Db::Postgres(_) => {
            let pending = db
                .pending_migrations()
                .await
                .context("cannot read the migration state of the database")?;
            if !pending.is_empty() {
                bail!(
                    "the database has {} pending migration(s) (versions {:?}): run `cabanas migrate` first",
                    pending.len(),
                    pending
                );
            }
        }
    }
    // Serving without the database's overlap guarantee would let double bookings through.
    let missing = db
        .missing_overlap_guard()
        .await
        .context("cannot read the overlap guarantee of the database")?;
    if !missing.is_empty() {
        bail!(
            "{}",
            db::overlap_guard::overlap_guard_problem(&db, &missing)
        );
    }
    if !config.admin_emails.is_empty() && config.jwt_secret.is_none() {
        tracing::warn!("ADMIN_ALLOWED_EMAILS is set but JWT_SECRET is not");
    }
    if config.jwt_secret.is_none() {
        tracing::warn!("JWT_SECRET is not set: admin routes (confirm, cancel) answer 401");
    } else if config.admin_emails.is_empty() {
        tracing::warn!("ADMIN_ALLOWED_EMAILS is empty: admin routes answer 403 to every token");
    }
    let mut state = AppState::new(db, config);
    if let Some(read) = &config.read_replica {
        let mut replica_config = config.clone();
        replica_config.database_url = read.url.clone();
        let replica = Db::connect(&replica_config).await.with_context(|| {
            format!(
                "cannot connect to the read replica DATABASE_READ_URL ({}): fix it, or unset it \
                 to read from DATABASE_URL",
                read.url.redacted()
            )
        })?;
        tracing::info!(
            max_lag_ms = read.max_lag.as_millis() as u64,
            "reads use the region's replica while it is fresh"
        );
        state.replica = Some(Arc::new(db::replica::ReadReplica::new(
            replica,
            read.max_lag,
        )));
    }
    state.integrations.log_missing();
    Ok(state)
}

/// Runs [`expire_stale`] and forgets idempotency keys past their retention every `interval`
/// until the task is aborted. Safe in every instance.
pub fn spawn_expiry_sweep(db: Db, interval: Duration) -> JoinHandle<()> {
    tokio::spawn(async move {
        let mut ticker = tokio::time::interval(interval);
        ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            ticker.tick().await;
            if let Err(err) = expire_stale(&db).await {
                tracing::warn!(error = %err, "expiry sweep failed; will retry");
            }
            match crate::store::idempotency::forget_old(&db, chrono::Utc::now()).await {
                Ok(0) => {}
                Ok(count) => tracing::info!(count, "forgot idempotency keys past retention"),
                Err(err) => tracing::warn!(error = %err, "idempotency cleanup failed; will retry"),
            }
        }
    })
}

/// `cabanas serve`: listen on `HOST:PORT` until SIGTERM or Ctrl-C.
pub async fn serve(config: Config) -> anyhow::Result<()> {
    log_database(&config);
    let state = build_state(&config).await?;
    let db = state.db.clone();
    let sweep = spawn_expiry_sweep(db.clone(), config.expiry_sweep_interval);
    let outbox = outbox::OutboxWorker::spawn_with(
        db.clone(),
        outbox::Senders::from_config(&config.integrations),
        config.integrations.outbox,
    );
    let calendar_sync = if config.calendar.import_enabled {
        Some(calendar::spawn_sync_worker(
            db.clone(),
            state.calendar.clone(),
            config.calendar.sync_interval,
        ))
    } else {
        tracing::warn!("CALENDAR_IMPORT is off: other channels' calendars are not imported");
        None
    };
    let addr = std::net::SocketAddr::new(config.host, config.port);
    let listener = TcpListener::bind(addr)
        .await
        .with_context(|| format!("cannot listen on {addr} (check HOST and PORT)"))?;
    tracing::info!(%addr, backend = db.backend_name(), "listening");
    let drain = config.request_timeout + Duration::from_secs(1);
    http::server::serve(
        listener,
        app(state),
        config.http_limits,
        http::shutdown_signal(),
        drain,
    )
    .await;
    sweep.abort();
    // The send in flight finishes (it is bounded by the send timeout), so a message Meta
    // accepted is marked sent before the pool closes.
    outbox.stop().await;
    if let Some(calendar_sync) = calendar_sync {
        calendar_sync.abort();
    }
    db.close().await;
    tracing::info!("stopped");
    Ok(())
}

/// `cabanas migrate`: apply pending migrations and exit (the Fly release command).
pub async fn migrate(config: Config) -> anyhow::Result<()> {
    log_database(&config);
    let db = Db::connect(&config).await?;
    db.migrate().await?;
    tracing::info!("migrations applied");
    db.close().await;
    Ok(())
}

/// `cabanas seed-demo`: insert the demo cabins; running it twice changes nothing.
pub async fn seed_demo(config: Config) -> anyhow::Result<()> {
    log_database(&config);
    let state = build_state(&config).await?;
    let created = store::accommodations::seed_demo(&state.db).await?;
    tracing::info!(created, "demo accommodations seeded");
    state.db.close().await;
    Ok(())
}

fn log_database(config: &Config) {
    if config.database_url_defaulted {
        tracing::info!(
            database = %config.database_url.redacted(),
            "DATABASE_URL is unset: using the embedded SQLite file in the working directory"
        );
    } else {
        tracing::info!(database = %config.database_url.redacted(), "database");
    }
}
