//! Rendering a report: a plain-text table for the terminal, a Markdown table for the CI job
//! summary. Both show every finding that is not a pass, and the passes as evidence.

use super::PredeployReport;
use crate::escape::markdown_inline as cell;
use crate::junit::{Suite, check_case};
use crate::verdict::Verdict;

/// The terminal table: check, verdict, evidence (`path:line message`), fix.
pub(crate) fn table(report: &PredeployReport) -> String {
    let id_width = report
        .checks
        .iter()
        .map(|c| c.id.len())
        .max()
        .unwrap_or(5)
        .max(5);
    let mut out = format!(
        "{:<id_width$}  {:<7} {}\n",
        "check", "verdict", "evidence / fix"
    );
    for check in &report.checks {
        let mut first = true;
        for evidence in &check.evidence {
            let head = if first { check.id.as_str() } else { "" };
            let verdict = if first { check.verdict.label() } else { "" };
            let location = evidence.location();
            let mark = if evidence.verdict == check.verdict || first {
                ""
            } else {
                "· "
            };
            let at = if location.is_empty() {
                String::new()
            } else {
                format!("{location}: ")
            };
            out.push_str(&format!(
                "{head:<id_width$}  {verdict:<7} {mark}{at}{}",
                evidence.message
            ));
            if evidence.verdict != Verdict::Pass && evidence.verdict != Verdict::Skip {
                out.push_str(&format!(" [{}]", evidence.verdict.label()));
            }
            out.push('\n');
            first = false;
        }
        if first {
            out.push_str(&format!(
                "{:<id_width$}  {:<7} {}\n",
                check.id,
                check.verdict.label(),
                check.verifies
            ));
        }
        if let Some(fix) = &check.fix {
            out.push_str(&format!("{:<id_width$}  {:<7} fix: {fix}\n", "", ""));
        }
    }
    let failed = report
        .checks
        .iter()
        .filter(|c| c.verdict == Verdict::Fail)
        .count();
    let warned = report
        .checks
        .iter()
        .filter(|c| c.verdict == Verdict::Warn)
        .count();
    out.push_str(&format!(
        "\npredeploy ({}): {} — {} checks, {failed} failed, {warned} warned\n",
        report.environment,
        report.verdict.label(),
        report.checks.len()
    ));
    out
}

/// The Markdown summary for `$GITHUB_STEP_SUMMARY`.
pub(crate) fn markdown(report: &PredeployReport) -> String {
    let mut out = format!(
        "## predeploy ({}): {}\n\n| check | verdict | evidence | fix |\n| --- | --- | --- | --- |\n",
        report.environment,
        report.verdict.label()
    );
    for check in &report.checks {
        let evidence: Vec<String> = check
            .evidence
            .iter()
            .filter(|e| check.verdict == Verdict::Pass || e.verdict != Verdict::Pass)
            .map(|e| {
                let location = e.location();
                if location.is_empty() {
                    cell(&e.message)
                } else {
                    format!("`{}` {}", cell(&location), cell(&e.message))
                }
            })
            .collect();
        out.push_str(&format!(
            "| {} | {} | {} | {} |\n",
            check.id,
            check.verdict.label(),
            evidence.join("<br>"),
            check.fix.as_deref().map(cell).unwrap_or_default()
        ));
    }
    out
}

/// The JUnit cases of a predeploy run.
pub fn junit_suite(report: &PredeployReport) -> Suite {
    Suite {
        name: format!("predeploy ({})", report.environment),
        cases: report
            .checks
            .iter()
            .map(|c| check_case("predeploy", c))
            .collect(),
    }
}
