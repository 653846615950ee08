//! `cargo xtask overlap`: proves on a running service that the anti-double-booking guarantee
//! holds under real concurrency.
//!
//! N identical pre-reserves are released at one instant; exactly one must get 201, the other
//! N-1 must get 409 `date_overlap`, and nothing else may happen. Availability must then show
//! exactly one active booking on the window, a stay starting on its check-out must be
//! accepted, and one overlapping it by a night refused. Every reservation the run created is
//! cancelled afterwards with an admin token, and no other reservation is touched.
//!
//! It books its own test-fixture cabin (`overlap-check`, found or created through the admin
//! API), so a fresh app with an empty database can be proven, and no guest ever sees or meets
//! its bookings. They do not pile up: every one is cancelled at the end of its round, and
//! each round picks a random free window 180-545 days ahead.
//!
//! Verdict: Fail (exit 1) when the invariant or a check fails in any round; Warn (exit 0)
//! when it held but some reservation this run created could not be cancelled (listed by
//! code, so an operator can cancel it), or cleanup was switched off; else Pass.
//!
//! Layout: [`run_rounds`] measures and returns an [`OverlapReport`]; `render` turns a report
//! into text; [`run`] wires flags, the record and the output together.

pub mod admin;
mod api;
mod channel;
mod judge;
mod ledger;
mod plan;
mod race;
mod render;
mod report;
mod rounds;

use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{Context, bail};
use chrono::NaiveDate;

pub use admin::{AdminToken, sign as sign_admin_token, token_from_env_file};
pub use api::Stay;
pub use judge::{
    DATE_OVERLAP, LatencySummary, OtherGroup, Outcome, RequestOutcome, RoundVerdict, judge_round,
};
pub use plan::{OverlapPlan, new_run_id};
pub use render::junit_suite;
pub use render::{markdown as render_markdown, text as render_text};
pub use report::ChannelRound;
pub use report::{Check, CleanupFailure, CleanupReport, OverlapReport, RoundReport, probe};
pub use rounds::run_rounds;

use crate::config::{DeployConfig, Target};
use crate::output::Output;
use crate::record::RunClock;
use crate::repo::Repo;
use crate::verdict::Verdict;

/// The environment variable that allows mutating tasks without `--mutating`.
pub const RUN_MUTATING_VAR: &str = "RUN_MUTATING";

/// Options of `cargo xtask overlap`.
#[derive(Debug, Clone)]
pub struct Options {
    /// Environment from ops/deploy.toml to run against (its URL and env file).
    pub env: Option<String>,
    /// Base URL to run against instead of (or overriding) the environment's.
    pub url: Option<String>,
    /// Allow creating reservations on the target (required; or set RUN_MUTATING=1).
    pub mutating: bool,
    /// N: identical pre-reserves released together per round.
    pub concurrency: usize,
    /// How many rounds, each on a fresh window: a race can pass by luck once.
    pub rounds: u32,
    /// Accommodation to book; default: overlap's own test-fixture cabin `overlap-check`,
    /// found or created with the admin token (never listed, never bookable by a guest);
    /// with `--no-cleanup` and no token, the first one listed.
    pub accommodation_id: Option<i64>,
    /// First night (YYYY-MM-DD); with --check-out. Default: a free window 180+ days ahead.
    pub check_in: Option<NaiveDate>,
    /// Departure day (YYYY-MM-DD); with --check-in.
    pub check_out: Option<NaiveDate>,
    /// Nights of the random window (1-30); default: 2-4 at random.
    pub nights: Option<u32>,
    /// Admin bearer token used to cancel what the run created. Default: one signed with the
    /// env file's JWT_SECRET. Prefer the environment variable to the flag.
    pub admin_token: Option<String>,
    /// Env file holding JWT_SECRET and ADMIN_ALLOWED_EMAILS; default: the environment's.
    pub env_file: Option<PathBuf>,
    /// Leave the created reservations active (the verdict is then at best WARN).
    pub no_cleanup: bool,
    /// Per-request timeout (e.g. 30s, 2m).
    pub timeout: Duration,
    /// Also run the cross-channel round (an imported calendar block raced by N bookings).
    pub cross_channel: bool,
    /// Regions the N bookings enter through, in turn (`fly-prefer-region`); empty: any.
    pub regions: Vec<String>,
}

/// Identical pre-reserves per round without `--concurrency`.
pub const DEFAULT_CONCURRENCY: usize = 10;
/// Rounds without `--rounds`.
pub const DEFAULT_ROUNDS: u32 = 1;
/// The per-request timeout without `--timeout`.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(30);

