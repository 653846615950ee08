//! The booking loop through HTTP, on SQLite and PostgreSQL, against a fake MercadoPago on
//! loopback: pre-reserve (with a deposit checkout), a signed payment notification, confirmed.
//! Plus duplicates, underpayment, late payment, unknown codes, refused signatures, the
//! WhatsApp webhook, and a check that logs carry no secret and no contact detail.

use crate::common;

use std::sync::atomic::Ordering;

use backend::config::Secret;
use backend::http::webhooks::hmac_sha256_hex;
use backend::store::{messages, payments};
use common::webhooks::{
    Loop, MP_SECRET, MP_TOKEN, WA_SECRET, WA_VERIFY, deposit, mp_signature, notify, notify_raw,
    pre_reserve, signed_notification, unix_now, wa_delivery, wa_post,
};
use common::{Backend, TestApp, metric, read};
use reqwest::StatusCode;
use serde_json::{Value, json};

/// Contact details the pre-reservations and messages carry; they must never be logged.
const CONTACT_DETAILS: [&str; 5] = [
    "5555-0000",
    "Ana Pérez",
    "ana@example.com",
    "5491177770000",
    "quiero reservar la cabaña",
];

// ---------------------------------------------------------------- helpers

/// [`common::webhooks::spawn`] with this binary's log capture installed first.
async fn spawn(backend: Backend, test: &str, ttl_minutes: u32) -> Option<Loop> {
    common::capture_logs();
    common::webhooks::spawn(backend, test, ttl_minutes).await
}

async fn status_of(app: &TestApp, code: &str) -> String {
    let (status, body) = app.get(&format!("/api/v1/reservations/{code}")).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    body["status"].as_str().unwrap().to_owned()
}

async fn stored_outcomes(app: &TestApp, code: &str) -> Vec<String> {
    payments::for_reservation(&app.state.db, code)
        .await
        .unwrap()
        .into_iter()
        .map(|p| p.outcome)
        .collect()
}

// ---------------------------------------------------------------- scenarios

on_both_backends!(
    paid_deposit_confirms_once,
    underpayment_keeps_the_hold,
    the_deposit_amount_in_another_currency_does_not_confirm,
    a_refunded_or_charged_back_deposit_flags_the_stay_and_keeps_its_history,
    payment_after_expiry_is_recorded_and_stays_expired,
    payment_for_an_unknown_code_is_recorded,
    bad_signatures_are_refused_and_write_nothing,
    without_mercadopago_there_is_no_payment_url_and_no_trust,
    whatsapp_messages_are_stored_once,
    control_characters_in_webhooks_are_never_unavailable,
    an_oversized_payment_answer_is_refused,
    a_failed_checkout_still_holds_the_dates,
);

