//! A paid deposit of a web booking is e-mailed to the guest through the outbox: once, however
//! often MercadoPago repeats the notification; retried while the mail server fails; and not
//! at all without an address or without `SMTP_URL`. Against a fake SMTP server on loopback.

use crate::common;

use std::sync::Arc;
use std::time::Duration;

use backend::config::{OutboxTiming, Secret};
use backend::outbox::{OutboxWorker, Senders};
use backend::store::outbox::{self as queue, StoredMessage};
use backend::store::reservations;
use backend::store::status::ReservationStatus;
use common::smtp::{self, FakeSmtp};
use common::webhooks::{FakeMercadoPago, deposit, notify, serve_fake};
use common::{Backend, TestApp, monday, plus};
use reqwest::StatusCode;
use serde_json::Value;

/// The guest's address in `common::booking`.
const GUEST_EMAIL: &str = "ana@example.com";
/// The SMTP password of the test apps.
const SMTP_PASSWORD: &str = "smtp-pass-8c2f4a6e1d";
/// The sender of the test apps.
const FROM: &str = "reservas@cabanas.test";
/// How long a poll waits before failing the test.
const BOUND: Duration = Duration::from_secs(30);

struct MailLoop {
    app: TestApp,
    smtp: Arc<FakeSmtp>,
    mercadopago: Arc<FakeMercadoPago>,
    senders: Senders,
    timing: OutboxTiming,
}

/// Fast timings, so a retry comes within a second or two.
fn fast() -> OutboxTiming {
    OutboxTiming {
        poll_interval: Duration::from_millis(20),
        backoff_base: Duration::from_millis(20),
        backoff_max: Duration::from_millis(100),
        send_timeout: Duration::from_secs(5),
        max_attempts: 1000,
    }
}

/// An app with MercadoPago against its fake and, when `with_smtp`, SMTP against the fake.
async fn spawn(backend: Backend, test: &str, with_smtp: bool) -> Option<MailLoop> {
    common::capture_logs();
    let (smtp_addr, smtp) = smtp::serve().await;
    let (mp_url, mercadopago) = serve_fake().await;
    let mut kept = None;
    let app = TestApp::spawn_with(backend, test, |config| {
        let integrations = &mut config.integrations;
        common::webhooks::use_mercadopago(integrations, mp_url);
        if with_smtp {
            integrations.smtp_url = Some(Secret::new(format!(
                "smtp://mailer:{SMTP_PASSWORD}@{smtp_addr}"
            )));
            integrations.smtp_from = Some(format!("Cabañas <{FROM}>"));
        }
        integrations.outbox = fast();
        kept = Some(config.integrations.clone());
    })
    .await?;
    let integrations = kept.expect("the configuration was adjusted");
    Some(MailLoop {
        app,
        smtp,
        mercadopago,
        senders: Senders::from_config(&integrations),
        timing: integrations.outbox,
    })
}

impl MailLoop {
    fn worker(&self) -> OutboxWorker {
        OutboxWorker::spawn_with(self.app.state.db.clone(), self.senders.clone(), self.timing)
    }

    /// Pre-reserves `body` and pays its deposit (MercadoPago notifies twice); the code.
    async fn book_and_pay(&self, body: &Value, payment_id: &str) -> String {
        let (status, booked) = self.app.pre_reserve(body).await;
        assert_eq!(status, StatusCode::CREATED, "{booked}");
        let code = booked["code"].as_str().unwrap().to_owned();
        self.mercadopago
            .put_payment(payment_id, "approved", &code, deposit(&booked));
        for _ in 0..2 {
            let (status, body) = notify(&self.app, payment_id).await;
            assert_eq!(status, StatusCode::OK, "{body}");
        }
        let stay = reservations::find_by_code(&self.app.state.db, &code)
            .await
            .unwrap()
            .unwrap();
        assert_eq!(stay.status, ReservationStatus::Confirmed);
        code
    }

    async fn outbox(&self) -> Vec<StoredMessage> {
        queue::all(&self.app.state.db).await.unwrap()
    }

