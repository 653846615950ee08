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
//! `xtask/tests/it/report.rs` builds its fixtures from the tasks' own result types, so a change
//! to what a task saves that these views cannot read fails there.

use anyhow::Context;
use chrono::{DateTime, Utc};
use serde::de::DeserializeOwned;

pub use super::views::*;
use crate::record::{self, RunRecord};
use crate::records::screen::{Screened, Trust};
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
    /// Why the secrets on Fly are no longer the env file's, when they are not: the file's
    /// values differ from the digest `secrets` recorded. Filled by the caller that knows the
    /// environment's files ([`Results::compare_secrets`]).
    pub secrets_changed: Option<String>,
    /// `deploy`, or a `promote` that reached flyctl when it is newer (see `promotes`).
    pub deploy: Option<Saved<DeployView>>,
    /// `rollback`.
    pub rollback: Option<Saved<RollbackView>>,
    /// Since when the release serving now has been serving: the start of the first deploy or
    /// rollback in the newest unbroken run of ones that left the same release (version and
    /// image) serving. Network results measured before it measured another release.
    pub serving_since: Option<DateTime<Utc>>,
    /// Records of this environment that claim to have started after this machine saved them.
    pub warnings: Vec<String>,
    /// Every `watch` run, newest first (the 24-hour gate reads them all).
    pub watches: Vec<Saved<super::views::WatchView>>,
}

impl Results {
    /// Compares the latest `secrets` run's digest with what the env file would send now.
    /// Nothing to compare (no digest recorded, env file absent or not readable on this
    /// machine) leaves the result as recorded.
    pub fn compare_secrets(&mut self, repo: &Repo, environment: &crate::config::Environment) {
        let Some(sent) = self.secrets.as_ref().and_then(|s| s.result.sent.as_ref()) else {
            return;
        };
        let Ok(plan) = crate::secrets::envfile::plan_import(repo, environment) else {
            return;
        };
        if !plan.problems.is_empty() && plan.entries.is_empty() {
            return;
        }
        if !crate::secrets::sent::same_as_sent(&sent.salt, &sent.sha256, &plan.entries) {
            self.secrets_changed = Some(format!(
                "{} changed since its values were sent",
                environment.env_file.display()
            ));
        }
    }
}

/// Every saved record of every task, read once.
pub struct RecordSet {
    all: Vec<record::Loaded>,
}

impl RecordSet {
    /// Reads `target/xtask/runs/`, keeping only the records `trust` allows (see
    /// `records::signature`); what was left out is in the [`Screened`]. A corrupt file is an
    /// error naming it.
    pub fn load_screened(repo: &Repo, trust: &Trust) -> anyhow::Result<(RecordSet, Screened)> {
        let (all, screened) = crate::records::screen::screen(record::load_all(repo)?, trust);
        Ok((RecordSet { all }, screened))
    }

    /// Whether any result was recorded under `environment`.
    pub fn has_environment(&self, environment: &str) -> bool {
        self.all.iter().any(|l| l.record.environment == environment)
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
            .map(|l| l.record.environment.as_str())
            .find(|env| *env != ALL_ENVIRONMENTS)
    }

    /// Decoded records of `task` in `environment`, newest first, skipping dry runs, each with
    /// its rank (see [`record::Loaded::rank`]).
    pub(super) fn all_of<T: DeserializeOwned>(
        &self,
        task: &str,
        environment: &str,
    ) -> anyhow::Result<Vec<(DateTime<Utc>, Saved<T>)>> {
        let mut found = Vec::new();
        for loaded in self.all.iter().rev() {
            let (path, r) = (&loaded.path, &loaded.record);
            if r.task != task
                || r.environment != environment
                || is_dry_run(&r.result)
                || older_check_layout(r)
            {
                continue;
            }
            let mut value = r.result.clone();
            cut_long_text(&mut value, path);
            let result: T = serde_json::from_value(value).with_context(|| {
                format!(
                    "{} was written by another version of the {task} task; rerun it",
                    path.display()
                )
            })?;
            found.push((
                loaded.rank(),
                RunRecord {
                    schema_version: r.schema_version,
                    task: r.task.clone(),
                    environment: r.environment.clone(),
                    git: r.git.clone(),
                    started_at: r.started_at,
                    duration_ms: r.duration_ms,
                    tool_version: r.tool_version.clone(),
                    verdict: r.verdict,
                    result,
                },
            ));
        }
        Ok(found)
    }