async fn paid_deposit_confirms_once(backend: Backend) {
    let Some(Loop { app, fake }) = spawn(backend, "paid_deposit", 30).await else {
        return;
    };
    let body = pre_reserve(&app, 8).await;
    let code = body["code"].as_str().unwrap();
    assert_eq!(
        body["payment_url"],
        format!("https://mp.example/checkout/{code}")
    );

    // The checkout is for the deposit of this reservation, expiring with it.
    let preferences = fake.preferences.lock().unwrap().clone();
    assert_eq!(preferences.len(), 1);
    let (authorization, preference) = &preferences[0];
    assert_eq!(authorization, &format!("Bearer {MP_TOKEN}"));
    assert_eq!(preference["external_reference"], code);
    assert_eq!(preference["items"][0]["unit_price"], deposit(&body));
    assert_eq!(preference["items"][0]["quantity"], 1);
    let expires: chrono::DateTime<chrono::Utc> = preference["expiration_date_to"]
        .as_str()
        .unwrap()
        .parse()
        .unwrap();
    let held_until: chrono::DateTime<chrono::Utc> =
        body["expires_at"].as_str().unwrap().parse().unwrap();
    assert_eq!(expires, held_until);

    let confirmed_before = metric(
        &app,
        "mercadopago_notifications_total{outcome=\"confirmed\"}",
    )
    .await;
    fake.put_payment("1001", "approved", code, deposit(&body));
    let (status, answer) = notify(&app, "1001").await;
    assert_eq!(status, StatusCode::OK, "{answer}");
    assert_eq!(answer["outcome"], "confirmed");
    assert_eq!(status_of(&app, code).await, "confirmed");
    assert_eq!(
        fake.read_auth.lock().unwrap().as_slice(),
        [format!("Bearer {MP_TOKEN}")]
    );
    assert!(
        metric(
            &app,
            "mercadopago_notifications_total{outcome=\"confirmed\"}"
        )
        .await
            >= confirmed_before + 1.0
    );

    // MercadoPago repeats notifications: each is answered 200 and changes nothing.
    for _ in 0..2 {
        let (status, answer) = notify(&app, "1001").await;
        assert_eq!(status, StatusCode::OK, "{answer}");
        assert_eq!(answer["outcome"], "duplicate");
    }
    assert_eq!(status_of(&app, code).await, "confirmed");
    assert_eq!(stored_outcomes(&app, code).await, ["confirmed"]);

    // Several at once still confirm nothing twice and store one row.
    let at_once: Vec<_> = (0..6)
        .map(|_| {
            let (client, base) = (app.client.clone(), app.base.clone());
            tokio::spawn(async move { signed_notification(&client, &base, "1001").await })
        })
        .collect();
    for handle in at_once {
        let (status, answer) = handle.await.unwrap();
        assert_eq!(status, StatusCode::OK, "{answer}");
        assert_eq!(answer["outcome"], "duplicate");
    }
    assert_eq!(stored_outcomes(&app, code).await, ["confirmed"]);

    // A second, separate payment for a confirmed reservation is recorded, not applied.
    fake.put_payment("1002", "approved", code, deposit(&body));
    let (_, answer) = notify(&app, "1002").await;
    assert_eq!(answer["outcome"], "already_confirmed");
    assert_eq!(
        stored_outcomes(&app, code).await,
        ["confirmed", "already_confirmed"]
    );
}

async fn underpayment_keeps_the_hold(backend: Backend) {
    let Some(Loop { app, fake }) = spawn(backend, "underpayment", 30).await else {
        return;
    };
    let body = pre_reserve(&app, 9).await;
    let code = body["code"].as_str().unwrap();
    fake.put_payment("2001", "approved", code, deposit(&body) - 0.01);
    let (status, answer) = notify(&app, "2001").await;
    assert_eq!(status, StatusCode::OK, "{answer}");
    assert_eq!(answer["outcome"], "underpaid");
    assert_eq!(status_of(&app, code).await, "pre_reserved");
    assert_eq!(stored_outcomes(&app, code).await, ["underpaid"]);

    // A pending payment of the full amount does not confirm either; its approval does.
    fake.put_payment("2002", "pending", code, deposit(&body));
    let (_, answer) = notify(&app, "2002").await;
    assert_eq!(answer["outcome"], "not_approved");
    assert_eq!(status_of(&app, code).await, "pre_reserved");
    fake.put_payment("2002", "approved", code, deposit(&body));
    let (_, answer) = notify(&app, "2002").await;
    assert_eq!(answer["outcome"], "confirmed");
    assert_eq!(status_of(&app, code).await, "confirmed");
    assert_eq!(
        stored_outcomes(&app, code).await,
        ["underpaid", "confirmed"]
    );
}

