//! CPU affinity for the pinned comparison: PostgreSQL on a core of its own, the service and the
//! client on another, as on Fly where the database runs on its own machine.
//!
//! Affinity is per thread on Linux (`sched_setaffinity(2)`), and a new thread or process
//! inherits its creator's. So the running service is pinned thread by thread
//! (`/proc/<pid>/task`), the database by pinning the postmaster and every process under it
//! (the backends of connections opened later fork from the postmaster and inherit its mask),
//! and a client before it runs its first instruction (in the child, between fork and exec).
//! What each process ran under is read back from `/proc/<pid>/status` (`Cpus_allowed_list`),
//! so the report states the affinity the kernel applied, not the one asked for.

use std::path::Path;

/// A set of CPUs by index, as `sched_setaffinity` takes it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Cpus {
    mask: u64,
}

impl Cpus {
    /// One CPU.
    pub fn one(cpu: usize) -> Cpus {
        Cpus {
            mask: 1u64 << cpu.min(63),
        }
    }

    /// The first `n` CPUs (every CPU the benchmark may use).
    pub fn first(n: usize) -> Cpus {
        let n = n.clamp(1, 64);
        Cpus {
            mask: if n == 64 { u64::MAX } else { (1u64 << n) - 1 },
        }
    }

    fn set(self) -> libc::cpu_set_t {
        // SAFETY: cpu_set_t is plain data; all-zero is the empty set.
        let mut set: libc::cpu_set_t = unsafe { std::mem::zeroed() };
        for cpu in 0..64 {
            if self.mask & (1u64 << cpu) != 0 {
                // SAFETY: cpu < 64 < CPU_SETSIZE.
                unsafe { libc::CPU_SET(cpu, &mut set) };
            }
        }
        set
    }
}

/// Pins one thread (or a single-threaded process) to `cpus`. Async-signal-safe: one system
/// call, so it may run in a child between fork and exec.
pub fn pin_thread(tid: libc::pid_t, cpus: Cpus) -> std::io::Result<()> {
    let set = cpus.set();
    // SAFETY: `set` is a valid cpu_set_t of the size passed; tid 0 means the calling thread.
    let rc = unsafe { libc::sched_setaffinity(tid, std::mem::size_of::<libc::cpu_set_t>(), &set) };
    if rc == 0 {
        Ok(())
    } else {
        Err(std::io::Error::last_os_error())
    }
}

/// Pins every thread of process `pid`.
pub fn pin_process(pid: u32, cpus: Cpus) -> std::io::Result<()> {
    let tasks = Path::new("/proc").join(pid.to_string()).join("task");
    let mut pinned = 0;
    for entry in std::fs::read_dir(&tasks)? {
        let Some(tid) = entry?.file_name().to_str().and_then(|t| t.parse().ok()) else {
            continue;
        };
        // A thread that ended since the listing is not an error.
        match pin_thread(tid, cpus) {
            Ok(()) => pinned += 1,
            Err(e) if e.raw_os_error() == Some(libc::ESRCH) => {}
            Err(e) => return Err(e),
        }
    }
    if pinned == 0 {
        return Err(std::io::Error::other(format!(
            "process {pid} has no thread left to pin"
        )));
    }
    Ok(())
}

/// Pins process `root` and every process under it, each with all its threads.
pub fn pin_tree(root: u32, cpus: Cpus) -> std::io::Result<()> {
    pin_process(root, cpus)?;
    for pid in super::cpu::descendants(root) {
        match pin_process(pid, cpus) {
            Ok(()) => {}
            // A backend whose client disconnected meanwhile.
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => return Err(e),
        }
    }
    Ok(())
}

/// The CPUs process `pid` may run on as the kernel reports them (`0`, `0-1`, `1,3`), or
/// `None` when it is gone.
pub fn allowed(pid: u32) -> Option<String> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    parse_allowed(&status)
}

fn parse_allowed(status: &str) -> Option<String> {
    status
        .lines()
        .find_map(|l| l.strip_prefix("Cpus_allowed_list:"))
        .map(|v| v.trim().to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn masks_name_the_cpus_asked_for() {
        assert_eq!(Cpus::one(0).mask, 0b1);
        assert_eq!(Cpus::one(1).mask, 0b10);
        assert_eq!(Cpus::first(2).mask, 0b11);
        assert_eq!(Cpus::first(64).mask, u64::MAX);
    }

    #[test]
    fn the_allowed_list_is_read_from_proc_status() {
        let status = "Name:\tpostgres\nCpus_allowed:\t1\nCpus_allowed_list:\t0\nMems_allowed:\t1\n";
        assert_eq!(parse_allowed(status).as_deref(), Some("0"));
        assert_eq!(parse_allowed("Name:\tx\n"), None);
    }

    #[test]
    fn a_child_process_runs_under_the_pinned_cpu_and_its_parent_is_untouched() {
        let before = allowed(std::process::id()).expect("this process has a status file");
        let mut child = std::process::Command::new("sleep")
            .arg("5")
            .spawn()
            .expect("sleep runs");
        pin_tree(child.id(), Cpus::one(0)).expect("a child of ours can be pinned");
        let seen = allowed(child.id());
        let _ = child.kill();
        let _ = child.wait();
        assert_eq!(seen.as_deref(), Some("0"));
        assert_eq!(allowed(std::process::id()), Some(before));
    }
}
