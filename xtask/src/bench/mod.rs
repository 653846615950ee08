//! `cargo xtask bench`: makes `docs/benchmarks.md` reproducible.
//!
//! Builds the release binaries, starts the service (embedded SQLite, or a throwaway
//! PostgreSQL cluster with fsync on under `--postgres`) and the bare `hello` example, then runs
//! the comparisons of [`plan`] interleaved: round 1 of every client, then round 2, ... Each
//! client runs as a child process reaped with `wait4`, so its CPU time and peak memory are
//! recorded next to its figures. The result is plain data ([`results`]), saved as JSON under
//! `target/xtask/bench/` and rendered as Markdown ([`render`]) on stdout, and with `--write`
//! between the `<!-- bench:begin -->` and `<!-- bench:end -->` markers of a file.
//!
//! It is a benchmark, not a test: nothing here holds a speed against a limit. Exit 0 when it
//! measured, 2 when it could not run (build failed, service did not start, bad flags).

pub mod affinity;
pub mod client;
pub mod cpu;
pub mod machine;
pub mod plan;
pub mod render;
pub mod results;
mod servers;

use std::path::PathBuf;
use std::time::Duration;

use anyhow::{Context, bail};

use crate::repo::Repo;
use crate::verdict::Verdict;
use results::{BenchResult, RunOutcome};

/// Runs of each comparison without `--runs`.
pub const DEFAULT_RUNS: u32 = 3;
/// How long each run measures without `--duration`.
pub const DEFAULT_DURATION: Duration = Duration::from_secs(10);
/// The open model's high rate without `--high-rate`, in requests per second.
pub const DEFAULT_HIGH_RATE: f64 = 15_000.0;

/// Options of `cargo xtask bench`.
#[derive(Debug, Clone)]
pub struct Options {
    /// Rounds: every client runs once per round, round after round.
    pub runs: u32,
    /// How long each client run lasts, e.g. 10s (whole seconds for wrk and pgbench).
    pub duration: Duration,
    /// Serve from a throwaway PostgreSQL cluster (fsync on) and add the pre-reserve
    /// comparison against the pgbench ceiling.
    pub postgres: bool,
    /// Run only this comparison (repeatable): healthz, open, service, layers, prereserve,
    /// pinned.
    pub only: Vec<String>,
    /// The open model's high rate, in requests per second.
    pub high_rate: f64,
    /// Also write the tables into this Markdown file, between its `<!-- bench:begin -->` and
    /// `<!-- bench:end -->` lines, e.g. docs/benchmarks.md.
    pub write: Option<PathBuf>,
    /// Use the release binaries already built instead of building them first.
    pub no_build: bool,
}

