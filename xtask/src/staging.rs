//! `cargo xtask staging`: the decision map's steps for `staging`, run in order as one
//! resumable command. The position comes from the saved results exactly as `status` computes
//! it ([`crate::report::context`]): a step whose passing record is still fresh is skipped,
//! so a run that stopped at a failure resumes there. Tasks are called through their library
//! functions with typed options ([`tasks`]); the Fly step is [`fly::check`].

pub mod fly;
mod position;
pub mod tasks;

use std::io::{BufRead, Write};
use std::path::PathBuf;

use anyhow::bail;

use crate::report::{DecisionMap, State, Step, StepId};
use crate::verdict::Verdict;
use position::{position, stopped_at};

/// The environment this command walks.
pub const ENVIRONMENT: &str = "staging";

/// Options of `cargo xtask staging`.
#[derive(Debug, Clone, Default)]
pub struct Options {
    /// Answer yes before each mutating step (secrets, deploy, overlap), e.g. in CI.
    pub yes: bool,
    /// Start at this step of the map (e.g. `deploy`), running it even when it is fresh.
    pub from: Option<String>,
    /// Print which steps would run and which are skipped (and why), calling nothing.
    pub dry_run: bool,
    /// Walk staging at this base URL instead of ops/deploy.toml's (e.g. the local Fly's).
    pub url: Option<String>,
    /// The command line predeploy's `docs_commands` check reads the docs with (`None`
    /// skips that check).
    pub command_line: Option<crate::predeploy::CommandLine>,
}

/// A task the staging run calls for a step of the map.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Task {
    /// `cargo xtask predeploy --env staging`.
    Predeploy,
    /// `flyctl auth whoami` and `flyctl status --json --app A`.
    Fly,
    /// `cargo xtask secrets --env staging`.
    Secrets,
    /// `cargo xtask deploy --env staging`.
    Deploy,
    /// `cargo xtask smoke --env staging` (health and thresholds).
    Smoke,
    /// `cargo xtask overlap --env staging --mutating`.
    Overlap,
}

impl Task {
    /// The task that advances the map step `id`; `None` for steps no command runs (staging
    /// validated, stability, the checklist).
    pub fn for_step(id: StepId) -> Option<Task> {
        Some(match id {
            StepId::Predeploy => Task::Predeploy,
            StepId::FlyLogin => Task::Fly,
            StepId::SecretsLoaded => Task::Secrets,
            StepId::Deploy => Task::Deploy,
            StepId::Health | StepId::SmokeThresholds => Task::Smoke,
            StepId::Overlap => Task::Overlap,
            StepId::StagingValidated | StepId::Stability24h | StepId::ProductionChecklist => {
                return None;
            }
        })
    }

    /// Whether it changes the environment (and so is asked about first).
    pub fn mutating(self) -> bool {
        matches!(self, Task::Secrets | Task::Deploy | Task::Overlap)
    }

    /// Its name in the output.
    pub fn name(self) -> &'static str {
        match self {
            Task::Predeploy => "predeploy",
            Task::Fly => "fly",
            Task::Secrets => "secrets",
            Task::Deploy => "deploy",
            Task::Smoke => "smoke",
            Task::Overlap => "overlap",
        }
    }
}

/// What a task reported back.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Outcome {
    /// Its verdict.
    pub verdict: Verdict,
    /// Lines of evidence or fix to print when it failed (no secret in them).
    pub notes: Vec<String>,
    /// The command that rolls back, after a deploy.
    pub rollback: Option<String>,
    /// The commands that fix this failure, in order, when the task knows them better than
    /// the step's own command (a missing Fly app is created, not logged in to).
    pub fix: Vec<String>,
}

impl Outcome {
    /// A verdict without notes.
    pub fn of(verdict: Verdict) -> Outcome {
        Outcome {
            verdict,
            notes: Vec::new(),
            rollback: None,
            fix: Vec::new(),
        }
    }
}

