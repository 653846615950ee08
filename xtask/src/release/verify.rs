//! Proving that a build serves. After flyctl returns, "serving" means all of:
//!
//! 1. a release newer than the one recorded before is complete (and, for a rollback, runs the
//!    image deployed);
//! 2. every machine deploy manages runs that release's image;
//! 3. every started machine passes every check;
//! 4. `GET /api/v1/version`, sent through the app URL with `fly-force-instance-id: <id>` for
//!    each started machine, is answered by that machine and reports the expected commit.
//!
//! As real Fly behaves:
//! - Machines `fly deploy` does not manage (a leftover release-command machine, `fly console`,
//!   `fly machine run`) are left out and named in the evidence (fly-go
//!   `flaps/flaps_machines.go`, `ListFlyAppsMachines`).
//! - A machine Fly stopped for idleness (`auto_stop_machines`) is updated by `fly deploy` to the
//!   new image and left stopped, its checks skipped (flyctl
//!   `internal/command/deploy/machines_launchinput.go`, `shouldSkipLaunch`): its config naming
//!   the new image is what proves it updated. With `wake`, each is asked for its version too,
//!   which makes Fly's proxy start it (`auto_start_machines`), so it is proven like the rest.
//!
//! Polled with a bound; the verdict names each condition with its evidence.

use std::io::Write;
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};

use super::{FORCE_INSTANCE_HEADER, ReleaseRef, Snapshot, VERSION_PATH, same_commit};
use crate::flyctl::{Flyctl, Machine, Release, failure_or_error, same_image};
use crate::verdict::Verdict;

/// Pause between two polls.
const POLL_INTERVAL: Duration = Duration::from_millis(500);

/// Per-request bound of a version query.
const VERSION_TIMEOUT: Duration = Duration::from_secs(5);

/// What must serve.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Expected {
    /// The release must be newer than this one (the release recorded before flyctl ran).
    pub newer_than: Option<u64>,
    /// The release must run this image (a rollback knows it; a build learns it from Fly).
    pub image: Option<String>,
    /// The commit every machine must report (`None`: only that each machine answers).
    pub commit: Option<String>,
    /// Ask stopped machines for their version too, which starts them (`--wake`).
    #[serde(default)]
    pub wake: bool,
}

/// The machines a verification asks for their version: the started ones deploy manages, and
/// with `wake` the stopped ones too.
pub fn machines_to_ask<'a>(
    machines: impl IntoIterator<Item = &'a Machine>,
    wake: bool,
) -> Vec<&'a Machine> {
    machines
        .into_iter()
        .filter(|m| m.managed && (m.is_started() || (wake && m.is_stopped())))
        .collect()
}

/// One condition of "serving", with what was seen.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Condition {
    /// `new release complete`, `machines run its image`, `machine checks pass`,
    /// `version endpoint reports the commit`.
    pub name: String,
    /// Whether it held at the last poll.
    pub passed: bool,
    /// What was seen (release numbers, images, check states, answers).
    pub evidence: String,
}

/// The outcome of one verification.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Verification {
    /// What was verified (`the new build serves`, `the rollback serves`).
    pub what: String,
    /// `Pass` when every condition held at one poll.
    pub verdict: Verdict,
    /// What was expected.
    pub expected: Expected,
    /// The release found serving (the newest one newer than expected), if any.
    pub release: Option<ReleaseRef>,
    /// Every condition at the last poll.
    pub conditions: Vec<Condition>,
    /// How many polls ran.
    pub attempts: u32,
    /// How long it polled, in seconds.
    pub seconds: f64,
    /// The app as seen at the last poll.
    pub snapshot: Snapshot,
}

/// What one machine's version endpoint answered.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct VersionAnswer {
    /// The machine the request was routed to (the header's value).
    pub machine_id: String,
    /// The HTTP status, when it answered.
    pub status: Option<u16>,
    /// The `commit` it reported.
    pub commit: Option<String>,
    /// The `machine` it reported (proves the request reached that machine).
    pub machine: Option<String>,
    /// Why there is no answer.
    pub error: Option<String>,
}

#[derive(Debug, Deserialize)]
struct VersionBody {
    #[serde(default)]
    commit: Option<String>,
    #[serde(default)]
    machine: Option<String>,
}

/// Asks `GET <base_url>/api/v1/version` once per machine, routed to it by
/// `fly-force-instance-id`. Network errors become answers with an `error`.
pub fn ask_versions(base_url: &str, machines: &[&Machine]) -> anyhow::Result<Vec<VersionAnswer>> {
    if machines.is_empty() {
        return Ok(Vec::new());
    }
    let url = format!("{}{VERSION_PATH}", base_url.trim_end_matches('/'));
    let client = crate::http::client(VERSION_TIMEOUT)?;
    let runtime = crate::http::runtime()?;
    Ok(runtime.block_on(async {
        let mut answers = Vec::new();
        for machine in machines {
            let mut answer = VersionAnswer {
                machine_id: machine.id.clone(),
                status: None,
                commit: None,
                machine: None,
                error: None,
            };
            let sent = client
                .get(&url)
                .header(FORCE_INSTANCE_HEADER, &machine.id)
                .send()
                .await;
            match sent {
                Err(error) => answer.error = Some(format!("{url}: {error}")),
                Ok(response) => {
                    let status = response.status();
                    answer.status = Some(status.as_u16());
                    match response.json::<VersionBody>().await {
                        Ok(body) if status.is_success() => {
                            answer.commit = body.commit;
                            answer.machine = body.machine;
                        }
                        Ok(_) => answer.error = Some(format!("{url} answered {status}")),
                        Err(error) => {
                            answer.error = Some(format!(
                                "{url} answered {status} without version JSON: {error}"
                            ))
                        }
                    }
                }
            }
            answers.push(answer);
        }
        answers
    }))
}

