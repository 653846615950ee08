//! Pre-reservations through HTTP: create, overlap, back-to-back, expiry, idempotency,
//! validation and malformed input, on SQLite and PostgreSQL.

use crate::common;

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use common::{Backend, TestApp, monday, plus};
use reqwest::StatusCode;
use serde_json::{Value, json};

on_both_backends!(
    create_prices_and_holds,
    overlap_is_refused_and_back_to_back_allowed,
    expiry_frees_the_dates,
    idempotent_retries_replay,
    simultaneous_requests_with_one_key_book_once,
    each_validation_rule_names_its_field,
    malformed_requests_are_4xx,
    code_collisions_are_retried_not_overlaps,
);

async fn create_prices_and_holds(backend: Backend) {
    let Some(app) = TestApp::spawn(backend, "create_prices_and_holds").await else {
        return;
    };
    // Monday to Monday: 5 weekday nights at 100.00 and Friday + Saturday at 120.00.
    let check_in = monday(8);
    let (status, body) = app
        .pre_reserve(&app.booking(check_in, plus(check_in, 7)))
        .await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    assert_eq!(body["nights"], 7);
    assert_eq!(body["total_price"], "740.00");
    assert_eq!(body["deposit_amount"], "222.00");
    assert_eq!(body["status"], "pre_reserved");
    let code = body["code"].as_str().expect("code");
    let expires_at: chrono::DateTime<chrono::Utc> =
        body["expires_at"].as_str().unwrap().parse().unwrap();
    let ttl = expires_at - chrono::Utc::now();
    assert!(
        ttl > chrono::Duration::minutes(29) && ttl <= chrono::Duration::minutes(30),
        "{ttl}"
    );

    let (status, shown) = app.get(&format!("/api/v1/reservations/{code}")).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(shown["code"], code);
    assert_eq!(shown["total_price"], "740.00");
    assert!(
        shown.get("contact_phone").is_none(),
        "no personal data: {shown}"
    );

    let (status, body) = app.get("/api/v1/reservations/CB-NOSUCHONE").await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert_eq!(body["error"], "not_found");
}

async fn overlap_is_refused_and_back_to_back_allowed(backend: Backend) {
    let Some(app) = TestApp::spawn(backend, "overlap").await else {
        return;
    };
    let day = monday(10);
    let (status, _) = app.pre_reserve(&app.booking(day, plus(day, 3))).await;
    assert_eq!(status, StatusCode::CREATED);

    // Any intersection is refused: inside, around, and sharing one night at either end.
    for (from, to) in [(0, 3), (1, 2), (-1, 4), (2, 5), (-2, 1)] {
        let (status, body) = app
            .pre_reserve(&app.booking(plus(day, from), plus(day, to)))
            .await;
        assert_eq!(status, StatusCode::CONFLICT, "[{from}, {to}): {body}");
        assert_eq!(body["error"], "date_overlap");
        assert!(body["detail"].is_string());
    }
    // Back-to-back on both sides is fine.
    let (status, body) = app
        .pre_reserve(&app.booking(plus(day, 3), plus(day, 5)))
        .await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    let (status, body) = app.pre_reserve(&app.booking(plus(day, -2), day)).await;
    assert_eq!(status, StatusCode::CREATED, "{body}");

    // Unknown and inactive accommodations are 404, whatever the dates.
    for id in [app.inactive_id, 999_999] {
        let (status, body) = app
            .pre_reserve(&common::booking(id, plus(day, 20), plus(day, 21)))
            .await;
        assert_eq!(status, StatusCode::NOT_FOUND, "{body}");
        assert_eq!(body["error"], "not_found");
    }
}

