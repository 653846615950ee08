//! `cargo xtask rehearse`: the whole pipeline, locally, in one command. Builds and starts the
//! service on a fresh database, runs predeploy, smoke, overlap and report against it as the
//! environment `local`, backs up that database and drills the backup (RTO and RPO printed,
//! [`recovery`]), then the Fly half against the local Fly ([`fly`]: secrets, a deploy
//! of HEAD proven on 2 machines, smoke, overlap through the proxy, a rollback drill), and
//! stops everything it started on every exit path.

mod fly;
mod image;
pub mod recovery;

use std::path::PathBuf;
use std::time::Duration;

use anyhow::{Context, bail};
use chrono::Utc;
use rand::Rng;
use rand::distr::Alphanumeric;
use serde::Serialize;

use crate::config::{DeployConfig, Target};
use crate::local_service::{
    LocalService, ServiceSettings, build_service, build_service_with_localfly,
};
use crate::pgcluster::{PgBinaries, PgCluster};
use crate::record::{RunClock, RunRecord};
use crate::repo::Repo;
use crate::verdict::Verdict;
use crate::{overlap, predeploy, report, smoke};

/// The environment name the rehearsal's results are recorded under.
pub const LOCAL_ENVIRONMENT: &str = "local";

/// The admin address the local service allows (overlap cancels what it books with it).
const ADMIN_EMAIL: &str = "rehearsal@cabanas.example";

/// Identical pre-reserves per overlap round without `--overlap-concurrency`.
pub const DEFAULT_OVERLAP_CONCURRENCY: usize = 50;
/// Overlap rounds without `--overlap-rounds`.
pub const DEFAULT_OVERLAP_ROUNDS: u32 = 2;

/// Options of `cargo xtask rehearse`.
///
/// Exit code: the report's verdict: 0 for GO, 1 for NO-GO or INCOMPLETE, 2 when the pipeline
/// could not run (the service did not build or start).
#[derive(Debug)]
pub struct Options {
    /// Run the service on a throwaway PostgreSQL cluster instead of embedded SQLite.
    pub postgres: bool,
    /// Leave the service running after the report, until Ctrl-C.
    pub keep_running: bool,
    /// Concurrent bookings per overlap round.
    pub overlap_concurrency: usize,
    /// Overlap rounds, each on fresh dates.
    pub overlap_rounds: u32,
    /// Use this `cabanas` binary instead of building one.
    pub service_bin: Option<PathBuf>,
    /// Use this `localfly` binary (the local Fly) instead of building one.
    pub localfly_bin: Option<PathBuf>,
    /// Skip the Fly half (secrets, deploy, smoke, overlap and a rollback drill against the
    /// local Fly on 2 machines).
    pub no_fly: bool,
    /// Run the local Fly's machines as containers of this image (built by `cargo xtask
    /// image`) instead of as processes of the service binary.
    pub image: Option<String>,
    /// The command line predeploy's `docs_commands` check reads the docs with (`None`
    /// skips that check).
    pub command_line: Option<predeploy::CommandLine>,
}

/// One phase's outcome, as printed at the end.
#[derive(Debug, Clone, Serialize)]
pub struct PhaseOutcome {
    /// `predeploy`, `smoke`, `overlap`, `report`, or a `fly ...` phase.
    pub phase: &'static str,
    /// Its verdict.
    pub verdict: Verdict,
}

