//! Machines as processes: start a `cabanas serve` from an image on a free loopback port in
//! its own process group, probe its health check over HTTP, stop its whole group.

use std::collections::BTreeMap;
use std::fs::OpenOptions;
use std::os::unix::process::CommandExt;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::Context;
use chrono::Utc;

use super::state::{App, HttpCheck, Image, Machine};
use crate::interrupt::{process_alive, terminate_group};

/// Set when SIGINT or SIGTERM reached this `localfly` call (see [`watch_for_interrupt`]).
static INTERRUPTED: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);

/// The exit code flyctl uses when its context was cancelled by a signal (flyctl
/// `internal/cli/cli.go`: `errors.Is(err, context.Canceled)` → 127).
pub const EXIT_INTERRUPTED: i32 = 127;

/// How long after a signal the call exits whatever it is doing: flyctl gives the release
/// status update one more second (`internal/command/deploy/machines_deploymachinesapp.go`,
/// `context.WithTimeout(onInterruptContext, time.Second)`).
pub const INTERRUPT_GRACE: Duration = Duration::from_secs(1);

/// Traps SIGINT and SIGTERM as flyctl does (`main.go`, `signal.NotifyContext`): the waits
/// notice the flag and the deploy ends with its release `interrupted`; should the call not
/// end by itself within [`INTERRUPT_GRACE`] (a release command still running), it exits 127.
pub fn watch_for_interrupt() {
    let _ = ctrlc::set_handler(|| {
        INTERRUPTED.store(true, std::sync::atomic::Ordering::SeqCst);
        std::thread::sleep(INTERRUPT_GRACE * 2);
        std::process::exit(EXIT_INTERRUPTED);
    });
}

/// Whether a signal asked this call to stop.
pub fn interrupted() -> bool {
    INTERRUPTED.load(std::sync::atomic::Ordering::SeqCst)
}

/// The environment a machine of `app` starts with: fly.toml's `[env]`, the image's build
/// args (the Dockerfile's `ENV X=$X`), the app's secrets, then Fly's own variables.
pub fn machine_env(
    app: &App,
    image: &Image,
    fly_env: &BTreeMap<String, String>,
    id: &str,
    port: u16,
) -> BTreeMap<String, String> {
    let mut env = BTreeMap::new();
    if let Some(path) = std::env::var_os("PATH") {
        env.insert("PATH".into(), path.to_string_lossy().into_owned());
    }
    env.extend(fly_env.clone());
    env.extend(image.build_args.clone());
    for (name, secret) in &app.secrets {
        env.insert(name.clone(), secret.value.clone());
    }
    env.insert("FLY_APP_NAME".into(), app.name.clone());
    env.insert("FLY_MACHINE_ID".into(), id.into());
    app.regions.apply(&app.region, id, &mut env);
    env.insert("FLY_IMAGE_REF".into(), image.reference.clone());
    env.insert("PORT".into(), port.to_string());
    // Loopback only, whatever fly.toml says: nothing outside this host reaches a machine.
    env.insert("HOST".into(), "127.0.0.1".into());
    env
}

/// Starts machine `id` of `app` from `image`, its output appended to `apps/<app>/logs/<id>.log`.
pub fn start(
    app_dir: &Path,
    app: &App,
    image: &Image,
    fly_env: &BTreeMap<String, String>,
    id: &str,
) -> anyhow::Result<Machine> {
    let port = crate::ports::free_port()?;
    let logs = app_dir.join("logs");
    std::fs::create_dir_all(&logs).with_context(|| format!("creating {}", logs.display()))?;
    let log = logs.join(format!("{id}.log"));
    let file = OpenOptions::new()
        .create(true)
        .append(true)
        .open(&log)
        .with_context(|| format!("opening {}", log.display()))?;
    let env = machine_env(app, image, fly_env, id, port);
    // With `LOCALFLY_CONTAINER_IMAGE`, the machine is a container of the real image.
    let mut command = match super::container::configured() {
        Some(container) => {
            container.command(&app.name, id, &env, &["cabanas".into(), "serve".into()])
        }
        None => {
            let mut command = Command::new(&image.binary);
            command.arg("serve").env_clear().envs(env);
            command
        }
    };
    let child = command
        .current_dir(app_dir)
        .stdin(Stdio::null())
        .stdout(file.try_clone()?)
        .stderr(file)
        .process_group(0)
        .spawn()
        .with_context(|| format!("starting machine {id} from {}", image.binary.display()))?;
    let now = Utc::now();
    Ok(Machine {
        id: id.into(),
        state: "started".into(),
        image_ref: image.reference.clone(),
        port,
        healthy: false,
        pid: Some(child.id()),
        started: start_time(child.id()),
        log,
        created_at: now,
        updated_at: now,
        kind: super::state::MachineKind::App,
    })
}

/// When process `pid` started, in clock ticks since boot (`/proc/<pid>/stat` field 22).
/// With the pid it names one process for good: a pid the system reused for another process
/// has another start time, so the local Fly never signals a process it did not start.
pub fn start_time(pid: u32) -> Option<u64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // "pid (comm) state ppid ...": fields after the command name start at field 3.
    let (_, rest) = stat.rsplit_once(") ")?;
    rest.split_whitespace().nth(22 - 3)?.parse().ok()
}

