//! What every handler shares. [`AppState::new`] (in the crate root, which sees every
//! service) builds it from the configuration; this module only holds its shape, so the
//! handlers import it without importing everything it is built from.

use std::sync::Arc;
use std::time::Duration;

use metrics_exporter_prometheus::PrometheusHandle;

use crate::auth::AdminAuth;
use crate::calendar::CalendarSync;
use crate::config::Regions;
use crate::config::{BookingHorizon, EdgeConfig};
use crate::db::Db;
use crate::db::replica::ReadReplica;
use crate::health_probe::HealthProbe;
use crate::http::identity::ServiceIdentity;
use crate::http::rate_limit::RateLimiter;
use crate::integrations::Integrations;
use crate::store::accommodations::AccommodationCache;
use crate::store::reservations::CodeGenerator;
use crate::write_health::WriteHealth;

/// What every handler shares: one reference-counted [`Services`], so cloning it per request
/// (every `State` extractor does) costs one atomic increment, not one per field. Reads go
/// through `Deref`; `DerefMut` (for tests adjusting a state before serving) copies on write.
#[derive(Clone)]
pub struct AppState(Arc<Services>);

impl std::ops::Deref for AppState {
    type Target = Services;

    fn deref(&self) -> &Services {
        &self.0
    }
}

impl std::ops::DerefMut for AppState {
    fn deref_mut(&mut self) -> &mut Services {
        Arc::make_mut(&mut self.0)
    }
}

/// The fields of [`AppState`].
#[derive(Clone)]
pub struct Services {
    /// The database pool.
    pub db: Db,
    /// Admin token verification.
    pub auth: Arc<AdminAuth>,
    /// How long a pre-reservation holds its dates.
    pub pre_reservation_ttl: chrono::Duration,
    /// Reservation code source (random; tests may swap it).
    pub codes: CodeGenerator,
    /// The process-wide metrics handle.
    pub metrics: PrometheusHandle,
    /// Requests running longer answer 503 `timeout`.
    pub request_timeout: Duration,
    /// The database probe `healthz` shares between requests.
    pub health: Arc<HealthProbe>,
    /// MercadoPago and WhatsApp: the API client and the webhook keys.
    pub integrations: Arc<Integrations>,
    /// What `GET /api/v1/version` reports: build commit, image, machine, region.
    pub identity: Arc<ServiceIdentity>,
    /// The dates the service accepts.
    pub horizon: BookingHorizon,
    /// The active accommodations, served from memory for a bounded age.
    pub accommodations: Arc<AccommodationCache>,
    /// Whether writes are failing, for `healthz` and `readyz`.
    pub writes: Arc<WriteHealth>,
    /// Per-client request counts for the rate-limited routes.
    pub rate_limiter: Arc<RateLimiter>,
    /// CORS origins and the rate limit.
    pub edge: EdgeConfig,
    /// The iCal export's settings and the feed imports.
    pub calendar: Arc<CalendarSync>,
    /// This machine's region and the primary's: outside the primary, writes are replayed.
    pub regions: Regions,
    /// The region's read replica (`DATABASE_READ_URL`), if any.
    pub replica: Option<Arc<ReadReplica>>,
}

impl Services {
    /// The pool for a read: the replica while it is within its staleness bound, else the
    /// primary ([`crate::store::reads::read_pool`]).
    pub async fn reads(&self) -> &Db {
        crate::store::reads::read_pool(&self.db, self.replica.as_deref()).await
    }
}

impl From<Services> for AppState {
    fn from(services: Services) -> Self {
        Self(Arc::new(services))
    }
}
