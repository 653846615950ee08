//! `deploy` and `rollback` against the recording fake flyctl and an in-process app.

mod deploy_support;

use deploy_support::*;
use xtask::verdict::Verdict;

const IMG1: &str = "registry.fly.io/cabanas-test:deployment-01";
const IMG2: &str = "registry.fly.io/cabanas-test:deployment-02";
const IMG3: &str = "registry.fly.io/cabanas-test:deployment-03";
const DEPLOY_ARGV: &str = "deploy --remote-only --app cabanas-test --config fly.toml --strategy rolling --wait-timeout 5s";
const RELEASES_ARGV: &str = "releases --app cabanas-test --image --json";

fn deploy_args(extra: &[&str]) -> xtask::deploy::Args {
    let mut words = vec!["deploy", "--env", "staging"];
    if !extra.contains(&"--wait-timeout") {
        words.extend(["--wait-timeout", "5s"]);
    }
    words.extend_from_slice(extra);
    match xtask::cli::Cli::try_parse_words(words).unwrap().command {
        xtask::cli::Command::Deploy(args) => args,
        other => panic!("parsed as {other:?}"),
    }
}

fn rollback_args(extra: &[&str]) -> xtask::rollback::Args {
    let mut words = vec!["rollback", "--env", "staging", "--wait-timeout", "5s"];
    words.extend_from_slice(extra);
    match xtask::cli::Cli::try_parse_words(words).unwrap().command {
        xtask::cli::Command::Rollback(args) => args,
        other => panic!("parsed as {other:?}"),
    }
}

/// A fixture whose fake answers whoami, deploy and releases (v3 new, v2 good, v1 good).
fn deployable() -> (App, Fixture) {
    let app = start_app();
    let fixture = Fixture::new(&app.url);
    fixture.respond("auth-whoami", None, "ops@example.org\n", "", 0);
    fixture.respond(
        "deploy",
        None,
        "==> Building image\n--> v3 deployed successfully\n",
        "",
        0,
    );
    let releases = releases_json(&[
        (3, "complete", IMG3),
        (2, "complete", IMG2),
        (1, "complete", IMG1),
    ]);
    fixture.respond("releases", None, &releases, "", 0);
    (app, fixture)
}

fn deploy(
    fixture: &Fixture,
    gates: &FakeGates,
    extra: &[&str],
) -> (Verdict, xtask::deploy::DeployResult, String) {
    let mut out = Vec::new();
    let (verdict, result) = xtask::deploy::run_with(
        &fixture.repo(),
        &deploy_args(extra),
        fixture.flyctl(false),
        gates,
        &mut out,
    )
    .unwrap();
    (verdict, result, String::from_utf8(out).unwrap())
}

#[test]
fn a_healthy_deploy_runs_the_exact_commands_and_records_the_release() {
    let (_app, fixture) = deployable();
    let gates = FakeGates::new(Verdict::Pass, &[Verdict::Pass]);
    let (verdict, result, out) = deploy(&fixture, &gates, &[]);
    assert_eq!(verdict, Verdict::Pass, "{out}");
    assert_eq!(fixture.argvs(), ["auth whoami", DEPLOY_ARGV, RELEASES_ARGV]);
    assert_eq!(
        *gates.ran.borrow(),
        ["predeploy --env staging", "smoke --env staging"]
    );
    let release = result.release.unwrap();
    assert_eq!(
        (release.version, release.image_ref.as_deref()),
        (3, Some(IMG3))
    );
    assert_eq!(result.rollback_target.unwrap().version, 2);
    assert_eq!(result.readiness, Some(Verdict::Pass));
    for call in fixture.calls() {
        assert_eq!(
            call["env"]["FLY_API_TOKEN"], true,
            "the token travels in the environment"
        );
        assert_eq!(
            call["cwd"].as_str().unwrap(),
            fixture.root().to_str().unwrap()
        );
    }
    let record: xtask::record::RunRecord<xtask::deploy::DeployResult> =
        xtask::record::latest(&fixture.repo(), "deploy", "staging")
            .unwrap()
            .unwrap();
    assert_eq!(record.verdict, Verdict::Pass);
    assert_eq!(
        record.result.release.unwrap().image_ref.as_deref(),
        Some(IMG3)
    );
    fixture.assert_no_secret(&out);
}

