//! `watch` against a service it does not control: an in-process server whose faults the test
//! switches between samples (a stretch of 500s, a stop and restart, a new build) and the fake
//! flyctl's `logs --no-tail` (a panic line). Time is an input: the test's pacer says when each
//! sample is taken, so every breach must land on the sample that saw its fault.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::Path;
use std::sync::{Arc, Mutex};

use axum::extract::{Request, State};
use axum::http::StatusCode;
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use chrono::{DateTime, Duration, TimeZone, Utc};
use xtask::flyctl::Flyctl;
use xtask::watch::{BreachKind, LogSource, Pacer, Sampler, StabilityRecord, WatchPlan, observe};

#[path = "watch_fleet/mod.rs"]
mod fleet;

const SECRET: &str = "s3cr3t-pass-value";

/// What the fake service serves; replaced whole on a restart (counters start again).
#[derive(Default)]
struct World {
    fail: bool,
    commit: String,
    started_at: String,
    counts: BTreeMap<(String, u16), u64>,
}

type Shared = Arc<Mutex<World>>;

async fn count(State(world): State<Shared>, request: Request, next: Next) -> Response {
    let route = request.uri().path().to_string();
    let response = next.run(request).await;
    let status = response.status().as_u16();
    *world
        .lock()
        .unwrap()
        .counts
        .entry((route, status))
        .or_default() += 1;
    response
}

async fn metrics(State(world): State<Shared>) -> String {
    let world = world.lock().unwrap();
    let mut text = String::from("# TYPE http_requests_total counter\n");
    let mut per_route: BTreeMap<&str, u64> = BTreeMap::new();
    for ((route, status), n) in &world.counts {
        text.push_str(&format!(
            "http_requests_total{{method=\"GET\",route=\"{route}\",status=\"{status}\"}} {n}\n"
        ));
        *per_route.entry(route).or_default() += n;
    }
    text.push_str("# TYPE http_request_duration_seconds histogram\n");
    for (route, n) in per_route {
        for le in ["0.005", "1", "+Inf"] {
            text.push_str(&format!(
                "http_request_duration_seconds_bucket{{route=\"{route}\",le=\"{le}\"}} {n}\n"
            ));
        }
        text.push_str(&format!(
            "http_request_duration_seconds_sum{{route=\"{route}\"}} 0.001\n\
             http_request_duration_seconds_count{{route=\"{route}\"}} {n}\n"
        ));
    }
    text
}

fn router(world: Shared) -> Router {
    Router::new()
        .route("/api/v1/healthz", get(|| async { "ok" }))
        .route("/api/v1/readyz", get(|| async { "ready" }))
        .route(
            "/api/v1/version",
            get(|State(world): State<Shared>| async move {
                let world = world.lock().unwrap();
                Json(serde_json::json!({
                    "commit": world.commit, "machine": "m1", "started_at": world.started_at
                }))
            }),
        )
        .route(
            "/api/v1/reservations/accommodations",
            get(|State(world): State<Shared>| async move {
                if world.lock().unwrap().fail {
                    StatusCode::INTERNAL_SERVER_ERROR.into_response()
                } else {
                    Json(serde_json::json!([])).into_response()
                }
            }),
        )
        .route("/metrics", get(metrics))
        .layer(axum::middleware::from_fn_with_state(world.clone(), count))
        .with_state(world)
}

/// The fake service on a fixed port, stoppable and restartable.
struct Service {
    addr: SocketAddr,
    world: Shared,
    task: Option<tokio::task::JoinHandle<()>>,
}

impl Service {
    async fn start(addr: SocketAddr, commit: &str, started_at: &str) -> Service {
        let world: Shared = Arc::new(Mutex::new(World {
            commit: commit.to_string(),
            started_at: started_at.to_string(),
            ..World::default()
        }));
        let listener = tokio::net::TcpListener::bind(addr).await.unwrap();
        let addr = listener.local_addr().unwrap();
        let app = router(world.clone());
        let task = tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
        Service {
            addr,
            world,
            task: Some(task),
        }
    }

    /// A service on a free loopback port serving commit abc1234, started at 09:59.
    async fn started() -> Service {
        Service::start(
            "127.0.0.1:0".parse().unwrap(),
            "abc1234",
            "2026-12-01T09:59:00Z",
        )
        .await
    }

    fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    async fn stop(&mut self) {
        if let Some(task) = self.task.take() {
            task.abort();
            let _ = task.await;
        }
    }

    async fn traffic(&self, requests: usize) {
        let url = format!("http://{}/api/v1/reservations/accommodations", self.addr);
        for _ in 0..requests {
            reqwest::get(&url).await.unwrap();
        }
    }
}

