//! `cargo xtask deploy`: predeploy, then `flyctl deploy` with Fly's health checks (never
//! `--detach`), then readiness and smoke against the environment. When the new release does
//! not pass, it prints the exact rollback command, or rolls back itself with
//! `--rollback-on-failure`.

pub mod gates;

use std::io::Write;
use std::time::Duration;

use clap::Args as ClapArgs;
use serde::{Deserialize, Serialize};

use crate::config::DeployConfig;
use crate::flyctl::{
    DeployCommand, Flyctl, current_release, failure_or_error, previous_good_release,
};
use crate::output::Output;
use crate::record::RunClock;
use crate::repo::Repo;
use crate::rollback::{ReleaseRef, RollbackResult, perform, rollback_command};
use crate::verdict::Verdict;
use gates::{Gates, TaskGates, parse_wait, wait_ready};

/// Options of `cargo xtask deploy`.
#[derive(Debug, Clone, ClapArgs)]
pub struct Args {
    /// The environment from ops/deploy.toml to deploy (e.g. staging).
    #[arg(long = "env", value_name = "NAME")]
    pub env: String,
    /// Print the flyctl commands without running any (predeploy still runs: it changes nothing).
    #[arg(long)]
    pub dry_run: bool,
    /// Fly's deploy strategy.
    #[arg(long, value_name = "S", default_value = "rolling",
          value_parser = ["rolling", "immediate", "canary", "bluegreen"])]
    pub strategy: String,
    /// When the new release is not ready or fails smoke, deploy the last good image again.
    #[arg(long)]
    pub rollback_on_failure: bool,
    /// How long flyctl and the readiness poll may wait (e.g. 300, 90s, 5m).
    #[arg(long, value_name = "DURATION", default_value = "5m", value_parser = parse_wait)]
    pub wait_timeout: u64,
    /// Print the result record as JSON on stdout (human text goes to stderr).
    #[arg(long)]
    pub json: bool,
}

/// The saved result of a deploy; `report` and `status` read it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DeployResult {
    /// The Fly app deployed to.
    pub app: String,
    /// The deploy strategy passed to flyctl.
    pub strategy: String,
    /// The predeploy verdict (a failure stops the deploy before flyctl runs).
    pub predeploy: Verdict,
    /// Who flyctl was logged in as.
    pub fly_user: Option<String>,
    /// The release the deploy created (newest after it), when flyctl listed it.
    pub release: Option<ReleaseRef>,
    /// Whether readiness answered 200 in time (`None` when not reached).
    pub readiness: Option<Verdict>,
    /// The smoke verdict against the new release (`None` when not reached).
    pub smoke: Option<Verdict>,
    /// The release to go back to when this one fails, if there is one.
    pub rollback_target: Option<ReleaseRef>,
    /// The command that rolls back, printed when the release failed.
    pub rollback_command: Option<String>,
    /// What `--rollback-on-failure` did.
    pub rolled_back: Option<RollbackResult>,
    /// Why the deploy failed, if it did (no secret in it).
    pub problems: Vec<String>,
}

/// Entry point of `cargo xtask deploy`.
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

/// Runs the deploy on `repo` with the given flyctl and gates, writing human text to `out`.
/// Saves the record unless it is a dry run.
pub fn run_with(
    repo: &Repo,
    args: &Args,
    flyctl: Flyctl,
    gates: &dyn Gates,
    out: &mut dyn Write,
) -> anyhow::Result<(Verdict, DeployResult)> {
    let clock = RunClock::start("deploy");
    let config = DeployConfig::load(repo)?;
    let environment = config.environment(&args.env)?.clone();
    let flyctl = flyctl.in_dir(repo.root()).with_dry_run(args.dry_run);
    let mut result = DeployResult {
        app: environment.app.clone(),
        strategy: args.strategy.clone(),
        predeploy: Verdict::Skip,
        fly_user: None,
        release: None,
        readiness: None,
        smoke: None,
        rollback_target: None,
        rollback_command: None,
        rolled_back: None,
        problems: Vec::new(),
    };

    result.predeploy = gates.predeploy(repo, &args.env)?;
    if result.predeploy == Verdict::Fail {
        result.problems.push(format!(
            "predeploy failed: fix what `cargo xtask predeploy --env {}` lists, then deploy again",
            args.env
        ));
        return finish(repo, args, &flyctl, clock, result, out);
    }

    match flyctl.whoami(out) {
        Ok(user) => result.fly_user = user,
        Err(error) => {
            let failure = failure_or_error(error)?;
            result.problems.push(format!(
                "flyctl is not logged in: run `flyctl auth login`, or export FLY_API_TOKEN (a deploy token from `fly tokens create deploy`). {failure}"
            ));
            return finish(repo, args, &flyctl, clock, result, out);
        }
    }

    let deploy = DeployCommand {
        app: environment.app.clone(),
        config: environment.fly_config.clone(),
        image: None,
        strategy: Some(args.strategy.clone()),
        wait_timeout_secs: args.wait_timeout,
    };
    if let Err(error) = flyctl.deploy(&deploy, out) {
        let failure = failure_or_error(error)?;
        result.problems.push(format!(
            "{failure}\nFly keeps the machines that passed; see `flyctl releases --app {} --image`, and `cargo xtask rollback --env {}` returns to the last good image",
            environment.app, args.env
        ));
        return finish(repo, args, &flyctl, clock, result, out);
    }

    let releases = match flyctl.releases(&environment.app, out) {
        Ok(releases) => releases,
        Err(error) => {
            let failure = failure_or_error(error)?;
            result.problems.push(format!(
                "the deploy ran, but listing its release failed: {failure}"
            ));
            return finish(repo, args, &flyctl, clock, result, out);
        }
    };
    if let Some(releases) = &releases {
        let current = current_release(releases);
        result.release = current.map(ReleaseRef::from);
        result.rollback_target = current
            .and_then(|c| previous_good_release(releases, c))
            .map(ReleaseRef::from);
        if let Some(release) = &result.release {
            let image = release
                .image_ref
                .as_deref()
                .unwrap_or("(no image reported)");
            writeln!(
                out,
                "release v{} ({}) runs {image}",
                release.version, release.status
            )?;
        }
    }

    if flyctl.dry_run() {
        writeln!(
            out,
            "would wait up to {}s for {}/api/v1/readyz, then run `cargo xtask smoke --env {}`",
            args.wait_timeout, environment.url, args.env
        )?;
        return finish(repo, args, &flyctl, clock, result, out);
    }

    let (ready, evidence) = wait_ready(
        &environment.url,
        Duration::from_secs(args.wait_timeout),
        out,
    )?;
    result.readiness = Some(ready);
    if ready == Verdict::Fail {
        result
            .problems
            .push(format!("the new release is not ready: {evidence}"));
    } else {
        let smoke = gates.smoke(repo, &args.env)?;
        result.smoke = Some(smoke);
        if smoke == Verdict::Fail {
            result.problems.push(format!(
                "smoke fails against the new release: see `cargo xtask smoke --env {}`",
                args.env
            ));
        }
    }
    if !result.problems.is_empty() {
        handle_failed_release(repo, args, &environment, &flyctl, gates, &mut result, out)?;
    }
    finish(repo, args, &flyctl, clock, result, out)
}

