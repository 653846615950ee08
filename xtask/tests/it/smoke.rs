//! `cargo xtask smoke` against in-process servers that implement the service's smoke-visible
//! routes, healthy and broken in the ways a deploy breaks. Load stays small; nothing is timed.

use std::net::SocketAddr;
use std::process::Command;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use axum::Router;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use xtask::config::{SmokeSettings, Target, Thresholds};
use xtask::smoke::report::ServedVersion;
use xtask::smoke::{self, EXPECTED_METRICS, Overrides, SmokePlan, SmokeReport};
use xtask::verdict::Verdict;

/// How a test server misbehaves.
#[derive(Clone, Copy, Debug)]
enum Behaviour {
    Healthy,
    /// Healthy, but the webhooks accept unsigned requests.
    UnsignedWebhooksAccepted,
    /// Healthy, but built before the webhooks existed.
    NoWebhooks,
    /// Every n-th request answers 500.
    FailEvery(u64),
    /// Every answer takes this long.
    Slow(Duration),
    /// 404 for every path (a wrong base URL).
    NotFound,
    /// Healthy, but healthz answers a body its own document does not allow.
    OffContract,
}

/// The fake service's OpenAPI document: the smoke-visible routes, as the real one words them.
fn document() -> serde_json::Value {
    let json = |schema: serde_json::Value| serde_json::json!({ "description": "-", "content": { "application/json": { "schema": schema } } });
    let error = json(serde_json::json!({ "$ref": "#/components/schemas/ErrorBody" }));
    serde_json::json!({
        "openapi": "3.1.0",
        "info": { "title": "fake", "version": "1" },
        "paths": {
            "/api/v1/healthz": { "get": { "responses": { "200": json(serde_json::json!({
                "type": "object", "required": ["status", "checks"],
                "properties": { "status": { "type": "string" }, "checks": { "type": "object" } }
            })) } } },
            "/api/v1/readyz": { "get": { "responses": { "200": json(serde_json::json!({
                "type": "object", "required": ["status"]
            })), "503": error.clone() } } },
            "/api/v1/reservations/accommodations": { "get": { "responses": { "200": json(serde_json::json!({
                "type": "array", "items": { "type": "object", "required": ["id"],
                    "properties": { "id": { "type": "integer" }, "name": { "type": "string" } } }
            })) } } },
            "/api/v1/webhooks/mercadopago": { "post": { "responses": { "401": error.clone() } } },
            "/api/v1/webhooks/whatsapp": { "post": { "responses": { "401": error } } }
        },
        "components": { "schemas": { "ErrorBody": {
            "type": "object", "required": ["error", "detail"],
            "properties": { "error": { "type": "string" }, "detail": { "type": "string" } }
        } } }
    })
}

async fn serve(router: Router) -> SocketAddr {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, router).await.unwrap() });
    addr
}

fn service(behaviour: Behaviour) -> Router {
    let counter = Arc::new(AtomicU64::new(0));
    let off_contract = matches!(behaviour, Behaviour::OffContract);
    let routes = Router::new()
        .route(
            "/api/v1/healthz",
            get(move || async move {
                if off_contract {
                    return axum::Json(serde_json::json!({ "status": "healthy" }));
                }
                axum::Json(serde_json::json!({
                    "status": "healthy",
                    "checks": {"database": {"status": "healthy", "latency_ms": 1}}
                }))
            }),
        )
        .route(
            "/api/v1/openapi.json",
            get(|| async { axum::Json(document()) }),
        )
        .route(
            "/api/v1/readyz",
            get(|| async { axum::Json(serde_json::json!({"status": "ready"})) }),
        )
        .route("/metrics", get(metrics))
        .route(
            "/api/v1/reservations/accommodations",
            get(|| async { axum::Json(serde_json::json!([{"id": 1, "name": "Cabaña 1"}])) }),
        );
    let webhook_status = match behaviour {
        Behaviour::UnsignedWebhooksAccepted => StatusCode::OK,
        _ => StatusCode::UNAUTHORIZED,
    };
    let webhook = post(move |headers: axum::http::HeaderMap| async move {
        // The real service refuses these because they carry no signature.
        let signed =
            headers.contains_key("x-signature") || headers.contains_key("x-hub-signature-256");
        assert!(!signed, "smoke must send its webhook probes unsigned");
        let body = serde_json::json!({ "error": "unauthorized", "detail": "no signature" });
        (webhook_status, axum::Json(body))
    });
    let routes = match behaviour {
        Behaviour::NoWebhooks => routes,
        _ => routes
            .route("/api/v1/webhooks/mercadopago", webhook.clone())
            .route("/api/v1/webhooks/whatsapp", webhook),
    };
    match behaviour {
        Behaviour::Healthy
        | Behaviour::UnsignedWebhooksAccepted
        | Behaviour::NoWebhooks
        | Behaviour::OffContract => routes,
        Behaviour::NotFound => Router::new(),
        Behaviour::FailEvery(n) => routes.layer(axum::middleware::from_fn(
            move |request: axum::extract::Request, next: axum::middleware::Next| {
                let counter = Arc::clone(&counter);
                async move {
                    if counter.fetch_add(1, Ordering::Relaxed) % n == n - 1 {
                        return StatusCode::INTERNAL_SERVER_ERROR.into_response();
                    }
                    next.run(request).await
                }
            },
        )),
        Behaviour::Slow(delay) => routes.layer(axum::middleware::from_fn(
            move |request: axum::extract::Request, next: axum::middleware::Next| async move {
                tokio::time::sleep(delay).await;
                next.run(request).await
            },
        )),
    }
}

