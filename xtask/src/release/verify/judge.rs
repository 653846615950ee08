//! The verdict of one poll, as a pure function of what flyctl listed and what each machine
//! answered: the four conditions of "serving" (see [`super`]), each with its evidence.

use super::super::{ReleaseRef, same_commit};
use super::{Condition, Expected, VersionAnswer, machines_to_ask};
use crate::flyctl::{Machine, Release, same_image};

/// Judges one poll: each condition with its evidence, and the release found.
pub fn judge(
    expected: &Expected,
    releases: &[Release],
    machines: &[Machine],
    answers: &[VersionAnswer],
) -> (Vec<Condition>, Option<ReleaseRef>) {
    let newest = releases.iter().max_by_key(|r| r.version);
    let candidate = newest.filter(|r| expected.newer_than.is_none_or(|v| r.version > v));
    let (managed, unmanaged): (Vec<&Machine>, Vec<&Machine>) =
        machines.iter().partition(|m| m.managed);
    let want_image = candidate
        .and_then(|r| r.image_ref.clone())
        .or_else(|| expected.image.clone());
    let conditions = vec![
        release_condition(expected, candidate, newest),
        images_condition(want_image.as_deref(), &managed, &unmanaged),
        checks_condition(&managed),
        version_condition(expected, &managed, answers),
    ];
    (conditions, candidate.map(ReleaseRef::from))
}

/// 1. A release newer than the one recorded before is complete (and runs the image asked for).
fn release_condition(
    expected: &Expected,
    candidate: Option<&Release>,
    newest: Option<&Release>,
) -> Condition {
    let release_ok = candidate.is_some_and(|r| {
        r.is_good()
            && match (&expected.image, &r.image_ref) {
                (Some(want), Some(got)) => same_image(want, got),
                (Some(_), None) => false,
                (None, _) => true,
            }
    });
    let before = match expected.newer_than {
        Some(v) => format!("v{v}, recorded before flyctl ran"),
        None => "none before (a first deploy)".to_string(),
    };
    let evidence = match (candidate, newest) {
        (Some(r), _) => {
            let mut text = format!(
                "newest release {} is newer than {before}",
                ReleaseRef::from(r).describe()
            );
            if !r.is_good() {
                text.push_str(&format!("; its status is `{}`, not complete", r.status));
            }
            if let Some(want) = &expected.image
                && !r
                    .image_ref
                    .as_deref()
                    .is_some_and(|got| same_image(want, got))
            {
                text.push_str(&format!("; it does not run the image deployed, {want}"));
            }
            text
        }
        (None, Some(r)) => format!(
            "no release newer than {before}: the newest is still {}",
            ReleaseRef::from(r).describe()
        ),
        (None, None) => "flyctl lists no release at all".to_string(),
    };
    Condition {
        name: "new release complete".into(),
        passed: release_ok,
        evidence,
    }
}

/// 2. Every machine deploy manages runs the release's image; the others are named, left out.
fn images_condition(
    want_image: Option<&str>,
    machines: &[&Machine],
    unmanaged: &[&Machine],
) -> Condition {
    let left_out = if unmanaged.is_empty() {
        String::new()
    } else {
        let named: Vec<String> = unmanaged
            .iter()
            .map(|m| {
                format!(
                    "{} ({})",
                    m.id,
                    m.process_group
                        .as_deref()
                        .unwrap_or("not an Apps v2 machine")
                )
            })
            .collect();
        format!(
            "; left out {} machine(s) deploy does not manage: {}",
            unmanaged.len(),
            named.join(", ")
        )
    };
    let (images_ok, evidence) = match (want_image, machines.is_empty()) {
        (_, true) => (false, "the app has no machines".to_string()),
        (None, false) => (
            false,
            "no release image to compare the machines with".to_string(),
        ),
        (Some(want), false) => {
            let wrong: Vec<String> = machines
                .iter()
                .filter(|m| !m.image.as_deref().is_some_and(|i| same_image(i, want)))
                .map(|m| {
                    format!(
                        "{} runs {}",
                        m.id,
                        m.image.as_deref().unwrap_or("no image reported")
                    )
                })
                .collect();
            if wrong.is_empty() {
                (
                    true,
                    format!("all {} machine(s) run {want}{left_out}", machines.len()),
                )
            } else {
                (
                    false,
                    format!("want {want}: {}{left_out}", wrong.join("; ")),
                )
            }
        }
    };
    Condition {
        name: "machines run its image".into(),
        passed: images_ok,
        evidence,
    }
}

