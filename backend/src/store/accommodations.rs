//! The `accommodations` table.

use serde::Serialize;

use crate::db::Db;
use crate::with_pool;

/// A bookable unit (a cabin).
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct Accommodation {
    /// Primary key.
    pub id: i64,
    /// Stable unique name used for seeding.
    pub slug: String,
    /// Display name.
    pub name: String,
    /// Maximum number of guests.
    pub capacity: i32,
    /// Price of a weekday night, in cents.
    pub base_price_cents: i64,
    /// Weekend (Friday/Saturday night) multiplier in basis points; 12000 = 1.20x.
    pub weekend_multiplier_bp: i32,
    /// Inactive accommodations are hidden and cannot be booked.
    pub active: bool,
}

/// A new accommodation, for seeding and tests.
#[derive(Debug, Clone, Serialize)]
pub struct NewAccommodation {
    /// Unique slug; inserting an existing slug changes nothing.
    pub slug: String,
    /// Display name.
    pub name: String,
    /// Maximum number of guests (> 0).
    pub capacity: i32,
    /// Weekday night price in cents.
    pub base_price_cents: i64,
    /// Weekend multiplier in basis points.
    pub weekend_multiplier_bp: i32,
    /// Whether it can be booked.
    pub active: bool,
}

/// Active accommodations, by id.
pub async fn list_active(db: &Db) -> Result<Vec<Accommodation>, sqlx::Error> {
    const SQL: &str = "SELECT id, slug, name, capacity, base_price_cents, \
                       weekend_multiplier_bp, active FROM accommodations \
                       WHERE active ORDER BY id";
    with_pool!(db, pool => sqlx::query_as::<_, Accommodation>(SQL).fetch_all(pool).await)
}

/// The accommodation `id` if it exists and is active.
pub async fn find_active(db: &Db, id: i64) -> Result<Option<Accommodation>, sqlx::Error> {
    const SQL: &str = "SELECT id, slug, name, capacity, base_price_cents, \
                       weekend_multiplier_bp, active FROM accommodations \
                       WHERE id = $1 AND active";
    with_pool!(db, pool => {
        sqlx::query_as::<_, Accommodation>(SQL).bind(id).fetch_optional(pool).await
    })
}

/// Inserts an accommodation unless its slug exists; returns the id of the row with that slug.
pub async fn insert_or_get(db: &Db, new: &NewAccommodation) -> Result<i64, sqlx::Error> {
    const INSERT: &str = "INSERT INTO accommodations \
        (slug, name, capacity, base_price_cents, weekend_multiplier_bp, active) \
        VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT (slug) DO NOTHING";
    const ID: &str = "SELECT id FROM accommodations WHERE slug = $1";
    with_pool!(db, pool => {
        sqlx::query(INSERT)
            .bind(&new.slug)
            .bind(&new.name)
            .bind(new.capacity)
            .bind(new.base_price_cents)
            .bind(new.weekend_multiplier_bp)
            .bind(new.active)
            .execute(pool)
            .await?;
        sqlx::query_scalar::<_, i64>(ID).bind(&new.slug).fetch_one(pool).await
    })
}

/// The demo cabins `cabanas seed-demo` inserts.
pub fn demo_accommodations() -> Vec<NewAccommodation> {
    let cabin = |slug: &str, name: &str, capacity, base_price_cents| NewAccommodation {
        slug: slug.into(),
        name: name.into(),
        capacity,
        base_price_cents,
        weekend_multiplier_bp: 12_000,
        active: true,
    };
    vec![
        cabin("cabana-del-lago", "Cabaña del Lago", 4, 85_000),
        cabin("cabana-del-bosque", "Cabaña del Bosque", 6, 110_000),
        cabin("cabana-mirador", "Cabaña Mirador", 2, 65_000),
    ]
}

/// Inserts the demo cabins; running it again changes nothing. Returns how many are new.
pub async fn seed_demo(db: &Db) -> Result<usize, sqlx::Error> {
    const EXISTS: &str = "SELECT COUNT(*) FROM accommodations WHERE slug = $1";
    let mut created = 0;
    for cabin in demo_accommodations() {
        let existing: i64 = with_pool!(db, pool => {
            sqlx::query_scalar(EXISTS).bind(&cabin.slug).fetch_one(pool).await?
        });
        insert_or_get(db, &cabin).await?;
        if existing == 0 {
            created += 1;
        }
    }
    Ok(created)
}