async fn metrics() -> Response {
    let mut body = String::new();
    for name in EXPECTED_METRICS {
        body.push_str(&format!(
            "# TYPE {name} counter\n{name}{{app=\"cabanas\"}} 0\n"
        ));
    }
    ([(header::CONTENT_TYPE, "text/plain; version=0.0.4")], body).into_response()
}

/// Accepts connections and closes them without answering.
async fn dropping_server() -> SocketAddr {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        while let Ok((socket, _)) = listener.accept().await {
            drop(socket);
        }
    });
    addr
}

/// Accepts connections and never answers.
async fn hanging_server() -> SocketAddr {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        let mut held = Vec::new();
        while let Ok((socket, _)) = listener.accept().await {
            held.push(socket);
        }
    });
    addr
}

fn small_plan(overrides: Overrides) -> SmokePlan {
    let overrides = Overrides {
        concurrency: overrides.concurrency.or(Some(4)),
        requests: overrides.requests.or(Some(200)),
        warmup: overrides.warmup.or(Some(10)),
        ..overrides
    };
    SmokePlan::resolve(
        &SmokeSettings::default(),
        &Thresholds::default(),
        &overrides,
    )
    .unwrap()
}

async fn measure(addr: SocketAddr, plan: &SmokePlan) -> anyhow::Result<SmokeReport> {
    let target = Target::adhoc(&format!("http://{addr}")).unwrap();
    smoke::measure(&target, plan).await
}

fn check(report: &SmokeReport, name: &str) -> Verdict {
    report.checks.iter().find(|c| c.id == name).unwrap().verdict
}

#[tokio::test]
async fn healthy_service_passes_every_check_and_threshold() {
    let addr = serve(service(Behaviour::Healthy)).await;
    let report = measure(addr, &small_plan(Overrides::default()))
        .await
        .unwrap();
    assert_eq!(report.verdict, Verdict::Pass, "{report:#?}");
    assert_eq!(report.checks.len(), 6);
    assert_eq!(check(&report, "webhooks"), Verdict::Pass);
    // This service has no version endpoint: recorded as such, not as a failure.
    assert_eq!(report.served_version, ServedVersion::NoEndpoint);
    assert_eq!(check(&report, "contract"), Verdict::Pass);
    let bench = report.benchmark.as_ref().unwrap();
    assert_eq!(bench.endpoints.len(), 2);
    for endpoint in &bench.endpoints {
        // The warm-up is excluded: exactly the requested number is counted.
        assert_eq!(endpoint.requests, 200);
        assert_eq!(endpoint.succeeded, 200);
        assert_eq!(endpoint.latency.count, 200);
        assert_eq!(endpoint.thresholds.len(), 2);
        assert!(endpoint.throughput_rps > 0.0);
    }
    // The report survives the saved record's round trip (floats to within printing precision).
    let text = serde_json::to_string(&report).unwrap();
    let back: SmokeReport = serde_json::from_str(&text).unwrap();
    assert_eq!(back.verdict, report.verdict);
    assert_eq!(back.checks, report.checks);
    let again = back.benchmark.unwrap();
    assert_eq!(again.endpoints[1].thresholds.len(), 2);
    assert_eq!(again.endpoints[1].latency.count, 200);
}

