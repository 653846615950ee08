//! The part of the `dockerfile` check about what the Dockerfile takes from its build
//! context: nothing it COPYs may be excluded by `.dockerignore` (the build fails with "not
//! found", or silently copies less), and the dependency layer (the manifests plus stub
//! sources built before the real sources, so dependencies stay cached) must carry every
//! workspace member, or cargo cannot even load the workspace there.

use std::path::Path;

use super::Context;
use super::dockerfile_syntax::{Instruction, parse, stages};
use super::dockerignore::excluded_by;
use super::outcome::{At, Check};

/// Checks `text`, the Dockerfile at `path` built with `context_dir` as context, against
/// `ignore` (the ignore file's path and patterns, when readable).
pub(crate) fn check(
    cx: &Context,
    check: &mut Check,
    path: &str,
    text: &str,
    context_dir: &Path,
    ignore: Option<&(String, Vec<String>)>,
) {
    let instructions = parse(text);
    if let Some((ignore_path, patterns)) = ignore {
        check_copies_not_ignored(check, path, &instructions, ignore_path, patterns);
    }
    if let Some(members) = workspace_members(cx) {
        check_stub_members(check, path, &instructions, context_dir, &members);
    }
}

fn check_copies_not_ignored(
    check: &mut Check,
    path: &str,
    instructions: &[Instruction],
    ignore_path: &str,
    patterns: &[String],
) {
    let patterns: Vec<&str> = patterns.iter().map(String::as_str).collect();
    let mut failed = false;
    for copy in instructions.iter().filter(|i| from_context(i)) {
        for source in copy_sources(&copy.args) {
            if let Some(pattern) = excluded_by(&patterns, &source) {
                failed = true;
                check.fail(
                    At::line(path, Some(copy.line)),
                    format!(
                        "{} copies `{source}`, which {ignore_path} excludes (pattern `{pattern}`): \
                         it is not in the build context",
                        copy.keyword
                    ),
                    format!(
                        "remove or narrow `{pattern}` in {ignore_path} (or add `!{source}` after \
                         it), or stop copying `{source}`"
                    ),
                );
            }
        }
    }
    if !failed {
        check.pass(
            At::file(path),
            format!("every COPY source is in the build context ({ignore_path} excludes none)"),
        );
    }
}

fn check_stub_members(
    check: &mut Check,
    path: &str,
    instructions: &[Instruction],
    context_dir: &Path,
    members: &[String],
) {
    // The dependency layer: the first `cargo build` of the stage that builds, with what that
    // stage copied and ran before it.
    let stages = stages(instructions);
    let Some((before, build)) = stages.iter().find_map(|stage| {
        let at = stage
            .instructions
            .iter()
            .position(|i| i.keyword == "RUN" && runs_cargo_build(&i.args))?;
        Some((&stage.instructions[..at], &stage.instructions[at]))
    }) else {
        return;
    };
    let sources: Vec<String> = before
        .iter()
        .filter(|i| from_context(i))
        .flat_map(|i| copy_sources(&i.args))
        .collect();
    let commands: Vec<&str> = before
        .iter()
        .map(|i| i.args.as_str())
        .chain(std::iter::once(build.args.as_str()))
        .collect();
    let covers = |wanted: &str| {
        sources.iter().any(|s| {
            s == "." || s == wanted || wanted.starts_with(&format!("{}/", s.trim_end_matches('/')))
        })
    };
    let mut forgotten = Vec::new();
    for member in members {
        // Members outside the context cannot be copied at all; the build says so itself.
        let Ok(relative) = Path::new(member).strip_prefix(context_dir) else {
            continue;
        };
        let member = relative.to_string_lossy().replace('\\', "/");
        let manifest = covers(&format!("{member}/Cargo.toml"));
        let src = format!("{member}/src");
        let source = covers(&src) || commands.iter().any(|c| c.contains(&src));
        if !manifest || !source {
            forgotten.push(member.clone());
            let mut lacks = Vec::new();
            let mut fixes = Vec::new();
            if !manifest {
                lacks.push("its Cargo.toml");
                fixes.push(format!(
                    "add `COPY {member}/Cargo.toml {member}/Cargo.toml` before it"
                ));
            }
            if !source {
                lacks.push("a stub source");
                fixes.push(format!(
                    "create one in its RUN: `mkdir -p {src} && echo 'fn main() {{}}' > {src}/main.rs`"
                ));
            }
            check.fail(
                At::line(path, Some(build.line)),
                format!(
                    "the dependency layer (this cargo build) lacks workspace member `{member}`: \
                     {}; cargo cannot load the workspace without it",
                    lacks.join(" and ")
                ),
                fixes.join("; "),
            );
        }
    }
    if forgotten.is_empty() && !members.is_empty() {
        check.pass(
            At::line(path, Some(build.line)),
            format!(
                "the dependency layer has every workspace member ({})",
                members.join(", ")
            ),
        );
    }
}