/// Runs the benchmark: exit 0 once it measured, 2 when it could not run.
pub fn run(args: Options) -> anyhow::Result<Verdict> {
    if args.runs == 0 {
        bail!("--runs must be at least 1");
    }
    if args.duration < Duration::from_secs(1) {
        bail!("--duration must be at least 1s (wrk and pgbench take whole seconds)");
    }
    if !(args.high_rate.is_finite() && args.high_rate > 0.0) {
        bail!("--high-rate must be a positive number of requests per second");
    }
    if let Some(name) = args
        .only
        .iter()
        .find(|o| *o == "prereserve" || *o == "pinned")
        && !args.postgres
    {
        bail!("the {name} comparison runs on PostgreSQL: add --postgres");
    }
    let repo = Repo::discover()?;
    let write = args.write.as_ref().map(|p| repo.root().join(p));
    if let Some(path) = &write {
        // Fail before minutes of measuring, not after.
        let text = std::fs::read_to_string(path)
            .with_context(|| format!("reading {} (--write)", path.display()))?;
        render::replace_between_markers(&text, "")
            .with_context(|| format!("{} (--write)", path.display()))?;
    }
    let started_at = chrono::Utc::now();
    let pg = crate::pgcluster::PgBinaries::find();
    let tools = machine::Tools::find(pg.as_ref().map(|b| b.dir()));
    let machine = machine::Machine::describe(&tools);
    let binaries = servers::Binaries::locate(&repo);
    if !args.no_build {
        servers::build(&repo, &binaries)?;
    }
    binaries.check()?;

    let out = repo.path(format!(
        "target/xtask/bench/{}",
        started_at.format("%Y%m%dT%H%M%SZ")
    ));
    std::fs::create_dir_all(&out).with_context(|| format!("creating {}", out.display()))?;
    let running = servers::start(&repo, &binaries, &tools, args.postgres, &out)?;
    let inputs = plan::Inputs {
        xtask: binaries.xtask.clone(),
        tools: &tools,
        root: repo.root(),
        duration: args.duration,
        high_rate: args.high_rate,
        hello_missing: running.hello_missing.clone(),
        stack: binaries.stack_status(),
        cpus: std::thread::available_parallelism().map_or(1, |n| n.get()),
    };
    let mut planned = plan::comparisons(&args.only, &running.targets, &inputs);
    // Smoke saves a record per run: keep them out of the repository's own records.
    let scratch = tempfile::tempdir().context("creating a scratch workspace for smoke")?;
    std::fs::write(
        scratch.path().join("Cargo.toml"),
        "[workspace]\nmembers = []\n",
    )
    .context("writing the scratch workspace")?;

    for round in 1..=args.runs {
        for p in &mut planned {
            for (index, command) in p.commands.iter().enumerate() {
                let Some(command) = command else { continue };
                // The arguments first: a run that cannot be made (a held rate whose source
                // failed) leaves the database as it is.
                let client_args = match command.args_for_round(&p.comparison.contestants, round) {
                    Ok(client_args) => client_args,
                    Err(reason) => {
                        let contestant = &mut p.comparison.contestants[index];
                        eprintln!(
                            "round {round}/{}: {}: not run: {reason}",
                            args.runs, contestant.label
                        );
                        contestant.runs.push(RunOutcome::Failed { reason });
                        continue;
                    }
                };
                if command.reset_bookings {
                    running.reset_bookings()?;
                }
                let contestant = &mut p.comparison.contestants[index];
                let stem = format!("{}-{index}-round{round}", p.comparison.id);
                // Unpinned again when `pinned` drops, whatever the run's outcome.
                let pinned = command.pin.map(|pin| running.pin(pin)).transpose()?;
                let servers_before = running.server_cpu();
                let finished = client::run_measured(
                    &command.program,
                    &client_args,
                    &command.env,
                    command.pin.map(|pin| affinity::Cpus::one(pin.rest)),
                    scratch.path(),
                    &out,
                    &stem,
                );
                let servers = servers_before.until(&running.server_cpu());
                let servers_affinity = pinned.as_ref().map(|p| p.affinity.clone());
                drop(pinned);
                let outcome = match finished {
                    Ok(finished) => match (command.parse)(&finished.stdout) {
                        Ok(mut run) => {
                            run.cpu_s = finished.cpu_s;
                            run.max_rss_kib = finished.max_rss_kib;
                            run.exit = finished.exit;
                            run.server_cpu_s = match command.server {
                                plan::Server::Service => servers.service,
                                plan::Server::Hello => servers.hello,
                                plan::Server::Database | plan::Server::InProcess => None,
                            };
                            run.database_cpu_s = servers.database;
                            run.affinity = servers_affinity.map(|mut a| {
                                a.client = finished.affinity.clone();
                                a
                            });
                            RunOutcome::Measured(Box::new(run))
                        }
                        Err(error) => RunOutcome::Failed {
                            reason: format!(
                                "{error:#} (exit {:?}; output in {})",
                                finished.exit,
                                out.join(format!("{stem}.out")).display()
                            ),
                        },
                    },
                    Err(error) => RunOutcome::Failed {
                        reason: format!("{error:#}"),
                    },
                };
                eprintln!(
                    "round {round}/{}: {}: {}",
                    args.runs,
                    contestant.label,
                    progress_line(&outcome)
                );
                contestant.runs.push(outcome);
            }
        }
    }
    drop(running);

    let result = BenchResult {
        started_at: started_at.format("%Y-%m-%d %H:%M UTC").to_string(),
        machine,
        runs: args.runs,
        duration_s: args.duration.as_secs_f64(),
        database: if args.postgres {
            "postgresql"
        } else {
            "sqlite"
        }
        .into(),
        comparisons: planned.into_iter().map(|p| p.comparison).collect(),
    };
    let raw = out.join("result.json");
    std::fs::write(&raw, serde_json::to_string_pretty(&result)?)
        .with_context(|| format!("writing {}", raw.display()))?;
    let markdown = render::markdown(&result);
    println!("{markdown}");
    eprintln!("raw results: {}", raw.display());
    if let Some(path) = &write {
        let text =
            std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
        let updated = render::replace_between_markers(&text, &markdown)?;
        std::fs::write(path, updated).with_context(|| format!("writing {}", path.display()))?;
        eprintln!("wrote {}", path.display());
    }
    Ok(Verdict::Pass)
}

fn progress_line(outcome: &RunOutcome) -> String {
    match outcome {
        RunOutcome::Measured(run) => format!(
            "{} req/s, p50 {} ms, CPU {} s, max RSS {} MB",
            render::num(run.rps),
            run.p50_ms.map_or("-".into(), render::num),
            render::num(run.cpu_s),
            render::num(run.max_rss_kib as f64 / 1024.0)
        ),
        RunOutcome::Failed { reason } => format!("no figures: {reason}"),
    }
}
