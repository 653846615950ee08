//! The steps of the decision map, each computed from the results it depends on.

use super::assess::{self, Freshness, Overall, timestamp};
use super::checklist::CHECKLIST_PATH;
use super::deploys::{release_line, rolled_back};
use super::map::{MapInputs, STAGING, State, Step, StepId, step};
use super::records::{Saved, passed};
use crate::verdict::Verdict;

/// State of a record-backed step: none or stale → pending, passed → done, skipped →
/// pending, failed → failed.
pub(super) fn from_record<T>(
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

pub(super) fn predeploy(input: &MapInputs) -> Step {
    let record = input.results.predeploy.as_ref();
    let fresh = record.map(|r| assess::freshness(r, input.head, None));
    let (state, mut evidence) = from_record(record, fresh, "predeploy");
    if let (State::Failed, Some(r)) = (state, record) {
        let failed: Vec<&str> = r
            .result
            .checks
            .iter()
            .filter(|c| c.verdict() == Verdict::Fail)
            .map(|c| c.id.as_str())
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
        StepId::Predeploy,
        "Env file filled, predeploy checks pass",
        state,
        evidence,
        Some(command),
    )
}

pub(super) fn fly_login(input: &MapInputs) -> Step {
    let r = input.results;
    let title = "Logged in to Fly";
    let whoami = Some("fly auth whoami".to_string());
    if let Some(d) = &r.deploy
        && let Some(user) = &d.result.fly_user
    {
        let evidence = format!("deploy ran as {user} at {}", timestamp(d.started_at));
        return step(StepId::FlyLogin, title, State::Done, evidence, whoami);
    }
    if let Some(s) = r.secrets.as_ref().filter(|s| passed(s.verdict)) {
        let evidence = format!("secrets reached Fly at {}", timestamp(s.started_at));
        return step(StepId::FlyLogin, title, State::Done, evidence, whoami);
    }
    if r.secrets.is_some() || r.deploy.is_some() {
        let evidence = "the last secrets/deploy run did not prove a login: check it";
        return step(StepId::FlyLogin, title, State::Unknown, evidence, whoami);
    }
    let evidence = "no secrets or deploy run has reached Fly yet";
    step(
        StepId::FlyLogin,
        title,
        State::Pending,
        evidence,
        Some("fly auth login".into()),
    )
}

pub(super) fn secrets(input: &MapInputs) -> Step {
    let changed = input.results.secrets_changed.clone().map(Freshness::Stale);
    let (state, evidence) = from_record(input.results.secrets.as_ref(), changed, "secrets");
    step(
        StepId::SecretsLoaded,
        "Secrets loaded into the Fly app",
        state,
        evidence,
        Some(format!("cargo xtask secrets --env {}", input.environment)),
    )
}

pub(super) fn deploy(input: &MapInputs) -> Step {
    let r = input.results;
    let command = Some(format!("cargo xtask deploy --env {}", input.environment));
    let title = "Deployed at HEAD";
    let Some(d) = &r.deploy else {
        return step(
            StepId::Deploy,
            title,
            State::Pending,
            "no deploy recorded yet",
            command,
        );
    };
    if let Some(rolled_back) = rolled_back(r) {
        return step(StepId::Deploy, title, State::Failed, rolled_back, command);
    }
    let fresh = assess::freshness(d, input.head, None);
    // A promote is production's deploy: its evidence names it, with its proof and smoke.
    let (state, mut evidence) = from_record(Some(d), Some(fresh), &d.task);
    match (state, &d.result.promoted) {
        (State::Done, Some(promoted)) => {
            evidence = format!("{evidence}: {}, {}", release_line(d), promoted.line())
        }
        (State::Done, None) => evidence = format!("{evidence}: {}", release_line(d)),
        (State::Failed, _) if !d.result.problems.is_empty() => {
            evidence = format!("{evidence}: {}", d.result.problems.join("; "))
        }
        _ => {}
    }
    step(StepId::Deploy, title, state, evidence, command)
}

/// Whether the last deploy was rolled back (by itself, or by a later `rollback`), and to
/// what.
fn network_freshness<T>(input: &MapInputs, r: Option<&Saved<T>>) -> Option<Freshness> {
    let deployed = assess::deployed_at(input.results, input.deployable);
    r.map(|r| assess::freshness(r, input.head, deployed))
}

pub(super) fn health(input: &MapInputs) -> Step {
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
            .map(|c| c.id.as_str())
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
    step(StepId::Health, title, state, evidence, command)
}

pub(super) fn thresholds(input: &MapInputs) -> Step {
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
                            .filter(|t| t.check.verdict() == Verdict::Fail)
                            .map(move |t| format!("{}: {}", e.name, t.check.summary()))
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
    step(StepId::SmokeThresholds, title, state, evidence, command)
}

pub(super) fn overlap(input: &MapInputs) -> Step {
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
        StepId::Overlap,
        "No double booking under concurrency",
        state,
        evidence,
        Some(format!(
            "cargo xtask overlap {} --mutating",
            env_flag(input)
        )),
    )
}

pub(super) fn staging_validated(input: &MapInputs) -> Step {
    // Staging's own verdict, held to its own required steps (computed here rather than from
    // staging's map, which contains this step).
    let staging = MapInputs {
        environment: STAGING,
        deployable: true,
        results: input.staging,
        staging: input.staging,
        ..*input
    };
    let own = [
        predeploy(&staging),
        deploy(&staging),
        health(&staging),
        thresholds(&staging),
        overlap(&staging),
    ];
    let a = assess::reconcile(assess::assess(input.staging, true, input.head), &own);
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
        StepId::StagingValidated,
        "Staging validated at HEAD",
        state,
        evidence,
        Some(format!("cargo xtask status --env {STAGING}")),
    )
}

pub(super) fn production_checklist(input: &MapInputs) -> Step {
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
    step(StepId::ProductionChecklist, title, state, evidence, None)
}
