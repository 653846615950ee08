//! The deployment decision map: each step's state computed from the saved results, and the
//! one next command (the first step not done). Pure: the clock and HEAD are inputs.
//!
//! Order for staging (and any deployable environment other than production): predeploy,
//! Fly login, secrets loaded, deploy, health, smoke thresholds, overlap, staging validated,
//! 24 h of stability, production checklist. Production moves the three gates (staging
//! validated, 24 h, checklist) before its own deploy. Environments not in `ops/deploy.toml`
//! (`local`, `adhoc`) have no deploy: predeploy, health, thresholds, overlap.

use chrono::{DateTime, Duration, Utc};
use serde::Serialize;

use super::assess::{self, Freshness, Overall, timestamp};
use super::checklist::{CHECKLIST_PATH, Checklist};
use super::records::{DeployView, ReleaseRefView, Results, Saved, passed};
use crate::verdict::Verdict;

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
}

/// Computes the map.
pub fn decision_map(input: &MapInputs) -> DecisionMap {
    let env = input.environment;
    let steps = if !input.deployable {
        vec![
            predeploy(input),
            health(input),
            thresholds(input),
            overlap(input),
        ]
    } else if env == PRODUCTION {
        vec![
            predeploy(input),
            fly_login(input),
            secrets(input),
            staging_validated(input),
            stability(input),
            production_checklist(input),
            deploy(input),
            health(input),
            thresholds(input),
            overlap(input),
        ]
    } else {
        vec![
            predeploy(input),
            fly_login(input),
            secrets(input),
            deploy(input),
            health(input),
            thresholds(input),
            overlap(input),
            staging_validated(input),
            stability(input),
            production_checklist(input),
        ]
    };
    let done = steps.iter().filter(|s| s.state == State::Done).count();
    let next = match steps.iter().find(|s| s.state != State::Done) {
        Some(step) => Next {
            step: step.id.to_string(),
            command: step.command.clone(),
            action: format!("{} ({}): {}", step.title, step.state.label(), step.evidence),
        },
        None if !input.deployable => Next {
            step: "all".into(),
            command: Some(format!("cargo xtask predeploy --env {STAGING}")),
            action: "every local step is done: prepare staging".into(),
        },
        None if env == PRODUCTION => Next {
            step: "all".into(),
            command: None,
            action: "production is deployed and verified: nothing left to run".into(),
        },
        None => Next {
            step: "all".into(),
            command: Some(format!("cargo xtask predeploy --env {PRODUCTION}")),
            action: format!("{env} is validated and stable: prepare production"),
        },
    };
    DecisionMap {
        environment: env.to_string(),
        steps,
        done,
        next,
    }
}

