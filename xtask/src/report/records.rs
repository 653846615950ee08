//! The saved results `report` and `status` read, decoded into views of their own.
//!
//! Why views and not the tasks' result types: the report must keep rendering while those
//! types evolve, and must never stop compiling because a task renamed a field. Each view
//! mirrors the JSON a task saves (`PredeployReport`, `SmokeReport`, the overlap, secrets,
//! deploy and rollback results) with `#[serde(default)]` on every field, so a record from an
//! older or newer version still decodes. Verdicts never depend on a view's details: the
//! overall verdict and the decision map read the record's own `verdict` (part of the shared
//! [`RunRecord`] contract) and the item verdicts the task computed; the details only fill the
//! tables, and an empty detail list next to a failed verdict is shown as such, not as a pass.
//! `xtask/tests/report.rs` builds its fixtures from the tasks' own result types, so a change
//! to what a task saves that these views cannot read fails there.

use std::path::PathBuf;

use anyhow::Context;
use serde::de::DeserializeOwned;

pub use super::views::*;
use crate::record::{self, RunRecord};
use crate::repo::Repo;
use crate::verdict::Verdict;

/// The environment `predeploy` records when it checked every environment.
pub const ALL_ENVIRONMENTS: &str = "all";

/// A saved record with its result decoded as a view.
pub type Saved<T> = RunRecord<T>;

/// The latest result of every task the report reads, for one environment, plus staging's
/// (the production map needs them).
#[derive(Debug, Clone, Default)]
pub struct Results {
    /// `predeploy`.
    pub predeploy: Option<Saved<PredeployView>>,
    /// `smoke`.
    pub smoke: Option<Saved<SmokeView>>,
    /// `overlap`.
    pub overlap: Option<Saved<OverlapView>>,
    /// `secrets` (dry runs are not recorded).
    pub secrets: Option<Saved<SecretsView>>,
    /// `deploy`.
    pub deploy: Option<Saved<DeployView>>,
    /// `rollback`.
    pub rollback: Option<Saved<RollbackView>>,
    /// Every `watch` run, newest first (the 24-hour gate reads them all).
    pub watches: Vec<Saved<super::stability::WatchView>>,
}

/// Every saved record of every task, read once.
pub struct RecordSet {
    all: Vec<(PathBuf, RunRecord<serde_json::Value>)>,
}

impl RecordSet {
    /// Reads `target/xtask/runs/`. A corrupt file is an error naming it.
    pub fn load(repo: &Repo) -> anyhow::Result<RecordSet> {
        Ok(RecordSet {
            all: record::load_all(repo)?,
        })
    }

    /// Whether any result was recorded under `environment`.
    pub fn has_environment(&self, environment: &str) -> bool {
        self.all.iter().any(|(_, r)| r.environment == environment)
    }

    /// Whether no task has saved a result yet.
    pub fn is_empty(&self) -> bool {
        self.all.is_empty()
    }

    /// The environment of the newest record, leaving out predeploy's `all`.
    pub fn newest_environment(&self) -> Option<&str> {
        self.all
            .iter()
            .rev()
            .map(|(_, r)| r.environment.as_str())
            .find(|env| *env != ALL_ENVIRONMENTS)
    }

    /// Decoded records of `task` in `environment`, newest first, skipping dry runs.
    fn all_of<T: DeserializeOwned>(
        &self,
        task: &str,
        environment: &str,
    ) -> anyhow::Result<Vec<Saved<T>>> {
        let mut found = Vec::new();
        for (path, r) in self.all.iter().rev() {
            if r.task != task || r.environment != environment || is_dry_run(&r.result) {
                continue;
            }
            let result: T = serde_json::from_value(r.result.clone()).with_context(|| {
                format!(
                    "{} was written by another version of the {task} task; rerun it",
                    path.display()
                )
            })?;
            found.push(RunRecord {
                schema_version: r.schema_version,
                task: r.task.clone(),
                environment: r.environment.clone(),
                git: r.git.clone(),
                started_at: r.started_at,
                duration_ms: r.duration_ms,
                tool_version: r.tool_version.clone(),
                verdict: r.verdict,
                result,
            });
        }
        Ok(found)
    }

    fn latest<T: DeserializeOwned>(
        &self,
        task: &str,
        environment: &str,
    ) -> anyhow::Result<Option<Saved<T>>> {
        Ok(self.all_of(task, environment)?.into_iter().next())
    }

    /// `predeploy` without `--env` checks every environment and is saved under `all`; it
    /// skips env files that are absent, so it stands in only for environments without one
    /// (`local`, `adhoc`). Deploy targets need their own `predeploy --env NAME` run.
    fn latest_predeploy(
        &self,
        environment: &str,
        deployable: bool,
    ) -> anyhow::Result<Option<Saved<PredeployView>>> {
        let own = self.latest::<PredeployView>("predeploy", environment)?;
        if deployable {
            return Ok(own);
        }
        let all = self.latest::<PredeployView>("predeploy", ALL_ENVIRONMENTS)?;
        Ok(match (own, all) {
            (Some(own), Some(all)) if all.started_at > own.started_at => Some(all),
            (own, all) => own.or(all),
        })
    }

    /// The results the report reads for `environment` (`deployable`: it is in
    /// `ops/deploy.toml`).
    pub fn results(&self, environment: &str, deployable: bool) -> anyhow::Result<Results> {
        Ok(Results {
            predeploy: self.latest_predeploy(environment, deployable)?,
            smoke: self.latest("smoke", environment)?,
            overlap: self.latest("overlap", environment)?,
            secrets: self.latest("secrets", environment)?,
            deploy: self.latest("deploy", environment)?,
            rollback: self.latest("rollback", environment)?,
            watches: self.all_of("watch", environment)?,
        })
    }
}

/// Whether a task verdict lets a deployment proceed (pass, or warn: fine with a look).
pub fn passed(verdict: Verdict) -> bool {
    matches!(verdict, Verdict::Pass | Verdict::Warn)
}

/// Dry runs measure nothing about the environment; the map ignores them.
fn is_dry_run(result: &serde_json::Value) -> bool {
    result
        .get("dry_run")
        .and_then(|v| v.as_bool())
        .unwrap_or(false)
}
