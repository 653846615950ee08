//! `deploy` and `rollback` end to end against the local Fly: real `cabanas` machines behind a
//! proxy, releases and machines in flyctl's JSON, faults injected through its state
//! directory. Every test asks each machine (through the proxy, `fly-force-instance-id`) which
//! commit it serves, so "the previous commit serves again" is observed, not assumed.

use crate::deploy_support;

use crate::support::capture;
use crate::support::service_binary;
use crate::support::workspace;
use crate::support::{poll_until, rerun_test};
use deploy_support::{APP, FakeGates, Fixture, deploy_options, rollback_options};
use xtask::deploy::DeployResult;
use xtask::localfly::{Fault, LocalFly};
use xtask::release::RolloutOutcome;
use xtask::release::verify::{Condition, Verification};
use xtask::release::verify::{ask_versions, machines_to_ask};
use xtask::rollback::RollbackResult;
use xtask::verdict::Verdict;

/// A secret only the machines' environment may hold.
const JWT_SECRET: &str = "jwt-localfly-Qx7pL9vR2mT5wZ8kN4cB6dF1hJ3sG0y";

/// A local Fly with the app and its secrets, and a git repository that deploys to it with
/// the workspace's own fly.toml (rolling, `cabanas migrate`, checks on readyz).
struct Stand {
    fixture: Fixture,
    url: String,
    // Dropped last: `local down` stops every machine and the proxy.
    fly: LocalFly,
}

fn stand(machines: usize) -> Stand {
    let fly = LocalFly::new(env!("CARGO_BIN_EXE_localfly"), service_binary()).unwrap();
    let url = fly.create_app(APP, machines).unwrap();
    let fixture = Fixture::new(&url);
    let fly_toml = std::fs::read_to_string(workspace().path("fly.toml")).unwrap();
    fixture.write("fly.toml", &fly_toml);
    fixture.write(
        ".gitignore",
        "/target/\n/fake-flyctl/\n/env/.env.fly.staging\n/data/\n",
    );
    fixture.commit("the app's fly.toml");
    let db = fixture.root().join("data/cabanas.db");
    std::fs::create_dir_all(db.parent().unwrap()).unwrap();
    let payload = format!(
        "DATABASE_URL=sqlite:{}?mode=rwc\nJWT_SECRET={JWT_SECRET}\nADMIN_ALLOWED_EMAILS=ops@example.org\n",
        db.display()
    );
    let keys = ["DATABASE_URL", "JWT_SECRET", "ADMIN_ALLOWED_EMAILS"]
        .map(String::from)
        .to_vec();
    fly.flyctl()
        .secrets_import(APP, payload, keys, &mut std::io::sink())
        .unwrap();
    Stand { fixture, url, fly }
}

impl Stand {
    fn deploy(&self, smoke: &[Verdict], extra: &[&str]) -> (Verdict, DeployResult, String) {
        self.deploy_with(FakeGates::new(Verdict::Pass, smoke), extra)
    }

    fn deploy_with(&self, gates: FakeGates, extra: &[&str]) -> (Verdict, DeployResult, String) {
        let mut words = vec!["deploy", "--env", "staging"];
        if !extra.contains(&"--wait-timeout") {
            words.extend(["--wait-timeout", "30s"]);
        }
        // The log window after a proven deploy is deploy_logs.rs's business.
        if !extra.contains(&"--logs") {
            words.extend(["--logs", "0s"]);
        }
        words.extend_from_slice(extra);
        let args = deploy_options(&words);
        let flyctl = self.fly.flyctl();
        let repo = self.fixture.repo();
        let (outcome, out) =
            capture(|out| xtask::deploy::run_with(&repo, &args, flyctl, &gates, out));
        self.assert_no_secret(&out);
        let (verdict, result) = outcome.unwrap();
        (verdict, result, out)
    }

    fn rollback(&self, smoke: &[Verdict], extra: &[&str]) -> (Verdict, RollbackResult, String) {
        let words = ["rollback", "--env", "staging", "--wait-timeout", "30s"];
        let args = rollback_options(&[&words[..], extra].concat());
        let gates = FakeGates::new(Verdict::Pass, smoke);
        let flyctl = self.fly.flyctl();
        let repo = self.fixture.repo();
        let (outcome, out) =
            capture(|out| xtask::rollback::run_with(&repo, &args, flyctl, &gates, out));
        self.assert_no_secret(&out);
        let (verdict, result) = outcome.unwrap();
        (verdict, result, out)
    }

