//! The overall verdict (GO / NO-GO / INCOMPLETE) and its reasons. Pure functions of the
//! results and HEAD, so they are unit-tested on their own.

use chrono::{DateTime, Utc};
use serde::Serialize;

pub use super::freshness::{Freshness, Provenance, freshness, provenance, timestamp};
use super::map::StepId;
use super::records::{Results, Saved, passed};
use crate::verdict::Verdict;

/// The overall verdict of a report.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub enum Overall {
    /// Every required result is present, measured at HEAD, and passed.
    #[serde(rename = "GO")]
    Go,
    /// A required result measured at HEAD failed.
    #[serde(rename = "NO-GO")]
    NoGo,
    /// A required result is missing, skipped, or measured another commit or release.
    #[serde(rename = "INCOMPLETE")]
    Incomplete,
}

impl Overall {
    /// `GO`, `NO-GO` or `INCOMPLETE`.
    pub fn label(self) -> &'static str {
        match self {
            Overall::Go => "GO",
            Overall::NoGo => "NO-GO",
            Overall::Incomplete => "INCOMPLETE",
        }
    }
}

/// A required result and what it says.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Requirement {
    /// No result saved.
    Missing,
    /// A result that does not describe HEAD (or the current release).
    Stale {
        /// Its verdict.
        verdict: Verdict,
        /// Why it is stale.
        why: String,
    },
    /// A result at HEAD.
    Measured {
        /// Its verdict.
        verdict: Verdict,
        /// What failed, one line each (empty on a pass).
        failures: Vec<String>,
    },
}

/// The overall verdict with its reasons.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Assessment {
    /// GO, NO-GO or INCOMPLETE.
    pub overall: Overall,
    /// Why, one sentence each.
    pub reasons: Vec<String>,
}

/// What a saved result contributes to the verdict.
pub fn requirement<T>(
    record: Option<&Saved<T>>,
    head: Option<&str>,
    deployed_at: Option<DateTime<Utc>>,
    failures: impl FnOnce(&Saved<T>) -> Vec<String>,
) -> Requirement {
    let Some(record) = record else {
        return Requirement::Missing;
    };
    match freshness(record, head, deployed_at) {
        Freshness::Stale(why) => Requirement::Stale {
            verdict: record.verdict,
            why,
        },
        Freshness::Current => Requirement::Measured {
            verdict: record.verdict,
            failures: if passed(record.verdict) {
                Vec::new()
            } else {
                failures(record)
            },
        },
    }
}

/// The rule: any result at HEAD failed → NO-GO; else anything missing, skipped or stale →
/// INCOMPLETE; else GO. A stale failure is INCOMPLETE: it says nothing about HEAD.
pub fn overall(requirements: &[(&str, Requirement)]) -> Assessment {
    let mut failed = Vec::new();
    let mut incomplete = Vec::new();
    for (task, requirement) in requirements {
        match requirement {
            Requirement::Missing => incomplete.push(format!(
                "no {task} result for this environment: run it (see the decision map)"
            )),
            Requirement::Stale { verdict, why } => incomplete.push(format!(
                "the {task} result ({}) is stale ({why}): rerun it",
                verdict.label()
            )),
            Requirement::Measured {
                verdict: Verdict::Skip,
                ..
            } => incomplete.push(format!("{task} skipped everything: nothing was verified")),
            Requirement::Measured { verdict, failures } if !passed(*verdict) => {
                if failures.is_empty() {
                    failed.push(format!("{task} failed"));
                }
                failed.extend(failures.iter().map(|f| format!("{task}: {f}")));
            }
            Requirement::Measured { .. } => {}
        }
    }
    if !failed.is_empty() {
        failed.extend(incomplete);
        return Assessment {
            overall: Overall::NoGo,
            reasons: failed,
        };
    }
    if !incomplete.is_empty() {
        return Assessment {
            overall: Overall::Incomplete,
            reasons: incomplete,
        };
    }
    let tasks: Vec<&str> = requirements.iter().map(|(t, _)| *t).collect();
    Assessment {
        overall: Overall::Go,
        reasons: vec![format!("{} passed at HEAD", join_words(&tasks))],
    }
}

/// The decision-map steps that must be done for an environment's own GO. Local and ad-hoc
/// runs: the four they have. Staging: the deploy and its checks, not the steps that lead on to
/// production. Production: every step, the production gates included.
pub fn required_for_go(step_id: StepId, environment: &str, deployable: bool) -> bool {
    const OWN: [StepId; 5] = [
        StepId::Predeploy,
        StepId::Deploy,
        StepId::Health,
        StepId::SmokeThresholds,
        StepId::Overlap,
    ];
    const PRODUCTION_GATES: [StepId; 3] = [
        StepId::StagingValidated,
        StepId::Stability24h,
        StepId::ProductionChecklist,
    ];
    OWN.contains(&step_id)
        || (deployable
            && environment == super::map::PRODUCTION
            && PRODUCTION_GATES.contains(&step_id))
}

