//! Two regions: outside the primary region every write is answered with Fly's
//! `fly-replay: region=<primary>` before it touches the database, and a write that was
//! already replayed is refused instead of replayed again; reads are served where they land,
//! from the region's replica while it is fresh and from the primary when its lag cannot be
//! read. The streaming replica itself (lag, paused replay) is exercised against the local Fly
//! in `xtask/tests/it/regions.rs`.

use std::time::Duration;

use crate::common;

use backend::config::{ReadReplicaConfig, Regions};
use common::{Backend, TestApp, admin_token, metric, monday, plus, read};
use reqwest::StatusCode;
use serde_json::json;

fn region(here: &str, primary: &str) -> Regions {
    Regions {
        here: Some(here.into()),
        primary: Some(primary.into()),
    }
}

#[tokio::test]
async fn a_write_outside_the_primary_region_is_replayed_before_it_touches_the_database() {
    let app = TestApp::spawn_with(Backend::Sqlite, "replay", |config| {
        config.regions = region("gru", "scl");
    })
    .await
    .unwrap();
    let (check_in, check_out) = (monday(3), plus(monday(3), 2));

    let response = app
        .client
        .post(app.url("/api/v1/reservations/pre-reserve"))
        .json(&app.booking(check_in, check_out))
        .send()
        .await
        .unwrap();
    assert_eq!(response.headers()["fly-replay"], "region=scl");
    let (status, body) = read(response).await;
    assert_eq!(status, StatusCode::CONFLICT, "{body}");
    assert_eq!(body["error"], "replay");
    assert_eq!(
        app.bookings_on(check_in, check_out).await,
        0,
        "nothing written here"
    );

    // Admin writes and webhooks too, whatever their body or token.
    let token = admin_token();
    for path in [
        "/api/v1/reservations/ABC123/confirm",
        "/api/v1/reservations/ABC123/cancel",
        "/api/v1/webhooks/mercadopago",
        "/api/v1/webhooks/whatsapp",
    ] {
        let response = app
            .client
            .post(app.url(path))
            .bearer_auth(&token)
            .body("{}")
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), StatusCode::CONFLICT, "{path}");
        assert_eq!(response.headers()["fly-replay"], "region=scl", "{path}");
    }

    // Reads are served here.
    let (status, body) = app.get("/api/v1/reservations/accommodations").await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert!(body.as_array().is_some_and(|a| !a.is_empty()), "{body}");
}

#[tokio::test]
async fn a_write_replayed_into_the_wrong_region_is_refused_not_replayed_again() {
    let app = TestApp::spawn_with(Backend::Sqlite, "replay-loop", |config| {
        config.regions = region("gru", "scl");
    })
    .await
    .unwrap();
    let response = app
        .client
        .post(app.url("/api/v1/reservations/pre-reserve"))
        .header("fly-replay-src", "instance=abc;region=gru;t=1")
        .json(&app.booking(monday(3), plus(monday(3), 2)))
        .send()
        .await
        .unwrap();
    assert!(!response.headers().contains_key("fly-replay"));
    let (status, body) = read(response).await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE, "{body}");
    assert!(body["detail"].as_str().unwrap().contains("scl"), "{body}");
}

#[tokio::test]
async fn in_the_primary_region_writes_are_served() {
    let app = TestApp::spawn_with(Backend::Sqlite, "primary", |config| {
        config.regions = region("scl", "scl");
    })
    .await
    .unwrap();
    let (check_in, check_out) = (monday(3), plus(monday(3), 2));
    let (status, body) = app.pre_reserve(&app.booking(check_in, check_out)).await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    assert_eq!(app.bookings_on(check_in, check_out).await, 1);
}

/// The replica here is the database itself (not in recovery: no lag), so it is fresh; once
/// its pool is closed its lag cannot be read, and reads go to the primary and still answer.
#[tokio::test]
async fn reads_use_the_replica_while_it_is_fresh_and_the_primary_when_it_cannot_tell() {
    let Some(app) = TestApp::spawn_with(Backend::Postgres, "replica-reads", |config| {
        config.read_replica = Some(ReadReplicaConfig {
            url: config.database_url.clone(),
            max_lag: Duration::from_millis(4),
        });
    })
    .await
    else {
        return;
    };
    let replica = r#"db_reads_total{pool="replica"}"#;
    let path = format!(
        "/api/v1/accommodations/{}/availability?from={}&to={}",
        app.cabin_id,
        monday(3),
        plus(monday(3), 2)
    );
    let before = metric(&app, replica).await;
    let (status, body) = app.get(&path).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert!(
        metric(&app, replica).await > before,
        "read from the replica"
    );

    app.state.replica.as_ref().unwrap().db().close().await;
    // The last verdict is reused for a quarter of the bound (1 ms here).
    tokio::time::sleep(Duration::from_millis(5)).await;
    let before = metric(&app, replica).await;
    let (status, body) = app.get(&path).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["bookings"], json!([]));
    assert_eq!(
        metric(&app, replica).await,
        before,
        "not from the closed replica"
    );
}
