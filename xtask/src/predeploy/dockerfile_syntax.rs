//! A Dockerfile read as instructions (continuation lines joined, comments dropped) and
//! stages: what the `dockerfile` check judges and the `fly_toml` check reads the served port
//! from, kept apart from both so neither imports the other.

use super::Context;
use super::text::{FileText, read_text};

/// One instruction, continuation lines joined.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Instruction {
    /// Line where it starts.
    pub(crate) line: usize,
    /// Upper-cased keyword (`FROM`, `RUN`, ...).
    pub(crate) keyword: String,
    /// Everything after the keyword.
    pub(crate) args: String,
}

/// A build stage: its `FROM` and what follows up to the next `FROM`.
#[derive(Debug, Clone)]
pub(crate) struct Stage {
    /// The `AS` name.
    pub(crate) name: Option<String>,
    /// Line of its `FROM`.
    pub(crate) line: usize,
    /// Its instructions after `FROM`.
    pub(crate) instructions: Vec<Instruction>,
}

/// Splits Dockerfile text into instructions: `\` continues a line, `#` lines are comments
/// (also inside a continuation, as Docker treats them), blank lines are skipped.
pub(crate) fn parse(text: &str) -> Vec<Instruction> {
    let mut out = Vec::new();
    let mut pending: Option<(usize, String)> = None;
    for (index, raw) in text.lines().enumerate() {
        let line = raw.trim_end_matches('\r');
        let trimmed = line.trim();
        if trimmed.starts_with('#') || (trimmed.is_empty() && pending.is_none()) {
            continue;
        }
        let (continues, body) = match trimmed.strip_suffix('\\') {
            Some(body) => (true, body),
            None => (false, trimmed),
        };
        let (start, mut joined) = pending.take().unwrap_or((index + 1, String::new()));
        if !joined.is_empty() {
            joined.push(' ');
        }
        joined.push_str(body.trim());
        if continues {
            pending = Some((start, joined));
            continue;
        }
        push(&mut out, start, &joined);
    }
    if let Some((start, joined)) = pending {
        push(&mut out, start, &joined);
    }
    out
}

fn push(out: &mut Vec<Instruction>, line: usize, joined: &str) {
    let joined = joined.trim();
    if joined.is_empty() {
        return;
    }
    let (keyword, args) = joined
        .split_once(char::is_whitespace)
        .unwrap_or((joined, ""));
    out.push(Instruction {
        line,
        keyword: keyword.to_ascii_uppercase(),
        args: args.trim().to_string(),
    });
}

/// Groups instructions into stages.
pub(crate) fn stages(instructions: &[Instruction]) -> Vec<Stage> {
    let mut stages: Vec<Stage> = Vec::new();
    for instruction in instructions {
        if instruction.keyword == "FROM" {
            let words: Vec<&str> = instruction
                .args
                .split_whitespace()
                .filter(|w| !w.starts_with("--"))
                .collect();
            let name = match words.as_slice() {
                [_, as_, name, ..] if as_.eq_ignore_ascii_case("as") => Some(name.to_string()),
                _ => None,
            };
            stages.push(Stage {
                name,
                line: instruction.line,
                instructions: Vec::new(),
            });
        } else if let Some(stage) = stages.last_mut() {
            stage.instructions.push(instruction.clone());
        }
    }
    stages
}

/// `ENV` pairs of an instruction, both `ENV K=V K2=V2` and the legacy `ENV K V`.
fn env_pairs(args: &str) -> Vec<(String, String)> {
    let words: Vec<&str> = args.split_whitespace().collect();
    let unquote = |v: &str| v.trim_matches('"').trim_matches('\'').to_string();
    if let Some(first) = words.first()
        && !first.contains('=')
    {
        return vec![(first.to_string(), unquote(&words[1..].join(" ")))];
    }
    words
        .iter()
        .filter_map(|w| w.split_once('='))
        .map(|(k, v)| (k.to_string(), unquote(v)))
        .collect()
}

/// The `PORT` the final stage sets with `ENV`, and its line.
pub(crate) fn env_port(cx: &Context, relative: &str) -> Option<(String, usize)> {
    let FileText::Text(text) = read_text(&cx.repo.path(relative)) else {
        return None;
    };
    let stages = stages(&parse(&text));
    let last = stages.last()?;
    last.instructions
        .iter()
        .filter(|i| i.keyword == "ENV")
        .flat_map(|i| {
            env_pairs(&i.args)
                .into_iter()
                .map(move |(k, v)| (k, v, i.line))
        })
        .rfind(|(k, _, _)| k == "PORT")
        .map(|(_, v, line)| (v, line))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn instructions_join_continuations_and_skip_comments() {
        let text = "# syntax=docker/dockerfile:1\nFROM rust AS builder\nRUN a \\\n  # inside\n  && b\n\nfrom debian\nUSER app\n";
        let parsed = parse(text);
        assert_eq!(parsed.len(), 4);
        assert_eq!(
            parsed[1],
            Instruction {
                line: 3,
                keyword: "RUN".into(),
                args: "a && b".into()
            }
        );
        let stages = stages(&parsed);
        assert_eq!(stages[0].name.as_deref(), Some("builder"));
        assert_eq!(stages[1].line, 7);
        assert_eq!(stages[1].instructions[0].keyword, "USER");
    }

    #[test]
    fn env_pairs_both_forms() {
        assert_eq!(
            env_pairs("PORT=8080 HOST=\"0.0.0.0\"")[1],
            ("HOST".into(), "0.0.0.0".into())
        );
        assert_eq!(env_pairs("PORT 8080"), vec![("PORT".into(), "8080".into())]);
    }
}
