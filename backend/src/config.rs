//! Service configuration, parsed once from the environment into types.
//!
//! Error messages name the variable and the rule it broke, never its value.

use std::net::IpAddr;
use std::time::Duration;

pub mod calendar;
pub mod database;
pub mod edge;
pub mod error;
pub mod horizon;
pub mod integrations;
pub mod limits;
pub mod lookup;
pub mod outbox;
pub mod regions;
pub mod secret;
pub mod smtp;

pub use self::calendar::CalendarConfig;
pub use self::database::{DatabaseUrl, redact_url};
pub use self::edge::EdgeConfig;
pub use self::error::ConfigError;
pub use self::horizon::BookingHorizon;
pub use self::integrations::IntegrationsConfig;
pub use self::limits::ConnectionLimits;
pub use self::outbox::OutboxTiming;
pub use self::regions::{ReadReplicaConfig, Regions};
pub use self::secret::Secret;
pub use self::smtp::SmtpUrl;

use self::lookup::parse_number;

/// Everything the service reads from its environment.
#[derive(Clone, Debug)]
pub struct Config {
    /// `DATABASE_URL`; unset means [`DatabaseUrl::DEFAULT_SQLITE`].
    pub database_url: DatabaseUrl,
    /// Whether `DATABASE_URL` was unset and the embedded default is used.
    pub database_url_defaulted: bool,
    /// `HOST`, default `0.0.0.0`.
    pub host: IpAddr,
    /// `PORT`, default 8080.
    pub port: u16,
    /// `JWT_SECRET` (HS256, at least 32 characters). Unset disables the admin routes:
    /// they then answer 401 to every request.
    pub jwt_secret: Option<Secret>,
    /// `ADMIN_ALLOWED_EMAILS`, comma-separated, compared case-insensitively.
    pub admin_emails: Vec<String>,
    /// `PRE_RESERVATION_TTL_MINUTES`, default 30; 0 makes pre-reservations expire at once.
    pub pre_reservation_ttl_minutes: u32,
    /// `EXPIRY_SWEEP_SECONDS`, default 30: how often each instance expires stale holds.
    pub expiry_sweep_interval: Duration,
    /// `DATABASE_MAX_CONNECTIONS`, default 10 (PostgreSQL) / 5 (SQLite).
    pub database_max_connections: Option<u32>,
    /// `REQUEST_TIMEOUT_SECONDS`, default 15.
    pub request_timeout: Duration,
    /// `HEALTH_CACHE_MS`, default 250: how long `healthz` reuses a database probe (0: never).
    pub health_cache: Duration,
    /// `ACCOMMODATIONS_CACHE_MS`, default 1000: how long the active accommodations are served
    /// from memory before they are read again, so how long a change made by another instance
    /// or directly in the database may take to show (0: read every time).
    pub accommodations_cache: Duration,
    /// `RATE_LIMIT_PER_MINUTE` and `ALLOWED_ORIGINS`.
    pub edge: EdgeConfig,
    /// MercadoPago and WhatsApp settings (all optional).
    pub integrations: IntegrationsConfig,
    /// `BOOKING_HORIZON_DAYS` (default 730) and `AVAILABILITY_PAST_DAYS` (default 365).
    pub horizon: BookingHorizon,
    /// `DATABASE_LOCK_TIMEOUT_MS`, default 3000: how long a write waits for a lock (SQLite's
    /// busy timeout, PostgreSQL's `lock_timeout`) before answering 503 `unavailable`.
    pub database_lock_timeout: Duration,
    /// `DATABASE_STATEMENT_TIMEOUT_MS`, default 10000: PostgreSQL's `statement_timeout`.
    pub database_statement_timeout: Duration,
    /// `DATABASE_IDLE_IN_TRANSACTION_TIMEOUT_MS`, default 30000: PostgreSQL ends a session
    /// left idle inside a transaction after this long, releasing its locks.
    pub database_idle_in_transaction_timeout: Duration,
    /// `HTTP_HEADER_READ_TIMEOUT_SECONDS` (10), `HTTP_IDLE_TIMEOUT_SECONDS` (60) and
    /// `HTTP_MAX_CONNECTIONS` (1024).
    pub http_limits: ConnectionLimits,
    /// `CALENDAR_*` and `PUBLIC_URL`: the iCal export and the feed imports.
    pub calendar: CalendarConfig,
    /// `FLY_REGION` and `PRIMARY_REGION`: outside the primary region writes are replayed there.
    pub regions: Regions,
    /// `DATABASE_READ_URL` and `DATABASE_READ_MAX_LAG_MS`: the region's read replica, if any.
    pub read_replica: Option<ReadReplicaConfig>,
}

/// The shortest `JWT_SECRET` accepted, in bytes.
pub const MIN_JWT_SECRET_LEN: usize = 32;

impl Config {
    /// Reads the process environment.
    pub fn from_env() -> Result<Self, ConfigError> {
        Self::from_lookup(|name| std::env::var(name).ok())
    }

