//! The machine a benchmark ran on, and the peer tools it found.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use xshell::{Shell, cmd};

/// Where the numbers came from: they only mean something next to this.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Machine {
    /// CPU model, from /proc/cpuinfo.
    pub cpu: String,
    /// Logical cores.
    pub cores: usize,
    /// Memory in GiB.
    pub memory_gib: f64,
    /// Kernel release.
    pub kernel: String,
    /// The 1, 5 and 15 minute load averages when the benchmark started.
    pub load_at_start: String,
    /// Each tool's version line, or `not installed`.
    pub tools: BTreeMap<String, String>,
}

impl Machine {
    /// Reads the machine's description (Linux /proc; `unknown` elsewhere).
    pub fn describe(tools: &Tools) -> Machine {
        let read = |path: &str| std::fs::read_to_string(path).unwrap_or_default();
        let cpu = read("/proc/cpuinfo")
            .lines()
            .find_map(|l| l.strip_prefix("model name"))
            .and_then(|l| l.split_once(':'))
            .map(|(_, v)| v.trim().to_string())
            .unwrap_or_else(|| "unknown".into());
        let memory_kib: f64 = read("/proc/meminfo")
            .lines()
            .find_map(|l| l.strip_prefix("MemTotal:"))
            .and_then(|v| v.split_whitespace().next()?.parse().ok())
            .unwrap_or(0.0);
        let load = read("/proc/loadavg");
        Machine {
            cpu,
            cores: std::thread::available_parallelism().map_or(1, |n| n.get()),
            memory_gib: (memory_kib / 1024.0 / 1024.0 * 10.0).round() / 10.0,
            kernel: read("/proc/sys/kernel/osrelease").trim().to_string(),
            load_at_start: load
                .split_whitespace()
                .take(3)
                .collect::<Vec<_>>()
                .join(" "),
            tools: tools.versions(),
        }
    }
}

/// The peer tools: found on `PATH` (oha also in `~/.cargo/bin`), or missing with the fix.
#[derive(Debug, Clone)]
pub struct Tools {
    /// `oha`.
    pub oha: Result<PathBuf, String>,
    /// `wrk`.
    pub wrk: Result<PathBuf, String>,
    /// `pgbench`.
    pub pgbench: Result<PathBuf, String>,
    /// `psql` (to prepare the pre-reserve database).
    pub psql: Result<PathBuf, String>,
}

impl Tools {
    /// Looks for every peer tool. PostgreSQL's client tools are also looked for next to the
    /// server binaries.
    pub fn find(pg_dir: Option<&Path>) -> Tools {
        let cargo_bin = std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".cargo/bin"));
        Tools {
            oha: find("oha", cargo_bin.as_deref())
                .ok_or_else(|| "oha not installed: `cargo install oha --locked`".to_string()),
            wrk: find("wrk", None)
                .ok_or_else(|| "wrk not installed: `apt-get install wrk`".to_string()),
            pgbench: find("pgbench", pg_dir).ok_or_else(|| {
                "pgbench not installed: `apt-get install postgresql-client`".to_string()
            }),
            psql: find("psql", pg_dir).ok_or_else(|| {
                "psql not installed: `apt-get install postgresql-client`".to_string()
            }),
        }
    }

    fn versions(&self) -> BTreeMap<String, String> {
        let mut versions = BTreeMap::new();
        for (name, found, flag) in [
            ("oha", &self.oha, "--version"),
            ("wrk", &self.wrk, "-v"),
            ("pgbench", &self.pgbench, "--version"),
        ] {
            let line = match found {
                Ok(path) => version_line(path, flag),
                Err(_) => "not installed".to_string(),
            };
            versions.insert(name.to_string(), line);
        }
        versions
    }
}

fn find(name: &str, extra: Option<&Path>) -> Option<PathBuf> {
    let path = std::env::var_os("PATH").unwrap_or_default();
    extra
        .map(Path::to_path_buf)
        .into_iter()
        .chain(std::env::split_paths(&path))
        .map(|dir| dir.join(name))
        .find(|candidate| candidate.is_file())
}

/// The first line a tool prints about its version (wrk prints it with a non-zero exit).
fn version_line(tool: &Path, flag: &str) -> String {
    let Ok(sh) = Shell::new() else {
        return "unknown".into();
    };
    match cmd!(sh, "{tool} {flag}").quiet().ignore_status().output() {
        Ok(output) => {
            let text = [output.stdout, output.stderr].concat();
            String::from_utf8_lossy(&text)
                .lines()
                .map(str::trim)
                .find(|l| !l.is_empty())
                .unwrap_or("unknown")
                .to_string()
        }
        Err(_) => "unknown".into(),
    }
}
