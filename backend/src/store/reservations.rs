//! The `reservations` table and its state machine ([`ReservationStatus`]).

pub mod insert;
pub mod model;

pub use self::insert::insert;
pub use self::model::{
    Booking, CodeGenerator, NewReservation, Reservation, StoredAnswer, random_code,
};

use chrono::{DateTime, NaiveDate, Utc};

use self::model::columns;
use crate::db::Db;
use crate::store::error::StoreError;
pub use crate::store::status::ReservationStatus;
use crate::with_pool;

/// The reservation with this code. Imported calendar blocks are not reservations of a
/// guest, so no code finds one (and confirm, cancel and payments cannot touch one).
pub async fn find_by_code(db: &Db, code: &str) -> Result<Option<Reservation>, sqlx::Error> {
    const SQL: &str = concat!(
        "SELECT ",
        columns!(),
        " FROM reservations WHERE code = $1 AND status <> 'blocked'"
    );
    with_pool!(db, pool => {
        sqlx::query_as::<_, Reservation>(SQL).bind(code).fetch_optional(pool).await
    })
}

/// Confirms a pre-reservation that has not expired.
///
/// [`StoreError::NotFound`] for an unknown code, [`StoreError::Expired`] when its time ran
/// out (even if the sweep has not marked it yet), [`StoreError::InvalidState`] otherwise.
pub async fn confirm(db: &Db, code: &str, now: DateTime<Utc>) -> Result<Reservation, StoreError> {
    const SQL: &str = concat!(
        "UPDATE reservations SET status = 'confirmed', updated_at = $2 \
         WHERE code = $1 AND status = 'pre_reserved' AND expires_at > $2 RETURNING ",
        columns!()
    );
    let current = match transition(db, SQL, code, now).await? {
        Transition::Done(reservation) => return Ok(reservation),
        Transition::Refused(current) => current,
    };
    match current.status {
        ReservationStatus::PreReserved | ReservationStatus::Expired => {
            // Expired by time; record it now rather than waiting for the sweep.
            expire_stale(db).await?;
            Err(StoreError::Expired)
        }
        _ => Err(StoreError::InvalidState {
            status: current.status,
            action: "confirmed",
        }),
    }
}

/// Cancels an active reservation, freeing its dates.
pub async fn cancel(db: &Db, code: &str, now: DateTime<Utc>) -> Result<Reservation, StoreError> {
    const SQL: &str = concat!(
        "UPDATE reservations SET status = 'cancelled', updated_at = $2 \
         WHERE code = $1 AND status IN ('pre_reserved', 'confirmed') RETURNING ",
        columns!()
    );
    match transition(db, SQL, code, now).await? {
        Transition::Done(reservation) => Ok(reservation),
        Transition::Refused(current) => Err(StoreError::InvalidState {
            status: current.status,
            action: "cancelled",
        }),
    }
}

/// What a conditional status change did.
enum Transition {
    /// The reservation after the change.
    Done(Reservation),
    /// Its status (or expiry) did not allow the change: the reservation as it stands.
    Refused(Reservation),
}

/// Runs `sql`, one conditional UPDATE of the reservation `code` (`$1`) at `now` (`$2`)
/// returning the changed row; when it changed nothing, reads the reservation as it stands
/// so the caller can say why. [`StoreError::NotFound`] for an unknown code.
async fn transition(
    db: &Db,
    sql: &'static str,
    code: &str,
    now: DateTime<Utc>,
) -> Result<Transition, StoreError> {
    let updated = with_pool!(db, pool => {
        sqlx::query_as::<_, Reservation>(sql).bind(code).bind(now).fetch_optional(pool).await?
    });
    if let Some(reservation) = updated {
        return Ok(Transition::Done(reservation));
    }
    let current = find_by_code(db, code)
        .await?
        .ok_or_else(|| not_found(code))?;
    Ok(Transition::Refused(current))
}

fn not_found(code: &str) -> StoreError {
    StoreError::NotFound(code.to_owned())
}

/// Marks every pre-reservation past its `expires_at` as `expired`, freeing its dates.
/// Returns how many changed.
///
/// One idempotent UPDATE, so every instance can run it at once: a row changes status
/// exactly once, whichever instance gets it. It runs in its own task and its own explicit
/// transaction that it commits, so its expiries become visible to every connection even on
/// a pooled connection some cut-off request left inside a transaction.
pub async fn expire_stale(db: &Db) -> Result<u64, sqlx::Error> {
    const SQL: &str = "UPDATE reservations SET status = 'expired', updated_at = $1 \
                       WHERE status = 'pre_reserved' AND expires_at <= $1";
    let now = super::now();
    let count = with_pool!(db, pool => {
        crate::db::transaction(pool, move |mut tx| async move {
            let count = sqlx::query(SQL).bind(now).execute(&mut *tx).await?.rows_affected();
            tx.commit().await?;
            Ok(count)
        })
        .await?
    });
    if count > 0 {
        metrics::counter!("prereservations_expired_total").increment(count);
        tracing::info!(count, "expired stale pre-reservations");
    }
    Ok(count)
}

/// Active bookings of an accommodation that intersect `[from, to)`, by check-in, imported
/// calendar blocks included (status `blocked`): availability shows every taken date.
pub async fn bookings_between(
    db: &Db,
    accommodation_id: i64,
    from: NaiveDate,
    to: NaiveDate,
) -> Result<Vec<Booking>, sqlx::Error> {
    const SQL: &str = "SELECT check_in, check_out, status FROM reservations \
                       WHERE accommodation_id = $1 \
                         AND status IN ('pre_reserved', 'confirmed', 'blocked') \
                         AND check_in < $3 AND $2 < check_out \
                       ORDER BY check_in";
    with_pool!(db, pool => {
        sqlx::query_as::<_, Booking>(SQL)
            .bind(accommodation_id)
            .bind(from)
            .bind(to)
            .fetch_all(pool)
            .await
    })
}