    /// A first deploy of HEAD that serves, then a new commit to deploy next. Returns the
    /// first commit and its image.
    fn deployed_then_new_commit(&self) -> (String, String) {
        let first = self.fixture.head();
        let (verdict, result, out) = self.deploy(&[Verdict::Pass], &[]);
        assert_eq!(verdict, Verdict::Pass, "{out}");
        let image = result.rollout.release.unwrap().image_ref.unwrap();
        self.fixture.write("backend/CHANGES", "a change\n");
        self.fixture.commit("the next build");
        (first, image)
    }

    /// The commit each started machine reports through the proxy, by machine id.
    fn served(&self) -> Vec<(String, Option<String>)> {
        let machines = self
            .fly
            .flyctl()
            .machines(APP, &mut std::io::sink())
            .unwrap()
            .unwrap();
        ask_versions(&self.url, &machines_to_ask(&machines, false))
            .unwrap()
            .into_iter()
            .map(|a| {
                assert_eq!(a.machine.as_deref(), Some(a.machine_id.as_str()), "{a:?}");
                (a.machine_id, a.commit)
            })
            .collect()
    }

    fn assert_serves(&self, commit: &str, machines: usize) {
        let served = self.served();
        assert_eq!(served.len(), machines, "{served:?}");
        for (id, reported) in &served {
            assert_eq!(
                reported.as_deref(),
                Some(commit),
                "machine {id}: {served:?}"
            );
        }
    }

    /// No secret value in any argv, the output or a record.
    fn assert_no_secret(&self, out: &str) {
        let calls = self.fly.calls().unwrap();
        let argv: Vec<String> = calls.iter().map(|c| c.argv.join(" ")).collect();
        assert!(
            calls.iter().any(|c| c.stdin.contains(JWT_SECRET)),
            "the secret travelled on stdin"
        );
        let records = self.fixture.records();
        for text in [argv.join("\n").as_str(), out, records.as_str()] {
            assert!(!text.contains(JWT_SECRET), "a secret leaked: {text}");
        }
        self.fixture.assert_no_secret(out);
    }

    /// The newest deploy record of staging.
    fn saved_deploy(&self) -> Option<xtask::record::RunRecord<DeployResult>> {
        xtask::record::latest(&self.fixture.repo(), "deploy", "staging").unwrap()
    }

    fn deploys(&self) -> usize {
        self.fly
            .calls()
            .unwrap()
            .iter()
            .filter(|c| c.argv.first().map(String::as_str) == Some("deploy"))
            .count()
    }
}

/// The rollback a failed deploy ran, which had no problem.
fn rolled_back_cleanly<'a>(result: &'a DeployResult, out: &str) -> &'a RollbackResult {
    let rolled = result.rollout.rolled_back.as_ref().unwrap();
    assert!(rolled.problems.is_empty(), "{out}");
    rolled
}

/// The proof that a rollout's build serves.
fn proof(rollout: &RolloutOutcome) -> &Verification {
    rollout.verification.as_ref().expect("a proof")
}

/// The condition `name` of a deploy's proof.
fn condition<'a>(result: &'a DeployResult, name: &str) -> &'a Condition {
    let conditions = &proof(&result.rollout).conditions;
    conditions.iter().find(|c| c.name == name).unwrap()
}

/// The image of the release a deploy left serving.
fn released_image(result: &DeployResult) -> String {
    let release = result.rollout.release.as_ref().unwrap();
    release.image_ref.clone().unwrap()
}

fn failed(result: &DeployResult) -> Vec<String> {
    result
        .rollout
        .verification
        .as_ref()
        .map(|v| {
            v.conditions
                .iter()
                .filter(|c| !c.passed)
                .map(|c| c.name.clone())
                .collect()
        })
        .unwrap_or_default()
}

