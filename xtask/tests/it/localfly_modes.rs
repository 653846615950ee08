//! The local Fly behaves as real Fly does where the deploy tasks meet it: auto-stop and
//! auto-start, `logs --no-tail` that waits on an empty buffer, the 25-release window,
//! blue-green's refusal of mixed images, interrupted deploys, images named by digest alone,
//! and deploy tokens scoped to one app. Each test names the flyctl behaviour it holds the
//! stand-in to (the sources are cited in `xtask/src/localfly/`).

use crate::localfly_support;

use std::process::Stdio;
use std::time::{Duration, Instant};

use localfly_support::{failure_text, harness, harness_idle_stop};
use xtask::flyctl::{DeployCommand, same_image};
use xtask::release::{Expected, verify};
use xtask::verdict::Verdict;

/// Polls `ready` with a back-off from a few milliseconds, up to `bound`.
fn eventually(bound: Duration, mut ready: impl FnMut() -> bool) -> bool {
    let deadline = Instant::now() + bound;
    let mut pause = Duration::from_millis(5);
    loop {
        if ready() {
            return true;
        }
        if Instant::now() >= deadline {
            return false;
        }
        std::thread::sleep(pause);
        pause = (pause * 2).min(Duration::from_millis(250));
    }
}

fn immediate(app: &str, label: &str) -> DeployCommand {
    DeployCommand {
        app: app.into(),
        config: "fly.toml".into(),
        image: None,
        strategy: Some("immediate".into()),
        wait_timeout: std::time::Duration::from_secs(30),
        build_args: vec![("GIT_COMMIT".into(), label.into())],
        image_label: Some(label.into()),
        time_limit: None,
    }
}

/// flyctl lists the newest 25 releases only (`internal/command/apps/releases.go`).
#[test]
fn releases_lists_only_the_25_newest() {
    let h = harness("lf-window", 1);
    for n in 1..=27 {
        let label = format!("w{n:05}");
        h.flyctl
            .deploy(&immediate("lf-window", &label), &mut Vec::new())
            .unwrap();
    }
    let releases = h.releases();
    assert_eq!(releases.len(), 25, "{releases:?}");
    assert_eq!(releases[0].version, 27);
    assert_eq!(releases.last().unwrap().version, 3);
}

/// flyctl's blue-green refuses an app whose machines run two images
/// (`strategy_bluegreen.go`, `DetectMultipleImageVersions`); the release fails and no
/// machine is touched.
#[test]
fn blue_green_refuses_machines_on_mixed_images() {
    let h = harness("lf-mixed", 1);
    h.deploy("aaa0001", None, 60).unwrap();
    let left = h
        .fly
        .add_machine(
            "lf-mixed",
            xtask::localfly::MachineKind::App,
            Some("registry.fly.io/lf-mixed:0ld"),
        )
        .unwrap();
    let pids = h.fly.pids();
    let error = failure_text(h.deploy("bbb0002", Some("bluegreen"), 60).unwrap_err());
    assert!(
        error.contains("found multiple image versions") && error.contains(&left),
        "{error}"
    );
    assert_eq!(h.releases()[0].status, "failed");
    assert_eq!(h.fly.pids(), pids, "no machine was touched");
}

/// `fly deploy --image registry.fly.io/app@sha256:...` leaves the machines' config naming the
/// image by digest alone; the proof still sees them run the tagged image.
#[test]
fn a_machine_config_naming_the_image_by_digest_is_proven_as_its_tag() {
    let h = harness("lf-digest", 1);
    h.deploy("d1d1d1d", None, 60).unwrap();
    let tagged = "registry.fly.io/lf-digest:d1d1d1d";
    let digest = h.fly.app("lf-digest").unwrap().images[tagged]
        .digest
        .clone();
    assert!(digest.starts_with("sha256:"), "{digest}");
    h.deploy("e2e2e2e", None, 60).unwrap();
    let by_digest = format!("registry.fly.io/lf-digest@{digest}");
    h.deploy_image(&by_digest).unwrap();
    let app = h.fly.app("lf-digest").unwrap();
    assert!(
        app.machines.values().all(|m| m.image_ref == by_digest),
        "the config keeps the digest-only ref: {:?}",
        app.machines
    );
    let expected = Expected {
        newer_than: Some(2),
        image: Some(tagged.into()),
        commit: Some("d1d1d1d".into()),
        wake: false,
    };
    let mut out = Vec::new();
    let proof = verify(
        "the digest-only deploy serves",
        &h.flyctl,
        "lf-digest",
        &h.url,
        &expected,
        Duration::from_secs(20),
        &mut out,
    )
    .unwrap();
    assert_eq!(
        proof.verdict,
        Verdict::Pass,
        "{}",
        String::from_utf8_lossy(&out)
    );
    let machine = &h.machines()[0];
    assert!(same_image(machine.image.as_deref().unwrap(), tagged));
}

