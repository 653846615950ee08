//! The cross-channel round: the guarantee must hold between channels too. Another channel's
//! booking arrives as an iCal feed the service imports; while its block stands, N identical
//! pre-reserves of the same dates must all get 409 `date_overlap` and none may win.
//!
//! The round serves the other channel's feed itself, on a loopback port of this machine, so
//! it runs against a service on this machine that accepts loopback feeds
//! (`CALENDAR_ALLOW_PRIVATE_FEEDS=on`, as the rehearsal and the tests start it). Steps: add
//! the feed through the admin API, sync, check that the feed's block is in place, race,
//! then remove the feed (its block goes with it) and cancel anything that won.

use anyhow::{Context, bail};
use serde::Deserialize;

use super::admin::AdminToken;
use super::api::{self, Stay};
use super::judge::Outcome;
use super::ledger::Ledger;
use super::plan::OverlapPlan;
use super::race::race_round;
use super::report::{ChannelRound, Check, probe as checked};
use crate::config::Target;
use crate::verdict::Verdict;

/// One imported feed as the admin API lists it (the fields the round reads).
#[derive(Debug, Deserialize)]
struct Import {
    id: i64,
    url: String,
    blocks: i64,
    last_error: Option<String>,
}

#[derive(Debug, Deserialize)]
struct Calendar {
    import_enabled: bool,
    imports: Vec<Import>,
}

/// Runs the round on a free window of `accommodation_id`. `Err` when it could not run (no
/// admin token, the admin API refused, no free window).
pub async fn run(
    client: &reqwest::Client,
    target: &Target,
    plan: &OverlapPlan,
    accommodation_id: i64,
    ledger: &Ledger,
) -> anyhow::Result<ChannelRound> {
    let Some(token) = plan.admin_token.as_ref() else {
        bail!(
            "the cross-channel round adds a calendar feed through the admin API: it needs the \
             admin token (drop --no-cleanup)"
        );
    };
    let today = chrono::Utc::now().date_naive();
    let stay = api::find_free_window(
        client,
        target,
        accommodation_id,
        plan.nights,
        today,
        plan.admin_token.as_ref().map(AdminToken::expose),
    )
    .await?;
    let feed = FeedServer::start(stay, &plan.run_id).await?;
    let admin = Admin {
        client,
        target,
        token,
        accommodation_id,
    };
    let import_id = admin.add_feed(&feed.url).await?;
    let import = admin.sync_and_read(import_id).await;
    let measured = race_the_block(target, plan, accommodation_id, stay, ledger).await;
    let cleanup = admin
        .clean_up(import_id, measured.as_ref().ok(), ledger)
        .await;
    let (winners, conflicts, others) = measured?;
    let import = import?;
    let race = if winners.is_empty() && others == 0 {
        checked(
            "cross_channel_race",
            Verdict::Pass,
            format!(
                "all {conflicts} pre-reserves of the imported block {stay} got 409 date_overlap"
            ),
        )
    } else {
        checked(
            "cross_channel_race",
            Verdict::Fail,
            format!(
                "{} of {} pre-reserves of {stay} won although another channel's imported block \
                 holds those dates ({} other answers): a cross-channel double booking",
                winners.len(),
                plan.concurrency,
                others
            ),
        )
    };
    let verdict = Verdict::combine([import.verdict, race.verdict, cleanup.verdict]);
    Ok(ChannelRound {
        check_in: stay.check_in,
        check_out: stay.check_out,
        import,
        winners,
        conflicts,
        others,
        race,
        cleanup,
        verdict,
    })
}

/// N identical pre-reserves of the blocked stay: (winners' codes, conflicts, others).
async fn race_the_block(
    target: &Target,
    plan: &OverlapPlan,
    accommodation_id: i64,
    stay: Stay,
    ledger: &Ledger,
) -> anyhow::Result<(Vec<String>, usize, usize)> {
    let raced = race_round(target, plan, accommodation_id, stay, ledger).await?;
    let mut winners = Vec::new();
    let (mut conflicts, mut others) = (0, 0);
    for outcome in raced.outcomes {
        match outcome.outcome {
            Outcome::Created { code } => winners.push(code),
            Outcome::DateOverlap => conflicts += 1,
            Outcome::Other { .. } => others += 1,
        }
    }
    Ok((winners, conflicts, others))
}

/// The admin calls of the round.
struct Admin<'a> {
    client: &'a reqwest::Client,
    target: &'a Target,
    token: &'a AdminToken,
    accommodation_id: i64,
}