/// 222.00 USD is not a 222.00 ARS deposit, and neither is a payment of no stated currency:
/// each is recorded as `wrong_currency` and counted; the hold stays until a peso payment.
async fn the_deposit_amount_in_another_currency_does_not_confirm(backend: Backend) {
    let Some(Loop { app, fake }) = spawn(backend, "wrong_currency", 30).await else {
        return;
    };
    let body = pre_reserve(&app, 15).await;
    let code = body["code"].as_str().unwrap();
    let sample = "mercadopago_notifications_total{outcome=\"wrong_currency\"}";
    let before = metric(&app, sample).await;
    let cases = [("8001", Some("USD")), ("8002", Some("XYZ")), ("8003", None)];
    for (id, currency) in cases {
        fake.put_payment_in(id, "approved", code, deposit(&body), currency);
        let (status, answer) = notify(&app, id).await;
        assert_eq!(status, StatusCode::OK, "{currency:?}: {answer}");
        assert_eq!(answer["outcome"], "wrong_currency", "{currency:?}");
        assert_eq!(status_of(&app, code).await, "pre_reserved", "{currency:?}");
    }
    let stored = payments::for_reservation(&app.state.db, code)
        .await
        .unwrap();
    let seen: Vec<_> = stored
        .iter()
        .map(|p| (p.outcome.as_str(), p.currency.as_deref()))
        .collect();
    assert_eq!(
        seen,
        [
            ("wrong_currency", Some("USD")),
            ("wrong_currency", Some("XYZ")),
            ("wrong_currency", None)
        ]
    );
    assert!(metric(&app, sample).await >= before + 3.0);

    // The deposit in pesos still confirms.
    fake.put_payment("8004", "approved", code, deposit(&body));
    let (_, answer) = notify(&app, "8004").await;
    assert_eq!(answer["outcome"], "confirmed");
    assert_eq!(status_of(&app, code).await, "confirmed");
}

/// The deposit that confirmed a stay goes back to the payer: the stay stays confirmed and is
/// flagged for an admin, once; the payment keeps `confirmed` as its outcome, its current
/// status, and every delivery in an append-only history.
async fn a_refunded_or_charged_back_deposit_flags_the_stay_and_keeps_its_history(backend: Backend) {
    let Some(Loop { app, fake }) = spawn(backend, "refunds", 30).await else {
        return;
    };
    let sample = "mercadopago_notifications_total{outcome=\"refunded_after_confirm\"}";
    let before = metric(&app, sample).await;
    for (weeks, id, reversal) in [(16, "9001", "refunded"), (17, "9002", "charged_back")] {
        let body = pre_reserve(&app, weeks).await;
        let code = body["code"].as_str().unwrap();
        fake.put_payment(id, "approved", code, deposit(&body));
        let (_, answer) = notify(&app, id).await;
        assert_eq!(answer["outcome"], "confirmed");

        fake.put_payment(id, reversal, code, deposit(&body));
        let (status, answer) = notify(&app, id).await;
        assert_eq!(status, StatusCode::OK, "{reversal}: {answer}");
        assert_eq!(answer["outcome"], "refunded_after_confirm", "{reversal}");
        assert_eq!(status_of(&app, code).await, "confirmed", "{reversal}");
        let flag = payments::payment_flag(&app.state.db, code).await.unwrap();
        assert_eq!(flag.as_deref(), Some(reversal));
        // MercadoPago repeats the notification: nothing more happens.
        let (_, answer) = notify(&app, id).await;
        assert_eq!(answer["outcome"], "duplicate", "{reversal}");

        let stored = payments::for_reservation(&app.state.db, code)
            .await
            .unwrap();
        assert_eq!(stored.len(), 1);
        assert_eq!(stored[0].outcome, "confirmed", "{reversal}");
        assert_eq!(stored[0].provider_status, reversal);
        let history: Vec<_> = payments::history(&app.state.db, code)
            .await
            .unwrap()
            .into_iter()
            .map(|e| (e.provider_status, e.outcome))
            .collect();
        let pair = |status: &str, outcome: &str| (status.to_owned(), outcome.to_owned());
        assert_eq!(
            history,
            [
                pair("approved", "confirmed"),
                pair(reversal, "refunded_after_confirm"),
                pair(reversal, "duplicate"),
            ]
        );
    }
    assert!(metric(&app, sample).await >= before + 2.0);

    // The history cannot be edited.
    for statement in [
        "UPDATE payment_events SET outcome = 'confirmed'",
        "DELETE FROM payment_events",
    ] {
        let result = backend::with_pool!(&app.state.db, pool => {
            sqlx::query(statement).execute(pool).await.map(|_| ())
        });
        assert!(result.is_err(), "{statement} succeeded");
    }
}

