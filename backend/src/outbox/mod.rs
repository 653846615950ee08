//! The outbox worker: sends the messages queued in the `outbox` table
//! ([`crate::store::outbox`]) through the WhatsApp Cloud API or, for rows of the `email`
//! channel, over SMTP ([`email`]), with retries. Both channels share everything below: the
//! claim, the backoff, and at most once when a send's outcome is unknown.
//!
//! What it exists for: a reply must survive a Meta outage and a restart, and must never
//! reach the guest twice. The reply is committed with the inbound message that caused it,
//! so nothing is lost before the worker sees it; the worker claims a row (a lease under a
//! fresh token) before sending, so two workers or machines never send the same row; and a
//! row is marked `sent` right after Meta accepts it.
//!
//! The one case no design can settle is a send whose answer never came (a timeout after
//! the request went out): Meta may or may not have sent it, and the Cloud API takes no
//! idempotency key to ask. This worker chooses at most once: such a row becomes `unknown`
//! (counted in `outbox_sends_total{outcome="unknown"}`, kept for an admin to look at) and
//! is not sent again. A guest who got nothing can write again; a guest who got the same
//! booking twice would be confused about which one holds.
//!
//! Every instance runs one worker; stopping it ([`OutboxWorker::stop`]) lets the send in
//! flight finish and hands the rest of its claims back. A worker killed outright (SIGKILL,
//! a lost machine) leaves its claims to run out; the rows are then sent by another worker.
//! That is the one window where a guest can get a message twice: a process killed after
//! Meta accepted a send and before the row was marked. Treating every run-out claim as
//! `unknown` instead would close it, at the price of dropping every reply whose worker died
//! before sending; resending was chosen, since a kill lands mid-send only when Meta is slower
//! than the shutdown grace period.

pub mod cloud_api;
pub mod email;

use std::time::Duration;

use tokio::sync::watch;
use tokio::task::JoinHandle;

pub use self::cloud_api::{CloudApi, SendOutcome};
pub use self::email::Mailer;
pub use crate::config::OutboxTiming;

use crate::db::Db;
use crate::store::{self, outbox};

/// Rows claimed at once: small, so a stopping worker hands back little.
const BATCH: i64 = 10;

/// Labels of `outbox_sends_total`.
pub const SEND_OUTCOMES: [&str; 4] = ["sent", "retried", "failed", "unknown"];

/// Describes the outbox metrics and touches every label with a zero.
pub fn register_metrics() {
    metrics::describe_gauge!(
        "outbox_pending",
        "Messages to guests waiting in the outbox to be sent"
    );
    metrics::describe_counter!(
        "outbox_sends_total",
        "Attempts to send an outbox message, by outcome (sent, retried, failed, unknown)"
    );
    for outcome in SEND_OUTCOMES {
        metrics::counter!("outbox_sends_total", "outcome" => outcome).increment(0);
    }
    metrics::gauge!("outbox_pending").set(0.0);
}

/// The configured senders, one per channel; a worker claims rows of these channels only.
#[derive(Debug, Clone, Default)]
pub struct Senders {
    /// WhatsApp, when `WHATSAPP_ACCESS_TOKEN` and `WHATSAPP_PHONE_NUMBER_ID` are set.
    pub whatsapp: Option<CloudApi>,
    /// E-mail, when `SMTP_URL` and `SMTP_FROM` are set.
    pub email: Option<Mailer>,
}

impl Senders {
    /// The senders the configuration allows, logging the variables a missing one needs.
    pub fn from_config(config: &crate::config::IntegrationsConfig) -> Self {
        Self {
            whatsapp: cloud_api(config),
            email: mailer(config),
        }
    }

    fn channels(&self) -> outbox::Channels {
        outbox::Channels {
            whatsapp: self.whatsapp.is_some(),
            email: self.email.is_some(),
        }
    }

