//! No write answered as done is ever lost (PostgreSQL).
//!
//! Every write route (pre-reserve with and without an idempotency key, confirm, cancel, the
//! MercadoPago and WhatsApp webhooks) is cut off at random points, by the client going away
//! and by the service's own request timeout, against a slow database and a slow MercadoPago.
//! Afterwards no session of the service may sit inside a transaction, no advisory lock may be
//! held, and every write that was answered 2xx must be visible from another connection once
//! `idle_in_transaction_session_timeout` has passed (the timeout is what ended the sessions a
//! cut-off `BEGIN` poisoned, taking every write made on them since).

use crate::common;

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::routing::get;
use axum::{Json, Router};
use backend::config::Secret;
use backend::http::webhooks::hmac_sha256_hex;
use common::{TestApp, monday, plus};
use rand::Rng;
use serde_json::{Value, json};
use sqlx::Connection;
use tower::ServiceExt;

const MP_TOKEN: &str = "APP_USR-cutoff-token-3e1f";
const MP_SECRET: &str = "mp-cutoff-secret-8a2c";
const WA_SECRET: &str = "wa-cutoff-secret-5d7b";
/// What ends a session left inside a transaction; short, so the test can wait it out.
const IDLE_IN_TRANSACTION: Duration = Duration::from_secs(1);

/// A MercadoPago payment read that answers after a random delay of up to 20 ms: the route's
/// upstream call is one more place a request can be cut off.
#[derive(Default)]
struct SlowMercadoPago {
    /// Payment id -> (reservation code, amount).
    payments: Mutex<HashMap<String, (String, f64)>>,
}

async fn serve_slow_mercadopago() -> (String, Arc<SlowMercadoPago>) {
    let fake = Arc::new(SlowMercadoPago::default());
    let router = Router::new()
        .route(
            "/v1/payments/{id}",
            get(
                |State(fake): State<Arc<SlowMercadoPago>>, Path(id): Path<String>| async move {
                    let delay = rand::rng().random_range(0..20);
                    tokio::time::sleep(Duration::from_millis(delay)).await;
                    let payment = fake.payments.lock().unwrap().get(&id).cloned();
                    match payment {
                        Some((code, amount)) => (
                            StatusCode::OK,
                            Json(json!({
                                "id": id.parse::<u64>().unwrap(),
                                "status": "approved",
                                "external_reference": code,
                                "transaction_amount": amount,
                                "currency_id": "ARS",
                            })),
                        ),
                        None => (StatusCode::NOT_FOUND, Json(json!({"message": "not found"}))),
                    }
                },
            ),
        )
        .with_state(fake.clone());
    (common::serve_on_loopback(router).await, fake)
}

/// A write that was answered 2xx, and what must therefore be in the database.
#[derive(Debug)]
enum Answered {
    /// 201: the reservation with this code exists.
    Booked(String),
    /// 200: the reservation is confirmed.
    Confirmed(String),
    /// 200: the reservation is cancelled.
    Cancelled(String),
    /// 200: the payment is recorded; with `confirmed`, its reservation is confirmed.
    Paid {
        payment_id: String,
        code: String,
        confirmed: bool,
    },
    /// 200: the message is stored.
    Message(String),
}

/// Reads a write's answer: what it promised, when it was a success.
type ReadAnswer = Box<dyn FnOnce(StatusCode, &Value) -> Option<Answered> + Send>;

/// One write request of the storm, and how to read its answer.
struct Write {
    request: axum::http::Request<axum::body::Body>,
    on_success: ReadAnswer,
}

fn post_json(path: &str) -> axum::http::request::Builder {
    axum::http::Request::post(path).header("content-type", "application/json")
}

fn pre_reserve(app: &TestApp, day: chrono::NaiveDate, key: Option<String>) -> Write {
    let body = app.booking(day, plus(day, 1)).to_string();
    let mut request = post_json("/api/v1/reservations/pre-reserve");
    if let Some(key) = key {
        request = request.header("idempotency-key", key);
    }
    Write {
        request: request.body(body.into()).unwrap(),
        on_success: Box::new(|status, body| {
            (status == StatusCode::CREATED)
                .then(|| Answered::Booked(body["code"].as_str().unwrap().to_owned()))
        }),
    }
}

fn admin(code: &str, action: &'static str) -> Write {
    let request = axum::http::Request::post(format!("/api/v1/reservations/{code}/{action}"))
        .header("authorization", format!("Bearer {}", common::admin_token()))
        .body(axum::body::Body::empty())
        .unwrap();
    let code = code.to_owned();
    Write {
        request,
        on_success: Box::new(move |status, _| {
            (status == StatusCode::OK).then_some(match action {
                "confirm" => Answered::Confirmed(code),
                _ => Answered::Cancelled(code),
            })
        }),
    }
}

