//! The `outbox` table: messages to guests, written in the transaction of what caused them
//! and sent later by the worker (`crate::outbox`).
//!
//! The guarantees live in the table. `dedupe_key` is unique, so one cause queues one
//! message however often it is delivered. A worker claims due rows with one statement
//! (PostgreSQL skips rows another worker has locked; SQLite has one writer at a time) and
//! holds them for a lease; every later update names the claim's token, so a worker whose
//! lease ran out can no longer mark a row another worker has taken.

use chrono::{DateTime, Utc};

use crate::db::Db;
use crate::with_pool;

/// A message to queue.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OutboundMessage {
    /// What makes it unique, e.g. `whatsapp-reply:<wamid>`.
    pub dedupe_key: String,
    /// The guest's WhatsApp number.
    pub recipient: String,
    /// The text.
    pub body: String,
}

/// Queues `message` (on the `whatsapp` channel) inside the caller's transaction; nothing
/// happens when its key is already queued. Returns whether it was new.
pub const ENQUEUE: &str = "INSERT INTO outbox (dedupe_key, channel, recipient, body, status, \
     next_attempt_at, created_at) VALUES ($1, 'whatsapp', $2, $3, 'pending', $4, $4) \
     ON CONFLICT (dedupe_key) DO NOTHING";

/// A claimed row, as the worker sends it.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct ClaimedMessage {
    /// Primary key.
    pub id: i64,
    /// `whatsapp` or `email`: which sender takes it.
    pub channel: String,
    /// The guest's number or e-mail address.
    pub recipient: String,
    /// The text.
    pub body: String,
    /// Attempts so far, this one included.
    pub attempts: i32,
}

/// A row as tests and admins read it.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct StoredMessage {
    /// What makes it unique.
    pub dedupe_key: String,
    /// `whatsapp` or `email`.
    pub channel: String,
    /// The recipient.
    pub recipient: String,
    /// The text.
    pub body: String,
    /// `pending`, `sent`, `failed` or `unknown`.
    pub status: String,
    /// Attempts so far.
    pub attempts: i32,
    /// Why the last attempt failed (a label, never a message text or number).
    pub last_error: Option<String>,
    /// The id WhatsApp gave the sent message.
    pub provider_message_id: Option<String>,
}

/// Which channels a worker can send on; it claims rows of those only, so a row whose
/// channel is not configured waits (counted in `pending`) instead of failing.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Channels {
    /// WhatsApp is configured.
    pub whatsapp: bool,
    /// SMTP is configured.
    pub email: bool,
}

/// Claims up to `limit` due rows of `channels` for `lease_until` under `token`, oldest first.
pub async fn claim(
    db: &Db,
    channels: Channels,
    now: DateTime<Utc>,
    lease_until: DateTime<Utc>,
    token: &str,
    limit: i64,
) -> Result<Vec<ClaimedMessage>, sqlx::Error> {
    // The outer condition repeats the inner one: PostgreSQL re-checks it on a row another
    // transaction changed meanwhile, so a row is never claimed twice even without the lock.
    macro_rules! claim_sql {
        ($lock:literal) => {
            concat!(
                "UPDATE outbox SET claimed_until = $2, claim_token = $3, attempts = attempts + 1 \
                 WHERE status = 'pending' AND (claimed_until IS NULL OR claimed_until <= $1) \
                 AND id IN (SELECT id FROM outbox WHERE status = 'pending' \
                 AND next_attempt_at <= $1 AND (claimed_until IS NULL OR claimed_until <= $1) \
                 AND ((channel = 'whatsapp' AND $5) OR (channel = 'email' AND $6)) \
                 ORDER BY id LIMIT $4",
                $lock,
                ") RETURNING id, channel, recipient, body, attempts"
            )
        };
    }
    let sql = match db {
        Db::Postgres(_) => claim_sql!(" FOR UPDATE SKIP LOCKED"),
        Db::Sqlite(_) => claim_sql!(""),
    };
    let mut rows = with_pool!(db, pool => {
        sqlx::query_as::<_, ClaimedMessage>(sql)
            .bind(now)
            .bind(lease_until)
            .bind(token)
            .bind(limit)
            .bind(channels.whatsapp)
            .bind(channels.email)
            .fetch_all(pool)
            .await?
    });
    rows.sort_by_key(|r| r.id);
    Ok(rows)
}

