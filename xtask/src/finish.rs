//! The one way a task ends: its human text printed, its record saved (unless it is a dry run),
//! the CI job summary appended, and under `--json` the record printed on stdout: the same
//! shape ([`RunRecord`]: `schema_version`, `task`, `environment`, `git`, `started_at`,
//! `duration_ms`, `tool_version`, `verdict`, `result`) for every task.

use std::io::Write;
use std::path::PathBuf;

use anyhow::Context;
use serde::Serialize;

use crate::record::RunRecord;
use crate::repo::Repo;

/// What a task hands over at its end, besides the record.
#[derive(Debug, Clone, Copy)]
pub struct Ending<'a> {
    /// Human text not printed yet (empty when the task streamed it as it ran).
    pub human: &'a str,
    /// Markdown for the CI job summary.
    pub summary: &'a str,
    /// Save the record (false in a dry run: nothing happened worth recording).
    pub save: bool,
    /// `--json`: print the record on stdout.
    pub json: bool,
}

impl<'a> Ending<'a> {
    /// The ending of a task that printed its human text as it ran: only the CI `summary`,
    /// whether to `save` the record and whether to print it as JSON are left.
    pub fn streamed(summary: &'a str, save: bool, json: bool) -> Ending<'a> {
        Ending {
            human: "",
            summary,
            save,
            json,
        }
    }
}

/// Ends a task: prints `ending.human` to `out`, saves the record first thing after (the
/// measurement is the one thing not to lose), appends the CI summary, names the saved file,
/// and prints the record under `--json`. Returns the saved path.
pub fn finish<T: Serialize>(
    repo: &Repo,
    record: &RunRecord<T>,
    ending: Ending,
    out: &mut dyn Write,
) -> anyhow::Result<Option<PathBuf>> {
    // A closed pipe on the human stream must not lose the record.
    let _ = out.write_all(ending.human.as_bytes());
    let saved = if ending.save {
        let path = record.save(repo)?;
        crate::output::append_step_summary(ending.summary)?;
        let shown = path.strip_prefix(repo.root()).unwrap_or(&path);
        let _ = writeln!(out, "record: {}", shown.display());
        Some(path)
    } else {
        None
    };
    if ending.json {
        print_json(record)?;
    }
    Ok(saved)
}

/// Prints a record as pretty JSON on stdout.
pub fn print_json<T: Serialize>(record: &RunRecord<T>) -> anyhow::Result<()> {
    let text = serde_json::to_string_pretty(record).context("serialising the result record")?;
    writeln!(std::io::stdout().lock(), "{text}").context("writing to stdout")
}
