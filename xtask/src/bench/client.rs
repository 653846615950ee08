//! Running one load client (smoke, oha, wrk, pgbench) as a child process with its CPU time and
//! peak memory, and reading its figures from what it prints.

use std::ffi::OsString;
use std::fs::File;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use anyhow::{Context, bail};
use serde::{Deserialize, Serialize};

/// What one client run measured. Latencies are `None` where the tool does not report them.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
pub struct ClientRun {
    /// Requests (or transactions) completed.
    pub requests: u64,
    /// Completed per second.
    pub rps: f64,
    /// Median latency in milliseconds.
    pub p50_ms: Option<f64>,
    /// 99th percentile latency in milliseconds.
    pub p99_ms: Option<f64>,
    /// Open model (smoke): the 99th percentile counted from when the request was released
    /// instead of from its intended time.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub p99_from_release_ms: Option<f64>,
    /// Failed requests (transport errors and non-2xx answers).
    pub errors: u64,
    /// Open model (smoke): requests sent late or never, and how many were scheduled.
    pub late: Option<u64>,
    /// Open model (smoke): requests scheduled.
    pub scheduled: Option<u64>,
    /// The client's CPU time, user plus system, in seconds.
    pub cpu_s: f64,
    /// The client's peak resident memory in KiB.
    pub max_rss_kib: u64,
    /// CPU seconds the server it ran against (the service or the bare server) used during
    /// the run; `None` for a client of the database alone.
    #[serde(default)]
    pub server_cpu_s: Option<f64>,
    /// CPU seconds the whole PostgreSQL cluster used during the run (with `--postgres`).
    #[serde(default)]
    pub database_cpu_s: Option<f64>,
    /// The client's exit code (`None` when a signal ended it).
    pub exit: Option<i32>,
    /// Pinned runs: the CPUs each process ran on, as `/proc` reported them during the run.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub affinity: Option<Affinity>,
}

/// The CPUs (`Cpus_allowed_list`, e.g. `0` or `0-1`) each process of a pinned run ran on.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
pub struct Affinity {
    /// The client.
    pub client: Option<String>,
    /// The service.
    pub service: Option<String>,
    /// The PostgreSQL postmaster (its backends inherit it).
    pub database: Option<String>,
}

impl ClientRun {
    /// Client CPU seconds per 100,000 requests; `None` when nothing completed.
    pub fn cpu_per_100k(&self) -> Option<f64> {
        self.per_100k(Some(self.cpu_s))
    }

    /// Server CPU seconds per 100,000 requests.
    pub fn server_cpu_per_100k(&self) -> Option<f64> {
        self.per_100k(self.server_cpu_s)
    }

    /// Database CPU seconds per 100,000 requests.
    pub fn database_cpu_per_100k(&self) -> Option<f64> {
        self.per_100k(self.database_cpu_s)
    }

    /// Client, server and database CPU seconds per 100,000 requests: on a machine where all
    /// three share the cores, what one request costs the machine.
    pub fn all_cpu_per_100k(&self) -> Option<f64> {
        let all =
            self.cpu_s + self.server_cpu_s.unwrap_or(0.0) + self.database_cpu_s.unwrap_or(0.0);
        self.per_100k(Some(all))
    }

    fn per_100k(&self, seconds: Option<f64>) -> Option<f64> {
        (self.requests > 0).then(|| seconds.map(|s| s * 100_000.0 / self.requests as f64))?
    }
}

/// A finished child: its output files, exit status and resource usage.
#[derive(Debug)]
pub struct Finished {
    /// Everything it wrote on stdout.
    pub stdout: String,
    /// Everything it wrote on stderr.
    pub stderr: String,
    /// Exit code, `None` after a signal.
    pub exit: Option<i32>,
    /// User plus system CPU seconds.
    pub cpu_s: f64,
    /// Peak resident memory in KiB.
    pub max_rss_kib: u64,
    /// The CPUs it ran on, read from `/proc` after it started, when it was pinned.
    pub affinity: Option<String>,
}

