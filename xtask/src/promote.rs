//! `cargo xtask promote`: deploys to production the exact image staging verified
//! (`flyctl deploy --image <staging image ref> --app <production app>`), never a rebuild.
//!
//! It refuses (exit 1, naming what is missing) unless staging's report is GO, the 24-hour
//! gate holds for the staging release, the production checklist is complete, and staging's
//! deploy recorded the image it serves. Production's prerequisites for the blue-green default
//! are checked before flyctl runs: HTTP checks defined, no volumes, at least one machine.
//! Then, as `deploy` does, through the shared release module: what serves is recorded first,
//! the image is proven to serve (releases, machines, each machine's version endpoint),
//! readiness and smoke run, and any failure rolls back to what served before.

use std::io::Write;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::announce;
use crate::config::{DeployConfig, Environment};
use crate::deploy::gates::{Gates, TaskGates};
use crate::flyctl::Flyctl;
use crate::output::Output;
use crate::predeploy::CommandLine;
use crate::record::RunClock;
use crate::records::screen::Trust;
use crate::release::{
    self, Closing, Expected, OnFailure, ReleaseRef, RollbackTarget, Rollout, RolloutOutcome,
    Snapshot, Source, read_serving, rollback_target,
};
use crate::repo::Repo;
use crate::report;
use crate::verdict::Verdict;

mod image_checks;
mod preconditions;

pub use preconditions::{StagingEvidence, prerequisites};

/// The task name in run records.
pub const TASK: &str = "promote";
/// The environment whose verified image is promoted.
pub const FROM: &str = "staging";
/// The environment promoted to.
pub const TO: &str = "production";

/// The rollout strategy without `--strategy`: production keeps serving until the new
/// machines pass.
pub const DEFAULT_STRATEGY: &str = "bluegreen";

/// Options of `cargo xtask promote`.
#[derive(Debug, Clone)]
pub struct Options {
    /// Check every precondition and print the flyctl command without running it.
    pub dry_run: bool,
    /// Fly's deploy strategy for production (blue-green: the new machines serve only once
    /// all pass their checks).
    pub strategy: String,
    /// How long flyctl, the proof that the image serves and the readiness poll may each wait.
    pub wait_timeout: Duration,
    /// How long one `flyctl deploy` may run in all before it is stopped and counted a failure.
    pub deploy_timeout: Duration,
    /// Promote an image first released before the one production runs.
    pub allow_older: bool,
}

/// The saved result of a promotion.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PromoteResult {
    /// The production app.
    pub app: String,
    /// The image promoted (staging's).
    pub image: Option<String>,
    /// The strategy passed to flyctl.
    pub strategy: String,
    /// Whether it was a dry run (not recorded).
    pub dry_run: bool,
    /// What staging's results said.
    pub staging: StagingEvidence,
    /// Preconditions that were missing: the promotion was refused before flyctl ran.
    pub refused: Vec<String>,
    /// What served before (what a failure goes back to).
    pub rollback_target: Option<ReleaseRef>,
    /// The app before flyctl ran.
    pub before: Option<Snapshot>,
    /// What failed after flyctl started.
    pub problems: Vec<String>,
    /// The rollout on production: the release serving after it, the proof that the image
    /// serves, readiness, smoke and the rollback run after a failure.
    #[serde(flatten)]
    pub rollout: RolloutOutcome,
}

/// Entry point of `cargo xtask promote`.
///
/// `command_line` is handed to predeploy's `docs_commands` check (`None` skips it).
pub fn run(
    args: Options,
    output: Output,
    command_line: Option<CommandLine>,
) -> anyhow::Result<Verdict> {
    let repo = Repo::discover()?;
    let evidence = staging_evidence(&repo)?;
    let gates = TaskGates::new(output, command_line);
    release::start(&repo, args.dry_run, output, |repo, flyctl, out| {
        run_with(repo, &args, &evidence, flyctl, &gates, out)
    })
}

/// Staging's evidence, read from its records: production is promoted only on evidence CI
/// signed (`RECORDS_SIGNING_KEY`); a record anyone with push access could have written does
/// not count.
pub fn staging_evidence(repo: &Repo) -> anyhow::Result<StagingEvidence> {
    let rendered = report::render_trusting(
        repo,
        &report::Options {
            env: Some(FROM.to_string()),
        },
        &Trust::from_env(true)?,
        chrono::Utc::now(),
        repo.git_state().as_ref(),
    )?;
    Ok(StagingEvidence::from_report(&rendered))
}

