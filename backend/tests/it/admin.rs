//! Admin confirm and cancel through HTTP: authentication, authorisation and the state
//! machine, on SQLite and PostgreSQL.

use crate::common;

use common::{
    ADMIN_EMAIL, Backend, JWT_SECRET, TestApp, admin_token, booking, monday, plus, read, token,
};
use reqwest::StatusCode;
use serde_json::Value;

on_both_backends!(
    admin_routes_check_the_token,
    confirm_and_cancel_follow_the_state_machine,
    confirming_an_expired_hold_is_refused,
    admin_routes_are_closed_without_a_secret,
    a_test_fixture_is_found_or_created_by_an_admin_only,
    a_test_fixture_is_listed_nowhere_and_booked_only_with_an_admin_token,
);

async fn pre_reserve(app: &TestApp, weeks: i64) -> String {
    let day = monday(weeks);
    let (status, body) = app.pre_reserve(&app.booking(day, plus(day, 2))).await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    body["code"].as_str().unwrap().to_owned()
}

async fn admin_routes_check_the_token(backend: Backend) {
    let Some(app) = TestApp::spawn(backend, "admin_auth").await else {
        return;
    };
    let code = pre_reserve(&app, 8).await;
    let wrong_secret = token(ADMIN_EMAIL, 3600, "another-secret-0123456789-0123456789");
    let expired = token(ADMIN_EMAIL, -3600, JWT_SECRET);
    let outsider = token("mallory@example.com", 3600, JWT_SECRET);
    for action in ["confirm", "cancel"] {
        for (name, bearer, status, error) in [
            ("no token", None, StatusCode::UNAUTHORIZED, "unauthorized"),
            (
                "garbage",
                Some("not.a.jwt"),
                StatusCode::UNAUTHORIZED,
                "unauthorized",
            ),
            (
                "bad signature",
                Some(wrong_secret.as_str()),
                StatusCode::UNAUTHORIZED,
                "unauthorized",
            ),
            (
                "expired",
                Some(expired.as_str()),
                StatusCode::UNAUTHORIZED,
                "unauthorized",
            ),
            (
                "not allowed",
                Some(outsider.as_str()),
                StatusCode::FORBIDDEN,
                "forbidden",
            ),
        ] {
            let (got, body) = app.admin(&code, action, bearer).await;
            assert_eq!(got, status, "{action} with {name}: {body}");
            assert_eq!(body["error"], error, "{action} with {name}");
        }
    }
    // None of that changed the reservation.
    let (_, shown) = app.get(&format!("/api/v1/reservations/{code}")).await;
    assert_eq!(shown["status"], "pre_reserved");

    // The allowed email is matched case-insensitively.
    let shouting = token("ADMIN@Example.com", 3600, JWT_SECRET);
    let (status, body) = app.admin(&code, "confirm", Some(&shouting)).await;
    assert_eq!(status, StatusCode::OK, "{body}");

    let (status, body) = app
        .admin("CB-UNKNOWN1", "confirm", Some(&admin_token()))
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert_eq!(body["error"], "not_found");
    let (status, _) = app
        .admin("CB-UNKNOWN1", "cancel", Some(&admin_token()))
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
}

async fn confirm_and_cancel_follow_the_state_machine(backend: Backend) {
    let Some(app) = TestApp::spawn(backend, "admin_states").await else {
        return;
    };
    let admin = admin_token();
    let code = pre_reserve(&app, 9).await;

    let (status, body) = app.admin(&code, "confirm", Some(&admin)).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["status"], "confirmed");
    let (status, body) = app.admin(&code, "confirm", Some(&admin)).await;
    assert_eq!(status, StatusCode::CONFLICT);
    assert_eq!(body["error"], "invalid_state");

    // A confirmed stay still blocks its dates.
    let day = monday(9);
    let (status, _) = app.pre_reserve(&app.booking(day, plus(day, 2))).await;
    assert_eq!(status, StatusCode::CONFLICT);

    let (status, body) = app.admin(&code, "cancel", Some(&admin)).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["status"], "cancelled");
    for action in ["cancel", "confirm"] {
        let (status, body) = app.admin(&code, action, Some(&admin)).await;
        assert_eq!(status, StatusCode::CONFLICT, "{action} after cancel");
        assert_eq!(body["error"], "invalid_state");
    }

    // Cancelling freed the dates.
    let (status, body) = app.pre_reserve(&app.booking(day, plus(day, 2))).await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
}

async fn confirming_an_expired_hold_is_refused(backend: Backend) {
    let Some(app) = TestApp::spawn_with(backend, "admin_expired", |c| {
        c.pre_reservation_ttl_minutes = 0;
    })
    .await
    else {
        return;
    };
    // Expired by time, before any sweep ran.
    let code = pre_reserve(&app, 10).await;
    let (status, body) = app.admin(&code, "confirm", Some(&admin_token())).await;
    assert_eq!(status, StatusCode::CONFLICT, "{body}");
    assert_eq!(body["error"], "expired");
    let (_, shown) = app.get(&format!("/api/v1/reservations/{code}")).await;
    assert_eq!(shown["status"], "expired");
    // And again once it is marked expired.
    let (status, body) = app.admin(&code, "confirm", Some(&admin_token())).await;
    assert_eq!(status, StatusCode::CONFLICT);
    assert_eq!(body["error"], "expired");
    let (status, body) = app.admin(&code, "cancel", Some(&admin_token())).await;
    assert_eq!(status, StatusCode::CONFLICT);
    assert_eq!(body["error"], "invalid_state");
}

