//! `deploy` and `rollback` against the recording fake flyctl: the exact argv, what happens
//! before flyctl changes anything, and dry runs. What happens after a deploy (the proof that a
//! build serves, rollbacks) is tested against the local Fly in `deploy_localfly.rs`.

use crate::deploy_support;

use crate::support::{capture, poll_until, rerun_test, stdout_and_stderr};
use deploy_support::*;
use xtask::verdict::Verdict;

const IMG1: &str = "registry.fly.io/cabanas-test:deployment-01";
const IMG2: &str = "registry.fly.io/cabanas-test:deployment-02";
const IMG3: &str = "registry.fly.io/cabanas-test:deployment-03";
const RELEASES_ARGV: &str = "releases --app cabanas-test --image --json";
const MACHINES_ARGV: &str = "machines list --app cabanas-test --json";

/// The build deploy of `fixture`'s HEAD.
fn deploy_argv(fixture: &Fixture, strategy: &str) -> String {
    let head = fixture.head();
    format!(
        "deploy --remote-only --build-arg GIT_COMMIT={head} --image-label {} --app cabanas-test --config fly.toml --strategy {strategy} --wait-timeout 5s",
        &head[..12]
    )
}

/// What a deploy runs: whoami, what serves read, `deploy_line`, then what serves read `polls`
/// times.
fn deploy_argvs(deploy_line: &str, polls: usize) -> Vec<String> {
    let mut argvs = vec!["auth whoami", RELEASES_ARGV, MACHINES_ARGV, deploy_line];
    for _ in 0..polls {
        argvs.extend([RELEASES_ARGV, MACHINES_ARGV]);
    }
    argvs.into_iter().map(str::to_string).collect()
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
    fixture.machines_on(None, IMG3);
    (app, fixture)
}

