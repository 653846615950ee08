//! The local Fly: a stateful stand-in for the `flyctl` subset the deploy tasks use, whose
//! machines are real `cabanas` processes behind a local proxy. A test double only: no task
//! calls it; tests (and the rehearsal) put it in flyctl's place with `FLYCTL=<localfly>`.
//!
//! # Speaking flyctl
//!
//! The binary `localfly` (`xtask/src/bin/localfly.rs`) takes flyctl's real argv and prints
//! flyctl's JSON shapes (Go-style keys for releases and apps, the Machines API's snake_case
//! for machines), so `xtask::flyctl`'s parsers read it unchanged:
//!
//! | command | what it does |
//! | --- | --- |
//! | `version`, `auth whoami` | fixed answers |
//! | `apps list --json`, `status --app A --json` | the apps; the app with `Machines` |
//! | `secrets import --app A --stage` | NAME=VALUE on stdin (fly's import syntax), staged until the next deploy |
//! | `secrets list --app A --json` | `name`, `digest`, `status`: never a value |
//! | `deploy --app A --config fly.toml [--image REF] [--strategy S] [--wait-timeout D] [--build-arg K=V]... [--image-label L] [--remote-only] [--build-only]` | see below; `--build-only` finds the image and stops before a release |
//! | `releases --app A --json [--image]` | `Version`, `Status` (`running`/`complete`/`failed`/`interrupted`), `ImageRef`, `CreatedAt`, ... the newest 25, newest first |
//! | `machines list --app A --json` | `id`, `state`, `region`, `config.image`, `image_ref{registry,repository,tag,digest}`, `checks[{name,status,output}]`, probed now |
//! | `logs --app A --no-tail` | one page (the newest 100 lines) of every machine's output; with nothing logged, waits for a line |
//!
//! Every process (machine, proxy) is the leader of its own process group and is recorded
//! with its pid and start time, so `local down` stops whole groups and never signals a pid
//! the system has since given to another process.
//!
//! Anything else (a command, a flag) fails with a message naming it (clap, exit 2); a flyctl
//! error prints `Error: ...` and exits 1. Every call is appended to `$LOCALFLY_DIR/calls.jsonl`
//! as `{"argv": [...], "stdin": "...", "cwd": "...", "env": {"FLY_API_TOKEN": bool}}`, like
//! the recording fake's, so tests can assert that no secret value is in any argv. Only
//! `secrets import` reads stdin (as with flyctl); every other call records it empty.
//!
//! # Images, machines, deploys
//!
//! - An image is a hard link (or copy) of `$LOCALFLY_CABANAS_BIN` stored under
//!   `registry.fly.io/<app>:<--image-label or deployment-ID>` with its `--build-arg`s. Like
//!   the Dockerfile's `ARG GIT_COMMIT` + `ENV GIT_COMMIT=$GIT_COMMIT`, every build arg is in the
//!   environment of the machines started from the image, so `--build-arg GIT_COMMIT=X` makes
//!   `GET /api/v1/version` report `X` without rebuilding the service.
//! - A machine is `<image> serve` on a free loopback port, in its own process group, with the
//!   app's secrets, fly.toml's `[env]`, the build args, `FLY_APP_NAME`, `FLY_MACHINE_ID`,
//!   `FLY_REGION`, `FLY_IMAGE_REF`, `PORT` and `HOST=127.0.0.1`. All machines share the
//!   database the `DATABASE_URL` secret names (a SQLite file or the throwaway PostgreSQL).
//! - `deploy` makes the image (or finds `--image`, else fails `image not found`), creates a
//!   release (`running`), runs fly.toml's `release_command` once with the image's binary
//!   (with `RELEASE_COMMAND=1`, as Fly sets it), then replaces the app's machines
//!   (`local create-app --machines N` of them): `rolling` one at a time in place, each
//!   waiting until fly.toml's HTTP checks pass; `canary` first proves the image on one extra
//!   machine (destroyed afterwards), then rolls; `bluegreen` starts N new machines, waits for
//!   all, then destroys the old ones (or the new ones on failure); `immediate` replaces all
//!   without waiting. A machine that exits, or whose checks still fail when `--wait-timeout`
//!   (a bound per machine, as in flyctl) runs out, fails the deploy (exit 1, release
//!   `failed`) the way flyctl does; machines already replaced keep the new image (roll back
//!   with `deploy --image`).
//! - `secrets import` without `--stage` on an app with machines makes a release of the
//!   current image and replaces the machines one at a time, as flyctl does.
//! - The app's URL is its proxy, `http://127.0.0.1:<port>` (printed by `create-app`):
//!   round-robin over `started` machines whose process is alive and whose checks passed
//!   during their deploy (`immediate` does not wait, so its machines count as healthy at
//!   once), or only the machine named by a `fly-force-instance-id` header, healthy or not
//!   (503 when that machine is not running).
//!
//! # Machines as real apps have them
//!
//! - Auto-stop and auto-start (`autostop`): with the last deploy's fly.toml saying
//!   `auto_stop_machines = "stop"`, the proxy stops machines idle longer than `local
//!   create-app --idle-stop-after D` (default 5 min), keeping `min_machines_running`; with
//!   `auto_start_machines = true`, a request for a stopped machine, or for an app with no
//!   healthy one, starts one first.
//! - `local stop-machine --app A [--machine ID]` stops a machine as Fly's auto-stop does: it
//!   stays listed as `stopped`, and a rolling deploy updates its image without starting it
//!   (flyctl's `shouldSkipLaunch`).
//! - `local token-scope --app A [--reads B]...` scopes A's deploy token as `fly tokens create
//!   deploy` does: `deploy --image` of an image of an app outside the scope fails
//!   `unauthorized` (unscoped, the token reads every app's images, as an org token does).
//! - SIGINT or SIGTERM to `deploy` marks its release `interrupted` and exits 127, as flyctl.
//! - Images have sha256 digests; `deploy --image registry.fly.io/<app>@sha256:...` keeps the
//!   digest-only ref in the machines' `config.image`, as Fly does.
//! - `local add-machine --app A --kind release-command|console|machine-run [--image REF]` adds
//!   a stopped machine deploy does not manage, with Fly's metadata for that kind; deploys
//!   leave it alone. `--kind app --image REF` adds an app machine left on another image, as a
//!   rolling deploy that failed half way leaves one. `docs/architecture.md` lists which flyctl behaviours
//!   are modelled and which are not.
//!
//! # Faults
//!
//! `localfly local fault --app A <fault>` queues a fault, used once:
//! - `crash-at-start` and `checks-never-pass` are baked into the next *built* image: its
//!   binary exits when asked to serve (the release command still works), or its checks answer
//!   404 forever so the deploy times out. Redeploying that image with `--image` fails the same
//!   way; an `--image` deploy of a good image neither suffers nor uses them.
//! - `release-command-fails` (the real release command fails to open its database) and
//!   `no-release` (deploy exits 0 having made no release and touched nothing) hit the next
//!   deploy, built or `--image`.
//!
//! # Using it from a test
//!
//! ```ignore
//! use xtask::localfly::{Fault, LocalFly};
//! // In xtask's own tests: env!("CARGO_BIN_EXE_localfly"); the service binary is built
//! // with `xtask::local_service::build_service(&repo)`.
//! let fly = LocalFly::new(env!("CARGO_BIN_EXE_localfly"), cabanas_bin)?; // temp state dir
//! let url = fly.create_app("cabanas-test", 2)?;      // proxy up, no machine yet
//! let flyctl = fly.flyctl().in_dir(&repo_root);     // an xtask::flyctl::Flyctl on localfly
//! // or, for a task run as a process: command.envs(fly.env())  (FLYCTL, LOCALFLY_DIR, ...)
//! // secrets: flyctl.secrets_import(app, payload, keys, out)  with DATABASE_URL etc.
//! // deploy:  flyctl.deploy(&DeployCommand { .. }, out), then GET {url}/api/v1/version
//! fly.fault("cabanas-test", Fault::CrashAtStart)?;  // the next deploy crashes
//! let calls = fly.calls()?;                         // every argv and stdin
//! drop(fly);                                        // `local down`: nothing left running
//! ```
//!
//! The proxy is written on axum (already compiled for the service, so a normal dependency of
//! xtask costs no build time) plus reqwest for forwarding: a handful of lines instead of an
//! HTTP/1 parser.

