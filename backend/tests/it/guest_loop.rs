//! The guest loop through WhatsApp, on SQLite and PostgreSQL: a guest's message gets its
//! answer (availability, or a pre-reservation with its code) through the outbox, sent to a
//! fake WhatsApp Cloud API on loopback that can answer, fail with 500 or hang. A Meta outage
//! and a restart in between lose nothing and send nothing twice; a confirmed payment is
//! told to the guest the same way; the logs hold no number, name or text.
//!
//! Nothing here waits on time: every wait polls for a state with a bound.

use crate::common;

use std::sync::atomic::{AtomicU8, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode as AxumStatus};
use axum::routing::post;
use axum::{Json, Router};
use backend::config::{DatabaseUrl, OutboxTiming, Secret};
use backend::outbox::{self, OutboxWorker};
use backend::store::outbox::{self as queue, StoredMessage};
use backend::store::reservations;
use backend::{Config, Db};
use common::webhooks::{
    FakeMercadoPago, WA_SECRET, WA_VERIFY, deposit, serve_fake, wa_delivery, wa_post,
};
use common::{Backend, TestApp, monday, plus};
use reqwest::StatusCode;
use serde_json::{Value, json};

/// The guest's number in [`wa_delivery`].
const GUEST: &str = "5491177770000";
/// WHATSAPP_ACCESS_TOKEN of the test apps.
const WA_TOKEN: &str = "EAAG-wa-access-token-5e1c9b";
/// WHATSAPP_PHONE_NUMBER_ID of the test apps.
const PHONE_NUMBER_ID: &str = "106540352242922";
/// How long any awaited state may take before the test fails.
const BOUND: Duration = Duration::from_secs(30);

// ---------------------------------------------------------------- the fake Cloud API

/// How the fake answers.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
#[repr(u8)]
enum Mode {
    Succeed = 0,
    Fail = 1,
    Hang = 2,
}

/// A fake WhatsApp Cloud API: records every request, answers as its mode says.
#[derive(Default)]
struct FakeGraph {
    mode: AtomicU8,
    /// `(mode it met, path, Authorization, body)` of every request.
    requests: Mutex<Vec<(u8, String, String, Value)>>,
}

impl FakeGraph {
    fn set(&self, mode: Mode) {
        self.mode.store(mode as u8, Ordering::SeqCst);
    }

    fn requests(&self) -> Vec<(u8, String, String, Value)> {
        self.requests.lock().unwrap().clone()
    }

    /// The bodies of the requests answered 200.
    fn delivered(&self) -> Vec<Value> {
        self.requests()
            .into_iter()
            .filter(|(mode, ..)| *mode == Mode::Succeed as u8)
            .map(|(.., body)| body)
            .collect()
    }
}

async fn serve_graph() -> (String, Arc<FakeGraph>) {
    let fake = Arc::new(FakeGraph::default());
    let router = Router::new()
        .route(
            "/v24.0/{number}/messages",
            post(
                |State(fake): State<Arc<FakeGraph>>,
                 Path(number): Path<String>,
                 headers: HeaderMap,
                 Json(body): Json<Value>| async move {
                    let mode = fake.mode.load(Ordering::SeqCst);
                    let auth = common::webhooks::auth(&headers);
                    let count = {
                        let mut requests = fake.requests.lock().unwrap();
                        requests.push((mode, format!("/v24.0/{number}/messages"), auth, body));
                        requests.len()
                    };
                    if mode == Mode::Hang as u8 {
                        std::future::pending::<()>().await;
                    }
                    if mode == Mode::Fail as u8 {
                        return (
                            AxumStatus::INTERNAL_SERVER_ERROR,
                            Json(json!({"error": {"code": 1, "message": "An unknown error occurred"}})),
                        );
                    }
                    (
                        AxumStatus::OK,
                        Json(json!({
                            "messaging_product": "whatsapp",
                            "contacts": [{"input": GUEST, "wa_id": GUEST}],
                            "messages": [{"id": format!("wamid.OUT{count}")}],
                        })),
                    )
                },
            ),
        )
        .with_state(fake.clone());
    let base = common::serve_on_loopback(router).await;
    (format!("{base}/v24.0"), fake)
}

