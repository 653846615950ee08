//! What the benchmark loads: the release build, `cabanas serve` (SQLite, or PostgreSQL with
//! fsync on), the bare `hello` example, and the pre-reserve database setup.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use rand::Rng;
use rand::distr::Alphanumeric;
use xshell::{Shell, cmd};

use super::machine::Tools;
use super::plan::Targets;
use crate::interrupt::{self, CleanupGuard};
use crate::local_service::{LocalService, ServiceSettings};
use crate::pgcluster::{Durability, PgBinaries, PgCluster};
use crate::repo::Repo;

/// The bare server's source; the service comparison names it when it is absent.
const HELLO_SOURCE: &str = "backend/examples/hello.rs";
/// The in-process stack measurement's source; the layers comparison names it when absent.
pub const STACK_SOURCE: &str = "backend/examples/stack.rs";

/// The release binaries the benchmark runs.
#[derive(Debug, Clone)]
pub struct Binaries {
    /// `target/release/cabanas`.
    pub cabanas: PathBuf,
    /// `target/release/examples/hello`.
    pub hello: PathBuf,
    /// `target/release/examples/stack` (built with `hello`, from the same directory).
    pub stack: PathBuf,
    /// `target/release/xtask`.
    pub xtask: PathBuf,
    /// Whether `backend/examples/hello.rs` exists (else the bare server is left out).
    pub hello_source_exists: bool,
    /// Whether `backend/examples/stack.rs` exists (else the layers comparison is left out).
    pub stack_source_exists: bool,
}

impl Binaries {
    /// Where cargo puts the release binaries (`$CARGO_TARGET_DIR` respected).
    pub fn locate(repo: &Repo) -> Binaries {
        let target = crate::local_service::target_dir(repo).join("release");
        Binaries {
            cabanas: target.join("cabanas"),
            hello: target.join("examples").join("hello"),
            stack: target.join("examples").join("stack"),
            xtask: target.join("xtask"),
            hello_source_exists: repo.path(HELLO_SOURCE).is_file(),
            stack_source_exists: repo.path(STACK_SOURCE).is_file(),
        }
    }

    /// The in-process stack measurement, or why it cannot run.
    pub fn stack_status(&self) -> Result<PathBuf, String> {
        example(&self.stack, STACK_SOURCE, self.stack_source_exists)
    }

    /// The bare server, or why it cannot run.
    fn hello_status(&self) -> Result<PathBuf, String> {
        example(&self.hello, HELLO_SOURCE, self.hello_source_exists)
    }

    /// Fails, naming the build command, when a binary the benchmark needs is missing.
    pub fn check(&self) -> anyhow::Result<()> {
        for binary in [&self.cabanas, &self.xtask] {
            if !binary.is_file() {
                bail!(
                    "{} is missing: build it with `cargo build --release -p backend -p xtask \
                     --bin cabanas --bin xtask` (or run without --no-build)",
                    binary.display()
                );
            }
        }
        Ok(())
    }
}

/// A release example at `binary` built from `source`, or why it cannot run, with the fix.
fn example(binary: &Path, source: &str, source_exists: bool) -> Result<PathBuf, String> {
    let name = binary.file_name().map_or_else(
        || binary.display().to_string(),
        |n| n.to_string_lossy().into_owned(),
    );
    if !source_exists {
        Err(format!("{source} is missing"))
    } else if !binary.is_file() {
        Err(format!(
            "{} is not built: `cargo build --release -p backend --example {name}`",
            binary.display()
        ))
    } else {
        Ok(binary.to_path_buf())
    }
}

/// `cargo build --release -p backend -p xtask --bin cabanas --bin xtask --example hello
/// --example stack` (target flags apply to every package named, so each binary is named).
pub fn build(repo: &Repo, binaries: &Binaries) -> anyhow::Result<()> {
    let sh = Shell::new()?;
    let mut examples = Vec::new();
    for (name, exists) in [
        ("hello", binaries.hello_source_exists),
        ("stack", binaries.stack_source_exists),
    ] {
        if exists {
            examples.extend(["--example", name]);
        }
    }
    crate::repo::nested_cargo(&sh, repo)
        .args(["build", "--release", "-p", "backend", "-p", "xtask"])
        .args(["--bin", "cabanas", "--bin", "xtask"])
        .args(examples)
        .run()
        .context(
            "building the release binaries \
             (cargo build --release -p backend -p xtask --bin cabanas --bin xtask --example hello \
             --example stack)",
        )
}

/// The running targets; dropping it stops the service, the bare server and the database.
pub struct Running {
    /// Where each target listens.
    pub targets: Targets,
    /// Why the bare server is not running, when it is not.
    pub hello_missing: Option<String>,
    psql: Option<PathBuf>,
    // Dropped in field order: servers first, then the database they use.
    hello: Option<BareServer>,
    service: LocalService,
    cluster: Option<PgCluster>,
}

