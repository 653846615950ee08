//! The service's edge: the per-client rate limit on pre-reserve and the webhooks, and CORS.

use crate::common;

use backend::http::edge::DEFAULT_RATE_LIMIT_PER_MINUTE;
use common::{Backend, TestApp, admin_token, metric};
use reqwest::StatusCode;
use reqwest::header::{
    ACCESS_CONTROL_ALLOW_ORIGIN, ACCESS_CONTROL_REQUEST_METHOD, AUTHORIZATION, ORIGIN, RETRY_AFTER,
};
use serde_json::{Value, json};

const PRE_RESERVE: &str = "/api/v1/reservations/pre-reserve";

async fn pre_reserve_from(
    app: &TestApp,
    client_ip: &str,
    token: Option<&str>,
) -> reqwest::Response {
    let mut request = app
        .client
        .post(app.url(PRE_RESERVE))
        .header("fly-client-ip", client_ip)
        // An invalid body is answered (422) without touching the database; it still counts.
        .json(&json!({}));
    if let Some(token) = token {
        request = request.header(AUTHORIZATION, format!("Bearer {token}"));
    }
    request.send().await.unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn the_101st_request_in_a_minute_is_429_for_that_client_only() {
    let app = TestApp::spawn(Backend::Sqlite, "rate_limit").await.unwrap();
    assert_eq!(DEFAULT_RATE_LIMIT_PER_MINUTE, 100);
    for n in 1..=100 {
        let response = pre_reserve_from(&app, "203.0.113.7", None).await;
        assert_eq!(
            response.status(),
            StatusCode::UNPROCESSABLE_ENTITY,
            "request {n}"
        );
    }
    let limited = pre_reserve_from(&app, "203.0.113.7", None).await;
    assert_eq!(limited.status(), StatusCode::TOO_MANY_REQUESTS);
    let retry_after: u64 = limited.headers()[RETRY_AFTER]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!((1..=60).contains(&retry_after), "Retry-After {retry_after}");
    let body: Value = limited.json().await.unwrap();
    assert_eq!(body["error"], "rate_limited");

    // Unsigned webhook requests are limited too, from the same per-client budget.
    let webhook = app
        .client
        .post(app.url(backend::http::webhooks::whatsapp::PATH))
        .header("fly-client-ip", "203.0.113.7")
        .body("{}")
        .send()
        .await
        .unwrap();
    assert_eq!(webhook.status(), StatusCode::TOO_MANY_REQUESTS);
    assert!(webhook.headers().contains_key(RETRY_AFTER));

    // Another client, a valid admin token and health are unaffected.
    let other = pre_reserve_from(&app, "203.0.113.8", None).await;
    assert_eq!(other.status(), StatusCode::UNPROCESSABLE_ENTITY);
    let admin = pre_reserve_from(&app, "203.0.113.7", Some(&admin_token())).await;
    assert_eq!(admin.status(), StatusCode::UNPROCESSABLE_ENTITY);
    let bad_token = pre_reserve_from(&app, "203.0.113.7", Some("not-a-token")).await;
    assert_eq!(
        bad_token.status(),
        StatusCode::TOO_MANY_REQUESTS,
        "an invalid token is not a pass"
    );
    for path in ["/api/v1/healthz", "/api/v1/readyz", "/metrics"] {
        let response = app
            .client
            .get(app.url(path))
            .header("fly-client-ip", "203.0.113.7")
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), StatusCode::OK, "{path}");
    }

    let count = metric(
        &app,
        r#"http_rate_limited_total{route="/api/v1/reservations/pre-reserve"}"#,
    )
    .await;
    assert!(count >= 2.0, "{count}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn the_limit_follows_rate_limit_per_minute() {
    let app = TestApp::spawn_with(Backend::Sqlite, "rate_limit_config", |config| {
        config.edge.rate_limit_per_minute = 2;
    })
    .await
    .unwrap();
    for _ in 0..2 {
        let response = pre_reserve_from(&app, "198.51.100.1", None).await;
        assert_eq!(response.status(), StatusCode::UNPROCESSABLE_ENTITY);
    }
    let limited = pre_reserve_from(&app, "198.51.100.1", None).await;
    assert_eq!(limited.status(), StatusCode::TOO_MANY_REQUESTS);
    // Reads are never limited.
    let (status, _) = app.get("/api/v1/reservations/accommodations").await;
    assert_eq!(status, StatusCode::OK);
}

#[tokio::test]
async fn cors_preflight_allows_configured_origins_only() {
    let app = TestApp::spawn_with(Backend::Sqlite, "cors", |config| {
        config.edge.allowed_origins = vec!["https://book.example".into()];
    })
    .await
    .unwrap();
    let preflight = |origin: &'static str| {
        app.client
            .request(reqwest::Method::OPTIONS, app.url(PRE_RESERVE))
            .header(ORIGIN, origin)
            .header(ACCESS_CONTROL_REQUEST_METHOD, "POST")
            .header(
                "access-control-request-headers",
                "content-type,idempotency-key",
            )
            .send()
    };
    let allowed = preflight("https://book.example").await.unwrap();
    assert!(allowed.status().is_success(), "{}", allowed.status());
    assert_eq!(
        allowed.headers()[ACCESS_CONTROL_ALLOW_ORIGIN],
        "https://book.example"
    );
    let methods = allowed.headers()["access-control-allow-methods"]
        .to_str()
        .unwrap()
        .to_owned();
    assert!(methods.contains("POST"), "{methods}");

    let refused = preflight("https://evil.example").await.unwrap();
    assert!(refused.headers().get(ACCESS_CONTROL_ALLOW_ORIGIN).is_none());

    // A simple request from the allowed origin carries the header too.
    let get = app
        .client
        .get(app.url("/api/v1/reservations/accommodations"))
        .header(ORIGIN, "https://book.example")
        .send()
        .await
        .unwrap();
    assert_eq!(
        get.headers()[ACCESS_CONTROL_ALLOW_ORIGIN],
        "https://book.example"
    );
}

#[tokio::test]
async fn no_origin_is_allowed_by_default() {
    let app = TestApp::spawn(Backend::Sqlite, "cors_default")
        .await
        .unwrap();
    assert!(app.state.edge.allowed_origins.is_empty());
    let response = app
        .client
        .request(reqwest::Method::OPTIONS, app.url(PRE_RESERVE))
        .header(ORIGIN, "https://book.example")
        .header(ACCESS_CONTROL_REQUEST_METHOD, "POST")
        .send()
        .await
        .unwrap();
    assert!(
        response
            .headers()
            .get(ACCESS_CONTROL_ALLOW_ORIGIN)
            .is_none()
    );
}