// ---------------------------------------------------------------- harness

struct GuestLoop {
    app: TestApp,
    graph: Arc<FakeGraph>,
    mercadopago: Arc<FakeMercadoPago>,
    config: Config,
}

/// Fast timings, so a retry comes within a second or two.
fn fast() -> OutboxTiming {
    OutboxTiming {
        poll_interval: Duration::from_millis(20),
        backoff_base: Duration::from_millis(20),
        backoff_max: Duration::from_millis(100),
        send_timeout: Duration::from_millis(500),
        max_attempts: 1000,
    }
}

async fn spawn(backend: Backend, test: &str) -> Option<GuestLoop> {
    common::capture_logs();
    let (graph_url, graph) = serve_graph().await;
    let (mp_url, mercadopago) = serve_fake().await;
    let mut kept = None;
    let app = TestApp::spawn_with(backend, test, |config| {
        let integrations = &mut config.integrations;
        common::webhooks::use_mercadopago(integrations, mp_url);
        integrations.whatsapp_app_secret = Some(Secret::new(WA_SECRET));
        integrations.whatsapp_verify_token = Some(Secret::new(WA_VERIFY));
        integrations.whatsapp_access_token = Some(Secret::new(WA_TOKEN));
        integrations.whatsapp_phone_number_id = Some(PHONE_NUMBER_ID.into());
        integrations.whatsapp_api_url = graph_url;
        integrations.outbox = fast();
        kept = Some(config.clone());
    })
    .await?;
    let config = kept.expect("the configuration was adjusted");
    Some(GuestLoop {
        app,
        graph,
        mercadopago,
        config,
    })
}

impl GuestLoop {
    /// A worker on the app's own pool.
    fn worker(&self) -> OutboxWorker {
        OutboxWorker::spawn(
            self.app.state.db.clone(),
            outbox::cloud_api(&self.config.integrations),
            self.config.integrations.outbox,
        )
    }

    /// A worker of a freshly started service: its own connection to the same database.
    async fn restarted_worker(&self) -> (OutboxWorker, Db) {
        let config = Config {
            database_url: DatabaseUrl::parse(&self.app.database_url).unwrap(),
            ..self.config.clone()
        };
        let db = Db::connect(&config).await.expect("connect again");
        let worker = OutboxWorker::spawn(
            db.clone(),
            outbox::cloud_api(&config.integrations),
            config.integrations.outbox,
        );
        (worker, db)
    }

    async fn say(&self, message_id: &str, text: &str) {
        let (status, body) =
            wa_post(&self.app, &wa_delivery(message_id, text), Some(WA_SECRET)).await;
        assert_eq!(status, StatusCode::OK, "{body}");
    }

    async fn outbox(&self) -> Vec<StoredMessage> {
        queue::all(&self.app.state.db).await.unwrap()
    }

    async fn status_of(&self, key: &str) -> Option<String> {
        self.outbox()
            .await
            .into_iter()
            .find(|m| m.dedupe_key == key)
            .map(|m| m.status)
    }

