//! Files that are not what they claim: a FIFO where a record or env file should be, an env
//! file symlinked to `/dev/zero`, records far larger than any task writes.

use std::path::Path;
use std::time::Duration;

use xtask::repo::Repo;

/// Runs `work` on a thread; `None` if it is still running after `guard` (it hangs).
fn finishes<T: Send + 'static>(
    guard: Duration,
    work: impl FnOnce() -> T + Send + 'static,
) -> Option<T> {
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let _ = tx.send(work());
    });
    rx.recv_timeout(guard).ok()
}

fn mkfifo(path: &Path) {
    let status = std::process::Command::new("mkfifo")
        .arg(path)
        .status()
        .expect("mkfifo runs");
    assert!(status.success());
}

/// Issue #17 item 11: a FIFO among the records is refused with its name, not waited on.
#[test]
fn a_fifo_among_the_records_is_refused_not_waited_on() {
    let dir = tempfile::tempdir().unwrap();
    let repo = Repo::at(dir.path());
    std::fs::create_dir_all(repo.runs_dir()).unwrap();
    mkfifo(&repo.runs_dir().join("smoke-fifo.json"));
    let result = finishes(Duration::from_secs(20), move || {
        xtask::record::load_all(&repo).map(|r| r.len())
    })
    .expect("reading the records hangs on a FIFO");
    let err = result.expect_err("a FIFO is not a record");
    let message = format!("{err:#}");
    assert!(message.contains("smoke-fifo.json"), "{message}");
    assert!(message.contains("not a regular file"), "{message}");
}

/// Issue #17 item 11: an env file that is a FIFO or a symlink to `/dev/zero` is refused.
#[test]
fn env_files_that_are_not_regular_files_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let fifo = dir.path().join("fifo.env");
    mkfifo(&fifo);
    let zero = dir.path().join("zero.env");
    std::os::unix::fs::symlink("/dev/zero", &zero).unwrap();
    for path in [fifo, zero] {
        let shown = path.display().to_string();
        let result = finishes(Duration::from_secs(20), move || {
            xtask::overlap::admin::token_from_env_file(&path).map(|_| ())
        })
        .unwrap_or_else(|| panic!("reading {shown} hangs"));
        let message = format!("{:#}", result.expect_err("not a regular file"));
        assert!(message.contains("not a regular file"), "{shown}: {message}");
    }
}

/// Issue #17 item 11: a regular file beyond the cap is refused by size, not read whole.
#[test]
fn oversized_records_are_refused_by_size() {
    let dir = tempfile::tempdir().unwrap();
    let repo = Repo::at(dir.path());
    std::fs::create_dir_all(repo.runs_dir()).unwrap();
    let big = repo.runs_dir().join("smoke-big.json");
    let file = std::fs::File::create(&big).unwrap();
    file.set_len(xtask::files::RECORD_LIMIT + 1).unwrap();
    let err = xtask::record::load_all(&repo).expect_err("too large");
    let message = format!("{err:#}");
    assert!(message.contains("smoke-big.json"), "{message}");
    assert!(message.contains("larger than"), "{message}");
}