/// Runs `program args` with `env` in `cwd`, stdout and stderr to files under `out` (named
/// `stem`), and reaps it with `wait4` for its resource usage. xshell cannot report rusage, hence `Command`;
/// arguments are still passed as a vector, never through a shell.
pub fn run_measured(
    program: &Path,
    args: &[OsString],
    env: &[(&str, String)],
    cpus: Option<super::affinity::Cpus>,
    cwd: &Path,
    out: &Path,
    stem: &str,
) -> anyhow::Result<Finished> {
    let stdout_path = out.join(format!("{stem}.out"));
    let stderr_path = out.join(format!("{stem}.err"));
    let create =
        |path: &PathBuf| File::create(path).with_context(|| format!("creating {}", path.display()));
    let mut command = Command::new(program);
    command
        .args(args)
        .current_dir(cwd)
        .stdin(Stdio::null())
        .stdout(create(&stdout_path)?)
        .stderr(create(&stderr_path)?);
    for (key, value) in env {
        command.env(key, value);
    }
    if let Some(cpus) = cpus {
        use std::os::unix::process::CommandExt;
        // SAFETY: the closure makes one system call (sched_setaffinity), which is
        // async-signal-safe, and touches no memory shared with the parent.
        unsafe {
            command.pre_exec(move || super::affinity::pin_thread(0, cpus));
        }
    }
    let child = command
        .spawn()
        .with_context(|| format!("starting {}", program.display()))?;
    let pid = child.id();
    let _guard = crate::interrupt::on_interrupt(move || crate::interrupt::terminate(pid));
    let affinity = cpus.and_then(|_| super::affinity::allowed(pid));
    let (status, usage, high_water) = wait4(pid)?;
    let read = |path: &PathBuf| std::fs::read_to_string(path).unwrap_or_default();
    let seconds = |t: libc::timeval| t.tv_sec as f64 + t.tv_usec as f64 / 1e6;
    Ok(Finished {
        stdout: read(&stdout_path),
        stderr: read(&stderr_path),
        exit: libc::WIFEXITED(status).then(|| libc::WEXITSTATUS(status)),
        cpu_s: seconds(usage.ru_utime) + seconds(usage.ru_stime),
        // ru_maxrss is no use here: Linux carries the parent's resident size at exec into the
        // child's, so every small client would show this process's size.
        max_rss_kib: high_water,
        affinity,
    })
}

/// Waits for `pid` while sampling its peak resident memory (`VmHWM`, the high-water mark of
/// the memory its program has had since exec) every few milliseconds; returns the exit status,
/// the rusage (CPU times), and the last peak seen in KiB.
fn wait4(pid: u32) -> anyhow::Result<(libc::c_int, libc::rusage, u64)> {
    const SAMPLE_EVERY: std::time::Duration = std::time::Duration::from_millis(20);
    let status_file = format!("/proc/{pid}/status");
    let pid = libc::pid_t::try_from(pid).context("process id out of range")?;
    let mut status: libc::c_int = 0;
    // SAFETY: rusage is plain data; all-zero is a valid value for the kernel to overwrite.
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    let mut high_water = 0;
    loop {
        if let Some(kib) = std::fs::read_to_string(&status_file)
            .ok()
            .as_deref()
            .and_then(vm_hwm_kib)
        {
            high_water = high_water.max(kib);
        }
        // SAFETY: pid is our own child, not yet reaped (std's Child is never waited on);
        // status and usage point to live locals.
        let reaped = unsafe { libc::wait4(pid, &mut status, libc::WNOHANG, &mut usage) };
        if reaped == pid {
            return Ok((status, usage, high_water));
        }
        if reaped < 0 {
            let error = std::io::Error::last_os_error();
            if error.kind() != std::io::ErrorKind::Interrupted {
                bail!("waiting for process {pid}: {error}");
            }
        }
        std::thread::sleep(SAMPLE_EVERY);
    }
}

/// `VmHWM:     9876 kB` from /proc/PID/status.
fn vm_hwm_kib(status: &str) -> Option<u64> {
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))?
        .split_whitespace()
        .next()?
        .parse()
        .ok()
}

/// `xtask smoke --json`: the saved record's first endpoint.
pub fn parse_smoke(stdout: &str) -> anyhow::Result<ClientRun> {
    let record: serde_json::Value =
        serde_json::from_str(stdout.trim()).context("smoke --json did not print a record")?;
    let endpoint = &record["result"]["benchmark"]["endpoints"][0];
    if endpoint.is_null() {
        bail!("the smoke record has no benchmark endpoint");
    }
    let number = |v: &serde_json::Value| v.as_f64();
    let errors = &endpoint["errors"];
    let statuses: u64 = errors["status"]
        .as_object()
        .map(|m| m.values().filter_map(|v| v.as_u64()).sum())
        .unwrap_or(0);
    let open = record["result"]["benchmark"]["load"]["rate"].is_number();
    Ok(ClientRun {
        requests: endpoint["requests"].as_u64().unwrap_or(0),
        rps: number(&endpoint["throughput_rps"]).unwrap_or(0.0),
        p50_ms: number(&endpoint["latency"]["p50_ms"]),
        p99_ms: number(&endpoint["latency"]["p99_ms"]),
        p99_from_release_ms: number(&endpoint["latency_from_release"]["p99_ms"]),
        errors: ["connect", "timeout", "transport"]
            .iter()
            .filter_map(|k| errors[*k].as_u64())
            .sum::<u64>()
            + statuses,
        late: open.then(|| endpoint["late"].as_u64().unwrap_or(0)),
        scheduled: open.then(|| endpoint["scheduled"].as_u64().unwrap_or(0)),
        ..ClientRun::default()
    })
}