/// The seam between the run and the world: the map and the tasks.
pub trait Tasks {
    /// The staging map as `status --env staging` computes it now.
    fn position(&self) -> anyhow::Result<DecisionMap>;
    /// Runs one task.
    fn run(&self, task: Task) -> anyhow::Result<Outcome>;
    /// Writes the report; returns the paths written.
    fn report(&self) -> anyhow::Result<Vec<PathBuf>>;
}

/// How a mutating step is confirmed.
pub trait Confirm {
    /// `Ok(true)` to go ahead, `Ok(false)` when declined, an error when nobody can answer.
    fn confirm(&mut self, question: &str) -> anyhow::Result<bool>;
}

/// Asks on the terminal; `--yes` answers for CI; without either it refuses (exit 2).
pub struct Terminal {
    /// `--yes`.
    pub yes: bool,
    /// Whether stdin is a terminal.
    pub interactive: bool,
}

impl Terminal {
    /// From the process' stdin.
    pub fn new(yes: bool) -> Terminal {
        Terminal {
            yes,
            interactive: std::io::IsTerminal::is_terminal(&std::io::stdin()),
        }
    }
}

impl Confirm for Terminal {
    fn confirm(&mut self, question: &str) -> anyhow::Result<bool> {
        if self.yes {
            return Ok(true);
        }
        if !self.interactive {
            bail!(
                "{question}: no terminal to ask on; pass --yes to answer for CI (nothing was run)"
            );
        }
        eprint!("{question} [y/N] ");
        std::io::stderr().flush()?;
        let mut answer = String::new();
        std::io::stdin().lock().read_line(&mut answer)?;
        Ok(matches!(
            answer.trim().to_ascii_lowercase().as_str(),
            "y" | "yes"
        ))
    }
}

/// How a run ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RunSummary {
    /// The tasks run, in order, with their verdicts.
    pub ran: Vec<(Task, Verdict)>,
    /// The steps skipped, with why.
    pub skipped: Vec<(String, String)>,
    /// The verdict: `Fail` when a step failed or was declined.
    pub verdict: Verdict,
}

/// Entry point of `cargo xtask staging`.
pub fn run(args: Options) -> anyhow::Result<Verdict> {
    let repo = crate::repo::Repo::discover()?;
    let tasks = tasks::Real::new(repo, args.dry_run, args.url.clone(), args.command_line)?;
    let mut confirm = Terminal::new(args.yes);
    let mut out = std::io::stderr();
    Ok(walk(&args, &tasks, &mut confirm, &mut out)?.verdict)
}