#[test]
fn a_predeploy_failure_stops_before_any_flyctl_call() {
    let (_app, fixture) = deployable();
    let gates = FakeGates::new(Verdict::Fail, &[]);
    let (verdict, result, out) = deploy(&fixture, &gates, &[]);
    assert_eq!(verdict, Verdict::Fail);
    assert!(fixture.calls().is_empty(), "{:?}", fixture.argvs());
    assert!(out.contains("cargo xtask predeploy --env staging"), "{out}");
    assert_eq!(result.predeploy, Verdict::Fail);
}

#[test]
fn not_logged_in_fails_with_the_login_hint_and_deploys_nothing() {
    let (_app, fixture) = deployable();
    fixture.respond(
        "auth-whoami",
        None,
        "",
        "Error: no access token available. Please login with 'flyctl auth login'\n",
        1,
    );
    let gates = FakeGates::new(Verdict::Pass, &[]);
    let (verdict, _, out) = deploy(&fixture, &gates, &[]);
    assert_eq!(verdict, Verdict::Fail);
    assert_eq!(fixture.argvs(), ["auth whoami"]);
    assert!(
        out.contains("flyctl auth login") && out.contains("FLY_API_TOKEN"),
        "{out}"
    );
    assert!(
        out.contains("no access token available"),
        "stderr tail shown: {out}"
    );
}

#[test]
fn a_failing_flyctl_deploy_shows_the_command_and_its_stderr_tail() {
    let (_app, fixture) = deployable();
    let noise: String = (1..=40).map(|i| format!("log line {i}\n")).collect();
    fixture.respond(
        "deploy",
        None,
        "",
        &format!("{noise}Error: failed to update machine: health checks failing\n"),
        1,
    );
    let gates = FakeGates::new(Verdict::Pass, &[]);
    let (verdict, result, out) = deploy(&fixture, &gates, &[]);
    assert_eq!(verdict, Verdict::Fail);
    assert_eq!(fixture.argvs(), ["auth whoami", DEPLOY_ARGV]);
    assert!(
        out.contains(&format!(
            "`{} {DEPLOY_ARGV}` failed",
            env!("CARGO_BIN_EXE_fake-flyctl")
        )),
        "{out}"
    );
    assert!(
        out.contains("health checks failing") && !out.contains("log line 5\n"),
        "{out}"
    );
    assert!(result.problems[0].contains("cargo xtask rollback --env staging"));
    assert!(gates.ran.borrow().iter().all(|g| !g.starts_with("smoke")));
}

#[test]
fn a_smoke_failure_prints_the_exact_rollback_command() {
    let (_app, fixture) = deployable();
    let gates = FakeGates::new(Verdict::Pass, &[Verdict::Fail]);
    let (verdict, result, out) = deploy(&fixture, &gates, &[]);
    assert_eq!(verdict, Verdict::Fail);
    let command = format!("cargo xtask rollback --env staging --to {IMG2}");
    assert!(out.contains(&command), "{out}");
    assert!(
        out.contains(&format!(
            "deploy --image {IMG2} --app cabanas-test --config fly.toml --wait-timeout 5s"
        )),
        "{out}"
    );
    assert_eq!(result.rollback_command.as_deref(), Some(command.as_str()));
    assert_eq!(
        fixture.argvs(),
        ["auth whoami", DEPLOY_ARGV, RELEASES_ARGV],
        "no rollback without the flag"
    );
    assert!(result.rolled_back.is_none());
}