#[test]
fn a_clean_deploy_serves_head_on_every_machine() {
    let stand = stand(2);
    let head = stand.fixture.head();
    let (verdict, result, out) = stand.deploy(&[Verdict::Pass], &[]);
    assert_eq!(verdict, Verdict::Pass, "{out}");
    assert!(out.contains("first deploy of cabanas-test"), "{out}");
    assert_eq!(result.rollback_image, None);
    assert_eq!(result.commit.as_deref(), Some(head.as_str()));
    let verification = proof(&result.rollout);
    assert_eq!(verification.verdict, Verdict::Pass, "{out}");
    let release = result.rollout.release.as_ref().unwrap();
    assert!(
        release.image_ref.as_deref().unwrap().ends_with(&head[..12]),
        "the image names its commit: {release:?}"
    );
    let after = result.rollout.after.as_ref().unwrap();
    assert_eq!(after.machines.len(), 2);
    assert!(
        after
            .machines
            .iter()
            .all(|m| m.commit.as_deref() == Some(head.as_str())),
        "{after:?}"
    );
    stand.assert_serves(&head, 2);
    let calls = stand.fly.calls().unwrap();
    let deploy = calls.iter().find(|c| c.argv[0] == "deploy").unwrap();
    let argv = deploy.argv.join(" ");
    assert!(
        argv.contains(&format!("--build-arg GIT_COMMIT={head}"))
            && argv.contains(&format!("--image-label {}", &head[..12])),
        "{argv}"
    );
}

#[test]
fn a_crash_at_start_fails_prints_the_rollback_and_the_rollback_brings_the_previous_commit_back() {
    let stand = stand(2);
    let (first, image) = stand.deployed_then_new_commit();
    stand.fly.fault(APP, Fault::CrashAtStart).unwrap();
    let (verdict, result, out) = stand.deploy(&[], &[]);
    assert_eq!(verdict, Verdict::Fail, "{out}");
    assert!(result.problems[0].contains("flyctl deploy failed"), "{out}");
    let command = format!("cargo xtask rollback --env staging --to {image}");
    assert!(out.contains(&command), "{out}");
    assert_eq!(result.rollback_commit.as_deref(), Some(first.as_str()));
    assert!(result.rollout.rolled_back.is_none());

    let (verdict, rolled, out) = stand.rollback(&[Verdict::Pass], &["--to", &image]);
    assert_eq!(verdict, Verdict::Pass, "{out}");
    assert_eq!(rolled.to_commit.as_deref(), Some(first.as_str()));
    assert_eq!(proof(&rolled.rollout).verdict, Verdict::Pass, "{out}");
    stand.assert_serves(&first, 2);
}

#[test]
fn a_crash_at_start_with_rollback_on_failure_serves_the_previous_commit() {
    let stand = stand(2);
    let (first, image) = stand.deployed_then_new_commit();
    stand.fly.fault(APP, Fault::CrashAtStart).unwrap();
    let (verdict, result, out) = stand.deploy(&[Verdict::Pass], &["--rollback-on-failure"]);
    assert_eq!(
        verdict,
        Verdict::Fail,
        "the deploy failed even though the rollback worked"
    );
    let rolled = result.rollout.rolled_back.as_ref().unwrap();
    // Fly reports the image's digest with the machines: the way back may name it too.
    let same = |got: Option<&str>| got.is_some_and(|got| xtask::flyctl::same_image(got, &image));
    assert!(same(rolled.to_image.as_deref()), "{:?}", rolled.to_image);
    assert_eq!(proof(&rolled.rollout).verdict, Verdict::Pass, "{out}");
    assert_eq!(rolled.rollout.smoke, Some(Verdict::Pass));
    assert!(
        result
            .rollout
            .release
            .as_ref()
            .and_then(|r| r.image_ref.as_deref())
            .is_some_and(|i| xtask::flyctl::same_image(i, &image)),
        "the release serving after the deploy is the rollback's: {:?}",
        result.rollout.release
    );
    stand.assert_serves(&first, 2);
    let record: xtask::record::RunRecord<DeployResult> = stand.saved_deploy().unwrap();
    let saved = record.result;
    assert_eq!(saved.before.unwrap().machines.len(), 2, "images before");
    assert_eq!(
        saved.rollout.after.unwrap().machines.len(),
        2,
        "images after"
    );
    assert!(
        same(saved.rollback_image.as_deref()),
        "{:?}",
        saved.rollback_image
    );
    let rolled = saved.rollout.rolled_back.unwrap();
    let evidence = rolled.rollout.verification.unwrap();
    assert_eq!(
        evidence.conditions.len(),
        4,
        "each condition with its evidence"
    );
    assert!(
        evidence.conditions[3].evidence.contains(&first),
        "{:?}",
        evidence.conditions
    );
}

