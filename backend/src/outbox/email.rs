//! Sending an outbox row of the `email` channel over SMTP, with lettre's
//! `AsyncSmtpTransport` (https://docs.rs/lettre/latest/lettre/transport/smtp/struct.AsyncSmtpTransport.html).
//!
//! `SMTP_URL` is `smtp://user:password@host:port` or `smtps://user:password@host:port`. lettre
//! reads such a URL with `from_url`, where a bare `smtp://` means no TLS at all; here a bare
//! `smtp://` means STARTTLS, required (lettre's `?tls=required`: the connection fails rather
//! than send the password in clear) unless the host is loopback, where it is used when offered
//! (`?tls=opportunistic`, for a relay on the same machine); `smtps://` is TLS from the first
//! byte (lettre's `Tls::Wrapper`). Certificates are checked against the system's roots.
//!
//! What comes back is sorted like the WhatsApp sends (`super::cloud_api`), since SMTP takes
//! no idempotency key either:
//! - no connection or TLS session was made, lettre stopped before MAIL (no STARTTLS offered,
//!   no common AUTH mechanism), or the server answered 4xx (RFC 5321 §4.2.1, "transient
//!   negative completion"): nothing was accepted, so trying again is safe;
//! - the server refused the login (530, 534, 535, 538; RFC 4954 §6): nothing was taken, and
//!   the row waits through its attempts for the setting to be fixed;
//! - the server answered another 5xx, or the message cannot be built (a bad address): it will
//!   be refused again;
//! - the connection broke or timed out mid-conversation, or an answer could not be read: the
//!   server may have accepted the message (even a broken QUIT comes after the acceptance),
//!   so the worker does not send it again.
//!
//! The password, the recipient and the text never appear in an error: errors are labels.

use std::fmt;
use std::time::Duration;

use lettre::message::header::ContentType;
use lettre::message::{Mailbox, Message};
use lettre::{AsyncSmtpTransport, AsyncTransport, Tokio1Executor};

use super::cloud_api::SendOutcome;
use crate::config::{Secret, SmtpUrl};

/// The subject of a confirmation e-mail.
pub const SUBJECT: &str = "Tu reserva está confirmada";

/// An SMTP client for the configured server and sender. Cheap to clone.
#[derive(Clone)]
pub struct Mailer {
    transport: AsyncSmtpTransport<Tokio1Executor>,
    from: Mailbox,
}

impl fmt::Debug for Mailer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Mailer").field("from", &self.from).finish()
    }
}

impl Mailer {
    /// A client for `url` (`SMTP_URL`) sending as `from` (`SMTP_FROM`), giving up on a
    /// connection or an answer after `timeout`. Errors are labels naming the variable.
    pub fn new(url: &Secret, from: &str, timeout: Duration) -> Result<Self, &'static str> {
        let url =
            SmtpUrl::parse(url.expose()).ok_or("SMTP_URL is not an smtp:// or smtps:// URL")?;
        let from = from
            .parse::<Mailbox>()
            .map_err(|_| "SMTP_FROM is not an e-mail address")?;
        let transport = AsyncSmtpTransport::<Tokio1Executor>::from_url(url.lettre_url().expose())
            .map_err(|_| "SMTP_URL cannot be used (check its host, port and TLS)")?
            .timeout(Some(timeout))
            .build();
        Ok(Self { transport, from })
    }

    /// Sends `body` to the address `to`.
    pub async fn send(&self, to: &str, body: &str) -> SendOutcome {
        let Ok(to) = to.parse::<Mailbox>() else {
            return SendOutcome::Refused("bad_address".into());
        };
        let message = Message::builder()
            .from(self.from.clone())
            .to(to)
            .subject(SUBJECT)
            .header(ContentType::TEXT_PLAIN)
            .body(body.to_owned());
        let Ok(message) = message else {
            return SendOutcome::Refused("unbuildable".into());
        };
        match self.transport.send(message).await {
            Ok(_) => SendOutcome::Sent(None),
            Err(err) => outcome_of(&err),
        }
    }
}

/// What a failed send means for the next attempt (see the module doc).
fn outcome_of(err: &lettre::transport::smtp::Error) -> SendOutcome {
    let code = || err.status().map_or_else(String::new, |c| c.to_string());
    if err.is_transient() {
        SendOutcome::Retry(format!("smtp_{}", code()))
    } else if err.is_permanent() && code().starts_with("53") {
        // 530, 534, 535, 538: the login (RFC 4954 §6). A setting to fix; nothing was taken.
        SendOutcome::Retry(format!("smtp_{}", code()))
    } else if err.is_permanent() {
        SendOutcome::Refused(format!("smtp_{}", code()))
    } else if err.to_string().starts_with("Connection error") || err.is_tls() {
        // lettre reports every failure to open the connection (resolve, connect, the TLS
        // handshake) as its `Connection` kind, which has no `is_` method; nothing was sent.
        SendOutcome::Retry("connect".into())
    } else if err.is_timeout() {
        SendOutcome::Unknown("timeout".into())
    } else if err.is_client() {
        // Raised before MAIL: no STARTTLS offered where it is required, no common AUTH
        // mechanism, an address or text the server cannot take. Nothing was sent; it is a
        // setting to fix, so the row waits through its attempts.
        SendOutcome::Retry("client".into())
    } else {
        SendOutcome::Unknown("transport".into())
    }
}