async fn expiry_frees_the_dates(backend: Backend) {
    let Some(app) = TestApp::spawn_with(backend, "expiry", |c| {
        c.pre_reservation_ttl_minutes = 0;
    })
    .await
    else {
        return;
    };
    let day = monday(12);
    let (status, first) = app.pre_reserve(&app.booking(day, plus(day, 2))).await;
    assert_eq!(status, StatusCode::CREATED);
    // The hold still blocks the dates until the sweep runs.
    let (status, _) = app.pre_reserve(&app.booking(day, plus(day, 2))).await;
    assert_eq!(status, StatusCode::CONFLICT);

    let expired = backend::expire_stale(&app.state.db).await.unwrap();
    assert_eq!(expired, 1);
    assert_eq!(backend::expire_stale(&app.state.db).await.unwrap(), 0);

    let code = first["code"].as_str().unwrap();
    let (_, shown) = app.get(&format!("/api/v1/reservations/{code}")).await;
    assert_eq!(shown["status"], "expired");
    let (status, body) = app.pre_reserve(&app.booking(day, plus(day, 2))).await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
}

async fn idempotent_retries_replay(backend: Backend) {
    let Some(app) = TestApp::spawn(backend, "idempotency").await else {
        return;
    };
    let day = monday(14);
    let body = app.booking(day, plus(day, 2));
    let send = |key: &'static str, body: Value| {
        let request = app
            .client
            .post(app.url("/api/v1/reservations/pre-reserve"))
            .header("Idempotency-Key", key)
            .json(&body);
        async move { request.send().await.unwrap() }
    };

    let first = send("key-1", body.clone()).await;
    assert_eq!(first.status(), StatusCode::CREATED);
    let first_body = first.text().await.unwrap();
    let retry = send("key-1", body.clone()).await;
    assert_eq!(retry.status(), StatusCode::CREATED);
    assert_eq!(retry.headers()["idempotent-replayed"], "true");
    assert_eq!(retry.text().await.unwrap(), first_body);

    // Only one reservation exists: a new key for the same dates overlaps.
    let (status, other) = common::read(send("key-2", body.clone()).await).await;
    assert_eq!(status, StatusCode::CONFLICT);
    assert_eq!(other["error"], "date_overlap");
    // ... and that 409 is itself replayed for key-2.
    let (status, again) = common::read(send("key-2", body.clone()).await).await;
    assert_eq!(status, StatusCode::CONFLICT);
    assert_eq!(again, other);

    let mut changed = body.clone();
    changed["guests"] = json!(3);
    let (status, reused) = common::read(send("key-1", changed).await).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(reused["error"], "idempotency_key_reused");
}

/// The same keyed request sent many times at once (a client retrying before its first
/// answer came back): one reservation, and every answer is that reservation's 201.
async fn simultaneous_requests_with_one_key_book_once(backend: Backend) {
    let Some(app) = TestApp::spawn(backend, "idem_burst").await else {
        return;
    };
    let day = monday(16);
    let body = app.booking(day, plus(day, 3));
    let mut burst = tokio::task::JoinSet::new();
    for _ in 0..12 {
        let request = app
            .client
            .post(app.url("/api/v1/reservations/pre-reserve"))
            .header("Idempotency-Key", "burst-key")
            .json(&body)
            .send();
        burst.spawn(async move { common::read(request.await.unwrap()).await });
    }
    let mut codes = std::collections::BTreeSet::new();
    while let Some(answer) = burst.join_next().await {
        let (status, answer) = answer.unwrap();
        assert_eq!(status, StatusCode::CREATED, "{answer}");
        codes.insert(answer["code"].as_str().unwrap().to_owned());
    }
    assert_eq!(codes.len(), 1, "{codes:?}");
    assert_eq!(app.bookings_on(day, plus(day, 3)).await, 1);
}

