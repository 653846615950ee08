//! The one rollout `deploy`, `promote` and `rollback` share: `flyctl deploy` (building HEAD or
//! deploying an image that exists), the proof that the expected build serves ([`verify`]),
//! readiness and smoke, and on any failure the way back to the rollback target chosen before
//! flyctl ran (the printed command, or [`roll_back`] itself). The tasks only configure it: where
//! the image comes from, what must serve afterwards, what to go back to, and what a failure
//! does.

use std::io::Write;
use std::time::Duration;

use super::gates::{Gates, ready_and_smoke};
use super::restore::{
    RollbackPlan, RollbackResult, failed_conditions, roll_back, rollback_command,
};
use super::verify::{Expected, Verification, verify};
use super::{ReleaseRef, RollbackTarget, Snapshot, read_serving};
use crate::config::Environment;
use crate::flyctl::{DeployCommand, Flyctl, Invocation, failure_or_error, flyctl_failure};
use crate::repo::Repo;
use crate::verdict::Verdict;

/// Where the image comes from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Source {
    /// flyctl builds the working tree with these `--build-arg`s, labelled `--image-label`.
    Build {
        /// `(name, value)` build arguments (the commit, `GIT_COMMIT`).
        build_args: Vec<(String, String)>,
        /// The image label (the short commit).
        image_label: Option<String>,
    },
    /// An image that exists already (`flyctl deploy --image`): promote's staging image, a
    /// rollback's earlier one.
    Image(String),
}

/// What a failure once flyctl started does.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum OnFailure {
    /// This rollout is itself the way back (a rollback): it only reports. Anything that could
    /// not run (flyctl missing) becomes a problem too, so the caller always gets a verdict.
    Stop,
    /// Print the `cargo xtask rollback` line that goes back to the target.
    PrintCommand,
    /// Roll back to the target, announcing it as `rolling back {announce} to IMAGE`.
    RollBack {
        /// Who asked for it (`(--rollback-on-failure)`, `production`).
        announce: String,
    },
}

/// One rollout, configured by the task that runs it.
#[derive(Debug, Clone)]
pub struct Rollout<'a> {
    /// The environment's name in ops/deploy.toml (smoke's `--env`, the rollback command).
    pub env_name: &'a str,
    /// The environment.
    pub environment: &'a Environment,
    /// Where the image comes from.
    pub source: Source,
    /// flyctl's `--strategy` (`None`: the app's default).
    pub strategy: Option<String>,
    /// What must serve afterwards.
    pub expected: Expected,
    /// The verification's name (`the new build serves`).
    pub what: String,
    /// What the problem says when it is not proven (`the new build is not proven to serve`).
    pub unproven: String,
    /// What readiness and smoke name in their problems (`the new release`).
    pub subject: String,
    /// What served before flyctl ran (`None` on a first deploy, or for a rollback itself).
    pub target: Option<RollbackTarget>,
    /// What a failure does.
    pub on_failure: OnFailure,
    /// The problem added when a failure has no target to go back to.
    pub nothing_to_roll_back: String,
    /// After a failed flyctl deploy, read what Fly left behind for the record.
    pub read_after_failure: bool,
    /// What a dry run prints instead of verifying.
    pub dry_run_note: String,
    /// flyctl's `--wait-timeout` and the bound of the verification and readiness polls.
    pub wait_timeout: Duration,
    /// How long one `flyctl deploy` may run in all.
    pub deploy_timeout: Duration,
}

/// What a rollout did; each task's result takes these fields as they are.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct RolloutOutcome {
    /// The newest release once flyctl returned (the one proven to serve, when it was).
    pub release: Option<ReleaseRef>,
    /// The app after flyctl (before any rollback).
    pub after: Option<Snapshot>,
    /// The proof that the expected build serves, condition by condition.
    pub verification: Option<Verification>,
    /// Readiness once it served (`None` when not reached).
    pub readiness: Option<Verdict>,
    /// Smoke once it was ready (`None` when not reached).
    pub smoke: Option<Verdict>,
    /// The command that goes back to the target (when there is one).
    pub rollback_command: Option<String>,
    /// The rollback run after a failure.
    pub rolled_back: Option<RollbackResult>,
    /// Why it failed, if it did (the rollback's own problems prefixed `rollback: `).
    pub problems: Vec<String>,
    /// A dry run: flyctl printed its command and nothing was verified.
    pub dry_run: bool,
}

