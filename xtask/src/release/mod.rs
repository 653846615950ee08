//! What `deploy`, `promote` and `rollback` share: reading which release serves (releases, machines and
//! what each machine's version endpoint says), choosing the rollback target before flyctl
//! runs, proving that a build serves ([`verify`]), the rollout itself and rolling back
//! ([`rollout`]), and what they leave ([`outcome`]).
//!
//! Nothing here imports the tasks or the CLI: `deploy`, `promote` and `rollback` are thin
//! tasks over it.

pub mod gates;
pub mod outcome;
pub mod rollout;
pub mod task;
pub mod verify;

use std::io::Write;

use serde::{Deserialize, Serialize};
use xshell::{Shell, cmd};

use crate::flyctl::{Flyctl, Machine, Release, failure_or_error, same_image};
use crate::repo::Repo;
use crate::verdict::Verdict;

pub use outcome::{RollbackResult, RolloutOutcome, failed_conditions};
pub use rollout::{OnFailure, RollbackPlan, Rollout, Source, roll_back, rollback_command};
pub use task::{Closing, announce_going_live, close, shown, start, verdict_of};
pub use verify::{Condition, Expected, Verification, VersionAnswer, verify};

/// Path of the service's version endpoint (`{"version","commit","image","machine",...}`).
pub const VERSION_PATH: &str = cabanas_contract::routes::VERSION;

/// The request header that makes Fly's proxy route a request to one machine.
pub const FORCE_INSTANCE_HEADER: &str = "fly-force-instance-id";

/// How many releases a snapshot keeps (newest first): enough to see what changed.
const RELEASES_KEPT: usize = 5;

/// The short commit an image is labelled with (12 hex digits, as `git log --abbrev=12`).
pub fn short_commit(commit: &str) -> &str {
    commit.get(..12).unwrap_or(commit)
}

/// A release, as recorded: its number and image.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReleaseRef {
    /// Fly's release number.
    pub version: u64,
    /// The image it ran, when flyctl reported one.
    pub image_ref: Option<String>,
    /// Fly's status word for it.
    pub status: String,
}

impl From<&Release> for ReleaseRef {
    fn from(release: &Release) -> Self {
        ReleaseRef {
            version: release.version,
            image_ref: release.image_ref.clone(),
            status: release.status.clone(),
        }
    }
}

impl ReleaseRef {
    /// `v12 (complete, registry.fly.io/app:abc1234)`.
    pub fn describe(&self) -> String {
        format!(
            "v{} ({}, {})",
            self.version,
            self.status,
            self.image_ref.as_deref().unwrap_or("no image reported")
        )
    }
}

/// One machine as seen at a moment: what flyctl says and what the machine itself answers.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MachineState {
    /// The machine id.
    pub id: String,
    /// Fly's state word (`started`, `stopped`, ...).
    pub state: String,
    /// The image it runs.
    pub image: Option<String>,
    /// Its checks as `name: status`.
    pub checks: Vec<String>,
    /// The commit its version endpoint reported, when it answered.
    pub commit: Option<String>,
}

/// The app at a moment: its newest releases and its machines.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Snapshot {
    /// The newest releases, newest first.
    pub releases: Vec<ReleaseRef>,
    /// Every machine that is not destroyed.
    pub machines: Vec<MachineState>,
}

impl Snapshot {
    /// The newest release, if the app has any.
    pub fn newest(&self) -> Option<&ReleaseRef> {
        self.releases.first()
    }

    /// Builds a snapshot from what flyctl and the machines said.
    pub fn from_parts(
        releases: &[Release],
        machines: &[Machine],
        answers: &[VersionAnswer],
    ) -> Snapshot {
        Snapshot {
            releases: releases
                .iter()
                .take(RELEASES_KEPT)
                .map(ReleaseRef::from)
                .collect(),
            machines: machines
                .iter()
                .map(|m| MachineState {
                    id: m.id.clone(),
                    state: m.state.clone(),
                    image: m.image.clone(),
                    checks: m
                        .checks
                        .iter()
                        .map(|c| format!("{}: {}", c.name, c.status))
                        .collect(),
                    commit: answers
                        .iter()
                        .find(|a| a.machine_id == m.id)
                        .and_then(|a| a.commit.clone()),
                })
                .collect(),
        }
    }
}

