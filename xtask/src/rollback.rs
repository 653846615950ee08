//! `cargo xtask rollback`: puts an earlier image back. Fly has no rollback command; its
//! documented way is `fly releases --image` to find the previous image, then
//! `fly deploy --image <ref>`. Afterwards the same proof as a deploy holds: a newer release
//! running that image is complete, every machine runs it with passing checks and reports the
//! image's commit, readiness answers and smoke passes. A rollback never reverts the schema:
//! it names the migrations added since the target's commit.

use std::io::Write;
use std::time::Duration;

use crate::config::DeployConfig;
use crate::deploy::gates::{Gates, TaskGates};
use crate::flyctl::{Flyctl, Release, current_release, previous_good_release};
use crate::output::Output;
use crate::predeploy::CommandLine;
use crate::record::RunClock;
use crate::release::{self, Closing, RollbackPlan, shown};
use crate::release::{
    VersionAnswer, commit_of_image, migrations_added, read_serving, roll_back, short_commit,
};
use crate::repo::Repo;
use crate::verdict::Verdict;

pub use crate::release::rollback_command;
pub use crate::release::{ReleaseRef, RollbackResult};

/// Options of `cargo xtask rollback`.
#[derive(Debug, Clone)]
pub struct Options {
    /// The environment from ops/deploy.toml to roll back (e.g. staging).
    pub env: String,
    /// Deploy this image instead of the last good release's (as `flyctl releases --image` shows it).
    pub to: Option<String>,
    /// Deploy the image of this release number instead of the last good release's.
    pub to_version: Option<u64>,
    /// Make only the read-only calls (releases, machines, the version endpoint) and print the
    /// image and commit it would deploy; deploy nothing.
    pub dry_run: bool,
    /// How long flyctl, the proof that the image serves and the readiness poll may each wait
    /// (e.g. 300, 90s, 5m).
    pub wait_timeout: Duration,
    /// How long one `flyctl deploy` may run in all (build and rollout) before it is stopped
    /// and counted as a failure (e.g. 30m).
    pub deploy_timeout: Duration,
}

/// Entry point of `cargo xtask rollback`.
///
/// `command_line` is handed to predeploy's `docs_commands` check (`None` skips it).
pub fn run(
    args: Options,
    output: Output,
    command_line: Option<CommandLine>,
) -> anyhow::Result<Verdict> {
    let gates = TaskGates::new(output, command_line);
    release::start(
        &Repo::discover()?,
        args.dry_run,
        output,
        |repo, flyctl, out| run_with(repo, &args, flyctl, &gates, out),
    )
}