    /// Parses configuration from any variable source (the environment, or a map in tests).
    pub fn from_lookup(lookup: impl Fn(&str) -> Option<String>) -> Result<Self, ConfigError> {
        let get = |name: &str| lookup(name).filter(|v| !v.trim().is_empty());

        let (database_url, database_url_defaulted) = match get("DATABASE_URL") {
            Some(url) => (DatabaseUrl::parse(&url)?, false),
            None => (DatabaseUrl::parse(DatabaseUrl::DEFAULT_SQLITE)?, true),
        };
        let host = match get("HOST") {
            Some(h) => h
                .trim()
                .parse()
                .map_err(|_| ConfigError::invalid("HOST", "must be an IP address"))?,
            None => IpAddr::from([0, 0, 0, 0]),
        };
        let port = parse_number::<u16>(&get, "PORT", 8080, "must be a port number 0-65535")?;
        let (jwt_secret, admin_emails) = admin_settings(&get)?;
        let pre_reservation_ttl_minutes = parse_number::<u32>(
            &get,
            "PRE_RESERVATION_TTL_MINUTES",
            30,
            "must be a whole number of minutes",
        )?;
        let sweep = parse_number::<u64>(
            &get,
            "EXPIRY_SWEEP_SECONDS",
            30,
            "must be a whole number of seconds",
        )?;
        if sweep == 0 {
            return Err(ConfigError::invalid(
                "EXPIRY_SWEEP_SECONDS",
                "must be at least 1",
            ));
        }
        let database_max_connections =
            match get("DATABASE_MAX_CONNECTIONS") {
                Some(v) => Some(v.trim().parse::<u32>().ok().filter(|n| *n > 0).ok_or_else(
                    || {
                        ConfigError::invalid(
                            "DATABASE_MAX_CONNECTIONS",
                            "must be a positive integer",
                        )
                    },
                )?),
                None => None,
            };
        let timeout = parse_number::<u64>(
            &get,
            "REQUEST_TIMEOUT_SECONDS",
            15,
            "must be a whole number of seconds",
        )?;
        let health_cache = parse_number::<u64>(
            &get,
            "HEALTH_CACHE_MS",
            250,
            "must be a whole number of milliseconds",
        )?;
        let accommodations_cache = parse_number::<u64>(
            &get,
            "ACCOMMODATIONS_CACHE_MS",
            1000,
            "must be a whole number of milliseconds",
        )?;
        let horizon = BookingHorizon::from_lookup(&get)?;
        let database_lock_timeout = millis(&get, "DATABASE_LOCK_TIMEOUT_MS", 3_000)?;
        let database_statement_timeout = millis(&get, "DATABASE_STATEMENT_TIMEOUT_MS", 10_000)?;
        let database_idle_in_transaction_timeout =
            millis(&get, "DATABASE_IDLE_IN_TRANSACTION_TIMEOUT_MS", 30_000)?;
        let http_limits = ConnectionLimits::from_lookup(&get)?;
        Ok(Self {
            database_url,
            database_url_defaulted,
            host,
            port,
            jwt_secret,
            admin_emails,
            pre_reservation_ttl_minutes,
            expiry_sweep_interval: Duration::from_secs(sweep),
            database_max_connections,
            request_timeout: Duration::from_secs(timeout.max(1)),
            health_cache: Duration::from_millis(health_cache),
            accommodations_cache: Duration::from_millis(accommodations_cache),
            edge: EdgeConfig::from_lookup(&get)?,
            integrations: IntegrationsConfig::from_lookup(&get)?,
            horizon,
            database_lock_timeout,
            database_statement_timeout,
            database_idle_in_transaction_timeout,
            http_limits,
            calendar: CalendarConfig::from_lookup(&get)?,
            regions: regions::regions(&get),
            read_replica: regions::read_replica(&get)?,
        })
    }

    /// Defaults for everything but the database: the starting point for tests and tools.
    pub fn for_database(database_url: DatabaseUrl) -> Self {
        let mut config =
            Self::from_lookup(|_| None).expect("the defaults are a valid configuration");
        config.database_url = database_url;
        config.database_url_defaulted = false;
        config
    }
}

/// `JWT_SECRET` (at least [`MIN_JWT_SECRET_LEN`] bytes) and `ADMIN_ALLOWED_EMAILS`
/// (comma-separated, trimmed and lowercased).
fn admin_settings(
    get: &impl Fn(&str) -> Option<String>,
) -> Result<(Option<Secret>, Vec<String>), ConfigError> {
    let jwt_secret = match get("JWT_SECRET") {
        Some(s) if s.len() < MIN_JWT_SECRET_LEN => {
            return Err(ConfigError::invalid(
                "JWT_SECRET",
                format!("is too short: use at least {MIN_JWT_SECRET_LEN} random characters"),
            ));
        }
        Some(s) => Some(Secret::new(s)),
        None => None,
    };
    let admin_emails = get("ADMIN_ALLOWED_EMAILS")
        .map(|list| {
            list.split(',')
                .map(|e| e.trim().to_ascii_lowercase())
                .filter(|e| !e.is_empty())
                .collect::<Vec<_>>()
        })
        .unwrap_or_default();
    if let Some(bad) = admin_emails.iter().position(|e| !e.contains('@')) {
        return Err(ConfigError::invalid(
            "ADMIN_ALLOWED_EMAILS",
            format!("entry {} is not an email address", bad + 1),
        ));
    }
    Ok((jwt_secret, admin_emails))
}

