//! Views of the results the tasks save: each mirrors the JSON of a task's result type
//! (`PredeployReport`, `SmokeReport`, `OverlapReport`, `SecretsResult`, `DeployResult`,
//! `RollbackResult`) with `#[serde(default)]` everywhere, so records of older or newer
//! versions still decode. See `records.rs` for why views and not the types themselves.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::verdict::Verdict;

/// One check of any task (`crate::check::CheckResult`): a predeploy check, a smoke check or
/// threshold, an overlap probe. Every task saves this one shape.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default)]
pub struct CheckView {
    /// Stable id.
    pub id: String,
    /// What it verifies.
    pub verifies: String,
    /// Its verdict; absent reads as a failure, so that a drifted record never passes.
    pub verdict: Option<Verdict>,
    /// Findings with their places.
    pub evidence: Vec<FindingView>,
    /// How to fix it.
    pub fix: Option<String>,
}

impl CheckView {
    /// The verdict, a failure when the record did not say.
    pub fn verdict(&self) -> Verdict {
        self.verdict.unwrap_or(Verdict::Fail)
    }

    /// The findings worth a look (not passes), each with its place; when all passed, the
    /// first finding and how many more there are.
    pub fn summary(&self) -> String {
        let worth_a_look: Vec<String> = self
            .evidence
            .iter()
            .filter(|f| f.verdict.is_some_and(|v| v != Verdict::Pass))
            .map(FindingView::located)
            .collect();
        if !worth_a_look.is_empty() {
            return worth_a_look.join("\n");
        }
        match self.evidence.as_slice() {
            [] => String::new(),
            [one] => one.message.clone(),
            [first, rest @ ..] => format!("{} (+{} more)", first.message, rest.len()),
        }
    }
}

/// One finding of a check.
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

impl FindingView {
    /// `path:line: message`, or the message alone.
    pub fn located(&self) -> String {
        match (&self.path, self.line) {
            (Some(p), Some(l)) => format!("{p}:{l}: {}", self.message),
            (Some(p), None) => format!("{p}: {}", self.message),
            _ => self.message.clone(),
        }
    }
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
    /// What the version endpoint answered (`{state, body | detail}`), when recorded.
    pub served_version: Option<serde_json::Value>,
}

impl SmokeView {
    /// The commit the service said it was built from, when its version endpoint said one.
    pub fn served_commit(&self) -> Option<&str> {
        self.served_version
            .as_ref()?
            .get("body")?
            .get("commit")?
            .as_str()
    }

    /// What the version endpoint told, for the report: `commit abc123`, `no version
    /// endpoint`, or `not asked`.
    pub fn served_note(&self) -> String {
        let Some(served) = &self.served_version else {
            return "not recorded".to_string();
        };
        match served.get("state").and_then(|s| s.as_str()) {
            Some("answered") => match self.served_commit() {
                Some(commit) => format!("the version endpoint reported commit {commit}"),
                None => "the version endpoint answered without a commit".to_string(),
            },
            Some("no_endpoint") => "no version endpoint (404)".to_string(),
            Some("unreadable") => format!(
                "the version endpoint could not be read: {}",
                served.get("detail").and_then(|d| d.as_str()).unwrap_or("")
            ),
            _ => "not asked".to_string(),
        }
    }
}

/// The smoke benchmark.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default)]
pub struct BenchmarkView {
    /// The load the figures were measured at.
    pub load: Option<LoadView>,
    /// One result per endpoint.
    pub endpoints: Vec<EndpointView>,
    /// The benchmark's verdict.
    pub verdict: Option<Verdict>,
}

/// How smoke generated its load (`LoadSettings`).
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default)]
pub struct LoadView {
    /// Connections (closed model) or the bound on requests in flight (open model).
    pub concurrency: u32,
    /// Open model: requests per second per endpoint.
    pub rate: Option<f64>,
    /// Measured requests per endpoint, when bounded by count.
    pub requests: Option<u64>,
    /// Measured time per endpoint, when bounded by time.
    pub duration_ms: Option<u64>,
    /// Requests sent first and left out.
    pub warmup: u64,
}

impl LoadView {
    /// `closed model, 8 connections, 400 requests per endpoint (40 warm-up)`.
    pub fn describe(&self) -> String {
        let model = match self.rate {
            Some(rate) => format!(
                "open model, {rate} requests/s per endpoint, at most {} in flight",
                self.concurrency
            ),
            None => format!("closed model, {} connections", self.concurrency),
        };
        let bound = match (self.requests, self.duration_ms) {
            (Some(n), _) => format!("{n} requests per endpoint"),
            (None, Some(ms)) => format!("{} s per endpoint", ms as f64 / 1000.0),
            (None, None) => "unbounded".to_string(),
        };
        format!("{model}, {bound} ({} warm-up)", self.warmup)
    }
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

/// One limit held against one measured value: a check plus the numbers it compared.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default)]
pub struct ThresholdView {
    /// The check; its id is what is limited (`p95 latency`, `error rate`).
    #[serde(flatten)]
    pub check: CheckView,
    /// The limit.
    pub limit: f64,
    /// `ms` or `%`.
    pub unit: String,
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
    /// From the release of the requests to the last answer, in milliseconds.
    pub race_ms: f64,
    /// Availability after the race.
    pub availability: Option<CheckView>,
    /// The boundary probes.
    pub boundary: Vec<CheckView>,
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
    /// The salted digest of what was sent (`secrets::sent`), when recorded.
    pub sent: Option<SentView>,
}

/// The salted digest of the keys and values a `secrets` run sent.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default)]
pub struct SentView {
    /// The salt, hex.
    pub salt: String,
    /// The digest, hex.
    pub sha256: String,
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
    /// What it proved, when the record is a promote's (see `report::promotes`).
    #[serde(skip)]
    pub promoted: Option<super::promoted::PromotedView>,
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

/// The `result` of a `watch` record, as far as the gate reads it.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default)]
pub struct WatchView {
    /// The samples, each with its time.
    pub samples: Vec<SampleView>,
    /// The statistics, with the breaches.
    pub stats: WatchStatsView,
}

/// A sample's time and the build it saw.
#[derive(Debug, Clone, Deserialize)]
pub struct SampleView {
    /// When it was taken.
    pub at: DateTime<Utc>,
    /// What the version endpoint said, when it answered.
    #[serde(default)]
    pub build: Option<BuildView>,
}

/// The build a sample saw.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default)]
pub struct BuildView {
    /// The image the machine runs, when on Fly.
    pub image: Option<String>,
}

/// The breaches of a watch record.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default)]
pub struct WatchStatsView {
    /// Every breach.
    pub breaches: Vec<BreachView>,
}

/// One breach, as recorded by `watch`.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
pub struct BreachView {
    /// When it was seen.
    pub at: DateTime<Utc>,
    /// Its kind (`availability`, `error_rate`, `latency`, `log_lines`, `version_change`,
    /// `restart`).
    pub kind: String,
    /// What was seen.
    #[serde(default)]
    pub detail: String,
    /// For a version change, the build that started serving.
    #[serde(default)]
    pub to_build: Option<String>,
}
