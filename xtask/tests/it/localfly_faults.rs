//! Faults of the local Fly fail a deploy the way flyctl does (a binary that exits at start,
//! a failing release command, checks that never pass within --wait-timeout, exit 0 without
//! a release), and the build that served before keeps serving.

use crate::localfly_support;

use localfly_support::{failure_text, harness};
use xtask::flyctl::same_image;
use xtask::localfly::Fault;

#[test]
fn a_binary_that_exits_at_start_fails_the_rolling_deploy() {
    let h = harness("lf-crash", 2);
    h.deploy("900d001", None, 60).unwrap();
    let good = h.releases()[0].image_ref.clone().unwrap();
    h.fly.fault("lf-crash", Fault::CrashAtStart).unwrap();
    let error = failure_text(h.deploy("bad0002", None, 60).unwrap_err());
    assert!(error.contains("exited while starting"), "{error}");

    let releases = h.releases();
    assert_eq!(releases[0].version, 2);
    assert_eq!(releases[0].status, "failed");
    // Rolling stops at the first machine: it is down on the new image, the other still
    // serves the previous commit, and the proxy sends everything there.
    let machines = h.machines();
    let stopped: Vec<_> = machines.iter().filter(|m| m.state == "stopped").collect();
    assert_eq!(stopped.len(), 1, "{machines:?}");
    assert!(same_image(
        stopped[0].image.as_deref().unwrap(),
        "registry.fly.io/lf-crash:bad0002"
    ));
    assert!(stopped[0].checks.iter().all(|c| c.status == "critical"));
    for _ in 0..3 {
        let (status, body) = h.version(None);
        assert_eq!((status, body["commit"].as_str()), (200, Some("900d001")));
    }
    // Redeploying the previous image brings both machines back.
    h.deploy_image(&good).unwrap();
    let commits = h.commits();
    assert_eq!(commits.len(), 2);
    assert!(commits.iter().all(|(_, c)| c == "900d001"), "{commits:?}");
}

#[test]
fn faults_fail_the_deploy_like_flyctl_and_leave_the_old_build_serving() {
    let h = harness("lf-faults", 1);
    h.deploy("900d001", None, 60).unwrap();
    let pids = h.fly.pids();

    // The release command fails: nothing is replaced.
    h.fly
        .fault("lf-faults", Fault::ReleaseCommandFails)
        .unwrap();
    let error = failure_text(h.deploy("bad0002", None, 60).unwrap_err());
    assert!(error.contains("release command failed"), "{error}");
    assert_eq!(h.releases()[0].status, "failed");
    assert_eq!(h.fly.pids(), pids, "no machine was touched");
    assert_eq!(h.commits()[0].1, "900d001");

    // A canary that never passes its checks stops the deploy before any machine is touched.
    h.fly.fault("lf-faults", Fault::ChecksNeverPass).unwrap();
    let error = failure_text(h.deploy("bad0003c", Some("canary"), 2).unwrap_err());
    assert!(error.contains("canary machine"), "{error}");
    assert_eq!(h.fly.pids(), pids, "no machine was touched");
    assert_eq!(h.machines().len(), 1, "the canary is gone");

    // Bluegreen with failing checks: the green machines go, the blue ones never stopped.
    h.fly.fault("lf-faults", Fault::ChecksNeverPass).unwrap();
    let error = failure_text(h.deploy("bad0003b", Some("bluegreen"), 2).unwrap_err());
    assert!(error.contains("green machines"), "{error}");
    assert_eq!(h.fly.pids(), pids, "the blue machine kept serving");
    assert_eq!(
        h.commits(),
        [(h.machines()[0].id.clone(), "900d001".to_string())]
    );

    // Checks never pass: flyctl gives up at --wait-timeout.
    h.fly.fault("lf-faults", Fault::ChecksNeverPass).unwrap();
    let error = failure_text(h.deploy("bad0003", None, 2).unwrap_err());
    assert!(
        error.contains("timeout reached waiting for health checks"),
        "{error}"
    );
    let releases = h.releases();
    assert_eq!(
        (releases[0].version, releases[0].status.as_str()),
        (5, "failed")
    );
    let machine = &h.machines()[0];
    assert!(same_image(
        machine.image.as_deref().unwrap(),
        "registry.fly.io/lf-faults:bad0003"
    ));
    let (status, body) = h.version(None);
    assert_eq!(
        status, 503,
        "a machine failing its checks gets no traffic: {body}"
    );
    let (status, body) = h.version(Some(&machine.id));
    assert_eq!((status, body["commit"].as_str()), (200, Some("bad0003")));
    assert!(
        machine.checks.iter().all(|c| c.status == "critical"),
        "{machine:?}"
    );

    // Exit 0 and no new release: nothing changed at all.
    h.deploy_image("registry.fly.io/lf-faults:900d001").unwrap();
    let before = h.releases();
    h.fly.fault("lf-faults", Fault::NoRelease).unwrap();
    h.deploy("quiet005", None, 60).expect("flyctl exits 0");
    assert_eq!(h.releases(), before);
    assert_eq!(h.commits()[0].1, "900d001");

    // An image that was never built is refused.
    let error = failure_text(
        h.deploy_image("registry.fly.io/lf-faults:nope")
            .unwrap_err(),
    );
    assert!(error.contains("image not found"), "{error}");
}