#[tokio::test]
async fn an_answer_off_its_document_fails_the_contract_check() {
    let addr = serve(service(Behaviour::OffContract)).await;
    let report = measure(addr, &small_plan(Overrides::default()))
        .await
        .unwrap();
    assert_eq!(
        check(&report, "healthz"),
        Verdict::Pass,
        "healthz alone cannot see it"
    );
    let contract = report.checks.iter().find(|c| c.id == "contract").unwrap();
    assert_eq!(contract.verdict, Verdict::Fail);
    assert!(
        contract
            .summary()
            .contains("GET /api/v1/healthz 200: $: the required field `checks` is missing"),
        "{}",
        contract.summary()
    );
    assert_eq!(report.verdict, Verdict::Fail);
}

#[tokio::test]
async fn webhooks_that_accept_unsigned_requests_fail_the_smoke() {
    let addr = serve(service(Behaviour::UnsignedWebhooksAccepted)).await;
    let report = measure(addr, &small_plan(Overrides::default()))
        .await
        .unwrap();
    assert_eq!(report.verdict, Verdict::Fail);
    let webhooks = report.checks.iter().find(|c| c.id == "webhooks").unwrap();
    assert_eq!(webhooks.verdict, Verdict::Fail);
    assert!(
        webhooks.summary().contains("signature checking is off"),
        "{}",
        webhooks.summary()
    );
    assert!(webhooks.fix.as_deref().unwrap().contains("unsigned"));
    // Everything else about the service is fine.
    assert_eq!(check(&report, "healthz"), Verdict::Pass);
}

#[tokio::test]
async fn a_build_without_webhooks_fails_the_smoke() {
    let addr = serve(service(Behaviour::NoWebhooks)).await;
    let report = measure(addr, &small_plan(Overrides::default()))
        .await
        .unwrap();
    let webhooks = report.checks.iter().find(|c| c.id == "webhooks").unwrap();
    assert_eq!(webhooks.verdict, Verdict::Fail);
    assert!(
        webhooks
            .summary()
            .contains("/api/v1/webhooks/whatsapp: 404, expected 401"),
        "{}",
        webhooks.summary()
    );
}

#[tokio::test]
async fn a_share_of_500s_fails_on_the_error_rate() {
    let addr = serve(service(Behaviour::FailEvery(10))).await;
    let plan = small_plan(Overrides {
        endpoints: vec!["/api/v1/reservations/accommodations".into()],
        ..Overrides::default()
    });
    let report = measure(addr, &plan).await.unwrap();
    assert_eq!(report.verdict, Verdict::Fail);
    let endpoint = &report.benchmark.as_ref().unwrap().endpoints[0];
    let errors_500 = endpoint.errors.status.get(&500).copied().unwrap_or(0);
    assert!((15..=25).contains(&errors_500), "{:?}", endpoint.errors);
    let error_rate = &endpoint.thresholds[1];
    assert_eq!(
        (error_rate.metric(), error_rate.verdict()),
        ("error rate", Verdict::Fail)
    );
    // Latency covers every answered request, the 500s included.
    assert_eq!(endpoint.latency.count, 200);
    assert_eq!(endpoint.success_latency.count, 200 - errors_500);
}

#[tokio::test]
async fn a_slow_service_fails_on_p95() {
    let addr = serve(service(Behaviour::Slow(Duration::from_millis(30)))).await;
    let plan = small_plan(Overrides {
        requests: Some(40),
        p95_ms: Some(5.0),
        ..Overrides::default()
    });
    let report = measure(addr, &plan).await.unwrap();
    assert_eq!(report.verdict, Verdict::Fail);
    for endpoint in &report.benchmark.as_ref().unwrap().endpoints {
        let p95 = &endpoint.thresholds[0];
        assert_eq!(
            (p95.metric(), p95.verdict()),
            ("p95 latency", Verdict::Fail)
        );
        assert!(p95.measured.unwrap() >= 30.0, "{p95:?}");
        assert_eq!(endpoint.thresholds[1].verdict(), Verdict::Pass);
    }
}