fn mercadopago_notification(payment_id: &str, code: &str) -> Write {
    let request_id = uuid::Uuid::new_v4().to_string();
    let ts = chrono::Utc::now().timestamp();
    let manifest = format!("id:{payment_id};request-id:{request_id};ts:{ts};");
    let signature = format!(
        "ts={ts},v1={}",
        hmac_sha256_hex(MP_SECRET.as_bytes(), manifest.as_bytes())
    );
    let body = json!({"action": "payment.updated", "type": "payment", "data": {"id": payment_id}})
        .to_string();
    let request = post_json(&format!(
        "/api/v1/webhooks/mercadopago?data.id={payment_id}&type=payment"
    ))
    .header("x-signature", signature)
    .header("x-request-id", request_id)
    .body(body.into())
    .unwrap();
    let (payment_id, code) = (payment_id.to_owned(), code.to_owned());
    Write {
        request,
        on_success: Box::new(move |status, body| {
            (status == StatusCode::OK).then(|| Answered::Paid {
                payment_id,
                code,
                confirmed: body["outcome"] == "confirmed",
            })
        }),
    }
}

fn whatsapp_message(message_id: &str) -> Write {
    let body = json!({
        "object": "whatsapp_business_account",
        "entry": [{"id": "102290129340398", "changes": [{"field": "messages", "value": {
            "messaging_product": "whatsapp",
            "messages": [{"from": "5491177770000", "id": message_id, "timestamp": "1764640000",
                          "type": "text", "text": {"body": "hola"}}],
        }}]}],
    })
    .to_string();
    let signature = format!(
        "sha256={}",
        hmac_sha256_hex(WA_SECRET.as_bytes(), body.as_bytes())
    );
    let request = post_json("/api/v1/webhooks/whatsapp")
        .header("x-hub-signature-256", signature)
        .body(body.into())
        .unwrap();
    let message_id = message_id.to_owned();
    Write {
        request,
        on_success: Box::new(move |status, _| {
            status.is_success().then_some(Answered::Message(message_id))
        }),
    }
}

/// Books `[day, day + 1)` through `router` without cutting it off; returns the code and the
/// deposit.
async fn book(router: &backend::http::App, app: &TestApp, day: chrono::NaiveDate) -> (String, f64) {
    let body = app.booking(day, plus(day, 1)).to_string();
    let request = post_json("/api/v1/reservations/pre-reserve")
        .body(axum::body::Body::from(body))
        .unwrap();
    let response = router.clone().oneshot(request).await.unwrap();
    assert_eq!(response.status(), StatusCode::CREATED, "setup booking");
    let body: Value = serde_json::from_slice(
        &axum::body::to_bytes(response.into_body(), usize::MAX)
            .await
            .unwrap(),
    )
    .unwrap();
    let deposit = body["deposit_amount"].as_str().unwrap().parse().unwrap();
    (body["code"].as_str().unwrap().to_owned(), deposit)
}