async fn payment_after_expiry_is_recorded_and_stays_expired(backend: Backend) {
    // A time to live of zero: the hold has expired by the time the payment arrives.
    let Some(Loop { app, fake }) = spawn(backend, "after_expiry", 0).await else {
        return;
    };
    let body = pre_reserve(&app, 10).await;
    let code = body["code"].as_str().unwrap();
    fake.put_payment("3001", "approved", code, deposit(&body));
    let (status, answer) = notify(&app, "3001").await;
    assert_eq!(status, StatusCode::OK, "{answer}");
    assert_eq!(answer["outcome"], "after_expiry");
    assert_eq!(status_of(&app, code).await, "expired");
    assert_eq!(stored_outcomes(&app, code).await, ["after_expiry"]);

    // Once the sweep has marked it too, a repeat is still recorded as late.
    backend::expire_stale(&app.state.db).await.unwrap();
    let (_, answer) = notify(&app, "3001").await;
    assert_eq!(answer["outcome"], "after_expiry");
    assert_eq!(status_of(&app, code).await, "expired");
}

async fn payment_for_an_unknown_code_is_recorded(backend: Backend) {
    let Some(Loop { app, fake }) = spawn(backend, "unknown_code", 30).await else {
        return;
    };
    fake.put_payment("4001", "approved", "CB-NOSUCHONE", 100.0);
    let (status, answer) = notify(&app, "4001").await;
    assert_eq!(status, StatusCode::OK, "{answer}");
    assert_eq!(answer["outcome"], "unknown_reservation");
    assert_eq!(
        stored_outcomes(&app, "CB-NOSUCHONE").await,
        ["unknown_reservation"]
    );

    // A payment MercadoPago does not know is its problem to retry: 503, nothing stored.
    let (status, answer) = notify(&app, "4999").await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE, "{answer}");
    assert_eq!(payments::count(&app.state.db).await.unwrap(), 1);

    // Notifications about other topics are acknowledged and ignored.
    let request_id = "req-merchant-order";
    let signature = mp_signature("5001", request_id, unix_now(), MP_SECRET);
    let response = app
        .client
        .post(app.url("/api/v1/webhooks/mercadopago?data.id=5001&type=merchant_order"))
        .header("x-signature", signature)
        .header("x-request-id", request_id)
        .send()
        .await
        .unwrap();
    let (status, answer) = read(response).await;
    assert_eq!(status, StatusCode::OK, "{answer}");
    assert_eq!(answer["outcome"], "ignored");
    assert_eq!(fake.payment_reads.load(Ordering::SeqCst), 2);
}

