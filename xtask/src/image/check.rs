//! `image --check`: the built image run the way Fly runs a release (see fly.toml): the
//! release command once in a throwaway container, then the image's own CMD as its own
//! unprivileged USER, read-only root filesystem, fly.toml's `[env]`; readiness, the version
//! it reports, then smoke against it. Every container it starts is removed on every exit
//! path ([`Containers`]), Ctrl-C included.

use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::Context;
use serde::Serialize;

use super::engine::{Engine, first_line};
use super::{ServiceConfig, Step};
use crate::config::{DeployConfig, Target};
use crate::interrupt::{self, CleanupGuard};
use crate::readiness::Readiness;
use crate::repo::Repo;
use crate::verdict::Verdict;

/// The label on every container the check starts, valued with the image tag, so that what
/// it started can be listed (`podman ps -a --filter label=...`).
pub const CONTAINER_LABEL: &str = "org.sist-cabanas.image-check";

/// Where the database directory is mounted in the containers.
const DATA_DIR: &str = "/data";

/// The admin address the checked service allows.
const ADMIN_EMAIL: &str = "image-check@cabanas.example";

/// What the check measured besides its steps.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Measured {
    /// From starting the service container to the first 200 from readyz, in milliseconds.
    pub start_to_ready_ms: Option<u64>,
    /// The loopback URL the service answered on.
    pub url: Option<String>,
}

/// The containers a check started: removed (`rm --force`) when dropped or on Ctrl-C.
struct Containers {
    engine: Engine,
    names: Arc<Mutex<Vec<String>>>,
    _interrupt: CleanupGuard,
}

impl Containers {
    fn new(engine: &Engine) -> Containers {
        let names = Arc::new(Mutex::new(Vec::new()));
        let (for_interrupt, shared) = (engine.clone(), Arc::clone(&names));
        let guard = interrupt::on_interrupt(move || {
            let names = shared.lock().map(|n| n.clone()).unwrap_or_default();
            for_interrupt.remove_containers(&names);
        });
        Containers {
            engine: engine.clone(),
            names,
            _interrupt: guard,
        }
    }

    /// A new container name, registered for removal before the container exists.
    fn name(&self, role: &str) -> String {
        let unique = uuid::Uuid::new_v4().simple().to_string();
        let name = format!("cabanas-image-check-{role}-{}", &unique[..8]);
        if let Ok(mut names) = self.names.lock() {
            names.push(name.clone());
        }
        name
    }
}

impl Drop for Containers {
    fn drop(&mut self) {
        let names = self.names.lock().map(|n| n.clone()).unwrap_or_default();
        self.engine.remove_containers(&names);
    }
}