/// Holds the verdict to the decision map, so the two cannot disagree: a GO whose required
/// steps are not all done (a smoke run that skipped its benchmark, an overlap with nothing to
/// race, a production gate still open) becomes INCOMPLETE, or NO-GO where a step failed.
pub fn reconcile<'a>(
    assessment: Assessment,
    required: impl IntoIterator<Item = &'a super::map::Step>,
) -> Assessment {
    use super::map::State;
    if assessment.overall != Overall::Go {
        return assessment;
    }
    let mut failed = Vec::new();
    let mut open = Vec::new();
    for step in required {
        let line = format!("{}: {} ({})", step.title, step.state.label(), step.evidence);
        match step.state {
            State::Done => {}
            State::Failed => failed.push(line),
            State::Pending | State::Unknown => open.push(line),
        }
    }
    match (failed.is_empty(), open.is_empty()) {
        (true, true) => assessment,
        (false, _) => Assessment {
            overall: Overall::NoGo,
            reasons: failed.into_iter().chain(open).collect(),
        },
        (true, false) => Assessment {
            overall: Overall::Incomplete,
            reasons: open,
        },
    }
}

fn join_words(words: &[&str]) -> String {
    match words {
        [] => String::new(),
        [one] => one.to_string(),
        [init @ .., last] => format!("{} and {last}", init.join(", ")),
    }
}

/// The required results of an environment and the overall verdict. `deployable`: staging
/// and production, where the last deploy is required too and network results must postdate
/// it.
pub fn assess(results: &Results, deployable: bool, head: Option<&str>) -> Assessment {
    overall(&requirements(results, deployable, head))
}

/// The time network results must postdate: since when the release serving now has been
/// serving (a redeploy or failed deploy that left the same release keeps them fresh; a new
/// release or a rollback stales them).
pub fn deployed_at(results: &Results, deployable: bool) -> Option<DateTime<Utc>> {
    if deployable {
        results
            .serving_since
            .or_else(|| results.deploy.as_ref().map(|d| d.started_at))
    } else {
        None
    }
}

/// Each required task with what its result says.
pub fn requirements(
    results: &Results,
    deployable: bool,
    head: Option<&str>,
) -> Vec<(&'static str, Requirement)> {
    let deployed = deployed_at(results, deployable);
    let mut list = vec![(
        "predeploy",
        requirement(results.predeploy.as_ref(), head, None, predeploy_failures),
    )];
    if deployable {
        let mut deploy = requirement(results.deploy.as_ref(), head, None, |d| {
            d.result.problems.clone()
        });
        if results.deploy.is_some()
            && let Some(why) = super::deploys::rolled_back(results)
        {
            deploy = Requirement::Measured {
                verdict: Verdict::Fail,
                failures: vec![why],
            };
        }
        list.push(("deploy", deploy));
    }
    let mut smoke = requirement(results.smoke.as_ref(), head, deployed, smoke_failures);
    if deployable
        && let (Requirement::Measured { verdict, .. }, Some(why)) =
            (&smoke, served_another_build(results))
    {
        smoke = Requirement::Stale {
            verdict: *verdict,
            why,
        };
    }
    list.push(("smoke", smoke));
    list.push((
        "overlap",
        requirement(results.overlap.as_ref(), head, deployed, overlap_failures),
    ));
    list
}

/// When smoke's version endpoint answer names another commit than the last deploy recorded:
/// it measured another build than the one deployed.
pub fn served_another_build(results: &Results) -> Option<String> {
    let served = results.smoke.as_ref()?.result.served_commit()?;
    let deployed = &results.deploy.as_ref()?.git.as_ref()?.commit;
    let same = !served.is_empty()
        && (deployed.starts_with(served) || served.starts_with(deployed.as_str()));
    (!same).then(|| {
        format!(
            "the service's version endpoint reported commit {served}, but the last deploy \
             recorded {}",
            deployed.chars().take(12).collect::<String>()
        )
    })
}

fn predeploy_failures(r: &Saved<super::records::PredeployView>) -> Vec<String> {
    r.result
        .checks
        .iter()
        .filter(|c| c.verdict() == Verdict::Fail)
        .map(|c| match &c.fix {
            Some(fix) => format!("check {} failed (fix: {fix})", c.id),
            None => format!("check {} failed", c.id),
        })
        .collect()
}