/// A COPY or ADD from the build context (not `--from` another stage or image).
fn from_context(instruction: &Instruction) -> bool {
    matches!(instruction.keyword.as_str(), "COPY" | "ADD")
        && !instruction
            .args
            .split_whitespace()
            .any(|w| w.starts_with("--from"))
}

/// The context paths a COPY/ADD reads: every argument but flags and the destination, in the
/// shell form or the JSON form, normalised (`./a/` is `a`, `./` is `.`). URLs and globs are
/// left out (they name no one path).
pub(crate) fn copy_sources(args: &str) -> Vec<String> {
    let words: Vec<String> = match serde_json::from_str::<Vec<String>>(args.trim()) {
        Ok(words) => words,
        Err(_) => args
            .split_whitespace()
            .filter(|w| !w.starts_with("--"))
            .map(str::to_string)
            .collect(),
    };
    let Some((_, sources)) = words.split_last() else {
        return Vec::new();
    };
    sources
        .iter()
        .filter(|s| !s.contains("://") && !s.contains(['*', '?', '[', '$']))
        .map(|s| {
            let trimmed = s
                .trim_start_matches("./")
                .trim_start_matches('/')
                .trim_end_matches('/');
            if trimmed.is_empty() {
                ".".to_string()
            } else {
                trimmed.to_string()
            }
        })
        .collect()
}

fn runs_cargo_build(args: &str) -> bool {
    let words: Vec<&str> = args.split_whitespace().collect();
    words.windows(2).any(|w| w[0] == "cargo" && w[1] == "build")
}

/// `[workspace] members` of the root manifest, globs (`crates/*`) expanded to the directories
/// holding a Cargo.toml. `None` when there is no readable workspace manifest.
fn workspace_members(cx: &Context) -> Option<Vec<String>> {
    let text = std::fs::read_to_string(cx.repo.path("Cargo.toml")).ok()?;
    let table: toml::Table = toml::from_str(&text).ok()?;
    let listed = table.get("workspace")?.get("members")?.as_array()?;
    let mut members = Vec::new();
    for member in listed.iter().filter_map(|m| m.as_str()) {
        let member = member.trim_end_matches('/');
        match member.rsplit_once('/') {
            Some((parent, "*")) => {
                let Ok(entries) = std::fs::read_dir(cx.repo.path(parent)) else {
                    continue;
                };
                let mut found: Vec<String> = entries
                    .filter_map(Result::ok)
                    .filter(|e| e.path().join("Cargo.toml").is_file())
                    .map(|e| format!("{parent}/{}", e.file_name().to_string_lossy()))
                    .collect();
                found.sort();
                members.extend(found);
            }
            _ => members.push(member.to_string()),
        }
    }
    Some(members)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn copy_sources_in_both_forms() {
        assert_eq!(
            copy_sources("Cargo.toml Cargo.lock ./"),
            ["Cargo.toml", "Cargo.lock"]
        );
        assert_eq!(
            copy_sources("--chown=app:app ./backend/src/ backend/src"),
            ["backend/src"]
        );
        assert_eq!(copy_sources(r#"["a b", "dest/"]"#), ["a b"]);
        assert_eq!(copy_sources(". ."), ["."]);
        assert!(copy_sources("https://example.org/x /x").is_empty());
        assert!(copy_sources("*.toml /x").is_empty());
    }
}