    async fn send(&self, message: &outbox::ClaimedMessage) -> SendOutcome {
        match (message.channel.as_str(), &self.whatsapp, &self.email) {
            ("whatsapp", Some(api), _) => api.send_text(&message.recipient, &message.body).await,
            ("email", _, Some(mailer)) => mailer.send(&message.recipient, &message.body).await,
            // Never claimed (see `channels`); handed on as a refusal rather than a panic.
            _ => SendOutcome::Refused("no_sender".into()),
        }
    }
}

/// A running worker.
#[derive(Debug)]
pub struct OutboxWorker {
    stop: watch::Sender<bool>,
    task: JoinHandle<()>,
}

impl OutboxWorker {
    /// Starts a worker on `db` sending WhatsApp rows only. Without `api` (WhatsApp is not
    /// configured) it sends nothing and only reports how many messages wait.
    pub fn spawn(db: Db, api: Option<CloudApi>, timing: OutboxTiming) -> Self {
        let senders = Senders {
            whatsapp: api,
            email: None,
        };
        Self::spawn_with(db, senders, timing)
    }

    /// Starts a worker on `db` sending the rows of every channel in `senders`.
    pub fn spawn_with(db: Db, senders: Senders, timing: OutboxTiming) -> Self {
        let (stop, stopping) = watch::channel(false);
        let task = tokio::spawn(run(db, senders, timing, stopping));
        Self { stop, task }
    }

    /// Stops the worker after the send in flight, handing its other claims back.
    pub async fn stop(self) {
        let _ = self.stop.send(true);
        if let Err(err) = self.task.await
            && err.is_panic()
        {
            tracing::error!("the outbox worker panicked");
        }
    }
}

async fn run(db: Db, senders: Senders, timing: OutboxTiming, mut stopping: watch::Receiver<bool>) {
    loop {
        let busy = if senders.whatsapp.is_some() || senders.email.is_some() {
            send_due(&db, &senders, &timing, &stopping).await
        } else {
            false
        };
        match outbox::pending(&db).await {
            #[allow(clippy::cast_precision_loss)] // a queue depth is far below 2^52
            Ok(count) => metrics::gauge!("outbox_pending").set(count as f64),
            Err(err) => tracing::warn!(error = %err, "cannot count the outbox"),
        }
        if *stopping.borrow() {
            return;
        }
        if !busy {
            tokio::select! {
                () = tokio::time::sleep(timing.poll_interval) => {}
                _ = stopping.changed() => return,
            }
        }
    }
}

/// Claims and sends one batch; whether there was anything to send.
async fn send_due(
    db: &Db,
    senders: &Senders,
    timing: &OutboxTiming,
    stopping: &watch::Receiver<bool>,
) -> bool {
    let now = store::now();
    let lease = chrono::Duration::from_std(timing.lease()).unwrap_or(chrono::Duration::minutes(1));
    let token = format!("{:032x}", rand::random::<u128>());
    let claimed = match outbox::claim(db, senders.channels(), now, now + lease, &token, BATCH).await
    {
        Ok(claimed) => claimed,
        Err(err) => {
            tracing::warn!(error = %err, "cannot claim outbox messages; will retry");
            return false;
        }
    };
    let busy = !claimed.is_empty();
    for message in claimed {
        if *stopping.borrow() {
            if let Err(err) = outbox::release(db, message.id, &token).await {
                tracing::warn!(outbox_id = message.id, error = %err, "cannot hand an outbox message back; its claim runs out instead");
            }
            continue;
        }
        let outcome = senders.send(&message).await;
        if let Err(err) = record(db, &message, &token, outcome, timing).await {
            tracing::warn!(outbox_id = message.id, error = %err, "cannot record an outbox send");
        }
    }
    busy
}

