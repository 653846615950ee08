//! `docs_commands`: every `cargo xtask ...` command in `README.md`, `docs/` and `ops/`
//! (in code blocks and inline code) parses with the real CLI definition, so the docs never
//! promise a task or flag that does not exist.
//!
//! Markdown is read with pulldown-cmark, so code is what a renderer shows as code. A code
//! fence that is not closed where its author meant fails the check: from there on a renderer
//! swaps code and prose, and the commands in the swallowed part are no longer what a reader
//! sees (nor what this check would find).

use pulldown_cmark::{CodeBlockKind, Event, Options, Parser, Tag};

use super::Context;
use super::outcome::{At, Check, CheckResult};
use super::text::{FileText, read_text};

const PREFIX: &str = "cargo xtask";

/// How the command line reads a documented command (the words after `cargo xtask`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CommandCheck {
    /// It parses, or asks for help or the version.
    Parses,
    /// A value is refused (its kind of error): fine when the value is a placeholder.
    BadValue(String),
    /// Anything else refused: an unknown task or flag, a missing argument.
    Refused(String),
}

/// The command line's reader, handed down by the CLI layer (which sits above every task and
/// so cannot be imported by one).
pub type CommandLine = fn(&[String]) -> CommandCheck;

pub(crate) fn check(cx: &Context) -> CheckResult {
    let mut check = Check::new(
        "docs_commands",
        "every `cargo xtask ...` line in README.md, docs/ and ops/ parses with the real CLI",
    );
    let Some(command_line) = cx.options.command_line else {
        check.skip(
            At::none(),
            "no command line was given to read the documented commands with",
        );
        return check.finish();
    };
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
        let markdown = path.ends_with(".md");
        if markdown {
            for (line, why) in markdown_code(&text).broken_fences {
                check.fail(
                    At::line(path, Some(line)),
                    format!("this code fence {why}"),
                    "close the code block with a line of the same fence (```) after its last line",
                );
            }
        }
        for (line, command) in commands(&text, markdown) {
            checked += 1;
            if let Err(why) = parses(command_line, &command) {
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
/// only code (code blocks and inline spans) counts; in other files, comment lines do too.
fn commands(text: &str, markdown: bool) -> Vec<(usize, Vec<String>)> {
    let snippets: Vec<(usize, String)> = if markdown {
        markdown_code(text).snippets
    } else {
        text.lines()
            .enumerate()
            .map(|(index, line)| (index + 1, line.to_string()))
            .collect()
    };
    snippets
        .into_iter()
        .filter_map(|(line, snippet)| command_words(&snippet).map(|words| (line, words)))
        .collect()
}

/// The code of a Markdown text as a CommonMark renderer shows it.
#[derive(Debug, Default)]
struct MarkdownCode {
    /// `(line, text)`: each line of a code block, each inline code span.
    snippets: Vec<(usize, String)>,
    /// `(line of the opening fence, what is wrong)` for fences not closed where meant.
    broken_fences: Vec<(usize, String)>,
}

fn markdown_code(text: &str) -> MarkdownCode {
    let line_starts: Vec<usize> = std::iter::once(0)
        .chain(text.match_indices('\n').map(|(i, _)| i + 1))
        .collect();
    let line_of = |offset: usize| line_starts.partition_point(|&start| start <= offset);
    let mut code = MarkdownCode::default();
    for (event, range) in Parser::new_ext(text, Options::empty()).into_offset_iter() {
        match event {
            Event::Code(span) => code.snippets.push((line_of(range.start), span.to_string())),
            Event::Start(Tag::CodeBlock(kind)) => {
                let first = line_of(range.start);
                let lines: Vec<&str> = text[range].lines().collect();
                match kind {
                    CodeBlockKind::Indented => code.snippets.extend(
                        lines
                            .iter()
                            .enumerate()
                            .map(|(i, line)| (first + i, line.to_string())),
                    ),
                    CodeBlockKind::Fenced(_) => fenced_block(&mut code, first, &lines),
                }
            }
            _ => {}
        }
    }
    code
}

/// A fenced block's lines (from its opening fence on): its code, and whether it closes where
/// its author meant. A block that reaches the end of its container without a closing fence
/// (CommonMark then runs it to the end of the document) was never closed. A line inside it
/// made of the same fence plus an info string (```` ```sh ````) cannot close it, yet only an
/// author who forgot the closing fence writes it there.
fn fenced_block(code: &mut MarkdownCode, first: usize, lines: &[&str]) {
    // Blockquote markers and indentation come before the fence itself.
    fn fence_text(line: &str) -> &str {
        line.trim_start_matches(|c: char| c.is_whitespace() || c == '>')
    }
    let Some(opener) = lines.first().map(|l| fence_text(l)) else {
        return;
    };
    let Some(marker) = opener.chars().next() else {
        return;
    };
    let length = opener.chars().take_while(|&c| c == marker).count();
    let run = |line: &str| {
        fence_text(line)
            .chars()
            .take_while(|&c| c == marker)
            .count()
    };
    let closed = lines.len() > 1 && {
        let last = fence_text(lines[lines.len() - 1]).trim_end();
        run(last) >= length && last.chars().all(|c| c == marker)
    };
    let body = &lines[1..if closed { lines.len() - 1 } else { lines.len() }];
    for (i, line) in body.iter().enumerate() {
        let at = first + 1 + i;
        let rest = fence_text(line)[run(line) * marker.len_utf8()..].trim();
        if run(line) >= length && !rest.is_empty() {
            code.broken_fences.push((
                first,
                format!(
                    "is not closed before line {at}, which opens another code block: \
                     everything from here renders with code and prose swapped"
                ),
            ));
        }
        code.snippets.push((at, line.to_string()));
    }
    if !closed {
        code.broken_fences.push((
            first,
            "is never closed: the code block runs to the end of the document".to_string(),
        ));
    }
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
fn parses(command_line: CommandLine, words: &[String]) -> Result<(), String> {
    match command_line(words) {
        CommandCheck::Parses => Ok(()),
        CommandCheck::BadValue(_) if words.iter().any(|w| is_placeholder(w)) => Ok(()),
        CommandCheck::BadValue(why) | CommandCheck::Refused(why) => Err(why),
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
    fn a_fence_not_closed_where_meant_is_named_by_its_line() {
        let closed = "# t\n\n```sh\ncargo xtask test\n```\n\n~~~\ncargo xtask status\n~~~\n";
        let code = markdown_code(closed);
        assert!(code.broken_fences.is_empty(), "{code:?}");
        let open_to_the_end = "# t\n\n```sh\ncargo xtask test\n\nprose\n";
        let code = markdown_code(open_to_the_end);
        assert_eq!(code.broken_fences.len(), 1, "{code:?}");
        assert_eq!(code.broken_fences[0].0, 3);
        assert!(code.broken_fences[0].1.contains("end of the document"));
        let runs_into_the_next =
            "```sh\ncargo xtask test\n## next\n\n```sh\ncargo xtask status\n```\n";
        let code = markdown_code(runs_into_the_next);
        assert_eq!(code.broken_fences.len(), 1, "{code:?}");
        assert_eq!(code.broken_fences[0].0, 1);
        assert!(code.broken_fences[0].1.contains("line 5"), "{code:?}");
        // A longer fence around a shorter one is an example of Markdown, not a mistake.
        let nested = "````md\n```sh\ncargo xtask test\n```\n````\n";
        assert!(markdown_code(nested).broken_fences.is_empty());
    }
}