/// Walks the map: skips fresh steps, runs the rest, stops at the first failure; ends with the
/// position and the report path.
pub fn walk(
    args: &Options,
    tasks: &dyn Tasks,
    confirm: &mut dyn Confirm,
    out: &mut dyn Write,
) -> anyhow::Result<RunSummary> {
    let map = tasks.position()?;
    if let Some(from) = &args.from
        && !map
            .steps
            .iter()
            .any(|s| s.id.as_str() == from && Task::for_step(s.id).is_some())
    {
        let known: Vec<&str> = map
            .steps
            .iter()
            .filter(|s| Task::for_step(s.id).is_some())
            .map(|s| s.id.as_str())
            .collect();
        bail!("--from {from}: no such step; steps: {}", known.join(", "));
    }
    let mut summary = RunSummary {
        ran: Vec::new(),
        skipped: Vec::new(),
        verdict: Verdict::Pass,
    };
    let mut started = args.from.is_none();
    // The step that failed in this run, and what it said: the records may not know it.
    let mut failed: Option<(Step, Outcome)> = None;
    // Tasks run (or, in a dry run, planned): smoke backs two steps and runs once.
    let mut taken: Vec<Task> = Vec::new();
    let ids: Vec<StepId> = map.steps.iter().map(|s| s.id).collect();
    for id in ids {
        let Some(task) = Task::for_step(id) else {
            continue;
        };
        let forced = args.from.as_deref() == Some(id.as_str());
        started |= forced;
        if !started {
            skip(out, &mut summary, id, "before --from")?;
            continue;
        }
        if taken.contains(&task) {
            continue; // health and thresholds are one smoke run
        }
        // Recomputed before every step: the step before may have changed it.
        let map = tasks.position()?;
        let Some(step) = map.step(id) else {
            continue;
        };
        if step.state == State::Done && !forced && !smoke_pending(&map, task) {
            let why = format!("fresh: {}", step.evidence);
            skip(out, &mut summary, id, &why)?;
            continue;
        }
        taken.push(task);
        if args.dry_run {
            writeln!(
                out,
                "would run {id} ({}): {}",
                step.state.label(),
                step.command.as_deref().unwrap_or(task.name())
            )?;
            continue;
        }
        if task.mutating() {
            let question = format!(
                "run {} on {ENVIRONMENT} ({})?",
                task.name(),
                step.command.as_deref().unwrap_or(task.name())
            );
            if !confirm.confirm(&question)? {
                writeln!(
                    out,
                    "{id}: declined; nothing was run. Run again to resume here."
                )?;
                summary.verdict = Verdict::Fail;
                break;
            }
        }
        writeln!(out, "==> {id}: {}", step.title)?;
        let outcome = tasks.run(task)?;
        summary.ran.push((task, outcome.verdict));
        if outcome.verdict == Verdict::Fail {
            stopped(out, tasks, step, &outcome)?;
            summary.verdict = Verdict::Fail;
            failed = Some((step.clone(), outcome));
            break;
        }
    }
    let mut map = tasks.position()?;
    if let Some((step, outcome)) = &failed {
        map = stopped_at(map, step, outcome);
    }
    position(out, &map)?;
    if !args.dry_run {
        for path in tasks.report()? {
            writeln!(out, "report: {}", path.display())?;
        }
    }
    Ok(summary)
}

/// Smoke backs two steps: run it when either is not done.
fn smoke_pending(map: &DecisionMap, task: Task) -> bool {
    task == Task::Smoke
        && map
            .steps
            .iter()
            .any(|s| Task::for_step(s.id) == Some(Task::Smoke) && s.state != State::Done)
}

fn skip(
    out: &mut dyn Write,
    summary: &mut RunSummary,
    id: StepId,
    why: &str,
) -> anyhow::Result<()> {
    writeln!(out, "skip {id}: {why}")?;
    summary.skipped.push((id.to_string(), why.to_string()));
    Ok(())
}

fn stopped(
    out: &mut dyn Write,
    tasks: &dyn Tasks,
    step: &Step,
    outcome: &Outcome,
) -> anyhow::Result<()> {
    writeln!(out, "\nSTOPPED at {}: {} failed", step.id, step.title)?;
    for note in &outcome.notes {
        writeln!(out, "  {note}")?;
    }
    // The evidence as the map reads it now from the saved record, when there is one that
    // saw the failure (the Fly step saves none: older records would speak of a success).
    if let Ok(map) = tasks.position()
        && let Some(now) = map.step(step.id)
        && now.state == State::Failed
    {
        writeln!(out, "  evidence: {}", now.evidence)?;
    }
    if !outcome.fix.is_empty() {
        writeln!(out, "  fix:")?;
        for command in &outcome.fix {
            writeln!(out, "    {command}")?;
        }
    } else if let Some(command) = &step.command {
        writeln!(out, "  fix, then run it alone: {command}")?;
    }
    if let Some(rollback) = &outcome.rollback {
        writeln!(out, "  roll back: {rollback}")?;
    }
    writeln!(
        out,
        "  then `cargo xtask staging` resumes at {} (exit 1)",
        step.id
    )?;
    Ok(())
}

#[cfg(test)]
mod tests;