/// CPU seconds used so far by each server: the service, the bare server, the database.
#[derive(Debug, Clone, Copy, Default)]
pub struct ServerCpu {
    pub service: Option<f64>,
    pub hello: Option<f64>,
    pub database: Option<f64>,
}

impl ServerCpu {
    /// What each server used between `self` and `later`.
    pub fn until(&self, later: &ServerCpu) -> ServerCpu {
        let spent = |a: Option<f64>, b: Option<f64>| Some((b? - a?).max(0.0));
        ServerCpu {
            service: spent(self.service, later.service),
            hello: spent(self.hello, later.hello),
            database: spent(self.database, later.database),
        }
    }
}

impl Running {
    /// Reads the CPU time each server has used so far.
    pub fn server_cpu(&self) -> ServerCpu {
        ServerCpu {
            service: super::cpu::process_seconds(self.service.pid()),
            hello: self
                .hello
                .as_ref()
                .and_then(|h| super::cpu::process_seconds(h.child.id())),
            database: self
                .cluster
                .as_ref()
                .and_then(PgCluster::postmaster_pid)
                .and_then(super::cpu::tree_seconds),
        }
    }

    /// Pins PostgreSQL (the postmaster and every backend; later backends inherit it) to
    /// `pin.database` and the service to `pin.rest` until the guard drops, and reads back
    /// what the kernel applied.
    pub fn pin(&self, pin: super::plan::Pin) -> anyhow::Result<Pinned<'_>> {
        use super::affinity::{Cpus, allowed, pin_process, pin_tree};
        let postmaster = self
            .cluster
            .as_ref()
            .and_then(PgCluster::postmaster_pid)
            .context("a pinned run needs the PostgreSQL cluster (--postgres)")?;
        let service = self.service.pid();
        // Made first, so that a failure half-way unpins what was pinned.
        let mut guard = Pinned {
            running: self,
            affinity: super::client::Affinity::default(),
        };
        pin_tree(postmaster, Cpus::one(pin.database)).with_context(|| {
            format!(
                "pinning PostgreSQL (pid {postmaster}) to CPU {}",
                pin.database
            )
        })?;
        pin_process(service, Cpus::one(pin.rest))
            .with_context(|| format!("pinning the service (pid {service}) to CPU {}", pin.rest))?;
        guard.affinity.service = allowed(service);
        guard.affinity.database = allowed(postmaster);
        Ok(guard)
    }

    /// Lets every server run on every CPU again.
    fn unpin(&self) {
        use super::affinity::{Cpus, pin_process, pin_tree};
        let all = Cpus::first(
            std::thread::available_parallelism().map_or(1, std::num::NonZeroUsize::get),
        );
        if let Some(postmaster) = self.cluster.as_ref().and_then(PgCluster::postmaster_pid)
            && let Err(e) = pin_tree(postmaster, all)
        {
            eprintln!("warning: PostgreSQL stays pinned: {e}");
        }
        if let Err(e) = pin_process(self.service.pid(), all) {
            eprintln!("warning: the service stays pinned: {e}");
        }
    }

    /// Empties the tables pre-reserve fills (named in docs/bench/prereserve-setup.sql), so
    /// every run starts from the same state.
    pub fn reset_bookings(&self) -> anyhow::Result<()> {
        let (Some(psql), Some(url)) = (&self.psql, &self.targets.database) else {
            return Ok(());
        };
        let sh = Shell::new()?;
        cmd!(
            sh,
            "{psql} -q -v ON_ERROR_STOP=1 -c 'TRUNCATE reservations, idempotency_keys;' {url}"
        )
        .quiet()
        .ignore_stdout()
        .run()
        .context("emptying the booking tables between pre-reserve runs (psql)")
    }
}

/// The servers pinned for one run; unpinned when dropped.
pub struct Pinned<'a> {
    running: &'a Running,
    /// What `/proc` reported once the servers were pinned.
    pub affinity: super::client::Affinity,
}

impl Drop for Pinned<'_> {
    fn drop(&mut self) {
        self.running.unpin();
    }
}