/// What serves before a deploy or rollback, read with read-only calls only.
#[derive(Debug, Clone)]
pub struct Serving {
    /// Every release flyctl listed, newest first.
    pub releases: Vec<Release>,
    /// Every machine.
    pub machines: Vec<Machine>,
    /// What each machine's version endpoint answered.
    pub answers: Vec<VersionAnswer>,
}

impl Serving {
    /// The recorded form.
    pub fn snapshot(&self) -> Snapshot {
        Snapshot::from_parts(&self.releases, &self.machines, &self.answers)
    }
}

/// Reads what serves: `flyctl releases`, `flyctl machines list` and the version endpoint of
/// each machine through `base_url`. `Ok(Err(problem))` when a flyctl call ran and failed;
/// `Ok(Ok(None))` in a dry run without flyctl.
pub fn read_serving(
    flyctl: &Flyctl,
    app: &str,
    base_url: &str,
    out: &mut dyn Write,
) -> anyhow::Result<Result<Option<Serving>, String>> {
    let releases = match flyctl.releases(app, out) {
        Ok(Some(releases)) => releases,
        Ok(None) => return Ok(Ok(None)),
        Err(error) => return Ok(Err(failure_or_error(error)?.to_string())),
    };
    let machines = match flyctl.machines(app, out) {
        Ok(Some(machines)) => machines,
        Ok(None) => return Ok(Ok(None)),
        Err(error) => return Ok(Err(failure_or_error(error)?.to_string())),
    };
    let answers = verify::ask_versions(base_url, &verify::machines_to_ask(&machines, false))?;
    Ok(Ok(Some(Serving {
        releases,
        machines,
        answers,
    })))
}

/// What a failed deploy goes back to, chosen before flyctl runs.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RollbackTarget {
    /// The release whose image it is, when a listed release ran it.
    pub release: Option<ReleaseRef>,
    /// The image to deploy again.
    pub image: String,
    /// The commit that image serves, when the machines said (or the image tag names it).
    pub commit: Option<String>,
}

/// Chooses the rollback target from what serves now: the image every machine runs (what
/// actually serves), else the newest complete release's image. `None` on a first deploy.
pub fn rollback_target(repo: &Repo, serving: &Serving) -> Option<RollbackTarget> {
    let running: Vec<&str> = serving
        .machines
        .iter()
        .filter(|m| m.managed)
        .filter_map(|m| m.image.as_deref())
        .collect();
    let common = running
        .first()
        .filter(|first| running.iter().all(|i| same_image(i, first)))
        .map(|i| i.to_string());
    let image = match common {
        Some(image) => image,
        None => serving
            .releases
            .iter()
            .find(|r| r.is_good() && r.image_ref.is_some())?
            .image_ref
            .clone()?,
    };
    let release = serving
        .releases
        .iter()
        .filter(|r| r.is_good())
        .find(|r| {
            r.image_ref
                .as_deref()
                .is_some_and(|i| same_image(i, &image))
        })
        .map(ReleaseRef::from);
    let reported: Vec<&str> = serving
        .answers
        .iter()
        .filter_map(|a| a.commit.as_deref())
        .filter(|c| *c != "unknown")
        .collect();
    let commit = match reported.first() {
        Some(first) if reported.iter().all(|c| c == first) => Some(first.to_string()),
        _ => commit_of_image(repo, &image),
    };
    Some(RollbackTarget {
        release,
        image,
        commit,
    })
}

