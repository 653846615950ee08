//! Admin confirm and cancel through HTTP: authentication, authorisation and the state
//! machine, on SQLite and PostgreSQL.

use crate::common;

use common::{ADMIN_EMAIL, Backend, JWT_SECRET, TestApp, admin_token, monday, plus, token};
use reqwest::StatusCode;

on_both_backends!(
    admin_routes_check_the_token,
    confirm_and_cancel_follow_the_state_machine,
    confirming_an_expired_hold_is_refused,
    admin_routes_are_closed_without_a_secret,
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