async fn bad_signatures_are_refused_and_write_nothing(backend: Backend) {
    let Some(Loop { app, fake }) = spawn(backend, "bad_signatures", 30).await else {
        return;
    };
    let body = pre_reserve(&app, 11).await;
    let code = body["code"].as_str().unwrap();
    fake.put_payment("6001", "approved", code, deposit(&body));

    let now = unix_now();
    let rid = "req-6001";
    let cases = [
        ("unsigned", None, Some(rid)),
        (
            "wrong secret",
            Some(mp_signature("6001", rid, now, "not-the-secret")),
            Some(rid),
        ),
        (
            "signed for another payment",
            Some(mp_signature("6002", rid, now, MP_SECRET)),
            Some(rid),
        ),
        (
            "signed for another request id",
            Some(mp_signature("6001", "req-other", now, MP_SECRET)),
            Some(rid),
        ),
        (
            "stale timestamp",
            Some(mp_signature("6001", rid, now - 301, MP_SECRET)),
            Some(rid),
        ),
        (
            "future timestamp",
            Some(mp_signature("6001", rid, now + 3600, MP_SECRET)),
            Some(rid),
        ),
        (
            "no x-request-id",
            Some(mp_signature("6001", rid, now, MP_SECRET)),
            None,
        ),
        ("garbage", Some("v1=abc".to_owned()), Some(rid)),
    ];
    for (case, signature, request_id) in cases {
        let (status, answer) = notify_raw(&app, "6001", signature, request_id).await;
        assert_eq!(status, StatusCode::UNAUTHORIZED, "{case}: {answer}");
        assert_eq!(answer["error"], "unauthorized", "{case}");
    }
    assert_eq!(payments::count(&app.state.db).await.unwrap(), 0);
    assert_eq!(fake.payment_reads.load(Ordering::SeqCst), 0);
    assert_eq!(status_of(&app, code).await, "pre_reserved");

    // The same notification, signed properly, goes through.
    let (status, answer) = notify(&app, "6001").await;
    assert_eq!(status, StatusCode::OK, "{answer}");
    assert_eq!(answer["outcome"], "confirmed");
}

async fn without_mercadopago_there_is_no_payment_url_and_no_trust(backend: Backend) {
    common::capture_logs();
    let Some(app) = TestApp::spawn(backend, "no_mercadopago").await else {
        return;
    };
    let body = pre_reserve(&app, 12).await;
    assert!(body.get("payment_url").is_none(), "{body}");
    assert_eq!(body["status"], "pre_reserved");

    // No secret configured: even a "signed" notification is refused.
    let rid = "req-1";
    let signature = mp_signature("1", rid, unix_now(), "");
    let (status, _) = notify_raw(&app, "1", Some(signature), Some(rid)).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    let (status, _) = wa_post(&app, &wa_delivery("wamid.none", "hola"), Some("")).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    let (status, _) = app
        .get("/api/v1/webhooks/whatsapp?hub.mode=subscribe&hub.verify_token=&hub.challenge=1")
        .await;
    assert_eq!(status, StatusCode::FORBIDDEN);
}

/// MercadoPago unreachable: the booking still succeeds, without `payment_url`, and the failure
/// is counted.
async fn a_failed_checkout_still_holds_the_dates(backend: Backend) {
    common::capture_logs();
    let closed = {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        format!("http://{}", listener.local_addr().unwrap())
    };
    let Some(app) = TestApp::spawn_with(backend, "failed_checkout", |config| {
        config.integrations.mercadopago_access_token = Some(Secret::new(MP_TOKEN));
        config.integrations.mercadopago_api_url = closed;
    })
    .await
    else {
        return;
    };
    let failed_before = metric(&app, "mercadopago_preferences_total{outcome=\"failed\"}").await;
    let body = pre_reserve(&app, 14).await;
    assert!(body.get("payment_url").is_none(), "{body}");
    let code = body["code"].as_str().unwrap();
    assert_eq!(status_of(&app, code).await, "pre_reserved");
    let failed_after = metric(&app, "mercadopago_preferences_total{outcome=\"failed\"}").await;
    assert!(failed_after >= failed_before + 1.0);
}

// ---------------------------------------------------------------- WhatsApp

