//! `cargo xtask deploy`: predeploy, then `flyctl deploy` building HEAD (labelled with its
//! commit, never `--detach`), then the proof that the new build serves (a newer complete
//! release, every machine on its image with passing checks, every machine's version endpoint
//! reporting HEAD), readiness and smoke. Before flyctl runs it records what serves, so any
//! failure after that point can go back to it: it prints the exact rollback command, or rolls
//! back itself with `--rollback-on-failure`.

mod finish;
pub mod gates;
pub mod logs;
pub mod production;

use std::io::Write;
use std::time::Duration;

use anyhow::anyhow;
use serde::{Deserialize, Serialize};

use crate::announce;
use crate::config::{DeployConfig, Environment};
use crate::flyctl::{Flyctl, failure_or_error};
use crate::output::Output;
use crate::predeploy::CommandLine;
use crate::record::RunClock;
use crate::release::{
    self, Expected, OnFailure, ReleaseRef, RollbackTarget, Rollout, RolloutOutcome, Snapshot,
    Source, read_serving, rollback_target,
};
use crate::repo::Repo;
use crate::verdict::Verdict;
use finish::{finish, save_if_interrupted};
use gates::{Gates, TaskGates};

/// The build argument that bakes the commit into the image (`ARG GIT_COMMIT` in the Dockerfile).
pub const COMMIT_BUILD_ARG: &str = "GIT_COMMIT";

/// Options of `cargo xtask deploy`.
#[derive(Debug, Clone)]
pub struct Options {
    /// The environment from ops/deploy.toml to deploy (e.g. staging).
    pub env: String,
    /// Print the flyctl commands without running any, and save no record (predeploy still
    /// checks, unrecorded).
    pub dry_run: bool,
    /// Fly's deploy strategy.
    pub strategy: String,
    /// On any failure once flyctl has started (flyctl fails or times out, the new build is not
    /// proven to serve, readiness or smoke fails or cannot run), deploy the image that served
    /// before again and prove it serves.
    pub rollback_on_failure: bool,
    /// How long flyctl, the proof that the build serves and the readiness poll may each wait
    /// (e.g. 300, 90s, 5m).
    pub wait_timeout: Duration,
    /// How long one `flyctl deploy` may run in all (build and rollout) before it is stopped
    /// and counted as a failure (e.g. 30m).
    pub deploy_timeout: Duration,
    /// Also prove machines Fly stopped for idleness: ask each for its version, which starts it
    /// (without it a stopped machine counts as updated when its config names the new image).
    pub wake: bool,
    /// Production only: deploy an app with no machine yet without staging's evidence
    /// ([`production::gate`]).
    pub first_deploy: bool,
    /// How long to read the app's logs once the deploy is proven (zero: not read).
    pub logs: Duration,
    /// Prove the release at this base URL instead of the environment's (e.g. the local Fly's
    /// proxy, `http://127.0.0.1:PORT`); the app, env file and fly.toml stay the environment's.
    pub url: Option<String>,
}

/// The rollout strategy without `--strategy`.
pub const DEFAULT_STRATEGY: &str = "rolling";
/// How long flyctl waits for each machine to pass its checks without `--wait-timeout` (5m).
pub const DEFAULT_WAIT_TIMEOUT: Duration = Duration::from_secs(300);
/// How long one `flyctl deploy` may run without `--deploy-timeout` (30m).
pub const DEFAULT_DEPLOY_TIMEOUT: Duration = Duration::from_secs(1800);

impl Options {
    /// The options of `cargo xtask deploy --env ENV`.
    pub fn for_env(env: &str) -> Options {
        Options {
            env: env.to_string(),
            dry_run: false,
            strategy: DEFAULT_STRATEGY.to_string(),
            rollback_on_failure: false,
            wait_timeout: DEFAULT_WAIT_TIMEOUT,
            deploy_timeout: DEFAULT_DEPLOY_TIMEOUT,
            wake: false,
            first_deploy: false,
            logs: logs::DEFAULT_LOG_WINDOW,
            url: None,
        }
    }
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
    /// The release that served before the deploy (what a failure goes back to), if any.
    pub rollback_target: Option<ReleaseRef>,
    /// Why the deploy failed, if it did (no secret in it).
    pub problems: Vec<String>,
    /// The rollout: the release serving afterwards (the new one, or the rollback's when one
    /// ran and served), the proof, readiness, smoke, the rollback command and what
    /// `--rollback-on-failure` did.
    #[serde(flatten)]
    pub rollout: RolloutOutcome,
    /// The commit built and deployed (HEAD), passed as `--build-arg GIT_COMMIT`.
    #[serde(default)]
    pub commit: Option<String>,
    /// The `--image-label` given to the built image (HEAD's short commit).
    #[serde(default)]
    pub image_label: Option<String>,
    /// The image that served before the deploy, recorded before flyctl ran (`None` on a
    /// first deploy).
    #[serde(default)]
    pub rollback_image: Option<String>,
    /// The commit that served before the deploy, when the machines said or its tag names it.
    #[serde(default)]
    pub rollback_commit: Option<String>,
    /// The app before flyctl ran: releases, machines, their images and commits.
    #[serde(default)]
    pub before: Option<Snapshot>,
    /// The app's error and panic lines in the window after a proven deploy, when read.
    #[serde(default)]
    pub logs: Option<logs::DeployLogs>,
}

