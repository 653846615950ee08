//! The load generator itself, against in-process servers: what it counts on plain HTTP/1.1
//! connections (statuses, closes, broken answers), and the open model's verdict when it cannot
//! keep its rate. Nothing here is timed: the servers' behaviour fixes every expected count.

use std::net::SocketAddr;
use std::process::Command;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use axum::Router;
use axum::http::{StatusCode, header};
use axum::response::IntoResponse;
use axum::routing::get;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use xtask::config::{SmokeSettings, Target, Thresholds};
use xtask::smoke::{self, BenchmarkReport, Overrides, SmokePlan};
use xtask::verdict::Verdict;

async fn serve(router: Router) -> SocketAddr {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, router).await.unwrap() });
    addr
}

/// Every third request (counted across connections) answers 503 and closes its connection;
/// the others answer 200 with a 64 KiB body, so answers span several reads.
fn mixed_service() -> Router {
    let counter = Arc::new(AtomicU64::new(0));
    Router::new().route(
        "/mixed",
        get(move || {
            let n = counter.fetch_add(1, Ordering::SeqCst) + 1;
            async move {
                if n.is_multiple_of(3) {
                    (
                        StatusCode::SERVICE_UNAVAILABLE,
                        [(header::CONNECTION, "close")],
                        "busy",
                    )
                        .into_response()
                } else {
                    "x".repeat(64 * 1024).into_response()
                }
            }
        }),
    )
}

/// A server that answers every request with `answer` and then closes the connection.
async fn raw_server(answer: &'static [u8]) -> SocketAddr {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        while let Ok((mut socket, _)) = listener.accept().await {
            tokio::spawn(async move {
                let mut buf = [0u8; 4096];
                let _ = socket.read(&mut buf).await;
                let _ = socket.write_all(answer).await;
            });
        }
    });
    addr
}

fn bench_only(overrides: Overrides) -> SmokePlan {
    let mut plan = SmokePlan::resolve(
        &SmokeSettings::default(),
        &Thresholds::default(),
        &Overrides {
            warmup: Some(0),
            timeout: Some(Duration::from_secs(10)),
            ..overrides
        },
    )
    .unwrap();
    plan.checks = false;
    plan
}

async fn bench(addr: SocketAddr, plan: &SmokePlan) -> BenchmarkReport {
    let target = Target::adhoc(&format!("http://{addr}")).unwrap();
    smoke::measure(&target, plan)
        .await
        .unwrap()
        .benchmark
        .unwrap()
}

#[tokio::test]
async fn statuses_and_closed_connections_are_counted_exactly() {
    let addr = serve(mixed_service()).await;
    let plan = bench_only(Overrides {
        concurrency: Some(3),
        requests: Some(60),
        endpoints: vec!["/mixed".into()],
        max_error_rate: Some(50.0),
        ..Overrides::default()
    });
    let report = bench(addr, &plan).await;
    let e = &report.endpoints[0];
    assert_eq!(e.requests, 60, "{e:#?}");
    assert_eq!(e.succeeded, 40, "{e:#?}");
    assert_eq!(e.errors.status.get(&503), Some(&20), "{e:#?}");
    // A connection the server closes after a complete answer is replaced, not an error.
    assert_eq!(e.errors.transport_total(), 0, "{e:#?}");
    assert_eq!(e.latency.count, 60);
    assert_eq!(e.success_latency.count, 40);
    assert_eq!(
        (e.late, e.scheduled),
        (0, 0),
        "the closed model has no schedule"
    );
    assert_eq!(e.latency_from_release, None, "nor a release to count from");
}

