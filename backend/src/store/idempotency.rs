//! The `idempotency_keys` table: one row per `Idempotency-Key`, holding the canonical
//! request and, once known, the response. Stored in the database so it holds across
//! instances; the primary key makes the first request to insert a key its only owner.

use std::future::Future;
use std::time::Duration;

use chrono::{DateTime, Utc};

use crate::db::Db;
use crate::store::error::StoreError;
use crate::store::reservations::{Reservation, StoredAnswer};
use crate::with_pool;

/// How long a retry waits for the first request holding its key to finish.
pub const IN_PROGRESS_WAIT: Duration = Duration::from_secs(5);
/// How often a waiting retry looks at the key again.
const IN_PROGRESS_POLL: Duration = Duration::from_millis(50);

/// A booking request made under an `Idempotency-Key`.
#[derive(Debug, Clone)]
pub struct KeyedRequest {
    /// The key.
    pub key: String,
    /// The request in canonical form: a retry with another one is refused.
    pub request_body: String,
    /// The status stored with a created reservation's answer (opaque to the store).
    pub created_status: u16,
    /// Renders the answer stored for a created reservation (opaque to the store).
    pub render: fn(&Reservation) -> String,
    /// A first request still unanswered after this long was cut off and never will be;
    /// its key is taken over.
    pub abandoned_after: chrono::Duration,
}

/// How a keyed booking ended.
#[derive(Debug)]
pub enum KeyedOutcome<T> {
    /// This request booked; its answer is stored under the key.
    Created(T),
    /// An earlier request with the same key and body answered: `(status, body)` to replay.
    Replayed(u16, String),
}

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

/// The idempotency protocol of a booking, in one place. `book` books with the answer it is
/// given (stored in the booking's own commit); it returns `Ok(None)` when that answer was
/// to claim the key and the key was taken. `answer_of` says what to store for a refusal
/// (`(status, body)`), or `None` for a failure not worth replaying (a retry tries again).
///
/// A key nobody holds is claimed by the transaction that books: one commit in all. When the
/// key is taken, or the booking is refused, the request goes the long way: claim (or wait
/// up to [`IN_PROGRESS_WAIT`] for, or replay) the key, then book, or store the refusal
/// under it. A refusal is returned as the error it was, after its answer is stored.
pub async fn book_once<T, E, F, Fut>(
    db: &Db,
    request: &KeyedRequest,
    mut book: F,
    answer_of: impl Fn(&E) -> Option<(u16, String)>,
) -> Result<KeyedOutcome<T>, E>
where
    F: FnMut(StoredAnswer) -> Fut,
    Fut: Future<Output = Result<Option<T>, E>>,
    E: From<StoreError>,
{
    let answer = |claim: Option<String>| StoredAnswer {
        key: request.key.clone(),
        status: request.created_status,
        render: request.render,
        claim,
    };
    let refused = match book(answer(Some(request.request_body.clone()))).await {
        Ok(Some(created)) => return Ok(KeyedOutcome::Created(created)),
        Ok(None) => None,
        Err(err) => match answer_of(&err) {
            // Nothing was stored: a retry tries again.
            None => return Err(err),
            Some(stored) => Some((err, stored)),
        },
    };
    if let Some((status, body)) = wait_for_key(db, request).await? {
        return Ok(KeyedOutcome::Replayed(status, body));
    }
    let key = request.key.as_str();
    let (err, (status, body)) = match refused {
        Some(refusal) => refusal,
        None => match book(answer(None)).await {
            // Stored together with the reservation.
            Ok(Some(created)) => return Ok(KeyedOutcome::Created(created)),
            Ok(None) => {
                return Err(StoreError::Inconsistent(
                    "a claimed idempotency key was reported taken",
                )
                .into());
            }
            Err(err) => match answer_of(&err) {
                Some(stored) => (err, stored),
                None => {
                    // Not an answer worth replaying: let a retry try again.
                    if let Err(release_err) = release(db, key).await {
                        tracing::warn!(error = %release_err, "could not release an idempotency key");
                    }
                    return Err(err);
                }
            },
        },
    };
    complete(db, key, status, &body)
        .await
        .map_err(StoreError::from)?;
    Err(err)
}

/// Claims the key of `request`, waiting while another request holds it unanswered: `None`
/// once this request holds it, `Some((status, body))` when an earlier one answered.
async fn wait_for_key(
    db: &Db,
    request: &KeyedRequest,
) -> Result<Option<(u16, String)>, StoreError> {
    let deadline = tokio::time::Instant::now() + IN_PROGRESS_WAIT;
    loop {
        let now = super::now();
        let abandoned_before = now - request.abandoned_after;
        match claim(
            db,
            &request.key,
            &request.request_body,
            now,
            abandoned_before,
        )
        .await?
        {
            Claim::Existing { request_body, .. } if request_body != request.request_body => {
                return Err(StoreError::IdempotencyKeyReused);
            }
            Claim::Existing {
                response: Some(answer),
                ..
            } => return Ok(Some(answer)),
            Claim::Existing { response: None, .. } => {
                if tokio::time::Instant::now() >= deadline {
                    return Err(StoreError::IdempotencyInProgress);
                }
                tokio::time::sleep(IN_PROGRESS_POLL).await;
            }
            Claim::Acquired => return Ok(None),
        }
    }
}

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
