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

use std::path::PathBuf;

use anyhow::Context;
use serde::Deserialize;
use serde::de::DeserializeOwned;

use crate::record::{self, RunRecord};
use crate::repo::Repo;
use crate::verdict::Verdict;

/// The environment `predeploy` records when it checked every environment.
pub const ALL_ENVIRONMENTS: &str = "all";

/// One item of a task with a verdict: a predeploy check or a smoke check.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default)]
pub struct CheckView {
    /// Stable id (predeploy).
    pub id: String,
    /// Short name (smoke).
    pub name: String,
    /// What it verifies.
    pub verifies: String,
    /// Its verdict; absent reads as a failure, so that a drifted record never passes.
    pub verdict: Option<Verdict>,
    /// Findings: a list (predeploy) or one sentence (smoke).
    pub evidence: EvidenceView,
    /// How to fix it.
    pub fix: Option<String>,
}

impl CheckView {
    /// The id, or the name when the task gives no id.
    pub fn label(&self) -> &str {
        if self.id.is_empty() {
            &self.name
        } else {
            &self.id
        }
    }

    /// The verdict, a failure when the record did not say.
    pub fn verdict(&self) -> Verdict {
        self.verdict.unwrap_or(Verdict::Fail)
    }
}

/// The evidence of a check: predeploy saves findings, smoke one sentence.
#[derive(Debug, Clone, Deserialize)]
#[serde(untagged)]
pub enum EvidenceView {
    /// One sentence.
    Text(String),
    /// Findings with their places.
    Findings(Vec<FindingView>),
}

impl Default for EvidenceView {
    fn default() -> Self {
        EvidenceView::Text(String::new())
    }
}

/// One predeploy finding.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default)]
pub struct FindingView {
    /// Its verdict.
    pub verdict: Option<Verdict>,
    /// Repository-relative path.
    pub path: Option<String>,
    /// 1-based line.
    pub line: Option<usize>,
    /// What was found.
    pub message: String,
}

/// The `result` of a `predeploy` record.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default)]
pub struct PredeployView {
    /// Every check.
    pub checks: Vec<CheckView>,
}

/// The `result` of a `smoke` record.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default)]
pub struct SmokeView {
    /// The base URL measured.
    pub url: Option<String>,
    /// Phase 1 checks.
    pub checks: Vec<CheckView>,
    /// Phase 2, unless skipped.
    pub benchmark: Option<BenchmarkView>,
}

/// The smoke benchmark.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default)]
pub struct BenchmarkView {
    /// One result per endpoint.
    pub endpoints: Vec<EndpointView>,
    /// The benchmark's verdict.
    pub verdict: Option<Verdict>,
}

/// One benchmarked endpoint.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default)]
pub struct EndpointView {
    /// Short name.
    pub name: String,
    /// Path below the base URL.
    pub path: String,
    /// Measured requests.
    pub requests: u64,
    /// Failed share in percent.
    pub error_rate_pct: f64,
    /// Latency of every answered request.
    pub latency: LatencyView,
    /// The limits with their measured values.
    pub thresholds: Vec<ThresholdView>,
    /// Fail when any threshold fails.
    pub verdict: Option<Verdict>,
}

/// Latency figures in milliseconds.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default)]
pub struct LatencyView {
    /// Median.
    pub p50_ms: f64,
    /// 95th percentile.
    pub p95_ms: f64,
    /// 99th percentile.
    pub p99_ms: f64,
    /// Slowest.
    pub max_ms: f64,
}

/// One limit held against one measured value.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default)]
pub struct ThresholdView {
    /// `p95 latency` or `error rate`.
    pub metric: String,
    /// The limit.
    pub limit: f64,
    /// `ms` or `%`.
    pub unit: String,
    /// Its verdict.
    pub verdict: Option<Verdict>,
    /// One sentence.
    pub evidence: String,
}

/// The `result` of an `overlap` record (`OverlapReport`).
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default)]
pub struct OverlapView {
    /// The base URL raced against.
    pub url: Option<String>,
    /// The races run.
    pub rounds: Vec<RoundView>,
    /// Codes this run created that are still active.
    pub leftovers: Vec<String>,
}

