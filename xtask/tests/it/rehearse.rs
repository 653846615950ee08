//! `cargo xtask rehearse` end to end on SQLite, in a committed copy of this repository: the
//! verdict, the report file, and no service process left behind, also after Ctrl-C.

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Command, Stdio};

use crate::support::service_binary;
use xtask::interrupt::{process_alive, send_signal};

/// A committed copy of the repository's files (tracked and new, not ignored) in a temp dir.
fn repository_copy() -> tempfile::TempDir {
    let source = Path::new(env!("CARGO_MANIFEST_DIR")).parent().unwrap();
    let listing = Command::new("git")
        .args([
            "ls-files",
            "-z",
            "--cached",
            "--others",
            "--exclude-standard",
        ])
        .current_dir(source)
        .output()
        .unwrap();
    assert!(listing.status.success());
    let copy = tempfile::tempdir().unwrap();
    for name in listing.stdout.split(|b| *b == 0).filter(|n| !n.is_empty()) {
        let relative = Path::new(std::str::from_utf8(name).unwrap());
        let from = source.join(relative);
        if !from.is_file() {
            continue; // deleted in the working tree
        }
        let to = copy.path().join(relative);
        std::fs::create_dir_all(to.parent().unwrap()).unwrap();
        std::fs::copy(&from, &to).unwrap();
    }
    for args in [
        &["init", "-q"][..],
        &["add", "-A"],
        &[
            "-c",
            "user.name=rehearsal",
            "-c",
            "user.email=r@example.com",
            "commit",
            "-qm",
            "copy",
        ],
    ] {
        let status = Command::new("git")
            .args(args)
            .current_dir(copy.path())
            .status()
            .unwrap();
        assert!(status.success(), "git {args:?}");
    }
    copy
}

fn rehearse(copy: &Path, extra: &[&str]) -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_xtask"));
    command
        .arg("rehearse")
        .arg("--service-bin")
        .arg(service_binary())
        .arg("--localfly-bin")
        .arg(env!("CARGO_BIN_EXE_localfly"))
        .args(["--overlap-concurrency", "20", "--overlap-rounds", "1"])
        .args(extra)
        .current_dir(copy)
        .env_remove("GITHUB_STEP_SUMMARY")
        .stdin(Stdio::null());
    command
}

/// A rehearsal of `copy` that reached GO: its stdout.
fn rehearse_to_go(copy: &Path, extra: &[&str]) -> String {
    let output = rehearse(copy, extra).output().unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(
        output.status.code(),
        Some(0),
        "stdout:\n{stdout}\nstderr:\n{stderr}"
    );
    assert!(stdout.contains("verdict: GO"), "{stdout}");
    stdout.into_owned()
}

fn service_pid(output: &str) -> u32 {
    let start = output.find("(pid ").expect("the service pid is printed") + 5;
    let digits: String = output[start..]
        .chars()
        .take_while(char::is_ascii_digit)
        .collect();
    digits.parse().unwrap()
}

#[test]
fn rehearse_runs_the_pipeline_and_leaves_nothing_running() {
    let copy = repository_copy();
    let stdout = rehearse_to_go(copy.path(), &[]);
    for phase in [
        "==> predeploy:",
        "==> smoke: PASS",
        "==> overlap: PASS",
        "==> backup: PASS (SQLite ",
        "==> restore drill: PASS (RTO ",
        "integrity   PASS  PRAGMA integrity_check: ok",
        "==> fly secrets: PASS",
        "==> fly deploy: PASS (HEAD ",
        "proven on 2 machines: yes",
        "into gru",
        "==> fly overlap: PASS (through the proxy, racers alternating scl and gru)",
        "==> fly rollback: PASS",
    ] {
        assert!(stdout.contains(phase), "missing {phase}:\n{stdout}");
    }
    let stopped = stdout
        .split("local Fly stopped (pids ")
        .nth(1)
        .expect("the local Fly's pids are printed");
    let pids: Vec<u32> = stopped[..stopped.find(')').unwrap()]
        .split(", ")
        .map(|p| p.parse().unwrap())
        .collect();
    // Auto-stop stopped a machine of the app before the rollback drill, as Fly's proxy leaves
    // a quiet app, and it stays stopped. What is left to stop is the proxy and the machines
    // still started: the one in scl and the one cloned into gru, unless auto-stop (2 s idle)
    // has stopped one of those too by the end, which depends on the machine's pace.
    assert!(
        stdout.contains("stopped first by auto-stop, as Fly's proxy leaves a quiet app)"),
        "{stdout}"
    );
    assert!(
        (2..=3).contains(&pids.len()),
        "the proxy and 1 or 2 started machines: {stdout}"
    );
    for pid in pids {
        assert!(!process_alive(pid), "local Fly process {pid} survived");
    }
    let summary = copy.path().join("backend/docs/DEPLOYMENT_SUMMARY.md");
    let text = std::fs::read_to_string(&summary).expect("the summary was written");
    assert!(text.contains("## Verdict: GO\n"), "{text}");
    assert!(text.contains("local"), "{text}");
    let dated = std::fs::read_dir(copy.path().join("backend/docs/reports"))
        .unwrap()
        .count();
    assert_eq!(dated, 1, "one dated copy of the report");
    let pid = service_pid(&stdout);
    assert!(
        !process_alive(pid),
        "the service (pid {pid}) is still running"
    );
}

