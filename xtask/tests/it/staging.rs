//! `cargo xtask staging` against the local Fly: the Fly step (login, app exists, or the
//! commands that create it), the refusal without a terminal and without `--yes` (the local
//! Fly's call log shows no mutating call), and an interactive run answered through a
//! pseudo-terminal (`script`), and a full run of the real tasks: staging ready, a second run
//! that skips every fresh step, a smoke failure that stops the run and the run after it
//! resuming at smoke.

use crate::deploy_support;

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use crate::support::service_binary;
use deploy_support::{APP, Fixture};
use xtask::localfly::{Fault, LocalFly};
use xtask::release::verify::{ask_versions, machines_to_ask};
use xtask::repo::Repo;
use xtask::verdict::Verdict;

fn local_fly() -> LocalFly {
    LocalFly::new(env!("CARGO_BIN_EXE_localfly"), service_binary()).unwrap()
}

/// The argv of every flyctl call, joined (the stand's own `local ...` set-up left out).
fn argvs(fly: &LocalFly) -> Vec<String> {
    fly.calls()
        .unwrap()
        .iter()
        .map(|c| c.argv.join(" "))
        .filter(|argv| !argv.starts_with("local "))
        .collect()
}

#[test]
fn the_fly_step_passes_when_logged_in_and_the_app_exists() {
    let fly = local_fly();
    fly.create_app(APP, 1).unwrap();
    let mut out = Vec::new();
    let outcome = xtask::staging::fly::check(&fly.flyctl(), APP, &mut out).unwrap();
    let out = String::from_utf8(out).unwrap();
    assert_eq!(outcome.verdict, Verdict::Pass, "{out} {:?}", outcome.notes);
    assert_eq!(
        argvs(&fly),
        [
            "auth whoami".to_string(),
            format!("status --json --app {APP}")
        ]
    );
}

#[test]
fn a_missing_app_fails_the_fly_step_with_the_commands_that_create_it() {
    let fly = local_fly();
    let mut out = Vec::new();
    let outcome = xtask::staging::fly::check(&fly.flyctl(), "cabanas-nowhere", &mut out).unwrap();
    assert_eq!(outcome.verdict, Verdict::Fail);
    let notes = outcome.notes.join("\n");
    assert!(notes.contains("fly apps create cabanas-nowhere"), "{notes}");
    assert!(
        notes.contains("fly postgres attach cabanas-nowhere-db --app cabanas-nowhere"),
        "{notes}"
    );
}

/// Over records that call the Fly step done, a missing app stops the run at the Fly step
/// with the commands that create the app (not a login), and the position is at that step.
#[test]
fn a_missing_app_stops_at_the_fly_step_with_its_fix_and_the_position_there() {
    let (fly, fixture) = stand();
    // A secrets run reaches Fly: the map calls the login done from then on.
    let secrets = xtask(&fly, &fixture, &["secrets", "--env", "staging"]);
    let stderr = String::from_utf8_lossy(&secrets.stderr);
    assert_eq!(secrets.status.code(), Some(0), "{stderr}");
    // Staging now names an app Fly does not have.
    let deploy_toml = fixture.root().join("ops/deploy.toml");
    let toml = std::fs::read_to_string(&deploy_toml).unwrap();
    std::fs::write(
        &deploy_toml,
        toml.replace(&format!("app = \"{APP}\""), "app = \"cabanas-gone\""),
    )
    .unwrap();
    fixture.commit("staging moves to a new app");
    assert_eq!(state_of(&map_status(&fixture), "fly_login"), "done");

    let out = resumed_and_stopped_at(&fly, &fixture, "fly_login");
    assert!(
        out.contains("  fix:\n    fly apps create cabanas-gone\n"),
        "{out}"
    );
    assert!(!out.contains("run it alone: fly auth"), "{out}");
    // Nothing counts as done past a failed Fly step; predeploy, skipped by --from, is next.
    assert!(
        out.contains("position (staging): 0 of 10 steps done"),
        "{out}"
    );
    assert!(
        out.contains("next: Env file filled, predeploy checks pass (pending)"),
        "{out}"
    );
}

