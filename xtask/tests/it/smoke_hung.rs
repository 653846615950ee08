//! `smoke` against a target that accepts connections and never answers (issue #17 item 9):
//! it skips the benchmark when every check timed out, stops the benchmark when its first
//! batch times out, and ends at its deadline, each a failed verdict with the reason.

use std::net::SocketAddr;
use std::time::Duration;

use xtask::config::{SmokeSettings, Target, Thresholds};
use xtask::smoke::{self, Overrides, SmokePlan, SmokeReport};
use xtask::verdict::Verdict;

/// A server that accepts every connection and never says a word.
async fn hung_server() -> SocketAddr {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        let mut held = Vec::new();
        while let Ok((stream, _)) = listener.accept().await {
            held.push(stream);
        }
    });
    addr
}

fn plan(requests: u64) -> SmokePlan {
    SmokePlan::resolve(
        &SmokeSettings::default(),
        &Thresholds::default(),
        &Overrides {
            concurrency: Some(2),
            requests: Some(requests),
            warmup: Some(0),
            timeout: Some(Duration::from_millis(300)),
            ..Overrides::default()
        },
    )
    .unwrap()
}

/// Runs `measure` with a guard against hanging (not a measure of speed).
async fn measure(addr: SocketAddr, plan: &SmokePlan) -> SmokeReport {
    let target = Target::adhoc(&format!("http://{addr}")).unwrap();
    tokio::time::timeout(Duration::from_secs(120), smoke::measure(&target, plan))
        .await
        .expect("smoke against a hung target does not end")
        .unwrap()
}

#[tokio::test]
async fn every_check_timed_out_skips_the_benchmark() {
    let addr = hung_server().await;
    let report = measure(addr, &plan(100_000)).await;
    assert_eq!(report.verdict, Verdict::Fail);
    assert!(
        report.benchmark.is_none(),
        "the benchmark ran against a target that never answers"
    );
    assert!(
        report
            .checks
            .iter()
            .any(|c| c.id == "benchmark" && c.summary().contains("timed out")),
        "the report says why the benchmark was skipped: {:?}",
        report.checks
    );
}

#[tokio::test]
async fn a_first_batch_that_times_out_stops_the_benchmark() {
    let addr = hung_server().await;
    let mut plan = plan(100_000);
    plan.checks = false;
    let report = measure(addr, &plan).await;
    assert_eq!(report.verdict, Verdict::Fail);
    let endpoints = &report.benchmark.as_ref().expect("benchmark").endpoints;
    for endpoint in endpoints {
        // Two connections: the first batch is two requests; a connection may have sent its
        // next one before the other's first timed out, never more.
        assert!(
            endpoint.requests <= 4,
            "{}: {} requests sent after the first batch timed out",
            endpoint.name,
            endpoint.requests
        );
        assert_eq!(endpoint.errors.timeout, endpoint.requests);
    }
}

#[tokio::test]
async fn the_deadline_ends_the_run_with_a_failure() {
    let addr = hung_server().await;
    let mut plan = plan(100_000);
    plan.checks = false;
    plan.timeout = Duration::from_secs(3600);
    if let Some(bench) = plan.bench.as_mut() {
        bench.load.timeout_ms = 3_600_000;
    }
    plan.deadline = Duration::from_secs(1);
    let report = measure(addr, &plan).await;
    assert_eq!(report.verdict, Verdict::Fail);
    assert!(
        report
            .checks
            .iter()
            .any(|c| c.id == "deadline" && c.verdict == Verdict::Fail),
        "{:?}",
        report.checks
    );
}