/// flyctl's `logs --no-tail` polls until a page has entries (`logs/polling.go`): on an app
/// that has logged nothing it does not return, and it returns once a line is there.
#[test]
fn logs_no_tail_waits_while_the_buffer_is_empty() {
    let h = harness("lf-quiet", 1);
    let mut logs = h
        .fly
        .command()
        .args(["logs", "--app", "lf-quiet", "--no-tail"])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let asked = eventually(Duration::from_secs(10), || {
        h.fly
            .calls()
            .unwrap()
            .iter()
            .any(|c| c.argv.first().is_some_and(|a| a == "logs"))
    });
    assert!(asked, "the logs call started");
    // It polled the empty buffer for as long as this took and is still waiting.
    assert!(
        logs.try_wait().unwrap().is_none(),
        "logs --no-tail returned on an empty buffer"
    );
    h.deploy("10951e5", None, 60).unwrap();
    let mut status = None;
    let ended = eventually(Duration::from_secs(30), || {
        status = logs.try_wait().unwrap();
        status.is_some()
    });
    if !ended {
        let _ = logs.kill();
    }
    assert!(ended, "logs --no-tail returned once the machine logged");
    let output = logs.wait_with_output().unwrap();
    assert!(status.unwrap().success());
    assert!(
        String::from_utf8_lossy(&output.stdout).contains(" app["),
        "one page printed"
    );
}

/// With fly.toml's `auto_stop_machines = "stop"` and `min_machines_running = 1`, the proxy
/// stops one of two idle machines and keeps one; a request for the stopped machine starts it
/// (`auto_start_machines = true`), and a deploy updates a stopped machine without starting it.
#[test]
fn auto_stop_stops_idle_machines_down_to_the_minimum_and_a_request_starts_one() {
    let h = harness_idle_stop("lf-idle", 2, Duration::from_millis(300));
    h.deploy("1d1e001", None, 60).unwrap();
    let mut stopped = Vec::new();
    let auto_stopped = eventually(Duration::from_secs(30), || {
        stopped = h
            .machines()
            .into_iter()
            .filter(|m| m.state == "stopped")
            .map(|m| m.id)
            .collect();
        !stopped.is_empty()
    });
    assert!(auto_stopped, "an idle machine was stopped");
    assert_eq!(stopped.len(), 1, "min_machines_running = 1 keeps one");
    let started: Vec<_> = h
        .machines()
        .into_iter()
        .filter(|m| m.state == "started")
        .collect();
    assert_eq!(started.len(), 1, "{started:?}");

    // A deploy updates the stopped machine's image and leaves it stopped.
    h.deploy("1d1e002", None, 60).unwrap();
    let app = h.fly.app("lf-idle").unwrap();
    let after = &app.machines[&stopped[0]];
    assert_eq!(after.image_ref, "registry.fly.io/lf-idle:1d1e002");

    // A request for it (fly-force-instance-id) starts it, and it answers.
    let (status, body) = h.version(Some(&stopped[0]));
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["machine"], stopped[0].as_str());
    assert_eq!(body["commit"], "1d1e002");
}

/// A signal to `fly deploy` cancels it: flyctl marks the release `interrupted` and exits 127
/// (`machines_deploymachinesapp.go`, `internal/cli/cli.go`).
#[test]
fn a_signalled_deploy_marks_its_release_interrupted_and_exits_127() {
    let h = harness("lf-signal", 1);
    h.deploy("5a5a001", None, 60).unwrap();
    h.fly
        .fault("lf-signal", xtask::localfly::Fault::ChecksNeverPass)
        .unwrap();
    let mut deploy = h
        .fly
        .command()
        .args([
            "deploy",
            "--app",
            "lf-signal",
            "--config",
            "fly.toml",
            "--wait-timeout",
            "120s",
            "--image-label",
            "5a5a002",
        ])
        .current_dir(localfly_support::repo().root())
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let running = eventually(Duration::from_secs(30), || {
        let app = h.fly.app("lf-signal").unwrap();
        app.releases.len() == 2 && app.releases[1].status == "running"
    });
    assert!(running, "the deploy made its release");
    xtask::interrupt::send_signal(deploy.id(), "TERM");
    let status = deploy.wait().unwrap();
    assert_eq!(status.code(), Some(127));
    assert_eq!(h.releases()[0].status, "interrupted");
}

/// A deploy token is scoped to one app (https://fly.io/docs/reference/deploy-tokens/):
/// production's cannot pull staging's image; `--build-only` finds that out with no release.
#[test]
fn a_token_scoped_to_one_app_cannot_pull_another_apps_image() {
    let staging = harness("lf-stage", 1);
    staging.deploy("57a9e01", None, 60).unwrap();
    let image = "registry.fly.io/lf-stage:57a9e01";
    staging.fly.create_app("lf-prod", 1).unwrap();
    staging.fly.token_scope("lf-prod", &[]).unwrap();
    let build_only = |fly: &xtask::localfly::LocalFly| {
        fly.command()
            .args([
                "deploy",
                "--app",
                "lf-prod",
                "--config",
                "fly.toml",
                "--image",
                image,
                "--build-only",
            ])
            .current_dir(localfly_support::repo().root())
            .stdin(Stdio::null())
            .output()
            .unwrap()
    };
    let refused = build_only(&staging.fly);
    assert_eq!(refused.status.code(), Some(1));
    let error = String::from_utf8_lossy(&refused.stderr);
    assert!(
        error.contains("unauthorized") && error.contains("fly tokens create org"),
        "{error}"
    );
    staging.fly.token_scope("lf-prod", &["lf-stage"]).unwrap();
    let found = build_only(&staging.fly);
    assert!(found.status.success(), "{found:?}");
    let prod = staging.fly.app("lf-prod").unwrap();
    assert!(prod.releases.is_empty(), "--build-only makes no release");
}