/// Marks a claimed row sent; false when the claim was lost (its lease ran out and another
/// worker took the row).
pub async fn mark_sent(
    db: &Db,
    id: i64,
    token: &str,
    provider_message_id: Option<&str>,
    now: DateTime<Utc>,
) -> Result<bool, sqlx::Error> {
    const SQL: &str = "UPDATE outbox SET status = 'sent', sent_at = $3, provider_message_id = $4, \
                       last_error = NULL, claimed_until = NULL, claim_token = NULL \
                       WHERE id = $1 AND claim_token = $2";
    let updated = with_pool!(db, pool => {
        sqlx::query(SQL).bind(id).bind(token).bind(now).bind(provider_message_id)
            .execute(pool).await?.rows_affected()
    });
    Ok(updated == 1)
}

/// Gives a claimed row back to be tried again at `next_attempt_at`.
pub async fn retry_later(
    db: &Db,
    id: i64,
    token: &str,
    next_attempt_at: DateTime<Utc>,
    error: &str,
) -> Result<bool, sqlx::Error> {
    const SQL: &str = "UPDATE outbox SET next_attempt_at = $3, last_error = $4, \
                       claimed_until = NULL, claim_token = NULL \
                       WHERE id = $1 AND claim_token = $2";
    let updated = with_pool!(db, pool => {
        sqlx::query(SQL).bind(id).bind(token).bind(next_attempt_at).bind(error)
            .execute(pool).await?.rows_affected()
    });
    Ok(updated == 1)
}

/// Stops trying a claimed row: `failed` (refused, or out of attempts) or `unknown` (the
/// send may have gone out; see `crate::outbox`).
pub async fn give_up(
    db: &Db,
    id: i64,
    token: &str,
    status: &'static str,
    error: &str,
) -> Result<bool, sqlx::Error> {
    const SQL: &str = "UPDATE outbox SET status = $3, last_error = $4, \
                       claimed_until = NULL, claim_token = NULL \
                       WHERE id = $1 AND claim_token = $2";
    let updated = with_pool!(db, pool => {
        sqlx::query(SQL).bind(id).bind(token).bind(status).bind(error)
            .execute(pool).await?.rows_affected()
    });
    Ok(updated == 1)
}

/// How many messages wait to be sent.
pub async fn pending(db: &Db) -> Result<i64, sqlx::Error> {
    const SQL: &str = "SELECT COUNT(*) FROM outbox WHERE status = 'pending'";
    with_pool!(db, pool => sqlx::query_scalar::<_, i64>(SQL).fetch_one(pool).await)
}

/// Every row, oldest first.
pub async fn all(db: &Db) -> Result<Vec<StoredMessage>, sqlx::Error> {
    const SQL: &str = "SELECT dedupe_key, channel, recipient, body, status, attempts, last_error, \
                       provider_message_id FROM outbox ORDER BY id";
    with_pool!(db, pool => sqlx::query_as::<_, StoredMessage>(SQL).fetch_all(pool).await)
}

/// Hands a claimed row back unsent (its worker is stopping): due again at once, and the
/// attempt its claim counted is taken back.
pub async fn release(db: &Db, id: i64, token: &str) -> Result<bool, sqlx::Error> {
    const SQL: &str = "UPDATE outbox SET attempts = attempts - 1, claimed_until = NULL, \
                       claim_token = NULL WHERE id = $1 AND claim_token = $2";
    let updated = with_pool!(db, pool => {
        sqlx::query(SQL).bind(id).bind(token).execute(pool).await?.rows_affected()
    });
    Ok(updated == 1)
}