#[tokio::test]
async fn truncated_and_malformed_answers_are_transport_errors() {
    let truncated =
        raw_server(b"HTTP/1.1 200 OK\r\ncontent-length: 100\r\n\r\nonly a few bytes").await;
    let malformed = raw_server(b"this is not HTTP\r\n\r\n").await;
    for addr in [truncated, malformed] {
        let plan = bench_only(Overrides {
            concurrency: Some(2),
            requests: Some(10),
            endpoints: vec!["/any".into()],
            ..Overrides::default()
        });
        let report = bench(addr, &plan).await;
        let e = &report.endpoints[0];
        assert_eq!(e.requests, 10, "{e:#?}");
        assert_eq!(e.succeeded, 0, "{e:#?}");
        assert_eq!(e.errors.transport, 10, "{e:#?}");
        assert_eq!(e.verdict, Verdict::Fail);
    }
}

#[tokio::test]
async fn the_open_model_records_its_schedule_and_holds_late_sends_to_a_limit() {
    // Released one by one by the pacer thread (200 req/s), and in batches by the load
    // threads themselves (20,000 req/s).
    for (rate, requests) in [(200.0, 30), (20_000.0, 2_000)] {
        let addr = serve(mixed_service()).await;
        let plan = bench_only(Overrides {
            concurrency: Some(4),
            rate: Some(rate),
            requests: Some(requests),
            endpoints: vec!["/mixed".into()],
            max_error_rate: Some(50.0),
            ..Overrides::default()
        });
        let report = bench(addr, &plan).await;
        let e = &report.endpoints[0];
        assert_eq!((e.requests, e.scheduled), (requests, requests), "{e:#?}");
        let late = e
            .thresholds
            .iter()
            .find(|t| t.metric() == "late sends")
            .expect("the open model holds its late sends to a limit");
        assert_eq!(late.limit, xtask::smoke::load::MAX_LATE_SHARE_PCT);
        // Every answered request is also counted from its release, which is never before
        // its intended time: request by request, the figure from release is the smaller.
        let released = e
            .latency_from_release
            .expect("the open model counts from the release too");
        assert_eq!(released.count, e.latency.count, "{e:#?}");
        assert!(released.count > 0);
        assert!(released.min_ms <= e.latency.min_ms, "{released:?} {e:#?}");
        assert!(released.p50_ms <= e.latency.p50_ms, "{released:?} {e:#?}");
        assert!(released.max_ms <= e.latency.max_ms, "{released:?} {e:#?}");
    }
}

/// Every answer takes 50 ms: with two connections, all but the first two requests of a burst
/// wait far longer than the late tolerance for a free connection.
fn slow_service() -> Router {
    Router::new().route(
        "/slow",
        get(|| async {
            tokio::time::sleep(Duration::from_millis(50)).await;
            "ok"
        }),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rate_the_generator_cannot_keep_exits_2_and_records_why() {
    let addr = serve(slow_service()).await;
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("Cargo.toml"), "[workspace]\nmembers = []\n").unwrap();
    let url = format!("http://{addr}");
    let cwd = dir.path().to_path_buf();
    let output = tokio::task::spawn_blocking(move || {
        Command::new(env!("CARGO_BIN_EXE_xtask"))
            .args([
                "smoke",
                "--url",
                &url,
                "--skip-checks",
                "--endpoint",
                "/slow",
            ])
            .args([
                "--rate",
                "1000000",
                "--requests",
                "20",
                "--concurrency",
                "2",
            ])
            .args(["--warmup", "0", "--json"])
            .current_dir(&cwd)
            .env_remove("GITHUB_STEP_SUMMARY")
            .output()
            .unwrap()
    })
    .await
    .unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(2), "{stderr}");
    assert!(
        stderr.contains("the generator could not keep the rate"),
        "{stderr}"
    );
    // The run is still recorded, with the shortfall in it.
    let record: serde_json::Value = serde_json::from_slice(&output.stdout).unwrap();
    assert_eq!(record["verdict"], "fail");
    let endpoint = &record["result"]["benchmark"]["endpoints"][0];
    assert_eq!(endpoint["scheduled"], 20);
    assert_eq!(endpoint["requests"], 20);
    assert!(endpoint["late"].as_u64().unwrap() >= 18, "{endpoint}");
    let saved = std::fs::read_dir(dir.path().join("target/xtask/runs"))
        .unwrap()
        .count();
    assert_eq!(saved, 1);
}