impl Rollout<'_> {
    /// The `flyctl deploy` this rollout runs.
    pub fn command(&self) -> DeployCommand {
        let (image, build_args, image_label) = match &self.source {
            Source::Build {
                build_args,
                image_label,
            } => (None, build_args.clone(), image_label.clone()),
            Source::Image(image) => (Some(image.clone()), Vec::new(), None),
        };
        DeployCommand {
            app: self.environment.app.clone(),
            config: self.environment.fly_config.clone(),
            image,
            strategy: self.strategy.clone(),
            wait_timeout_secs: self.wait_timeout.as_secs(),
            build_args,
            image_label,
            time_limit: Some(self.deploy_timeout),
        }
    }

    /// Runs flyctl, proves the expected build serves, waits for readiness, runs smoke, and on
    /// a failure does what [`OnFailure`] says.
    pub fn run(
        &self,
        repo: &Repo,
        flyctl: &Flyctl,
        gates: &dyn Gates,
        out: &mut dyn Write,
    ) -> anyhow::Result<RolloutOutcome> {
        let mut outcome = RolloutOutcome::default();
        let environment = self.environment;
        if let Err(error) = flyctl.deploy(&self.command(), out) {
            let problem = match (&self.on_failure, flyctl_failure(&error)) {
                (OnFailure::Stop, Some(failure)) => failure.to_string(),
                (OnFailure::Stop, None) => format!("flyctl could not run: {error:#}"),
                _ => format!("flyctl deploy failed: {}", failure_or_error(error)?),
            };
            outcome.problems.push(problem);
            if self.read_after_failure
                && let Ok(Ok(Some(serving))) = read_serving(
                    flyctl,
                    &environment.app,
                    &environment.url,
                    &mut std::io::sink(),
                )
            {
                outcome.after = Some(serving.snapshot());
                outcome.release = serving.releases.first().map(ReleaseRef::from);
            }
            self.after_failure(repo, flyctl, gates, &mut outcome, out)?;
            return Ok(outcome);
        }
        if flyctl.dry_run() {
            writeln!(out, "{}", self.dry_run_note)?;
            outcome.dry_run = true;
            return Ok(outcome);
        }
        let verification = verify(
            &self.what,
            flyctl,
            &environment.app,
            &environment.url,
            &self.expected,
            self.wait_timeout,
            out,
        )?;
        outcome.after = Some(verification.snapshot.clone());
        outcome.release = verification
            .release
            .clone()
            .or_else(|| verification.snapshot.newest().cloned());
        let proven = verification.verdict == Verdict::Pass;
        if !proven {
            outcome.problems.push(format!(
                "{}: {}",
                self.unproven,
                failed_conditions(&verification)
            ));
        }
        outcome.verification = Some(verification);
        if proven {
            let after = ready_and_smoke(
                repo,
                gates,
                self.env_name,
                &environment.url,
                &self.subject,
                self.wait_timeout,
                out,
            )?;
            outcome.readiness = Some(after.readiness);
            outcome.smoke = after.smoke;
            outcome.problems.extend(after.problem);
        }
        if !outcome.problems.is_empty() {
            self.after_failure(repo, flyctl, gates, &mut outcome, out)?;
        }
        Ok(outcome)
    }

    /// Prints how to go back to the target, or goes back, as [`OnFailure`] says.
    fn after_failure(
        &self,
        repo: &Repo,
        flyctl: &Flyctl,
        gates: &dyn Gates,
        outcome: &mut RolloutOutcome,
        out: &mut dyn Write,
    ) -> anyhow::Result<()> {
        if self.on_failure == OnFailure::Stop {
            return Ok(());
        }
        let Some(target) = &self.target else {
            outcome.problems.push(self.nothing_to_roll_back.clone());
            return Ok(());
        };
        let image = &target.image;
        let xtask_line = format!("cargo xtask rollback --env {} --to {image}", self.env_name);
        outcome.rollback_command = Some(xtask_line.clone());
        let OnFailure::RollBack { announce } = &self.on_failure else {
            let flyctl_line = flyctl.display(&Invocation::new(
                rollback_command(self.environment, image, self.wait_timeout.as_secs()).args(),
            ));
            writeln!(
                out,
                "\nto roll back to what served before, run:\n    {xtask_line}\n(which runs: {flyctl_line})"
            )?;
            return Ok(());
        };
        writeln!(out, "\nrolling back {announce} to {image}")?;
        let mut rollback = RollbackResult::new(&self.environment.app);
        rollback.from = outcome.release.clone();
        rollback.to_image = Some(image.clone());
        rollback.to_version = target.release.as_ref().map(|r| r.version);
        rollback.to_commit = target.commit.clone();
        rollback.from_commit = self.expected.commit.clone();
        rollback.before = outcome.after.clone();
        let plan = RollbackPlan {
            env_name: self.env_name,
            environment: self.environment,
            image,
            commit: target.commit.as_deref(),
            newer_than: outcome
                .release
                .as_ref()
                .or_else(|| outcome.after.as_ref().and_then(Snapshot::newest))
                .map(|r| r.version)
                .or(self.expected.newer_than),
            wait_timeout: self.wait_timeout.as_secs(),
            deploy_timeout: self.deploy_timeout.as_secs(),
        };
        roll_back(repo, flyctl, gates, &plan, &mut rollback, out)?;
        for problem in &rollback.problems {
            outcome.problems.push(format!("rollback: {problem}"));
        }
        outcome.rolled_back = Some(rollback);
        Ok(())
    }
}