#[tokio::test]
async fn a_wrong_base_url_answering_404_fails() {
    let addr = serve(service(Behaviour::NotFound)).await;
    let report = measure(addr, &small_plan(Overrides::default()))
        .await
        .unwrap();
    assert_eq!(report.verdict, Verdict::Fail);
    assert!(
        report.checks.iter().all(|c| c.verdict == Verdict::Fail),
        "{:#?}",
        report.checks
    );
    for endpoint in &report.benchmark.as_ref().unwrap().endpoints {
        assert_eq!(endpoint.errors.status.get(&404), Some(&200));
        assert_eq!(endpoint.succeeded, 0);
        assert_eq!(endpoint.verdict, Verdict::Fail);
    }
}

#[tokio::test]
async fn dropped_connections_are_transport_errors() {
    let addr = dropping_server().await;
    let plan = small_plan(Overrides {
        requests: Some(50),
        warmup: Some(0),
        ..Overrides::default()
    });
    let report = measure(addr, &plan).await.unwrap();
    assert_eq!(report.verdict, Verdict::Fail);
    assert_eq!(check(&report, "healthz"), Verdict::Fail);
    for endpoint in &report.benchmark.as_ref().unwrap().endpoints {
        assert_eq!(
            endpoint.errors.connect + endpoint.errors.transport,
            50,
            "{:?}",
            endpoint.errors
        );
        assert_eq!(endpoint.latency.count, 0);
        assert!(
            endpoint.thresholds[0]
                .check
                .summary()
                .contains("no request completed")
        );
    }
}

#[tokio::test]
async fn a_hanging_service_times_out() {
    let addr = hanging_server().await;
    let plan = small_plan(Overrides {
        requests: Some(8),
        warmup: Some(0),
        timeout: Some(Duration::from_millis(200)),
        endpoints: vec!["/api/v1/healthz".into()],
        ..Overrides::default()
    });
    let report = measure(addr, &plan).await.unwrap();
    assert_eq!(report.verdict, Verdict::Fail);
    assert!(
        report.checks[0].summary().contains("timed out"),
        "{:?}",
        report.checks[0]
    );
    // Every check timed out: the benchmark is skipped, and the report says so.
    assert!(report.benchmark.is_none());
    assert!(
        report
            .checks
            .iter()
            .any(|c| c.id == "benchmark" && c.verdict == Verdict::Fail)
    );
}

#[tokio::test]
async fn the_open_model_sends_at_the_rate_and_counts_every_request() {
    let addr = serve(service(Behaviour::Healthy)).await;
    // One connection per request, so no request waits for a free one.
    let plan = small_plan(Overrides {
        rate: Some(400.0),
        requests: Some(40),
        concurrency: Some(40),
        endpoints: vec!["/api/v1/healthz".into()],
        ..Overrides::default()
    });
    let report = measure(addr, &plan).await.unwrap();
    let bench = report.benchmark.as_ref().unwrap();
    // Whether a send was late depends on how busy the machine running the tests is, so the
    // late-sends limit is only required to be there; everything else must pass.
    let endpoint = &bench.endpoints[0];
    assert!(
        endpoint
            .thresholds
            .iter()
            .any(|t| t.metric() == "late sends")
    );
    for threshold in endpoint
        .thresholds
        .iter()
        .filter(|t| t.metric() != "late sends")
    {
        assert_eq!(threshold.verdict(), Verdict::Pass, "{threshold:#?}");
    }
    assert!(
        report.checks.iter().all(|c| c.verdict == Verdict::Pass),
        "{report:#?}"
    );
    assert_eq!(bench.load.model(), "open");
    assert_eq!((endpoint.requests, endpoint.scheduled), (40, 40));
    // 40 requests at 400/s take about 100 ms: the schedule was followed, not a burst.
    assert!(
        bench.endpoints[0].elapsed_ms >= 90.0,
        "{}",
        bench.endpoints[0].elapsed_ms
    );
}

#[tokio::test]
async fn wait_names_the_last_status_when_time_runs_out() {
    let addr = serve(Router::new().route(
        "/api/v1/readyz",
        get(|| async { (StatusCode::SERVICE_UNAVAILABLE, "migrations pending") }),
    ))
    .await;
    let mut plan = small_plan(Overrides::default());
    plan.wait = Some(Duration::from_millis(300));
    let report = measure(addr, &plan).await.unwrap();
    assert_eq!(report.verdict, Verdict::Fail);
    assert_eq!(report.checks.len(), 1, "a failed wait skips the rest");
    assert!(
        report.checks[0]
            .summary()
            .contains("503: migrations pending"),
        "{:?}",
        report.checks[0]
    );
    assert!(report.benchmark.is_none());
}