async fn whatsapp_messages_are_stored_once(backend: Backend) {
    let Some(Loop { app, .. }) = spawn(backend, "whatsapp", 30).await else {
        return;
    };
    // The handshake echoes the challenge only for the right token and mode.
    let response = app
        .client
        .get(app.url(&format!(
            "/api/v1/webhooks/whatsapp?hub.mode=subscribe&hub.verify_token={WA_VERIFY}&hub.challenge=1158201444"
        )))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(response.text().await.unwrap(), "1158201444");
    for query in [
        "hub.mode=subscribe&hub.verify_token=wrong&hub.challenge=1",
        &format!("hub.mode=unsubscribe&hub.verify_token={WA_VERIFY}&hub.challenge=1"),
        &format!("hub.mode=subscribe&hub.verify_token={WA_VERIFY}"),
        "",
    ] {
        let (status, body) = app.get(&format!("/api/v1/webhooks/whatsapp?{query}")).await;
        assert_eq!(status, StatusCode::FORBIDDEN, "{query}: {body}");
    }

    let delivery = wa_delivery("wamid.HBgN1", "quiero reservar la cabaña");
    // Unsigned, wrongly signed, or tampered: 401 and nothing stored.
    let (status, _) = wa_post(&app, &delivery, None).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    let (status, _) = wa_post(&app, &delivery, Some("not-the-app-secret")).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    let signature = format!(
        "sha256={}",
        hmac_sha256_hex(WA_SECRET.as_bytes(), delivery.as_bytes())
    );
    let tampered = delivery.replace("cabaña", "cabañas");
    let response = app
        .client
        .post(app.url("/api/v1/webhooks/whatsapp"))
        .header("x-hub-signature-256", signature)
        .body(tampered)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
    assert!(messages::all(&app.state.db).await.unwrap().is_empty());

    // Signed: stored; delivered again: stored once.
    let (status, body) = wa_post(&app, &delivery, Some(WA_SECRET)).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["stored"], 1);
    let (status, body) = wa_post(&app, &delivery, Some(WA_SECRET)).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["stored"], 0);
    assert_eq!(body["duplicates"], 1);
    let stored = messages::all(&app.state.db).await.unwrap();
    assert_eq!(stored.len(), 1);
    assert_eq!(stored[0].message_id, "wamid.HBgN1");
    assert_eq!(stored[0].sender, "5491177770000");
    assert_eq!(stored[0].body.as_deref(), Some("quiero reservar la cabaña"));
    assert_eq!(stored[0].sent_at.timestamp(), 1_764_640_000);

    // Status updates carry no messages: acknowledged, nothing stored.
    let statuses =
        json!({"entry": [{"changes": [{"value": {"statuses": [{"id": "wamid.X"}]}}]}]}).to_string();
    let (status, body) = wa_post(&app, &statuses, Some(WA_SECRET)).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["stored"], 0);
    // A signed body that is not a notification is a 400, not a 500.
    let (status, body) = wa_post(&app, "not json", Some(WA_SECRET)).await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
}

/// `healthz`'s body, asserting it answers 200.
async fn healthy(app: &TestApp) -> Value {
    let (status, health) = app.get("/api/v1/healthz").await;
    assert_eq!(status, StatusCode::OK, "{health}");
    assert_eq!(health["checks"]["writes"]["status"], "ok", "{health}");
    health
}

