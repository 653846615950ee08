//! The result types of `predeploy`, and the builder the checks fill.

use serde::{Deserialize, Serialize};

pub use crate::check::{CheckResult, Evidence};
use crate::verdict::Verdict;

/// Everything one `predeploy` run found. Saved as the `result` of the run record, so the
/// `report` task can render it later; [`evaluate`](super::evaluate) returns it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PredeployReport {
    /// The `--env` name, or `all`.
    pub environment: String,
    /// The overall verdict: any failed check fails.
    pub verdict: Verdict,
    /// Every check, in a fixed order, each run to the end.
    pub checks: Vec<CheckResult>,
}

impl PredeployReport {
    /// The check with this id.
    pub fn check(&self, id: &str) -> Option<&CheckResult> {
        self.checks.iter().find(|c| c.id == id)
    }
}

/// Where a finding is: a repository-relative path and maybe a line.
#[derive(Debug, Clone, Default)]
pub(crate) struct At {
    path: Option<String>,
    line: Option<usize>,
}

impl At {
    /// Nowhere in particular.
    pub(crate) fn none() -> At {
        At::default()
    }

    /// A whole file.
    pub(crate) fn file(path: impl AsRef<str>) -> At {
        At {
            path: Some(path.as_ref().replace('\\', "/")),
            line: None,
        }
    }

    /// `path:line`, `path` or `-`, for messages.
    pub(crate) fn describe(&self) -> String {
        match (&self.path, self.line) {
            (Some(path), Some(line)) => format!("{path}:{line}"),
            (Some(path), None) => path.clone(),
            _ => "-".into(),
        }
    }

    /// A line of a file (`None` keeps it file-wide).
    pub(crate) fn line(path: impl AsRef<str>, line: Option<usize>) -> At {
        At {
            line,
            ..At::file(path)
        }
    }
}

/// Collects the evidence of one check.
#[derive(Debug)]
pub(crate) struct Check {
    id: &'static str,
    verifies: &'static str,
    evidence: Vec<Evidence>,
}

impl Check {
    pub(crate) fn new(id: &'static str, verifies: &'static str) -> Check {
        Check {
            id,
            verifies,
            evidence: Vec::new(),
        }
    }

    fn push(&mut self, verdict: Verdict, at: At, message: String, fix: Option<String>) {
        self.evidence.push(Evidence {
            verdict,
            path: at.path,
            line: at.line,
            message,
            fix,
        });
    }

    /// Records something verified.
    pub(crate) fn pass(&mut self, at: At, message: impl Into<String>) {
        self.push(Verdict::Pass, at, message.into(), None);
    }

    /// Records something not verified because its input is absent, and that is allowed.
    pub(crate) fn skip(&mut self, at: At, message: impl Into<String>) {
        self.push(Verdict::Skip, at, message.into(), None);
    }

    /// Records something worth a look.
    pub(crate) fn warn(&mut self, at: At, message: impl Into<String>, fix: impl Into<String>) {
        self.push(Verdict::Warn, at, message.into(), Some(fix.into()));
    }

    /// Records a failure.
    pub(crate) fn fail(&mut self, at: At, message: impl Into<String>, fix: impl Into<String>) {
        self.push(Verdict::Fail, at, message.into(), Some(fix.into()));
    }

    /// Records a failure, or only a warning when `strict` is off.
    pub(crate) fn fail_if(
        &mut self,
        strict: bool,
        at: At,
        message: impl Into<String>,
        fix: impl Into<String>,
    ) {
        if strict {
            self.fail(at, message, fix);
        } else {
            self.warn(at, message, fix);
        }
    }

    /// How many findings failed so far.
    pub(crate) fn fail_count(&self) -> usize {
        self.evidence
            .iter()
            .filter(|e| e.verdict == Verdict::Fail)
            .count()
    }

    /// Whether anything failed so far.
    pub(crate) fn failed(&self) -> bool {
        self.evidence.iter().any(|e| e.verdict == Verdict::Fail)
    }

    /// The outcome: the worst verdict, and the fixes of the worst findings.
    pub(crate) fn finish(self) -> CheckResult {
        let verdict = if self.evidence.is_empty() {
            Verdict::Pass
        } else {
            Verdict::combine(self.evidence.iter().map(|e| e.verdict))
        };
        let mut fixes: Vec<&str> = Vec::new();
        for evidence in self.evidence.iter().filter(|e| e.verdict == verdict) {
            if let Some(fix) = evidence.fix.as_deref()
                && !fixes.contains(&fix)
            {
                fixes.push(fix);
            }
        }
        CheckResult {
            id: self.id.to_string(),
            verifies: self.verifies.to_string(),
            verdict,
            fix: (!fixes.is_empty()).then(|| fixes.join("; ")),
            evidence: self.evidence,
        }
    }
}
