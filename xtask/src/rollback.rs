//! `cargo xtask rollback`: puts the last good release's image back. Fly has no rollback
//! command; its documented way is `fly releases --image` to find the previous image, then
//! `fly deploy --image <ref>`. After the deploy the service must become ready and pass smoke.

use std::io::Write;
use std::time::Duration;

use clap::Args as ClapArgs;
use serde::{Deserialize, Serialize};

use crate::config::{DeployConfig, Environment};
use crate::deploy::gates::{Gates, TaskGates, parse_wait, wait_ready};
use crate::flyctl::{
    DeployCommand, Flyctl, Release, current_release, flyctl_failure, previous_good_release,
};
use crate::output::Output;
use crate::record::RunClock;
use crate::repo::Repo;
use crate::verdict::Verdict;

/// Options of `cargo xtask rollback`.
#[derive(Debug, Clone, ClapArgs)]
pub struct Args {
    /// The environment from ops/deploy.toml to roll back (e.g. staging).
    #[arg(long = "env", value_name = "NAME")]
    pub env: String,
    /// Deploy this image instead of the last good release's (as `flyctl releases --image` shows it).
    #[arg(long = "to", value_name = "IMAGE_REF", conflicts_with = "to_version")]
    pub to: Option<String>,
    /// Deploy the image of this release number instead of the last good release's.
    #[arg(long = "to-version", value_name = "N")]
    pub to_version: Option<u64>,
    /// Print the flyctl commands without running any.
    #[arg(long)]
    pub dry_run: bool,
    /// How long flyctl and the readiness poll may wait (e.g. 300, 90s, 5m).
    #[arg(long, value_name = "DURATION", default_value = "5m", value_parser = parse_wait)]
    pub wait_timeout: u64,
    /// Print the result record as JSON on stdout (human text goes to stderr).
    #[arg(long)]
    pub json: bool,
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

/// The saved result of a rollback (also embedded in a deploy that rolled back by itself).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RollbackResult {
    /// The Fly app.
    pub app: String,
    /// The release that was current before the rollback.
    pub from: Option<ReleaseRef>,
    /// The image deployed.
    pub to_image: Option<String>,
    /// The release number whose image was deployed, when known.
    pub to_version: Option<u64>,
    /// Whether readiness answered after the rollback (`None` when not reached).
    pub readiness: Option<Verdict>,
    /// The smoke verdict after the rollback (`None` when not reached).
    pub smoke: Option<Verdict>,
    /// Why it failed, if it did.
    pub problems: Vec<String>,
}

/// Entry point of `cargo xtask rollback`.
pub fn run(args: Args) -> anyhow::Result<Verdict> {
    let repo = Repo::discover()?;
    let flyctl = Flyctl::from_env(args.dry_run)?;
    let mut human = Output::new(args.json).human_writer();
    let (verdict, result) = run_with(
        &repo,
        &args,
        flyctl,
        &TaskGates { json: args.json },
        &mut human,
    )?;
    Output::new(args.json).machine(&result)?;
    Ok(verdict)
}

/// Runs the rollback on `repo`, writing human text to `out`; saves the record unless dry.
pub fn run_with(
    repo: &Repo,
    args: &Args,
    flyctl: Flyctl,
    gates: &dyn Gates,
    out: &mut dyn Write,
) -> anyhow::Result<(Verdict, RollbackResult)> {
    let clock = RunClock::start("rollback");
    let config = DeployConfig::load(repo)?;
    let environment = config.environment(&args.env)?.clone();
    let flyctl = flyctl.in_dir(repo.root()).with_dry_run(args.dry_run);
    let mut result = RollbackResult {
        app: environment.app.clone(),
        from: None,
        to_image: None,
        to_version: None,
        readiness: None,
        smoke: None,
        problems: Vec::new(),
    };

    let releases = match flyctl.releases(&environment.app, out) {
        Ok(releases) => releases,
        Err(error) => match flyctl_failure(&error) {
            Some(failure) => {
                result.problems.push(failure.to_string());
                return finish(repo, args, &flyctl, clock, result, out);
            }
            None => return Err(error),
        },
    };
    match choose_target(args, releases.as_deref(), &environment.app) {
        Err(problem) => result.problems.push(problem),
        Ok((from, image, version)) => {
            result.from = from;
            result.to_version = version;
            writeln!(out, "rolling {} back to {image}", environment.app)?;
            result.to_image = Some(image.clone());
            perform(
                repo,
                &args.env,
                &environment,
                &flyctl,
                gates,
                &image,
                args.wait_timeout,
                &mut result,
                out,
            )?;
        }
    }
    finish(repo, args, &flyctl, clock, result, out)
}

