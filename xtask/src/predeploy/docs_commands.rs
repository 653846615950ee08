//! `docs_commands`: every `cargo xtask ...` command in `README.md`, `docs/` and `ops/`
//! (in code blocks and inline code) parses with the real CLI definition, so the docs never
//! promise a task or flag that does not exist.

use clap::error::ErrorKind;

use super::Context;
use super::outcome::{At, Check, CheckResult};
use super::text::{FileText, read_text};
use crate::cli::Cli;

const PREFIX: &str = "cargo xtask";

pub(crate) fn check(cx: &Context) -> CheckResult {
    let mut check = Check::new(
        "docs_commands",
        "every `cargo xtask ...` line in README.md, docs/ and ops/ parses with the real CLI",
    );
    let mut files = Vec::new();
    if cx.repo.path("README.md").is_file() {
        files.push("README.md".to_string());
    }
    for dir in ["docs", "ops"] {
        let root = cx.repo.path(dir);
        for entry in walkdir::WalkDir::new(&root)
            .sort_by_file_name()
            .into_iter()
            .filter_map(Result::ok)
        {
            if entry.file_type().is_file()
                && entry
                    .path()
                    .extension()
                    .is_some_and(|e| e == "md" || e == "toml")
                && let Ok(relative) = entry.path().strip_prefix(cx.repo.root())
            {
                files.push(relative.to_string_lossy().replace('\\', "/"));
            }
        }
    }
    let mut checked = 0;
    for path in &files {
        let text = match read_text(&cx.repo.path(path)) {
            FileText::Text(text) => text,
            FileText::Missing => continue,
            FileText::Unreadable(why) => {
                check.fail(At::file(path), why, "docs must be UTF-8 text");
                continue;
            }
        };
        for (line, command) in commands(&text, path.ends_with(".md")) {
            checked += 1;
            if let Err(why) = parses(&command) {
                check.fail(
                    At::line(path, Some(line)),
                    format!("`{PREFIX} {}` does not parse: {why}", command.join(" ")),
                    "fix the command to match `cargo xtask --help`, or the CLI to match the docs",
                );
            }
        }
    }
    if !check.failed() {
        check.pass(
            At::none(),
            format!(
                "{checked} documented commands in {} files parse",
                files.len()
            ),
        );
    }
    check.finish()
}

/// The documented commands of a file, as `(line, words after "cargo xtask")`. In Markdown,
/// only code (fenced blocks and inline spans) counts; in other files, comment lines do too.
fn commands(text: &str, markdown: bool) -> Vec<(usize, Vec<String>)> {
    let mut found = Vec::new();
    let mut fence: Option<&str> = None;
    for (index, line) in text.lines().enumerate() {
        let trimmed = line.trim_start();
        if markdown {
            for marker in ["```", "~~~"] {
                if trimmed.starts_with(marker) {
                    fence = if fence == Some(marker) {
                        None
                    } else if fence.is_none() {
                        Some(marker)
                    } else {
                        fence
                    };
                }
            }
            if trimmed.starts_with("```") || trimmed.starts_with("~~~") {
                continue;
            }
        }
        let snippets: Vec<&str> = if !markdown || fence.is_some() {
            vec![line]
        } else {
            line.split('`').skip(1).step_by(2).collect()
        };
        for snippet in snippets {
            if let Some(words) = command_words(snippet) {
                found.push((index + 1, words));
            }
        }
    }
    found
}

/// The words after `cargo xtask` in a shell-like line: quotes honoured, a leading `$ ` and
/// `#` comments dropped, stopping at `|`, `&&`, `;` and redirections. `None` when the line
/// has no command, or a generic one (`cargo xtask <task>`, `cargo xtask ...`).
fn command_words(snippet: &str) -> Option<Vec<String>> {
    let words = shell_words(
        snippet
            .trim()
            .trim_start_matches("$ ")
            .trim_start_matches("# "),
    );
    let start = words
        .windows(2)
        .position(|w| w[0] == "cargo" && w[1] == "xtask")?;
    let words: Vec<String> = words[start + 2..]
        .iter()
        .take_while(|w| {
            !matches!(
                w.as_str(),
                "|" | "||" | "&&" | ";" | ">" | ">>" | "2>" | "<" | "#"
            ) && !w.starts_with('#')
        })
        .cloned()
        .collect();
    match words.first() {
        Some(first) if first.starts_with('<') || first.starts_with("...") || first == "…" => None,
        _ => Some(words),
    }
}

fn shell_words(text: &str) -> Vec<String> {
    let mut words = Vec::new();
    let mut current = String::new();
    let mut quote: Option<char> = None;
    let mut in_word = false;
    for c in text.chars() {
        match quote {
            Some(q) if c == q => quote = None,
            Some(_) => current.push(c),
            None if c == '"' || c == '\'' => {
                quote = Some(c);
                in_word = true;
            }
            None if c.is_whitespace() => {
                if in_word {
                    words.push(std::mem::take(&mut current));
                    in_word = false;
                }
            }
            None if c == ';' || c == '|' => {
                if in_word {
                    words.push(std::mem::take(&mut current));
                }
                words.push(c.to_string());
                in_word = false;
            }
            None => {
                current.push(c);
                in_word = true;
            }
        }
    }
    if in_word {
        words.push(current);
    }
    words
}

/// Parses a documented command; help and version requests count as valid, and so does a
/// value error on a placeholder (`<N>`, `NAME`).
fn parses(words: &[String]) -> Result<(), String> {
    let error = match Cli::try_parse_words(words) {
        Ok(_) => return Ok(()),
        Err(error) => error,
    };
    match error.kind() {
        ErrorKind::DisplayHelp
        | ErrorKind::DisplayVersion
        | ErrorKind::DisplayHelpOnMissingArgumentOrSubcommand => Ok(()),
        ErrorKind::InvalidValue | ErrorKind::ValueValidation
            if words.iter().any(|w| is_placeholder(w)) =>
        {
            Ok(())
        }
        _ => Err(error.kind().to_string()),
    }
}

fn is_placeholder(word: &str) -> bool {
    let value = word.split_once('=').map_or(word, |(_, v)| v);
    (value.starts_with('<') && value.ends_with('>'))
        || (value.len() > 1
            && value
                .chars()
                .all(|c| c.is_ascii_uppercase() || c == '_' || c.is_ascii_digit()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn words(list: &[&str]) -> Vec<String> {
        list.iter().map(|w| w.to_string()).collect()
    }

    #[test]
    fn extracts_commands_from_code_only() {
        let text = "Run `cargo xtask test` or `cargo xtask <task>`.\ncargo xtask bogus in prose\n\
                    ```sh\n$ cargo xtask predeploy --env \"staging\" | tee out # note\n```\n";
        let found = commands(text, true);
        assert_eq!(
            found,
            vec![
                (1, words(&["test"])),
                (4, words(&["predeploy", "--env", "staging"]))
            ]
        );
    }

    #[test]
    fn parses_with_the_real_cli() {
        assert!(parses(&words(&["predeploy", "--strict"])).is_ok());
        assert!(parses(&words(&["--help"])).is_ok());
        assert!(parses(&words(&["predeploy", "--no-such-flag"])).is_err());
        assert!(parses(&words(&["deploy-everything"])).is_err());
    }
}
