//! Where a staging run ends: the map's position, printed, and after a failure recomputed from
//! what the run just saw rather than from older records alone.

use std::io::Write;

use super::Outcome;
use crate::report::{DecisionMap, Next, State, Step};

/// The map after `step` failed in this run: the step is failed whatever older records say
/// (the Fly step saves none, so they may call it done), no step after it counts as done while
/// it fails, and the next action is the first step not done (the failed one, or one before
/// it that `--from` skipped).
pub(super) fn stopped_at(mut map: DecisionMap, step: &Step, outcome: &Outcome) -> DecisionMap {
    let Some(index) = map.steps.iter().position(|s| s.id == step.id) else {
        return map;
    };
    let failed = &mut map.steps[index];
    if failed.state != State::Failed {
        failed.state = State::Failed;
        failed.evidence = match outcome.notes.first() {
            Some(note) => format!("failed in this run: {note}"),
            None => "failed in this run".to_string(),
        };
    }
    if !outcome.fix.is_empty() {
        failed.command = Some(outcome.fix.join(" && "));
    }
    let id = failed.id;
    for later in &mut map.steps[index + 1..] {
        if later.state == State::Done {
            later.state = State::Unknown;
            later.evidence = format!("not proven while {id} fails ({})", later.evidence);
        }
    }
    let next = map.steps[..=index]
        .iter()
        .find(|s| s.state != State::Done)
        .unwrap_or(&map.steps[index]);
    map.next = Next {
        step: next.id.to_string(),
        command: next.command.clone(),
        action: format!("{} ({}): {}", next.title, next.state.label(), next.evidence),
    };
    map.done = map.steps.iter().filter(|s| s.state == State::Done).count();
    map
}

pub(super) fn position(out: &mut dyn Write, map: &DecisionMap) -> anyhow::Result<()> {
    writeln!(
        out,
        "\nposition ({}): {} of {} steps done",
        map.environment,
        map.done,
        map.steps.len()
    )?;
    writeln!(out, "next: {}", map.next.action)?;
    if let Some(command) = &map.next.command {
        writeln!(out, "  {command}")?;
    }
    Ok(())
}