/// PostgreSQL: a first request with a key claims it, books and stores its answer in one
/// statement. The key's row is the one the booking's transaction inserted, never updated
/// afterwards (claiming first inserted it, then the booking updated it with the answer).
#[tokio::test]
async fn a_first_keyed_booking_commits_once_on_postgres() {
    let Some(app) = TestApp::spawn(Backend::Postgres, "idem_one_commit").await else {
        return;
    };
    let day = monday(18);
    let (status, created) = common::read(
        app.client
            .post(app.url("/api/v1/reservations/pre-reserve"))
            .header("Idempotency-Key", "one-commit")
            .json(&app.booking(day, plus(day, 1)))
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED, "{created}");
    let backend::Db::Postgres(pg) = &app.state.db else {
        unreachable!()
    };
    // In this fresh database the first row of `idempotency_keys` sits at (0,1); an UPDATE
    // would have written a new version of it elsewhere. Same `xmin`: same transaction.
    let (same_transaction, first_version, stored): (bool, bool, Option<i32>) = sqlx::query_as(
        "SELECT k.xmin::text = r.xmin::text, k.ctid = '(0,1)'::tid, k.response_status \
         FROM idempotency_keys k, reservations r WHERE k.key = 'one-commit' AND r.code = $1",
    )
    .bind(created["code"].as_str().unwrap())
    .fetch_one(pg.pool())
    .await
    .unwrap();
    assert!(
        same_transaction,
        "the key and the reservation commit together"
    );
    assert!(first_version, "the key was written once, with its answer");
    assert_eq!(stored, Some(201));
}

async fn each_validation_rule_names_its_field(backend: Backend) {
    let Some(app) = TestApp::spawn(backend, "validation").await else {
        return;
    };
    let day = monday(16);
    let today = chrono::Utc::now().date_naive();
    let cases: Vec<(&str, Value, &str)> = vec![
        ("check_out", json!(day.to_string()), "check_out"),
        ("check_out", json!(plus(day, -1).to_string()), "check_out"),
        ("check_out", json!(plus(day, 31).to_string()), "check_out"),
        ("guests", json!(0), "guests"),
        ("guests", json!(-3), "guests"),
        ("guests", json!(5), "guests"),
        ("channel", json!(""), "channel"),
        ("channel", json!("x".repeat(33)), "channel"),
        ("contact_name", json!("   "), "contact_name"),
        ("contact_name", json!("n".repeat(121)), "contact_name"),
        ("contact_phone", json!(""), "contact_phone"),
        ("contact_phone", json!("call me"), "contact_phone"),
        ("contact_email", json!("not-an-email"), "contact_email"),
        ("contact_email", json!(""), "contact_email"),
    ];
    for (key, value, field) in cases {
        let mut body = app.booking(day, plus(day, 2));
        body[key] = value.clone();
        let (status, answer) = app.pre_reserve(&body).await;
        assert_eq!(
            status,
            StatusCode::UNPROCESSABLE_ENTITY,
            "{key}={value}: {answer}"
        );
        assert_eq!(answer["error"], "validation_failed", "{key}={value}");
        assert_eq!(answer["field"], field, "{key}={value}");
    }
    // check_in in the past (yesterday, with check_out tomorrow).
    let body = app.booking(plus(today, -1), plus(today, 1));
    let (status, answer) = app.pre_reserve(&body).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(answer["field"], "check_in");
    // The boundaries themselves are accepted: 30 nights, 4 guests (the capacity).
    let mut body = app.booking(day, plus(day, 30));
    body["guests"] = json!(4);
    let (status, answer) = app.pre_reserve(&body).await;
    assert_eq!(status, StatusCode::CREATED, "{answer}");
}