/// Runs the rollback on `repo`, writing human text to `out`; saves the record unless dry.
pub fn run_with(
    repo: &Repo,
    args: &Options,
    flyctl: Flyctl,
    gates: &dyn Gates,
    out: &mut dyn Write,
) -> anyhow::Result<(Verdict, RollbackResult)> {
    let clock = RunClock::start("rollback");
    let config = DeployConfig::load(repo)?;
    let environment = config.environment(&args.env)?.clone();
    let flyctl = flyctl.in_dir(repo.root()).with_dry_run(args.dry_run);
    let mut result = RollbackResult::new(&environment.app);

    let serving = match read_serving(&flyctl, &environment.app, &environment.url, out)? {
        Ok(serving) => serving,
        Err(problem) => {
            result.problems.push(problem);
            return finish(repo, args, &flyctl, clock, result, gates.json(), out);
        }
    };
    let releases = serving.as_ref().map(|s| s.releases.as_slice());
    let (from, image, version) = match choose_target(args, releases, &environment.app) {
        Ok(chosen) => chosen,
        Err(problem) => {
            result.problems.push(problem);
            return finish(repo, args, &flyctl, clock, result, gates.json(), out);
        }
    };
    result.from = from;
    result.to_version = version;
    result.to_image = Some(image.clone());
    result.before = serving.as_ref().map(|s| s.snapshot());
    if serving.is_some() {
        result.to_commit = commit_of_image(repo, &image);
    }
    result.from_commit = serving.as_ref().and_then(|s| common_commit(&s.answers));
    writeln!(
        out,
        "rollback target of {}: {image}{} serving commit {}",
        environment.app,
        version
            .map(|v| format!(" (release v{v})"))
            .unwrap_or_default(),
        result
            .to_commit
            .as_deref()
            .unwrap_or("unknown (the image tag names no commit git knows)")
    )?;
    if let Some(current) = &result.from_commit {
        writeln!(out, "serving now: commit {current}")?;
    }
    if let (Some(target), Some(current)) = (&result.to_commit, &result.from_commit) {
        match migrations_added(repo, target, current) {
            Some(added) if !added.is_empty() => {
                writeln!(
                    out,
                    "warning: a rollback does not revert the schema; these migrations were added after {} and stay applied:",
                    short_commit(target)
                )?;
                for migration in &added {
                    writeln!(out, "    {migration}")?;
                }
                writeln!(
                    out,
                    "the image being restored must work with them (migrations are meant to be backward compatible)"
                )?;
                result.migrations_not_reverted = added;
            }
            Some(_) => writeln!(out, "no migration was added between the two commits")?,
            None => writeln!(
                out,
                "warning: git cannot compare {} with {}: check backend/migrations by hand, a rollback does not revert the schema",
                short_commit(target),
                short_commit(current)
            )?,
        }
    }
    let to_commit = result.to_commit.clone();
    let plan = RollbackPlan {
        env_name: &args.env,
        environment: &environment,
        image: &image,
        commit: to_commit.as_deref(),
        newer_than: serving
            .as_ref()
            .and_then(|s| s.releases.first())
            .map(|r| r.version),
        wait_timeout: args.wait_timeout.as_secs(),
        deploy_timeout: args.deploy_timeout.as_secs(),
    };
    let announcer = release::announce_going_live(
        repo,
        &args.env,
        &environment,
        flyctl.dry_run(),
        &format!("rolling {} back to {image}", environment.app),
        out,
    );
    roll_back(repo, &flyctl, gates, &plan, &mut result, out)?;
    let (verdict, result) = finish(repo, args, &flyctl, clock, result, gates.json(), out)?;
    announcer.say(
        &match verdict {
            Verdict::Fail => format!(
                "{}: the rollback to {image} FAIL: {}",
                args.env,
                result.problems.first().map_or("", String::as_str)
            ),
            _ => format!("{}: rolled back to {image}", args.env),
        },
        out,
    );
    Ok((verdict, result))
}

/// The commit every machine reported, when they agree.
fn common_commit(answers: &[VersionAnswer]) -> Option<String> {
    let commits: Vec<&str> = answers.iter().filter_map(|a| a.commit.as_deref()).collect();
    let first = *commits.first()?;
    (commits.len() == answers.len() && commits.iter().all(|c| *c == first) && first != "unknown")
        .then(|| first.to_string())
}

/// Decides what to deploy: `(current release, image, its release number)`, or why nothing.
/// How many releases `fly releases` lists: the newest 25 (flyctl
/// `internal/command/apps/releases.go`, `GetAppReleasesMachines(ctx, app, "", 25)`).
pub const RELEASE_WINDOW: usize = 25;

/// Why `--to-version N` cannot be used: the release is older than what flyctl lists, or does
/// not exist.
fn release_outside_window(n: u64, app: &str, releases: &[Release]) -> String {
    let oldest = releases.iter().map(|r| r.version).min();
    match oldest {
        Some(oldest) if n < oldest && releases.len() >= RELEASE_WINDOW => format!(
            "release v{n} of {app} is older than the {RELEASE_WINDOW} newest releases, the only \
             ones `fly releases` lists (the oldest listed is v{oldest}): give its image with \
             --to IMAGE_REF instead (a record of the deploy that made it names it)"
        ),
        _ => format!(
            "release v{n} is not among the {} releases of {app} that flyctl lists; give --to \
             IMAGE_REF instead",
            releases.len()
        ),
    }
}