/// `oha --output-format json`: latencies in seconds, status codes and errors as counts.
pub fn parse_oha(stdout: &str) -> anyhow::Result<ClientRun> {
    let report: serde_json::Value =
        serde_json::from_str(stdout.trim()).context("oha did not print its JSON report")?;
    let summary = &report["summary"];
    let rps = summary["requestsPerSec"]
        .as_f64()
        .context("oha's JSON report has no summary.requestsPerSec")?;
    let counts = |key: &str| -> Vec<(String, u64)> {
        report[key]
            .as_object()
            .map(|m| {
                m.iter()
                    .map(|(k, v)| (k.clone(), v.as_u64().unwrap_or(0)))
                    .collect()
            })
            .unwrap_or_default()
    };
    let statuses = counts("statusCodeDistribution");
    let answered: u64 = statuses.iter().map(|(_, n)| n).sum();
    let not_2xx: u64 = statuses
        .iter()
        .filter(|(code, _)| !code.starts_with('2'))
        .map(|(_, n)| n)
        .sum();
    // Requests still in flight when -z ends are aborted by oha itself, not failed by the target.
    let failed: u64 = counts("errorDistribution")
        .iter()
        .filter(|(kind, _)| !kind.contains("aborted due to deadline"))
        .map(|(_, n)| n)
        .sum();
    let ms = |key: &str| {
        report["latencyPercentiles"][key]
            .as_f64()
            .map(|s| s * 1000.0)
    };
    Ok(ClientRun {
        requests: answered + failed,
        rps,
        p50_ms: ms("p50"),
        p99_ms: ms("p99"),
        errors: not_2xx + failed,
        ..ClientRun::default()
    })
}

/// `wrk --latency`: the latency distribution, request count, non-2xx and socket errors.
pub fn parse_wrk(stdout: &str) -> anyhow::Result<ClientRun> {
    let mut run = ClientRun::default();
    let mut saw_rps = false;
    for line in stdout.lines().map(str::trim) {
        let words: Vec<&str> = line.split_whitespace().collect();
        match words.as_slice() {
            ["50%", value] => run.p50_ms = Some(wrk_millis(value)?),
            ["99%", value] => run.p99_ms = Some(wrk_millis(value)?),
            [n, "requests", "in", ..] => {
                run.requests = n.parse().with_context(|| format!("wrk line `{line}`"))?
            }
            ["Requests/sec:", value] => {
                run.rps = value
                    .parse()
                    .with_context(|| format!("wrk line `{line}`"))?;
                saw_rps = true;
            }
            ["Non-2xx", "or", "3xx", "responses:", n] => {
                run.errors += n
                    .parse::<u64>()
                    .with_context(|| format!("wrk line `{line}`"))?
            }
            ["Socket", "errors:", rest @ ..] => {
                // `connect 0, read 0, write 0, timeout 0`
                run.errors += rest
                    .iter()
                    .filter_map(|w| w.trim_end_matches(',').parse::<u64>().ok())
                    .sum::<u64>();
            }
            _ => {}
        }
    }
    if !saw_rps {
        bail!("wrk printed no `Requests/sec:` line");
    }
    Ok(run)
}

/// `backend/examples/stack`: `requests: N` and `elapsed_s: S` of its in-process run.
pub fn parse_stack(stdout: &str) -> anyhow::Result<ClientRun> {
    let field = |name: &str| {
        stdout
            .lines()
            .find_map(|line| line.trim().strip_prefix(name)?.strip_prefix(':'))
            .map(str::trim)
            .with_context(|| format!("the stack example printed no `{name}:` line"))
    };
    let requests: u64 = field("requests")?
        .parse()
        .context("the stack example's `requests:` line")?;
    let elapsed: f64 = field("elapsed_s")?
        .parse()
        .context("the stack example's `elapsed_s:` line")?;
    if requests == 0 || !(elapsed.is_finite() && elapsed > 0.0) {
        bail!("the stack example measured nothing ({requests} requests in {elapsed} s)");
    }
    Ok(ClientRun {
        requests,
        rps: requests as f64 / elapsed,
        ..ClientRun::default()
    })
}