impl Options {
    /// The options of `cargo xtask overlap --env ENV --mutating`.
    pub fn mutating_against(env: &str) -> Options {
        Options {
            env: Some(env.to_string()),
            url: None,
            mutating: true,
            concurrency: DEFAULT_CONCURRENCY,
            rounds: DEFAULT_ROUNDS,
            accommodation_id: None,
            check_in: None,
            check_out: None,
            nights: None,
            admin_token: None,
            env_file: None,
            no_cleanup: false,
            regions: Vec::new(),
            timeout: DEFAULT_TIMEOUT,
            cross_channel: false,
        }
    }
}

/// Whether mutating tasks are allowed by the flag or by `RUN_MUTATING=1`.
fn mutating_allowed(flag: bool) -> bool {
    flag || std::env::var(RUN_MUTATING_VAR).is_ok_and(|v| matches!(v.trim(), "1" | "true" | "yes"))
}

/// Entry point: checks the flags, resolves target and admin token, runs the rounds, prints,
/// records. Refuses (exit 2, nothing sent) without `--mutating` or `RUN_MUTATING=1`.
///
/// Runs on `repo` (a task that calls overlap passes the repository it holds), prints through
/// `out` and writes JUnit XML to `junit` when given.
pub fn run_with(
    repo: &Repo,
    args: Options,
    out: Output,
    junit: Option<&Path>,
) -> anyhow::Result<Verdict> {
    if !mutating_allowed(args.mutating) {
        bail!(
            "overlap creates reservations on the target, so it runs only when allowed: pass \
             --mutating (or set {RUN_MUTATING_VAR}=1); nothing was sent"
        );
    }
    let target = resolve_target(repo, args.env.as_deref(), args.url.as_deref())?;
    let plan = plan_from(&args, repo, &target)?;
    if let Some(note) = race::ensure_open_files(plan.concurrency)? {
        out.human(&format!("note: {note}\n"));
    }
    let clock = RunClock::start("overlap");
    let runtime = crate::http::runtime()?;
    let report = runtime.block_on(run_rounds(&target, &plan))?;
    let human = render::text(&report);
    let summary = render::markdown(&report);
    let verdict = report.verdict;
    let record = clock.finish(repo, &target.environment, verdict, report);
    let ending = crate::finish::Ending {
        human: &human,
        summary: &summary,
        save: true,
        json: out.json(),
    };
    crate::finish::finish(repo, &record, ending, &mut out.human_writer())?;
    if let Some(junit) = junit {
        render::junit_suite(&target.environment, &record.result).write(junit)?;
    }
    Ok(verdict)
}

/// `--url` alone needs no config file, so a bare checkout (or a test directory) can run it.
fn resolve_target(repo: &Repo, env: Option<&str>, url: Option<&str>) -> anyhow::Result<Target> {
    match (env, url) {
        (None, Some(url)) => Target::adhoc(url),
        (env, url) => DeployConfig::load(repo)?.target(env, url),
    }
}

/// Turns the flags into a plan, including the admin token for cleanup.
fn plan_from(args: &Options, repo: &Repo, target: &Target) -> anyhow::Result<OverlapPlan> {
    if args.concurrency == 0 {
        bail!("--concurrency must be at least 1");
    }
    if args.rounds == 0 {
        bail!("--rounds must be at least 1");
    }
    if args.nights.is_some_and(|n| !(1..=30).contains(&n)) {
        bail!("--nights must be between 1 and 30");
    }
    let stay = match (args.check_in, args.check_out) {
        (Some(check_in), Some(check_out)) => {
            Some(Stay::new(check_in, check_out).with_context(|| {
                format!("--check-out {check_out} must be after --check-in {check_in}")
            })?)
        }
        _ => None,
    };
    let admin_token = if args.no_cleanup {
        None
    } else if let Some(token) = args.admin_token.as_deref().filter(|t| !t.trim().is_empty()) {
        Some(AdminToken::new(token))
    } else {
        let env_file = args
            .env_file
            .clone()
            .or_else(|| target.settings.as_ref().map(|s| repo.path(&s.env_file)));
        match env_file {
            Some(path) => Some(token_from_env_file(&path)?),
            None => bail!(
                "cleanup needs an admin token to cancel the reservations this run creates: pass \
                 --admin-token (or set CABANAS_ADMIN_TOKEN), or --env-file with JWT_SECRET and \
                 ADMIN_ALLOWED_EMAILS, or --no-cleanup to leave them behind"
            ),
        }
    };
    Ok(OverlapPlan {
        concurrency: args.concurrency,
        rounds: args.rounds,
        accommodation_id: args.accommodation_id,
        stay,
        nights: args.nights,
        admin_token,
        timeout: args.timeout.max(Duration::from_millis(1)),
        run_id: new_run_id(),
        cross_channel: args.cross_channel,
        regions: args.regions.clone(),
    })
}
