//! The decision map's vocabulary: its environments, the state of a step, a step, the map and
//! what it is computed from. A leaf of the report: the steps, the deploy and stability gates
//! and the map itself all build on it, and it imports none of them.

use chrono::{DateTime, Utc};
use serde::Serialize;

use super::checklist::Checklist;
use super::records::Results;

/// The environment whose results prove a release before production.
pub const STAGING: &str = "staging";
/// The environment the map leads to.
pub const PRODUCTION: &str = "production";
/// How long staging must run the release before production.
pub const STABILITY_HOURS: i64 = 24;

/// The state of one step.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum State {
    /// Proven by a result.
    Done,
    /// A result says it is broken.
    Failed,
    /// Not proven yet (no result, or a stale one).
    Pending,
    /// The results cannot tell.
    Unknown,
}

impl State {
    /// `done`, `FAILED`, `pending`, `unknown`.
    pub fn label(self) -> &'static str {
        match self {
            State::Done => "done",
            State::Failed => "FAILED",
            State::Pending => "pending",
            State::Unknown => "unknown",
        }
    }
}

/// One step of the map.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Step {
    /// Stable id, e.g. `secrets_loaded`.
    pub id: &'static str,
    /// What the step establishes.
    pub title: String,
    /// Its state.
    pub state: State,
    /// Why, from the results.
    pub evidence: String,
    /// The command that advances it; `None` for human work (the checklist).
    pub command: Option<String>,
}

/// What to do next.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Next {
    /// The step it advances, or `all` when every step is done.
    pub step: String,
    /// The command to run, when the next action is one.
    pub command: Option<String>,
    /// One sentence.
    pub action: String,
}

/// The map of one environment.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct DecisionMap {
    /// The environment it describes.
    pub environment: String,
    /// The steps in order.
    pub steps: Vec<Step>,
    /// Done steps.
    pub done: usize,
    /// The one next action.
    pub next: Next,
}

impl DecisionMap {
    /// The step `id`, when the map has it.
    pub fn step(&self, id: &str) -> Option<&Step> {
        self.steps.iter().find(|s| s.id == id)
    }
}

/// Everything the map is computed from.
#[derive(Debug, Clone, Copy)]
pub struct MapInputs<'a> {
    /// The environment.
    pub environment: &'a str,
    /// Whether it is a Fly environment from `ops/deploy.toml` (it has deploys).
    pub deployable: bool,
    /// Its latest results.
    pub results: &'a Results,
    /// Staging's results (the same as `results` when the environment is staging).
    pub staging: &'a Results,
    /// The production checklist, when the file exists.
    pub checklist: Option<&'a Checklist>,
    /// URL for commands of environments without a config entry.
    pub url: Option<&'a str>,
    /// The clock.
    pub now: DateTime<Utc>,
    /// The commit checked out.
    pub head: Option<&'a str>,
    /// Share of the 24 h since staging's deploy that watch runs must cover (`[watch]
    /// coverage_pct` in `ops/deploy.toml`).
    pub watch_coverage_pct: f64,
}

pub(super) fn step(
    id: &'static str,
    title: impl Into<String>,
    state: State,
    evidence: impl Into<String>,
    command: Option<String>,
) -> Step {
    Step {
        id,
        title: title.into(),
        state,
        evidence: evidence.into(),
        command,
    }
}