async fn malformed_requests_are_4xx(backend: Backend) {
    let Some(app) = TestApp::spawn(backend, "malformed").await else {
        return;
    };
    let day = monday(18);
    let url = app.url("/api/v1/reservations/pre-reserve");
    let valid = app.booking(day, plus(day, 2));
    let mut unknown_field = valid.clone();
    unknown_field["discount"] = json!("100%");
    let mut wrong_type = valid.clone();
    wrong_type["guests"] = json!("two");
    let mut bad_date = valid.clone();
    bad_date["check_in"] = json!("2030-02-30");
    let mut missing = valid.clone();
    missing.as_object_mut().unwrap().remove("contact_phone");
    let oversized = format!(
        r#"{{"contact_name": "{}"}}"#,
        "a".repeat(backend::http::MAX_BODY_BYTES + 10)
    );
    let cases: Vec<(&str, String, Option<&str>, StatusCode, &str)> = vec![
        (
            "syntax",
            "{\"accommodation_id\": ".into(),
            Some("application/json"),
            StatusCode::BAD_REQUEST,
            "malformed_json",
        ),
        (
            "unknown field",
            unknown_field.to_string(),
            Some("application/json"),
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid_body",
        ),
        (
            "wrong type",
            wrong_type.to_string(),
            Some("application/json"),
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid_body",
        ),
        (
            "bad date",
            bad_date.to_string(),
            Some("application/json"),
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid_body",
        ),
        (
            "missing field",
            missing.to_string(),
            Some("application/json"),
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid_body",
        ),
        (
            "no content type",
            valid.to_string(),
            None,
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "unsupported_media_type",
        ),
        (
            "text content type",
            valid.to_string(),
            Some("text/plain"),
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "unsupported_media_type",
        ),
        (
            "oversized",
            oversized,
            Some("application/json"),
            StatusCode::PAYLOAD_TOO_LARGE,
            "payload_too_large",
        ),
    ];
    for (name, body, content_type, expected, code) in cases {
        let mut request = app.client.post(&url).body(body);
        if let Some(ct) = content_type {
            request = request.header("content-type", ct);
        }
        let (status, answer) = common::read(request.send().await.unwrap()).await;
        assert_eq!(status, expected, "{name}: {answer}");
        assert_eq!(answer["error"], code, "{name}");
        assert!(
            answer["detail"].as_str().is_some_and(|d| !d.is_empty()),
            "{name}"
        );
    }
    // A bad Idempotency-Key is a validation error too.
    let response = app
        .client
        .post(&url)
        .header("Idempotency-Key", "k".repeat(300))
        .json(&valid)
        .send()
        .await
        .unwrap();
    let (status, answer) = common::read(response).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(answer["field"], "Idempotency-Key");
    // Unknown routes and methods answer with the error body too.
    let (status, answer) = app.get("/api/v1/nope").await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert_eq!(answer["error"], "not_found");
    let (status, answer) = app.get("/api/v1/reservations/pre-reserve").await;
    assert_eq!(status, StatusCode::METHOD_NOT_ALLOWED);
    assert_eq!(answer["error"], "method_not_allowed");
}

async fn code_collisions_are_retried_not_overlaps(backend: Backend) {
    // The first two codes handed out are the same; the third is new.
    let calls = Arc::new(AtomicUsize::new(0));
    let counter = calls.clone();
    let Some(app) = TestApp::spawn_with_state(
        backend,
        "code_collision",
        |_| {},
        move |state| {
            state.codes = Arc::new(move || match counter.fetch_add(1, Ordering::SeqCst) {
                0 | 1 => "CB-SAMECODE".to_owned(),
                _ => "CB-FRESHONE".to_owned(),
            });
        },
    )
    .await
    else {
        return;
    };
    let day = monday(20);
    let (status, first) = app.pre_reserve(&app.booking(day, plus(day, 1))).await;
    assert_eq!(status, StatusCode::CREATED);
    assert_eq!(first["code"], "CB-SAMECODE");
    // Other dates, so only the code collides: retried, then created under a new code.
    let (status, second) = app
        .pre_reserve(&app.booking(plus(day, 5), plus(day, 6)))
        .await;
    assert_eq!(status, StatusCode::CREATED, "{second}");
    assert_eq!(second["code"], "CB-FRESHONE");
    assert_eq!(calls.load(Ordering::SeqCst), 3);
}
