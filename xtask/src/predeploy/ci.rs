//! `ci`: a workflow under `.github/workflows/` runs the README's test command, `cargo xtask
//! test` (directly, or through `.ci/run` when that script runs it), and zizmor and actionlint
//! find nothing in the workflows ([`super::workflow_lint`]). No workflow at all is a warning.

use super::Context;
use super::outcome::{At, Check, CheckResult};
use super::text::{FileText, read_text};
use super::workflow_lint::{self, WorkflowLinters};

const WORKFLOWS: &str = ".github/workflows";
const CI_SCRIPT: &str = ".ci/run";
const TEST_COMMAND: &str = "cargo xtask test";

pub(crate) fn check(cx: &Context) -> CheckResult {
    let mut check = Check::new(
        "ci",
        "a CI workflow runs `cargo xtask test`; zizmor and actionlint find nothing in the workflows",
    );
    let mut workflows: Vec<String> = std::fs::read_dir(cx.repo.path(WORKFLOWS))
        .map(|entries| {
            entries
                .filter_map(Result::ok)
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .filter(|n| n.ends_with(".yml") || n.ends_with(".yaml"))
                .map(|n| format!("{WORKFLOWS}/{n}"))
                .collect()
        })
        .unwrap_or_default();
    workflows.sort();
    if workflows.is_empty() {
        check.warn(
            At::file(WORKFLOWS),
            "no workflow: nothing runs the tests on push",
            format!("add a workflow that runs `{TEST_COMMAND}` (or {CI_SCRIPT})"),
        );
        return check.finish();
    }
    let script_runs_tests = match read_text(&cx.repo.path(CI_SCRIPT)) {
        FileText::Text(text) => text.lines().any(|l| runs(l, TEST_COMMAND)),
        _ => false,
    };
    for path in &workflows {
        let FileText::Text(text) = read_text(&cx.repo.path(path)) else {
            check.warn(
                At::file(path),
                "unreadable",
                "write workflows as UTF-8 YAML",
            );
            continue;
        };
        let found = text
            .lines()
            .enumerate()
            .find(|(_, l)| runs(l, TEST_COMMAND) || (script_runs_tests && runs(l, CI_SCRIPT)));
        if let Some((index, _)) = found {
            check.pass(
                At::line(path, Some(index + 1)),
                format!("runs {TEST_COMMAND}"),
            );
            return audited(check, cx);
        }
    }
    check.fail(
        At::file(&workflows[0]),
        format!("no workflow runs `{TEST_COMMAND}`"),
        format!("add a step `run: {TEST_COMMAND}` (or `run: {CI_SCRIPT}`)"),
    );
    audited(check, cx)
}

/// `check` with the workflow linters' findings added.
fn audited(mut check: Check, cx: &Context) -> CheckResult {
    let linters = match &cx.options.workflow_linters {
        Some(linters) => linters.clone(),
        None => WorkflowLinters::from_environment(),
    };
    workflow_lint::audit(&mut check, cx.repo, &linters);
    check.finish()
}

/// Whether a line runs `command` (not in a comment).
fn runs(line: &str, command: &str) -> bool {
    let code = line.split(" #").next().unwrap_or(line).trim_start();
    !code.starts_with('#') && code.contains(command)
}