impl Admin<'_> {
    fn calendar_path(&self) -> String {
        format!(
            "/api/v1/admin/accommodations/{}/calendar",
            self.accommodation_id
        )
    }

    async fn send(&self, request: reqwest::RequestBuilder, what: &str) -> anyhow::Result<String> {
        let response = request
            .bearer_auth(self.token.expose())
            .send()
            .await
            .map_err(|e| anyhow::anyhow!("{what}: {}", api::error_chain(&e)))?;
        let status = response.status();
        let body = response.text().await.unwrap_or_default();
        if !status.is_success() {
            bail!(
                "{what} answered {status}: {} (a service without calendar sync answers 404)",
                super::judge::truncate(&body)
            );
        }
        Ok(body)
    }

    async fn add_feed(&self, url: &str) -> anyhow::Result<i64> {
        let endpoint = self
            .target
            .endpoint(&format!("{}/imports", self.calendar_path()));
        let what = format!("POST {endpoint}");
        let body = self
            .send(
                self.client
                    .post(&endpoint)
                    .json(&serde_json::json!({ "url": url })),
                &what,
            )
            .await?;
        let import: Import = serde_json::from_str(&body)
            .with_context(|| format!("{what} answered an unexpected shape: {body}"))?;
        Ok(import.id)
    }

    /// Syncs every feed, then checks that this one holds exactly its block.
    async fn sync_and_read(&self, import_id: i64) -> anyhow::Result<Check> {
        let sync = self.target.endpoint("/api/v1/admin/calendar/sync");
        self.send(self.client.post(&sync), &format!("POST {sync}"))
            .await?;
        let endpoint = self.target.endpoint(&self.calendar_path());
        let what = format!("GET {endpoint}");
        let body = self.send(self.client.get(&endpoint), &what).await?;
        let calendar: Calendar = serde_json::from_str(&body)
            .with_context(|| format!("{what} answered an unexpected shape: {body}"))?;
        let import = calendar.imports.iter().find(|i| i.id == import_id);
        Ok(match import {
            Some(import) if import.blocks == 1 && import.last_error.is_none() => checked(
                "cross_channel_import",
                Verdict::Pass,
                format!("the feed (import {}) synced and holds its block", import.id),
            ),
            Some(import) => checked(
                "cross_channel_import",
                Verdict::Fail,
                format!(
                    "the feed {} holds {} block(s) after a sync, expected 1 (import is {}; last \
                     error: {}); the service must import it (CALENDAR_IMPORT=on) and reach this \
                     machine's loopback (CALENDAR_ALLOW_PRIVATE_FEEDS=on)",
                    import.url,
                    import.blocks,
                    if calendar.import_enabled { "on" } else { "off" },
                    import.last_error.as_deref().unwrap_or("none")
                ),
            ),
            None => checked(
                "cross_channel_import",
                Verdict::Fail,
                format!("import {import_id} is missing from {endpoint}"),
            ),
        })
    }

    /// Removes the feed (its block goes with it) and cancels whatever won.
    async fn clean_up(
        &self,
        import_id: i64,
        raced: Option<&(Vec<String>, usize, usize)>,
        ledger: &Ledger,
    ) -> Check {
        let mut problems = Vec::new();
        let endpoint = self
            .target
            .endpoint(&format!("{}/imports/{import_id}", self.calendar_path()));
        let what = format!("DELETE {endpoint}");
        if let Err(err) = self.send(self.client.delete(&endpoint), &what).await {
            problems.push(format!("{err:#}"));
        }
        for code in raced.map(|r| r.0.as_slice()).unwrap_or_default() {
            match api::cancel(self.client, self.target, code, self.token.expose()).await {
                Ok(()) => ledger.settle(code),
                Err(reason) => problems.push(format!("{code}: {reason}")),
            }
        }
        if problems.is_empty() {
            checked(
                "cross_channel_cleanup",
                Verdict::Pass,
                "the feed and its block are gone",
            )
        } else {
            checked("cross_channel_cleanup", Verdict::Fail, problems.join("; "))
        }
    }
}

/// The other channel: one feed with one all-day event, served on 127.0.0.1 until dropped.
struct FeedServer {
    url: String,
    task: tokio::task::JoinHandle<()>,
}

impl FeedServer {
    async fn start(stay: Stay, run_id: &str) -> anyhow::Result<FeedServer> {
        let feed = format!(
            "BEGIN:VCALENDAR\r\nVERSION:2.0\r\nPRODID:-//cabanas overlap//other channel//EN\r\n\
             BEGIN:VEVENT\r\nUID:{run_id}@overlap\r\nDTSTAMP:{}\r\nDTSTART;VALUE=DATE:{}\r\n\
             DTEND;VALUE=DATE:{}\r\nSUMMARY:Reserved\r\nEND:VEVENT\r\nEND:VCALENDAR\r\n",
            chrono::Utc::now().format("%Y%m%dT%H%M%SZ"),
            stay.check_in.format("%Y%m%d"),
            stay.check_out.format("%Y%m%d"),
        );
        let path = format!("/overlap/{run_id}.ics");
        let app = axum::Router::new().route(
            &path,
            axum::routing::get(move || {
                let feed = feed.clone();
                async move { ([("content-type", "text/calendar")], feed) }
            }),
        );
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .context("opening a loopback port for the cross-channel feed")?;
        let addr = listener.local_addr()?;
        let task = tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        Ok(FeedServer {
            url: format!("http://{addr}{path}"),
            task,
        })
    }
}

impl Drop for FeedServer {
    fn drop(&mut self) {
        self.task.abort();
    }
}
