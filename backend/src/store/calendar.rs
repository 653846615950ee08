//! The `calendar_imports` table, the blocks its feeds own, and the export's secret.
//!
//! A block is a `reservations` row with status `blocked` and the owning feed in
//! `calendar_import_id` (migration 0005): the exclusion constraint (PostgreSQL) and the
//! triggers (SQLite) that keep stays apart therefore keep stays and blocks apart too, with no
//! second mechanism to trust. A sync replaces a feed's blocks in one transaction, so a
//! failed or refused sync leaves the previous blocks exactly as they were.

use chrono::{DateTime, NaiveDate, Utc};
use rand::Rng;
use serde::Serialize;

use crate::db::Db;
use crate::with_pool;

/// One imported feed and how its last sync went.
#[derive(Debug, Clone, Serialize, sqlx::FromRow)]
pub struct CalendarImport {
    /// Primary key; the `feed` label of the sync metrics.
    pub id: i64,
    /// The cabin whose dates the feed blocks.
    pub accommodation_id: i64,
    /// The feed URL (may hold the other channel's secret: shown to admins only).
    pub url: String,
    /// `ETag` of the last accepted feed.
    #[serde(skip)]
    pub etag: Option<String>,
    /// `Last-Modified` of the last accepted feed.
    #[serde(skip)]
    pub last_modified: Option<String>,
    /// When a sync last tried this feed.
    pub last_attempt_at: Option<DateTime<Utc>>,
    /// When a sync last succeeded (a new feed stored, or 304 Not Modified).
    pub last_success_at: Option<DateTime<Utc>>,
    /// Why the last attempt failed; `None` after a success.
    pub last_error: Option<String>,
    /// Events of the last accepted feed whose dates were already taken here.
    pub skipped_events: i32,
    /// The blocks this feed holds now.
    pub blocks: i64,
    /// When it was added.
    pub created_at: DateTime<Utc>,
}

/// The columns of [`CalendarImport`] from `calendar_imports i`.
macro_rules! import_columns {
    () => {
        "SELECT i.id, i.accommodation_id, i.url, i.etag, i.last_modified, i.last_attempt_at, \
         i.last_success_at, i.last_error, i.skipped_events, \
         (SELECT COUNT(*) FROM reservations r WHERE r.calendar_import_id = i.id) AS blocks, \
         i.created_at FROM calendar_imports i "
    };
}

/// Adds `url` as a feed of `accommodation_id` (adding it again changes nothing) and returns it.
pub async fn add_import(
    db: &Db,
    accommodation_id: i64,
    url: &str,
    now: DateTime<Utc>,
) -> Result<CalendarImport, sqlx::Error> {
    const INSERT: &str = "INSERT INTO calendar_imports (accommodation_id, url, created_at) \
                          VALUES ($1, $2, $3) ON CONFLICT (accommodation_id, url) DO NOTHING";
    const SELECT: &str = concat!(
        import_columns!(),
        "WHERE i.accommodation_id = $1 AND i.url = $2"
    );
    with_pool!(db, pool => {
        sqlx::query(INSERT).bind(accommodation_id).bind(url).bind(now).execute(pool).await?;
        sqlx::query_as::<_, CalendarImport>(SELECT)
            .bind(accommodation_id)
            .bind(url)
            .fetch_one(pool)
            .await
    })
}

/// The feeds of one cabin (`Some`), or of every cabin (`None`), by id.
pub async fn imports(
    db: &Db,
    accommodation_id: Option<i64>,
) -> Result<Vec<CalendarImport>, sqlx::Error> {
    const SELECT: &str = concat!(
        import_columns!(),
        "WHERE $1 IS NULL OR i.accommodation_id = $1 ORDER BY i.id"
    );
    with_pool!(db, pool => {
        sqlx::query_as::<_, CalendarImport>(SELECT)
            .bind(accommodation_id)
            .fetch_all(pool)
            .await
    })
}