/// Sends `write` through `router` and drops it after `cut_after` (a gone client); the
/// answer when one came in time.
async fn send_cut_off(
    router: backend::http::App,
    write: Write,
    cut_after: Duration,
) -> Option<Answered> {
    let response = tokio::time::timeout(cut_after, async move {
        let response = router.oneshot(write.request).await.unwrap();
        let status = response.status();
        let body = axum::body::to_bytes(response.into_body(), usize::MAX)
            .await
            .unwrap();
        (status, serde_json::from_slice(&body).unwrap_or(Value::Null))
    })
    .await
    .ok()?;
    (write.on_success)(response.0, &response.1)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn cut_off_writes_lose_nothing_that_was_answered() {
    let Some(proxy) = common::slow_database("cutoff").await else {
        return;
    };
    let (mp_url, mercadopago) = serve_slow_mercadopago().await;
    let app = TestApp::spawn_with(common::Backend::Postgres, "cutoff", |config| {
        common::through_slow_proxy(config, proxy);
        config.database_max_connections = Some(3);
        config.database_idle_in_transaction_timeout = IDLE_IN_TRANSACTION;
        // Every request comes from one client here; the limit is not what is tested.
        config.edge.rate_limit_per_minute = 0;
        let integrations = &mut config.integrations;
        integrations.mercadopago_access_token = Some(Secret::new(MP_TOKEN));
        integrations.mercadopago_webhook_secret = Some(Secret::new(MP_SECRET));
        integrations.mercadopago_api_url = mp_url;
        integrations.whatsapp_app_secret = Some(Secret::new(WA_SECRET));
    })
    .await
    .expect("TEST_DATABASE_URL is set");
    let backend::Db::Postgres(pg) = app.state.db.clone() else {
        unreachable!()
    };
    let options = (*pg.pool().connect_options()).clone();
    let mut observer = sqlx::PgConnection::connect_with(&options).await.unwrap();

    // Set-up goes through a patient router; the storm through routers whose own request
    // timeouts (60 ms to 10 s) cut requests off at every stage of their work.
    let patient = backend::app(app.state.clone());
    let routers: Vec<backend::http::App> = [60, 150, 400, 10_000]
        .into_iter()
        .map(|millis| {
            let mut state = app.state.clone();
            state.request_timeout = Duration::from_millis(millis);
            backend::app(state)
        })
        .collect();

    let mut answered = Vec::new();
    let (mut sent, mut cut) = (0, 0);
    let mut day = monday(2);
    let mut next_day = || {
        day = plus(day, 1);
        day
    };

    // First a sweep: one request at a time, cut off after 0, 3, 6, ... ms, alternately by
    // the client and by the service's own timeout, so that every stage of every route's work
    // (its upstream call, BEGIN, each statement, COMMIT) is cut at least once. After each
    // cut an uncut booking: answered 201, it must survive like any other write.
    for step in 0..30_u64 {
        let cut_at = Duration::from_millis(step * 3);
        let (to_confirm, _) = book(&patient, &app, next_day()).await;
        let (to_cancel, _) = book(&patient, &app, next_day()).await;
        let (to_pay, deposit) = book(&patient, &app, next_day()).await;
        for code in [&to_confirm, &to_cancel, &to_pay] {
            answered.push(Answered::Booked(code.clone()));
        }
        let payment_id = format!("{}", 800_000 + step);
        mercadopago
            .payments
            .lock()
            .unwrap()
            .insert(payment_id.clone(), (to_pay.clone(), deposit));
        let writes = [
            pre_reserve(&app, next_day(), None),
            pre_reserve(&app, next_day(), Some(format!("sweep-{step}"))),
            admin(&to_confirm, "confirm"),
            admin(&to_cancel, "cancel"),
            mercadopago_notification(&payment_id, &to_pay),
            whatsapp_message(&format!("wamid.sweep.{step}")),
        ];
        for write in writes {
            let (router, client_cut) = if step % 2 == 0 {
                (patient.clone(), cut_at)
            } else {
                let mut state = app.state.clone();
                state.request_timeout = cut_at.max(Duration::from_millis(1));
                (backend::app(state), Duration::from_secs(10))
            };
            sent += 1;
            match send_cut_off(router, write, client_cut).await {
                Some(done) => answered.push(done),
                None => cut += 1,
            }
            let (code, _) = book(&patient, &app, next_day()).await;
            answered.push(Answered::Booked(code));
        }
    }
    for round in 0..6 {
        let mut writes = Vec::new();
        for i in 0..3 {
            let (to_confirm, _) = book(&patient, &app, next_day()).await;
            let (to_cancel, _) = book(&patient, &app, next_day()).await;
            let (to_pay, deposit) = book(&patient, &app, next_day()).await;
            // Set-up bookings were answered 201 too: they must survive like any other.
            for code in [&to_confirm, &to_cancel, &to_pay] {
                answered.push(Answered::Booked(code.clone()));
            }
            let payment_id = format!("{}", 900_000 + round * 10 + i);
            mercadopago
                .payments
                .lock()
                .unwrap()
                .insert(payment_id.clone(), (to_pay.clone(), deposit));
            // Each write with the span (µs) its client cut-off is drawn from: about the
            // time the route takes here, so cuts land inside its work.
            writes.push((150_000, pre_reserve(&app, next_day(), None)));
            writes.push((
                150_000,
                pre_reserve(&app, next_day(), Some(format!("cutoff-{round}-{i}"))),
            ));
            writes.push((150_000, admin(&to_confirm, "confirm")));
            writes.push((150_000, admin(&to_cancel, "cancel")));
            writes.push((80_000, mercadopago_notification(&payment_id, &to_pay)));
            // Repeated notifications of the same payment: more cuts inside its transaction.
            writes.push((80_000, mercadopago_notification(&payment_id, &to_pay)));
            writes.push((80_000, mercadopago_notification(&payment_id, &to_pay)));
            writes.push((
                150_000,
                whatsapp_message(&format!("wamid.cutoff.{round}.{i}")),
            ));
        }
        let mut tasks = Vec::new();
        for (cut_within, write) in writes {
            // Half are cut off by the client at a random point, the rest only by the
            // service's own timeout.
            let mut rng = rand::rng();
            let cut_after = if rng.random_bool(0.5) {
                Duration::from_micros(rng.random_range(0..cut_within))
            } else {
                Duration::from_secs(10)
            };
            let router = routers[rng.random_range(0..routers.len())].clone();
            tasks.push(tokio::spawn(send_cut_off(router, write, cut_after)));
        }
        for task in tasks {
            sent += 1;
            match task.await.unwrap() {
                Some(done) => answered.push(done),
                None => cut += 1,
            }
        }
        common::assert_no_session_idle_in_transaction(&mut observer, round).await;
    }
    assert!(
        cut > 0 && !answered.is_empty(),
        "{sent} sent, {cut} cut off"
    );
    for kind in ["Booked", "Confirmed", "Cancelled", "Paid", "Message"] {
        assert!(
            answered.iter().any(|a| format!("{a:?}").starts_with(kind)),
            "no {kind} write was answered: the storm proves nothing for it ({answered:?})"
        );
    }

    // Whatever a poisoned session held is rolled back once the timeout has ended it.
    tokio::time::sleep(IDLE_IN_TRANSACTION + Duration::from_millis(500)).await;
    let status_of = async |observer: &mut sqlx::PgConnection, code: &str| -> Option<String> {
        sqlx::query_scalar("SELECT status FROM reservations WHERE code = $1")
            .bind(code)
            .fetch_optional(observer)
            .await
            .unwrap()
    };
    let mut lost = Vec::new();
    for write in &answered {
        let kept = match write {
            Answered::Booked(code) => status_of(&mut observer, code).await.is_some(),
            Answered::Confirmed(code) => {
                status_of(&mut observer, code).await.as_deref() == Some("confirmed")
            }
            Answered::Cancelled(code) => {
                status_of(&mut observer, code).await.as_deref() == Some("cancelled")
            }
            Answered::Paid {
                payment_id,
                code,
                confirmed,
            } => {
                let recorded: bool = sqlx::query_scalar(
                    "SELECT EXISTS (SELECT 1 FROM payments WHERE provider_payment_id = $1)",
                )
                .bind(payment_id)
                .fetch_one(&mut observer)
                .await
                .unwrap();
                recorded
                    && (!confirmed
                        || status_of(&mut observer, code).await.as_deref() == Some("confirmed"))
            }
            Answered::Message(id) => sqlx::query_scalar(
                "SELECT EXISTS (SELECT 1 FROM whatsapp_messages WHERE message_id = $1)",
            )
            .bind(id)
            .fetch_one(&mut observer)
            .await
            .unwrap(),
        };
        if !kept {
            lost.push(write);
        }
    }
    assert!(
        lost.is_empty(),
        "{} of {} writes answered 2xx are gone: {lost:?}",
        lost.len(),
        answered.len()
    );
    let advisory: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' \
         AND database = (SELECT oid FROM pg_database WHERE datname = current_database())",
    )
    .fetch_one(&mut observer)
    .await
    .unwrap();
    assert_eq!(advisory, 0, "advisory locks are still held");
}

