//! `CALENDAR_*`: the iCal export and the import of other channels' calendars.

use std::time::Duration;

use super::error::ConfigError;
use super::lookup::{parse_number, parse_seconds};

/// How calendars are synced (`crate::calendar`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CalendarConfig {
    /// `CALENDAR_IMPORT` (`on` by default, or `off`): whether feeds are fetched at all. Off,
    /// feeds can still be listed and added, but no sync fetches them and no block is stored.
    pub import_enabled: bool,
    /// `CALENDAR_SYNC_SECONDS`, default 900: how often each instance syncs every feed.
    pub sync_interval: Duration,
    /// `CALENDAR_FETCH_TIMEOUT_SECONDS`, default 20: the whole fetch of one feed.
    pub fetch_timeout: Duration,
    /// `CALENDAR_MAX_FEED_BYTES`, default 1 MiB: a larger feed is refused unread.
    pub max_feed_bytes: usize,
    /// `CALENDAR_ALLOW_PRIVATE_FEEDS` (`false` by default): whether a feed may live on a
    /// loopback, private, link-local or otherwise non-public address. Off, such a URL is
    /// refused when added and when fetched (after DNS), so an admin token cannot make the
    /// service probe its own network; tests and a local rehearsal turn it on.
    pub allow_private_feeds: bool,
    /// `PUBLIC_URL` (e.g. `https://cabanas.example.com`): the base of the export URL the
    /// admin API shows; unset, the URL is shown as a path.
    pub public_url: Option<String>,
}

impl CalendarConfig {
    /// Reads the variables above.
    pub fn from_lookup(get: &impl Fn(&str) -> Option<String>) -> Result<Self, ConfigError> {
        let seconds = |var: &'static str, default: u64| parse_seconds(get, var, default);
        let max_feed_bytes = parse_number::<usize>(
            get,
            "CALENDAR_MAX_FEED_BYTES",
            1024 * 1024,
            "must be a whole number of bytes",
        )?;
        if max_feed_bytes == 0 {
            return Err(ConfigError::invalid(
                "CALENDAR_MAX_FEED_BYTES",
                "must be at least 1",
            ));
        }
        let public_url = get("PUBLIC_URL").map(|u| u.trim().trim_end_matches('/').to_owned());
        if public_url
            .as_deref()
            .is_some_and(|u| !(u.starts_with("https://") || u.starts_with("http://")))
        {
            return Err(ConfigError::invalid(
                "PUBLIC_URL",
                "must start with https:// (or http://)",
            ));
        }
        Ok(Self {
            import_enabled: switch(get, "CALENDAR_IMPORT", true)?,
            sync_interval: seconds("CALENDAR_SYNC_SECONDS", 900)?,
            fetch_timeout: seconds("CALENDAR_FETCH_TIMEOUT_SECONDS", 20)?,
            max_feed_bytes,
            allow_private_feeds: switch(get, "CALENDAR_ALLOW_PRIVATE_FEEDS", false)?,
            public_url,
        })
    }
}

fn switch(
    get: &impl Fn(&str) -> Option<String>,
    var: &'static str,
    default: bool,
) -> Result<bool, ConfigError> {
    match get(var).map(|v| v.trim().to_ascii_lowercase()) {
        None => Ok(default),
        Some(v) if matches!(v.as_str(), "on" | "true" | "1" | "yes") => Ok(true),
        Some(v) if matches!(v.as_str(), "off" | "false" | "0" | "no") => Ok(false),
        Some(_) => Err(ConfigError::invalid(var, "must be on or off")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_refuse_private_feeds_and_sync_every_quarter_hour() {
        let config = CalendarConfig::from_lookup(&|_| None).unwrap();
        assert!(config.import_enabled);
        assert!(!config.allow_private_feeds);
        assert_eq!(config.sync_interval, Duration::from_secs(900));
        assert_eq!(config.max_feed_bytes, 1024 * 1024);
    }

    #[test]
    fn a_bad_switch_names_the_variable() {
        let err = CalendarConfig::from_lookup(&|name| {
            (name == "CALENDAR_IMPORT").then(|| "maybe".to_owned())
        })
        .unwrap_err();
        assert!(err.to_string().contains("CALENDAR_IMPORT"), "{err}");
    }
}