/// Prints how to roll back, or rolls back itself with `--rollback-on-failure`.
fn handle_failed_release(
    repo: &Repo,
    args: &Args,
    environment: &crate::config::Environment,
    flyctl: &Flyctl,
    gates: &dyn Gates,
    result: &mut DeployResult,
    out: &mut dyn Write,
) -> anyhow::Result<()> {
    let Some(image) = result
        .rollback_target
        .as_ref()
        .and_then(|t| t.image_ref.clone())
    else {
        result.problems.push(format!(
            "there is no earlier good release with another image to roll back to: fix forward, or run `cargo xtask rollback --env {} --to IMAGE_REF`",
            args.env
        ));
        return Ok(());
    };
    let xtask_line = format!("cargo xtask rollback --env {} --to {image}", args.env);
    let flyctl_line = flyctl.display(&crate::flyctl::Invocation::new(
        rollback_command(environment, &image, args.wait_timeout).args(),
    ));
    result.rollback_command = Some(xtask_line.clone());
    if !args.rollback_on_failure {
        writeln!(
            out,
            "\nto roll back to the last good release, run:\n    {xtask_line}\n(which runs: {flyctl_line})"
        )?;
        return Ok(());
    }
    writeln!(out, "\nrolling back (--rollback-on-failure) to {image}")?;
    let mut rollback = RollbackResult {
        app: environment.app.clone(),
        from: result.release.clone(),
        to_image: Some(image.clone()),
        to_version: result.rollback_target.as_ref().map(|t| t.version),
        readiness: None,
        smoke: None,
        problems: Vec::new(),
    };
    perform(
        repo,
        &args.env,
        environment,
        flyctl,
        gates,
        &image,
        args.wait_timeout,
        &mut rollback,
        out,
    )?;
    for problem in &rollback.problems {
        result.problems.push(format!("rollback: {problem}"));
    }
    result.rolled_back = Some(rollback);
    Ok(())
}

fn finish(
    repo: &Repo,
    args: &Args,
    flyctl: &Flyctl,
    clock: RunClock,
    result: DeployResult,
    out: &mut dyn Write,
) -> anyhow::Result<(Verdict, DeployResult)> {
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
        let rolled_back = if result.rolled_back.is_some() {
            " (rolled back)"
        } else {
            ""
        };
        writeln!(
            out,
            "deploy of {} ({}): {verdict}{rolled_back}",
            result.app, args.env
        )?;
        let path = clock
            .finish(repo, &args.env, verdict, result.clone())
            .save(repo)?;
        writeln!(out, "result saved to {}", path.display())?;
        crate::output::append_step_summary(&summary_markdown(&args.env, verdict, &result))?;
    }
    Ok((verdict, result))
}

/// The deploy in a few lines for the CI job summary.
fn summary_markdown(env: &str, verdict: Verdict, result: &DeployResult) -> String {
    let shown = |value: Option<String>| value.unwrap_or_else(|| "-".to_string());
    let release = result.release.as_ref();
    crate::output::facts_markdown(
        &format!("deploy {env} ({})", result.app),
        verdict,
        &[
            ("strategy", result.strategy.clone()),
            (
                "release",
                shown(release.map(|r| format!("v{} ({})", r.version, r.status))),
            ),
            ("image", shown(release.and_then(|r| r.image_ref.clone()))),
            ("readiness", shown(result.readiness.map(|v| v.to_string()))),
            ("smoke", shown(result.smoke.map(|v| v.to_string()))),
            (
                "rolled back",
                if result.rolled_back.is_some() {
                    "yes".into()
                } else {
                    "no".into()
                },
            ),
            ("rollback command", shown(result.rollback_command.clone())),
        ],
        &result.problems,
    )
}