pub mod admin;
pub mod autostop;
pub mod cli;
pub mod commands;
pub mod container;
pub mod deploy;
pub mod fly_toml;
pub mod machine;
pub mod output;
pub mod placement;
pub mod proxy;
pub mod regions;
pub mod replay;
pub mod rollout;
pub mod state;

use std::ffi::OsString;
use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{Context, bail};

pub use deploy::CABANAS_BIN_ENV;
pub use proxy::FORCE_INSTANCE;
pub use state::{App, DIR_ENV, Fault, MachineKind, StateDir};

use crate::flyctl::Flyctl;
use crate::repo::Repo;

/// A local Fly in a temp state directory. Dropping it runs `local down`: every machine and
/// proxy it started is stopped.
pub struct LocalFly {
    dir: tempfile::TempDir,
    program: PathBuf,
    cabanas: PathBuf,
    container_image: Option<String>,
}

/// One recorded call of the local Fly.
#[derive(Debug, Clone, serde::Deserialize)]
pub struct RecordedCall {
    /// The argv after the program name.
    pub argv: Vec<String>,
    /// What the call read on stdin.
    pub stdin: String,
}

impl LocalFly {
    /// A local Fly run by the `localfly` binary at `program`, building images from the
    /// `cabanas` binary at `cabanas`.
    pub fn new(
        program: impl Into<PathBuf>,
        cabanas: impl Into<PathBuf>,
    ) -> anyhow::Result<LocalFly> {
        let dir = tempfile::Builder::new()
            .prefix("localfly-")
            .tempdir()
            .context("creating the local Fly's state directory")?;
        Ok(LocalFly {
            dir,
            program: program.into(),
            cabanas: cabanas.into(),
            container_image: None,
        })
    }

