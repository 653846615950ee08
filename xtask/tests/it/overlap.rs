//! `cargo xtask overlap` against in-process fake services: one that enforces the invariant
//! (pass), one that accepts everything (fail, extra winners named), one that answers 500 to
//! some requests (fail, those named), and the refusal to run without `--mutating`.
//! The real service is exercised in `overlap_service.rs`.

use std::collections::BTreeMap;
use std::process::Command;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::routing::{get, post};
use axum::{Json, Router};
use chrono::NaiveDate;
use serde::Deserialize;
use serde_json::{Value, json};
use xtask::config::Target;
use xtask::overlap::{AdminToken, OverlapPlan, run_rounds};
use xtask::verdict::Verdict;

const TOKEN: &str = "fake-admin-token";
/// The fake's listed cabin, and the test-fixture cabin it finds or creates for an admin: like
/// the real service, a fixture answers 404 to a request without the admin token.
const LISTED_ID: i64 = 7;
const FIXTURE_ID: i64 = 9;

fn is_admin(headers: &HeaderMap) -> bool {
    headers.get("authorization").and_then(|v| v.to_str().ok()) == Some(&format!("Bearer {TOKEN}"))
}

fn no_such_cabin() -> (StatusCode, Json<Value>) {
    (
        StatusCode::NOT_FOUND,
        Json(json!({"error": "not_found", "detail": "no active accommodation"})),
    )
}

async fn put_fixture(Path(slug): Path<String>, headers: HeaderMap) -> (StatusCode, Json<Value>) {
    assert_eq!(slug, "overlap-check");
    if !is_admin(&headers) {
        return (
            StatusCode::UNAUTHORIZED,
            Json(json!({"error": "unauthorized"})),
        );
    }
    (
        StatusCode::OK,
        Json(json!({"id": FIXTURE_ID, "slug": slug, "capacity": 2})),
    )
}

#[derive(Debug, Clone, Copy, PartialEq)]
enum Mode {
    /// Refuses overlapping active stays, like the real service.
    Correct,
    /// No constraint: every pre-reserve wins.
    AcceptAll,
    /// Like `Correct`, but every third pre-reserve answers 500.
    ServerErrors,
}

#[derive(Debug)]
struct Booking {
    check_in: NaiveDate,
    check_out: NaiveDate,
    active: bool,
}

struct Fake {
    mode: Mode,
    posts: AtomicUsize,
    requests: AtomicUsize,
    bookings: Mutex<BTreeMap<String, Booking>>,
}

impl Fake {
    fn active(&self) -> usize {
        self.bookings
            .lock()
            .unwrap()
            .values()
            .filter(|b| b.active)
            .count()
    }
}

#[derive(Deserialize)]
struct PreReserve {
    accommodation_id: i64,
    check_in: NaiveDate,
    check_out: NaiveDate,
}

#[derive(Deserialize)]
struct Window {
    from: NaiveDate,
    to: NaiveDate,
}

async fn pre_reserve(
    State(fake): State<Arc<Fake>>,
    headers: HeaderMap,
    Json(body): Json<PreReserve>,
) -> (StatusCode, Json<Value>) {
    let n = fake.posts.fetch_add(1, Ordering::SeqCst);
    assert!(
        headers.contains_key("idempotency-key"),
        "every request carries its own key"
    );
    if body.accommodation_id == FIXTURE_ID && !is_admin(&headers) {
        return no_such_cabin();
    }
    if fake.mode == Mode::ServerErrors && n % 3 == 2 {
        return (
            StatusCode::INTERNAL_SERVER_ERROR,
            Json(json!({"error": "internal", "detail": "the fake broke"})),
        );
    }
    let mut bookings = fake.bookings.lock().unwrap();
    let overlaps = bookings
        .values()
        .any(|b| b.active && b.check_in < body.check_out && body.check_in < b.check_out);
    if overlaps && fake.mode != Mode::AcceptAll {
        return (
            StatusCode::CONFLICT,
            Json(json!({"error": "date_overlap", "detail": "taken"})),
        );
    }
    let code = format!("CB-FAKE{n:04}");
    bookings.insert(
        code.clone(),
        Booking {
            check_in: body.check_in,
            check_out: body.check_out,
            active: true,
        },
    );
    (
        StatusCode::CREATED,
        Json(json!({"code": code, "nights": 2})),
    )
}

async fn cancel(
    State(fake): State<Arc<Fake>>,
    Path(code): Path<String>,
    headers: HeaderMap,
) -> (StatusCode, Json<Value>) {
    let bearer = headers.get("authorization").and_then(|v| v.to_str().ok());
    if bearer != Some(&format!("Bearer {TOKEN}")) {
        return (
            StatusCode::UNAUTHORIZED,
            Json(json!({"error": "unauthorized"})),
        );
    }
    match fake.bookings.lock().unwrap().get_mut(&code) {
        Some(booking) => {
            booking.active = false;
            (
                StatusCode::OK,
                Json(json!({"code": code, "status": "cancelled"})),
            )
        }
        None => (StatusCode::NOT_FOUND, Json(json!({"error": "not_found"}))),
    }
}

