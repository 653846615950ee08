//! Calendar sync with other channels: the iCal export of a cabin's busy dates, and the
//! import of other channels' feeds as blocks under the same overlap guarantee as bookings
//! (`crate::store::calendar`).
//!
//! The import runs in every instance (a tokio task [`spawn_sync_worker`] started by
//! `serve`) and on demand (`POST /api/v1/admin/calendar/sync`). A feed that cannot be
//! fetched or read is reported (its `last_error`, the `calendar_sync_failures_total` counter,
//! `calendar_feed_up` at 0) and its existing blocks stay; the other feeds go on.

pub mod fetch;
pub mod ics;

use std::collections::BTreeSet;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use chrono::{DateTime, Utc};
use rand::Rng;
use serde::Serialize;
use tokio::task::JoinHandle;

use self::fetch::{FeedFetcher, Fetched};
use self::ics::FeedError;
use crate::config::CalendarConfig;
use crate::db::Db;
use crate::store::calendar::{self as store, CalendarImport, FeedContent};

/// The failure reasons of `calendar_sync_failures_total` ([`FeedError::reason`]), plus
/// `database` when storing the outcome failed.
pub const FAILURE_REASONS: [&str; 6] = [
    "malformed",
    "too_large",
    "http_status",
    "unreachable",
    "refused_url",
    "database",
];

/// The calendar service the handlers and the worker share.
pub struct CalendarSync {
    fetcher: FeedFetcher,
    config: CalendarConfig,
    /// The feeds the last sync saw, so a removed feed's gauges can be retired.
    known: Mutex<BTreeSet<i64>>,
}

/// What one sync of every feed did.
#[derive(Debug, Clone, Default, Serialize, utoipa::ToSchema)]
pub struct SyncSummary {
    /// Whether imports are switched on (`CALENDAR_IMPORT`); off, nothing was fetched.
    pub import_enabled: bool,
    /// Feeds whose sync succeeded (new content stored, or unchanged).
    pub synced: usize,
    /// Feeds whose sync failed; their blocks were kept.
    pub failed: usize,
}

impl CalendarSync {
    /// The service for `config`.
    pub fn new(config: &CalendarConfig) -> Self {
        Self {
            fetcher: FeedFetcher::new(config),
            config: config.clone(),
            known: Mutex::default(),
        }
    }

    /// The settings it runs with.
    pub fn config(&self) -> &CalendarConfig {
        &self.config
    }

    /// Whether `url` may be added as a feed (see [`fetch::check_url`]).
    pub fn check_url(&self, url: &str) -> Result<(), String> {
        fetch::check_url(url, self.config.allow_private_feeds)
    }

    /// Syncs every feed of every cabin, one after the other. `Err` only when the feeds
    /// cannot be listed; a failing feed is recorded and counted, not returned.
    pub async fn sync_all(&self, db: &Db) -> Result<SyncSummary, sqlx::Error> {
        let mut summary = SyncSummary {
            import_enabled: self.config.import_enabled,
            ..SyncSummary::default()
        };
        if !self.config.import_enabled {
            return Ok(summary);
        }
        let imports = store::imports(db, None).await?;
        self.retire_removed(&imports);
        for import in imports {
            if self.sync_feed(db, &import).await {
                summary.synced += 1;
            } else {
                summary.failed += 1;
            }
        }
        Ok(summary)
    }

    /// A removed feed's gauges would otherwise keep their last value until a restart, and
    /// its age would raise the stale-feed alert: they become NaN, which no comparison in a
    /// rule matches.
    fn retire_removed(&self, imports: &[CalendarImport]) {
        let current: BTreeSet<i64> = imports.iter().map(|i| i.id).collect();
        let mut known = self
            .known
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        for gone in known.difference(&current) {
            let feed = gone.to_string();
            metrics::gauge!("calendar_feed_up", "feed" => feed.clone()).set(f64::NAN);
            metrics::gauge!("calendar_feed_last_success_timestamp_seconds", "feed" => feed)
                .set(f64::NAN);
        }
        *known = current;
    }

