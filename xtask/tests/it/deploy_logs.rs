//! After a proven deploy, `deploy` reads the app's logs (`flyctl logs --no-tail`, the fake
//! here) for `--logs`: lines from before the deploy do not count, error lines make it WARN and
//! are shown with the env file's values masked (short values like `info` stay), a panic makes
//! it FAIL (exit 1), and `--logs 0s` reads nothing.

use crate::deploy_support;

use deploy_support::*;
use xtask::verdict::Verdict;

const API_KEY: &str = "k3y-0123456789abcdef";

fn deploy(fixture: &Fixture, logs: &str) -> (Verdict, xtask::deploy::DeployResult, String) {
    let gates = FakeGates::new(Verdict::Pass, &[Verdict::Pass]);
    deploy_staging(fixture, &gates, &["--logs", logs])
}

/// A deployable fixture whose app logged `lines` (each stamped a minute from now: after the
/// deploy started) below an error line from an hour ago.
fn logged(lines: &[&str]) -> (App, Fixture) {
    let (app, fixture) = healthy_deploy(&format!("RUST_LOG=info\nAPI_KEY={API_KEY}\n"));
    let old = (chrono::Utc::now() - chrono::Duration::hours(1)).to_rfc3339();
    let new = (chrono::Utc::now() + chrono::Duration::minutes(1)).to_rfc3339();
    let mut text = format!("{old} app[m1] scl [error] the previous release failed\n");
    for line in lines {
        text.push_str(&format!("{new} app[m1] scl {line}\n"));
    }
    fixture.respond("logs", None, &text, "", 0);
    (app, fixture)
}

#[test]
fn error_lines_after_the_deploy_warn_and_are_shown_masked() {
    let (_app, fixture) = logged(&[
        "[info] {\"level\":\"INFO\",\"msg\":\"listening\"}",
        &format!("[error] upstream refused key {API_KEY} at info level"),
        "[error] calendar sync failed",
    ]);
    let (verdict, result, out) = deploy(&fixture, "1s");
    assert_eq!(verdict, Verdict::Warn, "{out}");
    let logs = result.logs.expect("the logs were read");
    assert_eq!((logs.errors, logs.panics), (2, 0), "{out}");
    assert_eq!(
        logs.shown[0].split_once("scl ").unwrap().1,
        "[error] upstream refused key **** at info level",
        "{out}"
    );
    assert!(
        !out.contains(API_KEY) && !out.contains("previous release"),
        "{out}"
    );
    assert!(
        out.contains("2 error line(s), 0 panic line(s)") && out.contains("calendar sync failed"),
        "{out}"
    );
    assert!(
        fixture
            .argvs()
            .contains(&"logs --app cabanas-test --no-tail".to_string()),
        "{:?}",
        fixture.argvs()
    );
    let record: xtask::record::RunRecord<xtask::deploy::DeployResult> =
        xtask::record::latest(&fixture.repo(), "deploy", "staging")
            .unwrap()
            .unwrap();
    assert_eq!(record.verdict, Verdict::Warn);
    assert_eq!(record.result.logs.unwrap().errors, 2);
}

#[test]
fn a_panic_after_the_deploy_fails_it() {
    let (_app, fixture) =
        logged(&["[error] thread 'tokio-runtime-worker' panicked at backend/src/outbox.rs:42:9"]);
    let (verdict, result, out) = deploy(&fixture, "1s");
    assert_eq!(verdict, Verdict::Fail, "{out}");
    assert_eq!(verdict.exit_code(), 1);
    assert!(
        result.problems[0].starts_with("1 panic line(s) in the logs of cabanas-test"),
        "{:?}",
        result.problems
    );
}

#[test]
fn logs_0s_reads_no_logs() {
    let (_app, fixture) = logged(&["[error] thread 'main' panicked at src/main.rs:1:1"]);
    let (verdict, result, out) = deploy(&fixture, "0s");
    assert_eq!(verdict, Verdict::Pass, "{out}");
    assert!(result.logs.is_none());
    assert!(
        fixture.argvs().iter().all(|a| !a.starts_with("logs")),
        "{:?}",
        fixture.argvs()
    );
}