/// One round: a race of N requests for the same dates and the checks after it.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default)]
pub struct RoundView {
    /// 1-based round number.
    pub round: usize,
    /// The round's verdict (race and checks).
    pub verdict: Option<Verdict>,
    /// The race.
    pub race: RaceView,
    /// Availability after the race.
    pub availability: Option<ProbeView>,
    /// The boundary probes.
    pub boundary: Vec<ProbeView>,
}

/// The verdict on one race.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default)]
pub struct RaceView {
    /// Its verdict.
    pub verdict: Option<Verdict>,
    /// N.
    pub requests: usize,
    /// Reservation codes of every 201.
    pub winners: Vec<String>,
    /// How many got 409 `date_overlap`.
    pub conflicts: usize,
    /// Everything else, grouped.
    pub others: Vec<OtherView>,
    /// What broke the rule.
    pub problems: Vec<String>,
}

/// A check after a race.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default)]
pub struct ProbeView {
    /// Short name.
    pub name: String,
    /// Its verdict.
    pub verdict: Option<Verdict>,
    /// What it saw.
    pub detail: String,
}

/// Requests of a race that ended in the same unexpected way.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default)]
pub struct OtherView {
    /// The outcome label.
    pub label: String,
    /// How many.
    pub count: usize,
}

/// The `result` of a `secrets` record (`SecretsResult`). Names and states only: the
/// record never holds a value, and the report shows none.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default)]
pub struct SecretsView {
    /// The keys sent and what Fly reports for each.
    pub keys: Vec<SecretKeyView>,
    /// Why it failed, if it did.
    pub problems: Vec<String>,
}

/// One secret key as Fly reports it.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default)]
pub struct SecretKeyView {
    /// The variable name.
    pub name: String,
    /// Whether Fly has it.
    pub present: bool,
}

/// A Fly release as recorded (`ReleaseRef`).
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default)]
pub struct ReleaseRefView {
    /// Fly's release number.
    pub version: Option<u64>,
    /// The image it ran.
    pub image_ref: Option<String>,
    /// Fly's status word.
    pub status: String,
}

/// The `result` of a `deploy` record (`DeployResult`).
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default)]
pub struct DeployView {
    /// The deploy strategy.
    pub strategy: Option<String>,
    /// The Fly account it deployed as (proves the login).
    pub fly_user: Option<String>,
    /// The release it created.
    pub release: Option<ReleaseRefView>,
    /// The rollback it ran by itself after a failure (`--rollback-on-failure`).
    pub rolled_back: Option<RollbackView>,
    /// Why it failed, if it did.
    pub problems: Vec<String>,
}

/// The `result` of a `rollback` record (`RollbackResult`).
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default)]
pub struct RollbackView {
    /// The release current before the rollback.
    pub from: Option<ReleaseRefView>,
    /// The image deployed.
    pub to_image: Option<String>,
    /// The release whose image was deployed.
    pub to_version: Option<u64>,
    /// Why it failed, if it did.
    pub problems: Vec<String>,
}

impl RollbackView {
    /// `release v11 (registry.fly.io/app:tag)`, or what is known of it.
    pub fn target(&self) -> String {
        match (self.to_version, &self.to_image) {
            (Some(v), Some(image)) => format!("release v{v} ({image})"),
            (Some(v), None) => format!("release v{v}"),
            (None, Some(image)) => image.clone(),
            (None, None) => "the previous release".to_string(),
        }
    }
}

/// A saved record with the file it came from.
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

    /// `predeploy` without `--env` checks every environment and is saved under `all`; the
    /// newer of that and the environment's own run counts.
    fn latest_predeploy(&self, environment: &str) -> anyhow::Result<Option<Saved<PredeployView>>> {
        let own = self.latest::<PredeployView>("predeploy", environment)?;
        let all = self.latest::<PredeployView>("predeploy", ALL_ENVIRONMENTS)?;
        Ok(match (own, all) {
            (Some(own), Some(all)) if all.started_at > own.started_at => Some(all),
            (own, all) => own.or(all),
        })
    }

    /// The results the report reads for `environment`.
    pub fn results(&self, environment: &str) -> anyhow::Result<Results> {
        Ok(Results {
            predeploy: self.latest_predeploy(environment)?,
            smoke: self.latest("smoke", environment)?,
            overlap: self.latest("overlap", environment)?,
            secrets: self.latest("secrets", environment)?,
            deploy: self.latest("deploy", environment)?,
            rollback: self.latest("rollback", environment)?,
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