/// Entry point.
pub fn run(args: Options) -> anyhow::Result<Verdict> {
    let repo = Repo::discover()?;
    let config = DeployConfig::load(&repo)?;
    let workdir = repo.path("target/xtask/rehearse");
    if workdir.exists() {
        std::fs::remove_dir_all(&workdir)
            .with_context(|| format!("clearing {}", workdir.display()))?;
    }
    std::fs::create_dir_all(&workdir).with_context(|| format!("creating {}", workdir.display()))?;

    // The local Fly is built with the service when both are needed: one cargo call.
    let mut localfly_bin = args.localfly_bin.clone();
    let binary = match args.service_bin.clone() {
        Some(path) if path.is_file() => path,
        Some(path) => bail!("--service-bin {} is not a file", path.display()),
        None if !args.no_fly && localfly_bin.is_none() => {
            phase_line(
                "build",
                "cargo build --package backend --bin cabanas --package xtask --bin localfly",
            );
            let (service, localfly) = build_service_with_localfly(&repo, true)?;
            localfly_bin = localfly;
            service
        }
        None => {
            phase_line("build", "cargo build --package backend --bin cabanas");
            build_service(&repo)?
        }
    };
    let cluster = if args.postgres {
        let binaries = PgBinaries::find()
            .context("--postgres needs PostgreSQL server binaries (apt-get install postgresql)")?;
        Some(PgCluster::start(&binaries)?)
    } else {
        None
    };
    let sqlite_path = workdir.join("cabanas.db");
    let database_url = match &cluster {
        Some(cluster) => cluster.url().to_string(),
        None => format!("sqlite:{}?mode=rwc", sqlite_path.display()),
    };
    let jwt_secret: String = rand::rng()
        .sample_iter(Alphanumeric)
        .take(48)
        .map(char::from)
        .collect();
    let fly_database_url = match &cluster {
        Some(cluster) => cluster.url().to_string(),
        None => format!("sqlite:{}?mode=rwc", workdir.join("fly.db").display()),
    };
    let settings = ServiceSettings {
        binary: binary.clone(),
        database_url,
        jwt_secret: jwt_secret.clone(),
        admin_email: ADMIN_EMAIL.to_string(),
        log_file: workdir.join("service.log"),
    };
    let service = LocalService::start(&settings, Duration::from_secs(60))?;
    phase_line(
        "service",
        &format!(
            "ready at {} (pid {}, {}, log {})",
            service.url(),
            service.pid(),
            if cluster.is_some() {
                "PostgreSQL"
            } else {
                "SQLite"
            },
            settings.log_file.display()
        ),
    );

    let target = Target::named(LOCAL_ENVIRONMENT, service.url())?;
    let token = overlap::sign_admin_token(&jwt_secret, ADMIN_EMAIL, Utc::now())?;
    let mut phases = vec![PhaseOutcome {
        phase: "predeploy",
        verdict: run_predeploy(&repo, args.command_line)?,
    }];
    let mut plan = overlap::OverlapPlan::new(Some(token));
    plan.concurrency = args.overlap_concurrency;
    plan.rounds = args.overlap_rounds;
    // A backup of what smoke and overlap wrote, and a drill that restores and checks it.
    let database = match &cluster {
        Some(cluster) => recovery::LocalDatabase::Postgres(cluster.url()),
        None => recovery::LocalDatabase::Sqlite(&sqlite_path),
    };
    // Smoke, overlap, the backup and its drill against the local service.
    let local_half = || -> anyhow::Result<Vec<PhaseOutcome>> {
        let mut phases = vec![
            PhaseOutcome {
                phase: "smoke",
                verdict: run_smoke(&repo, &config, &target)?,
            },
            PhaseOutcome {
                phase: "overlap",
                verdict: run_overlap(&repo, &target, &plan)?,
            },
        ];
        phases.extend(recovery::rehearse(&repo, &database, &workdir)?);
        Ok(phases)
    };

    // The Fly half runs machines of its own, next to the service, on its own database. Its
    // rollback drill waits for auto-stop to stop a machine of the quiet app: the local half
    // runs in that wait (it never touches the Fly app), and otherwise before it.
    let mut local = None;
    let mut fly_result = Ok(Vec::new());
    if !args.no_fly {
        let fly_settings = fly::FlySettings {
            binary: &binary,
            localfly: localfly_bin.clone(),
            database_url: fly_database_url,
            jwt_secret: &jwt_secret,
            admin_email: ADMIN_EMAIL,
            image: args.image.as_deref(),
        };
        let mut while_idle = || -> anyhow::Result<()> {
            local = Some(local_half()?);
            Ok(())
        };
        fly_result = fly::rehearse(&repo, &config, &fly_settings, &mut while_idle);
    }
    // Run when the Fly half stopped early (or failed) before its quiet wait.
    let local = match local {
        Some(local) => local,
        None => local_half()?,
    };
    let fly_phases = fly_result?;
    // The summary in pipeline order, whatever order the phases ran in.
    phases.extend(local);
    phases.extend(fly_phases);

    let now = Utc::now();
    let options = report::Options {
        env: Some(LOCAL_ENVIRONMENT.to_string()),
    };
    let rendered = report::render(&repo, &options, now, repo.git_state().as_ref())?;
    let written = report::write(&rendered, repo.root(), now, false)?;
    crate::output::append_step_summary(&rendered.markdown)?;
    let go = matches!(rendered.overall, report::Overall::Go);
    phases.push(PhaseOutcome {
        phase: "report",
        verdict: if go { Verdict::Pass } else { Verdict::Fail },
    });

    crate::output::say(format_args!(""));
    for phase in &phases {
        crate::output::say(format_args!("  {:<13} {}", phase.phase, phase.verdict));
    }
    for path in &written.paths {
        crate::output::say(format_args!("report: {}", path.display()));
    }
    crate::output::say(format_args!("verdict: {}", rendered.overall.label()));
    for reason in &rendered.context.verdict.reasons {
        crate::output::say(format_args!("  - {reason}"));
    }
    let fly_failed: Vec<&str> = phases
        .iter()
        .filter(|p| p.phase.starts_with("fly") && p.verdict == Verdict::Fail)
        .map(|p| p.phase)
        .collect();
    let recovery_failed = phases
        .iter()
        .any(|p| matches!(p.phase, "backup" | "restore drill") && p.verdict == Verdict::Fail);
    if recovery_failed {
        crate::output::say(format_args!(
            "the backup or its restore drill failed (exit 1)"
        ));
    }
    if !fly_failed.is_empty() {
        crate::output::say(format_args!(
            "the Fly half failed: {} (exit 1)",
            fly_failed.join(", ")
        ));
    }

    if args.keep_running {
        crate::output::say(format_args!(
            "service left running at {}; Ctrl-C stops it",
            service.url()
        ));
        loop {
            std::thread::sleep(Duration::from_secs(3600));
        }
    }
    service.stop();
    drop(cluster);
    Ok(if go && fly_failed.is_empty() && !recovery_failed {
        Verdict::Pass
    } else {
        Verdict::Fail
    })
}