#[test]
fn a_smoke_failure_with_rollback_on_failure_redeploys_the_last_good_image() {
    let (_app, fixture) = deployable();
    let gates = FakeGates::new(Verdict::Pass, &[Verdict::Fail, Verdict::Pass]);
    let (verdict, result, out) = deploy(&fixture, &gates, &["--rollback-on-failure"]);
    assert_eq!(
        verdict,
        Verdict::Fail,
        "the deploy itself failed even though the rollback worked"
    );
    assert_eq!(
        fixture.argvs(),
        [
            "auth whoami".to_string(),
            DEPLOY_ARGV.to_string(),
            RELEASES_ARGV.to_string(),
            format!("deploy --image {IMG2} --app cabanas-test --config fly.toml --wait-timeout 5s"),
        ]
    );
    let rolled_back = result.rolled_back.unwrap();
    assert_eq!(
        (rolled_back.to_version, rolled_back.smoke),
        (Some(2), Some(Verdict::Pass))
    );
    assert!(out.contains("(rolled back)"), "{out}");
    let record: xtask::record::RunRecord<xtask::deploy::DeployResult> =
        xtask::record::latest(&fixture.repo(), "deploy", "staging")
            .unwrap()
            .unwrap();
    assert!(record.result.rolled_back.is_some());
}

#[test]
fn a_release_that_never_gets_ready_fails_without_running_smoke() {
    let (app, fixture) = deployable();
    app.ready.store(false, std::sync::atomic::Ordering::SeqCst);
    let gates = FakeGates::new(Verdict::Pass, &[]);
    let (verdict, result, out) = deploy(&fixture, &gates, &["--wait-timeout", "1s"]);
    assert_eq!(verdict, Verdict::Fail);
    assert_eq!(result.readiness, Some(Verdict::Fail));
    assert!(out.contains("503"), "{out}");
    assert!(
        out.contains(&format!("cargo xtask rollback --env staging --to {IMG2}")),
        "{out}"
    );
}

#[test]
fn a_dry_run_prints_every_command_and_runs_none() {
    let (_app, fixture) = deployable();
    let gates = FakeGates::new(Verdict::Pass, &[]);
    let (verdict, _, out) = deploy(&fixture, &gates, &["--dry-run", "--strategy", "bluegreen"]);
    assert_eq!(verdict, Verdict::Pass);
    assert!(fixture.calls().is_empty());
    assert!(
        out.contains("would run: ") && out.contains("auth whoami"),
        "{out}"
    );
    assert!(
        out.contains(
            "deploy --remote-only --app cabanas-test --config fly.toml --strategy bluegreen"
        ),
        "{out}"
    );
    assert!(out.contains(RELEASES_ARGV), "{out}");
    assert!(fixture.records().is_empty(), "a dry run records nothing");
}

fn rollback(
    fixture: &Fixture,
    gates: &FakeGates,
    extra: &[&str],
) -> (Verdict, xtask::rollback::RollbackResult, String) {
    let mut out = Vec::new();
    let (verdict, result) = xtask::rollback::run_with(
        &fixture.repo(),
        &rollback_args(extra),
        fixture.flyctl(false),
        gates,
        &mut out,
    )
    .unwrap();
    (verdict, result, String::from_utf8(out).unwrap())
}

#[test]
fn rollback_skips_failed_and_same_image_releases() {
    let (_app, fixture) = deployable();
    let releases = releases_json(&[
        (5, "complete", IMG3),
        (4, "complete", IMG3),
        (3, "failed", "registry.fly.io/cabanas-test:deployment-bad"),
        (2, "complete", IMG2),
    ]);
    fixture.respond("releases", None, &releases, "", 0);
    let gates = FakeGates::new(Verdict::Pass, &[Verdict::Pass]);
    let (verdict, result, out) = rollback(&fixture, &gates, &[]);
    assert_eq!(verdict, Verdict::Pass, "{out}");
    assert_eq!(
        fixture.argvs(),
        [
            RELEASES_ARGV.to_string(),
            format!("deploy --image {IMG2} --app cabanas-test --config fly.toml --wait-timeout 5s")
        ]
    );
    assert_eq!(result.from.unwrap().version, 5);
    assert_eq!(
        (result.to_version, result.to_image.as_deref()),
        (Some(2), Some(IMG2))
    );
    let record: xtask::record::RunRecord<xtask::rollback::RollbackResult> =
        xtask::record::latest(&fixture.repo(), "rollback", "staging")
            .unwrap()
            .unwrap();
    assert_eq!(record.result.to_version, Some(2));
}