/// A timeout in milliseconds, 1 ms to an hour.
fn millis(
    get: &impl Fn(&str) -> Option<String>,
    var: &'static str,
    default: u64,
) -> Result<Duration, ConfigError> {
    parse_number::<u64>(get, var, default, "must be a whole number of milliseconds").and_then(
        |ms| match ms {
            1..=3_600_000 => Ok(Duration::from_millis(ms)),
            _ => Err(ConfigError::invalid(
                var,
                "must be 1 to 3600000 milliseconds",
            )),
        },
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    fn parse(vars: &[(&str, &str)]) -> Result<Config, ConfigError> {
        let map: HashMap<String, String> = vars
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        Config::from_lookup(|k| map.get(k).cloned())
    }

    #[test]
    fn defaults_use_embedded_sqlite_and_port_8080() {
        let config = parse(&[]).unwrap();
        assert!(config.database_url_defaulted);
        assert!(matches!(config.database_url, DatabaseUrl::Sqlite(_)));
        assert_eq!(config.port, 8080);
        assert_eq!(config.pre_reservation_ttl_minutes, 30);
        assert!(config.jwt_secret.is_none());
    }

    #[test]
    fn accepts_both_postgres_schemes() {
        for url in ["postgres://a:b@h/d", "postgresql://a:b@h/d"] {
            let config = parse(&[("DATABASE_URL", url)]).unwrap();
            assert!(matches!(config.database_url, DatabaseUrl::Postgres(_)));
        }
    }

    #[test]
    fn errors_name_the_variable_but_not_the_value() {
        let err = parse(&[("DATABASE_URL", "mysql://root:hunter2@h/d")]).unwrap_err();
        assert_eq!(err.var, "DATABASE_URL");
        assert!(!err.to_string().contains("hunter2"));

        let err = parse(&[("JWT_SECRET", "short-secret")]).unwrap_err();
        assert_eq!(err.var, "JWT_SECRET");
        assert!(!err.to_string().contains("short-secret"));

        let err = parse(&[("PORT", "eighty")]).unwrap_err();
        assert!(err.to_string().starts_with("PORT "));
    }

    #[test]
    fn secrets_do_not_print() {
        let config = parse(&[
            (
                "DATABASE_URL",
                "postgresql://app:hunter2@db.internal/cabanas",
            ),
            ("JWT_SECRET", "0123456789abcdef0123456789abcdef-secret"),
        ])
        .unwrap();
        let debug = format!("{config:?}");
        assert!(!debug.contains("hunter2"));
        assert!(!debug.contains("0123456789abcdef"));
    }

    #[test]
    fn redaction_masks_password_and_query() {
        assert_eq!(
            redact_url("postgresql://app:hunter2@host/db"),
            "postgresql://app:****@host/db"
        );
        assert_eq!(
            redact_url("postgres://app:p@ss@host:5432/db?sslmode=require"),
            "postgres://app:****@host:5432/db?****"
        );
        assert_eq!(redact_url("sqlite:cabanas.db"), "sqlite:cabanas.db");
        for password in ["Sec/ret123", "Sec?ret123", "Sec#ret123", "S@c/r?t#1"] {
            let url = format!("postgres://app:{password}@db.internal:5432/cabanas?sslmode=require");
            let shown = redact_url(&url);
            assert_eq!(
                shown, "postgres://app:****@db.internal:5432/cabanas?****",
                "{password}"
            );
        }
        assert_eq!(
            redact_url("postgres://db.internal/cabanas?password=x"),
            "postgres://db.internal/cabanas?****"
        );
    }

    #[test]
    fn the_booking_horizon_is_bounded() {
        let config = parse(&[("BOOKING_HORIZON_DAYS", "90")]).unwrap();
        assert_eq!(config.horizon.future_days, 90);
        assert_eq!(config.horizon.past_days, 365);
        for (var, value) in [
            ("BOOKING_HORIZON_DAYS", "0"),
            ("BOOKING_HORIZON_DAYS", "36501"),
            ("AVAILABILITY_PAST_DAYS", "soon"),
        ] {
            let err = parse(&[(var, value)]).unwrap_err();
            assert_eq!(err.var, var, "{value}");
        }
    }

    #[test]
    fn admin_emails_are_trimmed_and_lowercased() {
        let config = parse(&[("ADMIN_ALLOWED_EMAILS", " Ana@Example.com, ,bo@x.org")]).unwrap();
        assert_eq!(config.admin_emails, vec!["ana@example.com", "bo@x.org"]);
    }
}
