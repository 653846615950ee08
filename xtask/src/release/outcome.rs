//! What a rollout leaves: [`RolloutOutcome`], embedded (flattened) in the saved results of
//! `deploy`, `promote` and `rollback`, and [`RollbackResult`], the saved result of a rollback,
//! which a failed rollout embeds in turn. One module, since each holds the other.

use serde::{Deserialize, Serialize};

use super::verify::Verification;
use super::{ReleaseRef, Snapshot};
use crate::verdict::Verdict;

/// What a rollout did. `deploy`, `promote` and `rollback` results embed it flattened, so
/// their saved records keep these fields at the top level where `report` and `status` read
/// them; every field has a default, so records written before a field existed still read.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct RolloutOutcome {
    /// The release serving afterwards: the new one when flyctl left one (proven to serve or
    /// not), the rollback's once a rollback was proven to serve.
    pub release: Option<ReleaseRef>,
    /// The app after flyctl (before any rollback).
    pub after: Option<Snapshot>,
    /// The proof that the expected build serves, condition by condition.
    pub verification: Option<Verification>,
    /// Whether readiness answered 200 in time (`None` when not reached).
    pub readiness: Option<Verdict>,
    /// The smoke verdict once it was ready (`None` when not reached).
    pub smoke: Option<Verdict>,
    /// The command that goes back to what served before, printed when the release failed.
    pub rollback_command: Option<String>,
    /// The rollback run after a failure.
    pub rolled_back: Option<Box<RollbackResult>>,
    /// A dry run: flyctl printed its command and nothing was verified (never saved).
    #[serde(skip)]
    pub dry_run: bool,
}

impl RolloutOutcome {
    /// The verification's verdict, when it ran (a summary's `proven to serve`).
    pub fn proven(&self) -> Option<String> {
        self.verification.as_ref().map(|v| v.verdict.to_string())
    }

    /// `yes` when a rollback ran after a failure, else `no` (a summary's `rolled back`).
    pub fn rolled_back_word(&self) -> String {
        match self.rolled_back {
            Some(_) => "yes".into(),
            None => "no".into(),
        }
    }
}

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
    /// The rollout of the image: the proof that it serves, readiness and smoke.
    #[serde(flatten)]
    pub rollout: RolloutOutcome,
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
            problems: Vec::new(),
            from_commit: None,
            to_commit: None,
            before: None,
            rollout: RolloutOutcome::default(),
            migrations_not_reverted: Vec::new(),
        }
    }
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