/// A NUL in a WhatsApp text, or control characters in a MercadoPago payment, are input, not
/// a database outage: never a 503 (which the sender retries for days), never a health
/// failure; the message and the payment are stored with the characters made visible.
async fn control_characters_in_webhooks_are_never_unavailable(backend: Backend) {
    let Some(Loop { app, fake }) = spawn(backend, "control_characters", 30).await else {
        return;
    };
    let delivery = wa_delivery("wamid.NUL1", "hola\u{0}cabaña\nsegunda línea");
    let (status, body) = wa_post(&app, &delivery, Some(WA_SECRET)).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["stored"], 1);
    let stored = messages::all(&app.state.db).await.unwrap();
    assert_eq!(
        stored[0].body.as_deref(),
        Some("hola\u{fffd}cabaña\nsegunda línea")
    );
    healthy(&app).await;
    // A sender with a control character is not a WhatsApp message: 400, nothing stored.
    let odd_sender = wa_delivery("wamid.NUL2", "hola")
        .replace("\"from\":\"5491177770000\"", "\"from\":\"549\\u0000\"");
    assert!(odd_sender.contains("549\\u0000"), "{odd_sender}");
    let (status, body) = wa_post(&app, &odd_sender, Some(WA_SECRET)).await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    healthy(&app).await;

    let booking = pre_reserve(&app, 18).await;
    let code = booking["code"].as_str().unwrap();
    let with_nul = format!("{code}\u{0}");
    fake.put_payment_in(
        "9101",
        "approved",
        &with_nul,
        deposit(&booking),
        Some("AR\u{0}S"),
    );
    let (status, answer) = notify(&app, "9101").await;
    assert_eq!(status, StatusCode::OK, "{answer}");
    assert_eq!(answer["outcome"], "unknown_reservation");
    let written_out = format!("{code}\\u{{0000}}");
    let stored = payments::for_reservation(&app.state.db, &written_out)
        .await
        .unwrap();
    assert_eq!(stored.len(), 1);
    assert_eq!(stored[0].currency.as_deref(), Some("AR\\u{0000}S"));
    assert_eq!(status_of(&app, code).await, "pre_reserved");
    healthy(&app).await;
}

/// A payment answer larger than the cap is not read whole: 503 `unavailable` (MercadoPago
/// retries), counted as `fetch_failed`, nothing recorded.
async fn an_oversized_payment_answer_is_refused(backend: Backend) {
    let Some(Loop { app, fake }) = spawn(backend, "oversized_payment", 30).await else {
        return;
    };
    let booking = pre_reserve(&app, 19).await;
    let code = booking["code"].as_str().unwrap();
    fake.put_payment("9201", "approved", code, deposit(&booking));
    let padding = "x".repeat(backend::mercadopago::MAX_PAYMENT_BYTES);
    fake.payments.lock().unwrap().get_mut("9201").unwrap()["description"] = Value::from(padding);
    let sample = "mercadopago_notifications_total{outcome=\"fetch_failed\"}";
    let before = metric(&app, sample).await;
    let (status, answer) = notify(&app, "9201").await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE, "{answer}");
    assert_eq!(answer["error"], "unavailable");
    assert!(metric(&app, sample).await >= before + 1.0);
    assert_eq!(payments::count(&app.state.db).await.unwrap(), 0);
    assert_eq!(status_of(&app, code).await, "pre_reserved");
}

/// Bodies over the limit answer the API's JSON error, on both webhooks, before any
/// signature is looked at.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn oversized_webhook_bodies_answer_a_json_413() {
    let Some(Loop { app, .. }) = spawn(Backend::Sqlite, "oversized_bodies", 30).await else {
        return;
    };
    let body = "x".repeat(backend::http::MAX_BODY_BYTES + 1);
    for path in [
        "/api/v1/webhooks/mercadopago?data.id=1&type=payment",
        "/api/v1/webhooks/whatsapp",
    ] {
        let response = app
            .client
            .post(app.url(path))
            .header("content-type", "application/json")
            .body(body.clone())
            .send()
            .await
            .unwrap();
        let content_type = response.headers()["content-type"]
            .to_str()
            .unwrap()
            .to_owned();
        let (status, answer) = read(response).await;
        assert_eq!(status, StatusCode::PAYLOAD_TOO_LARGE, "{path}");
        assert_eq!(content_type, "application/json", "{path}");
        assert_eq!(answer["error"], "payload_too_large", "{path}: {answer}");
        assert!(answer["detail"].is_string(), "{path}: {answer}");
    }
}

