//! A local instance of the reservation service: built, migrated, seeded and started on a free
//! loopback port, and stopped on every exit path (drop, error or Ctrl-C).

use std::fs::File;
use std::path::PathBuf;
use std::process::{Child, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use xshell::{Shell, cmd};

use crate::interrupt::{self, CleanupGuard};
use crate::readiness::Readiness;
use crate::repo::Repo;

/// What the service runs with.
#[derive(Debug, Clone)]
pub struct ServiceSettings {
    /// The `cabanas` binary.
    pub binary: PathBuf,
    /// `DATABASE_URL` for the service (a `sqlite:` or `postgres://` URL).
    pub database_url: String,
    /// `JWT_SECRET` for admin tokens.
    pub jwt_secret: String,
    /// `ADMIN_ALLOWED_EMAILS`.
    pub admin_email: String,
    /// Where the service's log goes.
    pub log_file: PathBuf,
}

/// A running service. Dropping it stops the process.
#[derive(Debug)]
pub struct LocalService {
    child: Child,
    url: String,
    log_file: PathBuf,
    _interrupt: CleanupGuard,
}

/// Builds the `cabanas` binary (debug profile) and returns its path.
pub fn build_service(repo: &Repo) -> anyhow::Result<PathBuf> {
    build_service_with_localfly(repo, false).map(|(service, _)| service)
}

/// Builds the `cabanas` binary and, with `localfly`, the local Fly too, in one cargo call (a
/// warm cargo takes a few tenths of a second to find nothing to do; twice is twice that), and
/// returns their paths.
pub fn build_service_with_localfly(
    repo: &Repo,
    localfly: bool,
) -> anyhow::Result<(PathBuf, Option<PathBuf>)> {
    let sh = Shell::new()?;
    let mut args = vec![
        "build",
        "--quiet",
        "--package",
        "backend",
        "--bin",
        "cabanas",
    ];
    if localfly {
        args.extend(["--package", "xtask", "--bin", "localfly"]);
    }
    crate::repo::nested_cargo(&sh, repo)
        .args(&args)
        .run()
        .with_context(|| format!("building (cargo {})", args.join(" ")))?;
    let binary = service_path(repo);
    if !binary.is_file() {
        bail!("the service was built but {} is missing", binary.display());
    }
    let localfly = localfly.then(|| binary.with_file_name("localfly"));
    if let Some(path) = &localfly
        && !path.is_file()
    {
        bail!("the local Fly was built but {} is missing", path.display());
    }
    Ok((binary, localfly))
}

/// Where cargo puts the debug `cabanas` binary (`$CARGO_TARGET_DIR` respected).
pub fn service_path(repo: &Repo) -> PathBuf {
    target_dir(repo).join("debug").join("cabanas")
}

/// cargo's target directory: `$CARGO_TARGET_DIR` (relative to the workspace when relative),
/// else `target/`.
pub fn target_dir(repo: &Repo) -> PathBuf {
    match std::env::var_os("CARGO_TARGET_DIR").map(PathBuf::from) {
        Some(dir) if dir.is_absolute() => dir,
        Some(dir) => repo.path(dir),
        None => repo.path("target"),
    }
}

impl LocalService {
    /// Migrates and seeds the database, then starts `cabanas serve` on a free loopback port
    /// and waits until `/api/v1/readyz` answers 200 (at most `ready_within`).
    pub fn start(
        settings: &ServiceSettings,
        ready_within: Duration,
    ) -> anyhow::Result<LocalService> {
        LocalService::start_with_env(settings, &[], ready_within)
    }

    /// [`LocalService::start`] with more environment for `serve` (later entries win, so
    /// `RUST_LOG` can be lowered for a benchmark).
    pub fn start_with_env(
        settings: &ServiceSettings,
        env: &[(&str, &str)],
        ready_within: Duration,
    ) -> anyhow::Result<LocalService> {
        let sh = Shell::new()?;
        let binary = &settings.binary;
        for step in ["migrate", "seed-demo"] {
            service_command(&sh, settings, step)
                .quiet()
                .output()
                .with_context(|| format!("`{} {step}` failed", binary.display()))?;
        }
        let port = crate::ports::free_port()?;
        let log = File::create(&settings.log_file)
            .with_context(|| format!("creating {}", settings.log_file.display()))?;
        let serve = env.iter().fold(
            service_command(&sh, settings, "serve")
                .env("HOST", "127.0.0.1")
                .env("PORT", port.to_string()),
            |serve, (key, value)| serve.env(key, value),
        );
        let mut command = std::process::Command::from(serve);
        command
            .stdin(Stdio::null())
            .stdout(log.try_clone()?)
            .stderr(log);
        let child = command
            .spawn()
            .with_context(|| format!("starting {} serve", binary.display()))?;
        let pid = child.id();
        let guard = interrupt::on_interrupt(move || interrupt::terminate(pid));
        let mut service = LocalService {
            child,
            url: format!("http://127.0.0.1:{port}"),
            log_file: settings.log_file.clone(),
            _interrupt: guard,
        };
        service.wait_ready(ready_within)?;
        Ok(service)
    }

    /// The base URL, `http://127.0.0.1:<port>`.
    pub fn url(&self) -> &str {
        &self.url
    }

    /// The process id (tests check that it is gone afterwards).
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    fn wait_ready(&mut self, within: Duration) -> anyhow::Result<()> {
        let child = &mut self.child;
        let last =
            match crate::readiness::poll_blocking(&self.url, within, |_| match child.try_wait() {
                Ok(Some(status)) => Some(format!("the service exited ({status})")),
                _ => None,
            })? {
                Readiness::Ready { .. } => return Ok(()),
                Readiness::Gone(why) => why,
                Readiness::TimedOut { last, .. } => {
                    format!("not ready within {within:?}, last: {last}")
                }
            };
        bail!(
            "the service at {} did not become ready ({last}); its log: {}",
            self.url,
            self.log_file.display()
        )
    }

    /// Stops the service: SIGTERM for a graceful shutdown, SIGKILL after 10 s.
    pub fn stop(mut self) {
        self.stop_inner();
    }

    fn stop_inner(&mut self) {
        if let Ok(Some(_)) = self.child.try_wait() {
            return;
        }
        interrupt::send_signal(self.child.id(), "TERM");
        let deadline = Instant::now() + Duration::from_secs(10);
        while Instant::now() < deadline {
            if let Ok(Some(_)) = self.child.try_wait() {
                return;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for LocalService {
    fn drop(&mut self) {
        self.stop_inner();
    }
}

fn service_command<'a>(sh: &'a Shell, settings: &ServiceSettings, step: &str) -> xshell::Cmd<'a> {
    let binary = &settings.binary;
    cmd!(sh, "{binary} {step}")
        .env("DATABASE_URL", &settings.database_url)
        .env("JWT_SECRET", &settings.jwt_secret)
        .env("ADMIN_ALLOWED_EMAILS", &settings.admin_email)
        .env("RUST_LOG", "info")
}
