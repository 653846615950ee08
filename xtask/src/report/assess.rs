//! The overall verdict (GO / NO-GO / INCOMPLETE) and how fresh each result is. Pure
//! functions of the results, the clock and HEAD, so they are unit-tested on their own.

use chrono::{DateTime, Utc};
use serde::Serialize;

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

/// Whether a result describes what is checked out (and deployed) now.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Freshness {
    /// Measured at HEAD (and after the last deploy, for the network tasks).
    Current,
    /// Measured something else: `HEAD is def456`, `before the last deploy at ...`.
    Stale(String),
}

/// Where a result came from, for the line under each section heading.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Provenance {
    /// When the run started, `YYYY-MM-DD HH:MM UTC`.
    pub started_at: String,
    /// `3 h ago`.
    pub age: String,
    /// Short commit measured, when known.
    pub commit: Option<String>,
    /// Whether the tree was dirty then.
    pub dirty: bool,
    /// Whether the result measured something other than HEAD (or the current release).
    pub stale: bool,
    /// `measured 3 h ago at commit abc123 (HEAD is def456: stale)`.
    pub note: String,
    /// The task's verdict label.
    pub verdict: String,
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

/// Formats a time for reports.
pub fn timestamp(at: DateTime<Utc>) -> String {
    at.format("%Y-%m-%d %H:%M UTC").to_string()
}

/// `45 s ago`, `12 min ago`, `3 h ago`, `2 d 4 h ago`.
pub fn age(at: DateTime<Utc>, now: DateTime<Utc>) -> String {
    let secs = (now - at).num_seconds();
    if secs < 0 {
        return "in the future (check the clock)".to_string();
    }
    match secs {
        0..60 => format!("{secs} s ago"),
        60..3600 => format!("{} min ago", secs / 60),
        3600..172_800 => format!("{} h ago", secs / 3600),
        _ => format!("{} d {} h ago", secs / 86_400, secs % 86_400 / 3600),
    }
}

fn short(commit: &str) -> &str {
    &commit[..commit.len().min(12)]
}

/// Whether `record` measured HEAD and, for network tasks, the release deployed now
/// (`deployed_at`: start of the last deploy, when there is one).
pub fn freshness<T>(
    record: &Saved<T>,
    head: Option<&str>,
    deployed_at: Option<DateTime<Utc>>,
) -> Freshness {
    let measured = record.git.as_ref().map(|g| g.commit.as_str());
    match (measured, head) {
        (_, None) => return Freshness::Stale("HEAD unknown, not a git checkout".into()),
        (None, Some(_)) => return Freshness::Stale("no commit recorded".into()),
        (Some(m), Some(h)) if m != h => return Freshness::Stale(format!("HEAD is {}", short(h))),
        _ => {}
    }
    if let Some(deployed_at) = deployed_at
        && record.started_at < deployed_at
    {
        return Freshness::Stale(format!(
            "before the last deploy at {}",
            timestamp(deployed_at)
        ));
    }
    Freshness::Current
}

/// The provenance line of a section.
pub fn provenance<T>(
    record: &Saved<T>,
    now: DateTime<Utc>,
    head: Option<&str>,
    deployed_at: Option<DateTime<Utc>>,
) -> Provenance {
    let commit = record.git.as_ref().map(|g| short(&g.commit).to_string());
    let dirty = record.git.as_ref().is_some_and(|g| g.dirty);
    let age = age(record.started_at, now);
    let at = match &commit {
        Some(c) if dirty => format!("at commit {c} (with uncommitted changes)"),
        Some(c) => format!("at commit {c}"),
        None => "at an unknown commit".to_string(),
    };
    let freshness = freshness(record, head, deployed_at);
    let note = match &freshness {
        Freshness::Current => format!("measured {age} {at} (HEAD)"),
        Freshness::Stale(why) => format!("measured {age} {at} ({why}: stale)"),
    };
    Provenance {
        started_at: timestamp(record.started_at),
        age,
        commit,
        dirty,
        stale: freshness != Freshness::Current,
        note,
        verdict: record.verdict.label().to_string(),
    }
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

/// The start of the deploy the network results must postdate.
pub fn deployed_at(results: &Results, deployable: bool) -> Option<DateTime<Utc>> {
    if deployable {
        results.deploy.as_ref().map(|d| d.started_at)
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
            && let Some(why) = super::decision_map::rolled_back(results)
        {
            deploy = Requirement::Measured {
                verdict: Verdict::Fail,
                failures: vec![why],
            };
        }
        list.push(("deploy", deploy));
    }
    list.push((
        "smoke",
        requirement(results.smoke.as_ref(), head, deployed, smoke_failures),
    ));
    list.push((
        "overlap",
        requirement(results.overlap.as_ref(), head, deployed, overlap_failures),
    ));
    list
}

fn predeploy_failures(r: &Saved<super::records::PredeployView>) -> Vec<String> {
    r.result
        .checks
        .iter()
        .filter(|c| c.verdict() == Verdict::Fail)
        .map(|c| match &c.fix {
            Some(fix) => format!("check {} failed (fix: {fix})", c.label()),
            None => format!("check {} failed", c.label()),
        })
        .collect()
}

fn smoke_failures(r: &Saved<super::records::SmokeView>) -> Vec<String> {
    let mut lines: Vec<String> = r
        .result
        .checks
        .iter()
        .filter(|c| c.verdict() == Verdict::Fail)
        .map(|c| format!("check {} failed", c.label()))
        .collect();
    for e in r.result.benchmark.iter().flat_map(|b| &b.endpoints) {
        for t in e
            .thresholds
            .iter()
            .filter(|t| t.verdict == Some(Verdict::Fail))
        {
            lines.push(format!(
                "{} {} over its limit ({})",
                e.name, t.metric, t.evidence
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

    #[test]
    fn ages_read_like_a_person_wrote_them() {
        let now = DateTime::parse_from_rfc3339("2026-11-27T12:00:00Z")
            .unwrap()
            .to_utc();
        assert_eq!(age(now - chrono::Duration::seconds(5), now), "5 s ago");
        assert_eq!(age(now - chrono::Duration::minutes(12), now), "12 min ago");
        assert_eq!(age(now - chrono::Duration::hours(3), now), "3 h ago");
        assert_eq!(age(now - chrono::Duration::hours(52), now), "2 d 4 h ago");
    }
}
