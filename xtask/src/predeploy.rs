//! `cargo xtask predeploy`: the gate before `flyctl deploy`.
//!
//! Every check runs to the end and reports a verdict, evidence with `path:line`, and the fix;
//! the task then exits 1 if any failed. The checks, in order: `config`, `fly_toml`,
//! `dockerfile`, `migrations`, `env`, `secret_hygiene`, `git`, `docs_commands`, `ci`.
//!
//! Other tasks call [`evaluate`] (the deploy task stops on a failed report) or read the saved
//! [`PredeployReport`] (the report task). The env-file reader is [`envfile`].

mod ci;
mod config_check;
mod dockerfile;
mod dockerfile_context;
mod dockerfile_syntax;
mod dockerignore;
mod docs_commands;
mod env_check;
mod env_rules;
pub mod envfile;
mod fly_toml;
mod git_check;
mod hygiene;
mod machines;
mod migrations;
mod outcome;
pub(crate) mod render;
mod text;
mod workflow_lint;

use std::path::Path;

use crate::config::{CONFIG_PATH, DeployConfig, Environment};
use crate::output::Output;
use crate::record::RunClock;
use crate::repo::Repo;
use crate::verdict::Verdict;

pub use docs_commands::{CommandCheck, CommandLine};
#[cfg(test)]
pub(crate) use env_check::PROVIDER_CREDENTIALS;
pub(crate) use env_check::parse_template;
pub use outcome::{CheckResult, Evidence, PredeployReport};
pub use render::junit_suite;
pub use workflow_lint::{ACTIONLINT_ENV, WorkflowLinters, ZIZMOR_ENV};

/// The environment name recorded when no `--env` was given.
pub const ALL_ENVIRONMENTS: &str = "all";

/// What [`evaluate`] checks.
#[derive(Debug, Clone, Default)]
pub struct Options {
    /// Only this environment, whose filled env file must then exist. `None`: every
    /// environment, each env file checked when present.
    pub env: Option<String>,
    /// Turn warnings about the working tree into failures.
    pub strict: bool,
    /// The workflow linters the `ci` check runs; `None`: found as
    /// [`WorkflowLinters::from_environment`] says.
    pub workflow_linters: Option<WorkflowLinters>,
    /// The command line the `docs_commands` check reads documented commands with; `None`
    /// skips that check (the command line sits above every task, so it is handed down).
    pub command_line: Option<CommandLine>,
}

impl Options {
    /// The options of `cargo xtask predeploy --env ENV`.
    pub fn for_env(env: &str, command_line: Option<CommandLine>) -> Options {
        Options {
            env: Some(env.to_string()),
            command_line,
            ..Options::default()
        }
    }
}

/// What every check may look at.
pub(crate) struct Context<'a> {
    pub(crate) repo: &'a Repo,
    pub(crate) options: &'a Options,
    pub(crate) config: DeployConfig,
    pub(crate) config_text: String,
    /// The environments checked: the selected one, or all, by name.
    pub(crate) environments: Vec<(String, Environment)>,
}

/// Runs every check on `repo` and returns the accumulated report; never stops at the first
/// failure. Errors only when it cannot run at all: `ops/deploy.toml` missing or malformed,
/// or `--env` naming an environment that is not in it.
pub fn evaluate(repo: &Repo, options: &Options) -> anyhow::Result<PredeployReport> {
    let config_path = repo.path(CONFIG_PATH);
    let config_text = match text::read_text(&config_path) {
        text::FileText::Text(text) => text,
        text::FileText::Missing => anyhow::bail!(
            "{CONFIG_PATH} not found in {}: create it (environments and thresholds, see \
             docs/tasks.md)",
            repo.root().display()
        ),
        text::FileText::Unreadable(why) => anyhow::bail!("{CONFIG_PATH} {why}"),
    };
    let config = match toml::from_str::<DeployConfig>(&config_text) {
        Ok(config) => config,
        Err(error) => {
            let (line, message) = text::toml_error(&config_text, &error);
            let at = line.map_or(String::new(), |l| format!(":{l}"));
            anyhow::bail!("{CONFIG_PATH}{at} {message}");
        }
    };
    let environments = match &options.env {
        Some(name) => vec![(name.clone(), config.environment(name)?.clone())],
        None => config.environments.clone().into_iter().collect(),
    };
    let cx = Context {
        repo,
        options,
        config,
        config_text,
        environments,
    };
    let tracked = hygiene::tracked_files(repo);
    let checks = vec![
        config_check::check(&cx),
        fly_toml::check(&cx),
        machines::check(&cx),
        dockerfile::check(&cx),
        migrations::check(&cx),
        env_check::check(&cx),
        hygiene::check(&cx, tracked.as_deref()),
        git_check::check(&cx),
        docs_commands::check(&cx),
        ci::check(&cx),
    ];
    let verdict = if checks.iter().any(|c| c.verdict == Verdict::Fail) {
        Verdict::Fail
    } else {
        Verdict::combine(checks.iter().map(|c| c.verdict))
    };
    Ok(PredeployReport {
        environment: options
            .env
            .clone()
            .unwrap_or_else(|| ALL_ENVIRONMENTS.into()),
        verdict,
        checks,
    })
}

/// Entry point: checks `repo`, prints the table (and the record under `--json`), saves the
/// record unless `save` is off (a deploy's dry run checks, prints and records nothing), writes
/// JUnit XML to `junit` when given, and returns the overall verdict.
pub fn check_with_output(
    repo: &Repo,
    options: &Options,
    out: Output,
    save: bool,
    junit: Option<&Path>,
) -> anyhow::Result<Verdict> {
    let clock = RunClock::start("predeploy");
    let report = evaluate(repo, options)?;
    let verdict = report.verdict;
    let human = render::table(&report);
    let summary = render::markdown(&report);
    let record = clock.finish(repo, &report.environment.clone(), verdict, report);
    let ending = crate::finish::Ending {
        human: &human,
        summary: &summary,
        save,
        json: out.json(),
    };
    crate::finish::finish(repo, &record, ending, &mut out.human_writer())?;
    if let Some(path) = junit {
        render::junit_suite(&record.result).write(path)?;
    }
    Ok(verdict)
}
