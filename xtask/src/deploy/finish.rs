//! How a deploy ends: its problems and verdict printed, the record saved (unless it is a dry
//! run or unrecorded), the CI job summary written; and, interrupted mid-rollout, the record
//! saved on the way out.

use std::io::Write;

use super::{DeployResult, Options};
use crate::flyctl::Flyctl;
use crate::record::RunClock;
use crate::release::{self, Closing, Rollout, shown};
use crate::repo::Repo;
use crate::verdict::Verdict;

/// Prints the problems and the verdict, then saves and summarises the record.
pub(super) fn finish(
    repo: &Repo,
    args: &Options,
    flyctl: &Flyctl,
    clock: Option<RunClock>,
    result: DeployResult,
    json: bool,
    out: &mut dyn Write,
) -> anyhow::Result<(Verdict, DeployResult)> {
    // Error lines after a proven deploy are worth a look but no failure; a panic was made a
    // problem.
    let logs_warn = result.logs.as_ref().is_some_and(|l| l.errors > 0);
    let verdict = match (result.problems.is_empty(), logs_warn) {
        (false, _) => Verdict::Fail,
        (true, true) => Verdict::Warn,
        (true, false) => Verdict::Pass,
    };
    let rolled_back = if result.rollout.rolled_back.is_some() {
        " (rolled back)"
    } else {
        ""
    };
    // Unrecorded runs (a dry run, the rehearsal's local Fly) still print the record's shape.
    let record_it = clock.is_some();
    let closing = Closing {
        env_name: &args.env,
        verdict,
        problems: &result.problems,
        dry_run: flyctl.dry_run(),
        verdict_line: format!(
            "deploy of {} ({}): {verdict}{rolled_back}",
            result.app, args.env
        ),
        summary: summary_markdown(&args.env, verdict, &result),
        save: record_it,
        json,
    };
    let clock = clock.unwrap_or_else(|| RunClock::start("deploy"));
    release::close(repo, clock, &closing, result.clone(), out)?;
    Ok((verdict, result))
}

/// The deploy in a few lines for the CI job summary.
fn summary_markdown(env: &str, verdict: Verdict, result: &DeployResult) -> String {
    let release = result.rollout.release.as_ref();
    crate::output::facts_markdown(
        &format!("deploy {env} ({})", result.app),
        verdict,
        &[
            ("strategy", result.strategy.clone()),
            ("commit", shown(result.commit.clone())),
            ("proven to serve", shown(result.rollout.proven())),
            (
                "release",
                shown(release.map(|r| format!("v{} ({})", r.version, r.status))),
            ),
            ("image", shown(release.and_then(|r| r.image_ref.clone()))),
            (
                "readiness",
                shown(result.rollout.readiness.map(|v| v.to_string())),
            ),
            ("smoke", shown(result.rollout.smoke.map(|v| v.to_string()))),
            (
                "logs after",
                shown(result.logs.as_ref().map(super::logs::describe)),
            ),
            ("rolled back", result.rollout.rolled_back_word()),
            (
                "rollback command",
                shown(result.rollout.rollback_command.clone()),
            ),
        ],
        &result.problems,
    )
}

/// Saves the deploy's record if the task is interrupted (Ctrl-C, SIGTERM) from here on: the
/// interrupt stops flyctl mid-rollout, which leaves a release Fly never completes (flyctl
/// marks it `interrupted`) and perhaps machines on two images, so the record says what was
/// interrupted and how to go back to what served before.
pub(super) fn save_if_interrupted(
    repo: &Repo,
    args: &Options,
    clock: &RunClock,
    result: &DeployResult,
    rollout: &Rollout,
) -> crate::interrupt::CleanupGuard {
    let mut interrupted = result.clone();
    interrupted.rollout.rollback_command = rollout.rollback_line();
    interrupted.problems.push(format!(
        "interrupted while `flyctl deploy` rolled out commit {} to {}: the release it started is left unfinished; {}",
        result.image_label.as_deref().unwrap_or("?"),
        result.app,
        match &interrupted.rollout.rollback_command {
            Some(line) => format!("go back to what served before with `{line}`, or deploy again"),
            None => "nothing served before; deploy again".to_string(),
        }
    ));
    let (repo, env, clock) = (repo.clone(), args.env.clone(), clock.clone());
    crate::interrupt::on_interrupt(move || {
        let record = clock.finish(&repo, &env, Verdict::Fail, interrupted);
        let ending = crate::finish::Ending::streamed("", true, false);
        if let Err(error) = crate::finish::finish(&repo, &record, ending, &mut std::io::stderr()) {
            eprintln!("could not save the interrupted deploy's record: {error:#}");
        }
    })
}