#[test]
fn smoke_that_cannot_run_counts_as_a_failure_and_rolls_back() {
    let stand = stand(1);
    let (first, _) = stand.deployed_then_new_commit();
    let gates = FakeGates::new(Verdict::Pass, &[Verdict::Pass]);
    gates.smoke_cannot_run.set(true);
    let (verdict, result, out) = stand.deploy_with(gates, &["--rollback-on-failure"]);
    assert_eq!(verdict, Verdict::Fail, "{out}");
    assert!(
        result
            .problems
            .iter()
            .any(|p| p.contains("smoke could not run against the new release")),
        "{out}"
    );
    let rolled = rolled_back_cleanly(&result, &out);
    assert_eq!(rolled.rollout.smoke, Some(Verdict::Pass));
    stand.assert_serves(&first, 1);
}

#[test]
fn a_failing_release_command_fails_and_rolls_back() {
    let stand = stand(2);
    let (first, _) = stand.deployed_then_new_commit();
    stand.fly.fault(APP, Fault::ReleaseCommandFails).unwrap();
    let (verdict, result, out) = stand.deploy(&[Verdict::Pass], &["--rollback-on-failure"]);
    assert_eq!(verdict, Verdict::Fail, "{out}");
    assert!(result.problems[0].contains("flyctl deploy failed"), "{out}");
    rolled_back_cleanly(&result, &out);
    stand.assert_serves(&first, 2);
}

#[test]
fn checks_that_never_pass_time_out_and_roll_back() {
    let stand = stand(2);
    let (first, _) = stand.deployed_then_new_commit();
    stand.fly.fault(APP, Fault::ChecksNeverPass).unwrap();
    let (verdict, result, out) = stand.deploy(
        &[Verdict::Pass],
        &["--rollback-on-failure", "--wait-timeout", "5s"],
    );
    assert_eq!(verdict, Verdict::Fail, "{out}");
    assert!(result.problems[0].contains("flyctl deploy failed"), "{out}");
    rolled_back_cleanly(&result, &out);
    stand.assert_serves(&first, 2);
}

#[test]
fn flyctl_exiting_0_without_a_new_release_fails() {
    let stand = stand(1);
    let (first, image) = stand.deployed_then_new_commit();
    stand.fly.fault(APP, Fault::NoRelease).unwrap();
    let (verdict, result, out) = stand.deploy(&[], &["--wait-timeout", "3s"]);
    assert_eq!(verdict, Verdict::Fail, "{out}");
    assert_eq!(
        failed(&result),
        [
            "new release complete",
            "machines run its image",
            "version endpoint reports the commit"
        ],
        "{out}"
    );
    let problem = &result.problems[0];
    assert!(problem.contains("no release newer than v1"), "{problem}");
    assert!(
        problem.contains(&format!("reports commit {first}")),
        "{problem}"
    );
    assert!(out.contains(&format!("cargo xtask rollback --env staging --to {image}")));
    assert_eq!(
        result.rollout.smoke, None,
        "smoke does not run against an unproven build"
    );
    stand.assert_serves(&first, 1);
}

#[test]
fn smoke_failing_after_the_deploy_rolls_back() {
    let stand = stand(2);
    let (first, _) = stand.deployed_then_new_commit();
    let head = stand.fixture.head();
    let (verdict, result, out) =
        stand.deploy(&[Verdict::Fail, Verdict::Pass], &["--rollback-on-failure"]);
    assert_eq!(verdict, Verdict::Fail, "{out}");
    assert_eq!(
        proof(&result.rollout).verdict,
        Verdict::Pass,
        "the new build served before smoke failed: {out}"
    );
    assert!(
        result
            .rollout
            .after
            .as_ref()
            .unwrap()
            .machines
            .iter()
            .all(|m| m.commit.as_deref() == Some(head.as_str()))
    );
    assert_eq!(result.rollout.smoke, Some(Verdict::Fail));
    rolled_back_cleanly(&result, &out);
    stand.assert_serves(&first, 2);
}

