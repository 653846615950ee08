//! Cleanup on Ctrl-C and SIGTERM: a task registers what it started (a PostgreSQL cluster, a
//! service process) and the handler tears it down before the process exits, so nothing is left
//! running whichever way a task ends.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Mutex, Once};

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
    CLEANUPS.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

fn run_all_and_exit() {
    eprintln!("\ninterrupted: stopping what this task started");
    let cleanups = std::mem::take(&mut *lock());
    // Newest first: a service started on a cluster stops before the cluster.
    for (_, cleanup) in cleanups.into_iter().rev() {
        cleanup();
    }
    std::process::exit(EXIT_INTERRUPTED);
}