fn base() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 12, 1, 10, 0, 0).unwrap()
}

fn at(index: usize) -> DateTime<Utc> {
    base() + Duration::minutes(index as i64)
}

/// Changes the world before each sample, then says the sample is taken at minute `index`.
struct Script {
    service: Service,
}

impl Pacer for Script {
    async fn wait(&mut self, index: usize) -> DateTime<Utc> {
        match index {
            2 => self.service.world.lock().unwrap().fail = true,
            3 => self.service.world.lock().unwrap().fail = false,
            4 => self.service.stop().await,
            5 => {
                let addr = self.service.addr;
                self.service = Service::start(addr, "abc1234", "2026-12-01T10:04:30Z").await;
            }
            6 => self.service.world.lock().unwrap().commit = "def5678".to_string(),
            _ => {}
        }
        if index != 4 {
            self.service.traffic(10).await;
        }
        at(index)
    }
}

fn plan(samples: u64) -> WatchPlan {
    WatchPlan::new(
        std::time::Duration::from_secs(60 * (samples - 1)),
        std::time::Duration::from_secs(60),
        xtask::watch::Limits {
            availability_floor_pct: 99.0,
            error_rate_pct: 1.0,
            p95_ms: 3000.0,
        },
        3,
    )
    .unwrap()
}