    /// Syncs one feed; whether it succeeded. Records the outcome and the metrics.
    async fn sync_feed(&self, db: &Db, import: &CalendarImport) -> bool {
        let now = crate::store::now();
        let outcome = self.fetch_and_store(db, import, now).await;
        let feed = import.id.to_string();
        let stored = match &outcome {
            Ok(()) => Ok(()),
            Err(err) => {
                metrics::counter!("calendar_sync_failures_total", "reason" => err.reason)
                    .increment(1);
                // The feed id, never its URL: a channel's URL often carries its own secret.
                tracing::warn!(feed = import.id, reason = err.reason, error = %err, "calendar feed sync failed; its blocks are kept");
                store::record_failure(db, import.id, &err.detail, now).await
            }
        };
        if let Err(err) = stored {
            metrics::counter!("calendar_sync_failures_total", "reason" => "database").increment(1);
            tracing::warn!(feed = import.id, error = %err, "cannot record a calendar sync");
        }
        let ok = outcome.is_ok();
        let last_success = if ok {
            Some(now)
        } else {
            import.last_success_at
        };
        metrics::gauge!("calendar_feed_up", "feed" => feed.clone()).set(f64::from(u8::from(ok)));
        metrics::gauge!("calendar_feed_last_success_timestamp_seconds", "feed" => feed)
            .set(freshness(last_success, import.created_at));
        ok
    }

    async fn fetch_and_store(
        &self,
        db: &Db,
        import: &CalendarImport,
        now: DateTime<Utc>,
    ) -> Result<(), FeedError> {
        let database = |err: sqlx::Error| {
            tracing::warn!(feed = import.id, error = %err, "cannot store a calendar feed");
            FeedError::new(
                "database",
                "the feed was read but could not be stored (a database error); the next sync \
                 tries again",
            )
        };
        let fetched = self
            .fetcher
            .fetch(
                &import.url,
                import.etag.as_deref(),
                import.last_modified.as_deref(),
            )
            .await?;
        let (text, etag, last_modified) = match fetched {
            Fetched::NotModified => {
                return store::record_unchanged(db, import.id, now)
                    .await
                    .map_err(database);
            }
            Fetched::Feed {
                text,
                etag,
                last_modified,
            } => (text, etag, last_modified),
        };
        let ranges = ics::busy_ranges(&text, now.date_naive())?;
        let content = FeedContent {
            ranges: ranges.iter().map(|r| (r.start, r.end)).collect(),
            etag,
            last_modified,
        };
        let replaced = store::replace_blocks(db, import.id, import.accommodation_id, content, now)
            .await
            .map_err(database)?;
        if let Some(replaced) = replaced.filter(|r| r.skipped > 0) {
            tracing::info!(
                feed = import.id,
                skipped = replaced.skipped,
                "calendar feed events overlap bookings here; they were not blocked twice"
            );
        }
        Ok(())
    }
}

/// The gauge value: the last success, or (never synced) when the feed was added, so a feed
/// that never worked still ages into the stale-feed alert.
fn freshness(last_success: Option<DateTime<Utc>>, created_at: DateTime<Utc>) -> f64 {
    last_success.unwrap_or(created_at).timestamp() as f64
}

/// A fresh export secret: 32 random bytes from the thread's CSPRNG, as 64 hex digits.
pub fn new_export_token() -> String {
    let bytes: [u8; 32] = rand::rng().random();
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// Whether `given` is `expected`, in time independent of where they differ.
pub fn token_matches(expected: &str, given: &str) -> bool {
    use subtle::ConstantTimeEq;
    expected.len() == given.len() && bool::from(expected.as_bytes().ct_eq(given.as_bytes()))
}

/// Touches the sync counters with a zero so they are scraped before the first failure.
pub fn register_metrics() {
    for reason in FAILURE_REASONS {
        metrics::counter!("calendar_sync_failures_total", "reason" => reason).increment(0);
    }
}

/// Syncs every feed now and then every `interval` until aborted. Safe in every instance:
/// a feed's replacement is one transaction that locks the feed's row first.
pub fn spawn_sync_worker(db: Db, sync: Arc<CalendarSync>, interval: Duration) -> JoinHandle<()> {
    tokio::spawn(async move {
        let mut ticker = tokio::time::interval(interval);
        ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            ticker.tick().await;
            match sync.sync_all(&db).await {
                Ok(summary) if summary.failed > 0 => {
                    tracing::warn!(
                        synced = summary.synced,
                        failed = summary.failed,
                        "calendar sync"
                    );
                }
                Ok(_) => {}
                Err(err) => tracing::warn!(error = %err, "cannot list calendar feeds; will retry"),
            }
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_compare_whole() {
        let token = new_export_token();
        assert_eq!(token.len(), 64);
        assert!(token_matches(&token, &token.clone()));
        assert!(!token_matches(&token, &token[..63]));
        assert!(!token_matches(&token, &new_export_token()));
    }
}
