//! `HTTP_HEADER_READ_TIMEOUT_SECONDS`, `HTTP_IDLE_TIMEOUT_SECONDS` and `HTTP_MAX_CONNECTIONS`:
//! the connection limits the server (`crate::http::server`) enforces.

use std::time::Duration;

use super::error::ConfigError;
use super::lookup::{parse_number, parse_seconds};

/// The connection limits of `crate::http::server::serve`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ConnectionLimits {
    /// `HTTP_HEADER_READ_TIMEOUT_SECONDS`, default 10.
    pub header_read_timeout: Duration,
    /// `HTTP_IDLE_TIMEOUT_SECONDS`, default 60.
    pub idle_timeout: Duration,
    /// `HTTP_MAX_CONNECTIONS`, default 1024.
    pub max_connections: usize,
}

impl ConnectionLimits {
    /// Reads the three variables; the timeouts are 1 s to a day, the limit at least 1.
    pub fn from_lookup(get: &impl Fn(&str) -> Option<String>) -> Result<Self, ConfigError> {
        let seconds = |var: &'static str, default: u64| parse_seconds(get, var, default);
        let max_connections = parse_number::<usize>(
            get,
            "HTTP_MAX_CONNECTIONS",
            1024,
            "must be a whole number of connections",
        )?;
        if max_connections == 0 {
            return Err(ConfigError::invalid(
                "HTTP_MAX_CONNECTIONS",
                "must be at least 1",
            ));
        }
        Ok(Self {
            header_read_timeout: seconds("HTTP_HEADER_READ_TIMEOUT_SECONDS", 10)?,
            idle_timeout: seconds("HTTP_IDLE_TIMEOUT_SECONDS", 60)?,
            max_connections,
        })
    }
}