    /// Machines (and the release command) run as containers of image `tag`
    /// ([`container`]), not as processes of the `cabanas` binary.
    pub fn with_container_image(mut self, tag: &str) -> LocalFly {
        self.container_image = Some(tag.to_string());
        self
    }

    /// The state directory (`$LOCALFLY_DIR`).
    pub fn dir(&self) -> &Path {
        self.dir.path()
    }

    /// The `localfly` binary.
    pub fn program(&self) -> &Path {
        &self.program
    }

    /// What a process needs to use this local Fly as its flyctl: `FLYCTL`, `LOCALFLY_DIR`,
    /// `LOCALFLY_CABANAS_BIN` (and `LOCALFLY_CONTAINER_IMAGE` when machines are containers).
    pub fn env(&self) -> Vec<(&'static str, OsString)> {
        let mut env = vec![
            ("FLYCTL", self.program.clone().into_os_string()),
            (DIR_ENV, self.dir().as_os_str().to_owned()),
            (CABANAS_BIN_ENV, self.cabanas.clone().into_os_string()),
        ];
        if let Some(tag) = &self.container_image {
            env.push((container::IMAGE_VAR, tag.into()));
        }
        env
    }

    /// An [`xtask::flyctl::Flyctl`](crate::flyctl::Flyctl) that runs this local Fly.
    pub fn flyctl(&self) -> Flyctl {
        self.env()
            .into_iter()
            .filter(|(key, _)| *key != "FLYCTL")
            .fold(Flyctl::at(&self.program, false), |f, (k, v)| {
                f.with_env(k, v)
            })
    }

    /// A `localfly` command with this local Fly's environment.
    pub fn command(&self) -> Command {
        let mut command = Command::new(&self.program);
        command.envs(self.env());
        command
    }

    fn run(&self, args: &[&str]) -> anyhow::Result<String> {
        let output = self
            .command()
            .args(args)
            .stdin(std::process::Stdio::null())
            .output()
            .with_context(|| format!("running {}", self.program.display()))?;
        if !output.status.success() {
            bail!(
                "localfly {} failed: {}",
                args.join(" "),
                String::from_utf8_lossy(&output.stderr).trim()
            );
        }
        Ok(String::from_utf8_lossy(&output.stdout).into_owned())
    }

    /// Creates `app` with `machines` machines per deploy and starts its proxy; returns the
    /// app's URL (`http://127.0.0.1:<port>`).
    pub fn create_app(&self, app: &str, machines: usize) -> anyhow::Result<String> {
        let machines = machines.to_string();
        let out = self.run(&["local", "create-app", "--app", app, "--machines", &machines])?;
        Ok(out.trim().to_string())
    }