/// Removes feed `import_id` of `accommodation_id` and, with it (`ON DELETE CASCADE`), every
/// block it holds. Whether it existed.
pub async fn delete_import(
    db: &Db,
    accommodation_id: i64,
    import_id: i64,
) -> Result<bool, sqlx::Error> {
    const SQL: &str = "DELETE FROM calendar_imports WHERE id = $1 AND accommodation_id = $2";
    let deleted = with_pool!(db, pool => {
        sqlx::query(SQL).bind(import_id).bind(accommodation_id).execute(pool).await?.rows_affected()
    });
    Ok(deleted > 0)
}

/// Records a failed attempt: its reason, and nothing else changes (the blocks stay).
pub async fn record_failure(
    db: &Db,
    import_id: i64,
    error: &str,
    now: DateTime<Utc>,
) -> Result<(), sqlx::Error> {
    const SQL: &str =
        "UPDATE calendar_imports SET last_attempt_at = $2, last_error = $3 WHERE id = $1";
    with_pool!(db, pool => {
        sqlx::query(SQL).bind(import_id).bind(now).bind(error).execute(pool).await?;
    });
    Ok(())
}

/// Records a 304: the feed is current, its blocks stand.
pub async fn record_unchanged(
    db: &Db,
    import_id: i64,
    now: DateTime<Utc>,
) -> Result<(), sqlx::Error> {
    const SQL: &str = "UPDATE calendar_imports SET last_attempt_at = $2, last_success_at = $2, \
                       last_error = NULL WHERE id = $1";
    with_pool!(db, pool => {
        sqlx::query(SQL).bind(import_id).bind(now).execute(pool).await?;
    });
    Ok(())
}

/// A feed's new content, ready to replace its blocks.
#[derive(Debug, Clone)]
pub struct FeedContent {
    /// The busy ranges `[start, end)`, sorted and not overlapping one another.
    pub ranges: Vec<(NaiveDate, NaiveDate)>,
    /// `ETag` to store.
    pub etag: Option<String>,
    /// `Last-Modified` to store.
    pub last_modified: Option<String>,
}

/// What a replacement stored.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Replaced {
    /// Blocks the feed now holds.
    pub blocks: u64,
    /// Ranges left out because a booking or another feed's block holds their dates.
    pub skipped: u64,
}

/// Inserts one block unless its dates are taken. The `NOT EXISTS` is the whole check on
/// SQLite (one writer at a time); on PostgreSQL a booking committed between it and the insert
/// is caught by the exclusion constraint, which `ON CONFLICT DO NOTHING` turns into a skip
/// rather than an aborted sync.
macro_rules! insert_block {
    () => {
        "INSERT INTO reservations (code, accommodation_id, check_in, check_out, guests, channel, \
         contact_name, contact_phone, status, total_price_cents, deposit_cents, expires_at, \
         created_at, updated_at, calendar_import_id) \
         SELECT $1, $2, $3, $4, 1, 'calendar', 'calendar block', '-', 'blocked', 0, 0, $5, $5, \
         $5, $6 WHERE NOT EXISTS (SELECT 1 FROM reservations r WHERE r.accommodation_id = $2 \
         AND r.status IN ('pre_reserved', 'confirmed', 'blocked') \
         AND r.check_in < $4 AND $3 < r.check_out)"
    };
}

