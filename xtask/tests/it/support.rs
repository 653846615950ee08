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