#[test]
fn rollback_dry_run_names_the_image_and_commit_then_the_real_one_restores_it() {
    let stand = stand(2);
    let (first, image) = stand.deployed_then_new_commit();
    let migration = "backend/migrations/20990101000000_add_notes.sql";
    stand.fixture.write(
        migration,
        "ALTER TABLE reservations ADD COLUMN notes TEXT;\n",
    );
    let second = stand.fixture.commit("a migration");
    let (verdict, _, out) = stand.deploy(&[Verdict::Pass], &[]);
    assert_eq!(verdict, Verdict::Pass, "{out}");
    stand.assert_serves(&second, 2);

    let deploys = stand.deploys();
    let (verdict, result, out) = stand.rollback(&[], &["--dry-run"]);
    assert_eq!(verdict, Verdict::Pass, "{out}");
    assert_eq!(stand.deploys(), deploys, "a dry run deploys nothing");
    assert!(
        out.contains(&format!(
            "rollback target of cabanas-test: {image} (release v1) serving commit {first}"
        )),
        "{out}"
    );
    assert!(out.contains(migration), "{out}");
    assert_eq!(result.migrations_not_reverted, [migration]);
    stand.assert_serves(&second, 2);

    let (verdict, result, out) = stand.rollback(&[Verdict::Pass], &[]);
    assert_eq!(verdict, Verdict::Pass, "{out}");
    assert_eq!(result.to_image.as_deref(), Some(image.as_str()));
    assert_eq!(result.from_commit.as_deref(), Some(second.as_str()));
    stand.assert_serves(&first, 2);
}

/// Real Fly with `auto_stop_machines = "stop"` (the project's fly.toml): a quiet app has
/// stopped machines, and `fly deploy` updates them without starting them. The proof holds,
/// says how many were stopped, and nothing is rolled back.
#[test]
fn a_deploy_on_an_app_with_a_stopped_machine_passes_and_is_not_rolled_back() {
    let stand = stand(2);
    let (_, _) = stand.deployed_then_new_commit();
    let stopped = stand.fly.stop_machine(APP).unwrap();
    let head = stand.fixture.head();
    let (verdict, result, out) = stand.deploy(&[Verdict::Pass], &["--rollback-on-failure"]);
    assert_eq!(verdict, Verdict::Pass, "{out}");
    assert!(result.rollout.rolled_back.is_none(), "{out}");
    let checks = condition(&result, "machine checks pass");
    assert!(
        checks.evidence.contains("1 stopped by Fly") && checks.evidence.contains(&stopped),
        "{checks:?}"
    );
    // The stopped machine's config names the new image; the started one serves HEAD.
    let app = stand.fly.app(APP).unwrap();
    let image = released_image(&result);
    assert_eq!(app.machines[&stopped].state, "stopped");
    assert!(xtask::flyctl::same_image(
        &app.machines[&stopped].image_ref,
        &image
    ));
    stand.assert_serves(&head, 1);
}

/// `fly machines list` also lists machines deploy does not manage (a leftover
/// release-command machine, `fly machine run`); they keep the old image and must not fail
/// "every machine runs the image".
#[test]
fn machines_deploy_does_not_manage_do_not_fail_the_proof() {
    let stand = stand(1);
    let (_, _) = stand.deployed_then_new_commit();
    let leftover = stand
        .fly
        .add_machine(APP, xtask::localfly::MachineKind::ReleaseCommand, None)
        .unwrap();
    let run = stand
        .fly
        .add_machine(APP, xtask::localfly::MachineKind::MachineRun, None)
        .unwrap();
    let head = stand.fixture.head();
    let (verdict, result, out) = stand.deploy(&[Verdict::Pass], &["--rollback-on-failure"]);
    assert_eq!(verdict, Verdict::Pass, "{out}");
    assert!(result.rollout.rolled_back.is_none(), "{out}");
    let images = condition(&result, "machines run its image").clone();
    assert!(
        images
            .evidence
            .contains(&format!("{leftover} (fly_app_release_command)"))
            && images.evidence.contains(&run),
        "{images:?}"
    );
    // Deploy left them alone, on the image they had.
    let app = stand.fly.app(APP).unwrap();
    let new_image = released_image(&result);
    assert!(!xtask::flyctl::same_image(
        &app.machines[&leftover].image_ref,
        &new_image
    ));
    stand.assert_serves(&head, 1);
}