/// 3. Every started machine passes every check; machines Fly stopped are named, not failed.
fn checks_condition(machines: &[&Machine]) -> Condition {
    let (started, stopped): (Vec<&Machine>, Vec<&Machine>) =
        machines.iter().partition(|m| !m.is_stopped());
    let stopped_note = if stopped.is_empty() {
        String::new()
    } else {
        let ids: Vec<&str> = stopped.iter().map(|m| m.id.as_str()).collect();
        format!(
            "; {} stopped by Fly (auto-stop), updated without starting: {}",
            stopped.len(),
            ids.join(", ")
        )
    };
    let unhealthy: Vec<String> = started
        .iter()
        .filter_map(|m| {
            let failing: Vec<String> = m
                .checks
                .iter()
                .filter(|c| c.status != "passing")
                .map(|c| match &c.output {
                    Some(output) => format!("{} {} ({})", c.name, c.status, shorten(output)),
                    None => format!("{} {}", c.name, c.status),
                })
                .collect();
            (m.state != "started" || !failing.is_empty()).then(|| {
                let mut text = format!("{} is {}", m.id, m.state);
                if !failing.is_empty() {
                    text.push_str(&format!(", checks: {}", failing.join(", ")));
                }
                text
            })
        })
        .collect();
    let checks = started.iter().map(|m| m.checks.len()).sum::<usize>();
    Condition {
        name: "machine checks pass".into(),
        passed: !started.is_empty() && unhealthy.is_empty(),
        evidence: if machines.is_empty() {
            "the app has no machines".into()
        } else if started.is_empty() {
            format!("no machine is started{stopped_note}: run with --wake to start and prove them")
        } else if unhealthy.is_empty() {
            format!(
                "all {} started machine(s) pass, {checks} check(s) passing{stopped_note}",
                started.len()
            )
        } else {
            format!("{}{stopped_note}", unhealthy.join("; "))
        },
    }
}

/// 4. Each machine asked answers its version endpoint itself, with the commit expected.
fn version_condition(
    expected: &Expected,
    machines: &[&Machine],
    answers: &[VersionAnswer],
) -> Condition {
    let mut wrong = Vec::new();
    let mut seen = Vec::new();
    let asked = machines_to_ask(machines.iter().copied(), expected.wake);
    for machine in asked.iter().copied() {
        let answer = answers.iter().find(|a| a.machine_id == machine.id);
        match answer {
            None => wrong.push(format!("{} was not asked", machine.id)),
            Some(VersionAnswer {
                error: Some(error), ..
            }) => wrong.push(format!("{}: {error}", machine.id)),
            Some(answer) => {
                let commit = answer.commit.as_deref().unwrap_or("(none)");
                if answer.machine.as_deref() != Some(machine.id.as_str()) {
                    wrong.push(format!(
                        "{}: the answer came from machine {}",
                        machine.id,
                        answer.machine.as_deref().unwrap_or("(not named)")
                    ));
                } else if let Some(want) = &expected.commit
                    && !same_commit(commit, want)
                {
                    wrong.push(format!(
                        "{} reports commit {commit}, want {want}",
                        machine.id
                    ));
                } else {
                    seen.push(format!("{} reports {commit}", machine.id));
                }
            }
        }
    }
    let name = "version endpoint reports the commit".to_string();
    if asked.is_empty() {
        Condition {
            name,
            passed: false,
            evidence: if machines.is_empty() {
                "the app has no machines to ask".into()
            } else {
                "no machine is started to ask: run with --wake to start and ask them".into()
            },
        }
    } else if wrong.is_empty() {
        let prefix = match &expected.commit {
            Some(want) => format!("every machine reports {want}: "),
            None => "the commit was not known in advance; every machine answered: ".into(),
        };
        Condition {
            name,
            passed: true,
            evidence: format!("{prefix}{}", seen.join(", ")),
        }
    } else {
        Condition {
            name,
            passed: false,
            evidence: wrong.join("; "),
        }
    }
}

