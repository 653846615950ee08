//! Set-up every test file shares: the workspace, the service binary, and the one rule for a
//! test whose tool is missing (skip loudly on a developer's machine, fail under CI).

use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use xtask::repo::Repo;

/// The workspace these tests belong to.
pub fn workspace() -> Repo {
    Repo::discover_from(Path::new(env!("CARGO_MANIFEST_DIR"))).expect("the workspace")
}

/// The service binary, built once per test run. `cargo build` is a no-op when it is fresh,
/// so a stale binary from an earlier checkout is never used.
pub fn service_binary() -> PathBuf {
    static BINARY: OnceLock<PathBuf> = OnceLock::new();
    BINARY
        .get_or_init(|| {
            xtask::local_service::build_service(&workspace()).expect("building the service")
        })
        .clone()
}

/// Whether the tests run under CI, with the same reading of `CI` as `cargo xtask test`.
pub fn in_ci() -> bool {
    std::env::var_os("CI").is_some_and(|v| !v.is_empty() && v != "false")
}

/// A test that cannot run here: under CI that is a failure (CI installs every tool), on a
/// developer's machine a loud skip naming what to install.
pub fn skip_or_fail_in_ci(test: &str, why: &str) {
    assert!(!in_ci(), "{test}: {why} (CI must provide it)");
    eprintln!("\n!!! SKIPPED {test}: {why} !!!\n");
}

/// `TEST_DATABASE_URL` when set (by `cargo xtask test`), or a skip (a failure under CI).
pub fn postgres_server(test: &str) -> Option<String> {
    let server = std::env::var("TEST_DATABASE_URL")
        .ok()
        .filter(|u| !u.is_empty());
    if server.is_none() {
        skip_or_fail_in_ci(
            test,
            "TEST_DATABASE_URL is unset: run through `cargo xtask test`, which starts PostgreSQL",
        );
    }
    server
}

/// Runs git in `dir` as a throwaway identity on branch `main`; its stdout. Panics with git's
/// stderr when it fails.
pub fn git(dir: &Path, args: &[&str]) -> String {
    let output = std::process::Command::new("git")
        .args(["-c", "user.name=t", "-c", "user.email=t@example.com"])
        .args(["-c", "init.defaultBranch=main"])
        .args(args)
        .current_dir(dir)
        .output()
        .unwrap();
    assert!(
        output.status.success(),
        "git {args:?} in {}: {}",
        dir.display(),
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8_lossy(&output.stdout).into_owned()
}

/// What a task run in-process wrote to its output, beside its outcome.
pub fn capture<T>(
    run: impl FnOnce(&mut dyn std::io::Write) -> anyhow::Result<T>,
) -> (anyhow::Result<T>, String) {
    let mut out = Vec::new();
    let outcome = run(&mut out);
    (outcome, String::from_utf8(out).unwrap())
}

/// A finished process's stdout then stderr, as one text to search.
pub fn stdout_and_stderr(output: &std::process::Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    )
}

/// The port of a `scheme://host:port/path` URL.
pub fn port_of(url: &str) -> u16 {
    let after_colon = url.rsplit(':').next().unwrap();
    after_colon.split('/').next().unwrap().parse().unwrap()
}

/// The one record a task run saved under `root`'s `target/xtask/runs`, as JSON.
pub fn only_record(root: &Path) -> serde_json::Value {
    let records: Vec<PathBuf> = std::fs::read_dir(root.join("target/xtask/runs"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    assert_eq!(records.len(), 1, "{records:?}");
    serde_json::from_str(&std::fs::read_to_string(&records[0]).unwrap()).unwrap()
}

/// Asks `ready` every `every` until it answers; panics with `never` after `within` (the
/// bound only keeps a broken run from hanging the suite).
pub fn poll_until<T>(
    never: &str,
    within: std::time::Duration,
    every: std::time::Duration,
    mut ready: impl FnMut() -> Option<T>,
) -> T {
    let deadline = std::time::Instant::now() + within;
    loop {
        if let Some(answer) = ready() {
            return answer;
        }
        assert!(std::time::Instant::now() < deadline, "{never}");
        std::thread::sleep(every);
    }
}

/// This test binary again, running only `test` (by its module path) with `var=value` in its
/// environment and its output discarded: a child to interrupt.
pub fn rerun_test(
    test: &str,
    var: &str,
    value: impl AsRef<std::ffi::OsStr>,
) -> std::process::Child {
    std::process::Command::new(std::env::current_exe().unwrap())
        .args([test, "--exact", "--nocapture"])
        .env(var, value)
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap()
}

/// A repository whose one environment `env` (app `cabanas-test`) has `env_file` as its env
/// file.
pub fn one_environment_repo(dir: &Path, env: &str, env_file: &str) -> Repo {
    std::fs::create_dir_all(dir.join("ops")).unwrap();
    std::fs::create_dir_all(dir.join("env")).unwrap();
    std::fs::write(
        dir.join("ops/deploy.toml"),
        format!(
            "[environments.{env}]\napp = \"cabanas-test\"\nurl = \"https://cabanas-test.fly.dev\"\n\
             env_file = \"env/.env.fly.{env}\"\ntemplate = \"env/.env.fly.{env}.template\"\n"
        ),
    )
    .unwrap();
    std::fs::write(dir.join(format!("env/.env.fly.{env}")), env_file).unwrap();
    Repo::at(dir)
}

/// The names of a restore drill's failed checks.
pub fn failed_checks(outcome: &xtask::restore_drill::DrillOutcome) -> Vec<&str> {
    outcome
        .checks
        .iter()
        .filter(|c| !c.passed)
        .map(|c| c.name)
        .collect()
}

/// The JSON body a request answers.
pub async fn json_of(request: reqwest::RequestBuilder) -> serde_json::Value {
    request.send().await.unwrap().json().await.unwrap()
}