/// `590.00us`, `2.36ms`, `1.02s`, `1.50m` in milliseconds.
fn wrk_millis(value: &str) -> anyhow::Result<f64> {
    let split = value
        .find(|c: char| c.is_ascii_alphabetic())
        .with_context(|| format!("wrk latency `{value}` has no unit"))?;
    let (number, unit) = value.split_at(split);
    let number: f64 = number
        .parse()
        .with_context(|| format!("wrk latency `{value}`"))?;
    let factor = match unit {
        "us" => 0.001,
        "ms" => 1.0,
        "s" => 1000.0,
        "m" => 60_000.0,
        "h" => 3_600_000.0,
        other => bail!("wrk latency `{value}`: unknown unit `{other}`"),
    };
    Ok(number * factor)
}

/// pgbench's summary: transactions processed, failed, and the rate.
pub fn parse_pgbench(stdout: &str) -> anyhow::Result<ClientRun> {
    let mut run = ClientRun::default();
    let mut saw_tps = false;
    for line in stdout.lines().map(str::trim) {
        if let Some(rest) = line.strip_prefix("number of transactions actually processed:") {
            let n = rest.split_whitespace().next().unwrap_or_default();
            run.requests = n
                .parse()
                .with_context(|| format!("pgbench line `{line}`"))?;
        } else if let Some(rest) = line.strip_prefix("number of failed transactions:") {
            let n = rest.split_whitespace().next().unwrap_or_default();
            run.errors = n
                .parse()
                .with_context(|| format!("pgbench line `{line}`"))?;
        } else if let Some(rest) = line.strip_prefix("tps = ") {
            let n = rest.split_whitespace().next().unwrap_or_default();
            run.rps = n
                .parse()
                .with_context(|| format!("pgbench line `{line}`"))?;
            saw_tps = true;
        }
    }
    if !saw_tps {
        bail!("pgbench printed no `tps = ` line");
    }
    Ok(run)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_stack_example_gives_its_rate() {
        let out = "requests: 2500000\nelapsed_s: 5.000000\nns_per_request: 2000.0\n";
        let run = parse_stack(out).unwrap();
        assert_eq!(run.requests, 2_500_000);
        assert!((run.rps - 500_000.0).abs() < 1e-6, "{}", run.rps);
        let missing = parse_stack("requests: 10\n").unwrap_err();
        assert!(format!("{missing:#}").contains("elapsed_s"), "{missing:#}");
        assert!(parse_stack("requests: 0\nelapsed_s: 1.0\n").is_err());
        assert!(parse_stack("requests: ten\nelapsed_s: 1.0\n").is_err());
    }

    #[test]
    fn oha_json_gives_rate_percentiles_and_failures() {
        let run = parse_oha(include_str!("testdata/oha.json")).unwrap();
        assert_eq!(run.rps, 761.1962933048334);
        assert_eq!(
            run.requests, 765,
            "answered plus failed, deadline aborts left out"
        );
        assert_eq!(run.errors, 15, "12 answers of 404 and 3 broken connections");
        assert!((run.p50_ms.unwrap() - 1.26096).abs() < 1e-9);
        assert!((run.p99_ms.unwrap() - 32.959686).abs() < 1e-9);
        assert!(parse_oha("not json").is_err());
        assert!(parse_oha("{}").is_err());
    }

    #[test]
    fn wrk_latency_output_gives_rate_percentiles_and_errors() {
        let run = parse_wrk(include_str!("testdata/wrk.txt")).unwrap();
        assert_eq!((run.requests, run.rps, run.errors), (750, 749.43, 0));
        assert_eq!((run.p50_ms, run.p99_ms), (Some(1.31), Some(26.2)));
        let run = parse_wrk(include_str!("testdata/wrk-errors.txt")).unwrap();
        assert_eq!((run.requests, run.errors), (600_123, 47));
        assert!((run.p50_ms.unwrap() - 0.59).abs() < 1e-9);
        assert_eq!(run.p99_ms, Some(2.36));
        assert!(parse_wrk("unable to connect to 127.0.0.1:1 Connection refused").is_err());
    }

    #[test]
    fn wrk_latency_units() {
        assert_eq!(wrk_millis("590.00us").unwrap(), 0.59);
        assert_eq!(wrk_millis("1.50s").unwrap(), 1500.0);
        assert_eq!(wrk_millis("2.00m").unwrap(), 120_000.0);
        assert!(wrk_millis("12").is_err());
        assert!(wrk_millis("3.0parsecs").is_err());
    }

    #[test]
    fn pgbench_summary_gives_the_transaction_rate() {
        let run = parse_pgbench(include_str!("testdata/pgbench.txt")).unwrap();
        assert_eq!(
            (run.requests, run.rps, run.errors),
            (16_234, 1623.350191, 0)
        );
        assert_eq!(run.p50_ms, None);
        assert!(parse_pgbench("connection to server failed").is_err());
    }

    #[test]
    fn smoke_record_gives_the_endpoint_figures() {
        let record = serde_json::json!({
            "result": { "benchmark": {
                "load": { "rate": 500.0 },
                "endpoints": [{
                    "requests": 5000, "throughput_rps": 499.9, "late": 3, "scheduled": 5000,
                    "latency": { "p50_ms": 0.21, "p99_ms": 0.9 },
                    "latency_from_release": { "p50_ms": 0.12, "p99_ms": 0.7 },
                    "errors": { "connect": 1, "timeout": 0, "transport": 2, "status": { "503": 4 } }
                }]
            }}
        });
        let run = parse_smoke(&record.to_string()).unwrap();
        assert_eq!((run.requests, run.errors), (5000, 7));
        assert_eq!((run.late, run.scheduled), (Some(3), Some(5000)));
        assert_eq!(run.p50_ms, Some(0.21));
        assert_eq!(
            (run.p99_ms, run.p99_from_release_ms),
            (Some(0.9), Some(0.7))
        );
        let closed = serde_json::json!({ "result": { "benchmark": {
            "load": { "rate": null },
            "endpoints": [{ "requests": 1, "throughput_rps": 1.0, "latency": {}, "errors": {} }]
        }}});
        let closed = parse_smoke(&closed.to_string()).unwrap();
        assert_eq!((closed.late, closed.p99_from_release_ms), (None, None));
        assert!(parse_smoke("{\"result\": {}}").is_err());
    }

    #[test]
    fn a_child_is_reaped_with_its_resource_usage() {
        let dir = tempfile::tempdir().unwrap();
        let finished = run_measured(
            Path::new("/bin/sh"),
            &["-c".into(), "echo out; echo err >&2; exit 3".into()],
            &[],
            None,
            dir.path(),
            dir.path(),
            "sh",
        )
        .unwrap();
        assert_eq!(finished.stdout, "out\n");
        assert_eq!(finished.stderr, "err\n");
        assert_eq!(finished.exit, Some(3));
        assert_eq!(finished.affinity, None);
    }

    #[test]
    fn a_pinned_child_runs_on_its_cpu_from_its_first_instruction() {
        let dir = tempfile::tempdir().unwrap();
        let finished = run_measured(
            Path::new("/bin/sh"),
            &[
                "-c".into(),
                "grep Cpus_allowed_list /proc/self/status; sleep 0.1".into(),
            ],
            &[],
            Some(crate::bench::affinity::Cpus::one(0)),
            dir.path(),
            dir.path(),
            "pinned",
        )
        .unwrap();
        assert_eq!(finished.stdout.trim(), "Cpus_allowed_list:\t0");
        assert_eq!(finished.affinity.as_deref(), Some("0"));
    }

    #[test]
    fn peak_memory_is_the_childs_own() {
        let dir = tempfile::tempdir().unwrap();
        // Holds about 64 MiB resident for a moment, far above this process's own size.
        let finished = run_measured(
            Path::new("/bin/sh"),
            &[
                "-c".into(),
                "x=$(head -c 67108864 /dev/zero | tr '\\0' a); sleep 0.2".into(),
            ],
            &[],
            None,
            dir.path(),
            dir.path(),
            "big",
        )
        .unwrap();
        assert!(finished.max_rss_kib > 32 * 1024, "{finished:?}");
        // A tiny program reports its own size, not the spawning process's.
        let own = vm_hwm_kib(&std::fs::read_to_string("/proc/self/status").unwrap()).unwrap();
        let small = run_measured(
            Path::new("/bin/sleep"),
            &["0.1".into()],
            &[],
            None,
            dir.path(),
            dir.path(),
            "small",
        )
        .unwrap();
        assert!(
            small.max_rss_kib > 0 && small.max_rss_kib < own,
            "{small:?}, this process {own} KiB"
        );
        assert_eq!(vm_hwm_kib("Name:\tx\nVmHWM:\t    9876 kB\n"), Some(9876));
        assert_eq!(vm_hwm_kib("Name:\tx\n"), None);
    }
}