/// The fake flyctl: every `logs` call answers the same buffer, except call `panic_call`,
/// whose buffer also has a panic line carrying the secret.
fn fake_flyctl(dir: &Path, panic_call: usize) -> Flyctl {
    let responses = dir.join("responses");
    std::fs::create_dir_all(&responses).unwrap();
    let old = "2026-12-01T09:00:00Z app[m1] eze [info] {\"level\":\"ERROR\",\"message\":\"before the watch\"}\n\
               2026-12-01T09:00:01Z app[m1] eze [info] {\"level\":\"INFO\",\"message\":\"fine\"}\n";
    let panic = format!(
        "{old}2026-12-01T10:06:30Z app[m1] eze [info] thread 'main' panicked at src/db.rs:9: \
         connect postgresql://app:{SECRET}@db/cabanas\n"
    );
    let answer = |stdout: &str| serde_json::json!({"stdout": stdout, "stderr": "", "exit": 0});
    std::fs::write(responses.join("logs.json"), answer(old).to_string()).unwrap();
    std::fs::write(
        responses.join(format!("logs.{panic_call}.json")),
        answer(&panic).to_string(),
    )
    .unwrap();
    let mut flyctl =
        Flyctl::at(env!("CARGO_BIN_EXE_fake-flyctl"), false).with_env("FAKE_FLYCTL_DIR", dir);
    flyctl.hide_values([SECRET]);
    flyctl
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_fault_is_a_breach_at_the_sample_that_saw_it() {
    let service = Service::started().await;
    let url = service.url();
    let fly_dir = tempfile::tempdir().unwrap();
    // Sample 7 is the 8th `logs` call.
    let logs = LogSource::new(fake_flyctl(fly_dir.path(), 8), "cabanas-test", 3);
    let target = xtask::config::Target::named("staging", &url).unwrap();
    let mut sampler = Sampler::new(target, std::time::Duration::from_secs(5), Some(logs)).unwrap();
    let plan = plan(9);
    let mut script = Script { service };
    let samples = observe(&mut sampler, &plan, &mut script, |_| {}).await;
    let record = StabilityRecord::new(&url, Some("cabanas-test"), &plan, samples, false);

    let breaches: Vec<(BreachKind, DateTime<Utc>)> = record
        .stats
        .breaches
        .iter()
        .map(|b| (b.kind, b.at))
        .collect();
    assert_eq!(
        breaches,
        vec![
            (BreachKind::ErrorRate, at(2)),
            (BreachKind::Availability, at(4)),
            (BreachKind::Restart, at(5)),
            (BreachKind::VersionChange, at(6)),
            (BreachKind::LogLines, at(7)),
        ],
        "{:#?}",
        record.stats.breaches
    );
    assert_eq!(record.verdict(), xtask::verdict::Verdict::Fail);
    assert_eq!(record.stats.samples, 9);
    assert_eq!(record.stats.available, 8);
    assert_eq!(record.coverage_pct, 100.0);
    let accommodations = record.stats.routes["/api/v1/reservations/accommodations"];
    assert_eq!(accommodations.server_errors, 10.0, "the stretch of 500s");
    let change = &record.stats.version_changes[0];
    assert_eq!(
        (change.from.as_str(), change.to.as_str()),
        ("abc1234", "def5678")
    );

    // The panic line is kept, its secret masked; the error line from before the watch is
    // not counted.
    assert_eq!(record.stats.log_lines, 1);
    let kept: Vec<&String> = record
        .samples
        .iter()
        .filter_map(|s| s.logs.as_ref())
        .flat_map(|l| &l.kept)
        .collect();
    assert_eq!(kept.len(), 1, "{kept:?}");
    assert!(kept[0].contains("panicked at"), "{kept:?}");
    let json = serde_json::to_string(&record).unwrap();
    assert!(!json.contains(SECRET), "the secret reached the record");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_quiet_service_passes_with_full_coverage() {
    struct Quiet(Service);
    impl Pacer for Quiet {
        async fn wait(&mut self, index: usize) -> DateTime<Utc> {
            self.0.traffic(5).await;
            at(index)
        }
    }
    let service = Service::started().await;
    let url = service.url();
    let target = xtask::config::Target::named("staging", &url).unwrap();
    let mut sampler = Sampler::new(target, std::time::Duration::from_secs(5), None).unwrap();
    let plan = plan(4);
    let samples = observe(&mut sampler, &plan, &mut Quiet(service), |_| {}).await;
    let record = StabilityRecord::new(&url, None, &plan, samples, false);
    assert!(
        record.stats.breaches.is_empty(),
        "{:#?}",
        record.stats.breaches
    );
    assert_eq!(record.verdict(), xtask::verdict::Verdict::Pass);
    assert_eq!(
        record.stats.routes["/api/v1/reservations/accommodations"].requests,
        15.0
    );
    assert!(
        record
            .stats
            .intervals
            .iter()
            .all(|i| i.p95_ms.is_some_and(|p| p < 5.0))
    );
}

/// The task end to end: a bounded run against a live service stops by itself, exits 0 and
/// saves one record whose samples the JSON output carries; a dead one exits 1.
#[test]
fn the_task_runs_for_its_duration_and_saves_a_record() {
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let service = runtime.block_on(Service::started());
    let url = service.url();
    let (code, stdout) = xtask_watch(&url);
    assert_eq!(code, 0, "{stdout}");
    let record: serde_json::Value = serde_json::from_str(&stdout).unwrap();
    assert_eq!(record["task"], "watch");
    assert_eq!(record["environment"], "adhoc");
    assert_eq!(record["result"]["samples"].as_array().unwrap().len(), 3);

    drop(runtime);
    let (code, stdout) = xtask_watch(&url);
    assert_eq!(code, 1, "a service that is gone is a breach: {stdout}");
}

fn xtask_watch(url: &str) -> (i32, String) {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("Cargo.toml"), "[workspace]\nmembers = []\n").unwrap();
    let output = std::process::Command::new(env!("CARGO_BIN_EXE_xtask"))
        .args([
            "watch", "--url", url, "--for", "200ms", "--every", "100ms", "--json",
        ])
        .current_dir(dir.path())
        .env_remove("GITHUB_STEP_SUMMARY")
        .output()
        .unwrap();
    let runs = std::fs::read_dir(dir.path().join("target/xtask/runs"))
        .unwrap()
        .count();
    assert_eq!(runs, 1, "{}", String::from_utf8_lossy(&output.stderr));
    (
        output.status.code().unwrap(),
        String::from_utf8_lossy(&output.stdout).into_owned(),
    )
}

/// Ctrl-C in the middle of a long watch saves what was seen: exit 130, one record marked
/// interrupted, holding the samples taken so far.
#[test]
fn an_interrupt_saves_the_samples_taken_so_far() {
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let service = runtime.block_on(Service::started());
    let url = service.url();
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("Cargo.toml"), "[workspace]\nmembers = []\n").unwrap();
    let task = std::process::Command::new(env!("CARGO_BIN_EXE_xtask"))
        .args(["watch", "--url", &url, "--for", "10m", "--every", "50ms"])
        .current_dir(dir.path())
        .env_remove("GITHUB_STEP_SUMMARY")
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    // Interrupt once the service has seen three samples' probes (an event, not a timer; the
    // bound only keeps a broken run from hanging the suite).
    let seen = || {
        service
            .world
            .lock()
            .unwrap()
            .counts
            .iter()
            .filter(|((route, _), _)| route == "/api/v1/readyz")
            .map(|(_, n)| *n)
            .sum::<u64>()
    };
    let give_up = std::time::Instant::now() + std::time::Duration::from_secs(60);
    while seen() < 3 && std::time::Instant::now() < give_up {
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    xtask::interrupt::send_signal(task.id(), "INT");
    let output = task.wait_with_output().unwrap();
    assert_eq!(output.status.code(), Some(130));
    let record = crate::support::only_record(dir.path());
    let result = &record["result"];
    assert_eq!(result["interrupted"], true);
    let samples = result["samples"].as_array().unwrap().len();
    assert!(samples >= 2, "{samples} samples");
    assert!(samples < result["planned_samples"].as_u64().unwrap() as usize);
}

/// Samples taken at the instants [`at`] gives, without waiting.
struct Instants;

impl Pacer for Instants {
    async fn wait(&mut self, index: usize) -> DateTime<Utc> {
        at(index)
    }
}

/// The fake service, and a fake flyctl whose every `logs` call gives `answer` (its directory
/// holds the calls made).
async fn service_with_logs_answer(
    answer: serde_json::Value,
) -> (Service, tempfile::TempDir, Flyctl) {
    let service = Service::started().await;
    let fly_dir = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(fly_dir.path().join("responses")).unwrap();
    std::fs::write(
        fly_dir.path().join("responses/logs.json"),
        answer.to_string(),
    )
    .unwrap();
    let flyctl = Flyctl::at(env!("CARGO_BIN_EXE_fake-flyctl"), false)
        .with_env("FAKE_FLYCTL_DIR", fly_dir.path());
    (service, fly_dir, flyctl)
}

/// flyctl failing to read the logs (not logged in) is said in the record and the summary,
/// and is no breach of the service.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn logs_that_cannot_be_read_are_reported_not_hidden() {
    let refusal = serde_json::json!({"stdout": "", "stderr": "Error: not logged in", "exit": 1});
    let (service, _fly_dir, flyctl) = service_with_logs_answer(refusal).await;
    let url = service.url();
    let logs = LogSource::new(flyctl, "cabanas-test", 3);
    let target = xtask::config::Target::named("staging", &url).unwrap();
    let mut sampler = Sampler::new(target, std::time::Duration::from_secs(5), Some(logs)).unwrap();
    let plan = plan(2);
    let samples = observe(&mut sampler, &plan, &mut Instants, |_| {}).await;
    let record = StabilityRecord::new(&url, Some("cabanas-test"), &plan, samples, false);
    assert!(record.samples.iter().all(|s| s.logs.is_none()));
    assert!(
        record.stats.breaches.is_empty(),
        "{:#?}",
        record.stats.breaches
    );
    let text = xtask::watch::render::human(&record);
    assert!(text.contains("not read from cabanas-test"), "{text}");
    assert!(text.contains("not logged in"), "{text}");
}