/// SQLSTATE 22021 (a NUL in text) is bad input, not "database busy": the classification
/// goes by the database that raised the error, not by the code read as a number.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_nul_refused_by_postgres_is_not_unavailable() {
    use sqlx::Connection;
    let Some(url) = common::fresh_postgres_database("nul_classify").await else {
        return;
    };
    let mut conn = sqlx::PgConnection::connect(&url).await.unwrap();
    sqlx::query("CREATE TEMP TABLE notes (body TEXT)")
        .execute(&mut conn)
        .await
        .unwrap();
    let err = sqlx::query("INSERT INTO notes (body) VALUES ($1)")
        .bind("a\u{0}b")
        .execute(&mut conn)
        .await
        .expect_err("PostgreSQL stores no NUL in text");
    let code = err.as_database_error().and_then(|e| e.code());
    assert_eq!(code.as_deref(), Some("22021"), "{err}");
    assert_eq!(
        backend::db::classify(&err),
        backend::db::WriteFailure::Other
    );
}

/// Every outcome is exported from start-up (so alerts can refer to it at zero), and refused
/// signatures are counted.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn every_webhook_outcome_is_a_metric() {
    let Some(Loop { app, .. }) = spawn(Backend::Sqlite, "metrics", 30).await else {
        return;
    };
    let labels = payments::PaymentOutcome::ALL
        .iter()
        .map(|o| o.as_str())
        .chain(backend::http::webhooks::mercadopago::OTHER_OUTCOMES);
    for outcome in labels {
        metric(
            &app,
            &format!("mercadopago_notifications_total{{outcome=\"{outcome}\"}}"),
        )
        .await;
    }
    for outcome in ["accepted", "bad_signature", "unreadable"] {
        metric(
            &app,
            &format!("whatsapp_notifications_total{{outcome=\"{outcome}\"}}"),
        )
        .await;
    }
    let refused = "mercadopago_notifications_total{outcome=\"bad_signature\"}";
    let before = metric(&app, refused).await;
    let (status, _) = notify_raw(&app, "1", None, Some("r")).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert!(metric(&app, refused).await >= before + 1.0);
}

// ---------------------------------------------------------------- logs

/// The whole loop, then the captured logs: they show the loop happened, and hold no secret,
/// no signature and no contact detail.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn logs_hold_no_secret_and_no_contact_detail() {
    let Some(Loop { app, fake }) = spawn(Backend::Sqlite, "logs", 30).await else {
        return;
    };
    let body = pre_reserve(&app, 13).await;
    let code = body["code"].as_str().unwrap();
    fake.put_payment("7001", "approved", code, deposit(&body));
    let request_id = "req-7001";
    let signature = mp_signature("7001", request_id, unix_now(), MP_SECRET);
    let signature_hex = signature.split("v1=").nth(1).unwrap().to_owned();
    let (status, _) = notify_raw(&app, "7001", Some(signature), Some(request_id)).await;
    assert_eq!(status, StatusCode::OK);
    let bad = mp_signature("7001", request_id, unix_now(), "wrong");
    let (status, _) = notify_raw(&app, "7001", Some(bad), Some(request_id)).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    let delivery = wa_delivery("wamid.LOG1", "quiero reservar la cabaña");
    let (status, _) = wa_post(&app, &delivery, Some(WA_SECRET)).await;
    assert_eq!(status, StatusCode::OK);
    let (status, _) = wa_post(&app, &delivery, Some("wrong")).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);

    let logs = common::captured_logs();
    // The capture works: the loop's events are there.
    for expected in [
        "pre-reservation created",
        "MercadoPago payment notification handled",
        "refused a MercadoPago notification",
        "WhatsApp delivery handled",
        "refused a WhatsApp delivery",
        code,
    ] {
        assert!(logs.contains(expected), "expected {expected:?} in the logs");
    }
    for secret in [MP_TOKEN, MP_SECRET, WA_SECRET, WA_VERIFY, &signature_hex] {
        assert!(
            !logs.contains(secret),
            "a secret or signature is in the logs"
        );
    }
    for detail in CONTACT_DETAILS {
        assert!(!logs.contains(detail), "{detail:?} is in the logs");
    }
}