/// Without the list (a dry run) the image is a placeholder naming what would be looked up.
fn choose_target(
    args: &Options,
    releases: Option<&[Release]>,
    app: &str,
) -> Result<(Option<ReleaseRef>, String, Option<u64>), String> {
    let Some(releases) = releases else {
        let image = match (&args.to, args.to_version) {
            (Some(image), _) => image.clone(),
            (None, Some(n)) => format!("<image of release v{n}>"),
            (None, None) => "<image of the last good release before the current one>".to_string(),
        };
        return Ok((None, image, args.to_version));
    };
    let current = current_release(releases);
    let from = current.map(ReleaseRef::from);
    if let Some(image) = &args.to {
        let version = releases
            .iter()
            .find(|r| r.image_ref.as_ref() == Some(image))
            .map(|r| r.version);
        return Ok((from, image.clone(), version));
    }
    if let Some(n) = args.to_version {
        let release = releases.iter().find(|r| r.version == n);
        return match release.and_then(|r| r.image_ref.clone()) {
            Some(image) => Ok((from, image, Some(n))),
            None if release.is_some() => Err(format!(
                "release v{n} of {app} has no image reference to deploy; pick another with --to-version or give --to IMAGE_REF"
            )),
            None => Err(release_outside_window(n, app, releases)),
        };
    }
    let Some(current) = current else {
        return Err(format!(
            "{app} has no releases: there is nothing to roll back to"
        ));
    };
    match previous_good_release(releases, current) {
        Some(previous) => Ok((
            from,
            previous.image_ref.clone().unwrap_or_default(),
            Some(previous.version),
        )),
        None => Err(format!(
            "no good release of {app} before v{} with a different image among the last {} releases: \
             there is nothing to roll back to; fix forward with `cargo xtask deploy`, or give --to IMAGE_REF",
            current.version,
            releases.len()
        )),
    }
}

fn finish(
    repo: &Repo,
    args: &Options,
    flyctl: &Flyctl,
    clock: RunClock,
    result: RollbackResult,
    json: bool,
    out: &mut dyn Write,
) -> anyhow::Result<(Verdict, RollbackResult)> {
    let verdict = release::verdict_of(&result.problems);
    let summary = crate::output::facts_markdown(
        &format!("rollback {} ({})", args.env, result.app),
        verdict,
        &[
            (
                "from",
                shown(result.from.as_ref().map(|r| format!("v{}", r.version))),
            ),
            (
                "to version",
                shown(result.to_version.map(|v| format!("v{v}"))),
            ),
            ("to image", shown(result.to_image.clone())),
            ("to commit", shown(result.to_commit.clone())),
            ("proven to serve", shown(result.rollout.proven())),
            (
                "readiness",
                shown(result.rollout.readiness.map(|v| v.to_string())),
            ),
            ("smoke", shown(result.rollout.smoke.map(|v| v.to_string()))),
        ],
        &result.problems,
    );
    let closing = Closing {
        env_name: &args.env,
        verdict,
        problems: &result.problems,
        dry_run: flyctl.dry_run(),
        verdict_line: format!("rollback of {}: {verdict}", result.app),
        summary,
        save: true,
        json,
    };
    release::close(repo, clock, &closing, result.clone(), out)?;
    Ok((verdict, result))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::flyctl::parse_releases;

    fn releases(versions: std::ops::RangeInclusive<u64>) -> Vec<Release> {
        let json: Vec<serde_json::Value> = versions
            .map(|v| {
                serde_json::json!({"Version": v, "Status": "complete",
                                   "ImageRef": format!("registry.fly.io/a:{v:07}")})
            })
            .collect();
        parse_releases(&serde_json::to_string(&json).unwrap()).unwrap()
    }

    #[test]
    fn a_version_older_than_the_window_is_named_as_such() {
        let window = releases(16..=40);
        let text = release_outside_window(3, "a", &window);
        assert!(
            text.contains("older than the 25 newest releases") && text.contains("v16"),
            "{text}"
        );
        // A short history: the release simply is not there.
        let short = releases(1..=4);
        let text = release_outside_window(9, "a", &short);
        assert!(text.contains("is not among the 4 releases"), "{text}");
    }
}