async fn availability(
    State(fake): State<Arc<Fake>>,
    Path(id): Path<i64>,
    Query(window): Query<Window>,
    headers: HeaderMap,
) -> (StatusCode, Json<Value>) {
    if id == FIXTURE_ID && !is_admin(&headers) {
        return no_such_cabin();
    }
    let bookings: Vec<Value> = fake
        .bookings
        .lock()
        .unwrap()
        .values()
        .filter(|b| b.active && b.check_in < window.to && window.from < b.check_out)
        .map(
            |b| json!({"check_in": b.check_in, "check_out": b.check_out, "status": "pre_reserved"}),
        )
        .collect();
    (
        StatusCode::OK,
        Json(
            json!({"accommodation_id": id, "from": window.from, "to": window.to, "bookings": bookings}),
        ),
    )
}

fn router(fake: Arc<Fake>) -> Router {
    let counted = fake.clone();
    Router::new()
        .route(
            "/api/v1/healthz",
            get(|| async { Json(json!({"status": "healthy"})) }),
        )
        .route(
            "/api/v1/reservations/accommodations",
            get(|| async { Json(json!([{"id": LISTED_ID, "capacity": 4, "name": "Cabaña"}])) }),
        )
        .route(
            "/api/v1/admin/test-fixtures/{slug}",
            axum::routing::put(put_fixture),
        )
        .route(
            "/api/v1/accommodations/{id}/availability",
            get(availability),
        )
        .route("/api/v1/reservations/pre-reserve", post(pre_reserve))
        .route("/api/v1/reservations/{code}/cancel", post(cancel))
        .layer(axum::middleware::from_fn(
            move |req: axum::extract::Request, next: axum::middleware::Next| {
                counted.requests.fetch_add(1, Ordering::SeqCst);
                next.run(req)
            },
        ))
        .with_state(fake)
}

/// Starts a fake on `127.0.0.1:0` in the current runtime; returns its URL and state.
async fn start(mode: Mode) -> (String, Arc<Fake>) {
    let fake = Arc::new(Fake {
        mode,
        posts: AtomicUsize::new(0),
        requests: AtomicUsize::new(0),
        bookings: Mutex::new(BTreeMap::new()),
    });
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    let app = router(fake.clone());
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    (url, fake)
}

