//! `cargo xtask status`: where the deployment of an environment stands on the decision map,
//! and the single next command to run. It reads saved results only, like `report`.

use chrono::Utc;
use serde::Serialize;

use crate::output::Output;
use crate::repo::Repo;
use crate::report::{self, DecisionMap};
use crate::verdict::Verdict;

/// The exit codes of `status`, as `--help` prints them; the docs quote this sentence (a test
/// holds them to it).
pub const EXIT_CODES: &str = "Exit codes: 0 once the saved results were read, whatever the \
    verdict (status informs; gate CI on `cargo xtask report --check`); 2 when they cannot be: \
    no results yet and no --env (a fresh checkout: run `cargo xtask predeploy` first), an \
    environment neither in ops/deploy.toml nor in any result, an unreadable ops/deploy.toml or \
    record.";

/// Options of `cargo xtask status`; see [`EXIT_CODES`].
#[derive(Debug, Clone, Default)]
pub struct Options {
    /// The environment [default: the environment of the newest saved result].
    pub env: Option<String>,
}

/// The machine form of `status`.
#[derive(Debug, Clone, Serialize)]
pub struct Status {
    /// The environment.
    pub environment: String,
    /// `GO`, `NO-GO` or `INCOMPLETE`.
    pub verdict: String,
    /// Why.
    pub reasons: Vec<String>,
    /// WARN lines that do not change the verdict (records dated in the future).
    pub warnings: Vec<String>,
    /// The decision map, with the next action.
    pub map: DecisionMap,
    /// The newest backup and restore drill of the environment.
    pub recovery: Option<report::RecoveryView>,
}

/// The status text a person reads.
pub fn human(status: &Status) -> String {
    let mut text = format!("{}: {}\n", status.environment, status.verdict);
    for reason in &status.reasons {
        text.push_str(&format!("  - {reason}\n"));
    }
    for warning in &status.warnings {
        text.push_str(&format!("  WARN: {warning}\n"));
    }
    text.push_str(&format!(
        "\nDecision map ({} of {} done):\n",
        status.map.done,
        status.map.steps.len()
    ));
    for (i, step) in status.map.steps.iter().enumerate() {
        let mark = step.state.label();
        text.push_str(&format!(
            "  {:>2}. [{mark:<7}] {}: {}\n",
            i + 1,
            step.title,
            step.evidence
        ));
    }
    if let Some(recovery) = &status.recovery {
        text.push_str("\nBackups:\n");
        for line in report::recovery_lines(recovery) {
            text.push_str(&format!("  {line}\n"));
        }
    }
    text.push_str(&format!("\nNext: {}\n", status.map.next.action));
    if let Some(command) = &status.map.next.command {
        text.push_str(&format!("  {command}\n"));
    }
    text
}

/// Entry point of `cargo xtask status`.
pub fn run(args: Options, output: Output) -> anyhow::Result<Verdict> {
    let repo = Repo::discover()?;
    let head = repo.git_state();
    let context = report::context(
        &repo,
        &report::Options { env: args.env },
        Utc::now(),
        head.as_ref(),
    )?;
    let status = Status {
        environment: context.environment,
        verdict: context.verdict.label,
        reasons: context.verdict.reasons,
        warnings: context.verdict.warnings,
        map: context.map,
        recovery: context.recovery,
    };
    output.human(&human(&status));
    output.machine(&status)?;
    Ok(Verdict::Pass)
}

#[cfg(test)]
mod tests {
    use super::EXIT_CODES;

    /// Where the docs describe `status`, they state its exit codes as `--help` does, word for
    /// word (line breaks aside).
    #[test]
    fn the_docs_state_the_exit_codes_of_the_help() {
        let words = |text: &str| text.split_whitespace().collect::<Vec<_>>().join(" ");
        let docs = [
            (
                "ops/DEPLOYMENT_DECISION_MAP.md",
                include_str!("../../ops/DEPLOYMENT_DECISION_MAP.md"),
            ),
            ("docs/tasks.md", include_str!("../../docs/tasks.md")),
        ];
        for (path, text) in docs {
            assert!(
                words(text).contains(&words(EXIT_CODES)),
                "{path} does not state status's exit codes as `cargo xtask status --help` \
                 does: {EXIT_CODES}"
            );
        }
    }
}