impl DeployResult {
    /// The result of a deploy to `app` with `strategy` before anything ran.
    pub fn new(app: &str, strategy: &str) -> DeployResult {
        DeployResult {
            app: app.to_string(),
            strategy: strategy.to_string(),
            predeploy: Verdict::Skip,
            fly_user: None,
            rollback_target: None,
            problems: Vec::new(),
            rollout: RolloutOutcome::default(),
            commit: None,
            image_label: None,
            rollback_image: None,
            rollback_commit: None,
            before: None,
            logs: None,
        }
    }
}

/// Entry point of `cargo xtask deploy`.
///
/// `command_line` is handed to predeploy's `docs_commands` check (`None` skips it).
pub fn run(
    args: Options,
    output: Output,
    command_line: Option<CommandLine>,
) -> anyhow::Result<Verdict> {
    let gates = TaskGates {
        url: args.url.clone(),
        ..TaskGates::new(output, command_line)
    };
    release::start(
        &Repo::discover()?,
        args.dry_run,
        output,
        |repo, flyctl, out| run_with(repo, &args, flyctl, &gates, out),
    )
}

/// Runs the deploy on `repo` with the given flyctl and gates, writing human text to `out`.
/// Saves the record unless it is a dry run.
pub fn run_with(
    repo: &Repo,
    args: &Options,
    flyctl: Flyctl,
    gates: &dyn Gates,
    out: &mut dyn Write,
) -> anyhow::Result<(Verdict, DeployResult)> {
    let config = DeployConfig::load(repo)?;
    let mut environment = config.environment(&args.env)?.clone();
    if let Some(url) = &args.url {
        environment.url = crate::config::normalize_url(url)?;
    }
    if let Some(refused) = production::gate(repo, args, &environment, &flyctl, out)? {
        return Ok(refused);
    }
    execute(repo, args, &environment, flyctl, gates, true, out)
}

/// The deploy of `environment` (named `args.env`), for callers that hold the environment
/// themselves (the rehearsal's local Fly). Saves the record when `record` is set and it is not
/// a dry run.
pub fn execute(
    repo: &Repo,
    args: &Options,
    environment: &Environment,
    flyctl: Flyctl,
    gates: &dyn Gates,
    record: bool,
    out: &mut dyn Write,
) -> anyhow::Result<(Verdict, DeployResult)> {
    let clock = record.then(|| RunClock::start("deploy"));
    let environment = environment.clone();
    let flyctl = flyctl.in_dir(repo.root()).with_dry_run(args.dry_run);
    let mut result = DeployResult::new(&environment.app, &args.strategy);

    // A dry run saves nothing, the predeploy it runs included.
    result.predeploy = gates.predeploy(repo, &args.env, clock.is_some() && !flyctl.dry_run())?;
    if result.predeploy == Verdict::Fail {
        result.problems.push(format!(
            "predeploy failed: fix what `cargo xtask predeploy --env {}` lists, then deploy again",
            args.env
        ));
        return finish(repo, args, &flyctl, clock, result, gates.json(), out);
    }

    let git = repo.git_state().ok_or_else(|| {
        anyhow!(
            "{} has no git commit: deploy labels every image with the commit it builds; commit, then deploy",
            repo.root().display()
        )
    })?;
    if git.dirty {
        writeln!(
            out,
            "warning: the working tree has uncommitted changes; flyctl builds the files on disk, labelled as {}",
            git.short()
        )?;
    }
    let label = crate::release::short_commit(&git.commit).to_string();
    result.commit = Some(git.commit.clone());
    result.image_label = Some(label.clone());

    match flyctl.whoami(out) {
        Ok(user) => result.fly_user = user,
        Err(error) => {
            let failure = failure_or_error(error)?;
            result.problems.push(format!(
                "flyctl is not logged in: run `flyctl auth login`, or export FLY_API_TOKEN (a deploy token from `fly tokens create deploy`). {failure}"
            ));
            return finish(repo, args, &flyctl, clock, result, gates.json(), out);
        }
    }

    // What serves now is the rollback target: recorded before flyctl changes anything.
    let Some((newer_than, target)) = serving_before(repo, &flyctl, &environment, &mut result, out)?
    else {
        return finish(repo, args, &flyctl, clock, result, gates.json(), out);
    };

    let announcer = release::announce_going_live(
        repo,
        &args.env,
        &environment,
        flyctl.dry_run(),
        &format!("deploying commit {label} to {}", environment.app),
        out,
    );
    let what = format!("the deploy of commit {label}");
    let rollout = rollout(args, &environment, &git.commit, label, newer_than, target);
    let interrupted = clock
        .as_ref()
        .filter(|_| !flyctl.dry_run())
        .map(|clock| save_if_interrupted(repo, args, clock, &result, &rollout));
    let since = chrono::Utc::now();
    result.rollout = rollout.run(repo, &flyctl, gates, &mut result.problems, out)?;
    // Past the rollout an interrupt no longer leaves a release half made.
    drop(interrupted);
    let proven = result.problems.is_empty() && result.rollout.rolled_back.is_none();
    if proven && !flyctl.dry_run() && !args.logs.is_zero() {
        let read = logs::read_after_deploy(repo, &flyctl, &environment, since, args.logs, out)?;
        if read.panics > 0 {
            result.problems.push(format!(
                "{} panic line(s) in the logs of {} after the deploy (shown above): the release serves but panics; read them with `cargo xtask logs --env {} --since 10m`{}",
                read.panics,
                environment.app,
                args.env,
                result
                    .rollback_image
                    .as_ref()
                    .map(|image| format!(", go back with `cargo xtask rollback --env {} --to {image}`", args.env))
                    .unwrap_or_default()
            ));
        }
        result.logs = Some(read);
    }
    let (verdict, result) = finish(repo, args, &flyctl, clock, result, gates.json(), out)?;
    let line = announce::ending(&args.env, &what, verdict, &result.rollout, &result.problems);
    announcer.say(&line, out);
    Ok((verdict, result))
}