async fn admin_routes_are_closed_without_a_secret(backend: Backend) {
    let Some(app) = TestApp::spawn_with(backend, "admin_disabled", |c| {
        c.jwt_secret = None;
    })
    .await
    else {
        return;
    };
    let code = pre_reserve(&app, 11).await;
    let (status, body) = app.admin(&code, "confirm", Some(&admin_token())).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert!(body["detail"].as_str().unwrap().contains("JWT_SECRET"));
}

/// The slug the overlap check uses (`xtask/src/overlap/api.rs`, `FIXTURE_SLUG`).
const FIXTURE: &str = "overlap-check";

async fn put_fixture(app: &TestApp, slug: &str, bearer: Option<&str>) -> (StatusCode, Value) {
    let mut request = app
        .client
        .put(app.url(&format!("/api/v1/admin/test-fixtures/{slug}")));
    if let Some(bearer) = bearer {
        request = request.bearer_auth(bearer);
    }
    read(request.send().await.expect("PUT")).await
}

/// A request with an optional bearer token: `Some` for an admin or an impostor.
async fn send(
    app: &TestApp,
    request: reqwest::RequestBuilder,
    bearer: Option<&str>,
) -> (StatusCode, Value) {
    let request = match bearer {
        Some(bearer) => request.bearer_auth(bearer),
        None => request,
    };
    let _ = app;
    read(request.send().await.expect("request")).await
}

async fn a_test_fixture_is_found_or_created_by_an_admin_only(backend: Backend) {
    let Some(app) = TestApp::spawn(backend, "fixture_put").await else {
        return;
    };
    let outsider = token("mallory@example.com", 3600, JWT_SECRET);
    let (status, _) = put_fixture(&app, FIXTURE, None).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    let (status, _) = put_fixture(&app, FIXTURE, Some(&outsider)).await;
    assert_eq!(status, StatusCode::FORBIDDEN);

    let (status, created) = put_fixture(&app, FIXTURE, Some(&admin_token())).await;
    assert_eq!(status, StatusCode::CREATED, "{created}");
    assert_eq!(created["slug"], FIXTURE);
    let (status, again) = put_fixture(&app, FIXTURE, Some(&admin_token())).await;
    assert_eq!(status, StatusCode::OK, "{again}");
    assert_eq!(
        again["id"], created["id"],
        "the same cabin, not a second one"
    );

    // A real cabin's slug is refused, and the cabin stays listed and bookable.
    let (status, body) = put_fixture(&app, "test-cabin", Some(&admin_token())).await;
    assert_eq!(status, StatusCode::CONFLICT, "{body}");
    assert_eq!(body["error"], "invalid_state");
    let (_, listed) = app.get("/api/v1/reservations/accommodations").await;
    assert!(
        listed
            .as_array()
            .unwrap()
            .iter()
            .any(|a| a["slug"] == "test-cabin"),
        "{listed}"
    );
    let (status, body) = put_fixture(&app, "Not..A-Slug", Some(&admin_token())).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{body}");
}

async fn a_test_fixture_is_listed_nowhere_and_booked_only_with_an_admin_token(backend: Backend) {
    let Some(app) = TestApp::spawn(backend, "fixture_hidden").await else {
        return;
    };
    let (_, fixture) = put_fixture(&app, FIXTURE, Some(&admin_token())).await;
    let fixture_id = fixture["id"].as_i64().expect("the fixture's id");

    let (status, listed) = app.get("/api/v1/reservations/accommodations").await;
    assert_eq!(status, StatusCode::OK);
    let ids: Vec<i64> = listed
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a["id"].as_i64().unwrap())
        .collect();
    assert_eq!(ids, [app.cabin_id], "only the real active cabin is listed");

    let day = monday(12);
    let stay = booking(fixture_id, day, plus(day, 2));
    let outsider = token("mallory@example.com", 3600, JWT_SECRET);
    let wrong_secret = token(ADMIN_EMAIL, 3600, "another-secret-0123456789-0123456789");
    let pre_reserve = || {
        app.client
            .post(app.url("/api/v1/reservations/pre-reserve"))
            .json(&stay)
    };
    let availability = format!(
        "/api/v1/accommodations/{fixture_id}/availability?from={day}&to={}",
        plus(day, 7)
    );
    // A guest, a non-admin and a forged token meet a cabin that does not exist: nothing is
    // booked, and availability shows nothing.
    for bearer in [None, Some(outsider.as_str()), Some(wrong_secret.as_str())] {
        let (status, body) = send(&app, pre_reserve(), bearer).await;
        assert_eq!(status, StatusCode::NOT_FOUND, "{bearer:?}: {body}");
        assert_eq!(body["error"], "not_found");
        let keyed = pre_reserve().header("Idempotency-Key", format!("guest-{}", bearer.is_some()));
        let (status, body) = send(&app, keyed, bearer).await;
        assert_eq!(status, StatusCode::NOT_FOUND, "keyed, {bearer:?}: {body}");
        let (status, _) = send(&app, app.client.get(app.url(&availability)), bearer).await;
        assert_eq!(status, StatusCode::NOT_FOUND, "{bearer:?}");
    }

    // The overlap check books it with the admin token, and sees its booking.
    let admin = admin_token();
    let (status, body) = send(&app, pre_reserve(), Some(&admin)).await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    let (status, shown) = send(&app, app.client.get(app.url(&availability)), Some(&admin)).await;
    assert_eq!(status, StatusCode::OK, "{shown}");
    assert_eq!(shown["bookings"].as_array().unwrap().len(), 1, "{shown}");
    // It counts in no real cabin's availability: the same dates are free for a guest.
    assert_eq!(app.bookings_on(day, plus(day, 7)).await, 0);
    let (status, body) = app.pre_reserve(&app.booking(day, plus(day, 2))).await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
}