/// Promotes on `repo` given staging's evidence; saves the record unless it is a dry run.
pub fn run_with(
    repo: &Repo,
    args: &Options,
    evidence: &StagingEvidence,
    flyctl: Flyctl,
    gates: &dyn Gates,
    out: &mut dyn Write,
) -> anyhow::Result<(Verdict, PromoteResult)> {
    let clock = RunClock::start(TASK);
    let config = DeployConfig::load(repo)?;
    let environment = config.environment(TO)?.clone();
    let flyctl = flyctl.in_dir(repo.root()).with_dry_run(args.dry_run);
    let mut result = PromoteResult {
        app: environment.app.clone(),
        image: evidence.image.clone(),
        strategy: args.strategy.clone(),
        dry_run: args.dry_run,
        staging: evidence.clone(),
        refused: evidence.missing(),
        rollback_target: None,
        before: None,
        problems: Vec::new(),
        rollout: RolloutOutcome::default(),
    };
    if !result.refused.is_empty() {
        return finish(repo, clock, result, gates.json(), out);
    }
    let image = evidence.image.clone().unwrap_or_default();

    // What serves now: the rollback target, and the machine count blue-green needs.
    let serving = match read_serving(&flyctl, &environment.app, &environment.url, out)? {
        Err(problem) => {
            result.refused.push(format!(
                "could not read what serves on {} (nothing was deployed): {problem}",
                environment.app
            ));
            return finish(repo, clock, result, gates.json(), out);
        }
        Ok(serving) => serving,
    };
    let machines = serving.as_ref().map(|s| s.machines.len());
    result
        .refused
        .extend(prerequisites(repo, &environment, machines));
    if args.strategy == "bluegreen"
        && let Some(serving) = &serving
        && let Some(mixed) = crate::release::mixed_images(&serving.machines)
    {
        result.refused.push(format!(
            "{} runs more than one image ({mixed}): flyctl's blue-green refuses such an app \
             (\"found multiple image versions\"). Bring every machine to one image first: \
             `cargo xtask rollback --env {TO}` to the image that served, or \
             `cargo xtask promote --strategy rolling`",
            environment.app
        ));
    }
    if result.refused.is_empty() {
        let staging_app = config.environment(FROM).map(|e| e.app.clone()).ok();
        let checks = image_checks::ImageChecks {
            flyctl: &flyctl,
            production: &environment,
            staging_app: staging_app.as_deref(),
            serving: serving.as_ref(),
            allow_older: args.allow_older,
        };
        result.refused.extend(checks.run(&image, out)?);
    }
    if !result.refused.is_empty() {
        return finish(repo, clock, result, gates.json(), out);
    }
    let target = serving.as_ref().and_then(|s| rollback_target(repo, s));
    let newer_than = serving
        .as_ref()
        .and_then(|s| s.releases.first())
        .map(|r| r.version);
    result.before = serving.as_ref().map(|s| s.snapshot());
    result.rollback_target = target.as_ref().and_then(|t| t.release.clone());

    writeln!(
        out,
        "promoting {image} (verified on {FROM}) to {}",
        environment.app
    )?;
    let announcer = release::announce_going_live(
        repo,
        TO,
        &environment,
        flyctl.dry_run(),
        &format!(
            "promoting {image}, verified on {FROM}, to {}",
            environment.app
        ),
        out,
    );
    let what = format!("the promotion of {image}");
    let rollout = rollout(args, &environment, image, newer_than, target);
    result.rollout = rollout.run(repo, &flyctl, gates, &mut result.problems, out)?;
    if result.rollout.dry_run {
        return Ok((Verdict::Pass, result));
    }
    let (verdict, result) = finish(repo, clock, result, gates.json(), out)?;
    let line = announce::ending(TO, &what, verdict, &result.rollout, &result.problems);
    announcer.say(&line, out);
    Ok((verdict, result))
}

/// The rollout on production: flyctl deploys staging's `image` (never a build), which must
/// serve on a release newer than `newer_than`; any failure rolls back to `target`.
fn rollout<'a>(
    args: &Options,
    environment: &'a Environment,
    image: String,
    newer_than: Option<u64>,
    target: Option<RollbackTarget>,
) -> Rollout<'a> {
    Rollout {
        env_name: TO,
        environment,
        source: Source::Image(image.clone()),
        strategy: Some(args.strategy.clone()),
        expected: Expected {
            newer_than,
            image: Some(image),
            commit: None,
            wake: false,
        },
        what: "the staging image serves on production".into(),
        unproven: "the staging image is not proven to serve on production".into(),
        subject: "production".into(),
        target,
        on_failure: OnFailure::RollBack {
            announce: "production".into(),
        },
        nothing_to_roll_back:
            "nothing served on production before, so there is nothing to roll back to".into(),
        read_after_failure: false,
        dry_run_note: "dry run: nothing was deployed and nothing recorded".into(),
        wait_timeout: args.wait_timeout,
        deploy_timeout: args.deploy_timeout,
    }
}

fn finish(
    repo: &Repo,
    clock: RunClock,
    result: PromoteResult,
    json: bool,
    out: &mut dyn Write,
) -> anyhow::Result<(Verdict, PromoteResult)> {
    let refused_or_failed: Vec<String> = result
        .refused
        .iter()
        .chain(&result.problems)
        .cloned()
        .collect();
    let verdict = release::verdict_of(&refused_or_failed);
    for ignored in &result.staging.ignored_records {
        writeln!(out, "ignored: {ignored}")?;
    }
    for missing in &result.refused {
        writeln!(out, "refused: {missing}")?;
    }
    let summary = crate::output::facts_markdown(
        &format!("promote to {TO} ({})", result.app),
        verdict,
        &[
            ("image", result.image.clone().unwrap_or_else(|| "-".into())),
            ("strategy", result.strategy.clone()),
            ("rolled back", result.rollout.rolled_back_word()),
        ],
        &refused_or_failed,
    );
    let closing = Closing {
        env_name: TO,
        verdict,
        problems: &result.problems,
        dry_run: result.dry_run,
        verdict_line: format!("promote to {} ({TO}): {verdict}", result.app),
        summary,
        save: true,
        json,
    };
    release::close(repo, clock, &closing, result.clone(), out)?;
    Ok((verdict, result))
}
