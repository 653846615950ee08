//! Booking: one pre-reservation inserted under a fresh code, with its idempotent answer in
//! the same commit. The database decides overlaps; this module only queues bookings of one
//! accommodation (PostgreSQL's advisory lock) and retries code collisions.

use std::time::Duration;

use chrono::{DateTime, Utc};
use rand::Rng;

use super::model::{CodeGenerator, NewReservation, Reservation, StoredAnswer, columns};
use crate::db::{Db, WriteFailure, classify};
use crate::store::error::StoreError;
use crate::store::status::ReservationStatus;

/// How many times a write is retried on a code collision or transient conflict.
const MAX_ATTEMPTS: u32 = 8;

/// Inserts a pre-reservation under a fresh code, and with it, in the same transaction,
/// the idempotent `answer` when there is one.
///
/// The database decides overlaps: its refusal becomes [`StoreError::DateOverlap`]. A code
/// that is already taken is retried with a new code, never reported as an overlap. Each
/// attempt runs to completion in its own task, so a request cut off mid-way never leaves
/// a transaction open on a pooled connection.
///
/// `None` only when `answer` claims its key ([`StoredAnswer::claim`]) and the key is
/// already there: nothing was written, and the caller goes through the key's owner.
pub async fn insert(
    db: &Db,
    new: &NewReservation,
    codes: &CodeGenerator,
    now: DateTime<Utc>,
    answer: Option<&StoredAnswer>,
) -> Result<Option<Reservation>, StoreError> {
    let mut attempt = 0;
    loop {
        attempt += 1;
        let work = insert_once(db.clone(), new.clone(), codes(), now, answer.cloned());
        let err = match crate::db::detached(work).await {
            Ok(reservation) => return Ok(reservation),
            Err(err) => err,
        };
        match classify(&err) {
            WriteFailure::DateOverlap => return Err(StoreError::DateOverlap),
            WriteFailure::UniqueViolation if attempt < MAX_ATTEMPTS => {
                tracing::warn!(
                    attempt,
                    "reservation code collision; retrying with a new code"
                );
            }
            WriteFailure::Transient if attempt < MAX_ATTEMPTS => {
                tracing::debug!(attempt, "transient write conflict; retrying");
                let jitter = rand::rng().random_range(5..25) * u64::from(attempt);
                tokio::time::sleep(Duration::from_millis(jitter)).await;
            }
            _ => return Err(err.into()),
        }
    }
}

/// The columns of an insert, in the order of its parameters `$1`..`$13`.
macro_rules! insert_values {
    () => {
        "INSERT INTO reservations (code, accommodation_id, check_in, check_out, guests, \
         channel, contact_name, contact_phone, contact_email, status, total_price_cents, \
         deposit_cents, expires_at, created_at, updated_at) "
    };
}

/// PostgreSQL, one statement and one commit per booking: the per-accommodation advisory lock
/// is taken before the row is inserted (the insert reads its one row from `lock`), and both
/// end with the statement's own transaction. docs/bench/prereserve.pgbench runs this
/// statement for the database's ceiling.
const INSERT_LOCKED: &str = concat!(
    "WITH lock AS (SELECT pg_advisory_xact_lock($2)) ",
    insert_values!(),
    "SELECT $1, $2, $3, $4, $5, $6, $7, $8, $9, 'pre_reserved', $10, $11, $12, $13, $13 \
     FROM lock RETURNING ",
    columns!()
);

/// [`INSERT_LOCKED`] that also stores the idempotent answer (`$14` status, `$15` body) under
/// its key (`$16`), still one statement: the answer and the reservation commit together.
const INSERT_LOCKED_ANSWERED: &str = concat!(
    "WITH lock AS (SELECT pg_advisory_xact_lock($2)), inserted AS (",
    insert_values!(),
    "SELECT $1, $2, $3, $4, $5, $6, $7, $8, $9, 'pre_reserved', $10, $11, $12, $13, $13 \
     FROM lock RETURNING ",
    columns!(),
    "), answered AS (UPDATE idempotency_keys SET response_status = $14, response_body = $15 \
     WHERE key = $16 AND EXISTS (SELECT 1 FROM inserted)) SELECT * FROM inserted"
);

/// [`INSERT_LOCKED_ANSWERED`] for a key nobody holds yet: the key (`$16`) is claimed for
/// the canonical request (`$17`) with its answer already in it, the lock taken and the
/// reservation inserted, all in one statement and one commit. When the key exists (held,
/// answered, or being inserted by a concurrent request, whose commit this waits for) the
/// claim returns no row, nothing else happens, and the statement returns no row.
const INSERT_LOCKED_CLAIMING: &str = concat!(
    "WITH claimed AS (INSERT INTO idempotency_keys \
     (key, request_body, created_at, response_status, response_body) \
     VALUES ($16, $17, $13, $14, $15) ON CONFLICT (key) DO NOTHING RETURNING key), \
     lock AS (SELECT pg_advisory_xact_lock($2) FROM claimed) ",
    insert_values!(),
    "SELECT $1, $2, $3, $4, $5, $6, $7, $8, $9, 'pre_reserved', $10, $11, $12, $13, $13 \
     FROM lock RETURNING ",
    columns!()
);

