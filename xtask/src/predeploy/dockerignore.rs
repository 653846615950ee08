//! The `.dockerignore` part of the `dockerfile` check: the build context must not carry
//! `target/`, `.git` or the filled env files into the image builder.

use super::Context;
use super::outcome::{At, Check};
use super::text::{FileText, read_text};

/// Checks the ignore file that applies to `dockerfile` (`<Dockerfile>.dockerignore` first, as
/// BuildKit does, else the context's `.dockerignore`). Returns its path and patterns, for the
/// checks of what the Dockerfile copies (none when it is missing or unreadable).
pub(crate) fn check(
    cx: &Context,
    check: &mut Check,
    dockerfile: &str,
    context_dir: &std::path::Path,
) -> Option<(String, Vec<String>)> {
    let specific = format!("{dockerfile}.dockerignore");
    let general = context_dir
        .join(".dockerignore")
        .to_string_lossy()
        .replace('\\', "/");
    let path = if cx.repo.path(&specific).is_file() {
        specific
    } else {
        general
    };
    let text = match read_text(&cx.repo.path(&path)) {
        FileText::Text(text) => text,
        FileText::Missing => {
            check.fail(
                At::file(&path),
                "does not exist: target/, .git and the env files would be sent to the builder",
                "create .dockerignore with target/, .git and env/",
            );
            return None;
        }
        FileText::Unreadable(why) => {
            check.fail(At::file(&path), why, "replace it with a text file");
            return None;
        }
    };
    let patterns: Vec<&str> = text
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .collect();
    let mut must: Vec<(String, String)> = vec![
        ("target/".into(), "target/release/cabanas".into()),
        (".git".into(), ".git/HEAD".into()),
    ];
    for env in cx.config.environments.values() {
        let file = env.env_file.to_string_lossy().replace('\\', "/");
        must.push((file.clone(), file));
    }
    let mut missing = Vec::new();
    for (label, sample) in must {
        if !excluded(&patterns, &sample) {
            missing.push(label);
        }
    }
    if missing.is_empty() {
        check.pass(
            At::file(&path),
            "keeps target/, .git and the filled env files out of the build context",
        );
    } else {
        check.fail(
            At::file(&path),
            format!("does not exclude {}", missing.join(", ")),
            format!("add lines to {path}: target/, .git, env/"),
        );
    }
    let patterns = patterns.into_iter().map(str::to_string).collect();
    Some((path, patterns))
}

/// Whether `.dockerignore` patterns exclude `path` (or a directory above it). The last
/// matching pattern wins; `!` re-includes.
pub(crate) fn excluded(patterns: &[&str], path: &str) -> bool {
    excluded_by(patterns, path).is_some()
}

/// The pattern that excludes `path` (the last one matching, unless a later `!` re-includes).
pub(crate) fn excluded_by<'a>(patterns: &[&'a str], path: &str) -> Option<&'a str> {
    let parts: Vec<&str> = path.split('/').collect();
    let mut result = None;
    for raw in patterns {
        let (negate, pattern) = match raw.strip_prefix('!') {
            Some(rest) => (true, rest.trim()),
            None => (false, *raw),
        };
        let pattern = pattern
            .trim_start_matches("./")
            .trim_start_matches('/')
            .trim_end_matches('/');
        let segments: Vec<&str> = pattern.split('/').collect();
        if (1..=parts.len()).any(|n| glob_segments(&segments, &parts[..n])) {
            result = (!negate).then_some(*raw);
        }
    }
    result
}

fn glob_segments(pattern: &[&str], path: &[&str]) -> bool {
    match (pattern.first(), path.first()) {
        (None, None) => true,
        (Some(&"**"), _) => {
            glob_segments(&pattern[1..], path)
                || (!path.is_empty() && glob_segments(pattern, &path[1..]))
        }
        (Some(p), Some(s)) => {
            glob(p.as_bytes(), s.as_bytes()) && glob_segments(&pattern[1..], &path[1..])
        }
        _ => false,
    }
}

fn glob(pattern: &[u8], name: &[u8]) -> bool {
    match (pattern.first(), name.first()) {
        (None, None) => true,
        (Some(b'*'), _) => {
            glob(&pattern[1..], name) || (!name.is_empty() && glob(pattern, &name[1..]))
        }
        (Some(b'?'), Some(_)) => glob(&pattern[1..], &name[1..]),
        (Some(p), Some(n)) if p == n => glob(&pattern[1..], &name[1..]),
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dockerignore_patterns() {
        let patterns = ["target/", ".git", "env/", "!env/keep", "**/*.log"];
        assert!(excluded(&patterns, "target/release/cabanas"));
        assert!(excluded(&patterns, ".git/HEAD"));
        assert!(excluded(&patterns, "env/.env.fly.staging"));
        assert!(!excluded(&patterns, "env/keep"));
        assert!(excluded(&patterns, "a/b/c.log"));
        assert!(!excluded(&patterns, "backend/src/main.rs"));
        assert!(excluded(&["env/.env.fly.*"], "env/.env.fly.staging"));
        assert!(!excluded(&["target"], "xtarget/x"));
    }
}