fn step(
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

/// State of a record-backed step: none or stale → pending, passed → done, skipped →
/// pending, failed → failed.
fn from_record<T>(
    record: Option<&Saved<T>>,
    freshness: Option<Freshness>,
    what: &str,
) -> (State, String) {
    let Some(r) = record else {
        return (State::Pending, format!("no {what} result yet"));
    };
    if let Some(Freshness::Stale(why)) = freshness {
        return (
            State::Pending,
            format!("last {what} {} is stale ({why})", r.verdict.label()),
        );
    }
    match r.verdict {
        Verdict::Fail => (
            State::Failed,
            format!("{what} failed at {}", timestamp(r.started_at)),
        ),
        Verdict::Skip => (
            State::Pending,
            format!("{what} skipped everything at {}", timestamp(r.started_at)),
        ),
        _ => (
            State::Done,
            format!("{what} passed at {}", timestamp(r.started_at)),
        ),
    }
}

fn env_flag(input: &MapInputs) -> String {
    if input.deployable {
        format!("--env {}", input.environment)
    } else {
        format!("--url {}", input.url.unwrap_or("http://127.0.0.1:8080"))
    }
}

fn predeploy(input: &MapInputs) -> Step {
    let record = input.results.predeploy.as_ref();
    let fresh = record.map(|r| assess::freshness(r, input.head, None));
    let (state, mut evidence) = from_record(record, fresh, "predeploy");
    if let (State::Failed, Some(r)) = (state, record) {
        let failed: Vec<&str> = r
            .result
            .checks
            .iter()
            .filter(|c| c.verdict() == Verdict::Fail)
            .map(|c| c.label())
            .collect();
        if !failed.is_empty() {
            evidence = format!("{evidence}: {}", failed.join(", "));
        }
    }
    let command = if input.deployable {
        format!("cargo xtask predeploy --env {}", input.environment)
    } else {
        "cargo xtask predeploy".to_string()
    };
    step(
        "predeploy",
        "Env file filled, predeploy checks pass",
        state,
        evidence,
        Some(command),
    )
}

fn fly_login(input: &MapInputs) -> Step {
    let r = input.results;
    let title = "Logged in to Fly";
    let whoami = Some("fly auth whoami".to_string());
    if let Some(d) = &r.deploy
        && let Some(user) = &d.result.fly_user
    {
        let evidence = format!("deploy ran as {user} at {}", timestamp(d.started_at));
        return step("fly_login", title, State::Done, evidence, whoami);
    }
    if let Some(s) = r.secrets.as_ref().filter(|s| passed(s.verdict)) {
        let evidence = format!("secrets reached Fly at {}", timestamp(s.started_at));
        return step("fly_login", title, State::Done, evidence, whoami);
    }
    if r.secrets.is_some() || r.deploy.is_some() {
        let evidence = "the last secrets/deploy run did not prove a login: check it";
        return step("fly_login", title, State::Unknown, evidence, whoami);
    }
    let evidence = "no secrets or deploy run has reached Fly yet";
    step(
        "fly_login",
        title,
        State::Pending,
        evidence,
        Some("fly auth login".into()),
    )
}

fn secrets(input: &MapInputs) -> Step {
    let (state, evidence) = from_record(input.results.secrets.as_ref(), None, "secrets");
    step(
        "secrets_loaded",
        "Secrets loaded into the Fly app",
        state,
        evidence,
        Some(format!("cargo xtask secrets --env {}", input.environment)),
    )
}

fn deploy(input: &MapInputs) -> Step {
    let r = input.results;
    let command = Some(format!("cargo xtask deploy --env {}", input.environment));
    let title = "Deployed at HEAD";
    let Some(d) = &r.deploy else {
        return step(
            "deploy",
            title,
            State::Pending,
            "no deploy recorded yet",
            command,
        );
    };
    if let Some(rolled_back) = rolled_back(r) {
        return step("deploy", title, State::Failed, rolled_back, command);
    }
    let fresh = assess::freshness(d, input.head, None);
    let (state, mut evidence) = from_record(Some(d), Some(fresh), "deploy");
    match state {
        State::Done => evidence = format!("{evidence}: {}", release_line(d)),
        State::Failed if !d.result.problems.is_empty() => {
            evidence = format!("{evidence}: {}", d.result.problems.join("; "))
        }
        _ => {}
    }
    step("deploy", title, state, evidence, command)
}

/// Whether the last deploy was rolled back (by itself, or by a later `rollback`), and to
/// what.
pub fn rolled_back(r: &Results) -> Option<String> {
    let d = r.deploy.as_ref()?;
    if let Some(rb) = r
        .rollback
        .as_ref()
        .filter(|rb| rb.started_at > d.started_at)
    {
        return Some(format!(
            "the deploy of {} was rolled back to {} at {}",
            timestamp(d.started_at),
            rb.result.target(),
            timestamp(rb.started_at)
        ));
    }
    d.result.rolled_back.as_ref().map(|rb| {
        format!(
            "the deploy of {} failed and rolled back to {}",
            timestamp(d.started_at),
            rb.target()
        )
    })
}

/// `release v12 (registry.fly.io/app:tag), strategy rolling`.
pub fn release_line(d: &Saved<DeployView>) -> String {
    let mut parts = Vec::new();
    match &d.result.release {
        Some(ReleaseRefView {
            version: Some(v),
            image_ref: Some(image),
            ..
        }) => parts.push(format!("release v{v} ({image})")),
        Some(ReleaseRefView {
            version: Some(v), ..
        }) => parts.push(format!("release v{v}")),
        _ => {}
    }
    if let Some(strategy) = &d.result.strategy {
        parts.push(format!("strategy {strategy}"));
    }
    if parts.is_empty() {
        "no release details recorded".into()
    } else {
        parts.join(", ")
    }
}

fn network_freshness<T>(input: &MapInputs, r: Option<&Saved<T>>) -> Option<Freshness> {
    let deployed = assess::deployed_at(input.results, input.deployable);
    r.map(|r| assess::freshness(r, input.head, deployed))
}

fn health(input: &MapInputs) -> Step {
    let record = input.results.smoke.as_ref();
    let command = Some(format!("cargo xtask smoke {}", env_flag(input)));
    let title = "Healthy (smoke checks)";
    let fresh = network_freshness(input, record);
    let (mut state, mut evidence) = from_record(record, fresh.clone(), "smoke");
    if let (Some(r), Some(Freshness::Current)) = (record, fresh) {
        let checks = &r.result.checks;
        let failed: Vec<&str> = checks
            .iter()
            .filter(|c| c.verdict() == Verdict::Fail)
            .map(|c| c.label())
            .collect();
        (state, evidence) = if checks.is_empty() {
            (
                State::Pending,
                "the last smoke run skipped its checks".into(),
            )
        } else if failed.is_empty() {
            (
                State::Done,
                format!(
                    "{} checks passed at {}",
                    checks.len(),
                    timestamp(r.started_at)
                ),
            )
        } else {
            (State::Failed, format!("failed: {}", failed.join(", ")))
        };
    }
    step("health", title, state, evidence, command)
}

fn thresholds(input: &MapInputs) -> Step {
    let record = input.results.smoke.as_ref();
    let command = Some(format!("cargo xtask smoke {}", env_flag(input)));
    let title = "Latency and error thresholds met";
    let fresh = network_freshness(input, record);
    let (mut state, mut evidence) = from_record(record, fresh.clone(), "smoke");
    if let (Some(r), Some(Freshness::Current)) = (record, fresh) {
        (state, evidence) = match &r.result.benchmark {
            None => (
                State::Pending,
                "the last smoke run skipped the benchmark".into(),
            ),
            Some(b) => {
                let breaches: Vec<String> = b
                    .endpoints
                    .iter()
                    .flat_map(|e| {
                        e.thresholds
                            .iter()
                            .filter(|t| t.verdict == Some(Verdict::Fail))
                            .map(move |t| format!("{}: {}", e.name, t.evidence))
                    })
                    .collect();
                let failed = b.verdict == Some(Verdict::Fail)
                    || b.endpoints.is_empty()
                    || !breaches.is_empty();
                if failed {
                    let detail = if breaches.is_empty() {
                        "the benchmark failed".to_string()
                    } else {
                        breaches.join("; ")
                    };
                    (State::Failed, detail)
                } else {
                    (
                        State::Done,
                        format!(
                            "{} endpoints within limits at {}",
                            b.endpoints.len(),
                            timestamp(r.started_at)
                        ),
                    )
                }
            }
        };
    }
    step("smoke_thresholds", title, state, evidence, command)
}

fn overlap(input: &MapInputs) -> Step {
    let record = input.results.overlap.as_ref();
    let fresh = network_freshness(input, record);
    let (state, mut evidence) = from_record(record, fresh, "overlap");
    if let (State::Done, Some(r)) = (state, record) {
        evidence = format!(
            "{evidence}: exactly one winner in each of {} round(s)",
            r.result.rounds.len()
        );
    }
    step(
        "overlap",
        "No double booking under concurrency",
        state,
        evidence,
        Some(format!(
            "cargo xtask overlap {} --mutating",
            env_flag(input)
        )),
    )
}

fn staging_validated(input: &MapInputs) -> Step {
    let a = assess::assess(input.staging, true, input.head);
    let state = match a.overall {
        Overall::Go => State::Done,
        Overall::NoGo => State::Failed,
        Overall::Incomplete => State::Pending,
    };
    let evidence = format!(
        "staging is {}: {}",
        a.overall.label(),
        a.reasons.first().map(String::as_str).unwrap_or("")
    );
    step(
        "staging_validated",
        "Staging validated at HEAD",
        state,
        evidence,
        Some(format!("cargo xtask status --env {STAGING}")),
    )
}

fn stability(input: &MapInputs) -> Step {
    let s = input.staging;
    let title = format!("Staging stable for {STABILITY_HOURS} h");
    let smoke = Some(format!("cargo xtask smoke --env {STAGING}"));
    let (state, evidence) = stability_state(s, input.now, input.head);
    let needs_deploy = s.deploy.as_ref().is_none_or(|d| {
        !passed(d.verdict) || assess::freshness(d, input.head, None) != Freshness::Current
    }) || rolled_back(s).is_some();
    let command = if state == State::Pending && needs_deploy {
        Some(format!("cargo xtask deploy --env {STAGING}"))
    } else {
        smoke
    };
    step("stability_24h", title, state, evidence, command)
}

/// Done when the last staging deploy shipped HEAD and passed at least 24 h ago, nothing
/// rolled it back, and the newest smoke run passed and started at least 24 h after that
/// deploy: the release production would get has served for a day and still meets the
/// thresholds. A newer deploy restarts the clock.
pub fn stability_state(s: &Results, now: DateTime<Utc>, head: Option<&str>) -> (State, String) {
    let Some(d) = s.deploy.as_ref() else {
        return (State::Pending, "no staging deploy recorded yet".into());
    };
    if !passed(d.verdict) {
        return (
            State::Pending,
            "the last staging deploy did not pass".into(),
        );
    }
    if rolled_back(s).is_some() {
        return (
            State::Pending,
            "the last staging deploy was rolled back".into(),
        );
    }
    if let Freshness::Stale(why) = assess::freshness(d, head, None) {
        return (
            State::Pending,
            format!("staging does not run HEAD ({why}): deploy it, then wait {STABILITY_HOURS} h"),
        );
    }
    let due = d.started_at + Duration::hours(STABILITY_HOURS);
    if now < due {
        return (
            State::Pending,
            format!(
                "deployed {} ({}); run smoke again after {}",
                timestamp(d.started_at),
                assess::age(d.started_at, now),
                timestamp(due)
            ),
        );
    }
    match s.smoke.as_ref() {
        Some(smoke) if smoke.started_at >= due && passed(smoke.verdict) => (
            State::Done,
            format!(
                "deployed {}, smoke passed {} later",
                timestamp(d.started_at),
                assess::age(d.started_at, smoke.started_at).trim_end_matches(" ago")
            ),
        ),
        Some(smoke) if smoke.started_at >= due => (
            State::Failed,
            format!(
                "smoke failed at {}, {STABILITY_HOURS} h after the deploy",
                timestamp(smoke.started_at)
            ),
        ),
        _ => (
            State::Pending,
            format!(
                "deployed {}: {STABILITY_HOURS} h have passed; run smoke now",
                timestamp(d.started_at)
            ),
        ),
    }
}

fn production_checklist(input: &MapInputs) -> Step {
    let title = "Production checklist complete";
    let (state, evidence) = match input.checklist {
        None => (State::Unknown, format!("{CHECKLIST_PATH} not found")),
        Some(c) if c.complete() => (
            State::Done,
            format!("{} of {} items checked", c.checked, c.total),
        ),
        Some(c) => {
            let first = c
                .sections
                .iter()
                .flat_map(|s| &s.open)
                .next()
                .map(String::as_str)
                .unwrap_or("");
            (
                State::Pending,
                format!(
                    "{} of {} items checked; tick the open items in {CHECKLIST_PATH} (first: {first})",
                    c.checked, c.total
                ),
            )
        }
    };
    step("production_checklist", title, state, evidence, None)
}
