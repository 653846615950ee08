//! The `accommodations` table.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, OnceLock, RwLock};
use std::time::{Duration, Instant};

use axum::body::Bytes;
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
    /// A cabin that exists only for the deploy checks (`cargo xtask overlap`): never listed,
    /// shown and bookable only for an admin ([`Audience`]).
    pub test_fixture: bool,
}

/// Who asks for an accommodation: test fixtures exist only for admins.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Audience {
    /// Anyone without a valid admin token: sees and books real cabins only.
    Guest,
    /// A request with a valid admin token (operators, the overlap check): sees fixtures too.
    Admin,
}

impl Accommodation {
    /// Whether `audience` may see and book it.
    pub fn visible_to(&self, audience: Audience) -> bool {
        !self.test_fixture || audience == Audience::Admin
    }
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

/// Active accommodations (test fixtures included), by id.
pub async fn list_active(db: &Db) -> Result<Vec<Accommodation>, sqlx::Error> {
    const SQL: &str = "SELECT id, slug, name, capacity, base_price_cents, \
                       weekend_multiplier_bp, active, test_fixture FROM accommodations \
                       WHERE active ORDER BY id";
    with_pool!(db, pool => sqlx::query_as::<_, Accommodation>(SQL).fetch_all(pool).await)
}

/// The accommodation `id` if it exists and is active.
pub async fn find_active(db: &Db, id: i64) -> Result<Option<Accommodation>, sqlx::Error> {
    const SQL: &str = "SELECT id, slug, name, capacity, base_price_cents, \
                       weekend_multiplier_bp, active, test_fixture FROM accommodations \
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

/// What [`find_or_create_fixture`] found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Fixture {
    /// The fixture was created now.
    Created(Accommodation),
    /// The fixture existed already (it is returned as it is, active or not).
    Existing(Accommodation),
    /// The slug belongs to a real accommodation, which stays untouched.
    SlugTaken,
}

/// The guest count and prices of a test fixture: one guest is all the overlap race books,
/// and a token price keeps its (always cancelled) bookings out of anyone's revenue.
const FIXTURE_CAPACITY: i32 = 2;
const FIXTURE_PRICE_CENTS: i64 = 100;

/// Finds the test fixture `slug`, or creates it (active, marked `test_fixture`). Running it
/// again returns the same row; a real accommodation with that slug is never returned or
/// changed ([`Fixture::SlugTaken`]).
pub async fn find_or_create_fixture(db: &Db, slug: &str) -> Result<Fixture, sqlx::Error> {
    const INSERT: &str = "INSERT INTO accommodations \
        (slug, name, capacity, base_price_cents, weekend_multiplier_bp, active, test_fixture) \
        VALUES ($1, $2, $3, $4, $5, $6, $7) ON CONFLICT (slug) DO NOTHING";
    const FIND: &str = "SELECT id, slug, name, capacity, base_price_cents, \
                        weekend_multiplier_bp, active, test_fixture FROM accommodations \
                        WHERE slug = $1";
    let name = format!("Test fixture {slug} (deploy checks only)");
    let (inserted, row) = with_pool!(db, pool => {
        let inserted = sqlx::query(INSERT)
            .bind(slug)
            .bind(&name)
            .bind(FIXTURE_CAPACITY)
            .bind(FIXTURE_PRICE_CENTS)
            .bind(10_000_i32)
            .bind(true)
            .bind(true)
            .execute(pool)
            .await?
            .rows_affected();
        let row = sqlx::query_as::<_, Accommodation>(FIND).bind(slug).fetch_one(pool).await?;
        (inserted, row)
    });
    Ok(match (row.test_fixture, inserted) {
        (false, _) => Fixture::SlugTaken,
        (true, 0) => Fixture::Existing(row),
        (true, _) => Fixture::Created(row),
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

/// The active accommodations, kept in memory: they change rarely (seeding, an operator's
/// SQL) and are read by every listing, availability query and pre-reserve.
///
/// A snapshot is reused while younger than its maximum age (`ACCOMMODATIONS_CACHE_MS`,
/// default 1000 ms), measured from when its query started, so a change made by another
/// instance or directly in the database shows within that age. A change made through
/// [`AccommodationCache::insert_or_get`] shows at once. Concurrent requests share one
/// query; a zero age turns the cache off. Reservations (and so availability) are never
/// cached.
#[derive(Debug)]
pub struct AccommodationCache {
    max_age: Duration,
    current: RwLock<Current>,
    refresh: tokio::sync::Mutex<()>,
    loads: AtomicU64,
}

#[derive(Debug, Default)]
struct Current {
    snapshot: Option<(Instant, Arc<CatalogSnapshot>)>,
    /// Bumped by every invalidation, so a query that started before one is not kept.
    generation: u64,
}

/// The active accommodations at one moment, and what is rendered from them.
#[derive(Debug)]
pub struct CatalogSnapshot {
    /// Active accommodations by id.
    pub active: Vec<Accommodation>,
    rendered: OnceLock<Bytes>,
}

impl CatalogSnapshot {
    /// The accommodation `id` if it is active and `audience` may see it.
    pub fn find(&self, id: i64, audience: Audience) -> Option<&Accommodation> {
        self.active
            .binary_search_by_key(&id, |a| a.id)
            .ok()
            .map(|i| &self.active[i])
            .filter(|a| a.visible_to(audience))
    }

    /// A rendering of the public list (the JSON body of the listing: test fixtures left
    /// out), made once per snapshot.
    pub fn rendered(&self, render: impl FnOnce(&[&Accommodation]) -> Bytes) -> Bytes {
        self.rendered
            .get_or_init(|| {
                let listed: Vec<&Accommodation> = self
                    .active
                    .iter()
                    .filter(|a| a.visible_to(Audience::Guest))
                    .collect();
                render(&listed)
            })
            .clone()
    }
}

impl AccommodationCache {
    /// A cache keeping snapshots for `max_age` (zero: every read queries).
    pub fn new(max_age: Duration) -> Self {
        Self {
            max_age,
            current: RwLock::new(Current::default()),
            refresh: tokio::sync::Mutex::new(()),
            loads: AtomicU64::new(0),
        }
    }

    /// How long a snapshot is reused.
    pub fn max_age(&self) -> Duration {
        self.max_age
    }

    /// How many times the cache queried the database.
    pub fn loads(&self) -> u64 {
        self.loads.load(Ordering::Relaxed)
    }

    /// The active accommodations, from memory while fresh.
    pub async fn snapshot(&self, db: &Db) -> Result<Arc<CatalogSnapshot>, sqlx::Error> {
        if let Some(fresh) = self.fresh() {
            return Ok(fresh);
        }
        if self.max_age.is_zero() {
            return self.load(db).await.map(|(_, _, snapshot)| snapshot);
        }
        let _single_flight = self.refresh.lock().await;
        if let Some(fresh) = self.fresh() {
            return Ok(fresh);
        }
        let (started, generation, snapshot) = self.load(db).await?;
        let mut current = self.write();
        if current.generation == generation {
            current.snapshot = Some((started, snapshot.clone()));
        }
        Ok(snapshot)
    }

    /// The accommodation `id` if it exists, is active and `audience` may see it.
    ///
    /// An admin's miss asks the database: the overlap check creates its fixture through one
    /// instance and books it through the others at once, before their snapshots are older
    /// than the age. A guest's miss costs no query, so unknown ids cannot load the database.
    pub async fn find_active(
        &self,
        db: &Db,
        id: i64,
        audience: Audience,
    ) -> Result<Option<Accommodation>, sqlx::Error> {
        if let Some(found) = self.snapshot(db).await?.find(id, audience) {
            return Ok(Some(found.clone()));
        }
        match audience {
            Audience::Admin => find_active(db, id).await,
            Audience::Guest => Ok(None),
        }
    }

    /// [`find_or_create_fixture`], then forgets the snapshot so this instance sees it at once.
    pub async fn find_or_create_fixture(
        &self,
        db: &Db,
        slug: &str,
    ) -> Result<Fixture, sqlx::Error> {
        let result = find_or_create_fixture(db, slug).await;
        self.invalidate();
        result
    }

    /// [`insert_or_get`], then forgets the snapshot so this instance sees the change at once.
    pub async fn insert_or_get(&self, db: &Db, new: &NewAccommodation) -> Result<i64, sqlx::Error> {
        let result = insert_or_get(db, new).await;
        self.invalidate();
        result
    }

    /// Forgets the snapshot: the next read queries the database.
    pub fn invalidate(&self) {
        let mut current = self.write();
        current.generation += 1;
        current.snapshot = None;
    }

    async fn load(&self, db: &Db) -> Result<(Instant, u64, Arc<CatalogSnapshot>), sqlx::Error> {
        let generation = self.read().generation;
        let started = Instant::now();
        self.loads.fetch_add(1, Ordering::Relaxed);
        let active = list_active(db).await?;
        let snapshot = Arc::new(CatalogSnapshot {
            active,
            rendered: OnceLock::new(),
        });
        Ok((started, generation, snapshot))
    }

    fn fresh(&self) -> Option<Arc<CatalogSnapshot>> {
        let current = self.read();
        current
            .snapshot
            .as_ref()
            .filter(|(started, _)| started.elapsed() < self.max_age)
            .map(|(_, snapshot)| snapshot.clone())
    }

    fn read(&self) -> std::sync::RwLockReadGuard<'_, Current> {
        self.current.read().unwrap_or_else(|p| p.into_inner())
    }

    fn write(&self) -> std::sync::RwLockWriteGuard<'_, Current> {
        self.current.write().unwrap_or_else(|p| p.into_inner())
    }
}
