//! `RATE_LIMIT_PER_MINUTE` and `ALLOWED_ORIGINS`: the settings of what the service does at
//! its edge (`crate::http::edge`), read with the rest of the configuration.

use axum::http::HeaderValue;

use super::error::ConfigError;

/// The default of `RATE_LIMIT_PER_MINUTE`.
pub const DEFAULT_RATE_LIMIT_PER_MINUTE: u32 = 100;

/// `RATE_LIMIT_PER_MINUTE` and `ALLOWED_ORIGINS`.
#[derive(Clone, Debug)]
pub struct EdgeConfig {
    /// Requests a client may make to a limited route per minute; 0 turns the limit off.
    pub rate_limit_per_minute: u32,
    /// Origins allowed by CORS (`scheme://host[:port]`); empty allows none.
    pub allowed_origins: Vec<String>,
}

impl EdgeConfig {
    /// Reads the two variables through the same lookup as the rest of the configuration.
    pub fn from_lookup(get: &impl Fn(&str) -> Option<String>) -> Result<Self, ConfigError> {
        let rate_limit_per_minute = match get("RATE_LIMIT_PER_MINUTE") {
            Some(v) => v.trim().parse().map_err(|_| ConfigError {
                var: "RATE_LIMIT_PER_MINUTE",
                reason: "must be a whole number of requests (0 turns the limit off)".into(),
            })?,
            None => DEFAULT_RATE_LIMIT_PER_MINUTE,
        };
        let allowed_origins: Vec<String> = get("ALLOWED_ORIGINS")
            .map(|list| {
                list.split(',')
                    .map(|o| o.trim().trim_end_matches('/').to_owned())
                    .filter(|o| !o.is_empty())
                    .collect()
            })
            .unwrap_or_default();
        if let Some(bad) = allowed_origins.iter().position(|o| {
            !(o.starts_with("https://") || o.starts_with("http://"))
                || HeaderValue::from_str(o).is_err()
        }) {
            return Err(ConfigError {
                var: "ALLOWED_ORIGINS",
                reason: format!(
                    "entry {} is not an origin like https://example.com (comma-separated)",
                    bad + 1
                ),
            });
        }
        Ok(Self {
            rate_limit_per_minute,
            allowed_origins,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn origins_are_validated() {
        let parse = |v: &str| {
            let v = v.to_owned();
            EdgeConfig::from_lookup(&move |k: &str| (k == "ALLOWED_ORIGINS").then(|| v.clone()))
        };
        let ok = parse("https://a.example, http://localhost:3000/").unwrap();
        assert_eq!(
            ok.allowed_origins,
            ["https://a.example", "http://localhost:3000"]
        );
        assert_eq!(ok.rate_limit_per_minute, DEFAULT_RATE_LIMIT_PER_MINUTE);
        let err = parse("https://a.example,example.com").unwrap_err();
        assert_eq!(err.var, "ALLOWED_ORIGINS");
        assert!(err.reason.contains("entry 2"), "{}", err.reason);
    }
}
