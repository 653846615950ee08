//! CPU time of the servers a client runs against, read from `/proc` before and after the run:
//! the service (or the bare server), and the whole PostgreSQL cluster. On a machine with few
//! cores the client, the service and the database share the CPU, so these say where a
//! booking's CPU goes and why one path serves fewer per second than another.

use std::path::Path;

/// User plus system CPU seconds of one process, all its threads: `None` when it is gone or
/// `/proc` cannot be read.
pub fn process_seconds(pid: u32) -> Option<f64> {
    let stat = Stat::read(Path::new("/proc").join(pid.to_string()).join("stat"))?;
    Some(ticks_to_seconds(stat.utime + stat.stime))
}

/// CPU seconds of `root` and every process under it, including children that already exited
/// (the kernel adds a reaped child's time to its parent's `cutime`/`cstime`). PostgreSQL starts
/// a process per connection under its postmaster, so a backend whose client disconnected
/// before the second reading is still counted.
pub fn tree_seconds(root: u32) -> Option<f64> {
    let root_stat = Stat::read(Path::new("/proc").join(root.to_string()).join("stat"))?;
    let all = processes()?;
    let ticks = under(root, &all)
        .iter()
        .map(|(_, s)| s.utime + s.stime + s.cutime + s.cstime)
        .sum::<u64>();
    Some(ticks_to_seconds(
        ticks + root_stat.utime + root_stat.stime + root_stat.cutime + root_stat.cstime,
    ))
}

/// Every process under `root` (children, their children, ...), `root` left out.
pub fn descendants(root: u32) -> Vec<u32> {
    let all = processes().unwrap_or_default();
    under(root, &all).iter().map(|(pid, _)| *pid).collect()
}

/// Every process `/proc` lists, with its stat line.
fn processes() -> Option<Vec<(u32, Stat)>> {
    Some(
        std::fs::read_dir("/proc")
            .ok()?
            .filter_map(|entry| {
                let pid: u32 = entry.ok()?.file_name().to_str()?.parse().ok()?;
                Some((
                    pid,
                    Stat::read(Path::new("/proc").join(pid.to_string()).join("stat"))?,
                ))
            })
            .collect(),
    )
}

/// The stats of `root`'s descendants among `all`, generation by generation (a postmaster's
/// children have none of their own, but nothing here relies on that).
fn under(root: u32, all: &[(u32, Stat)]) -> Vec<(u32, Stat)> {
    let mut parents = vec![root];
    let mut found = Vec::new();
    while !parents.is_empty() {
        let children: Vec<(u32, Stat)> = all
            .iter()
            .filter(|(_, s)| parents.contains(&s.ppid))
            .copied()
            .collect();
        parents = children.iter().map(|(pid, _)| *pid).collect();
        found.extend(children);
    }
    found
}

fn ticks_to_seconds(ticks: u64) -> f64 {
    // SAFETY: sysconf has no preconditions.
    let per_second = unsafe { libc::sysconf(libc::_SC_CLK_TCK) };
    let per_second = if per_second > 0 { per_second } else { 100 };
    ticks as f64 / per_second as f64
}

/// The fields of `/proc/<pid>/stat` used here, in clock ticks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Stat {
    ppid: u32,
    utime: u64,
    stime: u64,
    cutime: u64,
    cstime: u64,
}

impl Stat {
    fn read(path: impl AsRef<Path>) -> Option<Stat> {
        Stat::parse(&std::fs::read_to_string(path).ok()?)
    }

    /// `pid (comm) state ppid ...`: the command name may hold spaces and parentheses, so the
    /// fields are counted from the last `)`.
    fn parse(line: &str) -> Option<Stat> {
        let rest = &line[line.rfind(')')? + 1..];
        let fields: Vec<&str> = rest.split_whitespace().collect();
        // After the name: state(0) ppid(1) ... utime(11) stime(12) cutime(13) cstime(14).
        let number = |i: usize| fields.get(i)?.parse::<i64>().ok();
        let ticks = |i: usize| number(i).map(|n| n.max(0) as u64);
        Some(Stat {
            ppid: u32::try_from(number(1)?).ok()?,
            utime: ticks(11)?,
            stime: ticks(12)?,
            cutime: ticks(13)?,
            cstime: ticks(14)?,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::process::Command;

    #[test]
    fn stat_fields_count_from_the_end_of_the_command_name() {
        let line = "4242 (tokio (rt) worker) S 17 4242 4242 0 -1 4194560 500 0 0 0 \
                    731 129 55 12 20 0 9 0 1000 2000000 600 18446744073709551615";
        assert_eq!(
            Stat::parse(line),
            Some(Stat {
                ppid: 17,
                utime: 731,
                stime: 129,
                cutime: 55,
                cstime: 12,
            })
        );
        assert_eq!(Stat::parse("4242 (cut short) S 17 4242"), None);
        assert_eq!(Stat::parse("no parenthesis at all"), None);
    }

    #[test]
    fn a_tree_counts_children_that_already_exited() {
        // A shell that runs a busy child to completion and then waits on stdin: the child's
        // CPU is only in the shell's cutime by the time it is read.
        let mut shell = Command::new("sh")
            .args([
                "-c",
                "sh -c 'i=0; while [ $i -lt 300000 ]; do i=$((i+1)); done'; read _",
            ])
            .stdin(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        let pid = shell.id();
        let has_children = || {
            std::fs::read_dir("/proc").unwrap().any(|entry| {
                let path = entry.unwrap().path().join("stat");
                Stat::read(path).is_some_and(|s| s.ppid == pid)
            })
        };
        // Wait for the busy child to start, then to be reaped.
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
        while !has_children() && std::time::Instant::now() < deadline {
            std::thread::sleep(std::time::Duration::from_millis(5));
        }
        while has_children() && std::time::Instant::now() < deadline {
            std::thread::sleep(std::time::Duration::from_millis(20));
        }
        let own = process_seconds(pid).unwrap();
        let tree = tree_seconds(pid).unwrap();
        drop(shell.stdin.take());
        shell.wait().unwrap();
        assert!(tree >= own + 0.05, "tree {tree} s, the shell alone {own} s");
        assert_eq!(process_seconds(u32::MAX), None);
        assert_eq!(tree_seconds(u32::MAX), None);
    }
}
