//! `cargo xtask overlap`: proves on a running service that the anti-double-booking guarantee
//! holds under real concurrency.
//!
//! N identical pre-reserves are released at one instant; exactly one must get 201, the other
//! N-1 must get 409 `date_overlap`, and nothing else may happen. Availability must then show
//! exactly one active booking on the window, a stay starting on its check-out must be
//! accepted, and one overlapping it by a night refused. Every reservation the run created is
//! cancelled afterwards with an admin token, and no other reservation is touched.
//!
//! Verdict: Fail (exit 1) when the invariant or a check fails in any round; Warn (exit 0)
//! when it held but some reservation this run created could not be cancelled (listed by
//! code, so an operator can cancel it), or cleanup was switched off; else Pass.
//!
//! Layout: [`run_rounds`] measures and returns an [`OverlapReport`]; `render` turns a report
//! into text; [`run`] wires flags, the record and the output together.

pub mod admin;
mod api;
mod judge;
mod ledger;
mod race;
mod render;
mod report;
mod rounds;

use std::path::PathBuf;
use std::time::Duration;

use anyhow::{Context, bail};
use chrono::NaiveDate;
use clap::Args as ClapArgs;

pub use admin::{AdminToken, sign as sign_admin_token, token_from_env_file};
pub use api::Stay;
pub use judge::{
    DATE_OVERLAP, LatencySummary, OtherGroup, Outcome, RequestOutcome, RoundVerdict, judge_round,
};
pub use render::{markdown as render_markdown, text as render_text};
pub use report::{Check, CleanupFailure, CleanupReport, OverlapReport, RoundReport, probe};
pub use rounds::{OverlapPlan, new_run_id, run_rounds};

use crate::config::{DeployConfig, Target};
use crate::output::Output;
use crate::record::RunClock;
use crate::repo::Repo;
use crate::verdict::Verdict;

/// The environment variable that allows mutating tasks without `--mutating`.
pub const RUN_MUTATING_VAR: &str = "RUN_MUTATING";

/// Options of `cargo xtask overlap`.
#[derive(Debug, ClapArgs)]
pub struct Args {
    /// Environment from ops/deploy.toml to run against (its URL and env file).
    #[arg(long, value_name = "NAME")]
    pub env: Option<String>,
    /// Base URL to run against instead of (or overriding) the environment's.
    #[arg(long, value_name = "URL")]
    pub url: Option<String>,
    /// Allow creating reservations on the target (required; or set RUN_MUTATING=1).
    #[arg(long)]
    pub mutating: bool,
    /// N: identical pre-reserves released together per round.
    #[arg(long, default_value_t = 10, value_name = "N")]
    pub concurrency: usize,
    /// How many rounds, each on a fresh window: a race can pass by luck once.
    #[arg(long, default_value_t = 1, value_name = "K")]
    pub rounds: u32,
    /// Accommodation to book; default: the first one listed.
    #[arg(long, value_name = "ID")]
    pub accommodation_id: Option<i64>,
    /// First night (YYYY-MM-DD); with --check-out. Default: a free window 180+ days ahead.
    #[arg(long, value_name = "DATE", requires = "check_out")]
    pub check_in: Option<NaiveDate>,
    /// Departure day (YYYY-MM-DD); with --check-in.
    #[arg(long, value_name = "DATE", requires = "check_in")]
    pub check_out: Option<NaiveDate>,
    /// Nights of the random window (1-30); default: 2-4 at random.
    #[arg(long, value_name = "NIGHTS", conflicts_with = "check_in")]
    pub nights: Option<u32>,
    /// Admin bearer token used to cancel what the run created. Default: one signed with the
    /// env file's JWT_SECRET. Prefer the environment variable to the flag.
    #[arg(
        long,
        env = "CABANAS_ADMIN_TOKEN",
        hide_env_values = true,
        value_name = "TOKEN"
    )]
    pub admin_token: Option<String>,
    /// Env file holding JWT_SECRET and ADMIN_ALLOWED_EMAILS; default: the environment's.
    #[arg(long, value_name = "PATH")]
    pub env_file: Option<PathBuf>,
    /// Leave the created reservations active (the verdict is then at best WARN).
    #[arg(long)]
    pub no_cleanup: bool,
    /// Per-request timeout (e.g. 30s, 2m).
    #[arg(long, value_name = "DURATION", default_value = "30s",
          value_parser = crate::cli::parse_duration)]
    pub timeout: Duration,
    /// Old spelling of --timeout in whole seconds: accepted with a warning for one release.
    #[arg(long, value_name = "SECS", hide = true, conflicts_with = "timeout")]
    pub timeout_secs: Option<u64>,
    /// Also write the outcome as JUnit XML to PATH (one test case per race and probe of each round), for CI test
    /// reporters.
    #[arg(long, value_name = "PATH")]
    pub junit: Option<std::path::PathBuf>,
    /// Print the result record as JSON on stdout (human text goes to stderr).
    #[arg(long)]
    pub json: bool,
}

/// The per-request timeout: `--timeout`, or the old `--timeout-secs` with a warning.
pub fn request_timeout(args: &Args) -> Duration {
    match args.timeout_secs {
        Some(secs) => {
            crate::cli::warn_old_spelling(&format!(
                "warning: --timeout-secs is the old spelling and will go away: write \
                 --timeout {secs}s"
            ));
            Duration::from_secs(secs.max(1))
        }
        None => args.timeout.max(Duration::from_millis(1)),
    }
}

/// Whether mutating tasks are allowed by the flag or by `RUN_MUTATING=1`.
fn mutating_allowed(flag: bool) -> bool {
    flag || std::env::var(RUN_MUTATING_VAR).is_ok_and(|v| matches!(v.trim(), "1" | "true" | "yes"))
}

/// Entry point: checks the flags, resolves target and admin token, runs the rounds, prints,
/// records. Refuses (exit 2, nothing sent) without `--mutating` or `RUN_MUTATING=1`.
pub fn run(args: Args) -> anyhow::Result<Verdict> {
    if !mutating_allowed(args.mutating) {
        bail!(
            "overlap creates reservations on the target, so it runs only when allowed: pass \
             --mutating (or set {RUN_MUTATING_VAR}=1); nothing was sent"
        );
    }
    let out = Output::new(args.json);
    let repo = Repo::discover()?;
    let target = resolve_target(&repo, args.env.as_deref(), args.url.as_deref())?;
    let plan = plan_from(&args, &repo, &target)?;
    if let Some(note) = race::ensure_open_files(plan.concurrency)? {
        out.human(&format!("note: {note}\n"));
    }
    let clock = RunClock::start("overlap");
    let runtime = crate::http::runtime()?;
    let report = runtime.block_on(run_rounds(&target, &plan))?;
    let human = render::text(&report);
    let summary = render::markdown(&report);
    let verdict = report.verdict;
    let record = clock.finish(&repo, &target.environment, verdict, report);
    let ending = crate::finish::Ending {
        human: &human,
        summary: &summary,
        save: true,
        json: out.json(),
    };
    crate::finish::finish(&repo, &record, ending, &mut out.human_writer())?;
    if let Some(junit) = &args.junit {
        crate::junit::overlap(&target.environment, &record.result).write(junit)?;
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
fn plan_from(args: &Args, repo: &Repo, target: &Target) -> anyhow::Result<OverlapPlan> {
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
        timeout: request_timeout(args),
        run_id: new_run_id(),
    })
}