/// A fixture repository whose staging app is on the local Fly.
fn stand() -> (LocalFly, Fixture) {
    let fly = local_fly();
    let url = fly.create_app(APP, 1).unwrap();
    (fly, Fixture::new(&url))
}

/// `cargo xtask <args>` in the fixture, its flyctl the local Fly, stdin closed.
fn xtask(fly: &LocalFly, fixture: &Fixture, args: &[&str]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_xtask"))
        .args(args)
        .current_dir(fixture.root())
        .envs(fly.env())
        .env_remove("GITHUB_STEP_SUMMARY")
        .stdin(Stdio::null())
        .output()
        .unwrap()
}

/// `cargo xtask staging <args>`: its exit code and stderr.
fn run_staging(fly: &LocalFly, fixture: &Fixture, args: &[&str]) -> (Option<i32>, String) {
    let output = xtask(fly, fixture, &[&["staging"], args].concat());
    let stderr = String::from_utf8_lossy(&output.stderr).into_owned();
    (output.status.code(), stderr)
}

fn mutating(argvs: &[String]) -> Vec<&String> {
    argvs
        .iter()
        .filter(|a| a.starts_with("secrets import") || a.starts_with("deploy"))
        .collect()
}

#[test]
fn without_a_terminal_and_without_yes_it_exits_2_before_any_mutating_call() {
    let (fly, fixture) = stand();
    let (code, stderr) = run_staging(&fly, &fixture, &["--from", "fly_login"]);
    assert_eq!(code, Some(2), "{stderr}");
    assert!(stderr.contains("pass --yes"), "{stderr}");
    let calls = argvs(&fly);
    assert!(calls.contains(&"auth whoami".to_string()), "{calls:?}");
    assert_eq!(mutating(&calls), Vec::<&String>::new());
}

#[test]
fn an_interactive_run_asks_before_each_mutating_step() {
    let (fly, fixture) = stand();
    let xtask = env!("CARGO_BIN_EXE_xtask");
    // `script` gives the command a pseudo-terminal and feeds it our stdin: yes to the
    // secrets, no to the deploy.
    let mut child = Command::new("script")
        .args([
            "--quiet",
            "--return",
            "--command",
            &format!("{xtask} staging --from secrets_loaded"),
            "/dev/null",
        ])
        .current_dir(fixture.root())
        .envs(fly.env())
        .env_remove("GITHUB_STEP_SUMMARY")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    child.stdin.take().unwrap().write_all(b"y\nn\n").unwrap();
    let output = child.wait_with_output().unwrap();
    let text = String::from_utf8_lossy(&output.stdout);
    assert!(text.contains("run secrets on staging"), "{text}");
    assert!(text.contains("run deploy on staging"), "{text}");
    assert!(text.contains("deploy: declined"), "{text}");
    assert_eq!(output.status.code(), Some(1), "{text}");
    let calls = argvs(&fly);
    assert!(
        calls.iter().any(|c| c.starts_with("secrets import")),
        "{calls:?}"
    );
    assert!(!calls.iter().any(|c| c.starts_with("deploy")), "{calls:?}");
    fixture.assert_no_secret(&text);
}

/// Secrets of the full run's env file (a local SQLite database the machines share).
const JWT_SECRET: &str = "jwt-staging-Qx7pL9vR2mT5wZ8kN4cB6dF1hJ3sG0y";

/// What the staging database holds before the walk.
#[derive(Clone, Copy, PartialEq)]
enum Database {
    /// Migrated and seeded with the demo cabins.
    Seeded,
    /// No file at all: the release command (`cabanas migrate`) creates and migrates it, and
    /// no cabin exists until overlap creates its own test fixture.
    Empty,
}

/// A repository that passes predeploy and deploys to the local Fly: the workspace's fly.toml,
/// Dockerfile and migrations, an env file for a SQLite database migrated and seeded with the
/// demo accommodations.
fn full_stand() -> (LocalFly, Fixture) {
    full_stand_with(Database::Seeded)
}