/// Writes down what became of one send. Logs carry the row id, the attempt and a label,
/// never the recipient or the text.
async fn record(
    db: &Db,
    message: &outbox::ClaimedMessage,
    token: &str,
    outcome: SendOutcome,
    timing: &OutboxTiming,
) -> Result<(), sqlx::Error> {
    let (id, attempt, channel) = (message.id, message.attempts, message.channel.as_str());
    let counted = |outcome: &'static str| {
        metrics::counter!("outbox_sends_total", "outcome" => outcome).increment(1);
    };
    let kept = match outcome {
        SendOutcome::Sent(provider_id) => {
            counted("sent");
            tracing::info!(outbox_id = id, attempt, channel, "outbox message sent");
            outbox::mark_sent(db, id, token, provider_id.as_deref(), store::now()).await?
        }
        SendOutcome::Retry(error)
            if u32::try_from(attempt).unwrap_or(u32::MAX) < timing.max_attempts =>
        {
            counted("retried");
            let wait = timing.backoff(u32::try_from(attempt).unwrap_or(1));
            let next = store::now() + whole_seconds(wait);
            tracing::warn!(outbox_id = id, attempt, channel, error = %error, retry_in_ms = u64::try_from(wait.as_millis()).unwrap_or(u64::MAX), "outbox send failed; will retry");
            outbox::retry_later(db, id, token, next, &error).await?
        }
        SendOutcome::Retry(error) | SendOutcome::Refused(error) => {
            counted("failed");
            tracing::error!(outbox_id = id, attempt, channel, error = %error, "outbox message given up");
            outbox::give_up(db, id, token, "failed", &error).await?
        }
        SendOutcome::Unknown(error) => {
            counted("unknown");
            tracing::error!(outbox_id = id, attempt, channel, error = %error, "outbox send outcome unknown; not sending it again");
            outbox::give_up(db, id, token, "unknown", &error).await?
        }
    };
    if !kept {
        tracing::warn!(outbox_id = id, "an outbox claim ran out during its send");
    }
    Ok(())
}

/// `wait` in whole seconds, rounded up and at least one: the database keeps whole-second
/// timestamps (`store::now`).
fn whole_seconds(wait: Duration) -> chrono::Duration {
    let seconds = wait.as_secs() + u64::from(wait.subsec_nanos() > 0);
    chrono::Duration::seconds(i64::try_from(seconds.max(1)).unwrap_or(i64::MAX / 1000))
}

/// The client for the configured WhatsApp number, or `None` (with the variable to set
/// logged) when a token or phone number ID is missing.
pub fn cloud_api(config: &crate::config::IntegrationsConfig) -> Option<CloudApi> {
    match (
        &config.whatsapp_access_token,
        &config.whatsapp_phone_number_id,
    ) {
        (Some(token), Some(number)) => Some(CloudApi::new(
            &config.whatsapp_api_url,
            number,
            token.clone(),
            config.outbox.send_timeout,
        )),
        _ => {
            tracing::warn!(
                "WHATSAPP_ACCESS_TOKEN or WHATSAPP_PHONE_NUMBER_ID is not set: WhatsApp replies \
                 are queued in the outbox but not sent"
            );
            None
        }
    }
}

/// The SMTP client, or `None` (logged) when `SMTP_URL` is not set or cannot be used.
pub fn mailer(config: &crate::config::IntegrationsConfig) -> Option<Mailer> {
    let (Some(url), Some(from)) = (&config.smtp_url, &config.smtp_from) else {
        tracing::info!(
            "SMTP_URL is not set: payment confirmations of web bookings are not e-mailed"
        );
        return None;
    };
    match Mailer::new(url, from, config.outbox.send_timeout) {
        Ok(mailer) => Some(mailer),
        Err(why) => {
            tracing::error!("{why}: payment confirmations are not e-mailed");
            None
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn waits_round_up_to_whole_seconds() {
        assert_eq!(whole_seconds(Duration::from_millis(20)).num_seconds(), 1);
        assert_eq!(whole_seconds(Duration::from_secs(2)).num_seconds(), 2);
        assert_eq!(whole_seconds(Duration::from_millis(2001)).num_seconds(), 3);
    }
}
