//! Webhooks and the per-client rate limit: MercadoPago and Meta deliver from a few addresses,
//! so correctly signed deliveries are never limited by address; requests that fail their
//! signature check spend the sender's budget like pre-reserve does, and are refused before
//! any database work.
//!
//! SQLite only: the limit is decided before the store is reached, the same on both databases.

use crate::common;

use std::sync::atomic::Ordering;

use backend::http::edge::DEFAULT_RATE_LIMIT_PER_MINUTE;
use backend::store::{messages, payments};
use common::webhooks::{
    Loop, WA_SECRET, deposit, mp_signature, notify, notify_raw, pre_reserve, spawn, unix_now,
    wa_delivery, wa_post,
};
use common::{Backend, admin_token};
use reqwest::StatusCode;
use reqwest::header::RETRY_AFTER;

/// Five times the per-client budget, all from one address (the test's loopback peer).
const DELIVERIES: usize = 500;

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn signed_deliveries_from_one_address_are_never_limited() {
    let Some(Loop { app, fake }) = spawn(Backend::Sqlite, "signed_not_limited", 30).await else {
        return;
    };
    assert!(DELIVERIES as u32 > 2 * DEFAULT_RATE_LIMIT_PER_MINUTE);
    let body = pre_reserve(&app, 9).await;
    let code = body["code"].as_str().unwrap();
    fake.put_payment("8001", "approved", code, deposit(&body));

    for n in 1..=DELIVERIES {
        let (status, answer) = notify(&app, "8001").await;
        assert_eq!(status, StatusCode::OK, "payment notification {n}: {answer}");
        let expected = if n == 1 { "confirmed" } else { "duplicate" };
        assert_eq!(answer["outcome"], expected, "payment notification {n}");
    }
    assert_eq!(fake.payment_reads.load(Ordering::SeqCst), DELIVERIES);

    for n in 1..=DELIVERIES {
        let delivery = wa_delivery(&format!("wamid.LIMIT{n}"), "hola");
        let (status, answer) = wa_post(&app, &delivery, Some(WA_SECRET)).await;
        assert_eq!(status, StatusCode::OK, "WhatsApp delivery {n}: {answer}");
        assert_eq!(answer["stored"], 1, "WhatsApp delivery {n}");
    }
    assert_eq!(
        messages::all(&app.state.db).await.unwrap().len(),
        DELIVERIES
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn unsigned_deliveries_are_refused_then_limited_without_touching_the_database() {
    let Some(Loop { app, fake }) = spawn(Backend::Sqlite, "unsigned_limited", 30).await else {
        return;
    };
    let body = pre_reserve(&app, 10).await;
    let code = body["code"].as_str().unwrap();
    fake.put_payment("8101", "approved", code, deposit(&body));
    // The pre-reservation spent one request of this address's budget.
    let budget = DEFAULT_RATE_LIMIT_PER_MINUTE as usize - 1;

    let mut refused = (0, 0);
    for n in 1..=DELIVERIES {
        let request_id = format!("req-{n}");
        let bad = mp_signature("8101", &request_id, unix_now(), "not-the-secret");
        let signature = (n % 2 == 0).then_some(bad);
        let (status, answer) = notify_raw(&app, "8101", signature, Some(&request_id)).await;
        match status {
            StatusCode::UNAUTHORIZED if n <= budget => refused.0 += 1,
            StatusCode::TOO_MANY_REQUESTS if n > budget => refused.1 += 1,
            other => panic!("payment notification {n}: {other} {answer}"),
        }
    }
    assert_eq!(refused, (budget, DELIVERIES - budget));
    for n in 1..=DELIVERIES {
        let delivery = wa_delivery(&format!("wamid.BAD{n}"), "hola");
        let secret = (n % 2 == 0).then_some("not-the-app-secret");
        let (status, answer) = wa_post(&app, &delivery, secret).await;
        assert_eq!(
            status,
            StatusCode::TOO_MANY_REQUESTS,
            "WhatsApp delivery {n}: {answer}"
        );
        assert_eq!(answer["error"], "rate_limited");
    }
    let (status, _) = app
        .get("/api/v1/webhooks/whatsapp?hub.mode=subscribe&hub.verify_token=guess&hub.challenge=1")
        .await;
    assert_eq!(status, StatusCode::TOO_MANY_REQUESTS, "a failed handshake");
    let limited = app
        .client
        .post(app.url("/api/v1/webhooks/whatsapp"))
        .body("{}")
        .send()
        .await
        .unwrap();
    assert_eq!(limited.status(), StatusCode::TOO_MANY_REQUESTS);
    assert!(limited.headers().contains_key(RETRY_AFTER));
    // An operator's valid admin token passes the limit (the signature check still refuses).
    let operator = app
        .client
        .post(app.url("/api/v1/webhooks/whatsapp"))
        .bearer_auth(admin_token())
        .body("{}")
        .send()
        .await
        .unwrap();
    assert_eq!(operator.status(), StatusCode::UNAUTHORIZED);

    // Nothing was read from MercadoPago and nothing was written.
    assert_eq!(fake.payment_reads.load(Ordering::SeqCst), 0);
    assert_eq!(payments::count(&app.state.db).await.unwrap(), 0);
    assert!(messages::all(&app.state.db).await.unwrap().is_empty());

    // The same address, its budget spent, still gets its signed deliveries through.
    let (status, answer) = notify(&app, "8101").await;
    assert_eq!(status, StatusCode::OK, "{answer}");
    assert_eq!(answer["outcome"], "confirmed");
    let (status, answer) = wa_post(&app, &wa_delivery("wamid.OK", "hola"), Some(WA_SECRET)).await;
    assert_eq!(status, StatusCode::OK, "{answer}");
    assert_eq!(answer["stored"], 1);
}
