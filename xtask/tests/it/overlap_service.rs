//! `cargo xtask overlap` against the real reservation service, started as a child process on
//! a free loopback port: on SQLite always, on PostgreSQL when `TEST_DATABASE_URL` is set (a
//! fresh database is created in that cluster and dropped afterwards). N=200: the invariant
//! holds, and nothing the run created is left active. The cross-channel round (an imported
//! calendar block raced by N bookings) passes on both databases, and fails against a service
//! started with `CALENDAR_IMPORT=off`.

use std::path::PathBuf;
use std::time::Duration;

use crate::support::{json_of, service_binary};
use serde_json::Value;
use xshell::{Shell, cmd};
use xtask::config::Target;
use xtask::local_service::{LocalService, ServiceSettings};
use xtask::overlap::{OverlapPlan, OverlapReport, render_text, run_rounds, token_from_env_file};
use xtask::verdict::Verdict;

const JWT_SECRET: &str = "overlap-test-secret-0123456789-abcdefghij";
const ADMIN: &str = "overlap-admin@example.com";
const CONCURRENCY: usize = 200;

struct Running {
    service: LocalService,
    env_file: PathBuf,
    dir: tempfile::TempDir,
}

fn start(database_url: String, dir: tempfile::TempDir) -> Running {
    start_with_env(database_url, dir, &[])
}

/// The service with calendar imports from this machine's loopback allowed, as the
/// cross-channel round needs, and `env` on top.
fn start_for_channels(database_url: String, env: &[(&str, &str)]) -> Running {
    let mut all = vec![("CALENDAR_ALLOW_PRIVATE_FEEDS", "on")];
    all.extend_from_slice(env);
    start_with_env(database_url, tempfile::tempdir().unwrap(), &all)
}

fn start_with_env(database_url: String, dir: tempfile::TempDir, env: &[(&str, &str)]) -> Running {
    let settings = ServiceSettings {
        binary: service_binary(),
        database_url,
        jwt_secret: JWT_SECRET.to_string(),
        admin_email: ADMIN.to_string(),
        log_file: dir.path().join("service.log"),
    };
    // `LocalService::start` polls readiness with reqwest, whose timers need a runtime context.
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let service = {
        let _context = runtime.enter();
        LocalService::start_with_env(&settings, env, Duration::from_secs(60))
            .expect("service starts")
    };
    let env_file = dir.path().join(".env.test");
    std::fs::write(
        &env_file,
        format!("JWT_SECRET={JWT_SECRET}\nADMIN_ALLOWED_EMAILS={ADMIN}\n"),
    )
    .unwrap();
    Running {
        service,
        env_file,
        dir,
    }
}

impl Running {
    fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("service.log")).unwrap_or_default()
    }

    /// Runs overlap through the library with N=200 and checks pass and a clean window.
    fn check_invariant(&self) -> OverlapReport {
        let token = token_from_env_file(&self.env_file).unwrap();
        let mut plan = OverlapPlan::new(Some(token.clone()));
        plan.concurrency = CONCURRENCY;
        let target = Target::named("local", self.service.url()).unwrap();
        let runtime = xtask::http::runtime().unwrap();
        let started = std::time::Instant::now();
        let report = runtime
            .block_on(run_rounds(&target, &plan))
            .expect("overlap runs");
        eprintln!("one round at N={CONCURRENCY} took {:?}", started.elapsed());
        assert_eq!(
            report.verdict,
            Verdict::Pass,
            "{}\nservice log tail:\n{}",
            render_text(&report),
            tail(&self.log())
        );
        let round = &report.rounds[0];
        assert_eq!(round.race.conflicts, CONCURRENCY - 1);
        assert_eq!(
            round.cleanup.cancelled.len(),
            2,
            "the winner and the back-to-back probe"
        );
        // Independently of the report: nothing active on the window and its margin.
        let bookings = runtime.block_on(active_bookings(
            &target,
            token.expose(),
            report.accommodation_id,
            round.check_in - chrono::Days::new(1),
            round.check_out + chrono::Days::new(1),
        ));
        assert!(bookings.is_empty(), "left active: {bookings:?}");
        report
    }
}

impl Running {
    /// Runs only the cross-channel round's plan (one ordinary round first, as the task does).
    fn cross_channel(&self) -> OverlapReport {
        let token = token_from_env_file(&self.env_file).unwrap();
        let mut plan = OverlapPlan::new(Some(token));
        plan.concurrency = 20;
        plan.cross_channel = true;
        let target = Target::named("local", self.service.url()).unwrap();
        xtask::http::runtime()
            .unwrap()
            .block_on(run_rounds(&target, &plan))
            .expect("overlap runs")
    }
}

fn assert_cross_channel_holds(running: &Running) {
    let report = running.cross_channel();
    let channel = report.cross_channel.as_ref().expect("the round ran");
    assert_eq!(
        (report.verdict, channel.winners.len(), channel.conflicts),
        (Verdict::Pass, 0, 20),
        "{}\nservice log tail:\n{}",
        render_text(&report),
        tail(&running.log())
    );
    // The feed's block went with the feed: the dates are free again.
    let target = Target::named("local", running.service.url()).unwrap();
    let runtime = xtask::http::runtime().unwrap();
    let token = token_from_env_file(&running.env_file).unwrap();
    let left = runtime.block_on(active_bookings(
        &target,
        token.expose(),
        report.accommodation_id,
        channel.check_in,
        channel.check_out,
    ));
    assert!(left.is_empty(), "left on the blocked window: {left:?}");
}