    /// Polls until the row of `code`'s confirmation is `sent`; fails after [`BOUND`].
    async fn until_sent(&self, code: &str) {
        let key = format!("payment-confirmed:{code}");
        let deadline = tokio::time::Instant::now() + BOUND;
        loop {
            let rows = self.outbox().await;
            if rows
                .iter()
                .any(|m| m.dedupe_key == key && m.status == "sent")
            {
                return;
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "{key} was never sent: {rows:?}"
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// Polls until the fake has refused `count` attempts.
    async fn until_attempts(&self, count: usize) {
        let deadline = tokio::time::Instant::now() + BOUND;
        while self.smtp.attempts() < count {
            assert!(
                tokio::time::Instant::now() < deadline,
                "the mail server never saw {count} attempts"
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
}

fn booking_weeks_ahead(app: &TestApp, weeks: i64) -> Value {
    let day = monday(weeks);
    app.booking(day, plus(day, 2))
}

// ---------------------------------------------------------------- scenarios

on_both_backends!(
    a_paid_web_booking_is_emailed_once,
    a_failing_mail_server_is_retried_until_it_recovers,
    a_mail_without_an_answer_is_not_sent_again,
    no_address_or_no_smtp_queues_no_email,
);

/// The confirmation goes to the guest's address, from `SMTP_FROM`, with the reservation
/// code; a repeated notification sends nothing more.
async fn a_paid_web_booking_is_emailed_once(backend: Backend) {
    let Some(mail_loop) = spawn(backend, "mail_once", true).await else {
        return;
    };
    let worker = mail_loop.worker();
    let code = mail_loop
        .book_and_pay(&booking_weeks_ahead(&mail_loop.app, 3), "7101")
        .await;
    mail_loop.until_sent(&code).await;
    worker.stop().await;
    let rows = mail_loop.outbox().await;
    assert_eq!(rows.len(), 1, "{rows:?}");
    assert_eq!(rows[0].channel, "email");
    assert_eq!(rows[0].recipient, GUEST_EMAIL);
    let mails = mail_loop.smtp.mails();
    assert_eq!(mails.len(), 1, "{mails:?}");
    assert_eq!(mails[0].from, FROM);
    assert_eq!(mails[0].to, vec![GUEST_EMAIL.to_owned()]);
    assert!(mails[0].text.contains(&code), "{}", mails[0].text);
    assert!(
        mails[0].text.contains("To: ana@example.com"),
        "{}",
        mails[0].text
    );
    assert_eq!(mail_loop.smtp.auths().len(), 1, "the password is presented");
}

/// While the server answers 451 the row waits and is tried again; it is sent once when the
/// server recovers.
async fn a_failing_mail_server_is_retried_until_it_recovers(backend: Backend) {
    let Some(mail_loop) = spawn(backend, "mail_retry", true).await else {
        return;
    };
    mail_loop.smtp.set_failing(true);
    let worker = mail_loop.worker();
    let code = mail_loop
        .book_and_pay(&booking_weeks_ahead(&mail_loop.app, 4), "7201")
        .await;
    mail_loop.until_attempts(3).await;
    let rows = mail_loop.outbox().await;
    assert_eq!(rows[0].status, "pending", "{rows:?}");
    assert!(mail_loop.smtp.mails().is_empty());
    mail_loop.smtp.set_failing(false);
    mail_loop.until_sent(&code).await;
    worker.stop().await;
    let mails = mail_loop.smtp.mails();
    assert_eq!(mails.len(), 1, "{mails:?}");
    assert!(mails[0].text.contains(&code), "{}", mails[0].text);
    let rows = mail_loop.outbox().await;
    assert!(rows[0].attempts >= 4, "{rows:?}");
}

/// The server takes the message and hangs up before answering: it may have been accepted,
/// so the row becomes `unknown` and is not sent again.
async fn a_mail_without_an_answer_is_not_sent_again(backend: Backend) {
    let Some(mail_loop) = spawn(backend, "mail_unknown", true).await else {
        return;
    };
    mail_loop.smtp.set_hang_up_after_data(true);
    let worker = mail_loop.worker();
    let code = mail_loop
        .book_and_pay(&booking_weeks_ahead(&mail_loop.app, 7), "7501")
        .await;
    let key = format!("payment-confirmed:{code}");
    let deadline = tokio::time::Instant::now() + BOUND;
    loop {
        let rows = mail_loop.outbox().await;
        if rows
            .iter()
            .any(|m| m.dedupe_key == key && m.status == "unknown")
        {
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "{key} never became unknown: {rows:?}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    mail_loop.smtp.set_hang_up_after_data(false);
    // A later confirmation is sent, so the worker is alive and has passed the row by.
    let later = mail_loop
        .book_and_pay(&booking_weeks_ahead(&mail_loop.app, 9), "7502")
        .await;
    mail_loop.until_sent(&later).await;
    worker.stop().await;
    assert_eq!(mail_loop.smtp.attempts(), 2);
    let mails = mail_loop.smtp.mails();
    assert_eq!(mails.len(), 2, "{mails:?}");
    assert!(mails[0].text.contains(&code), "{}", mails[0].text);
}

/// A guest who gave no address, or a service without `SMTP_URL`: the stay is confirmed and
/// no e-mail is queued.
async fn no_address_or_no_smtp_queues_no_email(backend: Backend) {
    let Some(mail_loop) = spawn(backend, "mail_no_address", true).await else {
        return;
    };
    let mut without_address = booking_weeks_ahead(&mail_loop.app, 5);
    without_address
        .as_object_mut()
        .unwrap()
        .remove("contact_email");
    mail_loop.book_and_pay(&without_address, "7301").await;
    assert!(mail_loop.outbox().await.is_empty());

    let Some(no_smtp) = spawn(backend, "mail_no_smtp", false).await else {
        return;
    };
    assert!(no_smtp.senders.email.is_none());
    no_smtp
        .book_and_pay(&booking_weeks_ahead(&no_smtp.app, 5), "7302")
        .await;
    assert!(no_smtp.outbox().await.is_empty());
}

/// Sends and failures are logged by row id, channel and label: no address, name, code,
/// text or password reaches the logs.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn the_mailer_logs_no_contact_detail() {
    let Some(mail_loop) = spawn(Backend::Sqlite, "mail_logs", true).await else {
        return;
    };
    mail_loop.smtp.set_failing(true);
    let worker = mail_loop.worker();
    let code = mail_loop
        .book_and_pay(&booking_weeks_ahead(&mail_loop.app, 6), "7401")
        .await;
    mail_loop.until_attempts(2).await;
    mail_loop.smtp.set_failing(false);
    mail_loop.until_sent(&code).await;
    worker.stop().await;
    let logs = common::captured_logs();
    for expected in [
        "outbox send failed; will retry",
        "smtp_451",
        "outbox message sent",
    ] {
        assert!(logs.contains(expected), "expected {expected:?} in the logs");
    }
    for private in [GUEST_EMAIL, "Ana Pérez", SMTP_PASSWORD, "¡Recibimos"] {
        assert!(!logs.contains(private), "{private:?} is in the logs");
    }
}
