//! JUnit XML for CI test reporters (`--junit PATH` on predeploy, smoke and overlap): one test
//! case per check or threshold, a `<failure>` with the message for each that failed, a
//! `<skipped>` for each that was skipped. Warnings pass, with their message in `system-out`.
//!
//! This module knows cases and checks, not tasks: each task turns its own report into a
//! [`Suite`] (`predeploy::junit_suite`, `smoke::junit_suite`, `overlap::junit_suite`).

use std::fmt::Write as _;
use std::path::Path;

use anyhow::Context;

use crate::check::{CheckResult, Evidence};
use crate::escape;
use crate::verdict::Verdict;

/// One test case.
#[derive(Debug, Clone, PartialEq)]
pub struct Case {
    /// Groups cases in reporters: `predeploy`, `smoke.checks`, `smoke.thresholds`, ...
    pub classname: String,
    /// The check or threshold.
    pub name: String,
    /// Its verdict.
    pub verdict: Verdict,
    /// What was found (the failure message for a failure).
    pub message: String,
}

/// A suite: one task run.
#[derive(Debug, Clone, PartialEq)]
pub struct Suite {
    /// The task and environment, `smoke (staging)`.
    pub name: String,
    /// Its cases.
    pub cases: Vec<Case>,
}

impl Suite {
    /// The suite as a JUnit XML document.
    pub fn to_xml(&self) -> String {
        let count = |v: Verdict| self.cases.iter().filter(|c| c.verdict == v).count();
        let mut xml = String::from("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n");
        let _ = writeln!(
            xml,
            "<testsuites tests=\"{}\" failures=\"{}\" skipped=\"{}\">",
            self.cases.len(),
            count(Verdict::Fail),
            count(Verdict::Skip)
        );
        let _ = writeln!(
            xml,
            "  <testsuite name=\"{}\" tests=\"{}\" failures=\"{}\" errors=\"0\" skipped=\"{}\">",
            escape::xml(&self.name),
            self.cases.len(),
            count(Verdict::Fail),
            count(Verdict::Skip)
        );
        for case in &self.cases {
            let _ = write!(
                xml,
                "    <testcase classname=\"{}\" name=\"{}\"",
                escape::xml(&case.classname),
                escape::xml(&case.name)
            );
            let message = escape::xml(&case.message);
            match case.verdict {
                Verdict::Pass if case.message.is_empty() => xml.push_str("/>\n"),
                Verdict::Pass => {
                    let _ = writeln!(
                        xml,
                        ">\n      <system-out>{message}</system-out>\n    </testcase>"
                    );
                }
                Verdict::Warn => {
                    let _ = writeln!(
                        xml,
                        ">\n      <system-out>WARN: {message}</system-out>\n    </testcase>"
                    );
                }
                Verdict::Skip => {
                    let _ = writeln!(
                        xml,
                        ">\n      <skipped message=\"{message}\"/>\n    </testcase>"
                    );
                }
                Verdict::Fail => {
                    let _ = writeln!(
                        xml,
                        ">\n      <failure message=\"{message}\">{message}</failure>\n    </testcase>"
                    );
                }
            }
        }
        xml.push_str("  </testsuite>\n</testsuites>\n");
        xml
    }

    /// Writes the XML to `path`, creating its directory.
    pub fn write(&self, path: &Path) -> anyhow::Result<()> {
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir)
                .with_context(|| format!("creating {} for --junit", dir.display()))?;
        }
        std::fs::write(path, self.to_xml())
            .with_context(|| format!("writing the JUnit report {}", path.display()))
    }
}

/// A check of any task as a case: its findings (those carrying its verdict) and the fix.
pub fn check_case(classname: &str, check: &CheckResult) -> Case {
    let mut lines: Vec<String> = check
        .evidence
        .iter()
        .filter(|e| e.verdict == check.verdict || check.verdict == Verdict::Pass)
        .map(Evidence::located)
        .collect();
    if check.verdict != Verdict::Pass
        && let Some(fix) = &check.fix
    {
        lines.push(format!("fix: {fix}"));
    }
    Case {
        classname: classname.to_string(),
        name: format!("{}: {}", check.id, check.verifies),
        verdict: check.verdict,
        message: lines.join("\n"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn text_is_escaped_and_control_characters_dropped() {
        assert_eq!(
            escape::xml("a<b>&\"c'\u{0}\nd"),
            "a&lt;b&gt;&amp;&quot;c&apos;&#10;d"
        );
    }
}