/// Runs the check's steps against the image `tag`, appending them to `steps`; stops at the
/// first failing step. Errors mean the check could not run (exit 2).
pub fn run(
    repo: &Repo,
    engine: &Engine,
    tag: &str,
    user: &str,
    service: &ServiceConfig,
    commit: &str,
    steps: &mut Vec<Step>,
) -> anyhow::Result<Measured> {
    let mut measured = Measured::default();
    let containers = Containers::new(engine);
    // The database lives outside the read-only root filesystem, in a directory the image's
    // unprivileged user can write whatever its uid.
    let data = tempfile::tempdir().context("creating a directory for the check's database")?;
    std::fs::set_permissions(data.path(), std::fs::Permissions::from_mode(0o777))
        .with_context(|| format!("opening {} to the container user", data.path().display()))?;
    let jwt_secret =
        uuid::Uuid::new_v4().simple().to_string() + &uuid::Uuid::new_v4().simple().to_string();
    let base = RunBase {
        tag,
        data: data.path(),
        jwt_secret: &jwt_secret,
    };

    // 1. The release command, as Fly runs it before a release: once, to completion.
    let started = Instant::now();
    let release = service.release_command.clone().unwrap_or_default();
    let mut command = base.command(engine, &containers.name("release"), &service.env, None);
    command.arg("--rm").arg(tag).args(&release);
    let output = command.output().context("starting the release container")?;
    let step = if release.is_empty() {
        Step::skip(
            "release command",
            "fly.toml has no [deploy] release_command",
        )
    } else if output.status.success() {
        Step::pass(
            "release command",
            format!("`{}` exited 0", release.join(" ")),
        )
    } else {
        Step::fail(
            "release command",
            format!(
                "`{}` exited {}: {}",
                release.join(" "),
                output.status.code().unwrap_or(-1),
                tail(&String::from_utf8_lossy(&output.stderr), 8)
            ),
            "run it by hand in the image and fix what it reports",
        )
    };
    if !push(steps, step, started) {
        return Ok(measured);
    }

    // 2. The service: the image's own CMD and USER, as a Fly machine starts it.
    let started = Instant::now();
    if user.is_empty()
        || user == "root"
        || user.starts_with("0") && user.trim_start_matches('0').is_empty()
    {
        push(
            steps,
            Step::fail(
                "start",
                format!(
                    "the image runs as `{}`",
                    if user.is_empty() { "root" } else { user }
                ),
                "end the Dockerfile's final stage with USER <unprivileged user>",
            ),
            started,
        );
        return Ok(measured);
    }
    let port = crate::ports::free_port().context("finding a free port for the service")?;
    let serve_name = containers.name("serve");
    let mut command = base.command(engine, &serve_name, &service.env, Some(port));
    command.arg("--detach").arg(tag);
    let output = command.output().context("starting the service container")?;
    if !output.status.success() {
        push(
            steps,
            Step::fail(
                "start",
                format!(
                    "{} run failed: {}",
                    engine.name(),
                    first_line(&String::from_utf8_lossy(&output.stderr))
                ),
                "fix what the engine reports (the image's CMD, USER or a mount)",
            ),
            started,
        );
        return Ok(measured);
    }
    let url = format!("http://127.0.0.1:{port}");
    measured.url = Some(url.clone());

    // 3. Readiness: readyz answers 200 while the container is still running.
    match wait_ready(engine, &serve_name, &url, service.ready_timeout)? {
        Ready::Yes => {
            let ready_ms = started.elapsed().as_millis() as u64;
            measured.start_to_ready_ms = Some(ready_ms);
            push(
                steps,
                Step::pass(
                    "start",
                    format!("`{serve_name}` running as {user}, read-only root"),
                ),
                started,
            );
            push(
                steps,
                Step::pass("readiness", format!("readyz 200 after {ready_ms} ms")),
                Instant::now(),
            );
        }
        Ready::Exited { code, logs } => {
            push(
                steps,
                Step::fail(
                    "start",
                    format!(
                        "the service exited (code {code}) before it was ready; its last lines: {logs}"
                    ),
                    format!(
                        "the image must serve as USER {user} on a read-only root filesystem: write \
                         only to the database and /tmp (run it: {} run --read-only {tag})",
                        engine.name()
                    ),
                ),
                started,
            );
            return Ok(measured);
        }
        Ready::TimedOut { last } => {
            push(
                steps,
                Step::pass("start", format!("`{serve_name}` running")),
                started,
            );
            push(
                steps,
                Step::fail(
                    "readiness",
                    format!(
                        "readyz not 200 within {:?} (last: {last})",
                        service.ready_timeout
                    ),
                    format!(
                        "read the service's log: {} logs {serve_name}",
                        engine.name()
                    ),
                ),
                Instant::now(),
            );
            return Ok(measured);
        }
    }

    // 4. The version it reports names the commit built.
    let started = Instant::now();
    if !push(steps, version_step(&url, commit)?, started) {
        return Ok(measured);
    }

    // 5. Smoke, the library function the smoke task runs, with ops/deploy.toml's plan.
    let started = Instant::now();
    let config = DeployConfig::load(repo)?;
    let plan = crate::smoke::SmokePlan::new(&config.smoke, &config.thresholds)?;
    let target = Target::named("image", &url)?;
    let report = crate::http::runtime()?.block_on(crate::smoke::measure(&target, &plan))?;
    crate::output::say(format_args!("{}", crate::smoke::render::human(&report)));
    let failing: Vec<&str> = report
        .checks
        .iter()
        .filter(|c| c.verdict == Verdict::Fail)
        .map(|c| c.id.as_str())
        .collect();
    let step = if report.verdict == Verdict::Fail {
        Step::fail(
            "smoke",
            format!(
                "smoke failed: {}",
                if failing.is_empty() {
                    "thresholds".into()
                } else {
                    failing.join(", ")
                }
            ),
            format!(
                "see the smoke output above; the service's log: {} logs {serve_name}",
                engine.name()
            ),
        )
    } else {
        Step::pass("smoke", format!("smoke {}", report.verdict.label()))
    };
    push(steps, step, started);
    drop(containers);
    Ok(measured)
}

/// Adds `step`, timed from `started`; whether the check goes on.
fn push(steps: &mut Vec<Step>, mut step: Step, started: Instant) -> bool {
    step.duration_ms = started.elapsed().as_millis() as u64;
    let goes_on = step.verdict != Verdict::Fail;
    steps.push(step);
    goes_on
}

/// What every container of the check shares.
struct RunBase<'a> {
    tag: &'a str,
    data: &'a Path,
    jwt_secret: &'a str,
}