/// Starts the database (with `postgres`), the service and the bare server.
pub fn start(
    repo: &Repo,
    binaries: &Binaries,
    tools: &Tools,
    postgres: bool,
    out: &Path,
) -> anyhow::Result<Running> {
    let secret: String = rand::rng()
        .sample_iter(&Alphanumeric)
        .take(48)
        .map(char::from)
        .collect();
    let (cluster, database_url) = if postgres {
        let pg = PgBinaries::find().context(
            "--postgres needs the PostgreSQL server binaries (initdb, pg_ctl, postgres): \
             apt-get install postgresql, or set PG_BIN_DIR",
        )?;
        let cluster = PgCluster::start_with(&pg, Durability::On)?;
        let url = cluster.url().to_string();
        (Some(cluster), url)
    } else {
        let db = out.join("cabanas.db");
        (None, format!("sqlite:{}?mode=rwc", db.display()))
    };
    let settings = ServiceSettings {
        binary: binaries.cabanas.clone(),
        database_url: database_url.clone(),
        jwt_secret: secret,
        admin_email: "bench@example.com".into(),
        log_file: out.join("service.log"),
    };
    let psql = if postgres {
        let psql = tools.psql.clone().map_err(anyhow::Error::msg)?;
        prepare_prereserve(repo, &settings, &psql)?;
        Some(psql)
    } else {
        None
    };
    let clients = super::plan::PRERESERVE_CLIENTS.to_string();
    let mut env = vec![
        ("RUST_LOG", "warn"),
        // The per-client limiter would answer 429 to every load client.
        ("RATE_LIMIT_PER_MINUTE", "0"),
        // Enough nights that non-conflicting bookings never run out.
        ("BOOKING_HORIZON_DAYS", "36500"),
    ];
    if postgres {
        // As many database connections as pgbench's ceiling gets, so the comparison is of
        // the work per booking and not of the pool size (the default is 10).
        env.push(("DATABASE_MAX_CONNECTIONS", clients.as_str()));
    }
    let service = LocalService::start_with_env(&settings, &env, Duration::from_secs(60))?;
    let (hello, hello_missing) = match binaries.hello_status() {
        Ok(binary) => (Some(BareServer::start(&binary, out)?), None),
        Err(missing) => (None, Some(missing)),
    };
    Ok(Running {
        targets: Targets {
            service: service.url().to_string(),
            hello: hello.as_ref().map(|h| h.url.clone()),
            database: postgres.then_some(database_url),
        },
        hello_missing,
        psql,
        hello,
        service,
        cluster,
    })
}

/// Migrates, seeds and runs docs/bench/prereserve-setup.sql before the service starts, so
/// the service sees accommodations 1..30 from its first request.
fn prepare_prereserve(repo: &Repo, settings: &ServiceSettings, psql: &Path) -> anyhow::Result<()> {
    let sh = Shell::new()?;
    let binary = &settings.binary;
    for step in ["migrate", "seed-demo"] {
        cmd!(sh, "{binary} {step}")
            .env("DATABASE_URL", &settings.database_url)
            .env("JWT_SECRET", &settings.jwt_secret)
            .env("ADMIN_ALLOWED_EMAILS", &settings.admin_email)
            .env("RUST_LOG", "warn")
            .quiet()
            .ignore_stdout()
            .run()
            .with_context(|| format!("`{} {step}` failed", binary.display()))?;
    }
    let setup = repo.path("docs/bench/prereserve-setup.sql");
    if !setup.is_file() {
        bail!(
            "{} is missing: the pre-reserve comparison needs it",
            setup.display()
        );
    }
    let url = &settings.database_url;
    cmd!(sh, "{psql} -q -v ON_ERROR_STOP=1 -f {setup} {url}")
        .quiet()
        .ignore_stdout()
        .run()
        .with_context(|| format!("running {} (psql)", setup.display()))
}

/// The bare `hello` example on a free loopback port.
struct BareServer {
    child: Child,
    url: String,
    _interrupt: CleanupGuard,
}

impl BareServer {
    fn start(binary: &Path, out: &Path) -> anyhow::Result<BareServer> {
        let port = crate::ports::free_port()?;
        let log = std::fs::File::create(out.join("hello.log"))
            .with_context(|| format!("creating {}", out.join("hello.log").display()))?;
        let child = Command::new(binary)
            .env("HOST", "127.0.0.1")
            .env("PORT", port.to_string())
            .stdin(Stdio::null())
            .stdout(log.try_clone()?)
            .stderr(log)
            .spawn()
            .with_context(|| format!("starting {}", binary.display()))?;
        let pid = child.id();
        let server = BareServer {
            child,
            url: format!("http://127.0.0.1:{port}"),
            _interrupt: interrupt::on_interrupt(move || interrupt::terminate(pid)),
        };
        let deadline = Instant::now() + Duration::from_secs(20);
        while Instant::now() < deadline {
            if std::net::TcpStream::connect(("127.0.0.1", port)).is_ok() {
                return Ok(server);
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        bail!(
            "{} did not listen on 127.0.0.1:{port} within 20 s; its log: {}",
            binary.display(),
            out.join("hello.log").display()
        )
    }
}

impl Drop for BareServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
