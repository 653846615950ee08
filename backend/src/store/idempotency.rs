//! The `idempotency_keys` table: one row per `Idempotency-Key`, holding the canonical
//! request and, once known, the response. Stored in the database so it holds across
//! instances; the primary key makes the first request to insert a key its only owner.

use chrono::{DateTime, Utc};

use crate::db::Db;
use crate::with_pool;

/// What a request learns when it presents a key.
#[derive(Debug, PartialEq, Eq)]
pub enum Claim {
    /// The key is new and now belongs to this request, which must `complete` or `release` it.
    Acquired,
    /// Another request holds or held the key.
    Existing {
        /// The canonical request stored with the key.
        request_body: String,
        /// The stored response (status, JSON text), or `None` while still in progress.
        response: Option<(u16, String)>,
    },
}

/// How long answers are kept for replay; older keys are deleted by the sweep.
pub const RETENTION: chrono::Duration = chrono::Duration::hours(24);

/// Claims `key` for `request_body`, or reports who has it.
///
/// A claim still without a response and taken before `abandoned_before` belongs to a request
/// that can no longer finish (it timed out, its client went away, it panicked: the handler was
/// dropped between claim and complete), so it is taken over instead of answering "in
/// progress" forever. The takeover is one conditional UPDATE, so one request wins it.
pub async fn claim(
    db: &Db,
    key: &str,
    request_body: &str,
    now: DateTime<Utc>,
    abandoned_before: DateTime<Utc>,
) -> Result<Claim, sqlx::Error> {
    const TAKE_OVER: &str = "UPDATE idempotency_keys SET created_at = $2 \
                             WHERE key = $1 AND response_status IS NULL AND created_at < $3 \
                             AND request_body = $4";
    const INSERT: &str = "INSERT INTO idempotency_keys (key, request_body, created_at) \
                          VALUES ($1, $2, $3) ON CONFLICT (key) DO NOTHING";
    const SELECT: &str = "SELECT request_body, response_status, response_body \
                          FROM idempotency_keys WHERE key = $1";
    // A holder may release the key between our INSERT and SELECT; then try again.
    for _ in 0..3 {
        let inserted = with_pool!(db, pool => {
            sqlx::query(INSERT)
                .bind(key)
                .bind(request_body)
                .bind(now)
                .execute(pool)
                .await?
                .rows_affected()
        });
        if inserted == 1 {
            return Ok(Claim::Acquired);
        }
        let row: Option<(String, Option<i32>, Option<String>)> = with_pool!(db, pool => {
            sqlx::query_as(SELECT).bind(key).fetch_optional(pool).await?
        });
        if let Some((stored_body, None, _)) = &row
            && stored_body == request_body
        {
            let taken = with_pool!(db, pool => {
                sqlx::query(TAKE_OVER)
                    .bind(key)
                    .bind(now)
                    .bind(abandoned_before)
                    .bind(request_body)
                    .execute(pool)
                    .await?
                    .rows_affected()
            });
            if taken == 1 {
                tracing::warn!("taking over an idempotency key whose first request never finished");
                return Ok(Claim::Acquired);
            }
        }
        if let Some((request_body, status, body)) = row {
            let response = match (status, body) {
                (Some(status), Some(body)) => u16::try_from(status).ok().map(|s| (s, body)),
                _ => None,
            };
            return Ok(Claim::Existing {
                request_body,
                response,
            });
        }
    }
    Err(sqlx::Error::Protocol(
        "idempotency key kept disappearing while being claimed".into(),
    ))
}

/// Stores the final response for a claimed key.
pub async fn complete(db: &Db, key: &str, status: u16, body: &str) -> Result<(), sqlx::Error> {
    const SQL: &str = "UPDATE idempotency_keys SET response_status = $2, response_body = $3 \
                       WHERE key = $1";
    with_pool!(db, pool => {
        sqlx::query(SQL).bind(key).bind(i32::from(status)).bind(body).execute(pool).await?;
    });
    Ok(())
}

/// Gives a claimed key back after a failure that should not be replayed (a 5xx).
pub async fn release(db: &Db, key: &str) -> Result<(), sqlx::Error> {
    const SQL: &str = "DELETE FROM idempotency_keys WHERE key = $1 AND response_status IS NULL";
    with_pool!(db, pool => sqlx::query(SQL).bind(key).execute(pool).await.map(|_| ()))?;
    Ok(())
}

/// Deletes keys older than [`RETENTION`]; returns how many. Safe in every instance.
pub async fn forget_old(db: &Db, now: DateTime<Utc>) -> Result<u64, sqlx::Error> {
    const SQL: &str = "DELETE FROM idempotency_keys WHERE created_at < $1";
    let cutoff = now - RETENTION;
    Ok(with_pool!(db, pool => {
        sqlx::query(SQL).bind(cutoff).execute(pool).await?.rows_affected()
    }))
}
