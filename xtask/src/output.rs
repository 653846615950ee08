//! Where a task's human text goes, and the CI job summary.

use std::io::Write;

use anyhow::Context;

use crate::verdict::Verdict;

/// Human text goes to stdout, or to stderr when `--json` owns stdout.
#[derive(Debug, Clone, Copy)]
pub struct Output {
    json: bool,
    human_on_stderr: bool,
}

impl Output {
    /// `json`: the task prints its machine record on stdout.
    pub fn new(json: bool) -> Output {
        Output {
            json,
            human_on_stderr: json,
        }
    }

    /// For a task run inside another whose stdout carries JSON: human text on stderr, no
    /// machine output of its own.
    pub fn nested_in_json() -> Output {
        Output {
            json: false,
            human_on_stderr: true,
        }
    }

    /// The human stream as a writer, for tasks that pass it down to their steps.
    pub fn human_writer(self) -> Box<dyn Write> {
        if self.human_on_stderr {
            Box::new(std::io::stderr())
        } else {
            Box::new(std::io::stdout())
        }
    }

    /// Whether stdout carries JSON.
    pub fn json(self) -> bool {
        self.json
    }

    /// Prints human text (stderr under `--json`). A closed pipe (`... | head`) is not an
    /// error worth a panic: the text is dropped and the task carries on to its exit code.
    pub fn human(self, text: &str) {
        let _ = if self.human_on_stderr {
            std::io::stderr().lock().write_all(text.as_bytes())
        } else {
            std::io::stdout().lock().write_all(text.as_bytes())
        };
    }

    /// Prints a serialisable value as pretty JSON on stdout, when `--json` was given.
    pub fn machine<T: serde::Serialize>(self, value: &T) -> anyhow::Result<()> {
        if self.json {
            let text = serde_json::to_string_pretty(value).context("serialising the result")?;
            let mut stdout = std::io::stdout().lock();
            writeln!(stdout, "{text}").context("writing to stdout")?;
        }
        Ok(())
    }
}

/// Prints a line on stdout. A closed or full stdout (`... | head`, `> /dev/full`) drops the
/// text instead of panicking as `println!` does; the task still ends with its own exit code.
pub fn say(line: std::fmt::Arguments) {
    let _ = writeln!(std::io::stdout().lock(), "{line}");
}

/// Whether colour may be used: a terminal, and `NO_COLOR` unset.
pub fn color_enabled() -> bool {
    use std::io::IsTerminal;
    std::env::var_os("NO_COLOR").is_none_or(|v| v.is_empty()) && std::io::stderr().is_terminal()
}

/// GitHub keeps at most 1 MiB of summary per step.
pub const STEP_SUMMARY_LIMIT: usize = 1024 * 1024;

/// Appends Markdown to `$GITHUB_STEP_SUMMARY` when it is set; a no-op elsewhere. Text beyond
/// GitHub's per-step limit is cut at a line boundary with a note, never silently dropped.
pub fn append_step_summary(markdown: &str) -> anyhow::Result<()> {
    let Some(path) = std::env::var_os("GITHUB_STEP_SUMMARY").filter(|p| !p.is_empty()) else {
        return Ok(());
    };
    let existing = std::fs::metadata(&path)
        .map(|m| m.len() as usize)
        .unwrap_or(0);
    let text = fit_summary(markdown, STEP_SUMMARY_LIMIT.saturating_sub(existing));
    let mut file = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(&path)
        .with_context(|| format!("opening GITHUB_STEP_SUMMARY ({})", path.to_string_lossy()))?;
    file.write_all(text.as_bytes())
        .with_context(|| format!("writing GITHUB_STEP_SUMMARY ({})", path.to_string_lossy()))
}

/// A short Markdown summary of a task: a heading with the verdict, a two-column table of
/// facts, and the problems as a list. For tasks whose full rendering lives in `report`.
pub fn facts_markdown(
    title: &str,
    verdict: Verdict,
    facts: &[(&str, String)],
    problems: &[String],
) -> String {
    use crate::escape::markdown_inline;
    let mut text = format!(
        "### {}: {verdict}\n\n| | |\n| --- | --- |\n",
        markdown_inline(title)
    );
    for (name, value) in facts {
        let (name, value) = (markdown_inline(name), markdown_inline(value));
        text.push_str(&format!("| {name} | {value} |\n"));
    }
    for problem in problems {
        text.push_str(&format!("\n- {}", markdown_inline(problem)));
    }
    text.push('\n');
    text
}

/// Cuts `markdown` to at most `budget` bytes, at a line boundary, saying that it did.
pub fn fit_summary(markdown: &str, budget: usize) -> String {
    if markdown.len() <= budget {
        return markdown.to_string();
    }
    let note = "\n\n> Summary truncated: GitHub keeps 1 MiB per step. See the report artifact.\n";
    let room = budget.saturating_sub(note.len());
    let mut cut = 0;
    for (index, _) in markdown.match_indices('\n') {
        if index + 1 > room {
            break;
        }
        cut = index + 1;
    }
    let mut text = markdown[..cut].to_string();
    if budget >= note.len() {
        text.push_str(note);
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn facts_are_a_table_with_escaped_cells() {
        let text = facts_markdown(
            "deploy staging",
            Verdict::Fail,
            &[("image", "registry/app|x".to_string())],
            &["not ready".to_string()],
        );
        assert!(text.starts_with("### deploy staging: FAIL\n"), "{text}");
        assert!(text.contains("| image | registry/app\\|x |"), "{text}");
        assert!(text.contains("\n- not ready"), "{text}");
    }

    #[test]
    fn summary_within_budget_is_unchanged() {
        assert_eq!(fit_summary("a\nb\n", 100), "a\nb\n");
    }

    #[test]
    fn summary_over_budget_is_cut_at_a_line_and_says_so() {
        let long = "line of text\n".repeat(100);
        let fitted = fit_summary(&long, 200);
        assert!(fitted.len() <= 200, "{} bytes", fitted.len());
        assert!(fitted.contains("Summary truncated"));
        assert!(fitted.starts_with("line of text\n"));
    }
}