/// Replaces the blocks of feed `import_id` (of `accommodation_id`) with `content`, in one
/// transaction: the old blocks go and the new ones come together, or nothing changes.
/// `None` when the feed was deleted meanwhile.
pub async fn replace_blocks(
    db: &Db,
    import_id: i64,
    accommodation_id: i64,
    content: FeedContent,
    now: DateTime<Utc>,
) -> Result<Option<Replaced>, sqlx::Error> {
    // First statement: on PostgreSQL it locks the feed's row, so two instances syncing the
    // same feed take turns instead of interleaving deletes and inserts.
    const CLAIM: &str = "UPDATE calendar_imports SET last_attempt_at = $2 WHERE id = $1";
    const CLEAR: &str = "DELETE FROM reservations WHERE calendar_import_id = $1";
    const DONE: &str = "UPDATE calendar_imports SET last_success_at = $2, last_error = NULL, \
                        etag = $3, last_modified = $4, skipped_events = $5 WHERE id = $1";
    let insert = match db {
        Db::Postgres(_) => concat!(insert_block!(), " ON CONFLICT DO NOTHING"),
        Db::Sqlite(_) => insert_block!(),
    };
    let codes: Vec<String> = content.ranges.iter().map(|_| block_code()).collect();
    with_pool!(db, pool => {
        let content = content.clone();
        let codes = codes.clone();
        crate::db::transaction(pool, move |mut tx| async move {
            let claimed = sqlx::query(CLAIM).bind(import_id).bind(now).execute(&mut *tx).await?;
            if claimed.rows_affected() == 0 {
                return Ok(None);
            }
            sqlx::query(CLEAR).bind(import_id).execute(&mut *tx).await?;
            let mut blocks = 0;
            for ((start, end), code) in content.ranges.iter().zip(&codes) {
                blocks += sqlx::query(insert)
                    .bind(code)
                    .bind(accommodation_id)
                    .bind(start)
                    .bind(end)
                    .bind(now)
                    .bind(import_id)
                    .execute(&mut *tx)
                    .await?
                    .rows_affected();
            }
            let skipped = content.ranges.len() as u64 - blocks;
            sqlx::query(DONE)
                .bind(import_id)
                .bind(now)
                .bind(&content.etag)
                .bind(&content.last_modified)
                .bind(i32::try_from(skipped).unwrap_or(i32::MAX))
                .execute(&mut *tx)
                .await?;
            tx.commit().await?;
            Ok(Some(Replaced { blocks, skipped }))
        })
        .await
    })
}

/// `BLK-` and 16 random characters: unique, and never a guest's code (`CB-…`).
fn block_code() -> String {
    const ALPHABET: &[u8] = b"ABCDEFGHJKLMNPQRSTUVWXYZ23456789";
    let mut rng = rand::rng();
    let suffix: String = (0..16)
        .map(|_| ALPHABET[rng.random_range(0..ALPHABET.len())] as char)
        .collect();
    format!("BLK-{suffix}")
}

/// One busy stay of the export: the row id (not the guest's code) and its nights.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct BusyStay {
    /// `reservations.id`, stable for the stay's life.
    pub id: i64,
    /// First night.
    pub check_in: NaiveDate,
    /// Departure day.
    pub check_out: NaiveDate,
}

/// The cabin's own pre-reserved and confirmed stays ending after `today`, by check-in.
/// Imported blocks are left out, so a channel never gets its own bookings back as ours.
pub async fn busy_stays(
    db: &Db,
    accommodation_id: i64,
    today: NaiveDate,
) -> Result<Vec<BusyStay>, sqlx::Error> {
    const SQL: &str = "SELECT id, check_in, check_out FROM reservations \
                       WHERE accommodation_id = $1 AND status IN ('pre_reserved', 'confirmed') \
                         AND check_out > $2 ORDER BY check_in";
    with_pool!(db, pool => {
        sqlx::query_as::<_, BusyStay>(SQL).bind(accommodation_id).bind(today).fetch_all(pool).await
    })
}

/// The export secret of an active cabin, created on first use from `fresh` (so two
/// instances asking at once agree on one). `None` for an unknown or inactive cabin.
pub async fn export_token(
    db: &Db,
    accommodation_id: i64,
    fresh: &str,
) -> Result<Option<String>, sqlx::Error> {
    const SET: &str = "UPDATE accommodations SET calendar_token = $2 \
                       WHERE id = $1 AND calendar_token IS NULL";
    with_pool!(db, pool => {
        sqlx::query(SET).bind(accommodation_id).bind(fresh).execute(pool).await?;
    });
    stored_token(db, accommodation_id).await
}

/// The export secret of an active cabin, if one was made.
pub async fn stored_token(db: &Db, accommodation_id: i64) -> Result<Option<String>, sqlx::Error> {
    const SQL: &str = "SELECT calendar_token FROM accommodations WHERE id = $1 AND active";
    with_pool!(db, pool => {
        let token: Option<Option<String>> = sqlx::query_scalar(SQL)
            .bind(accommodation_id)
            .fetch_optional(pool)
            .await?;
        Ok(token.flatten())
    })
}
