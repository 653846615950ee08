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

/// Claims `key` for `request_body`, or reports who has it.
pub async fn claim(
    db: &Db,
    key: &str,
    request_body: &str,
    now: DateTime<Utc>,
) -> Result<Claim, sqlx::Error> {
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