    fn latest<T: DeserializeOwned>(
        &self,
        task: &str,
        environment: &str,
    ) -> anyhow::Result<Option<Saved<T>>> {
        Ok(self.ranked(task, environment)?.map(|(_, saved)| saved))
    }

    /// The newest `limit` results of `task` in `environment`, newest first (for the history).
    pub fn recent<T: DeserializeOwned>(
        &self,
        task: &str,
        environment: &str,
        limit: usize,
    ) -> anyhow::Result<Vec<Saved<T>>> {
        let mut all = self.all_of(task, environment)?;
        all.truncate(limit);
        Ok(all.into_iter().map(|(_, saved)| saved).collect())
    }

    fn ranked<T: DeserializeOwned>(
        &self,
        task: &str,
        environment: &str,
    ) -> anyhow::Result<Option<(DateTime<Utc>, Saved<T>)>> {
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
        let own = self.ranked::<PredeployView>("predeploy", environment)?;
        if deployable {
            return Ok(own.map(|(_, saved)| saved));
        }
        let all = self.ranked::<PredeployView>("predeploy", ALL_ENVIRONMENTS)?;
        Ok(match (own, all) {
            (Some(own), Some(all)) if all.0 > own.0 => Some(all.1),
            (own, all) => own.or(all).map(|(_, saved)| saved),
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
            secrets_changed: None,
            deploy: self.latest_deploy(environment)?,
            rollback: self.latest("rollback", environment)?,
            serving_since: if deployable {
                self.serving_since(environment)?
            } else {
                None
            },
            warnings: self.warnings(environment),
            watches: self
                .all_of("watch", environment)?
                .into_iter()
                .map(|(_, record)| record)
                .collect(),
        })
    }

    /// See [`Results::serving_since`]. A deploy (or promote) or rollback that recorded no release is taken
    /// as a change of release (the old rule: results must postdate the last deploy).
    fn serving_since(&self, environment: &str) -> anyhow::Result<Option<DateTime<Utc>>> {
        // Newest first: (start, the release left serving).
        let mut changes: Vec<(DateTime<Utc>, Option<ServingRelease>)> = self
            .deploys(environment)?
            .into_iter()
            .map(|(rank, d)| {
                let release = d.result.release.map(|r| (r.version, r.image_ref));
                (rank, release.filter(|(v, i)| v.is_some() || i.is_some()))
            })
            .collect();
        for (rank, r) in self.all_of::<RollbackView>("rollback", environment)? {
            if passed(r.verdict) {
                let release = (r.result.to_version, r.result.to_image);
                let known = release.0.is_some() || release.1.is_some();
                changes.push((rank, known.then_some(release)));
            }
        }
        changes.sort_by_key(|change| std::cmp::Reverse(change.0));
        let Some((mut since, serving)) = changes.first().cloned() else {
            return Ok(None);
        };
        if serving.is_some() {
            for (started, release) in &changes[1..] {
                if *release != serving {
                    break;
                }
                since = *started;
            }
        }
        Ok(Some(since))
    }