/// Defence in depth: a connection that goes back to the pool inside a transaction (however
/// that happened) is closed, never handed to the next request, so a write answered on it
/// cannot vanish with the session.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_connection_released_inside_a_transaction_is_never_reused() {
    let Some(app) = TestApp::spawn_with(common::Backend::Postgres, "released_in_tx", |config| {
        // One connection: whatever the next booking gets is the one released below.
        config.database_max_connections = Some(1);
        config.database_idle_in_transaction_timeout = IDLE_IN_TRANSACTION;
    })
    .await
    else {
        return;
    };
    let backend::Db::Postgres(pg) = app.state.db.clone() else {
        unreachable!()
    };
    let mut conn = pg.pool().acquire().await.unwrap();
    // What a cut-off `BEGIN` leaves behind: a server-side transaction sqlx does not count.
    sqlx::raw_sql("BEGIN").execute(&mut *conn).await.unwrap();
    drop(conn);

    let mut codes = Vec::new();
    for week in 0..3 {
        let day = monday(3 + week);
        let (status, body) = app.pre_reserve(&app.booking(day, plus(day, 1))).await;
        assert_eq!(status, reqwest::StatusCode::CREATED, "{body}");
        codes.push(body["code"].as_str().unwrap().to_owned());
    }
    tokio::time::sleep(IDLE_IN_TRANSACTION + Duration::from_millis(500)).await;
    let options = (*pg.pool().connect_options()).clone();
    let mut observer = sqlx::PgConnection::connect_with(&options).await.unwrap();
    for code in &codes {
        let found: Option<String> =
            sqlx::query_scalar("SELECT status FROM reservations WHERE code = $1")
                .bind(code)
                .fetch_optional(&mut observer)
                .await
                .unwrap();
        assert_eq!(
            found.as_deref(),
            Some("pre_reserved"),
            "booking {code} was answered 201 and is gone"
        );
    }
}
