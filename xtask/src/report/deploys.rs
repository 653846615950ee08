//! What the deploy records say: whether the last deploy was rolled back, the release line,
//! and the 24 h stability rule for staging.

use chrono::{DateTime, Duration, Utc};

use super::assess::{self, Freshness, timestamp};
use super::decision_map::{MapInputs, STABILITY_HOURS, STAGING, State, Step};
use super::records::{DeployView, ReleaseRefView, Results, Saved, passed};
use super::steps::step;

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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::record::RunRecord;
    use crate::repo::GitState;
    use crate::verdict::Verdict;

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

    fn staging(deployed_hours_ago: i64, smoke: Option<(i64, Verdict)>) -> Results {
        Results {
            deploy: Some(saved(
                deployed_hours_ago,
                HEAD,
                Verdict::Pass,
                DeployView::default(),
            )),
            smoke: smoke.map(|(ago, v)| saved(ago, HEAD, v, Default::default())),
            ..Results::default()
        }
    }

    #[test]
    fn stability_needs_a_day_since_the_deploy_and_a_smoke_pass_after_it() {
        let state = |r: &Results| stability_state(r, now(), Some(HEAD)).0;
        assert_eq!(state(&Results::default()), State::Pending);
        assert_eq!(
            state(&staging(5, Some((1, Verdict::Pass)))),
            State::Pending,
            "too early"
        );
        assert_eq!(
            state(&staging(30, Some((10, Verdict::Pass)))),
            State::Pending,
            "smoke before the day was up"
        );
        assert_eq!(state(&staging(30, Some((2, Verdict::Pass)))), State::Done);
        assert_eq!(state(&staging(30, Some((2, Verdict::Fail)))), State::Failed);
        assert_eq!(state(&staging(30, None)), State::Pending);
    }

    #[test]
    fn stability_counts_only_a_deploy_of_head_that_was_not_rolled_back() {
        let mut r = staging(30, Some((2, Verdict::Pass)));
        assert_eq!(stability_state(&r, now(), Some("0ther")).0, State::Pending);
        r.rollback = Some(saved(1, HEAD, Verdict::Pass, Default::default()));
        let (state, evidence) = stability_state(&r, now(), Some(HEAD));
        assert_eq!(state, State::Pending);
        assert!(evidence.contains("rolled back"), "{evidence}");
    }

    #[test]
    fn a_deploy_that_rolled_back_by_itself_says_to_what() {
        let mut r = staging(3, None);
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