/// The 13 insert parameters of every insert statement, bound in order on either database.
macro_rules! bound {
    ($sql:expr, $code:expr, $new:expr, $now:expr) => {
        sqlx::query_as::<_, Reservation>($sql)
            .bind($code)
            .bind($new.accommodation_id)
            .bind($new.check_in)
            .bind($new.check_out)
            .bind($new.guests)
            .bind(&$new.channel)
            .bind(&$new.contact_name)
            .bind(&$new.contact_phone)
            .bind(&$new.contact_email)
            .bind($new.total_price_cents)
            .bind($new.deposit_cents)
            .bind($new.expires_at)
            .bind($now)
    };
}

/// One insert attempt: one statement on PostgreSQL, one transaction on SQLite. `None`
/// when a claiming answer found its key taken.
async fn insert_once(
    db: Db,
    new: NewReservation,
    code: String,
    now: DateTime<Utc>,
    answer: Option<StoredAnswer>,
) -> Result<Option<Reservation>, sqlx::Error> {
    match &db {
        Db::Postgres(pg) => insert_postgres(pg, &new, &code, now, answer.as_ref()).await,
        // SQLite serialises writers itself; the answer goes in the same transaction.
        Db::Sqlite(pool) => insert_sqlite(pool, new, code, now, answer).await,
    }
}

/// The PostgreSQL attempt: one statement on a warm connection (no ping when it goes back;
/// see `db::warm`).
///
/// Concurrent inserts that collide on the exclusion constraint wait on each other's index
/// entries and deadlock under load (1000 at once gave hundreds of deadlocks and 503s). The
/// per-accommodation advisory lock makes them queue instead; the constraint still decides
/// the overlap.
async fn insert_postgres(
    pg: &crate::db::Pg,
    new: &NewReservation,
    code: &str,
    now: DateTime<Utc>,
    answer: Option<&StoredAnswer>,
) -> Result<Option<Reservation>, sqlx::Error> {
    let mut lease = pg.warm().lease().await?;
    let outcome = match answer {
        None => bound!(INSERT_LOCKED, code, new, now)
            .fetch_one(lease.conn())
            .await
            .map(Some),
        Some(answer) => {
            // The answer is rendered from the row about to be inserted: every column it
            // shows is known before the insert.
            let expected = Reservation {
                id: 0,
                code: code.to_owned(),
                accommodation_id: new.accommodation_id,
                check_in: new.check_in,
                check_out: new.check_out,
                guests: new.guests,
                channel: new.channel.clone(),
                contact_name: new.contact_name.clone(),
                contact_phone: new.contact_phone.clone(),
                contact_email: new.contact_email.clone(),
                status: ReservationStatus::PreReserved,
                total_price_cents: new.total_price_cents,
                deposit_cents: new.deposit_cents,
                expires_at: new.expires_at,
                created_at: now,
                updated_at: now,
            };
            let sql = match answer.claim {
                Some(_) => INSERT_LOCKED_CLAIMING,
                None => INSERT_LOCKED_ANSWERED,
            };
            let query = bound!(sql, code, new, now)
                .bind(i32::from(answer.status))
                .bind((answer.render)(&expected))
                .bind(&answer.key);
            match &answer.claim {
                Some(request_body) => query.bind(request_body).fetch_optional(lease.conn()).await,
                None => query.fetch_one(lease.conn()).await.map(Some),
            }
        }
    };
    lease.finish(&outcome);
    outcome
}

/// The SQLite attempt: the insert, then the answer, in one transaction.
async fn insert_sqlite(
    pool: &sqlx::SqlitePool,
    new: NewReservation,
    code: String,
    now: DateTime<Utc>,
    answer: Option<StoredAnswer>,
) -> Result<Option<Reservation>, sqlx::Error> {
    const SQL: &str = concat!(
        insert_values!(),
        "VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, 'pre_reserved', $10, $11, $12, $13, $13) \
         RETURNING ",
        columns!()
    );
    const ANSWER: &str = "UPDATE idempotency_keys SET response_status = $2, response_body = $3 \
                          WHERE key = $1";
    const CLAIM_ANSWERED: &str = "INSERT INTO idempotency_keys \
                                  (key, response_status, response_body, request_body, created_at) \
                                  VALUES ($1, $2, $3, $4, $5) ON CONFLICT (key) DO NOTHING";
    crate::db::transaction(pool, move |mut tx| async move {
        let reservation = bound!(SQL, &code, new, now).fetch_one(&mut *tx).await?;
        if let Some(answer) = &answer {
            let query = sqlx::query(answer.claim.as_ref().map_or(ANSWER, |_| CLAIM_ANSWERED))
                .bind(&answer.key)
                .bind(i32::from(answer.status))
                .bind((answer.render)(&reservation));
            let written = match &answer.claim {
                Some(request_body) => query.bind(request_body).bind(now),
                None => query,
            }
            .execute(&mut *tx)
            .await?
            .rows_affected();
            if written == 0 && answer.claim.is_some() {
                // The key is taken: dropping the transaction takes the booking back.
                return Ok(None);
            }
        }
        tx.commit().await?;
        Ok(Some(reservation))
    })
    .await
}