/// Decides what to deploy: `(current release, image, its release number)`, or why nothing.
/// Without the list (a dry run) the image is a placeholder naming what would be looked up.
fn choose_target(
    args: &Args,
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
            None => Err(format!(
                "release v{n} is not among the last {} releases of {app} that flyctl lists; give --to IMAGE_REF instead",
                releases.len()
            )),
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

/// Deploys `image`, waits for readiness and runs smoke, filling `result`. A failing flyctl
/// call becomes a problem; anything that could not run is an error.
#[allow(clippy::too_many_arguments)]
pub fn perform(
    repo: &Repo,
    env_name: &str,
    environment: &Environment,
    flyctl: &Flyctl,
    gates: &dyn Gates,
    image: &str,
    wait_timeout: u64,
    result: &mut RollbackResult,
    out: &mut dyn Write,
) -> anyhow::Result<()> {
    let command = rollback_command(environment, image, wait_timeout);
    if let Err(error) = flyctl.deploy(&command, out) {
        match flyctl_failure(&error) {
            Some(failure) => {
                result.problems.push(failure.to_string());
                return Ok(());
            }
            None => return Err(error),
        }
    }
    if flyctl.dry_run() {
        writeln!(
            out,
            "would wait up to {wait_timeout}s for {}/api/v1/readyz, then run `cargo xtask smoke --env {env_name}`",
            environment.url
        )?;
        return Ok(());
    }
    let (ready, evidence) = wait_ready(&environment.url, Duration::from_secs(wait_timeout), out)?;
    result.readiness = Some(ready);
    if ready == Verdict::Fail {
        result
            .problems
            .push(format!("after the rollback, {evidence}"));
        return Ok(());
    }
    let smoke = gates.smoke(repo, env_name)?;
    result.smoke = Some(smoke);
    if smoke == Verdict::Fail {
        result.problems.push(format!(
            "smoke fails after the rollback too: see `cargo xtask smoke --env {env_name}`"
        ));
    }
    Ok(())
}

/// The `flyctl deploy --image` that puts `image` back on the environment's app.
pub fn rollback_command(
    environment: &Environment,
    image: &str,
    wait_timeout: u64,
) -> DeployCommand {
    DeployCommand {
        app: environment.app.clone(),
        config: environment.fly_config.clone(),
        image: Some(image.to_string()),
        strategy: None,
        wait_timeout_secs: wait_timeout,
    }
}

fn finish(
    repo: &Repo,
    args: &Args,
    flyctl: &Flyctl,
    clock: RunClock,
    result: RollbackResult,
    out: &mut dyn Write,
) -> anyhow::Result<(Verdict, RollbackResult)> {
    let verdict = if result.problems.is_empty() {
        Verdict::Pass
    } else {
        Verdict::Fail
    };
    for problem in &result.problems {
        writeln!(out, "problem: {problem}")?;
    }
    if flyctl.dry_run() {
        writeln!(out, "dry run: nothing was deployed and nothing recorded")?;
    } else {
        writeln!(out, "rollback of {}: {verdict}", result.app)?;
        let path = clock
            .finish(repo, &args.env, verdict, result.clone())
            .save(repo)?;
        writeln!(out, "result saved to {}", path.display())?;
        let shown = |value: Option<String>| value.unwrap_or_else(|| "-".to_string());
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
                ("readiness", shown(result.readiness.map(|v| v.to_string()))),
                ("smoke", shown(result.smoke.map(|v| v.to_string()))),
            ],
            &result.problems,
        );
        crate::output::append_step_summary(&summary)?;
    }
    Ok((verdict, result))
}