/// The images the machines deploy manages run, when there is more than one: `image (ids),
/// image (ids)`. A rolling deploy that failed half way leaves an app so, and flyctl's
/// blue-green then refuses it (flyctl `internal/command/deploy/strategy_bluegreen.go`,
/// `DetectMultipleImageVersions`). Machines whose image Fly did not report are left out, as
/// flyctl leaves out machines on unreachable hosts.
pub fn mixed_images(machines: &[Machine]) -> Option<String> {
    let mut images: Vec<(String, Vec<&str>)> = Vec::new();
    for machine in machines.iter().filter(|m| m.managed) {
        let Some(image) = machine.image.as_deref() else {
            continue;
        };
        match images
            .iter_mut()
            .find(|(known, _)| same_image(known, image))
        {
            Some((_, ids)) => ids.push(&machine.id),
            None => images.push((image.to_string(), vec![&machine.id])),
        }
    }
    (images.len() > 1).then(|| {
        images
            .iter()
            .map(|(image, ids)| format!("{image} on {}", ids.join(", ")))
            .collect::<Vec<_>>()
            .join("; ")
    })
}

/// The commit an image's tag names (`--image-label <short commit>`), when git knows it.
pub fn commit_of_image(repo: &Repo, image: &str) -> Option<String> {
    let without_digest = image.split('@').next()?;
    let (_, tag) = without_digest.rsplit_once(':')?;
    if tag.len() < 7 || tag.len() > 40 || !tag.chars().all(|c| c.is_ascii_hexdigit()) {
        return None;
    }
    let sh = Shell::new().ok()?;
    sh.change_dir(repo.root());
    let spec = format!("{tag}^{{commit}}");
    cmd!(sh, "git rev-parse --verify --quiet {spec}")
        .quiet()
        .ignore_stderr()
        .read()
        .ok()
        .filter(|c| !c.is_empty())
}

/// Whether a reported commit is the expected one (either may be abbreviated, to 7+ digits).
pub fn same_commit(reported: &str, expected: &str) -> bool {
    let (a, b) = (reported.trim(), expected.trim());
    a.len() >= 7 && b.len() >= 7 && (a.starts_with(b) || b.starts_with(a))
}

/// The migration files added between `older` and `newer` (`backend/migrations`): a rollback
/// from `newer` to `older` keeps their schema changes. `None` when git cannot compare them.
pub fn migrations_added(repo: &Repo, older: &str, newer: &str) -> Option<Vec<String>> {
    let sh = Shell::new().ok()?;
    sh.change_dir(repo.root());
    let range = format!("{older}..{newer}");
    let listed = cmd!(
        sh,
        "git diff --name-only --diff-filter=A {range} -- backend/migrations"
    )
    .quiet()
    .ignore_stderr()
    .read()
    .ok()?;
    Some(
        listed
            .lines()
            .map(str::trim)
            .filter(|l| !l.is_empty())
            .map(String::from)
            .collect(),
    )
}

/// `pass` / `FAIL` as the condition lists print them.
fn mark(passed: bool) -> &'static str {
    if passed { "ok  " } else { "FAIL" }
}