    /// Like [`create_app`](Self::create_app), with auto-stop (when fly.toml asks for it)
    /// stopping a machine after `idle` without a proxied request.
    pub fn create_app_idle_stop(
        &self,
        app: &str,
        machines: usize,
        idle: std::time::Duration,
    ) -> anyhow::Result<String> {
        let machines = machines.to_string();
        let idle = format!("{}ms", idle.as_millis());
        let out = self.run(&[
            "local",
            "create-app",
            "--app",
            app,
            "--machines",
            &machines,
            "--idle-stop-after",
            &idle,
        ])?;
        Ok(out.trim().to_string())
    }

    /// Scopes `app`'s deploy token to itself and `reads`: its deploys may pull only those
    /// apps' images.
    pub fn token_scope(&self, app: &str, reads: &[&str]) -> anyhow::Result<()> {
        let mut args = vec!["local", "token-scope", "--app", app];
        for other in reads {
            args.extend(["--reads", other]);
        }
        self.run(&args).map(drop)
    }

    /// Makes the next deploy of `app` suffer `fault`.
    pub fn fault(&self, app: &str, fault: Fault) -> anyhow::Result<()> {
        let name = serde_json::to_value(fault)?;
        self.run(&[
            "local",
            "fault",
            "--app",
            app,
            name.as_str().unwrap_or_default(),
        ])
        .map(drop)
    }

    /// Stops one started machine of `app` as Fly's auto-stop does; returns its id.
    pub fn stop_machine(&self, app: &str) -> anyhow::Result<String> {
        let out = self.run(&["local", "stop-machine", "--app", app])?;
        Ok(out
            .trim()
            .trim_start_matches("stopped machine ")
            .to_string())
    }

    /// Adds a stopped machine of `kind` (on `image`, else the app's current one); returns
    /// its id.
    pub fn add_machine(
        &self,
        app: &str,
        kind: MachineKind,
        image: Option<&str>,
    ) -> anyhow::Result<String> {
        let name = serde_json::to_value(kind)?;
        let mut args = vec![
            "local",
            "add-machine",
            "--app",
            app,
            "--kind",
            name.as_str().unwrap_or_default(),
        ];
        if let Some(image) = image {
            args.extend(["--image", image]);
        }
        let out = self.run(&args)?;
        Ok(out.trim().trim_start_matches("added machine ").to_string())
    }

    /// The app's state now (machines with ports and pids, releases, images).
    pub fn app(&self, app: &str) -> anyhow::Result<App> {
        StateDir::at(self.dir()).load(app)
    }

    /// Every call made so far, oldest first.
    pub fn calls(&self) -> anyhow::Result<Vec<RecordedCall>> {
        let path = self.dir().join("calls.jsonl");
        let text = std::fs::read_to_string(&path).unwrap_or_default();
        text.lines()
            .map(|line| {
                serde_json::from_str(line).with_context(|| format!("reading {}", path.display()))
            })
            .collect()
    }

    /// The process ids of every running machine and proxy (leaders of their groups).
    pub fn pids(&self) -> Vec<u32> {
        let dir = StateDir::at(self.dir());
        dir.app_names()
            .iter()
            .filter_map(|name| dir.load(name).ok())
            .flat_map(|app| {
                let machines: Vec<u32> = app.machines.values().filter_map(|m| m.pid).collect();
                machines.into_iter().chain(app.proxy_pid)
            })
            .collect()
    }

    /// `local down`: stops every machine and proxy.
    pub fn down(&self) -> anyhow::Result<()> {
        self.run(&["local", "down"]).map(drop)
    }
}

impl Drop for LocalFly {
    fn drop(&mut self) {
        if let Err(error) = self.down() {
            eprintln!("local Fly: {error:#}");
        }
    }
}

/// Builds the `localfly` binary (debug profile) and returns its path, for callers outside
/// xtask's own tests (which use `CARGO_BIN_EXE_localfly`).
pub fn build(repo: &Repo) -> anyhow::Result<PathBuf> {
    let sh = xshell::Shell::new()?;
    crate::repo::nested_cargo(&sh, repo)
        .args([
            "build",
            "--quiet",
            "--package",
            "xtask",
            "--bin",
            "localfly",
        ])
        .run()
        .context("building the local Fly (cargo build --package xtask --bin localfly)")?;
    let binary = crate::local_service::service_path(repo).with_file_name("localfly");
    if !binary.is_file() {
        bail!(
            "the local Fly was built but {} is missing",
            binary.display()
        );
    }
    Ok(binary)
}