#[tokio::test]
async fn an_unreachable_target_cannot_run() {
    let addr = {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        listener.local_addr().unwrap()
    };
    let error = format!(
        "{:#}",
        measure(addr, &small_plan(Overrides::default()))
            .await
            .unwrap_err()
    );
    assert!(
        error.contains(&format!("http://{addr}/api/v1/healthz")),
        "{error}"
    );
    assert!(error.contains("cannot reach"), "{error}");
}

/// Runs the built binary in a throwaway workspace, so the exit code is the real one.
fn xtask(url: &str, extra: &[&str]) -> (i32, String, String) {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("Cargo.toml"), "[workspace]\nmembers = []\n").unwrap();
    let output = Command::new(env!("CARGO_BIN_EXE_xtask"))
        .args([
            "smoke",
            "--url",
            url,
            "--requests",
            "50",
            "--concurrency",
            "2",
            "--warmup",
            "5",
        ])
        .args(extra)
        .current_dir(dir.path())
        .env_remove("GITHUB_STEP_SUMMARY")
        .output()
        .unwrap();
    let runs = std::fs::read_dir(dir.path().join("target/xtask/runs"))
        .map(|d| d.count())
        .unwrap_or(0);
    let code = output.status.code().unwrap();
    if code != 2 {
        assert_eq!(runs, 1, "a run that ran saves one record");
    }
    (
        code,
        String::from_utf8_lossy(&output.stdout).into(),
        String::from_utf8_lossy(&output.stderr).into(),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn exit_codes_follow_the_verdict() {
    let healthy = serve(service(Behaviour::Healthy)).await;
    let failing = serve(service(Behaviour::FailEvery(5))).await;
    let slow = serve(service(Behaviour::Slow(Duration::from_millis(20)))).await;
    let unreachable = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap();
    let results = tokio::task::spawn_blocking(move || {
        [
            xtask(&format!("http://{healthy}"), &["--json"]),
            xtask(&format!("http://{failing}"), &[]),
            xtask(&format!("http://{slow}"), &["--p95-ms", "5"]),
            xtask(&format!("http://{unreachable}"), &[]),
            xtask(&format!("http://{healthy}"), &["--duration", "ten"]),
        ]
    })
    .await
    .unwrap();
    let [pass, errors, slow, unreachable_run, bad_flag] = results;
    assert_eq!(pass.0, 0, "{}", pass.2);
    let record: serde_json::Value =
        serde_json::from_str(&pass.1).expect("--json prints the record");
    assert_eq!(record["task"], "smoke");
    assert_eq!(record["environment"], "adhoc");
    assert_eq!(record["verdict"], "pass");
    assert!(
        pass.2.contains("Thresholds"),
        "human text goes to stderr under --json"
    );
    assert_eq!(errors.0, 1, "{}", errors.1);
    assert!(errors.1.contains("error rate"), "{}", errors.1);
    assert_eq!(slow.0, 1, "{}", slow.1);
    assert_eq!(unreachable_run.0, 2, "{}", unreachable_run.2);
    assert!(
        unreachable_run.2.contains(&format!("http://{unreachable}")),
        "{}",
        unreachable_run.2
    );
    assert_eq!(bad_flag.0, 2, "{}", bad_flag.2);
    assert!(bad_flag.2.contains("e.g. 500ms"), "{}", bad_flag.2);
}

#[tokio::test]
async fn the_version_endpoint_answer_is_recorded() {
    let router = service(Behaviour::Healthy).route(
        "/api/v1/version",
        get(|| async { axum::Json(serde_json::json!({"commit": "abc123", "version": "0.1.0"})) }),
    );
    let addr = serve(router).await;
    let report = measure(
        addr,
        &small_plan(Overrides {
            requests: Some(20),
            ..Overrides::default()
        }),
    )
    .await
    .unwrap();
    assert_eq!(report.served_version.commit(), Some("abc123"));
    assert_eq!(report.verdict, Verdict::Pass);
}