/// Real `fly logs --no-tail` does not exit when the app has logged nothing lately. Every
/// sample is still taken on time: a read that has not answered within its wait is left
/// running, the sample says the logs were not read, and the service is not blamed.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn logs_that_never_answer_stall_no_sample() {
    // Far longer than the whole test: the read never answers while the watch runs.
    let hung = serde_json::json!({"stdout": "", "exit": 0, "sleep_ms": 30_000});
    let (service, fly_dir, flyctl) = service_with_logs_answer(hung).await;
    let url = service.url();
    let wait = std::time::Duration::from_millis(200);
    let logs = LogSource::new(flyctl, "cabanas-test", 3).with_wait(wait);
    let target = xtask::config::Target::named("staging", &url).unwrap();
    let mut sampler = Sampler::new(target, std::time::Duration::from_secs(5), Some(logs)).unwrap();
    let plan = plan(6);
    let started = std::time::Instant::now();
    let samples = observe(&mut sampler, &plan, &mut Instants, |_| {}).await;
    // A guard against hanging, not a speed measure: one blocked read per sample would be
    // 6 x 30 s.
    assert!(
        started.elapsed() < std::time::Duration::from_secs(25),
        "samples waited on the logs: {:?}",
        started.elapsed()
    );
    let record = StabilityRecord::new(&url, Some("cabanas-test"), &plan, samples, false);
    assert_eq!(record.samples.len(), 6);
    assert!(record.samples.iter().all(|s| s.available()));
    assert!(
        record.samples.iter().all(|s| s
            .logs_error
            .as_deref()
            .is_some_and(|e| e.contains("still running"))),
        "{:#?}",
        record.samples
    );
    assert!(
        record.stats.breaches.is_empty(),
        "{:#?}",
        record.stats.breaches
    );
    // One read at a time: the hung one is waited on, not joined by five more.
    let calls = std::fs::read_to_string(fly_dir.path().join("calls.jsonl")).unwrap();
    assert_eq!(calls.lines().count(), 1, "{calls}");
}
