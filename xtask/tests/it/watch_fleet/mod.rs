//! An app of two machines behind one URL, as Fly's proxy serves it: a request with
//! `fly-force-instance-id` goes to that machine, any other to the next machine in turn. Each
//! machine has its own counters and start time; the fake flyctl lists them.

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::{Arc, Mutex};

use axum::extract::{Request, State};
use axum::middleware::Next;
use axum::response::Response;
use axum::routing::get;
use axum::{Extension, Json, Router};
use chrono::{DateTime, Utc};
use xtask::flyctl::Flyctl;
use xtask::watch::{
    BreachKind, MachineSource, Pacer, Sampler, StabilityRecord, WatchPlan, observe,
};

use super::{at, plan};

const APP: &str = "cabanas-test";

/// One machine's process: replaced whole when it starts again.
#[derive(Clone, Default)]
struct Process {
    started_at: String,
    counts: BTreeMap<(String, u16), u64>,
}

impl Process {
    fn started(at: &str) -> Process {
        Process {
            started_at: at.to_string(),
            counts: BTreeMap::new(),
        }
    }
}

/// The machines serving (a stopped one is absent) and whose turn the next request is.
#[derive(Default)]
struct Fleet {
    serving: BTreeMap<String, Process>,
    turn: usize,
}

type Shared = Arc<Mutex<Fleet>>;

#[derive(Clone)]
struct Routed(String);

async fn route(State(fleet): State<Shared>, mut request: Request, next: Next) -> Response {
    let id = {
        let mut fleet = fleet.lock().unwrap();
        let forced = request
            .headers()
            .get(xtask::release::FORCE_INSTANCE_HEADER)
            .and_then(|v| v.to_str().ok())
            .filter(|id| fleet.serving.contains_key(*id))
            .map(str::to_string);
        forced.unwrap_or_else(|| {
            fleet.turn += 1;
            let ids: Vec<&String> = fleet.serving.keys().collect();
            ids[fleet.turn % ids.len()].clone()
        })
    };
    let path = request.uri().path().to_string();
    request.extensions_mut().insert(Routed(id.clone()));
    let response = next.run(request).await;
    let status = response.status().as_u16();
    if let Some(process) = fleet.lock().unwrap().serving.get_mut(&id) {
        *process.counts.entry((path, status)).or_default() += 1;
    }
    response
}

async fn metrics(State(fleet): State<Shared>, Extension(Routed(id)): Extension<Routed>) -> String {
    let fleet = fleet.lock().unwrap();
    let mut text = String::from("# TYPE http_requests_total counter\n");
    for ((route, status), n) in &fleet.serving[&id].counts {
        text.push_str(&format!(
            "http_requests_total{{method=\"GET\",route=\"{route}\",status=\"{status}\"}} {n}\n"
        ));
    }
    text
}

async fn version(
    State(fleet): State<Shared>,
    Extension(Routed(id)): Extension<Routed>,
) -> Json<serde_json::Value> {
    let started_at = fleet.lock().unwrap().serving[&id].started_at.clone();
    Json(serde_json::json!({"commit": "abc1234", "machine": id, "started_at": started_at}))
}

async fn start(fleet: Shared) -> String {
    let app = Router::new()
        .route("/api/v1/healthz", get(|| async { "ok" }))
        .route("/api/v1/readyz", get(|| async { "ready" }))
        .route("/api/v1/version", get(version))
        .route(
            "/api/v1/reservations/accommodations",
            get(|| async { "[]" }),
        )
        .route("/metrics", get(metrics))
        .layer(axum::middleware::from_fn_with_state(fleet.clone(), route))
        .with_state(fleet);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    format!("http://{addr}")
}

/// `fly machines list --json` of m1 and m2 in the given states, as the Machines API keys it.
fn machines_json(states: [&str; 2]) -> String {
    let list: Vec<serde_json::Value> = ["m1", "m2"]
        .iter()
        .zip(states)
        .map(|(id, state)| {
            serde_json::json!({
                "id": id, "name": format!("m-{id}"), "state": state, "region": "scl",
                "config": {"image": "registry.fly.io/cabanas-test:deployment-01",
                           "metadata": {"fly_platform_version": "v2", "fly_process_group": "app"}},
                "checks": [],
            })
        })
        .collect();
    serde_json::to_string(&list).unwrap()
}

/// The fake flyctl: both machines started, except the samples (1-based calls) in `stopped`,
/// where m2 is listed stopped.
fn fake_flyctl(dir: &Path, m2_stopped_at_call: &[usize]) -> Flyctl {
    let responses = dir.join("responses");
    std::fs::create_dir_all(&responses).unwrap();
    let answer = |stdout: String| serde_json::json!({"stdout": stdout, "exit": 0}).to_string();
    let both = answer(machines_json(["started", "started"]));
    std::fs::write(responses.join("machines-list.json"), both).unwrap();
    for call in m2_stopped_at_call {
        let stopped = answer(machines_json(["started", "stopped"]));
        std::fs::write(
            responses.join(format!("machines-list.{call}.json")),
            stopped,
        )
        .unwrap();
    }
    Flyctl::at(env!("CARGO_BIN_EXE_fake-flyctl"), false).with_env("FAKE_FLYCTL_DIR", dir)
}

