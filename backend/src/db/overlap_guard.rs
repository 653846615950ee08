//! Whether the database still enforces the anti-double-booking invariant. The application
//! never checks overlaps itself: a dropped exclusion constraint (PostgreSQL) or trigger
//! (SQLite) lets every concurrent booking of the same dates win, silently, while migrations
//! still read as applied. Readiness asks this at start and on its cached probe, so such a
//! database never counts as ready. Since migration 0005 the guarantee covers imported calendar
//! blocks (status `blocked`) too; a guard restored from 0001's text, without them, would let a
//! booking take dates another channel sold, so it counts as missing.

use super::Db;

/// The name the guarantee goes by: the PostgreSQL constraint, the SQLite triggers' stem.
pub const OVERLAP_GUARD: &str = "reservations_no_overlap";

/// The SQLite triggers that enforce it (backend/migrations/sqlite/0005_calendar_sync.sql).
const SQLITE_TRIGGERS: [&str; 2] = [
    "reservations_no_overlap_insert",
    "reservations_no_overlap_update",
];

impl Db {
    /// What is missing of the overlap guarantee, in words safe to show (empty when it is in
    /// place): on PostgreSQL the exclusion constraint `reservations_no_overlap` on
    /// `reservations`, present and validated (`pg_constraint`); on SQLite its two triggers
    /// (`sqlite_master`).
    pub async fn missing_overlap_guard(&self) -> Result<Vec<String>, sqlx::Error> {
        match self {
            Self::Postgres(pg) => {
                // contype 'x' is an exclusion constraint; a NOT VALID one does not hold for
                // the rows already there.
                let in_place: bool = sqlx::query_scalar(
                    "SELECT EXISTS (SELECT 1 FROM pg_constraint \
                     WHERE conname = $1 AND contype = 'x' AND convalidated \
                     AND conrelid = to_regclass('reservations') \
                     AND pg_get_constraintdef(oid) LIKE '%''blocked''%')",
                )
                .bind(OVERLAP_GUARD)
                .fetch_one(pg.pool())
                .await?;
                Ok(if in_place {
                    Vec::new()
                } else {
                    vec![format!(
                        "the exclusion constraint {OVERLAP_GUARD} over pre_reserved, confirmed \
                         and blocked"
                    )]
                })
            }
            Self::Sqlite(pool) => {
                let mut missing = Vec::new();
                for trigger in SQLITE_TRIGGERS {
                    let present: bool = sqlx::query_scalar(
                        "SELECT EXISTS (SELECT 1 FROM sqlite_master \
                         WHERE type = 'trigger' AND tbl_name = 'reservations' AND name = ? \
                         AND sql LIKE '%''blocked''%')",
                    )
                    .bind(trigger)
                    .fetch_one(pool)
                    .await?;
                    if !present {
                        missing.push(format!("the trigger {trigger} (counting blocked)"));
                    }
                }
                Ok(missing)
            }
        }
    }
}

/// The sentence readiness and the start-up check give when `missing` is not empty.
pub fn overlap_guard_problem(db: &Db, missing: &[String]) -> String {
    let migration = match db {
        Db::Postgres(_) => "backend/migrations/postgres/0005_calendar_sync.sql",
        Db::Sqlite(_) => "backend/migrations/sqlite/0005_calendar_sync.sql",
    };
    format!(
        "the double-booking guarantee {OVERLAP_GUARD} is missing ({} not found on \
         reservations): overlapping bookings would all succeed; restore it as {migration} \
         creates it",
        missing.join(", ")
    )
}
