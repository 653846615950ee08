//! `dockerfile`: the service's Dockerfile, read as instructions (continuations, comments,
//! stages), builds the `cabanas` binary, runs it as a non-root user and exposes the port Fly
//! sends traffic to; the `.dockerignore` keeps build output, history and secrets out of the
//! build context but nothing the Dockerfile copies, and the dependency layer carries every
//! workspace member ([`super::dockerfile_context`]).

use std::collections::BTreeSet;

use super::Context;
use super::dockerfile_syntax::{Instruction, parse, stages};
use super::fly_toml;
use super::outcome::{At, Check, CheckResult};
use super::text::{FileText, first_crlf_line, read_text};

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
