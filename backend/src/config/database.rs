//! `DATABASE_URL`: which database, and how to show its URL without its password.

use super::error::ConfigError;
use super::secret::Secret;

/// Where the data lives. The URL may hold a password, so it is kept as a [`Secret`].
#[derive(Clone, Debug)]
pub enum DatabaseUrl {
    /// `postgres://` or `postgresql://`.
    Postgres(Secret),
    /// `sqlite:` (a file path, or `:memory:`).
    Sqlite(Secret),
}

impl DatabaseUrl {
    /// The embedded default used when `DATABASE_URL` is unset.
    pub const DEFAULT_SQLITE: &'static str = "sqlite:cabanas.db?mode=rwc";

    /// Parses a URL, accepting the schemes Fly and local setups hand out.
    pub fn parse(url: &str) -> Result<Self, ConfigError> {
        let url = url.trim();
        if url.starts_with("postgres://") || url.starts_with("postgresql://") {
            Ok(Self::Postgres(Secret::new(url)))
        } else if url.starts_with("sqlite:") {
            Ok(Self::Sqlite(Secret::new(url)))
        } else {
            Err(ConfigError::invalid(
                "DATABASE_URL",
                "must start with postgres://, postgresql:// or sqlite:",
            ))
        }
    }

    /// The URL itself, for connecting.
    pub fn expose(&self) -> &str {
        match self {
            Self::Postgres(url) | Self::Sqlite(url) => url.expose(),
        }
    }

    /// The URL with its password and query string masked, safe to log:
    /// `postgresql://app:****@host/db`. SQLite URLs (a file path) are shown as they are.
    pub fn redacted(&self) -> String {
        match self {
            Self::Postgres(url) => redact_url(url.expose()),
            Self::Sqlite(url) => url.expose().to_owned(),
        }
    }
}

/// Masks the password of `scheme://user:password@host/...` and drops any query string.
///
/// The userinfo ends at the *last* `@`: a password may hold `/`, `?`, `#` or `@`, and
/// splitting at the first of those would print the rest of it.
pub fn redact_url(url: &str) -> String {
    fn without_query(text: &str) -> String {
        match text.split_once('?') {
            Some((base, _)) => format!("{base}?****"),
            None => text.to_string(),
        }
    }
    let Some((scheme, rest)) = url.split_once("://") else {
        return without_query(url);
    };
    match rest.rsplit_once('@') {
        Some((userinfo, host_and_path)) => {
            let user = userinfo.split(':').next().unwrap_or("");
            format!("{scheme}://{user}:****@{}", without_query(host_and_path))
        }
        None => format!("{scheme}://{}", without_query(rest)),
    }
}