fn full_stand_with(database: Database) -> (LocalFly, Fixture) {
    let workspace = Repo::discover_from(Path::new(env!("CARGO_MANIFEST_DIR"))).unwrap();
    // Built (or found up to date) so that the machines serve this workspace's routes.
    let cabanas = xtask::local_service::build_service(&workspace).expect("building the service");
    let fly = LocalFly::new(env!("CARGO_BIN_EXE_localfly"), &cabanas).unwrap();
    let url = fly.create_app(APP, 1).unwrap();
    let fixture = Fixture::new(&url);
    let copy = |relative: &str| {
        let text = std::fs::read_to_string(workspace.path(relative)).unwrap();
        fixture.write(relative, &text);
    };
    copy("backend/Dockerfile");
    copy(".dockerignore");
    for entry in walk(&workspace.path("backend/migrations")) {
        let relative = entry.strip_prefix(workspace.root()).unwrap();
        copy(relative.to_str().unwrap());
    }
    let fly_toml = std::fs::read_to_string(workspace.path("fly.toml")).unwrap();
    let fly_toml: String = fly_toml
        .lines()
        .map(|l| {
            if l.starts_with("app = ") {
                format!("app = \"{APP}\"\n")
            } else if l.starts_with("auto_start_machines") {
                // A machine these tests kill must stay dead: with auto-start the local Fly's
                // proxy, like Fly's, starts it again on the next request and smoke passes.
                "auto_start_machines = false\n".to_string()
            } else {
                format!("{l}\n")
            }
        })
        .collect();
    fixture.write("fly.toml", &fly_toml);
    fixture.write(
        "env/.env.fly.staging.template",
        "# [required, text] database\nDATABASE_URL=<database-url>\n\n\
         # [required, secret-32] token key\nJWT_SECRET=<at-least-32-random-characters>\n\n\
         # [required, text] admins\nADMIN_ALLOWED_EMAILS=<admin@example.org>\n",
    );
    let db = fixture.root().join("data/cabanas.db");
    std::fs::create_dir_all(db.parent().unwrap()).unwrap();
    let database_url = format!("sqlite:{}?mode=rwc", db.display());
    fixture.write(
        "env/.env.fly.staging",
        &format!(
            "DATABASE_URL={database_url}\nJWT_SECRET={JWT_SECRET}\nADMIN_ALLOWED_EMAILS=ops@example.org\n"
        ),
    );
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(
        fixture.root().join("env/.env.fly.staging"),
        std::fs::Permissions::from_mode(0o600),
    )
    .unwrap();
    fixture.write(
        ".gitignore",
        "/target/\n/fake-flyctl/\n/env/.env.fly.staging\n/data/\n/backend/docs/\n",
    );
    fixture.commit("the app");
    if database == Database::Empty {
        return (fly, fixture);
    }
    for step in ["migrate", "seed-demo"] {
        let status = Command::new(&cabanas)
            .arg(step)
            .env("DATABASE_URL", &database_url)
            .env("JWT_SECRET", JWT_SECRET)
            .env("ADMIN_ALLOWED_EMAILS", "ops@example.org")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .unwrap();
        assert!(status.success(), "cabanas {step}");
    }
    (fly, fixture)
}

fn walk(dir: &Path) -> Vec<PathBuf> {
    let mut files = Vec::new();
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            files.extend(walk(&path));
        } else {
            files.push(path);
        }
    }
    files
}

/// `cargo xtask staging --yes --from <step>` stops (exit 1) at that very step: its stderr.
fn resumed_and_stopped_at(fly: &LocalFly, fixture: &Fixture, step: &str) -> String {
    let (code, out) = run_staging(fly, fixture, &["--yes", "--from", step]);
    assert_eq!(code, Some(1), "{out}");
    assert!(out.contains(&format!("STOPPED at {step}")), "{out}");
    out
}

/// Runs `cargo xtask staging --yes`; returns the exit code and stderr.
fn run_yes(fly: &LocalFly, fixture: &Fixture) -> (Option<i32>, String) {
    run_staging(fly, fixture, &["--yes"])
}

