//! The middleware every route shares, exercised with routes that misbehave on purpose: a
//! handler panic becomes a 500 with the error body (the panic message stays in the log), and a
//! handler that outlives the request timeout becomes a 503 `timeout`.

use std::time::Duration;

use crate::common;

use axum::Router;
use axum::routing::get;
use backend::config::DatabaseUrl;
use backend::{Config, Db};
use common::client;
use reqwest::StatusCode;
use serde_json::Value;

async fn serve_misbehaving_routes() -> (String, tempfile::TempDir, tokio::task::JoinHandle<()>) {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite:{}?mode=rwc", dir.path().join("test.db").display());
    let mut config = Config::for_database(DatabaseUrl::parse(&url).unwrap());
    config.request_timeout = Duration::from_secs(1);
    let db = Db::connect(&config).await.unwrap();
    db.migrate().await.unwrap();
    db.close().await;
    let state = backend::build_state(&config).await.unwrap();

    let routes = Router::new()
        .route(
            "/api/v1/test/panic/{id}",
            get(|| async {
                panic!("secret detail of the failure");
                #[allow(unreachable_code)]
                ""
            }),
        )
        .route(
            "/api/v1/test/slow",
            get(|| async {
                tokio::time::sleep(Duration::from_secs(30)).await;
                "too late"
            }),
        )
        .merge(backend::http::health::router());
    let app = backend::http::with_middleware(routes, state);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    let server = tokio::spawn(async move {
        axum::serve(listener, axum::ServiceExt::into_make_service(app))
            .await
            .unwrap()
    });
    (base, dir, server)
}

async fn get_json(url: &str) -> (StatusCode, Value) {
    common::read(client().get(url).send().await.unwrap()).await
}

#[tokio::test]
async fn a_handler_panic_becomes_a_500_without_its_message() {
    let (base, _dir, server) = serve_misbehaving_routes().await;
    let (status, body) = get_json(&format!("{base}/api/v1/test/panic/7")).await;
    assert_eq!(status, StatusCode::INTERNAL_SERVER_ERROR, "{body}");
    assert_eq!(body["error"], "internal");
    assert!(!body.to_string().contains("secret detail"), "{body}");

    // The service keeps serving, and the metrics count the 500 under the route template.
    let (status, _) = get_json(&format!("{base}/api/v1/healthz")).await;
    assert_eq!(status, StatusCode::OK);
    let text = common::get_text(&client(), format!("{base}/metrics")).await;
    let line = text
        .lines()
        .find(|l| l.starts_with("http_requests_total") && l.contains("/api/v1/test/panic/{id}"))
        .unwrap_or_else(|| panic!("no counter for the panic route:\n{text}"));
    assert!(line.contains("status=\"500\""), "{line}");
    server.abort();
}

#[tokio::test]
async fn a_handler_past_the_request_timeout_becomes_a_503() {
    let (base, _dir, server) = serve_misbehaving_routes().await;
    let (status, body) = get_json(&format!("{base}/api/v1/test/slow")).await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE, "{body}");
    assert_eq!(body["error"], "timeout");
    server.abort();
}
