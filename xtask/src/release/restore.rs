//! Rolling back: `flyctl deploy --image <recorded ref>` (Fly has no rollback command), then the
//! same proof as a deploy: a newer release running that image is complete, every machine runs
//! it with passing checks and reports the previous commit; then readiness and smoke.

use std::io::Write;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use super::gates::Gates;
use super::rollout::{OnFailure, Rollout, Source};
use super::verify::{Expected, Verification};
use super::{ReleaseRef, Snapshot};
use crate::config::Environment;
use crate::flyctl::{DeployCommand, Flyctl};
use crate::repo::Repo;
use crate::verdict::Verdict;

/// The saved result of a rollback (also embedded in a deploy that rolled back by itself).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RollbackResult {
    /// The Fly app.
    pub app: String,
    /// The release that was current before the rollback.
    pub from: Option<ReleaseRef>,
    /// The image deployed.
    pub to_image: Option<String>,
    /// The release number whose image was deployed, when known.
    pub to_version: Option<u64>,
    /// Whether readiness answered after the rollback (`None` when not reached).
    pub readiness: Option<Verdict>,
    /// The smoke verdict after the rollback (`None` when not reached).
    pub smoke: Option<Verdict>,
    /// Why it failed, if it did.
    pub problems: Vec<String>,
    /// The commit the machines reported before the rollback, when they answered.
    #[serde(default)]
    pub from_commit: Option<String>,
    /// The commit the rolled-back image serves, when known (the machines said so before a
    /// deploy replaced them, or the image tag names it).
    #[serde(default)]
    pub to_commit: Option<String>,
    /// The app before the rollback (releases, machines, their commits).
    #[serde(default)]
    pub before: Option<Snapshot>,
    /// The proof that the rolled-back image serves, condition by condition.
    #[serde(default)]
    pub verification: Option<Verification>,
    /// Migrations added between the target's commit and the current one: the rollback keeps
    /// their schema changes (it does not revert the database).
    #[serde(default)]
    pub migrations_not_reverted: Vec<String>,
}

impl RollbackResult {
    /// An empty result for `app`.
    pub fn new(app: &str) -> RollbackResult {
        RollbackResult {
            app: app.to_string(),
            from: None,
            to_image: None,
            to_version: None,
            readiness: None,
            smoke: None,
            problems: Vec::new(),
            from_commit: None,
            to_commit: None,
            before: None,
            verification: None,
            migrations_not_reverted: Vec::new(),
        }
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
        wait_timeout_secs: wait_timeout,
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
    let outcome = rollout.run(repo, flyctl, gates, out)?;
    result.verification = outcome.verification;
    result.readiness = outcome.readiness;
    result.smoke = outcome.smoke;
    result.problems.extend(outcome.problems);
    Ok(())
}

/// `name (evidence); name (evidence)` of the conditions that failed.
pub fn failed_conditions(verification: &Verification) -> String {
    verification
        .conditions
        .iter()
        .filter(|c| !c.passed)
        .map(|c| format!("{} ({})", c.name, c.evidence))
        .collect::<Vec<_>>()
        .join("; ")
}
