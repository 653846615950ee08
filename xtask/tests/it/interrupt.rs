//! An interrupt during `cargo xtask test` stops the tests and the PostgreSQL cluster and deletes the
//! cluster's files: nothing is left behind.

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::time::Duration;

use crate::support::{poll_until, port_of};
use xtask::interrupt::{process_alive, send_signal};
use xtask::pgcluster::PgBinaries;

#[test]
fn interrupting_the_test_task_leaves_nothing_running() {
    if PgBinaries::find().is_none() {
        crate::support::skip_or_fail_in_ci(
            "interrupting_the_test_task_leaves_nothing_running",
            "no PostgreSQL server binaries (apt-get install postgresql)",
        );
        return;
    }
    let scratch = tempfile::tempdir().unwrap();
    // A stand-in for cargo that starts a "test binary" of its own and waits, so the interrupt
    // lands mid-run; like cargo, it does not pass signals on to that child.
    let fake_cargo = scratch.path().join("cargo");
    let pid_file = scratch.path().join("cargo.pid");
    let test_pid_file = scratch.path().join("test.pid");
    std::fs::write(
        &fake_cargo,
        format!(
            "#!/bin/sh\nsleep 120 &\necho $! > {}\necho $$ > {}\nwait\n",
            test_pid_file.display(),
            pid_file.display()
        ),
    )
    .unwrap();
    std::fs::set_permissions(
        &fake_cargo,
        std::os::unix::fs::PermissionsExt::from_mode(0o755),
    )
    .unwrap();

    let mut task = Command::new(env!("CARGO_BIN_EXE_xtask"))
        .arg("test")
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .env("CARGO", &fake_cargo)
        .env_remove("CI")
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut stderr = BufReader::new(task.stderr.take().unwrap());
    let mut url = None;
    let mut line = String::new();
    while stderr.read_line(&mut line).unwrap() > 0 {
        if let Some(rest) = line.trim().strip_prefix("PostgreSQL is up at ") {
            url = Some(rest.to_string());
            break;
        }
        line.clear();
    }
    let url = url.expect("the cluster started");
    // The shell creates the file before `echo` writes to it: wait for a whole pid, not for
    // the file (a loaded machine shows the empty file in between).
    let cargo_pid: u32 = poll_until(
        "the fake cargo never wrote its pid",
        Duration::from_secs(30),
        Duration::from_millis(50),
        || {
            let read = std::fs::read_to_string(&pid_file).unwrap_or_default();
            read.trim().parse().ok()
        },
    );
    let port = port_of(&url);
    let data_dir = postmaster_data_dir(port).expect("a postmaster serves the cluster's port");

    let test_pid: u32 = std::fs::read_to_string(&test_pid_file)
        .unwrap()
        .trim()
        .parse()
        .unwrap();

    // TERM to the task alone, as a CI cancel or `timeout` sends it (a terminal's Ctrl-C would
    // reach every process of the foreground group anyway).
    send_signal(task.id(), "TERM");
    let status = task.wait().unwrap();
    assert_eq!(status.code(), Some(130), "exit status after the interrupt");
    assert!(!process_alive(cargo_pid), "cargo survived the interrupt");
    assert!(
        !process_alive(test_pid),
        "the test binary survived the interrupt"
    );
    assert!(
        postmaster_data_dir(port).is_none(),
        "PostgreSQL survived the interrupt"
    );
    assert!(!data_dir.exists(), "{} was left behind", data_dir.display());
}

/// The data directory of the postmaster listening on `port`, read from `/proc`.
fn postmaster_data_dir(port: u16) -> Option<std::path::PathBuf> {
    let needle = format!("-p {port} ");
    for entry in std::fs::read_dir("/proc").ok()?.flatten() {
        let Ok(pid) = entry.file_name().to_string_lossy().parse::<u32>() else {
            continue;
        };
        let Ok(raw) = std::fs::read(entry.path().join("cmdline")) else {
            continue;
        };
        let cmdline = String::from_utf8_lossy(&raw).replace('\0', " ");
        if cmdline.contains("postgres -D") && cmdline.contains(&needle) && process_alive(pid) {
            let dir = cmdline.split_whitespace().nth(2)?;
            return Some(std::path::PathBuf::from(dir).parent()?.to_path_buf());
        }
    }
    None
}
