//! `cargo xtask status`: where the deployment of an environment stands on the decision map,
//! and the single next command to run. It reads saved results only, like `report`.

use chrono::Utc;
use clap::Args as ClapArgs;
use serde::Serialize;

use crate::output::Output;
use crate::repo::Repo;
use crate::report::{self, DecisionMap};
use crate::verdict::Verdict;

/// Options of `cargo xtask status`. It always exits 0 when it could read the results (it
/// informs; gate CI on `cargo xtask report --check`), 2 when it could not.
#[derive(Debug, Clone, Default, ClapArgs)]
#[command(
    after_help = "Exit codes: 0 whenever the results could be read (status informs; gate \
    CI on `cargo xtask report --check`); 2 when they could not."
)]
pub struct Args {
    /// The environment [default: the environment of the newest saved result].
    #[arg(long, value_name = "NAME")]
    pub env: Option<String>,
    /// Print the map, the verdict and the next command as JSON on stdout.
    #[arg(long)]
    pub json: bool,
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
    text.push_str(&format!("\nNext: {}\n", status.map.next.action));
    if let Some(command) = &status.map.next.command {
        text.push_str(&format!("  {command}\n"));
    }
    text
}

/// Entry point of `cargo xtask status`.
pub fn run(args: Args) -> anyhow::Result<Verdict> {
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
    };
    let output = Output::new(args.json);
    output.human(&human(&status));
    output.machine(&status)?;
    Ok(Verdict::Pass)
}