/// What happens to m2 before a sample.
enum Event {
    /// Nothing: some traffic.
    Quiet,
    /// m2's process dies and flyd starts it again (new counters, new start time).
    Restart,
    /// Fly's proxy stops m2 for idleness.
    AutoStop,
    /// A request wakes m2 again (new counters, new start time).
    AutoStart,
}

struct Script {
    fleet: Shared,
    url: String,
    events: Vec<Event>,
}

impl Pacer for Script {
    async fn wait(&mut self, index: usize) -> DateTime<Utc> {
        let fresh = Process::started(&format!("2026-12-01T10:0{index}:30Z"));
        match self.events.get(index).unwrap_or(&Event::Quiet) {
            Event::Quiet => {}
            Event::Restart | Event::AutoStart => {
                self.fleet
                    .lock()
                    .unwrap()
                    .serving
                    .insert("m2".into(), fresh);
            }
            Event::AutoStop => {
                self.fleet.lock().unwrap().serving.remove("m2");
            }
        }
        for _ in 0..5 {
            reqwest::get(format!("{}/api/v1/reservations/accommodations", self.url))
                .await
                .unwrap();
        }
        at(index)
    }
}

/// Watches the two machines through `events` (one per sample), m2 listed stopped at the
/// samples in `m2_stopped`.
async fn watch(events: Vec<Event>, m2_stopped: &[usize]) -> StabilityRecord {
    let mut serving = BTreeMap::new();
    // m1 has served a while longer: its counters are well ahead of m2's.
    let mut m1 = Process::started("2026-12-01T08:00:00Z");
    m1.counts
        .insert(("/api/v1/reservations/accommodations".into(), 200), 100);
    serving.insert("m1".to_string(), m1);
    serving.insert("m2".to_string(), Process::started("2026-12-01T09:00:00Z"));
    let fleet: Shared = Arc::new(Mutex::new(Fleet { serving, turn: 0 }));
    let url = start(fleet.clone()).await;
    let fly_dir = tempfile::tempdir().unwrap();
    let calls: Vec<usize> = m2_stopped.iter().map(|sample| sample + 1).collect();
    let machines = MachineSource {
        flyctl: fake_flyctl(fly_dir.path(), &calls),
        app: APP.to_string(),
    };
    let target = xtask::config::Target::named("staging", &url).unwrap();
    let mut sampler = Sampler::new(target, std::time::Duration::from_secs(5), None)
        .unwrap()
        .per_machine(machines);
    let plan: WatchPlan = plan(events.len() as u64);
    let mut script = Script {
        fleet,
        url: url.clone(),
        events,
    };
    let samples = observe(&mut sampler, &plan, &mut script, |_| {}).await;
    StabilityRecord::new(&url, Some(APP), &plan, samples, false)
}

fn breaches(record: &StabilityRecord) -> Vec<(BreachKind, DateTime<Utc>)> {
    record
        .stats
        .breaches
        .iter()
        .map(|b| (b.kind, b.at))
        .collect()
}

/// Behind one URL consecutive whole-app scrapes came from m1 and m2 in turn, and m1's
/// higher counters "went back" at every other sample: false restarts. Each machine's own
/// counters are one series.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_healthy_machines_are_no_breach() {
    let record = watch((0..6).map(|_| Event::Quiet).collect(), &[]).await;
    assert_eq!(breaches(&record), vec![], "{:#?}", record.stats.breaches);
    assert_eq!(record.verdict(), xtask::verdict::Verdict::Pass);
    assert_eq!(record.coverage_pct, 100.0);
    let sample = &record.samples[0];
    let ids: Vec<&str> = sample
        .machines
        .iter()
        .flatten()
        .map(|m| m.id.as_str())
        .collect();
    assert_eq!(ids, ["m1", "m2"]);
    // Five requests before each of samples 1..=5, whichever machine served them.
    let served = record.stats.routes["/api/v1/reservations/accommodations"].requests;
    assert_eq!(served, 25.0);
}

/// m2's process starting again while it was listed started the whole time is a crash.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_restart_of_one_machine_is_one_restart() {
    let events = vec![
        Event::Quiet,
        Event::Quiet,
        Event::Quiet,
        Event::Restart,
        Event::Quiet,
    ];
    let record = watch(events, &[]).await;
    assert_eq!(
        breaches(&record),
        vec![(BreachKind::Restart, at(3))],
        "{:#?}",
        record.stats.breaches
    );
    assert!(record.stats.breaches[0].detail.contains("m2"));
}

/// Fly stopping m2 for idleness and starting it on the next request is how the app is
/// configured to run, not a crash; the sample that saw m2 stopped still covers the app.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_auto_stop_and_start_is_no_breach() {
    let events = vec![
        Event::Quiet,
        Event::Quiet,
        Event::AutoStop,
        Event::AutoStart,
        Event::Quiet,
    ];
    let record = watch(events, &[2]).await;
    assert_eq!(breaches(&record), vec![], "{:#?}", record.stats.breaches);
    assert_eq!(record.coverage_pct, 100.0);
    assert_eq!(record.stats.machine_wakes, 1);
    let text = xtask::watch::render::human(&record);
    assert!(text.contains("1 woke from auto-stop"), "{text}");
    let m2_at_2 = &record.samples[2].machines.as_ref().unwrap()[1];
    assert_eq!(
        (m2_at_2.id.as_str(), m2_at_2.state.as_str()),
        ("m2", "stopped")
    );
}