/// Whether `pid`, started at `started`, is still that running process.
pub fn running(pid: Option<u32>, started: Option<u64>) -> bool {
    match (pid, started) {
        (Some(pid), Some(started)) => process_alive(pid) && start_time(pid) == Some(started),
        _ => false,
    }
}

/// Stops the process group led by `pid` if it is still the process started at `started`.
/// Returns whether it was running.
pub fn stop_group(pid: Option<u32>, started: Option<u64>) -> bool {
    let was_running = running(pid, started);
    if let (true, Some(pid)) = (was_running, pid) {
        terminate_group(pid);
    }
    was_running
}

/// Whether the machine's process is running.
pub fn alive(machine: &Machine) -> bool {
    running(machine.pid, machine.started)
}

/// Stops the machine's whole process group (TERM, then KILL after a grace period).
pub fn stop(machine: &mut Machine) {
    stop_group(machine.pid.take(), machine.started.take());
    if let Some(container) = super::container::configured() {
        super::container::remove(&container, &machine.id);
    }
    machine.state = "stopped".into();
    machine.healthy = false;
    machine.updated_at = Utc::now();
}

/// Probes checks over HTTP; one runtime and client per localfly call.
pub struct Prober {
    runtime: tokio::runtime::Runtime,
    client: reqwest::Client,
}

impl Prober {
    /// A prober whose requests give up after `timeout`.
    pub fn new(timeout: Duration) -> anyhow::Result<Prober> {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()?;
        Ok(Prober {
            runtime,
            client: crate::http::client(timeout)?,
        })
    }

    /// `(passing, output)` of `check` on `machine` right now; a stopped machine is critical.
    /// `broken` (an image whose checks never pass) probes a path that cannot answer 200.
    pub fn probe(&self, machine: &Machine, check: &HttpCheck, broken: bool) -> (bool, String) {
        if !alive(machine) {
            return (false, "the machine is not running".into());
        }
        let path = if broken {
            format!("{}/never-passes", check.path.trim_end_matches('/'))
        } else {
            check.path.clone()
        };
        let url = format!("http://127.0.0.1:{}{path}", machine.port);
        let answer = self
            .runtime
            .block_on(async { self.client.get(&url).send().await });
        match answer {
            Ok(response) if response.status().is_success() => (
                true,
                format!("HTTP {} GET {}", response.status(), check.path),
            ),
            Ok(response) => (
                false,
                format!("HTTP {} GET {}", response.status(), check.path),
            ),
            Err(error) => (false, error.without_url().to_string()),
        }
    }

    /// Waits until `machine` passes every check, up to `deadline`. The error says why not:
    /// the process exited, or the checks still failed when time ran out.
    ///
    /// Probes again after a back-off from 5 ms doubling to [`CHECK_POLL_MAX`]: a machine
    /// that starts in tens of milliseconds is seen passing then, not a whole poll later.
    /// (flyctl itself polls the machine's check results every 1-2 s,
    /// `internal/machine/leasable_machine.go`, `WaitForHealthchecksToPass`; the stand-in
    /// runs the checks itself, so its cadence is its own.)
    pub fn wait_passing(
        &self,
        machine: &Machine,
        checks: &[HttpCheck],
        broken: bool,
        deadline: Instant,
    ) -> Result<(), String> {
        let mut wait = Duration::from_millis(5);
        loop {
            if interrupted() {
                return Err("interrupted (SIGINT or SIGTERM)".into());
            }
            if !alive(machine) {
                return Err(format!(
                    "machine {} exited while starting; its last output:\n{}",
                    machine.id,
                    log_tail(&machine.log, 8)
                ));
            }
            let failing: Vec<String> = checks
                .iter()
                .map(|check| (check, self.probe(machine, check, broken)))
                .filter(|(_, (passing, _))| !passing)
                .map(|(check, (_, output))| format!("{}: {output}", check.name))
                .collect();
            if failing.is_empty() {
                return Ok(());
            }
            if Instant::now() >= deadline {
                return Err(format!(
                    "timeout reached waiting for health checks to pass for machine {}: {}",
                    machine.id,
                    failing.join("; ")
                ));
            }
            std::thread::sleep(wait.min(deadline.saturating_duration_since(Instant::now())));
            wait = (wait * 2).min(CHECK_POLL_MAX);
        }
    }
}

/// The longest wait between two probes of a starting machine's checks.
pub const CHECK_POLL_MAX: Duration = Duration::from_millis(200);

/// The last `lines` lines of a log file.
pub fn log_tail(path: &Path, lines: usize) -> String {
    crate::flyctl::tail(&std::fs::read_to_string(path).unwrap_or_default(), lines)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_pid_counts_as_ours_only_with_its_start_time() {
        let me = std::process::id();
        let started = start_time(me);
        assert!(started.is_some(), "this process has a start time");
        assert!(running(Some(me), started));
        // The same pid with another start time is a reused pid: never ours.
        assert!(!running(Some(me), started.map(|t| t + 1)));
        assert!(!running(Some(me), None));
        assert!(!running(None, started));
    }
}