#[test]
fn rollback_to_a_named_version_or_image() {
    let (_app, fixture) = deployable();
    let gates = FakeGates::new(Verdict::Pass, &[Verdict::Pass, Verdict::Pass]);
    let (verdict, result, _) = rollback(&fixture, &gates, &["--to-version", "1"]);
    assert_eq!(
        (verdict, result.to_image.as_deref()),
        (Verdict::Pass, Some(IMG1))
    );
    let (verdict, result, _) = rollback(&fixture, &gates, &["--to", "registry.fly.io/other:7"]);
    assert_eq!((verdict, result.to_version), (Verdict::Pass, None));
    assert!(
        fixture
            .argvs()
            .last()
            .unwrap()
            .starts_with("deploy --image registry.fly.io/other:7 ")
    );
    let (verdict, result, _) = rollback(&fixture, &gates, &["--to-version", "9"]);
    assert_eq!(verdict, Verdict::Fail);
    assert!(
        result.problems[0].contains("v9 is not among"),
        "{:?}",
        result.problems
    );
}

#[test]
fn rollback_without_a_previous_image_explains_and_deploys_nothing() {
    let (_app, fixture) = deployable();
    fixture.respond(
        "releases",
        None,
        &releases_json(&[(1, "complete", IMG1)]),
        "",
        0,
    );
    let gates = FakeGates::new(Verdict::Pass, &[]);
    let (verdict, _, out) = rollback(&fixture, &gates, &[]);
    assert_eq!(verdict, Verdict::Fail);
    assert_eq!(fixture.argvs(), [RELEASES_ARGV]);
    assert!(out.contains("nothing to roll back to"), "{out}");
}

#[test]
fn rollback_dry_run_runs_nothing() {
    let (_app, fixture) = deployable();
    let gates = FakeGates::new(Verdict::Pass, &[]);
    let (verdict, _, out) = rollback(&fixture, &gates, &["--dry-run"]);
    assert_eq!(verdict, Verdict::Pass);
    assert!(fixture.calls().is_empty());
    assert!(
        out.contains("deploy --image '<image of the last good release before the current one>'"),
        "{out}"
    );
}

/// `deploy --json` keeps stdout for its JSON even though it runs predeploy (here failing on a
/// fixture that is not a complete repository) through the real task.
#[test]
fn deploy_json_keeps_stdout_parseable() {
    let fixture = Fixture::new("http://127.0.0.1:9");
    let output = std::process::Command::new(env!("CARGO_BIN_EXE_xtask"))
        .args(["deploy", "--env", "staging", "--json"])
        .current_dir(fixture.root())
        .env("FLYCTL", env!("CARGO_BIN_EXE_fake-flyctl"))
        .env("FAKE_FLYCTL_DIR", &fixture.fake_dir)
        .env_remove("GITHUB_STEP_SUMMARY")
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    let result: serde_json::Value = serde_json::from_str(&stdout)
        .unwrap_or_else(|e| panic!("stdout is not JSON ({e}):\n{stdout}\nstderr:\n{stderr}"));
    assert_eq!(result["predeploy"], "fail", "{result}");
    assert!(
        stderr.contains("check"),
        "predeploy's table went to stderr: {stderr}"
    );
    assert_eq!(output.status.code(), Some(1));
    assert!(
        fixture.argvs().is_empty(),
        "no flyctl call after a failed predeploy"
    );
}
