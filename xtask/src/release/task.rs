//! How `deploy`, `rollback` and `promote` begin and end around their [`Rollout`]: started
//! from the command line on the repository the current directory is in, with flyctl from
//! the environment; "Going live at ..." announced before flyctl changes anything (never in a
//! dry run); and one ending: every problem, the verdict line, the CI job summary and the
//! record, saved unless it is a dry run.
//!
//! [`Rollout`]: super::Rollout

use std::io::Write;

use serde::Serialize;

use crate::announce::Announcer;
use crate::config::Environment;
use crate::flyctl::Flyctl;
use crate::output::Output;
use crate::record::RunClock;
use crate::repo::Repo;
use crate::verdict::Verdict;

/// Runs a release task from the command line on `repo`: flyctl from `FLYCTL` or `PATH` (a
/// dry run does without), the human text on `output`'s writer. `task` does the rest; the
/// verdict it returns is the task's.
pub fn start<R>(
    repo: &Repo,
    dry_run: bool,
    output: Output,
    task: impl FnOnce(&Repo, Flyctl, &mut dyn Write) -> anyhow::Result<(Verdict, R)>,
) -> anyhow::Result<Verdict> {
    let flyctl = Flyctl::from_env(dry_run)?;
    let mut human = output.human_writer();
    let (verdict, _) = task(repo, flyctl, &mut human)?;
    Ok(verdict)
}

/// Announces `what` is going live on `environment` (named `env_name`) and returns the
/// announcer for the result; a dry run announces nothing, now or after.
pub fn announce_going_live(
    repo: &Repo,
    env_name: &str,
    environment: &Environment,
    dry_run: bool,
    what: &str,
    out: &mut dyn Write,
) -> Announcer {
    let announcer = match dry_run {
        true => Announcer::silent(),
        false => Announcer::for_environment(repo, environment),
    };
    announcer.say(
        &format!("Going live at {} ({env_name}): {what}", environment.url),
        out,
    );
    announcer
}

/// The end of a release task, besides its result.
#[derive(Debug, Clone)]
pub struct Closing<'a> {
    /// The environment's name, as recorded.
    pub env_name: &'a str,
    /// The task's verdict.
    pub verdict: Verdict,
    /// Why it failed, printed one a line as `problem: ...`.
    pub problems: &'a [String],
    /// A dry run: nothing was deployed, and the record is not saved.
    pub dry_run: bool,
    /// The line printed last when it was not a dry run (`rollback of APP: PASS`).
    pub verdict_line: String,
    /// The task in a few lines for the CI job summary.
    pub summary: String,
    /// Save the record (never in a dry run).
    pub save: bool,
    /// `--json`: print the record on stdout.
    pub json: bool,
}

/// Ends a release task: prints its problems and its verdict line (or that a dry run changed
/// and recorded nothing), then builds the record of `result` from `clock` and ends it as
/// [`crate::finish::finish`] does.
pub fn close<T: Serialize>(
    repo: &Repo,
    clock: RunClock,
    closing: &Closing,
    result: T,
    out: &mut dyn Write,
) -> anyhow::Result<()> {
    for problem in closing.problems {
        writeln!(out, "problem: {problem}")?;
    }
    if closing.dry_run {
        writeln!(out, "dry run: nothing was deployed and nothing recorded")?;
    } else {
        writeln!(out, "{}", closing.verdict_line)?;
    }
    let record = clock.finish(repo, closing.env_name, closing.verdict, result);
    let ending = crate::finish::Ending::streamed(
        &closing.summary,
        closing.save && !closing.dry_run,
        closing.json,
    );
    crate::finish::finish(repo, &record, ending, out)?;
    Ok(())
}

/// A fact of a CI job summary, `-` when it is not known.
pub fn shown(value: Option<String>) -> String {
    value.unwrap_or_else(|| "-".to_string())
}

/// Pass without problems, else fail.
pub fn verdict_of(problems: &[String]) -> Verdict {
    if problems.is_empty() {
        Verdict::Pass
    } else {
        Verdict::Fail
    }
}
