//! `cargo xtask logs` against the fake flyctl: the argv flyctl really takes, every value of
//! the env file masked in what is printed (and in a failure's stderr), `--since` and
//! `--lines` applied, a failing flyctl as exit 1.

use std::path::Path;

use crate::support::one_environment_repo;
use xtask::flyctl::Flyctl;
use xtask::logs::{Window, print_logs};
use xtask::repo::Repo;
use xtask::verdict::Verdict;

const DB_PASSWORD: &str = "pw-Zq81nVx3";
const JWT: &str = "jwt-secret-0123456789abcdefghijklmnopqrstu";

fn fixture(dir: &Path) -> Repo {
    let env_file = format!(
        "DATABASE_URL=postgres://app:{DB_PASSWORD}@db.internal:5432/cabanas\n\
         JWT_SECRET={JWT}\nRUST_LOG=info\n"
    );
    one_environment_repo(dir, "staging", &env_file)
}

fn fake(dir: &Path, stdout: &str, stderr: &str, exit: i32) -> Flyctl {
    let responses = dir.join("responses");
    std::fs::create_dir_all(&responses).unwrap();
    let answer = serde_json::json!({"stdout": stdout, "stderr": stderr, "exit": exit});
    std::fs::write(responses.join("logs.json"), answer.to_string()).unwrap();
    Flyctl::at(env!("CARGO_BIN_EXE_fake-flyctl"), false).with_env("FAKE_FLYCTL_DIR", dir)
}

fn calls(dir: &Path) -> Vec<serde_json::Value> {
    std::fs::read_to_string(dir.join("calls.jsonl"))
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

#[test]
fn prints_the_window_of_lines_with_the_env_files_values_masked() {
    let repo_dir = tempfile::tempdir().unwrap();
    let fly_dir = tempfile::tempdir().unwrap();
    let repo = fixture(repo_dir.path());
    let logs = format!(
        "2026-12-06T10:00:00Z app[m1] scl [info] too old\n\
         2026-12-06T10:20:00Z app[m1] scl [info] connecting to postgres://app:{DB_PASSWORD}@db.internal:5432/cabanas\n\
         2026-12-06T10:21:00Z app[m1] scl [info] {{\"level\":\"INFO\",\"token\":\"{JWT}\"}}\n\
         2026-12-06T10:21:30Z app[m2] scl [info] call with Authorization: Bearer abc.def.ghi refused\n\
         2026-12-06T10:22:00Z app[m1] scl [info] info level stays readable\n"
    );
    let flyctl = fake(fly_dir.path(), &logs, "", 0);
    let window = Window {
        lines: 3,
        since: Some("2026-12-06T10:15:00Z".parse().unwrap()),
    };
    let (mut out, mut notes) = (Vec::new(), Vec::new());
    let verdict = print_logs(&repo, flyctl, "staging", window, &mut out, &mut notes).unwrap();
    assert_eq!(verdict, Verdict::Pass);
    let out = String::from_utf8(out).unwrap();
    assert!(!out.contains(DB_PASSWORD) && !out.contains(JWT), "{out}");
    assert!(
        !out.contains("too old") && !out.contains("connecting"),
        "--lines 3: {out}"
    );
    assert!(out.contains("\"token\":\"****\""), "{out}");
    assert!(out.contains("info level stays readable"), "{out}");
    let argv = &calls(fly_dir.path())[0]["argv"];
    assert_eq!(
        argv,
        &serde_json::json!(["logs", "--app", "cabanas-test", "--no-tail"])
    );

    // Without --lines narrowing, the line that names the database URL is printed, masked.
    let flyctl = fake(fly_dir.path(), &logs, "", 0);
    let window = Window {
        lines: 500,
        since: Some("2026-12-06T10:15:00Z".parse().unwrap()),
    };
    let mut out = Vec::new();
    print_logs(&repo, flyctl, "staging", window, &mut out, &mut Vec::new()).unwrap();
    let out = String::from_utf8(out).unwrap();
    assert!(out.contains("connecting to ****"), "{out}");
    assert!(
        out.contains("Bearer ****") && !out.contains("abc.def"),
        "{out}"
    );
    assert!(!out.contains("too old"), "--since: {out}");
}

#[test]
fn a_failing_flyctl_is_a_failed_check_with_its_stderr_masked() {
    let repo_dir = tempfile::tempdir().unwrap();
    let fly_dir = tempfile::tempdir().unwrap();
    let repo = fixture(repo_dir.path());
    let flyctl = fake(
        fly_dir.path(),
        "",
        &format!("Error: app not found while reading {JWT}\n"),
        1,
    );
    let window = Window {
        lines: 500,
        since: None,
    };
    let (mut out, mut notes) = (Vec::new(), Vec::new());
    let verdict = print_logs(&repo, flyctl, "staging", window, &mut out, &mut notes).unwrap();
    assert_eq!(verdict, Verdict::Fail);
    let notes = String::from_utf8(notes).unwrap();
    assert!(
        notes.contains("app not found") && !notes.contains(JWT),
        "{notes}"
    );
    assert!(out.is_empty());
}

#[test]
fn an_unknown_environment_cannot_run() {
    let repo_dir = tempfile::tempdir().unwrap();
    let fly_dir = tempfile::tempdir().unwrap();
    let repo = fixture(repo_dir.path());
    let flyctl = fake(fly_dir.path(), "", "", 0);
    let window = Window {
        lines: 500,
        since: None,
    };
    let error = print_logs(
        &repo,
        flyctl,
        "prod",
        window,
        &mut Vec::new(),
        &mut Vec::new(),
    )
    .unwrap_err();
    assert!(format!("{error:#}").contains("prod"), "{error:#}");
    assert!(!fly_dir.path().join("calls.jsonl").exists());
}