/// Prints a verification's conditions, one line each with its evidence.
pub fn print_verification(verification: &Verification, out: &mut dyn Write) -> anyhow::Result<()> {
    writeln!(
        out,
        "{}: {} after {} check(s) in {:.1}s",
        verification.what,
        if verification.verdict == Verdict::Pass {
            "proven"
        } else {
            "NOT proven"
        },
        verification.attempts,
        verification.seconds
    )?;
    for condition in &verification.conditions {
        writeln!(
            out,
            "  {} {}: {}",
            mark(condition.passed),
            condition.name,
            condition.evidence
        )?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::flyctl::{parse_machines, parse_releases};

    fn serving(releases: &str, machines: &str, commits: &[(&str, &str)]) -> Serving {
        Serving {
            releases: parse_releases(releases).unwrap(),
            machines: parse_machines(machines).unwrap(),
            answers: commits
                .iter()
                .map(|(id, commit)| VersionAnswer::answered(id, commit))
                .collect(),
        }
    }

    #[test]
    fn mixed_images_are_named_and_unmanaged_machines_do_not_count() {
        let machine = |id: &str, image: &str, group: &str| {
            format!(
                r#"{{"id":"{id}","state":"started","config":{{"image":"{image}",
                   "metadata":{{"fly_platform_version":"v2","fly_process_group":"{group}"}}}}}}"#
            )
        };
        let list =
            |machines: &[String]| parse_machines(&format!("[{}]", machines.join(","))).unwrap();
        let one_image = list(&[
            machine("m1", "registry.fly.io/a:aaaaaaa", "app"),
            machine("m2", "registry.fly.io/a:aaaaaaa@sha256:01", "app"),
            // A leftover release-command machine on an older image is not deploy's business.
            machine("r1", "registry.fly.io/a:0000000", "fly_app_release_command"),
        ]);
        assert_eq!(mixed_images(&one_image), None);
        let half_rolled = list(&[
            machine("m1", "registry.fly.io/a:aaaaaaa", "app"),
            machine("m2", "registry.fly.io/a:bbbbbbb", "app"),
        ]);
        let mixed = mixed_images(&half_rolled).unwrap();
        assert!(
            mixed.contains("registry.fly.io/a:aaaaaaa on m1")
                && mixed.contains("registry.fly.io/a:bbbbbbb on m2"),
            "{mixed}"
        );
    }

    const RELEASES: &str = r#"[
      {"Version":3,"Status":"failed","ImageRef":"registry.fly.io/a:ccccccc"},
      {"Version":2,"Status":"complete","ImageRef":"registry.fly.io/a:bbbbbbb"},
      {"Version":1,"Status":"complete","ImageRef":"registry.fly.io/a:aaaaaaa"}]"#;

    #[test]
    fn the_target_is_what_every_machine_runs_with_the_commit_they_report() {
        let repo = Repo::at(std::env::temp_dir());
        let machines = r#"[{"id":"m1","state":"started","config":{"image":"registry.fly.io/a:aaaaaaa","metadata":{"fly_platform_version":"v2","fly_process_group":"app"}}},
                           {"id":"m2","state":"started","config":{"image":"registry.fly.io/a:aaaaaaa","metadata":{"fly_platform_version":"v2","fly_process_group":"app"}}}]"#;
        let s = serving(
            RELEASES,
            machines,
            &[("m1", "a1b2c3d4"), ("m2", "a1b2c3d4")],
        );
        let target = rollback_target(&repo, &s).unwrap();
        assert_eq!(target.image, "registry.fly.io/a:aaaaaaa");
        assert_eq!(target.release.unwrap().version, 1);
        assert_eq!(target.commit.as_deref(), Some("a1b2c3d4"));
    }

    #[test]
    fn mixed_machines_fall_back_to_the_newest_complete_release() {
        let repo = Repo::at(std::env::temp_dir());
        let machines = r#"[{"id":"m1","state":"started","config":{"image":"registry.fly.io/a:aaaaaaa","metadata":{"fly_platform_version":"v2","fly_process_group":"app"}}},
                           {"id":"m2","state":"started","config":{"image":"registry.fly.io/a:bbbbbbb","metadata":{"fly_platform_version":"v2","fly_process_group":"app"}}}]"#;
        let s = serving(RELEASES, machines, &[("m1", "1111111"), ("m2", "2222222")]);
        let target = rollback_target(&repo, &s).unwrap();
        assert_eq!(target.image, "registry.fly.io/a:bbbbbbb");
        assert_eq!(target.release.unwrap().version, 2);
        assert_eq!(
            target.commit, None,
            "machines disagree and git knows no such tag"
        );
    }

    #[test]
    fn a_first_deploy_has_no_target() {
        let repo = Repo::at(std::env::temp_dir());
        assert!(rollback_target(&repo, &serving("[]", "[]", &[])).is_none());
        assert!(rollback_target(&repo, &serving("null", "null", &[])).is_none());
    }

    #[test]
    fn commits_match_by_prefix_of_at_least_seven() {
        assert!(same_commit("0123456789abcdef", "0123456"));
        assert!(same_commit("0123456", "0123456789abcdef"));
        assert!(!same_commit("0123456789abcdef", "0123457"));
        assert!(!same_commit("unknown", "0123456"));
        assert!(!same_commit("0123", "0123"));
    }
}
