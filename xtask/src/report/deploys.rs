//! What the deploy records say: whether the last deploy was rolled back, the release line,
//! and the 24 h stability rule for staging.

use chrono::{DateTime, Utc};

use super::freshness::{self, Freshness, timestamp};
use super::map::{MapInputs, STABILITY_HOURS, STAGING, State, Step, StepId, step};
use super::records::{DeployView, ReleaseRefView, Results, Saved, passed};
use super::stability::{StabilityGate, gate};

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

pub(super) fn stability(input: &MapInputs) -> Step {
    let s = input.staging;
    let title = format!("Staging stable for {STABILITY_HOURS} h");
    let watch = Some(format!("cargo xtask watch --env {STAGING} --for 10m"));
    let (state, evidence) = stability_state(s, input.now, input.head, input.watch_coverage_pct);
    let needs_deploy = s.deploy.as_ref().is_none_or(|d| {
        !passed(d.verdict) || freshness::freshness(d, input.head, None) != Freshness::Current
    }) || rolled_back(s).is_some();
    let command = if state == State::Pending && needs_deploy {
        Some(format!("cargo xtask deploy --env {STAGING}"))
    } else {
        watch
    };
    step(StepId::Stability24h, title, state, evidence, command)
}

/// Done when the last staging deploy shipped HEAD and passed, nothing rolled it back, and
/// the 24-hour gate holds for it: `watch` runs covered at least `coverage_pct` of the 24 h
/// since the deploy, with no breach (see [`stability`](super::stability)). A newer deploy
/// restarts the clock.
pub fn stability_state(
    s: &Results,
    now: DateTime<Utc>,
    head: Option<&str>,
    coverage_pct: f64,
) -> (State, String) {
    match stability_gate(s, now, head, coverage_pct) {
        Ok(gate) if gate.state == State::Pending => (
            gate.state,
            format!(
                "deployed {} ({}); {}",
                timestamp(gate.since),
                freshness::age(gate.since, now),
                gate.evidence
            ),
        ),
        Ok(gate) => (gate.state, gate.evidence),
        Err(pending) => pending,
    }
}

/// The gate of the release serving on staging, or why there is no release to judge.
pub fn stability_gate(
    s: &Results,
    now: DateTime<Utc>,
    head: Option<&str>,
    coverage_pct: f64,
) -> Result<StabilityGate, (State, String)> {
    let Some(d) = s.deploy.as_ref() else {
        return Err((State::Pending, "no staging deploy recorded yet".into()));
    };
    if !passed(d.verdict) {
        return Err((
            State::Pending,
            "the last staging deploy did not pass".into(),
        ));
    }
    if rolled_back(s).is_some() {
        return Err((
            State::Pending,
            "the last staging deploy was rolled back".into(),
        ));
    }
    if let Freshness::Stale(why) = freshness::freshness(d, head, None) {
        return Err((
            State::Pending,
            format!(
                "staging does not run HEAD ({why}): deploy it, then watch it {STABILITY_HOURS} h"
            ),
        ));
    }
    let image = d
        .result
        .release
        .as_ref()
        .and_then(|r| r.image_ref.as_deref());
    Ok(gate(d.started_at, image, &s.watches, now, coverage_pct))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::record::RunRecord;
    use crate::repo::GitState;
    use crate::verdict::Verdict;
    use chrono::Duration;

    const HEAD: &str = "abcdef0123456789";

    fn now() -> DateTime<Utc> {
        DateTime::parse_from_rfc3339("2026-11-27T12:00:00Z")
            .unwrap()
            .to_utc()
    }

    fn saved<T>(hours_ago: i64, commit: &str, verdict: Verdict, result: T) -> Saved<T> {
        RunRecord {
            schema_version: 1,
            task: String::new(),
            environment: STAGING.into(),
            git: Some(GitState {
                commit: commit.into(),
                dirty: false,
                tree: None,
                inputs: None,
            }),
            started_at: now() - Duration::hours(hours_ago),
            duration_ms: 0,
            tool_version: String::new(),
            verdict,
            result,
        }
    }

    /// Staging deployed `deployed_hours_ago`, watched once in each of the given hours since.
    fn staging(deployed_hours_ago: i64, watched_hours: &[i64]) -> Results {
        use super::super::views::{SampleView, WatchView};
        let deployed = now() - Duration::hours(deployed_hours_ago);
        let samples = watched_hours
            .iter()
            .map(|h| SampleView {
                at: deployed + Duration::hours(*h) + Duration::minutes(5),
                build: None,
            })
            .collect();
        Results {
            deploy: Some(saved(
                deployed_hours_ago,
                HEAD,
                Verdict::Pass,
                DeployView::default(),
            )),
            watches: vec![saved(
                1,
                HEAD,
                Verdict::Pass,
                WatchView {
                    samples,
                    ..WatchView::default()
                },
            )],
            ..Results::default()
        }
    }

    #[test]
    fn stability_needs_a_day_of_watching_since_the_deploy() {
        let state = |r: &Results| stability_state(r, now(), Some(HEAD), 90.0).0;
        let day: Vec<i64> = (0..24).collect();
        assert_eq!(state(&Results::default()), State::Pending);
        assert_eq!(
            state(&staging(5, &[0, 1, 2, 3])),
            State::Pending,
            "too early"
        );
        assert_eq!(state(&staging(30, &day)), State::Done);
        assert_eq!(
            state(&staging(30, &day[..12])),
            State::Failed,
            "half a day watched"
        );
        assert_eq!(state(&staging(30, &[])), State::Failed, "never watched");
    }

    #[test]
    fn stability_counts_only_a_deploy_of_head_that_was_not_rolled_back() {
        let day: Vec<i64> = (0..24).collect();
        let mut r = staging(30, &day);
        assert_eq!(
            stability_state(&r, now(), Some("0ther"), 90.0).0,
            State::Pending
        );
        r.rollback = Some(saved(1, HEAD, Verdict::Pass, Default::default()));
        let (state, evidence) = stability_state(&r, now(), Some(HEAD), 90.0);
        assert_eq!(state, State::Pending);
        assert!(evidence.contains("rolled back"), "{evidence}");
    }

    #[test]
    fn a_deploy_that_rolled_back_by_itself_says_to_what() {
        let mut r = staging(3, &[]);
        r.deploy.as_mut().unwrap().result.rolled_back = Some(super::super::records::RollbackView {
            to_version: Some(11),
            ..Default::default()
        });
        assert!(
            rolled_back(&r)
                .unwrap()
                .contains("failed and rolled back to release v11")
        );
    }
}
