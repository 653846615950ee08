//! The OpenAPI document as tools nobody here wrote read it: `openapi-spec-validator` must
//! accept the document the real app serves, `openapi-python-client` must generate a client
//! from it without a warning (a warning means an operation was left out), and that client
//! must book through the app (`openapi_client/book_with_generated_client.py`).
//!
//! The tools live in a Python virtual environment outside the repository, named by
//! `OPENAPI_TOOLS_VENV` (default `~/.cache/cabanas/openapi-tools`; `.ci/run` installs it).
//! Without it the test says so loudly and skips; under `CI` it fails.

use crate::common;

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::{Backend, TestApp, monday, plus};
use reqwest::StatusCode;

/// The variable naming the virtual environment.
const VENV_ENV: &str = "OPENAPI_TOOLS_VENV";

/// The longest any one tool may take (each takes about a second here).
const TOOL_TIMEOUT: Duration = Duration::from_secs(120);

const INSTALL: &str = "python3 -m venv ~/.cache/cabanas/openapi-tools && \
     ~/.cache/cabanas/openapi-tools/bin/pip install openapi-spec-validator==0.9.0 \
     openapi-python-client==0.29.1";

/// The virtual environment's `bin/`, or `None` after saying why (a panic under `CI`).
fn tools_bin() -> Option<PathBuf> {
    let venv = match std::env::var_os(VENV_ENV).filter(|v| !v.is_empty()) {
        Some(venv) => PathBuf::from(venv),
        None => PathBuf::from(std::env::var_os("HOME").unwrap_or_default())
            .join(".cache/cabanas/openapi-tools"),
    };
    let bin = venv.join("bin");
    let missing: Vec<_> = ["python", "openapi-spec-validator", "openapi-python-client"]
        .into_iter()
        .filter(|tool| !bin.join(tool).is_file())
        .collect();
    if missing.is_empty() {
        return Some(bin);
    }
    let why = format!(
        "{missing:?} not found in {} ({VENV_ENV} names the virtual environment); install with: \
         {INSTALL}",
        bin.display()
    );
    common::skip_or_fail_in_ci("openapi_clients", &why);
    None
}

/// Runs `command` to completion within [`TOOL_TIMEOUT`], its output in `log`; panics with
/// that output when it fails or overruns.
fn run(what: &str, mut command: Command, log: &Path) -> String {
    let file = std::fs::File::create(log).unwrap();
    let mut child = command
        .stdin(Stdio::null())
        .stdout(file.try_clone().unwrap())
        .stderr(file)
        .spawn()
        .unwrap_or_else(|e| panic!("cannot start {what}: {e}"));
    let deadline = Instant::now() + TOOL_TIMEOUT;
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break Some(status);
        }
        if Instant::now() >= deadline {
            let _ = child.kill();
            let _ = child.wait();
            break None;
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    let output = std::fs::read_to_string(log).unwrap_or_default();
    match status {
        Some(status) if status.success() => output,
        Some(status) => panic!("{what} failed ({status}):\n{output}"),
        None => panic!("{what} did not finish within {TOOL_TIMEOUT:?}:\n{output}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn outside_tools_accept_the_document_and_a_generated_client_books() {
    let Some(bin) = tools_bin() else {
        return;
    };
    let app = TestApp::spawn(Backend::Sqlite, "openapi_clients")
        .await
        .unwrap();
    let (status, document) = app.get("/api/v1/openapi.json").await;
    assert_eq!(status, StatusCode::OK, "{document}");
    let dir = tempfile::tempdir().unwrap();
    let document_path = dir.path().join("openapi.json");
    std::fs::write(&document_path, document.to_string()).unwrap();
    let check_in = monday(20);
    let check_out = plus(check_in, 2);
    let base = app.base.clone();

    // The tools block, so they run off the runtime that serves the app.
    let summary = tokio::task::spawn_blocking(move || {
        let dir = dir.path();
        let mut validate = Command::new(bin.join("openapi-spec-validator"));
        validate.arg(&document_path);
        let validated = run(
            "openapi-spec-validator",
            validate,
            &dir.join("validate.log"),
        );
        assert!(validated.contains("OK"), "{validated}");

        let package = "cabanas_client";
        let mut generate = Command::new(bin.join("openapi-python-client"));
        generate
            .args(["generate", "--meta", "none", "--fail-on-warning", "--path"])
            .arg(&document_path)
            .arg("--output-path")
            .arg(dir.join(package))
            // Its formatting hook (ruff) is installed beside it.
            .env("PATH", prepend_path(&bin));
        let generated = run("openapi-python-client", generate, &dir.join("generate.log"));
        assert!(!generated.contains("Warning"), "{generated}");

        let script = Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("tests/it/openapi_client/book_with_generated_client.py");
        let mut book = Command::new(bin.join("python"));
        book.arg(script)
            .arg(&base)
            .arg(dir)
            .arg(package)
            .arg(check_in.to_string())
            .arg(check_out.to_string());
        run("the generated client", book, &dir.join("book.log"))
    })
    .await
    .unwrap();
    assert!(summary.contains("409 date_overlap"), "{summary}");
    assert_eq!(app.bookings_on(check_in, check_out).await, 1);
}

fn prepend_path(dir: &Path) -> std::ffi::OsString {
    let rest = std::env::var_os("PATH").unwrap_or_default();
    let paths = std::iter::once(dir.to_path_buf()).chain(std::env::split_paths(&rest));
    std::env::join_paths(paths).unwrap()
}