/// Records what serves before flyctl runs (the snapshot and the rollback target) and prints
/// it: `(the newest release number, the target)`, or `None` when it could not be read (the
/// problem is in `result`; nothing was deployed).
fn serving_before(
    repo: &Repo,
    flyctl: &Flyctl,
    environment: &Environment,
    result: &mut DeployResult,
    out: &mut dyn Write,
) -> anyhow::Result<Option<(Option<u64>, Option<RollbackTarget>)>> {
    let mut newer_than = None;
    let mut target: Option<RollbackTarget> = None;
    match read_serving(flyctl, &environment.app, &environment.url, out)? {
        Err(problem) => {
            result.problems.push(format!(
                "could not record what serves before deploying (nothing was deployed): {problem}"
            ));
            return Ok(None);
        }
        Ok(None) => writeln!(
            out,
            "(dry run without flyctl: the rollback target is read at deploy time)"
        )?,
        Ok(Some(serving)) => {
            newer_than = serving.releases.first().map(|r| r.version);
            target = rollback_target(repo, &serving);
            result.before = Some(serving.snapshot());
            match &target {
                Some(t) => writeln!(
                    out,
                    "serving before the deploy: {} (commit {}); a failure goes back to it",
                    t.release
                        .as_ref()
                        .map(ReleaseRef::describe)
                        .unwrap_or_else(|| t.image.clone()),
                    t.commit.as_deref().unwrap_or("unknown")
                )?,
                None => writeln!(
                    out,
                    "first deploy of {}: nothing serves yet, so there is nothing to roll back to",
                    environment.app
                )?,
            }
        }
    }
    if let Some(t) = &target {
        result.rollback_target = t.release.clone();
        result.rollback_image = Some(t.image.clone());
        result.rollback_commit = t.commit.clone();
    }

    Ok(Some((newer_than, target)))
}

/// The rollout of a deploy: flyctl builds HEAD (`commit`, labelled `label`), and HEAD must
/// serve on a release newer than `newer_than`; a failure goes back to `target` (the printed
/// command, or the rollback itself with `--rollback-on-failure`).
fn rollout<'a>(
    args: &'a Options,
    environment: &'a Environment,
    commit: &str,
    label: String,
    newer_than: Option<u64>,
    target: Option<RollbackTarget>,
) -> Rollout<'a> {
    Rollout {
        env_name: &args.env,
        environment,
        source: Source::Build {
            build_args: vec![(COMMIT_BUILD_ARG.to_string(), commit.to_string())],
            image_label: Some(label),
        },
        strategy: Some(args.strategy.clone()),
        expected: Expected {
            newer_than,
            image: None,
            commit: Some(commit.to_string()),
            wake: args.wake,
        },
        what: "the new build serves".into(),
        unproven: "the new build is not proven to serve".into(),
        subject: "the new release".into(),
        target,
        on_failure: if args.rollback_on_failure {
            OnFailure::RollBack {
                announce: "(--rollback-on-failure)".into(),
            }
        } else {
            OnFailure::PrintCommand
        },
        nothing_to_roll_back: format!(
            "nothing served before this deploy, so there is nothing to roll back to: fix forward, or run `cargo xtask rollback --env {} --to IMAGE_REF`",
            args.env
        ),
        read_after_failure: true,
        dry_run_note: format!(
            "would verify for up to {}s that a release newer than {} is complete and every machine runs its image with passing checks and reports commit {}, wait for {}/api/v1/readyz, then run `cargo xtask smoke --env {}`",
            args.wait_timeout.as_secs(),
            newer_than
                .map(|v| format!("v{v}"))
                .unwrap_or_else(|| "none".into()),
            commit,
            environment.url,
            args.env
        ),
        wait_timeout: args.wait_timeout,
        deploy_timeout: args.deploy_timeout,
    }
}