/// `cargo xtask status --env staging --json` in the fixture.
fn map_status(fixture: &Fixture) -> serde_json::Value {
    let output = Command::new(env!("CARGO_BIN_EXE_xtask"))
        .args(["status", "--env", "staging", "--json"])
        .current_dir(fixture.root())
        .output()
        .unwrap();
    serde_json::from_slice(&output.stdout).unwrap()
}

fn state_of(status: &serde_json::Value, id: &str) -> String {
    status["map"]["steps"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["id"] == id)
        .map(|s| s["state"].as_str().unwrap().to_string())
        .unwrap()
}

/// The steps of the walk that run a task; smoke_thresholds and staging_validated are decided
/// from their records.
const RUN_STEPS: [&str; 6] = [
    "predeploy",
    "fly_login",
    "secrets_loaded",
    "deploy",
    "health",
    "overlap",
];

#[test]
fn a_full_run_reaches_staging_ready_a_second_skips_everything_and_a_smoke_failure_resumes_at_smoke()
{
    let (fly, fixture) = full_stand();

    let (code, out) = run_yes(&fly, &fixture);
    assert_eq!(code, Some(0), "{out}");
    let status = map_status(&fixture);
    let decided = ["smoke_thresholds", "staging_validated"];
    for id in RUN_STEPS.iter().chain(&decided) {
        assert_eq!(state_of(&status, id), "done", "{id}: {status:#}\n{out}");
    }
    assert_eq!(status["verdict"], "GO", "{status:#}");
    assert!(out.contains("report: "), "{out}");
    assert!(out.contains("position (staging): 8 of 10"), "{out}");
    let deploys = |fly: &LocalFly| {
        argvs(fly)
            .iter()
            .filter(|a| a.starts_with("deploy"))
            .count()
    };
    assert_eq!(deploys(&fly), 1);

    // Everything is fresh: nothing runs, nothing reaches Fly.
    let calls_before = argvs(&fly).len();
    let (code, out) = run_yes(&fly, &fixture);
    assert_eq!(code, Some(0), "{out}");
    assert!(!out.contains("==>"), "a step ran: {out}");
    for id in RUN_STEPS {
        assert!(out.contains(&format!("skip {id}: fresh")), "{id}: {out}");
    }
    assert_eq!(argvs(&fly).len(), calls_before);

    // The machine dies after the deploy: from health on, smoke fails and the run stops.
    let app = fly.app(APP).unwrap();
    for machine in app.machines.values() {
        if let Some(pid) = machine.pid {
            let killed = Command::new("kill")
                .args(["-s", "KILL", "--", &format!("-{pid}")])
                .status()
                .unwrap();
            assert!(killed.success());
        }
    }
    let out = resumed_and_stopped_at(&fly, &fixture, "health");
    assert!(
        out.contains("fix, then run it alone: cargo xtask smoke --env staging"),
        "{out}"
    );
    assert_eq!(state_of(&map_status(&fixture), "health"), "failed");

    // Fly replaces the machine (a secrets change restarts it with the same image); the next
    // run resumes at smoke: the steps before it are fresh, and it ends ready again.
    let mut import = fly.command();
    import
        .args(["secrets", "import", "--app", APP])
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::null());
    let mut child = import.spawn().unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(b"RESTARTED_BY=test\n")
        .unwrap();
    assert!(child.wait().unwrap().success());
    let (code, out) = run_yes(&fly, &fixture);
    assert_eq!(code, Some(0), "{out}");
    let ran: Vec<&str> = out.lines().filter(|l| l.starts_with("==> ")).collect();
    assert_eq!(ran, ["==> health: Healthy (smoke checks)"], "{out}");
    assert!(out.contains("skip deploy: fresh"), "{out}");
    assert_eq!(deploys(&fly), 1, "no second deploy");
    assert_eq!(map_status(&fixture)["verdict"], "GO");
}