fn smoke_failures(r: &Saved<super::records::SmokeView>) -> Vec<String> {
    let mut lines: Vec<String> = r
        .result
        .checks
        .iter()
        .filter(|c| c.verdict() == Verdict::Fail)
        .map(|c| format!("check {} failed", c.id))
        .collect();
    for e in r.result.benchmark.iter().flat_map(|b| &b.endpoints) {
        for t in e
            .thresholds
            .iter()
            .filter(|t| t.check.verdict() == Verdict::Fail)
        {
            lines.push(format!(
                "{} {} over its limit ({})",
                e.name,
                t.check.id,
                t.check.summary()
            ));
        }
    }
    lines
}

fn overlap_failures(r: &Saved<super::records::OverlapView>) -> Vec<String> {
    let rounds = &r.result.rounds;
    rounds
        .iter()
        .filter(|round| round.verdict.is_none_or(|v| !passed(v)))
        .map(|round| {
            format!(
                "round {} of {}: {} winner(s) of {} requests",
                round.round,
                rounds.len(),
                round.race.winners.len(),
                round.race.requests
            )
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn measured(verdict: Verdict) -> Requirement {
        Requirement::Measured {
            verdict,
            failures: Vec::new(),
        }
    }

    fn step(id: StepId, state: super::super::map::State) -> super::super::map::Step {
        super::super::map::Step {
            id,
            title: id.to_string(),
            state,
            evidence: "from the fixture".into(),
            command: None,
        }
    }

    #[test]
    fn a_go_is_held_to_the_required_map_steps() {
        use super::super::map::State;
        let go = overall(&[("smoke", measured(Verdict::Pass))]);
        let done = [
            step(StepId::Health, State::Done),
            step(StepId::SmokeThresholds, State::Done),
        ];
        assert_eq!(reconcile(go.clone(), &done).overall, Overall::Go);
        let skipped_bench = [
            step(StepId::Health, State::Done),
            step(StepId::SmokeThresholds, State::Pending),
        ];
        let held = reconcile(go.clone(), &skipped_bench);
        assert_eq!(held.overall, Overall::Incomplete);
        assert!(
            held.reasons[0].starts_with("smoke_thresholds: pending"),
            "{:?}",
            held.reasons
        );
        let failed = [step(StepId::Overlap, State::Failed)];
        assert_eq!(reconcile(go, &failed).overall, Overall::NoGo);
    }

    #[test]
    fn production_gates_are_required_only_for_production() {
        for gate in [
            StepId::StagingValidated,
            StepId::Stability24h,
            StepId::ProductionChecklist,
        ] {
            assert!(required_for_go(gate, "production", true), "{gate}");
            assert!(!required_for_go(gate, "staging", true), "{gate}");
            assert!(!required_for_go(gate, "local", false), "{gate}");
        }
        assert!(required_for_go(StepId::SmokeThresholds, "local", false));
        assert!(!required_for_go(StepId::FlyLogin, "staging", true));
    }

    #[test]
    fn all_passed_at_head_is_go() {
        let a = overall(&[
            ("predeploy", measured(Verdict::Pass)),
            ("smoke", measured(Verdict::Warn)),
        ]);
        assert_eq!(a.overall, Overall::Go);
        assert_eq!(a.reasons, ["predeploy and smoke passed at HEAD"]);
    }

    #[test]
    fn a_failure_at_head_is_no_go_and_lists_the_rest() {
        let a = overall(&[
            (
                "predeploy",
                Requirement::Measured {
                    verdict: Verdict::Fail,
                    failures: vec!["check ci failed".into()],
                },
            ),
            ("smoke", Requirement::Missing),
        ]);
        assert_eq!(a.overall, Overall::NoGo);
        assert_eq!(a.reasons.len(), 2);
        assert!(a.reasons[0].contains("check ci failed"));
    }

    #[test]
    fn missing_skipped_or_stale_is_incomplete_never_go() {
        for r in [
            Requirement::Missing,
            measured(Verdict::Skip),
            Requirement::Stale {
                verdict: Verdict::Pass,
                why: "HEAD is abc".into(),
            },
            Requirement::Stale {
                verdict: Verdict::Fail,
                why: "HEAD is abc".into(),
            },
        ] {
            let a = overall(&[("predeploy", measured(Verdict::Pass)), ("overlap", r)]);
            assert_eq!(a.overall, Overall::Incomplete, "{a:?}");
        }
    }
}
