//! Cleanup on Ctrl-C and SIGTERM: a task registers what it started (a PostgreSQL cluster, a
//! service process) and the handler tears it down before the process exits, so nothing is left
//! running whichever way a task ends.

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Mutex, Once};
use std::time::{Duration, Instant};

use xshell::{Shell, cmd};

type Cleanup = Box<dyn FnOnce() + Send>;

static CLEANUPS: Mutex<BTreeMap<u64, Cleanup>> = Mutex::new(BTreeMap::new());
static NEXT_ID: AtomicU64 = AtomicU64::new(0);
static INSTALL: Once = Once::new();

/// Exit code used after an interrupt (128 + SIGINT), as shells do.
pub const EXIT_INTERRUPTED: i32 = 130;

/// A registered cleanup; dropping it deregisters without running it (the owner cleaned up).
#[derive(Debug)]
pub struct CleanupGuard {
    id: u64,
}

/// Registers `cleanup` to run if the process is interrupted before the guard is dropped.
pub fn on_interrupt(cleanup: impl FnOnce() + Send + 'static) -> CleanupGuard {
    INSTALL.call_once(|| {
        // A second handler cannot be installed; if one exists the caller's cleanup still runs
        // on the normal path, so the error is only worth a note.
        if let Err(error) = ctrlc::set_handler(run_all_and_exit) {
            eprintln!("note: cannot install the Ctrl-C handler ({error}); cleanup runs on normal exit only");
        }
    });
    let id = NEXT_ID.fetch_add(1, Ordering::Relaxed);
    lock().insert(id, Box::new(cleanup));
    CleanupGuard { id }
}

impl Drop for CleanupGuard {
    fn drop(&mut self) {
        lock().remove(&self.id);
    }
}

fn lock() -> std::sync::MutexGuard<'static, BTreeMap<u64, Cleanup>> {
    CLEANUPS
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

fn run_all_and_exit() {
    eprintln!("\ninterrupted: stopping what this task started");
    // The lock is held until exit: a task thread that finishes meanwhile blocks when it drops
    // its guard, so the process ends here, with the interrupt's exit code.
    let mut cleanups = lock();
    // Newest first: a service started on a cluster stops before the cluster.
    while let Some((_, cleanup)) = cleanups.pop_last() {
        cleanup();
    }
    std::process::exit(EXIT_INTERRUPTED);
}

/// Stops a whole process group (a child started with its own group, and everything it
/// started): TERM to the group, a short grace period for its leader, then KILL.
pub fn terminate_group(leader: u32) {
    let group = format!("-{leader}");
    let signal_group = |signal: &str| {
        if let Ok(sh) = Shell::new() {
            let _ = cmd!(sh, "kill -{signal} -- {group}")
                .quiet()
                .ignore_stderr()
                .run();
        }
    };
    signal_group("TERM");
    let deadline = Instant::now() + Duration::from_secs(5);
    while Instant::now() < deadline && process_alive(leader) {
        std::thread::sleep(Duration::from_millis(50));
    }
    signal_group("KILL");
}

/// Sends `signal` (a name such as `TERM`) to a process, ignoring a process already gone.
pub fn send_signal(pid: u32, signal: &str) {
    if let Ok(sh) = Shell::new() {
        let pid = pid.to_string();
        let _ = cmd!(sh, "kill -{signal} {pid}")
            .quiet()
            .ignore_stderr()
            .run();
    }
}

/// Stops a process from an interrupt handler, which cannot reach its `Child`: TERM, a short
/// grace period, then KILL.
pub fn terminate(pid: u32) {
    send_signal(pid, "TERM");
    let deadline = Instant::now() + Duration::from_secs(5);
    while Instant::now() < deadline && process_alive(pid) {
        std::thread::sleep(Duration::from_millis(50));
    }
    if process_alive(pid) {
        send_signal(pid, "KILL");
    }
}

/// Whether a process with this id exists and has not exited (zombies count as gone).
pub fn process_alive(pid: u32) -> bool {
    let stat = Path::new("/proc").join(pid.to_string()).join("stat");
    match std::fs::read_to_string(stat) {
        // The state follows the command name in parentheses: "pid (comm) S ...".
        Ok(text) => text
            .rsplit_once(") ")
            .is_some_and(|(_, rest)| !rest.starts_with('Z')),
        Err(_) => false,
    }
}