#[test]
fn a_predeploy_failure_stops_before_any_flyctl_call() {
    let (_app, fixture) = deployable();
    let gates = FakeGates::new(Verdict::Fail, &[]);
    let (verdict, result, out) = deploy_staging(&fixture, &gates, &[]);
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
    let (verdict, _, out) = deploy_staging(&fixture, &gates, &[]);
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
fn a_failing_flyctl_deploy_shows_its_stderr_tail_and_the_rollback_to_what_served() {
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
    let (verdict, result, out) = deploy_staging(&fixture, &gates, &[]);
    assert_eq!(verdict, Verdict::Fail);
    let deploy_line = deploy_argv(&fixture, "rolling");
    assert_eq!(
        fixture.argvs(),
        deploy_argvs(&deploy_line, 1),
        "what serves is read before flyctl deploys, and once more for the record"
    );
    assert!(
        out.contains(&format!(
            "`{} {deploy_line}` failed",
            env!("CARGO_BIN_EXE_fake-flyctl")
        )),
        "{out}"
    );
    assert!(
        out.contains("health checks failing") && !out.contains("log line 5\n"),
        "{out}"
    );
    let command = format!("cargo xtask rollback --env staging --to {IMG3}");
    assert!(out.contains(&command), "{out}");
    assert_eq!(
        result.rollout.rollback_command.as_deref(),
        Some(command.as_str())
    );
    assert_eq!(result.rollback_image.as_deref(), Some(IMG3));
    assert_eq!(result.rollback_target.as_ref().map(|r| r.version), Some(3));
    let before = result.before.unwrap();
    assert_eq!(before.machines.len(), 2);
    assert_eq!(before.machines[0].image.as_deref(), Some(IMG3));
    assert!(
        result.rollout.rolled_back.is_none(),
        "no rollback without the flag"
    );
    assert!(gates.ran.borrow().iter().all(|g| !g.starts_with("smoke")));
    fixture.assert_no_secret(&out);
}

#[test]
fn a_flyctl_deploy_that_outlives_its_time_limit_is_stopped_and_fails() {
    let (_app, fixture) = deployable();
    fixture.hang("deploy");
    let gates = FakeGates::new(Verdict::Pass, &[]);
    let (verdict, result, out) = deploy_staging(&fixture, &gates, &["--deploy-timeout", "1s"]);
    assert_eq!(verdict, Verdict::Fail, "{out}");
    assert!(
        result.problems[0].contains("stopped: it did not finish within 1s"),
        "{out}"
    );
    assert!(
        out.contains(&format!("cargo xtask rollback --env staging --to {IMG3}")),
        "{out}"
    );
}

/// A release still `running` after flyctl returns is polled until it completes; the whole
/// healthy path runs exactly these commands.
#[test]
fn a_healthy_deploy_polls_until_the_new_release_serves() {
    let (app, fixture) = deployable();
    *app.commit.lock().unwrap() = fixture.head();
    let before = releases_json(&[(2, "complete", IMG2), (1, "complete", IMG1)]);
    let running = releases_json(&[(3, "running", IMG3), (2, "complete", IMG2)]);
    let done = releases_json(&[(3, "complete", IMG3), (2, "complete", IMG2)]);
    fixture.respond("releases", Some(1), &before, "", 0);
    fixture.respond("releases", Some(2), &running, "", 0);
    fixture.respond("releases", None, &done, "", 0);
    fixture.machines_on(Some(1), IMG2);
    let gates = FakeGates::new(Verdict::Pass, &[Verdict::Pass]);
    // The logs read after a proven deploy are `deploy_logs.rs`'s business.
    let (verdict, result, out) = deploy_staging(&fixture, &gates, &["--logs", "0s"]);
    assert_eq!(verdict, Verdict::Pass, "{out}");
    let deploy_line = deploy_argv(&fixture, "rolling");
    assert_eq!(fixture.argvs(), deploy_argvs(&deploy_line, 2));
    let verification = result.rollout.verification.as_ref().unwrap();
    assert_eq!(verification.attempts, 2, "{out}");
    let release = result.rollout.release.as_ref().unwrap();
    assert_eq!((release.version, release.status.as_str()), (3, "complete"));
    assert_eq!(result.rollback_image.as_deref(), Some(IMG2));
    assert_eq!(result.rollback_target.as_ref().map(|r| r.version), Some(2));
    assert_eq!(result.rollout.readiness, Some(Verdict::Pass));
    assert_eq!(result.rollout.smoke, Some(Verdict::Pass));
    for call in fixture.calls() {
        assert_eq!(
            call["env"]["FLY_API_TOKEN"], true,
            "the token travels in the environment"
        );
    }
    let record: xtask::record::RunRecord<xtask::deploy::DeployResult> =
        xtask::record::latest(&fixture.repo(), "deploy", "staging")
            .unwrap()
            .unwrap();
    assert_eq!(record.verdict, Verdict::Pass);
    assert_eq!(record.result.rollout.release.unwrap().version, 3);
    fixture.assert_no_secret(&out);
}

#[test]
fn a_failing_read_before_the_deploy_deploys_nothing() {
    let (_app, fixture) = deployable();
    fixture.respond("machines-list", None, "", "Error: app not found\n", 1);
    let gates = FakeGates::new(Verdict::Pass, &[]);
    let (verdict, result, out) = deploy_staging(&fixture, &gates, &["--rollback-on-failure"]);
    assert_eq!(verdict, Verdict::Fail);
    assert_eq!(
        fixture.argvs(),
        ["auth whoami", RELEASES_ARGV, MACHINES_ARGV]
    );
    assert!(
        result.problems[0].contains("could not record what serves before deploying"),
        "{out}"
    );
}

#[test]
fn a_dry_run_reads_what_serves_and_changes_nothing() {
    let (_app, fixture) = deployable();
    let gates = FakeGates::new(Verdict::Pass, &[]);
    let (verdict, result, out) =
        deploy_staging(&fixture, &gates, &["--dry-run", "--strategy", "bluegreen"]);
    assert_eq!(verdict, Verdict::Pass, "{out}");
    assert_eq!(
        fixture.argvs(),
        [RELEASES_ARGV, MACHINES_ARGV],
        "only read-only calls run"
    );
    assert!(
        out.contains("would run: ") && out.contains("auth whoami"),
        "{out}"
    );
    assert!(out.contains(&deploy_argv(&fixture, "bluegreen")), "{out}");
    assert!(
        out.contains(&format!("reports commit {}", fixture.head())),
        "{out}"
    );
    assert_eq!(result.rollback_image.as_deref(), Some(IMG3));
    assert!(fixture.records().is_empty(), "a dry run records nothing");
}

#[test]
fn a_deploy_outside_git_cannot_run() {
    let (_app, fixture) = deployable();
    std::fs::remove_dir_all(fixture.root().join(".git")).unwrap();
    let gates = FakeGates::new(Verdict::Pass, &[]);
    let error = xtask::deploy::run_with(
        &fixture.repo(),
        &deploy_args(&[]),
        fixture.flyctl(false),
        &gates,
        &mut Vec::new(),
    )
    .unwrap_err()
    .to_string();
    assert!(error.contains("has no git commit"), "{error}");
    assert!(fixture.calls().is_empty());
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
    let gates = FakeGates::new(Verdict::Pass, &[]);
    let (verdict, result, out) = rollback_staging(&fixture, &gates, &["--dry-run"]);
    assert_eq!(verdict, Verdict::Pass, "{out}");
    assert_eq!(fixture.argvs(), [RELEASES_ARGV, MACHINES_ARGV]);
    assert_eq!(result.from.unwrap().version, 5);
    assert_eq!(
        (result.to_version, result.to_image.as_deref()),
        (Some(2), Some(IMG2))
    );
    assert!(
        out.contains(&format!(
            "rollback target of cabanas-test: {IMG2} (release v2)"
        )),
        "{out}"
    );
    assert!(
        out.contains(&format!(
            "would run: {} deploy --image {IMG2} --app cabanas-test --config fly.toml --wait-timeout 5s",
            env!("CARGO_BIN_EXE_fake-flyctl")
        )),
        "{out}"
    );
}

#[test]
fn rollback_to_a_named_version_or_image() {
    let (_app, fixture) = deployable();
    let gates = FakeGates::new(Verdict::Pass, &[]);
    let (verdict, result, _) =
        rollback_staging(&fixture, &gates, &["--dry-run", "--to-version", "1"]);
    assert_eq!(
        (verdict, result.to_image.as_deref()),
        (Verdict::Pass, Some(IMG1))
    );
    let (verdict, result, out) = rollback_staging(
        &fixture,
        &gates,
        &["--dry-run", "--to", "registry.fly.io/other:7"],
    );
    assert_eq!((verdict, result.to_version), (Verdict::Pass, None));
    assert!(
        out.contains("deploy --image registry.fly.io/other:7 "),
        "{out}"
    );
    let (verdict, result, _) = rollback_staging(&fixture, &gates, &["--to-version", "9"]);
    assert_eq!(verdict, Verdict::Fail);
    assert!(
        result.problems[0].contains("v9 is not among"),
        "{:?}",
        result.problems
    );
    assert!(
        fixture.argvs().iter().all(|a| !a.starts_with("deploy")),
        "{:?}",
        fixture.argvs()
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
    let (verdict, _, out) = rollback_staging(&fixture, &gates, &[]);
    assert_eq!(verdict, Verdict::Fail);
    assert_eq!(fixture.argvs(), [RELEASES_ARGV, MACHINES_ARGV]);
    assert!(out.contains("nothing to roll back to"), "{out}");
}

/// `deploy --json` keeps stdout for its JSON even though it runs predeploy (here failing on a
/// fixture that is not a complete repository) through the real task.
#[test]
fn deploy_json_keeps_stdout_parseable() {
    let fixture = Fixture::new("http://127.0.0.1:9");
    let output = fixture.xtask(&["deploy", "--env", "staging", "--json"]);
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    let record: serde_json::Value = serde_json::from_str(&stdout)
        .unwrap_or_else(|e| panic!("stdout is not JSON ({e}):\n{stdout}\nstderr:\n{stderr}"));
    assert_eq!(record["task"], "deploy", "{record}");
    assert_eq!(record["verdict"], "fail", "{record}");
    assert_eq!(record["result"]["predeploy"], "fail", "{record}");
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

/// A dry run records nothing, not even the predeploy it runs through the real task: a saved
/// predeploy would advance step 1 of the decision map.
#[test]
fn a_dry_run_through_the_real_predeploy_records_nothing() {
    let fixture = Fixture::new("http://127.0.0.1:9");
    let output = fixture.xtask(&["deploy", "--env", "staging", "--dry-run"]);
    let text = stdout_and_stderr(&output);
    assert!(text.contains("check"), "predeploy ran: {text}");
    assert!(
        text.contains("nothing was deployed and nothing recorded"),
        "{text}"
    );
    assert_eq!(fixture.records(), "", "a dry run saved a record: {text}");
    assert!(fixture.argvs().is_empty(), "{:?}", fixture.argvs());
}

/// The gates call predeploy and smoke with typed options: they must stay what the documented
/// command lines parse to.
#[test]
fn the_gates_options_are_the_documented_command_lines() {
    use xtask::cli::{Cli, Command};
    match Cli::try_parse_words(["predeploy", "--env", "staging"])
        .unwrap()
        .command
    {
        Command::Predeploy(parsed) => {
            assert_eq!(
                format!("{:?}", parsed.options()),
                format!(
                    "{:?}",
                    xtask::predeploy::Options::for_env(
                        "staging",
                        Some(xtask::cli::documented_command)
                    )
                )
            )
        }
        other => panic!("parsed as {other:?}"),
    }
    match Cli::try_parse_words(["smoke", "--env", "staging"])
        .unwrap()
        .command
    {
        Command::Smoke(parsed) => {
            assert_eq!(
                format!("{:?}", parsed.into_options()),
                format!("{:?}", xtask::smoke::Options::for_env("staging"))
            )
        }
        other => panic!("parsed as {other:?}"),
    }
}

/// Gives the fixture a production environment on the fake's app, committed.
fn with_production(fixture: &Fixture) {
    let path = fixture.root().join("ops/deploy.toml");
    let mut toml = std::fs::read_to_string(&path).unwrap();
    let url = toml
        .lines()
        .find_map(|l| l.strip_prefix("url = "))
        .unwrap()
        .to_string();
    toml.push_str(&format!(
        "\n[environments.production]\napp = \"{APP}\"\nurl = {url}\n\
         env_file = \"env/.env.fly.production\"\ntemplate = \"env/.env.fly.production.template\"\n\
         fly_config = \"fly.toml\"\n"
    ));
    std::fs::write(&path, toml).unwrap();
    fixture.commit("production");
}

fn deploy_production(
    fixture: &Fixture,
    extra: &[&str],
) -> (
    anyhow::Result<(Verdict, xtask::deploy::DeployResult)>,
    String,
) {
    let words = ["deploy", "--env", "production", "--wait-timeout", "5s"];
    let args = deploy_options(&[&words[..], extra].concat());
    let gates = FakeGates::new(Verdict::Pass, &[Verdict::Pass]);
    let flyctl = fixture.flyctl(false);
    capture(|out| xtask::deploy::run_with(&fixture.repo(), &args, flyctl, &gates, out))
}

#[test]
fn a_production_deploy_without_staging_evidence_is_refused_naming_what_is_missing() {
    let (_app, fixture) = deployable();
    with_production(&fixture);
    let (outcome, out) = deploy_production(&fixture, &[]);
    let (verdict, result) = outcome.unwrap();
    assert_eq!(verdict, Verdict::Fail, "{out}");
    for missing in [
        "staging's verdict is",
        "the 24-hour gate does not hold",
        "production checklist",
        "--first-deploy",
    ] {
        assert!(out.contains(missing), "{missing}: {out}");
    }
    assert!(result.problems.iter().any(|p| p.contains("24-hour gate")));
    assert!(fixture.calls().is_empty(), "{:?}", fixture.argvs());
    assert_eq!(fixture.records(), "", "a refusal saves no record");
}

#[test]
fn first_deploy_deploys_an_app_without_machines() {
    let (_app, fixture) = deployable();
    with_production(&fixture);
    fixture.respond("machines-list", None, "[]", "", 0);
    let (outcome, out) = deploy_production(&fixture, &["--first-deploy"]);
    outcome.unwrap();
    assert!(!out.contains("refused"), "{out}");
    let argvs = fixture.argvs();
    assert_eq!(argvs[0], MACHINES_ARGV, "{argvs:?}");
    assert!(
        argvs.contains(&deploy_argv(&fixture, "rolling")),
        "the build was deployed: {argvs:?}\n{out}"
    );
}

#[test]
fn first_deploy_is_refused_on_an_app_that_has_machines() {
    let (_app, fixture) = deployable();
    with_production(&fixture);
    let (outcome, out) = deploy_production(&fixture, &["--first-deploy"]);
    let (verdict, _) = outcome.unwrap();
    assert_eq!(verdict, Verdict::Fail, "{out}");
    assert!(
        out.contains("--first-deploy: cabanas-test already has 2 machine(s)"),
        "{out}"
    );
    assert!(out.contains("cargo xtask promote"), "{out}");
    assert_eq!(fixture.argvs(), [MACHINES_ARGV]);
    assert_eq!(fixture.records(), "");
}

#[test]
fn first_deploy_outside_production_is_an_error() {
    let (_app, fixture) = deployable();
    let mut out = Vec::new();
    let error = xtask::deploy::run_with(
        &fixture.repo(),
        &deploy_args(&["--first-deploy"]),
        fixture.flyctl(false),
        &FakeGates::new(Verdict::Pass, &[]),
        &mut out,
    )
    .unwrap_err();
    assert!(
        error
            .to_string()
            .contains("--first-deploy is for production"),
        "{error}"
    );
    assert!(fixture.calls().is_empty());
}

/// Set in the child process of the interrupt test: where it writes its fixture's paths.
const INTERRUPTED_CHILD: &str = "DEPLOY_FLOW_INTERRUPTED_CHILD";

/// Ctrl-C while `flyctl deploy` runs stops flyctl and exits 130, and the deploy's record is
/// saved anyway: failed, saying what was interrupted, with the command back to what served.
/// The deploy runs in a child process (this test again), since the interrupt ends it.
#[test]
fn an_interrupted_deploy_records_what_was_interrupted_and_the_way_back() {
    if let Some(paths) = std::env::var_os(INTERRUPTED_CHILD) {
        let (_app, fixture) = deployable();
        fixture.hang("deploy");
        // The interrupt exits without dropping the fixture: the parent removes its files.
        let fixture = std::mem::ManuallyDrop::new(fixture);
        std::fs::write(
            paths,
            format!(
                "{}\n{}",
                fixture.root().display(),
                fixture.fake_dir.display()
            ),
        )
        .unwrap();
        deploy_staging(&fixture, &FakeGates::new(Verdict::Pass, &[]), &[]);
        return;
    }
    let scratch = tempfile::tempdir().unwrap();
    let paths = scratch.path().join("paths");
    let mut child = rerun_test(
        "deploy_flow::an_interrupted_deploy_records_what_was_interrupted_and_the_way_back",
        INTERRUPTED_CHILD,
        &paths,
    );
    // Wait (bounded) until flyctl deploy has started.
    let root = poll_until(
        "flyctl deploy never started",
        std::time::Duration::from_secs(60),
        std::time::Duration::from_millis(50),
        || {
            let written = std::fs::read_to_string(&paths).unwrap_or_default();
            let (root, fake_dir) = written.split_once('\n')?;
            let calls = std::fs::read_to_string(std::path::Path::new(fake_dir).join("calls.jsonl"))
                .unwrap_or_default();
            let started = calls.lines().any(|l| l.contains(r#""key":"deploy""#));
            started.then(|| std::path::PathBuf::from(root))
        },
    );
    xtask::interrupt::send_signal(child.id(), "INT");
    let status = child.wait().unwrap();
    let record: Option<xtask::record::RunRecord<xtask::deploy::DeployResult>> =
        xtask::record::latest(&xtask::repo::Repo::at(&root), "deploy", "staging").unwrap();
    let _ = std::fs::remove_dir_all(&root);
    assert_eq!(status.code(), Some(xtask::interrupt::EXIT_INTERRUPTED));
    let record = record.expect("the interrupted deploy saved its record");
    let rollback = assert_interrupted_with_the_way_back(&record, IMG3);
    assert_eq!(
        record.result.rollout.rollback_command.as_deref(),
        Some(rollback.as_str())
    );
}