/// Judges one poll: each condition with its evidence, and the release found.
pub fn judge(
    expected: &Expected,
    releases: &[Release],
    machines: &[Machine],
    answers: &[VersionAnswer],
) -> (Vec<Condition>, Option<ReleaseRef>) {
    let mut conditions = Vec::new();
    let newest = releases.iter().max_by_key(|r| r.version);
    let candidate = newest.filter(|r| expected.newer_than.is_none_or(|v| r.version > v));
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
    conditions.push(Condition {
        name: "new release complete".into(),
        passed: release_ok,
        evidence,
    });

    let (machines, unmanaged): (Vec<&Machine>, Vec<&Machine>) =
        machines.iter().partition(|m| m.managed);
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
    let want_image = candidate
        .and_then(|r| r.image_ref.clone())
        .or_else(|| expected.image.clone());
    let (images_ok, evidence) = match (&want_image, machines.is_empty()) {
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
    conditions.push(Condition {
        name: "machines run its image".into(),
        passed: images_ok,
        evidence,
    });

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
    conditions.push(Condition {
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
    });

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
    conditions.push(if asked.is_empty() {
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
    });
    (conditions, candidate.map(ReleaseRef::from))
}

fn shorten(text: &str) -> String {
    let line = text.lines().next().unwrap_or("").trim();
    if line.chars().count() > 120 {
        format!("{}...", line.chars().take(120).collect::<String>())
    } else {
        line.to_string()
    }
}

/// Polls releases, machines and each machine's version endpoint until every condition holds
/// or `timeout` passes. flyctl calls that fail count as failed conditions (and the poll goes
/// on); only a flyctl that cannot start is an error.
pub fn verify(
    what: &str,
    flyctl: &Flyctl,
    app: &str,
    base_url: &str,
    expected: &Expected,
    timeout: Duration,
    out: &mut dyn Write,
) -> anyhow::Result<Verification> {
    writeln!(
        out,
        "verifying that {what} (releases, machines, {VERSION_PATH} per machine; up to {}s)",
        timeout.as_secs()
    )?;
    let started = Instant::now();
    let mut attempts = 0;
    loop {
        attempts += 1;
        // The polls' own command lines would drown the verdict: they go nowhere.
        let mut quiet = std::io::sink();
        let (conditions, release, snapshot) =
            match poll(flyctl, app, base_url, expected, &mut quiet)? {
                Ok(polled) => polled,
                Err(problem) => (
                    vec![Condition {
                        name: "flyctl lists releases and machines".into(),
                        passed: false,
                        evidence: problem,
                    }],
                    None,
                    Snapshot::default(),
                ),
            };
        let passed = conditions.iter().all(|c| c.passed);
        if passed || started.elapsed() >= timeout {
            let verification = Verification {
                what: what.to_string(),
                verdict: if passed { Verdict::Pass } else { Verdict::Fail },
                expected: expected.clone(),
                release,
                conditions,
                attempts,
                seconds: started.elapsed().as_secs_f64(),
                snapshot,
            };
            super::print_verification(&verification, out)?;
            return Ok(verification);
        }
        std::thread::sleep(POLL_INTERVAL.min(timeout.saturating_sub(started.elapsed())));
    }
}

type Polled = (Vec<Condition>, Option<ReleaseRef>, Snapshot);

fn poll(
    flyctl: &Flyctl,
    app: &str,
    base_url: &str,
    expected: &Expected,
    out: &mut dyn Write,
) -> anyhow::Result<Result<Polled, String>> {
    let releases = match flyctl.releases(app, out) {
        Ok(releases) => releases.unwrap_or_default(),
        Err(error) => return Ok(Err(failure_or_error(error)?.to_string())),
    };
    let machines = match flyctl.machines(app, out) {
        Ok(machines) => machines.unwrap_or_default(),
        Err(error) => return Ok(Err(failure_or_error(error)?.to_string())),
    };
    let answers = ask_versions(base_url, &machines_to_ask(&machines, expected.wake))?;
    let (conditions, release) = judge(expected, &releases, &machines, &answers);
    let snapshot = Snapshot::from_parts(&releases, &machines, &answers);
    Ok(Ok((conditions, release, snapshot)))
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
            .map(|(id, commit)| VersionAnswer {
                machine_id: id.to_string(),
                status: Some(200),
                commit: Some(commit.to_string()),
                machine: Some(id.to_string()),
                error: None,
            })
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