/// `fly releases` lists the newest 25 releases only (flyctl `internal/command/apps/releases.go`):
/// `rollback --to-version` of an older one says so and deploys nothing.
#[test]
fn rollback_to_a_version_outside_the_25_release_window_says_so() {
    let stand = stand(1);
    let (_, image) = stand.deployed_then_new_commit();
    let flyctl = stand.fly.flyctl().in_dir(stand.fixture.root());
    for _ in 0..25 {
        let redeploy = xtask::flyctl::DeployCommand {
            app: APP.into(),
            config: "fly.toml".into(),
            image: Some(image.clone()),
            strategy: Some("immediate".into()),
            wait_timeout: std::time::Duration::from_secs(30),
            build_args: Vec::new(),
            image_label: None,
            time_limit: None,
        };
        flyctl.deploy(&redeploy, &mut std::io::sink()).unwrap();
    }
    let deploys = stand.deploys();
    let (verdict, _, out) = stand.rollback(&[], &["--to-version", "1"]);
    assert_eq!(verdict, Verdict::Fail, "{out}");
    assert!(
        out.contains("release v1 of cabanas-test is older than the 25 newest releases")
            && out.contains("--to IMAGE_REF"),
        "{out}"
    );
    assert_eq!(stand.deploys(), deploys, "nothing deployed");
}

/// Set in the child process of the interrupt test: the fixture's root and the local Fly's
/// state directory, program and service binary, one a line.
const INTERRUPTED_CHILD: &str = "DEPLOY_LOCALFLY_INTERRUPTED_CHILD";

/// Ctrl-C while the local Fly deploys: xtask stops flyctl, which marks its release
/// `interrupted` and exits 127 as flyctl does; the deploy's record names what was interrupted
/// and the command back to what served. The deploy runs in a child process (this test again),
/// since the interrupt ends it.
#[test]
fn ctrl_c_during_a_deploy_leaves_an_interrupted_release_and_a_record_with_the_way_back() {
    if let Some(paths) = std::env::var_os(INTERRUPTED_CHILD) {
        let paths = paths.into_string().unwrap();
        let lines: Vec<&str> = paths.lines().collect();
        let flyctl = xtask::flyctl::Flyctl::at(lines[2], false)
            .with_env(xtask::localfly::DIR_ENV, lines[1])
            .with_env(xtask::localfly::CABANAS_BIN_ENV, lines[3]);
        let words = ["deploy", "--env", "staging", "--wait-timeout", "120s"];
        let args = deploy_options(&words);
        let gates = FakeGates::new(Verdict::Pass, &[Verdict::Pass]);
        let _ = xtask::deploy::run_with(
            &xtask::repo::Repo::at(lines[0]),
            &args,
            flyctl,
            &gates,
            &mut std::io::sink(),
        );
        return;
    }
    let stand = stand(1);
    let (_, image) = stand.deployed_then_new_commit();
    stand.fly.fault(APP, Fault::ChecksNeverPass).unwrap();
    let paths = format!(
        "{}\n{}\n{}\n{}",
        stand.fixture.root().display(),
        stand.fly.dir().display(),
        stand.fly.program().display(),
        service_binary().display()
    );
    let mut child = rerun_test(
        "deploy_localfly::ctrl_c_during_a_deploy_leaves_an_interrupted_release_and_a_record_with_the_way_back",
        INTERRUPTED_CHILD,
        paths,
    );
    // Wait (bounded) until the local Fly's deploy made its release.
    poll_until(
        "the deploy never started",
        std::time::Duration::from_secs(120),
        std::time::Duration::from_millis(20),
        || {
            let releases = stand.fly.app(APP).unwrap().releases;
            let last = releases.last();
            last.is_some_and(|r| r.version == 2 && r.status == "running")
                .then_some(())
        },
    );
    xtask::interrupt::send_signal(child.id(), "INT");
    let status = child.wait().unwrap();
    assert_eq!(status.code(), Some(xtask::interrupt::EXIT_INTERRUPTED));
    let release = stand
        .fly
        .app(APP)
        .unwrap()
        .releases
        .last()
        .cloned()
        .unwrap();
    assert_eq!(release.status, "interrupted", "{release:?}");
    let record: xtask::record::RunRecord<DeployResult> = stand
        .saved_deploy()
        .expect("the interrupted deploy saved its record");
    deploy_support::assert_interrupted_with_the_way_back(&record, &image);
}