/// A fresh app whose database does not exist yet: the walk reaches GO in one run (the
/// release command migrates, overlap races on its own test-fixture cabin), the report's check
/// passes, and the fixture is listed nowhere: the public list is still empty. ops/deploy.toml
/// names the real Fly URL, as committed; `--url` points the walk at the local Fly instead.
#[test]
fn a_fresh_app_with_an_empty_database_reaches_go_in_one_run() {
    let (fly, fixture) = full_stand_with(Database::Empty);
    let local = format!("http://127.0.0.1:{}", fly.app(APP).unwrap().port);
    let config = std::fs::read_to_string(fixture.root().join("ops/deploy.toml")).unwrap();
    let config = config.replace(&local, "https://cabanas-test.fly.dev");
    assert!(config.contains("https://cabanas-test.fly.dev"), "{config}");
    fixture.write("ops/deploy.toml", &config);
    fixture.commit("the real staging URL");
    let (code, out) = run_staging(&fly, &fixture, &["--yes", "--url", &local]);
    assert_eq!(code, Some(0), "{out}");
    let status = map_status(&fixture);
    assert_eq!(status["verdict"], "GO", "{status:#}\n{out}");
    assert_eq!(state_of(&status, "overlap"), "done", "{out}");

    let report = Command::new(env!("CARGO_BIN_EXE_xtask"))
        .args(["report", "--env", "staging", "--check"])
        .current_dir(fixture.root())
        .env_remove("GITHUB_STEP_SUMMARY")
        .output()
        .unwrap();
    assert_eq!(
        report.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&report.stderr)
    );

    let url = format!("{local}/api/v1/reservations/accommodations");
    let client = xtask::http::client(std::time::Duration::from_secs(10)).unwrap();
    let listed: serde_json::Value = xtask::http::runtime()
        .unwrap()
        .block_on(async { client.get(&url).send().await?.json().await })
        .unwrap();
    assert_eq!(listed, serde_json::json!([]), "GET {url}");
}

/// A release that crashes at start during the walk is rolled back by the walk's deploy (the
/// commit deployed before serves again), the run stops at deploy, and the next run resumes
/// there: every step before it is fresh.
#[test]
fn a_crash_at_deploy_during_the_walk_rolls_back_and_the_next_run_resumes_at_deploy() {
    let (fly, fixture) = full_stand();
    let (code, out) = run_yes(&fly, &fixture);
    assert_eq!(code, Some(0), "{out}");
    let first = fixture.head();
    // A change to a deployable input: the deploy step is due again.
    let dockerfile = std::fs::read_to_string(fixture.root().join("backend/Dockerfile")).unwrap();
    fixture.write(
        "backend/Dockerfile",
        &format!("{dockerfile}\n# a release that crashes at start\n"),
    );
    let second = fixture.commit("a release that crashes");
    assert_ne!(first, second);

    fly.fault(APP, Fault::CrashAtStart).unwrap();
    let (code, out) = run_yes(&fly, &fixture);
    assert_eq!(code, Some(1), "{out}");
    assert!(out.contains("STOPPED at deploy"), "{out}");
    assert!(out.contains("(rolled back)"), "{out}");
    assert!(!out.contains("  roll back: "), "already rolled back: {out}");
    let record: xtask::record::RunRecord<xtask::deploy::DeployResult> =
        xtask::record::latest(&fixture.repo(), "deploy", "staging")
            .unwrap()
            .unwrap();
    assert_eq!(record.result.commit.as_deref(), Some(second.as_str()));
    let rolled = record
        .result
        .rollout
        .rolled_back
        .expect("the walk's deploy rolled back");
    assert_eq!(rolled.to_commit.as_deref(), Some(first.as_str()), "{out}");
    assert_eq!(
        rolled.rollout.verification.map(|v| v.verdict),
        Some(Verdict::Pass),
        "{out}"
    );
    // What answers now is the commit deployed before.
    let machines = fly
        .flyctl()
        .machines(APP, &mut std::io::sink())
        .unwrap()
        .unwrap();
    let url = format!("http://127.0.0.1:{}", fly.app(APP).unwrap().port);
    let served = ask_versions(&url, &machines_to_ask(&machines, false)).unwrap();
    assert!(!served.is_empty());
    for answer in &served {
        assert_eq!(answer.commit.as_deref(), Some(first.as_str()), "{served:?}");
    }
    assert_eq!(state_of(&map_status(&fixture), "deploy"), "failed");

    let (_, out) = run_staging(&fly, &fixture, &["--yes", "--dry-run"]);
    let first_run = out
        .lines()
        .find(|l| l.starts_with("would run "))
        .unwrap_or_default();
    assert!(first_run.starts_with("would run deploy (FAILED)"), "{out}");
    for id in ["predeploy", "fly_login", "secrets_loaded"] {
        assert!(out.contains(&format!("skip {id}: fresh")), "{id}: {out}");
    }
}