fn phase_line(phase: &str, text: &str) {
    crate::output::say(format_args!("==> {phase}: {text}"));
}

/// Ends a phase the way the task ends: its text, its record saved, its CI summary.
fn save<T: Serialize>(
    repo: &Repo,
    record: &RunRecord<T>,
    human: &str,
    summary: &str,
) -> anyhow::Result<()> {
    let ending = crate::finish::Ending {
        human,
        summary,
        save: true,
        json: false,
    };
    crate::finish::finish(repo, record, ending, &mut std::io::stdout())?;
    phase_line(&record.task, record.verdict.label());
    Ok(())
}

fn run_predeploy(
    repo: &Repo,
    command_line: Option<predeploy::CommandLine>,
) -> anyhow::Result<Verdict> {
    let clock = RunClock::start("predeploy");
    let options = predeploy::Options {
        command_line,
        ..predeploy::Options::default()
    };
    let report = predeploy::evaluate(repo, &options)?;
    let verdict = report.verdict;
    let human = predeploy::render::table(&report);
    let summary = predeploy::render::markdown(&report);
    let record = clock.finish(repo, LOCAL_ENVIRONMENT, verdict, report);
    save(repo, &record, &human, &summary)?;
    Ok(verdict)
}

fn run_smoke(repo: &Repo, config: &DeployConfig, target: &Target) -> anyhow::Result<Verdict> {
    let clock = RunClock::start("smoke");
    let plan = smoke::SmokePlan::new(&config.smoke, &config.thresholds)?;
    let report = crate::http::runtime()?.block_on(smoke::measure(target, &plan))?;
    let verdict = report.verdict;
    let human = smoke::render::human(&report);
    let summary = smoke::render::markdown(&report);
    let record = clock.finish(repo, LOCAL_ENVIRONMENT, verdict, report);
    save(repo, &record, &human, &summary)?;
    Ok(verdict)
}

fn run_overlap(
    repo: &Repo,
    target: &Target,
    plan: &overlap::OverlapPlan,
) -> anyhow::Result<Verdict> {
    let clock = RunClock::start("overlap");
    let report = crate::http::runtime()?.block_on(overlap::run_rounds(target, plan))?;
    let verdict = report.verdict;
    let human = overlap::render_text(&report);
    let summary = overlap::render_markdown(&report);
    let record = clock.finish(repo, LOCAL_ENVIRONMENT, verdict, report);
    save(repo, &record, &human, &summary)?;
    Ok(verdict)
}