#[test]
fn interrupting_rehearse_stops_the_service() {
    let copy = repository_copy();
    let mut task = rehearse(copy.path(), &["--keep-running"])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut stdout = BufReader::new(task.stdout.take().unwrap());
    let mut seen = String::new();
    let mut line = String::new();
    while stdout.read_line(&mut line).unwrap() > 0 {
        seen.push_str(&line);
        if line.contains("service left running") {
            break;
        }
        line.clear();
    }
    assert!(seen.contains("service left running"), "{seen}");
    let pid = service_pid(&seen);
    assert!(process_alive(pid), "the service runs until Ctrl-C");
    send_signal(task.id(), "INT");
    let status = task.wait().unwrap();
    assert_eq!(status.code(), Some(130));
    assert!(
        !process_alive(pid),
        "the service (pid {pid}) survived Ctrl-C"
    );
}

/// The image `cargo xtask image` builds, which `rehearse --image` runs machines from.
const IMAGE: &str = "sist-cabanas:local";

/// Whether Podman and the service image are here; panics under CI (whose `.ci/run` builds the
/// image before the tests) when they are not.
fn image_ready(test: &str) -> bool {
    let ready = Command::new("podman")
        .args(["image", "exists", IMAGE])
        .status()
        .is_ok_and(|s| s.success());
    if !ready {
        let why = format!("needs podman and the image {IMAGE}: run `cargo xtask image`");
        assert!(std::env::var_os("CI").is_none(), "{test} {why}");
        eprintln!("\n!!! SKIPPED {test}: {why} !!!\n");
    }
    ready
}

/// The local Fly's containers (running or not).
fn localfly_containers() -> Vec<String> {
    let output = Command::new("podman")
        .args(["ps", "--all", "--format", "{{.Names}}", "--filter"])
        .arg(format!("label={}", xtask::localfly::container::LABEL))
        .output()
        .unwrap();
    String::from_utf8_lossy(&output.stdout)
        .split_whitespace()
        .map(str::to_string)
        .collect()
}

#[test]
fn rehearse_with_the_image_runs_its_machines_as_containers_and_leaves_none() {
    if !image_ready("rehearse_with_the_image_runs_its_machines_as_containers_and_leaves_none") {
        return;
    }
    let copy = repository_copy();
    let stdout = rehearse_to_go(copy.path(), &["--image", IMAGE]);
    let containers =
        format!("machines and the release command run as podman containers of {IMAGE}");
    for phase in [
        containers.as_str(),
        "==> fly deploy: PASS (HEAD ",
        "proven on 2 machines: yes",
        "==> fly overlap: PASS",
        "==> fly rollback: PASS",
        "==> fly containers: none left",
    ] {
        assert!(stdout.contains(phase), "missing {phase}:\n{stdout}");
    }
    let left: Vec<String> = localfly_containers()
        .into_iter()
        .filter(|name| name.starts_with("localfly-cabanas-rehearsal-"))
        .collect();
    assert_eq!(left, Vec::<String>::new(), "podman ps -a");
}