    /// Warnings about the records of `environment` (and predeploy's `all`) that claim to
    /// have started after this machine saved them.
    pub fn warnings(&self, environment: &str) -> Vec<String> {
        let of_environment = |l: &&record::Loaded| {
            l.record.environment == environment || l.record.environment == ALL_ENVIRONMENTS
        };
        let older: Vec<&str> = self
            .all
            .iter()
            .filter(of_environment)
            .filter(|l| older_check_layout(&l.record))
            .map(|l| l.record.task.as_str())
            .collect();
        let mut warnings = Vec::new();
        if !older.is_empty() {
            let mut tasks = older.clone();
            tasks.sort_unstable();
            tasks.dedup();
            warnings.push(format!(
                "{} record(s) of {} were written before checks shared one layout (schema {}) \
                 and are not read: rerun those tasks",
                older.len(),
                tasks.join(", "),
                CHECK_LAYOUT_SINCE
            ));
        }
        warnings.extend(
            self.all
                .iter()
                .filter(of_environment)
                .filter(|l| l.from_future())
                .map(|l| {
                    crate::records::order::future_warning(
                        &l.record.task,
                        &l.record.environment,
                        l.record.started_at,
                        l.first_seen,
                        &l.file_name(),
                    )
                }),
        );
        warnings
    }
}

/// The record layout from which every check (predeploy's, smoke's checks and thresholds,
/// overlap's probes) is a `CheckResult`.
pub const CHECK_LAYOUT_SINCE: u32 = 2;

/// Whether a record's checks predate the shared layout. Such records are left out (and
/// named in the warnings) rather than read by guessing their shape.
fn older_check_layout(record: &RunRecord<serde_json::Value>) -> bool {
    record.schema_version < CHECK_LAYOUT_SINCE
        && matches!(record.task.as_str(), "predeploy" | "smoke" | "overlap")
}

/// A release as deploy and rollback record it: Fly version and image reference.
type ServingRelease = (Option<u64>, Option<String>);

/// Whether a task verdict lets a deployment proceed (pass, or warn: fine with a look).
pub fn passed(verdict: Verdict) -> bool {
    matches!(verdict, Verdict::Pass | Verdict::Warn)
}

/// Dry runs measure nothing about the environment; the map ignores them.
/// The most characters a report copies from one text of a record.
pub const REPORT_TEXT_LIMIT: usize = 2000;

/// Cuts every text in a record's result longer than [`REPORT_TEXT_LIMIT`] characters, with a
/// note saying how much was cut and where the whole text is, so a huge record (a copied
/// file, a runaway error message) cannot flood a report.
pub fn cut_long_text(value: &mut serde_json::Value, record: &std::path::Path) {
    match value {
        serde_json::Value::String(text) => {
            let total = text.chars().count();
            if total > REPORT_TEXT_LIMIT {
                let kept: String = text.chars().take(REPORT_TEXT_LIMIT).collect();
                *text = format!(
                    "{kept} … [cut: {} more characters; the whole text is in {}]",
                    total - REPORT_TEXT_LIMIT,
                    record.display()
                );
            }
        }
        serde_json::Value::Array(items) => {
            for item in items {
                cut_long_text(item, record);
            }
        }
        serde_json::Value::Object(fields) => {
            for field in fields.values_mut() {
                cut_long_text(field, record);
            }
        }
        _ => {}
    }
}

fn is_dry_run(result: &serde_json::Value) -> bool {
    result
        .get("dry_run")
        .and_then(|v| v.as_bool())
        .unwrap_or(false)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn long_texts_are_cut_with_a_note() {
        let huge = "x".repeat(REPORT_TEXT_LIMIT + 500);
        let mut value = serde_json::json!({
            "problems": [huge.clone(), "short"],
            "nested": { "detail": huge },
        });
        cut_long_text(&mut value, std::path::Path::new("runs/smoke.json"));
        let problem = value["problems"][0].as_str().unwrap();
        assert!(problem.starts_with(&"x".repeat(REPORT_TEXT_LIMIT)));
        assert!(
            problem.ends_with("[cut: 500 more characters; the whole text is in runs/smoke.json]"),
            "{problem}"
        );
        assert_eq!(value["problems"][1], "short");
        assert!(
            value["nested"]["detail"]
                .as_str()
                .unwrap()
                .contains("[cut: 500")
        );
    }
}
