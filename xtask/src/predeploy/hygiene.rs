//! `secret_hygiene`: the filled env files are git-ignored, untracked and private to their
//! owner, and no tracked file holds one of their secret values or a private-key block.
//! Findings name the file, the line and the key, never the value.

use std::collections::BTreeSet;

use xshell::{Shell, cmd};

use super::Context;
use super::env_check::parse_template;
use super::envfile::read_env_file;
use super::outcome::{At, Check, CheckResult};
use super::text::{FileText, line_of_offset, read_text};
use crate::repo::Repo;

/// Tracked files larger than this are not scanned (generated data, not config).
const MAX_SCANNED_BYTES: u64 = 1024 * 1024;
/// Shorter values are too common to be told apart from ordinary text.
const MIN_SECRET_LEN: usize = 8;
/// Split so that this source file does not itself contain a key-block marker.
const KEY_BLOCK_START: &str = concat!("-----", "BEGIN ");
const KEY_BLOCK_END: &str = concat!("PRIVATE KEY", "-----");

/// The files git tracks, repository-relative; `None` outside a git checkout.
pub(crate) fn tracked_files(repo: &Repo) -> Option<Vec<String>> {
    let sh = Shell::new().ok()?;
    sh.change_dir(repo.root());
    let listing = cmd!(sh, "git ls-files -z")
        .quiet()
        .ignore_stderr()
        .read()
        .ok()?;
    Some(
        listing
            .split('\0')
            .filter(|p| !p.is_empty())
            .map(str::to_string)
            .collect(),
    )
}

/// The env files among `paths` that git ignores (rules apply even to tracked files).
fn ignored(repo: &Repo, paths: &[String]) -> Option<BTreeSet<String>> {
    let sh = Shell::new().ok()?;
    sh.change_dir(repo.root());
    // Exit 1 means "none ignored", so read the output whatever the status.
    let output = cmd!(sh, "git check-ignore --no-index {paths...}")
        .quiet()
        .ignore_stderr()
        .ignore_status()
        .read()
        .ok()?;
    Some(output.lines().map(str::to_string).collect())
}

pub(crate) fn check(cx: &Context, tracked: Option<&[String]>) -> CheckResult {
    let mut check = Check::new(
        "secret_hygiene",
        "filled env files are ignored, untracked and private; no tracked file holds one of \
         their values or a private key",
    );
    let Some(tracked) = tracked else {
        check.warn(
            At::none(),
            "not a git checkout: cannot tell which files are tracked",
            "run predeploy inside the git checkout",
        );
        return check.finish();
    };
    let env_files: Vec<(String, String)> = cx
        .config
        .environments
        .values()
        .map(|e| {
            (
                e.env_file.to_string_lossy().replace('\\', "/"),
                e.template.to_string_lossy().replace('\\', "/"),
            )
        })
        .collect();
    let paths: Vec<String> = env_files.iter().map(|(f, _)| f.clone()).collect();
    let ignored = ignored(cx.repo, &paths).unwrap_or_default();
    let tracked_set: BTreeSet<&str> = tracked.iter().map(String::as_str).collect();
    // (key, file it came from, value)
    let mut secrets: Vec<(String, String, String)> = Vec::new();
    for (file, template) in &env_files {
        if tracked_set.contains(file.as_str()) {
            check.fail(
                At::file(file),
                "is tracked by git: its secrets are in the history",
                format!(
                    "git rm --cached {file}, rotate every secret in it, and keep it in .gitignore"
                ),
            );
        }
        if !ignored.contains(file) {
            check.fail(
                At::file(file),
                "is not git-ignored",
                "add `/env/*` and `!/env/*.template` to .gitignore",
            );
        }
        if let FileText::Text(text) = read_text(&cx.repo.path(file)) {
            check_mode(cx, &mut check, file);
            let keys = match read_text(&cx.repo.path(template)) {
                FileText::Text(t) => parse_template(&t).ok(),
                _ => None,
            }
            .unwrap_or_default();
            // Unknown keys count as secret: better a false alarm than a leak.
            // Read leniently: a malformed line elsewhere must not hide this file's secrets.
            for entry in read_env_file(&text).0 {
                let value = entry.value.expose().trim();
                let spec = keys.get(&entry.key);
                if value.len() < MIN_SECRET_LEN || spec.is_some_and(|k| !k.rule.is_secret()) {
                    continue;
                }
                // A placeholder left from the template is no secret (the `env` check fails
                // it): the committed template holds it by design.
                if is_template_placeholder(value) || spec.is_some_and(|k| k.example() == value) {
                    continue;
                }
                secrets.push((entry.key.clone(), file.clone(), value.to_string()));
            }
        }
    }
    let before = check.fail_count();
    scan_tracked(cx, &mut check, tracked, &secrets);
    if check.fail_count() == before {
        check.pass(
            At::none(),
            format!(
                "{} tracked files hold no env-file secret ({} values checked) and no private key",
                tracked.len(),
                secrets.len()
            ),
        );
    }
    check.finish()
}

/// The `<...>` form the templates use for values to fill in (`<postgres-url>`).
fn is_template_placeholder(value: &str) -> bool {
    value.starts_with('<')
        && value.ends_with('>')
        && !value[1..value.len() - 1].contains(['<', '>'])
}

#[cfg(unix)]
fn check_mode(cx: &Context, check: &mut Check, file: &str) {
    use std::os::unix::fs::PermissionsExt;
    if let Ok(meta) = std::fs::metadata(cx.repo.path(file))
        && meta.permissions().mode() & 0o077 != 0
    {
        check.fail(
            At::file(file),
            format!(
                "is readable by group or others (mode {:o})",
                meta.permissions().mode() & 0o777
            ),
            format!("chmod 600 {file}"),
        );
    }
}

#[cfg(not(unix))]
fn check_mode(_cx: &Context, _check: &mut Check, _file: &str) {}

fn scan_tracked(
    cx: &Context,
    check: &mut Check,
    tracked: &[String],
    secrets: &[(String, String, String)],
) {
    for path in tracked {
        let full = cx.repo.path(path);
        if std::fs::metadata(&full).map_or(true, |m| !m.is_file() || m.len() > MAX_SCANNED_BYTES) {
            continue;
        }
        let Ok(bytes) = crate::files::read_capped(&full, MAX_SCANNED_BYTES) else {
            continue;
        };
        if bytes.contains(&0) {
            continue;
        }
        let text = String::from_utf8_lossy(&bytes);
        for (key, source, value) in secrets {
            if let Some(offset) = text.find(value.as_str()) {
                check.fail(
                    At::line(path, Some(line_of_offset(&text, offset))),
                    format!("holds the value of {key} from {source}"),
                    format!("remove it from {path} (and from the git history), then rotate {key}"),
                );
            }
        }
        let key_block = text
            .match_indices(KEY_BLOCK_START)
            .map(|(offset, _)| offset)
            .find(|&offset| {
                text[offset..]
                    .lines()
                    .next()
                    .is_some_and(|l| l.contains(KEY_BLOCK_END))
            });
        if let Some(offset) = key_block {
            check.fail(
                At::line(path, Some(line_of_offset(&text, offset))),
                "holds a private-key block",
                format!("remove the key from {path} and the history, then rotate it"),
            );
        }
    }
}
