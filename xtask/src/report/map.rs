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

/// The id of a step of the map: stable, serialized as its snake_case name (`secrets_loaded`),
/// and a type, so a misspelt id does not compile.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum StepId {
    /// `cargo xtask predeploy` passed.
    Predeploy,
    /// flyctl is logged in and sees the app.
    FlyLogin,
    /// The environment's secrets are staged on the app.
    SecretsLoaded,
    /// The current build is deployed and proven to serve.
    Deploy,
    /// The service answers health and readiness.
    Health,
    /// Smoke's thresholds hold.
    SmokeThresholds,
    /// The overlap guarantee was proven.
    Overlap,
    /// Staging is GO for the build.
    StagingValidated,
    /// 24 hours of watched stability on staging.
    #[serde(rename = "stability_24h")]
    Stability24h,
    /// The production checklist is complete.
    ProductionChecklist,
}

impl StepId {
    /// Every step id, in no particular order.
    pub const ALL: [StepId; 10] = [
        StepId::Predeploy,
        StepId::FlyLogin,
        StepId::SecretsLoaded,
        StepId::Deploy,
        StepId::Health,
        StepId::SmokeThresholds,
        StepId::Overlap,
        StepId::StagingValidated,
        StepId::Stability24h,
        StepId::ProductionChecklist,
    ];

    /// Its name, as records, `status --json` and `staging --from` spell it.
    pub fn as_str(self) -> &'static str {
        match self {
            StepId::Predeploy => "predeploy",
            StepId::FlyLogin => "fly_login",
            StepId::SecretsLoaded => "secrets_loaded",
            StepId::Deploy => "deploy",
            StepId::Health => "health",
            StepId::SmokeThresholds => "smoke_thresholds",
            StepId::Overlap => "overlap",
            StepId::StagingValidated => "staging_validated",
            StepId::Stability24h => "stability_24h",
            StepId::ProductionChecklist => "production_checklist",
        }
    }

    /// The id named `text`, when there is one.
    pub fn parse(text: &str) -> Option<StepId> {
        StepId::ALL.into_iter().find(|id| id.as_str() == text)
    }
}

impl std::fmt::Display for StepId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One step of the map.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Step {
    /// Stable id, e.g. `secrets_loaded`.
    pub id: StepId,
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
    pub fn step(&self, id: StepId) -> Option<&Step> {
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
    id: StepId,
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn step_ids_serialize_and_parse_as_they_are_spelt() {
        // Records, `status --json` and `staging --from` carry these names: one spelling each.
        for id in StepId::ALL {
            assert_eq!(serde_json::to_value(id).unwrap(), id.as_str());
            assert_eq!(StepId::parse(id.as_str()), Some(id));
        }
        assert_eq!(StepId::Stability24h.as_str(), "stability_24h");
        assert_eq!(StepId::parse("stability24h"), None);
    }
}