    /// Polls until `key`'s row has `status`; fails the test after [`BOUND`].
    async fn until_status(&self, key: &str, status: &str) {
        let deadline = tokio::time::Instant::now() + BOUND;
        while self.status_of(key).await.as_deref() != Some(status) {
            assert!(
                tokio::time::Instant::now() < deadline,
                "{key} never became {status}: {:?}",
                self.outbox().await
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// Polls until the fake has seen `count` requests.
    async fn until_requests(&self, count: usize) {
        let deadline = tokio::time::Instant::now() + BOUND;
        while self.graph.requests().len() < count {
            assert!(
                tokio::time::Instant::now() < deadline,
                "the fake never saw {count} requests"
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
}

fn ddmmyyyy(day: chrono::NaiveDate) -> String {
    day.format("%d/%m/%Y").to_string()
}

/// The reservation code in a reply text.
fn code_in(text: &str) -> String {
    let at = text
        .find("CB-")
        .unwrap_or_else(|| panic!("no code in {text:?}"));
    text[at..at + 11].to_owned()
}

fn text_of(body: &Value) -> &str {
    body["text"]["body"].as_str().unwrap()
}

// ---------------------------------------------------------------- scenarios

on_both_backends!(
    a_booking_reply_survives_an_outage_and_a_restart,
    a_send_without_an_answer_is_not_sent_again,
    two_workers_send_each_message_once,
    a_claim_left_by_a_dead_worker_runs_out,
    availability_is_answered_and_a_paid_deposit_is_told_to_the_guest,
);

/// Meta is down when the guest writes: the reply waits in the outbox through failed
/// attempts and a restart of the service, and is sent once when Meta is back. The same
/// message delivered again books and sends nothing more.
async fn a_booking_reply_survives_an_outage_and_a_restart(backend: Backend) {
    let Some(guest_loop) = spawn(backend, "wa_outage").await else {
        return;
    };
    let app = &guest_loop.app;
    guest_loop.graph.set(Mode::Fail);
    let first = guest_loop.worker();
    let day = monday(3);
    let text = format!(
        "Hola, quiero reservar la cabaña {} del {} al {}",
        app.cabin_id,
        ddmmyyyy(day),
        ddmmyyyy(plus(day, 2))
    );
    guest_loop.say("wamid.BOOK1", &text).await;
    let key = "whatsapp-reply:wamid.BOOK1";
    assert_eq!(guest_loop.status_of(key).await.as_deref(), Some("pending"));
    // Two failed attempts, then the service stops.
    guest_loop.until_requests(2).await;
    first.stop().await;
    let queued = guest_loop.outbox().await;
    assert_eq!(queued.len(), 1);
    assert_eq!(queued[0].status, "pending");
    assert_eq!(queued[0].last_error.as_deref(), Some("http_500"));
    assert!(guest_loop.graph.delivered().is_empty());

    // Meta is back; a new service on the same database sends the reply, once.
    guest_loop.graph.set(Mode::Succeed);
    let (second, db) = guest_loop.restarted_worker().await;
    guest_loop.until_status(key, "sent").await;
    let delivered = guest_loop.graph.delivered();
    assert_eq!(delivered.len(), 1, "{delivered:?}");
    let reply = &delivered[0];
    assert_eq!(reply["messaging_product"], "whatsapp");
    assert_eq!(reply["to"], GUEST);
    assert_eq!(reply["type"], "text");
    let code = code_in(text_of(reply));
    let (_, path, auth, _) = guest_loop.graph.requests().pop().unwrap();
    assert_eq!(path, format!("/v24.0/{PHONE_NUMBER_ID}/messages"));
    assert_eq!(auth, format!("Bearer {WA_TOKEN}"));
    assert!(
        text_of(reply).contains("https://mp.example/checkout/"),
        "{reply}"
    );
    let reservation = reservations::find_by_code(&app.state.db, &code)
        .await
        .unwrap()
        .expect("the code in the reply is a stored reservation");
    assert_eq!(reservation.channel, "whatsapp");
    assert_eq!(reservation.contact_phone, GUEST);
    assert_eq!(reservation.contact_name, "Ana Pérez");
    assert_eq!(
        (reservation.check_in, reservation.check_out),
        (day, plus(day, 2))
    );
    assert_eq!(
        guest_loop.outbox().await[0].provider_message_id.as_deref(),
        Some(format!("wamid.OUT{}", guest_loop.graph.requests().len()).as_str())
    );

    // Meta delivers the message again: nothing is booked or queued. A later message is
    // the sync point: once its reply is out, the redelivery's would have been too.
    guest_loop.say("wamid.BOOK1", &text).await;
    guest_loop.say("wamid.HELLO", "hola").await;
    guest_loop
        .until_status("whatsapp-reply:wamid.HELLO", "sent")
        .await;
    let delivered = guest_loop.graph.delivered();
    assert_eq!(delivered.len(), 2, "{delivered:?}");
    assert!(
        text_of(&delivered[1]).contains("disponibilidad cabaña 2"),
        "{}",
        delivered[1]
    );
    assert_eq!(app.bookings_on(day, plus(day, 2)).await, 1);
    second.stop().await;
    db.close().await;
}

/// A send that got no answer may have reached the guest: it is marked `unknown` and not
/// sent again, while the next message goes out normally.
async fn a_send_without_an_answer_is_not_sent_again(backend: Backend) {
    let Some(guest_loop) = spawn(backend, "wa_hang").await else {
        return;
    };
    guest_loop.graph.set(Mode::Hang);
    let worker = guest_loop.worker();
    guest_loop.say("wamid.HANG1", "hola").await;
    guest_loop
        .until_status("whatsapp-reply:wamid.HANG1", "unknown")
        .await;
    guest_loop.graph.set(Mode::Succeed);
    guest_loop.say("wamid.HANG2", "hola de nuevo").await;
    guest_loop
        .until_status("whatsapp-reply:wamid.HANG2", "sent")
        .await;
    let requests = guest_loop.graph.requests();
    assert_eq!(requests.len(), 2, "the unanswered send was tried again");
    let stored = guest_loop.outbox().await;
    assert_eq!(stored[0].last_error.as_deref(), Some("timeout"));
    assert_eq!(stored[0].attempts, 1);
    worker.stop().await;
}

/// Two services share the queue: every message is sent exactly once.
async fn two_workers_send_each_message_once(backend: Backend) {
    let Some(guest_loop) = spawn(backend, "wa_two_workers").await else {
        return;
    };
    guest_loop.graph.set(Mode::Succeed);
    let (other, db) = guest_loop.restarted_worker().await;
    let one = guest_loop.worker();
    for n in 0..12 {
        guest_loop.say(&format!("wamid.MANY{n}"), "hola").await;
    }
    for n in 0..12 {
        guest_loop
            .until_status(&format!("whatsapp-reply:wamid.MANY{n}"), "sent")
            .await;
    }
    one.stop().await;
    other.stop().await;
    assert_eq!(guest_loop.graph.requests().len(), 12);
    assert!(guest_loop.outbox().await.iter().all(|m| m.attempts == 1));
    db.close().await;
}

/// A worker that died holding a claim holds it no longer than its lease: another worker
/// then sends the row, and the dead claim's token can no longer mark it.
async fn a_claim_left_by_a_dead_worker_runs_out(backend: Backend) {
    let Some(guest_loop) = spawn(backend, "wa_dead_claim").await else {
        return;
    };
    guest_loop.graph.set(Mode::Succeed);
    guest_loop.say("wamid.DEAD1", "hola").await;
    let db = &guest_loop.app.state.db;
    let now = backend::store::now();
    let lease = chrono::Duration::seconds(1);
    let whatsapp = queue::Channels {
        whatsapp: true,
        email: false,
    };
    let claimed = queue::claim(db, whatsapp, now, now + lease, "dead-worker", 10)
        .await
        .unwrap();
    assert_eq!(claimed.len(), 1);
    // While the lease holds, nobody else can claim the row.
    let again = queue::claim(db, whatsapp, now, now + lease, "live-worker", 10)
        .await
        .unwrap();
    assert!(again.is_empty(), "{again:?}");
    let worker = guest_loop.worker();
    guest_loop
        .until_status("whatsapp-reply:wamid.DEAD1", "sent")
        .await;
    worker.stop().await;
    assert_eq!(guest_loop.graph.requests().len(), 1);
    let stale = queue::mark_sent(db, claimed[0].id, "dead-worker", None, now).await;
    assert!(!stale.unwrap(), "a run-out claim marked the row");
    assert_eq!(guest_loop.outbox().await[0].attempts, 2);
}

/// An availability question is answered; a booking's paid deposit is told to the guest on
/// WhatsApp, once however often MercadoPago repeats the notification.
async fn availability_is_answered_and_a_paid_deposit_is_told_to_the_guest(backend: Backend) {
    let Some(guest_loop) = spawn(backend, "wa_paid").await else {
        return;
    };
    let app = &guest_loop.app;
    guest_loop.graph.set(Mode::Succeed);
    let worker = guest_loop.worker();
    let day = monday(5);
    let dates = format!("del {} al {}", ddmmyyyy(day), ddmmyyyy(plus(day, 2)));
    let cabin = app.cabin_id;
    guest_loop
        .say(
            "wamid.AV1",
            &format!("disponibilidad cabaña {cabin} {dates}"),
        )
        .await;
    guest_loop
        .until_status("whatsapp-reply:wamid.AV1", "sent")
        .await;
    guest_loop
        .say("wamid.BK1", &format!("reservar cabaña {cabin} {dates}"))
        .await;
    guest_loop
        .until_status("whatsapp-reply:wamid.BK1", "sent")
        .await;
    guest_loop
        .say(
            "wamid.AV2",
            &format!("disponibilidad cabaña {cabin} {dates}"),
        )
        .await;
    guest_loop
        .until_status("whatsapp-reply:wamid.AV2", "sent")
        .await;
    let delivered = guest_loop.graph.delivered();
    assert!(
        text_of(&delivered[0]).contains(": disponible"),
        "{}",
        delivered[0]
    );
    assert!(
        text_of(&delivered[2]).contains(": ocupada"),
        "{}",
        delivered[2]
    );
    let code = code_in(text_of(&delivered[1]));

    let (_, booked) = app.get(&format!("/api/v1/reservations/{code}")).await;
    let paid = deposit(&booked);
    guest_loop
        .mercadopago
        .put_payment("9101", "approved", &code, paid);
    for _ in 0..2 {
        let (status, body) = common::webhooks::notify(app, "9101").await;
        assert_eq!(status, StatusCode::OK, "{body}");
    }
    let key = format!("payment-confirmed:{code}");
    guest_loop.until_status(&key, "sent").await;
    let delivered = guest_loop.graph.delivered();
    assert_eq!(delivered.len(), 4, "{booked}: {delivered:?}");
    assert_eq!(delivered[3]["to"], GUEST);
    assert!(text_of(&delivered[3]).contains(&code), "{}", delivered[3]);
    assert!(
        text_of(&delivered[3]).contains("confirmada"),
        "{}",
        delivered[3]
    );
    worker.stop().await;
}

/// Failed and successful sends are logged by row id and label: no number, name, text or
/// token reaches the logs.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn the_worker_logs_no_contact_detail() {
    let Some(guest_loop) = spawn(Backend::Sqlite, "wa_logs").await else {
        return;
    };
    guest_loop.graph.set(Mode::Fail);
    let worker = guest_loop.worker();
    let day = monday(7);
    let text = format!(
        "reservar cabaña {} del {} al {}",
        guest_loop.app.cabin_id,
        ddmmyyyy(day),
        ddmmyyyy(plus(day, 1))
    );
    guest_loop.say("wamid.LOG1", &text).await;
    guest_loop.until_requests(2).await;
    guest_loop.graph.set(Mode::Succeed);
    guest_loop
        .until_status("whatsapp-reply:wamid.LOG1", "sent")
        .await;
    worker.stop().await;
    let reply = guest_loop.graph.delivered().pop().unwrap();
    let logs = common::captured_logs();
    for expected in [
        "outbox send failed; will retry",
        "http_500",
        "outbox message sent",
    ] {
        assert!(logs.contains(expected), "expected {expected:?} in the logs");
    }
    for private in [GUEST, "Ana Pérez", text.as_str(), text_of(&reply), WA_TOKEN] {
        assert!(!logs.contains(private), "{private:?} is in the logs");
    }
}
