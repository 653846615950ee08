//! The one rollout `deploy`, `promote` and `rollback` share: `flyctl deploy` (building HEAD or
//! deploying an image that exists), the proof that the expected build serves ([`verify`]),
//! readiness and smoke, and on any failure the way back to the rollback target chosen before
//! flyctl ran (the printed command, or [`roll_back`] itself). The tasks only configure it: where
//! the image comes from, what must serve afterwards, what to go back to, and what a failure
//! does. Rolling back is a rollout too: `flyctl deploy --image <recorded ref>` (Fly has no
//! rollback command), held to the same proof.

use std::io::Write;
use std::time::Duration;

use super::gates::{Gates, ready_and_smoke};
use super::outcome::{RollbackResult, RolloutOutcome, failed_conditions};
use super::verify::{Expected, verify};
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
            wait_timeout: self.wait_timeout,
            build_args,
            image_label,
            time_limit: Some(self.deploy_timeout),
        }
    }

    /// The `cargo xtask rollback` line that goes back to the target, if there is one.
    pub fn rollback_line(&self) -> Option<String> {
        let target = self.target.as_ref()?;
        Some(format!(
            "cargo xtask rollback --env {} --to {}",
            self.env_name, target.image
        ))
    }

    /// Runs flyctl, proves the expected build serves, waits for readiness, runs smoke, and on
    /// a failure does what [`OnFailure`] says. Why it failed is added to `problems` (the
    /// rollback's own problems prefixed `rollback: `).
    pub fn run(
        &self,
        repo: &Repo,
        flyctl: &Flyctl,
        gates: &dyn Gates,
        problems: &mut Vec<String>,
        out: &mut dyn Write,
    ) -> anyhow::Result<RolloutOutcome> {
        let mut outcome = RolloutOutcome::default();
        let failed_before = problems.len();
        let environment = self.environment;
        if let Err(error) = flyctl.deploy(&self.command(), out) {
            let problem = match (&self.on_failure, flyctl_failure(&error)) {
                (OnFailure::Stop, Some(failure)) => failure.to_string(),
                (OnFailure::Stop, None) => format!("flyctl could not run: {error:#}"),
                _ => format!("flyctl deploy failed: {}", failure_or_error(error)?),
            };
            problems.push(problem);
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
            self.after_failure(repo, flyctl, gates, &mut outcome, problems, out)?;
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
            problems.push(format!(
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
            problems.extend(after.problem);
        }
        if problems.len() > failed_before {
            self.after_failure(repo, flyctl, gates, &mut outcome, problems, out)?;
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
        problems: &mut Vec<String>,
        out: &mut dyn Write,
    ) -> anyhow::Result<()> {
        if self.on_failure == OnFailure::Stop {
            return Ok(());
        }
        let Some(target) = &self.target else {
            problems.push(self.nothing_to_roll_back.clone());
            return Ok(());
        };
        let image = &target.image;
        let xtask_line = self.rollback_line().unwrap_or_default();
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
            problems.push(format!("rollback: {problem}"));
        }
        if let Some(served) = rollback
            .rollout
            .verification
            .as_ref()
            .filter(|v| v.verdict == Verdict::Pass)
            .and_then(|v| v.release.clone())
        {
            outcome.release = Some(served);
        }
        outcome.rolled_back = Some(Box::new(rollback));
        Ok(())
    }
}

/// What to roll back to, and how long to wait.
#[derive(Debug, Clone)]
pub struct RollbackPlan<'a> {
    /// The environment's name in ops/deploy.toml (for the smoke gate and messages).
    pub env_name: &'a str,
    /// The environment.
    pub environment: &'a Environment,
    /// The image to deploy again.
    pub image: &'a str,
    /// The commit that image serves, when known.
    pub commit: Option<&'a str>,
    /// The newest release before the rollback: the rollback's release must be newer.
    pub newer_than: Option<u64>,
    /// flyctl's `--wait-timeout` and the bound of the verification and readiness polls.
    pub wait_timeout: u64,
    /// How long the `flyctl deploy --image` may run in all before it is stopped.
    pub deploy_timeout: u64,
}

/// The `flyctl deploy --image` that puts `image` back on the environment's app.
pub fn rollback_command(
    environment: &Environment,
    image: &str,
    wait_timeout: u64,
) -> DeployCommand {
    DeployCommand {
        app: environment.app.clone(),
        config: environment.fly_config.clone(),
        image: Some(image.to_string()),
        strategy: None,
        wait_timeout: Duration::from_secs(wait_timeout),
        build_args: Vec::new(),
        image_label: None,
        time_limit: None,
    }
}

/// Deploys the plan's image, proves it serves, waits for readiness and runs smoke, filling
/// `result`. A failing flyctl call or check becomes a problem; anything that could not run
/// (flyctl missing, smoke unable to start) becomes a problem too, so a caller always gets a
/// verdict.
pub fn roll_back(
    repo: &Repo,
    flyctl: &Flyctl,
    gates: &dyn Gates,
    plan: &RollbackPlan,
    result: &mut RollbackResult,
    out: &mut dyn Write,
) -> anyhow::Result<()> {
    let environment = plan.environment;
    let rollout = Rollout {
        env_name: plan.env_name,
        environment,
        source: Source::Image(plan.image.to_string()),
        strategy: None,
        expected: Expected {
            newer_than: plan.newer_than,
            image: Some(plan.image.to_string()),
            commit: plan.commit.map(String::from),
            wake: false,
        },
        what: "the rollback serves".into(),
        unproven: format!("the rollback to {} is not proven to serve", plan.image),
        subject: "the rollback".into(),
        target: None,
        on_failure: OnFailure::Stop,
        nothing_to_roll_back: String::new(),
        read_after_failure: false,
        dry_run_note: format!(
            "would verify that {} serves{} on every machine, wait up to {}s for {}/api/v1/readyz, then run `cargo xtask smoke --env {}`",
            plan.image,
            plan.commit
                .map(|c| format!(" commit {c}"))
                .unwrap_or_default(),
            plan.wait_timeout,
            environment.url,
            plan.env_name
        ),
        wait_timeout: Duration::from_secs(plan.wait_timeout),
        deploy_timeout: Duration::from_secs(plan.deploy_timeout),
    };
    result.rollout = rollout.run(repo, flyctl, gates, &mut result.problems, out)?;
    Ok(())
}