fn plan(concurrency: usize, rounds: u32) -> OverlapPlan {
    let mut plan = OverlapPlan::new(Some(AdminToken::new(TOKEN)));
    plan.concurrency = concurrency;
    plan.rounds = rounds;
    plan
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_service_that_enforces_the_invariant_passes_and_is_left_clean() {
    let (url, fake) = start(Mode::Correct).await;
    let report = run_rounds(&Target::adhoc(&url).unwrap(), &plan(50, 2))
        .await
        .unwrap();
    assert_eq!(
        report.verdict,
        Verdict::Pass,
        "{}",
        xtask::overlap::render_text(&report)
    );
    assert_eq!(
        report.accommodation_id, FIXTURE_ID,
        "overlap books its own fixture cabin, not the listed one"
    );
    assert_eq!(report.rounds.len(), 2);
    for round in &report.rounds {
        assert_eq!(round.race.winners.len(), 1);
        assert_eq!(round.race.conflicts, 49);
        // The winner, and the back-to-back probe.
        assert_eq!(round.cleanup.created.len(), 2);
        assert_eq!(round.cleanup.cancelled.len(), 2);
        assert_eq!(round.cleanup.still_active, Some(0));
        let ahead = (round.check_in - chrono::Utc::now().date_naive()).num_days();
        assert!(ahead >= 180, "the window starts {ahead} days ahead");
    }
    assert_eq!(fake.posts.load(Ordering::SeqCst), 2 * (50 + 2));
    assert_eq!(fake.active(), 0, "everything the run created was cancelled");
    // The report survives the record round trip the report task relies on.
    let text = serde_json::to_string(&report).unwrap();
    let back: xtask::overlap::OverlapReport = serde_json::from_str(&text).unwrap();
    assert_eq!(back.rounds[0].race, report.rounds[0].race);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_service_without_the_constraint_fails_naming_the_extra_winners() {
    let (url, fake) = start(Mode::AcceptAll).await;
    let report = run_rounds(&Target::adhoc(&url).unwrap(), &plan(10, 1))
        .await
        .unwrap();
    assert_eq!(report.verdict, Verdict::Fail);
    let round = &report.rounds[0];
    assert_eq!(round.race.winners.len(), 10);
    let problems = round.problems().join("\n");
    for code in &round.race.winners {
        assert!(
            problems.contains(code.as_str()),
            "{code} not named in:\n{problems}"
        );
    }
    assert!(problems.contains("availability"), "{problems}");
    assert!(problems.contains("overlap_by_one_night"), "{problems}");
    // Even the double bookings are cancelled: 10 winners + 2 accepted probes.
    assert_eq!(round.cleanup.cancelled.len(), 12);
    assert_eq!(fake.active(), 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn server_errors_fail_the_round_naming_the_requests() {
    let (url, fake) = start(Mode::ServerErrors).await;
    let report = run_rounds(&Target::adhoc(&url).unwrap(), &plan(9, 1))
        .await
        .unwrap();
    assert_eq!(report.verdict, Verdict::Fail);
    let race = &report.rounds[0].race;
    assert_eq!(race.others.len(), 1, "{:?}", race.others);
    assert_eq!(race.others[0].label, "500 internal");
    assert_eq!(race.others[0].count, 3);
    assert!(race.others[0].sample.contains("the fake broke"));
    let problems = race.problems.join("\n");
    assert!(
        problems.contains("500 internal") && problems.contains('#'),
        "{problems}"
    );
    assert_eq!(fake.active(), 0);
}

/// A directory that is a Cargo workspace of its own, so the binary records its result there.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_refused_admin_token_stops_the_run_before_anything_is_booked() {
    let (url, fake) = start(Mode::Correct).await;
    let mut plan = plan(10, 1);
    plan.admin_token = Some(AdminToken::new("not-the-token"));
    let error = run_rounds(&Target::adhoc(&url).unwrap(), &plan)
        .await
        .expect_err("a token the service refuses must stop the run");
    assert!(
        format!("{error:#}").contains("refused the admin token"),
        "{error:#}"
    );
    assert_eq!(fake.bookings.lock().unwrap().len(), 0, "nothing was booked");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_race_of_one_or_past_dates_cannot_run() {
    let (url, fake) = start(Mode::Correct).await;
    let target = Target::adhoc(&url).unwrap();
    let error = run_rounds(&target, &plan(1, 1)).await.unwrap_err();
    assert!(format!("{error:#}").contains("at least 2"), "{error:#}");
    let mut past = plan(10, 1);
    let day = |text: &str| text.parse::<chrono::NaiveDate>().unwrap();
    past.stay = xtask::overlap::Stay::new(day("2020-01-01"), day("2020-01-03"));
    let error = run_rounds(&target, &past).await.unwrap_err();
    assert!(format!("{error:#}").contains("in the past"), "{error:#}");
    assert_eq!(
        fake.posts.load(std::sync::atomic::Ordering::SeqCst),
        0,
        "nothing was sent"
    );
}

fn scratch_workspace() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("Cargo.toml"), "[workspace]\nmembers = []\n").unwrap();
    dir
}

fn xtask(dir: &std::path::Path, args: &[&str]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_xtask"))
        .arg("overlap")
        .args(args)
        .current_dir(dir)
        .env_remove("RUN_MUTATING")
        .env_remove("CABANAS_ADMIN_TOKEN")
        .env_remove("GITHUB_STEP_SUMMARY")
        .output()
        .unwrap()
}

#[test]
fn without_mutating_it_exits_2_and_sends_nothing() {
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let (url, fake) = runtime.block_on(start(Mode::Correct));
    let dir = scratch_workspace();
    let output = xtask(dir.path(), &["--url", &url, "--admin-token", TOKEN]);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(2), "{stderr}");
    assert!(
        stderr.contains("--mutating") && stderr.contains("RUN_MUTATING"),
        "{stderr}"
    );
    assert_eq!(fake.posts.load(Ordering::SeqCst), 0);
    assert_eq!(fake.requests.load(Ordering::SeqCst), 0, "no request at all");
}

#[test]
fn without_a_way_to_clean_up_it_exits_2_before_sending() {
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let (url, fake) = runtime.block_on(start(Mode::Correct));
    let dir = scratch_workspace();
    let output = xtask(dir.path(), &["--url", &url, "--mutating"]);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(2), "{stderr}");
    assert!(stderr.contains("--no-cleanup"), "{stderr}");
    assert_eq!(fake.requests.load(Ordering::SeqCst), 0);
}

#[test]
fn the_binary_exits_1_on_double_bookings_and_records_them() {
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let (url, fake) = runtime.block_on(start(Mode::AcceptAll));
    let dir = scratch_workspace();
    let output = xtask(
        dir.path(),
        &[
            "--url",
            &url,
            "--mutating",
            "--admin-token",
            TOKEN,
            "--concurrency",
            "4",
            "--json",
        ],
    );
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(1), "{stderr}");
    assert!(stderr.contains("FAIL"), "{stderr}");
    assert!(!stderr.contains(TOKEN) && !String::from_utf8_lossy(&output.stdout).contains(TOKEN));
    let record: Value = serde_json::from_slice(&output.stdout).expect("--json prints the record");
    assert_eq!(record["task"], "overlap");
    assert_eq!(record["environment"], "adhoc");
    assert_eq!(record["verdict"], "fail");
    let winners = record["result"]["rounds"][0]["race"]["winners"]
        .as_array()
        .unwrap();
    assert_eq!(winners.len(), 4);
    for winner in winners {
        assert!(
            stderr.contains(winner.as_str().unwrap()),
            "{winner} not named"
        );
    }
    let saved = std::fs::read_dir(dir.path().join("target/xtask/runs"))
        .unwrap()
        .count();
    assert_eq!(saved, 1, "the result record is saved");
    assert_eq!(fake.active(), 0);
}