/// Under `--json` every measuring task prints the record it saved: the same shape for all,
/// byte for byte the file named on its `record:` line.
#[test]
fn every_measuring_task_prints_its_saved_record_under_json() {
    let (fly, fixture) = full_stand();
    let keys = [
        "schema_version",
        "task",
        "environment",
        "git",
        "started_at",
        "duration_ms",
        "tool_version",
        "verdict",
        "result",
    ];
    // promote runs last: refused (staging has no 24-hour watch), it still saves and prints
    // its record, under production.
    let tasks: [(&[&str], &str); 8] = [
        (&["predeploy", "--env", "staging"], "staging"),
        (&["secrets", "--env", "staging"], "staging"),
        (
            &["deploy", "--env", "staging", "--wait-timeout", "30s"],
            "staging",
        ),
        (&["smoke", "--env", "staging"], "staging"),
        (&["overlap", "--env", "staging", "--mutating"], "staging"),
        (
            &["rollback", "--env", "staging", "--wait-timeout", "30s"],
            "staging",
        ),
        (
            &[
                "watch", "--env", "staging", "--for", "1s", "--every", "500ms",
            ],
            "staging",
        ),
        (&["promote"], "production"),
    ];
    for (words, environment) in tasks {
        if words[0] == "promote" {
            add_production(&fixture);
        }
        let output = xtask(&fly, &fixture, &[words, &["--json"]].concat());
        let stdout = String::from_utf8_lossy(&output.stdout);
        let stderr = String::from_utf8_lossy(&output.stderr);
        let record: serde_json::Value = serde_json::from_str(&stdout)
            .unwrap_or_else(|e| panic!("{words:?}: stdout is not JSON ({e}): {stdout}\n{stderr}"));
        let mut found: Vec<&str> = record
            .as_object()
            .unwrap()
            .keys()
            .map(String::as_str)
            .collect();
        found.sort_unstable();
        let mut expected = keys.to_vec();
        expected.sort_unstable();
        assert_eq!(found, expected, "{words:?}");
        assert_eq!(record["task"], words[0], "{words:?}");
        assert_eq!(record["environment"], environment, "{words:?}");
        let saved = stderr
            .lines()
            .rev()
            .find_map(|l| l.strip_prefix("record: "))
            .unwrap_or_else(|| panic!("{words:?}: no record line: {stderr}"));
        let file: serde_json::Value =
            serde_json::from_str(&std::fs::read_to_string(fixture.root().join(saved)).unwrap())
                .unwrap();
        assert_eq!(file, record, "{words:?}: stdout is the saved record");
    }
}

/// Gives the fixture a production environment, committed so the tree stays clean. A refused
/// promote calls no flyctl, so an app name is all it needs.
fn add_production(fixture: &Fixture) {
    let deploy_toml = fixture.root().join("ops/deploy.toml");
    let mut toml = std::fs::read_to_string(&deploy_toml).unwrap();
    toml.push_str(
        "\n[environments.production]\napp = \"cabanas-production\"\n\
         url = \"http://127.0.0.1:9\"\nenv_file = \"env/.env.fly.production\"\n\
         template = \"env/.env.fly.production.template\"\n",
    );
    std::fs::write(&deploy_toml, toml).unwrap();
    fixture.commit("production");
}