/// A Ctrl-C to flyctl reaches its whole process group (the deploy tools stop flyctl that way),
/// but a release command runs on a temporary Fly machine, not under flyctl: the signal must not
/// end it. Were it killed, the deploy would see it fail before the signal's handler marked the
/// deploy interrupted, and record the release `failed`.
#[test]
fn a_signal_to_flyctl_does_not_end_the_release_command_and_the_release_is_interrupted() {
    let h = harness("lf-relcmd", 1);
    let dir = tempfile::tempdir().unwrap();
    let script = dir.path().join("slow-release.sh");
    std::fs::write(
        &script,
        "#!/bin/sh\ntouch \"$(dirname \"$0\")/started\"\nsleep 1\ntouch \"$(dirname \"$0\")/released\"\n",
    )
    .unwrap();
    std::fs::set_permissions(&script, std::os::unix::fs::PermissionsExt::from_mode(0o755)).unwrap();
    let fly_toml = std::fs::read_to_string(localfly_support::repo().path("fly.toml")).unwrap();
    let fly_toml = fly_toml.replace(
        "release_command = \"cabanas migrate\"",
        &format!("release_command = \"{}\"", script.display()),
    );
    assert!(
        fly_toml.contains("slow-release.sh"),
        "fly.toml has no release_command to replace"
    );
    std::fs::write(dir.path().join("fly.toml"), fly_toml).unwrap();

    let mut deploy = std::process::Command::new(h.fly.program());
    deploy
        .args([
            "deploy",
            "--remote-only",
            "--image-label",
            "relcmd1",
            "--app",
            "lf-relcmd",
            "--config",
            "fly.toml",
            "--strategy",
            "rolling",
            "--wait-timeout",
            "30s",
        ])
        .envs(h.fly.env())
        .current_dir(dir.path())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null());
    std::os::unix::process::CommandExt::process_group(&mut deploy, 0);
    let mut child = deploy.spawn().unwrap();
    crate::support::poll_until(
        "the release command never started",
        std::time::Duration::from_secs(60),
        std::time::Duration::from_millis(10),
        || dir.path().join("started").exists().then_some(()),
    );
    // As the deploy tools stop flyctl: TERM to its whole process group.
    xtask::interrupt::terminate_group(child.id());
    let status = child.wait().unwrap();
    assert!(!status.success(), "an interrupted deploy does not succeed");
    crate::support::poll_until(
        "the release command was ended by the signal to flyctl",
        std::time::Duration::from_secs(10),
        std::time::Duration::from_millis(20),
        || dir.path().join("released").exists().then_some(()),
    );
    let release = h.releases()[0].clone();
    assert_eq!(release.status, "interrupted", "{release:?}");
}