fn shorten(text: &str) -> String {
    let line = text.lines().next().unwrap_or("").trim();
    if line.chars().count() > 120 {
        format!("{}...", line.chars().take(120).collect::<String>())
    } else {
        line.to_string()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::flyctl::{parse_machines, parse_releases};

    const IMG_OLD: &str = "registry.fly.io/a:1111111";
    const IMG_NEW: &str = "registry.fly.io/a:2222222";

    fn releases(list: &[(u64, &str, &str)]) -> Vec<Release> {
        let json: Vec<serde_json::Value> = list
            .iter()
            .map(|(v, s, i)| serde_json::json!({"Version": v, "Status": s, "ImageRef": i}))
            .collect();
        parse_releases(&serde_json::to_string(&json).unwrap()).unwrap()
    }

    fn machines(list: &[(&str, &str, &str, &str)]) -> Vec<Machine> {
        let json: Vec<serde_json::Value> = list
            .iter()
            .map(|(id, state, image, check)| {
                serde_json::json!({"id": id, "state": state, "config": {"image": image,
                    "metadata": {"fly_platform_version": "v2", "fly_process_group": "app"}},
                    "checks": [{"name": "servicecheck-00-http-8080", "status": check,
                                "output": "GET /api/v1/readyz: 503"}]})
            })
            .collect();
        parse_machines(&serde_json::to_string(&json).unwrap()).unwrap()
    }

    fn answers(list: &[(&str, &str)]) -> Vec<VersionAnswer> {
        list.iter()
            .map(|(id, commit)| VersionAnswer::answered(id, commit))
            .collect()
    }

    fn expected() -> Expected {
        Expected {
            newer_than: Some(1),
            image: None,
            commit: Some("2222222abc".into()),
            wake: false,
        }
    }

    fn failed(conditions: &[Condition]) -> Vec<&str> {
        conditions
            .iter()
            .filter(|c| !c.passed)
            .map(|c| c.name.as_str())
            .collect()
    }

    #[test]
    fn a_new_build_on_every_machine_serves() {
        let (conditions, release) = judge(
            &expected(),
            &releases(&[(2, "complete", IMG_NEW), (1, "complete", IMG_OLD)]),
            &machines(&[
                ("m1", "started", IMG_NEW, "passing"),
                ("m2", "started", IMG_NEW, "passing"),
            ]),
            &answers(&[("m1", "2222222abcdef"), ("m2", "2222222abcdef")]),
        );
        assert!(failed(&conditions).is_empty(), "{conditions:?}");
        assert_eq!(release.unwrap().version, 2);
    }

    #[test]
    fn no_new_release_fails_naming_the_recorded_one() {
        let (conditions, release) = judge(
            &expected(),
            &releases(&[(1, "complete", IMG_OLD)]),
            &machines(&[("m1", "started", IMG_OLD, "passing")]),
            &answers(&[("m1", "1111111abc")]),
        );
        assert_eq!(
            failed(&conditions),
            [
                "new release complete",
                "machines run its image",
                "version endpoint reports the commit"
            ]
        );
        assert!(release.is_none());
        assert!(
            conditions[0].evidence.contains("no release newer than v1"),
            "{conditions:?}"
        );
        assert!(
            conditions[3]
                .evidence
                .contains("m1 reports commit 1111111abc, want 2222222abc")
        );
    }

    #[test]
    fn a_machine_left_on_the_old_image_or_failing_checks_is_named() {
        let (conditions, _) = judge(
            &expected(),
            &releases(&[(2, "complete", IMG_NEW), (1, "complete", IMG_OLD)]),
            &machines(&[
                ("m1", "started", IMG_NEW, "passing"),
                ("m2", "started", IMG_OLD, "critical"),
            ]),
            &answers(&[("m1", "2222222abc"), ("m2", "1111111abc")]),
        );
        assert_eq!(
            failed(&conditions),
            [
                "machines run its image",
                "machine checks pass",
                "version endpoint reports the commit"
            ]
        );
        assert!(
            conditions[1]
                .evidence
                .contains(&format!("m2 runs {IMG_OLD}"))
        );
        assert!(conditions[2].evidence.contains(
            "m2 is started, checks: servicecheck-00-http-8080 critical (GET /api/v1/readyz: 503)"
        ));
    }

    #[test]
    fn a_failed_release_or_the_wrong_rollback_image_fails() {
        let (conditions, _) = judge(
            &expected(),
            &releases(&[(2, "failed", IMG_NEW), (1, "complete", IMG_OLD)]),
            &machines(&[("m1", "started", IMG_NEW, "passing")]),
            &answers(&[("m1", "2222222abc")]),
        );
        assert_eq!(failed(&conditions), ["new release complete"]);
        assert!(conditions[0].evidence.contains("`failed`, not complete"));
        let rollback = Expected {
            newer_than: Some(2),
            image: Some(IMG_OLD.into()),
            commit: None,
            wake: false,
        };
        let (conditions, _) = judge(
            &rollback,
            &releases(&[(3, "complete", IMG_NEW), (2, "failed", IMG_NEW)]),
            &machines(&[("m1", "started", IMG_NEW, "passing")]),
            &answers(&[("m1", "2222222abc")]),
        );
        assert!(failed(&conditions).contains(&"new release complete"));
        assert!(
            conditions[0]
                .evidence
                .contains("does not run the image deployed")
        );
    }

    #[test]
    fn unanswered_or_misrouted_version_requests_fail() {
        let mut answers = answers(&[("m1", "2222222abc"), ("m2", "2222222abc")]);
        answers[0].machine = Some("m2".into());
        answers[1].error = Some("connection refused".into());
        let (conditions, _) = judge(
            &expected(),
            &releases(&[(2, "complete", IMG_NEW)]),
            &machines(&[
                ("m1", "started", IMG_NEW, "passing"),
                ("m2", "started", IMG_NEW, "passing"),
            ]),
            &answers,
        );
        assert_eq!(failed(&conditions), ["version endpoint reports the commit"]);
        assert!(
            conditions[3]
                .evidence
                .contains("m1: the answer came from machine m2")
        );
        assert!(conditions[3].evidence.contains("m2: connection refused"));
    }

    #[test]
    fn an_app_without_machines_does_not_serve() {
        let (conditions, _) = judge(
            &expected(),
            &releases(&[(2, "complete", IMG_NEW)]),
            &[],
            &[],
        );
        assert_eq!(
            failed(&conditions),
            [
                "machines run its image",
                "machine checks pass",
                "version endpoint reports the commit"
            ]
        );
    }
}