#[test]
fn the_cross_channel_round_passes_on_sqlite() {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite:{}?mode=rwc", dir.path().join("db.sqlite").display());
    assert_cross_channel_holds(&start_for_channels(url, &[]));
}

#[test]
fn the_cross_channel_round_passes_on_postgresql() {
    let Some(server) =
        crate::support::postgres_server("the_cross_channel_round_passes_on_postgresql")
    else {
        return;
    };
    let database = FreshDatabase::create(&server);
    let running = start_for_channels(database.url.clone(), &[]);
    assert_cross_channel_holds(&running);
    drop(running);
}

/// The round can fail: a service that does not import feeds lets a booking win the dates
/// another channel sold.
#[test]
fn the_cross_channel_round_fails_when_the_service_ignores_feeds() {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite:{}?mode=rwc", dir.path().join("db.sqlite").display());
    let running = start_for_channels(url, &[("CALENDAR_IMPORT", "off")]);
    let report = running.cross_channel();
    let channel = report.cross_channel.as_ref().expect("the round ran");
    assert_eq!(report.verdict, Verdict::Fail, "{}", render_text(&report));
    assert_eq!(channel.import.verdict, Verdict::Fail);
    assert_eq!(channel.winners.len(), 1, "{}", render_text(&report));
    assert!(render_text(&report).contains("cross-channel double booking"));
    assert!(report.leftovers.is_empty(), "the winner was cancelled");
}

/// The active bookings of `accommodation` (a test fixture's need the admin token).
async fn active_bookings(
    target: &Target,
    token: &str,
    accommodation: i64,
    from: chrono::NaiveDate,
    to: chrono::NaiveDate,
) -> Vec<Value> {
    let url = target.endpoint(&format!(
        "/api/v1/accommodations/{accommodation}/availability?from={from}&to={to}"
    ));
    let client = xtask::http::client(Duration::from_secs(10)).unwrap();
    let body: Value = json_of(client.get(&url).bearer_auth(token)).await;
    body["bookings"]
        .as_array()
        .expect("a bookings array")
        .clone()
}

fn tail(log: &str) -> String {
    let lines: Vec<&str> = log.lines().collect();
    lines[lines.len().saturating_sub(30)..].join("\n")
}

#[test]
fn the_invariant_holds_on_sqlite_and_nothing_is_left_behind() {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite:{}?mode=rwc", dir.path().join("db.sqlite").display());
    let running = start(url, dir);
    running.check_invariant();

    // The binary, with the env file a rehearsal would pass: two rounds, a pass, exit 0.
    let workspace = tempfile::tempdir().unwrap();
    std::fs::write(workspace.path().join("Cargo.toml"), "[workspace]\n").unwrap();
    let output = std::process::Command::new(env!("CARGO_BIN_EXE_xtask"))
        .args([
            "overlap",
            "--url",
            running.service.url(),
            "--mutating",
            "--json",
        ])
        .args(["--concurrency", "20", "--rounds", "2", "--env-file"])
        .arg(&running.env_file)
        .current_dir(workspace.path())
        .env_remove("CABANAS_ADMIN_TOKEN")
        .env_remove("GITHUB_STEP_SUMMARY")
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(0), "{stderr}");
    assert!(
        !stderr.contains(JWT_SECRET),
        "the secret must never be printed"
    );
    let record: Value = serde_json::from_slice(&output.stdout).unwrap();
    assert_eq!(record["verdict"], "pass", "{stderr}");
    assert_eq!(record["result"]["rounds"].as_array().unwrap().len(), 2);
}

#[test]
fn the_invariant_holds_on_postgresql_and_nothing_is_left_behind() {
    let Some(server) = crate::support::postgres_server(
        "the_invariant_holds_on_postgresql_and_nothing_is_left_behind",
    ) else {
        return;
    };
    let database = FreshDatabase::create(&server);
    let running = start(database.url.clone(), tempfile::tempdir().unwrap());
    running.check_invariant();
    drop(running); // The service lets go of its connections before the database is dropped.
}

/// A database of its own in the test cluster, dropped afterwards.
struct FreshDatabase {
    server: String,
    name: String,
    url: String,
}

impl FreshDatabase {
    fn create(server: &str) -> FreshDatabase {
        let name = format!("overlap_{}", uuid::Uuid::new_v4().simple());
        let mut url = reqwest::Url::parse(server).expect("TEST_DATABASE_URL is a URL");
        url.set_path(&format!("/{name}"));
        psql(server, &format!("CREATE DATABASE {name}"));
        FreshDatabase {
            server: server.to_string(),
            name,
            url: url.to_string(),
        }
    }
}

impl Drop for FreshDatabase {
    fn drop(&mut self) {
        psql(
            &self.server,
            &format!("DROP DATABASE IF EXISTS {} WITH (FORCE)", self.name),
        );
    }
}

fn psql(server: &str, sql: &str) {
    let sh = Shell::new().unwrap();
    cmd!(sh, "psql {server} -v ON_ERROR_STOP=1 -qc {sql}")
        .quiet()
        .run()
        .unwrap_or_else(|e| panic!("psql failed on `{sql}`: {e}"));
}
