//! Where this machine runs and where writes go: `FLY_REGION` and `PRIMARY_REGION` (Fly sets
//! both; `PRIMARY_REGION` from fly.toml's `primary_region`,
//! <https://fly.io/docs/reference/configuration/#primary-region>), plus the optional read
//! replica of the machine's own region (`DATABASE_READ_URL`, `DATABASE_READ_MAX_LAG_MS`).

use std::time::Duration;

use super::database::DatabaseUrl;
use super::error::ConfigError;
use super::lookup::parse_number;

/// The staleness bound of replica reads when `DATABASE_READ_MAX_LAG_MS` is unset.
pub const DEFAULT_READ_MAX_LAG_MS: u64 = 2_000;

/// This machine's region and the primary's.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Regions {
    /// `FLY_REGION`: where this machine runs.
    pub here: Option<String>,
    /// `PRIMARY_REGION`: where the writable database is.
    pub primary: Option<String>,
}

impl Regions {
    /// The primary region when writes must be replayed there: both variables are set and
    /// differ. Unset (a local run, a single-region app) means every write is served here.
    pub fn replay_writes_to(&self) -> Option<&str> {
        match (&self.here, &self.primary) {
            (Some(here), Some(primary)) if here != primary => Some(primary),
            _ => None,
        }
    }
}

/// The read replica of this machine's region.
#[derive(Clone, Debug)]
pub struct ReadReplicaConfig {
    /// `DATABASE_READ_URL` (PostgreSQL only: a streaming replica of `DATABASE_URL`).
    pub url: DatabaseUrl,
    /// `DATABASE_READ_MAX_LAG_MS` (default [`DEFAULT_READ_MAX_LAG_MS`]): reads use the replica
    /// only while its lag is at most this; past it they go to the primary.
    pub max_lag: Duration,
}

/// Reads the region variables; empty values count as unset.
pub fn regions(get: &impl Fn(&str) -> Option<String>) -> Regions {
    let region = |name: &str| get(name).map(|v| v.trim().to_lowercase());
    Regions {
        here: region("FLY_REGION"),
        primary: region("PRIMARY_REGION"),
    }
}

/// Reads `DATABASE_READ_URL` and its bound; `None` when no replica is configured.
pub fn read_replica(
    get: &impl Fn(&str) -> Option<String>,
) -> Result<Option<ReadReplicaConfig>, ConfigError> {
    let max_lag = parse_number::<u64>(
        get,
        "DATABASE_READ_MAX_LAG_MS",
        DEFAULT_READ_MAX_LAG_MS,
        "must be a whole number of milliseconds",
    )?;
    if max_lag == 0 || max_lag > 3_600_000 {
        return Err(ConfigError::invalid(
            "DATABASE_READ_MAX_LAG_MS",
            "must be 1 to 3600000 milliseconds",
        ));
    }
    let Some(url) = get("DATABASE_READ_URL") else {
        return Ok(None);
    };
    let url = DatabaseUrl::parse(&url).map_err(|_| {
        ConfigError::invalid(
            "DATABASE_READ_URL",
            "must start with postgres:// or postgresql:// (a replica of DATABASE_URL)",
        )
    })?;
    if matches!(url, DatabaseUrl::Sqlite(_)) {
        return Err(ConfigError::invalid(
            "DATABASE_READ_URL",
            "must be a PostgreSQL replica: SQLite has no replicas, unset it",
        ));
    }
    Ok(Some(ReadReplicaConfig {
        url,
        max_lag: Duration::from_millis(max_lag),
    }))
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use super::*;

    fn lookup(pairs: &[(&str, &str)]) -> impl Fn(&str) -> Option<String> {
        let map: BTreeMap<String, String> = pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        move |name| map.get(name).cloned()
    }

    #[test]
    fn writes_replay_only_from_a_region_that_is_not_the_primary() {
        let away = regions(&lookup(&[("FLY_REGION", "gru"), ("PRIMARY_REGION", "scl")]));
        assert_eq!(away.replay_writes_to(), Some("scl"));
        let home = regions(&lookup(&[("FLY_REGION", "scl"), ("PRIMARY_REGION", "SCL")]));
        assert_eq!(home.replay_writes_to(), None);
        assert_eq!(
            regions(&lookup(&[("FLY_REGION", "gru")])).replay_writes_to(),
            None
        );
    }

    #[test]
    fn a_replica_is_postgres_with_a_positive_bound() {
        let none = read_replica(&lookup(&[])).unwrap();
        assert!(none.is_none());
        let set = read_replica(&lookup(&[
            ("DATABASE_READ_URL", "postgres://r@127.0.0.1/db"),
            ("DATABASE_READ_MAX_LAG_MS", "500"),
        ]))
        .unwrap()
        .unwrap();
        assert_eq!(set.max_lag, Duration::from_millis(500));
        let sqlite = read_replica(&lookup(&[("DATABASE_READ_URL", "sqlite:x.db")]));
        assert!(
            sqlite
                .unwrap_err()
                .to_string()
                .contains("DATABASE_READ_URL")
        );
        let zero = read_replica(&lookup(&[("DATABASE_READ_MAX_LAG_MS", "0")]));
        assert!(zero.is_err());
    }
}
