//! `dockerfile`: the service's Dockerfile, read as instructions (continuations, comments,
//! stages), builds the `cabanas` binary, runs it as a non-root user and exposes the port Fly
//! sends traffic to; the `.dockerignore` keeps build output, history and secrets out of the
//! build context but nothing the Dockerfile copies, and the dependency layer carries every
//! workspace member ([`super::dockerfile_context`]).

use std::collections::BTreeSet;

use super::Context;
use super::fly_toml;
use super::outcome::{At, Check, CheckResult};
use super::text::{FileText, first_crlf_line, read_text};

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

pub(crate) fn check(cx: &Context) -> CheckResult {
    let mut check = Check::new(
        "dockerfile",
        "the Dockerfile builds `cabanas`, runs it as a non-root USER and EXPOSEs internal_port; \
         .dockerignore keeps target/, .git and the env files out of the build context but \
         nothing it COPYs; its dependency layer carries every workspace member",
    );
    let mut seen = BTreeSet::new();
    for fly_path in fly_toml::configs(cx).into_keys() {
        let Some(facts) = fly_toml::facts(cx, &fly_path) else {
            check.skip(
                At::file(&fly_path),
                "the Fly config is unreadable (see fly_toml): no Dockerfile to check",
            );
            continue;
        };
        if !seen.insert(facts.dockerfile.clone()) {
            continue;
        }
        let path = facts.dockerfile.as_str();
        let text = match read_text(&cx.repo.path(path)) {
            FileText::Missing => {
                check.fail(
                    At::file(path),
                    "does not exist",
                    "write the multi-stage Dockerfile fly.toml names",
                );
                None
            }
            FileText::Unreadable(why) => {
                check.fail(At::file(path), why, "replace it with a text Dockerfile");
                None
            }
            FileText::Text(text) => {
                check_instructions(&mut check, path, &text, facts.internal_port);
                Some(text)
            }
        };
        let context_dir = std::path::Path::new(&fly_path)
            .parent()
            .unwrap_or(std::path::Path::new(""));
        let ignore = super::dockerignore::check(cx, &mut check, path, context_dir);
        if let Some(text) = text {
            let ignore = ignore.as_ref();
            super::dockerfile_context::check(cx, &mut check, path, &text, context_dir, ignore);
        }
    }
    check.finish()
}

fn check_instructions(check: &mut Check, path: &str, text: &str, internal_port: Option<i64>) {
    if let Some(line) = first_crlf_line(text) {
        check.warn(
            At::line(path, Some(line)),
            "CRLF line endings: a `\\` continuation before CR does not continue",
            "convert the file to LF line endings",
        );
    }
    let stages = stages(&parse(text));
    let Some(last) = stages.last() else {
        check.fail(
            At::file(path),
            "has no FROM instruction",
            "start every stage with FROM <image>",
        );
        return;
    };
    let final_at = At::line(path, Some(last.line));
    let builds = stages
        .iter()
        .flat_map(|s| &s.instructions)
        .find(|i| i.keyword == "RUN" && builds_cabanas(&i.args));
    match builds {
        Some(run) => check.pass(
            At::line(path, Some(run.line)),
            "RUN cargo build builds the cabanas binary",
        ),
        None => check.fail(
            final_at.clone(),
            "no RUN cargo build of the cabanas binary",
            "RUN cargo build --release --locked -p backend --bin cabanas",
        ),
    }
    if stages.len() > 1 {
        let copies = last.instructions.iter().find(|i| {
            i.keyword == "COPY"
                && i.args.contains("--from=")
                && i.args.split_whitespace().any(|w| w.ends_with("/cabanas"))
        });
        match copies {
            Some(copy) => {
                let from = copy
                    .args
                    .split_whitespace()
                    .find_map(|w| w.strip_prefix("--from="))
                    .unwrap_or("");
                let known = stages
                    .iter()
                    .enumerate()
                    .any(|(i, s)| s.name.as_deref() == Some(from) || i.to_string() == from);
                if known {
                    check.pass(
                        At::line(path, Some(copy.line)),
                        format!("the final stage copies the cabanas binary from stage `{from}`"),
                    );
                } else {
                    check.fail(
                        At::line(path, Some(copy.line)),
                        format!("COPY --from={from} names no stage of this Dockerfile"),
                        "name the build stage (FROM ... AS builder) and COPY --from=builder",
                    );
                }
            }
            None => check.fail(
                final_at.clone(),
                "the final stage does not COPY --from the cabanas binary",
                "COPY --from=builder /build/target/release/cabanas /usr/local/bin/cabanas",
            ),
        }
    }
    match last.instructions.iter().rfind(|i| i.keyword == "USER") {
        None => check.fail(
            final_at.clone(),
            "the final stage has no USER: the service would run as root",
            "create a user (useradd --system cabanas) and add USER cabanas",
        ),
        Some(user) => {
            let name = user.args.split(':').next().unwrap_or("").trim();
            if name == "root" || name == "0" || name.is_empty() {
                check.fail(
                    At::line(path, Some(user.line)),
                    format!("the final stage runs as `{name}`"),
                    "switch to an unprivileged user: USER cabanas",
                );
            } else {
                check.pass(
                    At::line(path, Some(user.line)),
                    format!("runs as non-root USER {name}"),
                );
            }
        }
    }
    let exposes: Vec<&Instruction> = last
        .instructions
        .iter()
        .filter(|i| i.keyword == "EXPOSE")
        .collect();
    let ports: Vec<String> = exposes
        .iter()
        .flat_map(|i| i.args.split_whitespace())
        .map(|p| p.split('/').next().unwrap_or(p).to_string())
        .collect();
    match (exposes.first(), internal_port) {
        (None, _) => check.fail(
            final_at.clone(),
            "the final stage has no EXPOSE",
            "EXPOSE the port fly.toml's internal_port names (8080)",
        ),
        (Some(first), Some(port)) if !ports.contains(&port.to_string()) => check.fail(
            At::line(path, Some(first.line)),
            format!(
                "EXPOSE {} does not include fly.toml's internal_port {port}",
                ports.join(" ")
            ),
            "make EXPOSE, ENV PORT and [http_service] internal_port the same port",
        ),
        (Some(first), _) => check.pass(
            At::line(path, Some(first.line)),
            format!("EXPOSE {}", ports.join(" ")),
        ),
    }
    let starts = last
        .instructions
        .iter()
        .rfind(|i| i.keyword == "CMD" || i.keyword == "ENTRYPOINT");
    if !starts.is_some_and(|i| i.args.contains("cabanas")) {
        check.warn(
            final_at,
            "the final stage's CMD/ENTRYPOINT does not start cabanas",
            "CMD [\"cabanas\", \"serve\"]",
        );
    }
}

fn builds_cabanas(args: &str) -> bool {
    let words: Vec<&str> = args.split_whitespace().collect();
    let cargo_build = words.windows(2).any(|w| w[0] == "cargo" && w[1] == "build");
    let target = words.windows(2).any(|w| {
        (w[0] == "--bin" && w[1] == "cabanas")
            || ((w[0] == "-p" || w[0] == "--package") && w[1] == "backend")
    }) || words
        .iter()
        .any(|w| *w == "--bin=cabanas" || *w == "--package=backend" || *w == "-p=backend");
    cargo_build && target
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