impl RunBase<'_> {
    /// `run` with the image's own USER, a read-only root filesystem, the host network (the
    /// service's port is a free loopback port), fly.toml's `[env]` and the database mount.
    /// `JWT_SECRET` goes through the engine's environment, never on its argv.
    fn command(
        &self,
        engine: &Engine,
        name: &str,
        env: &[(String, String)],
        port: Option<u16>,
    ) -> std::process::Command {
        let mut command = engine.command();
        command
            .args(["run", "--name", name, "--label"])
            .arg(format!("{CONTAINER_LABEL}={}", self.tag))
            .args([
                "--network",
                "host",
                "--read-only",
                "--tmpfs",
                "/tmp",
                "--volume",
            ])
            .arg(format!("{}:{DATA_DIR}", self.data.display()));
        for (key, value) in env {
            let value = match (key.as_str(), port) {
                ("PORT", Some(port)) => port.to_string(),
                _ => value.clone(),
            };
            command.arg("--env").arg(format!("{key}={value}"));
        }
        if let Some(port) = port
            && !env.iter().any(|(k, _)| k == "PORT")
        {
            command.arg("--env").arg(format!("PORT={port}"));
        }
        command
            .arg("--env")
            .arg(format!(
                "DATABASE_URL=sqlite:{DATA_DIR}/cabanas.db?mode=rwc"
            ))
            .arg("--env")
            .arg(format!("ADMIN_ALLOWED_EMAILS={ADMIN_EMAIL}"))
            .args(["--env", "JWT_SECRET"])
            .env("JWT_SECRET", self.jwt_secret);
        command
    }
}

enum Ready {
    Yes,
    Exited { code: String, logs: String },
    TimedOut { last: String },
}

/// Polls readiness until 200, the container exits, or `within` runs out.
fn wait_ready(engine: &Engine, name: &str, url: &str, within: Duration) -> anyhow::Result<Ready> {
    let mut exited = None;
    let outcome = crate::readiness::poll_blocking(url, within, |_| {
        let running = engine.read(&["inspect", "--format", "{{.State.Running}}", name]);
        if running.is_ok_and(|r| r.trim() == "true") {
            return None;
        }
        let code = engine
            .read(&["inspect", "--format", "{{.State.ExitCode}}", name])
            .unwrap_or_else(|_| "?".into());
        exited = Some(code.clone());
        Some(code)
    })?;
    Ok(match outcome {
        Readiness::Ready { .. } => Ready::Yes,
        Readiness::TimedOut { last, .. } => Ready::TimedOut { last },
        Readiness::Gone(_) => Ready::Exited {
            code: exited.unwrap_or_else(|| "?".into()),
            logs: container_logs(engine, name),
        },
    })
}

/// The last lines the container wrote, both streams.
fn container_logs(engine: &Engine, name: &str) -> String {
    engine
        .command()
        .args(["logs", "--tail", "10", name])
        .output()
        .map(|o| {
            tail(
                &(String::from_utf8_lossy(&o.stdout).into_owned()
                    + &String::from_utf8_lossy(&o.stderr)),
                10,
            )
        })
        .unwrap_or_default()
}

/// `GET /api/v1/version` must name `commit`.
fn version_step(url: &str, commit: &str) -> anyhow::Result<Step> {
    let client = crate::http::client(Duration::from_secs(5))?;
    let answer = crate::http::runtime()?.block_on(async {
        let response = client
            .get(format!("{url}{}", crate::smoke::VERSION_PATH))
            .send()
            .await?;
        response.json::<serde_json::Value>().await
    });
    let fix = "pass the commit as a build argument (ARG GIT_COMMIT, ENV GIT_COMMIT=$GIT_COMMIT in the \
               final stage); image builds it with --build-arg GIT_COMMIT=<HEAD>";
    Ok(match answer {
        Ok(body) => match body.get("commit").and_then(|c| c.as_str()) {
            Some(served) if served == commit => {
                Step::pass("version", format!("names commit {served}"))
            }
            Some(served) => Step::fail(
                "version",
                format!("names commit `{served}`, the build was of {commit}"),
                fix,
            ),
            None => Step::fail("version", "the answer has no `commit` field", fix),
        },
        Err(error) => Step::fail(
            "version",
            format!(
                "GET {}: {}",
                crate::smoke::VERSION_PATH,
                error.without_url()
            ),
            "the service must answer GET /api/v1/version with JSON",
        ),
    })
}

/// The last `lines` non-empty lines of `text`, joined with ` | `.
fn tail(text: &str, lines: usize) -> String {
    let all: Vec<&str> = text
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .collect();
    all[all.len().saturating_sub(lines)..].join(" | ")
}
