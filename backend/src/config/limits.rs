//! `HTTP_HEADER_READ_TIMEOUT_SECONDS`, `HTTP_IDLE_TIMEOUT_SECONDS` and `HTTP_MAX_CONNECTIONS`:
//! the connection limits the server (`crate::http::server`) enforces.

use std::time::Duration;

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
