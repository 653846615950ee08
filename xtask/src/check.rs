//! The one result type every check of every task saves: predeploy's checks, smoke's checks
//! and thresholds, overlap's probes. The report reads them all through one view
//! (`report::views::CheckView`) and never guesses which task wrote one.

use serde::{Deserialize, Serialize};

use crate::verdict::Verdict;

/// One check: what it verified, the verdict, the evidence and the fix.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CheckResult {
    /// Stable id, e.g. `fly_toml`, `readyz`, `p95 latency`, `back_to_back`.
    pub id: String,
    /// What it verifies, in one sentence.
    pub verifies: String,
    /// The worst verdict of its evidence (or the check's own, for one-finding checks).
    pub verdict: Verdict,
    /// What was found, each with the place it was found when there is one.
    pub evidence: Vec<Evidence>,
    /// How to fix the failures (or warnings), when there are any.
    pub fix: Option<String>,
}

impl CheckResult {
    /// A check whose evidence is one observation: a status seen, a sentence measured.
    pub fn observed(
        id: impl Into<String>,
        verifies: impl Into<String>,
        verdict: Verdict,
        message: impl Into<String>,
        fix: Option<String>,
    ) -> CheckResult {
        CheckResult {
            id: id.into(),
            verifies: verifies.into(),
            verdict,
            evidence: vec![Evidence {
                verdict,
                path: None,
                line: None,
                message: message.into(),
                fix: fix.clone(),
            }],
            fix,
        }
    }

    /// The evidence as one line for terminals and tables: the findings that are not passes
    /// (with their places), else every finding; joined with `; `.
    pub fn summary(&self) -> String {
        let worth_a_look: Vec<&Evidence> = self
            .evidence
            .iter()
            .filter(|e| e.verdict != Verdict::Pass)
            .collect();
        let shown = if worth_a_look.is_empty() {
            self.evidence.iter().collect()
        } else {
            worth_a_look
        };
        shown
            .iter()
            .map(|e| e.located())
            .collect::<Vec<_>>()
            .join("; ")
    }
}

/// One finding of a check.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Evidence {
    /// This finding's verdict.
    pub verdict: Verdict,
    /// Repository-relative path, `/`-separated.
    pub path: Option<String>,
    /// 1-based line in `path`.
    pub line: Option<usize>,
    /// What was found. Never holds a secret value.
    pub message: String,
    /// How to fix it, for failures and warnings.
    pub fix: Option<String>,
}

impl Evidence {
    /// `path:line`, `path`, or empty.
    pub fn location(&self) -> String {
        match (&self.path, self.line) {
            (Some(path), Some(line)) => format!("{path}:{line}"),
            (Some(path), None) => path.clone(),
            _ => String::new(),
        }
    }

    /// `path:line: message`, or the message alone when it has no place.
    pub fn located(&self) -> String {
        match self.location() {
            at if at.is_empty() => self.message.clone(),
            at => format!("{at}: {}", self.message),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn finding(
        verdict: Verdict,
        path: Option<&str>,
        line: Option<usize>,
        message: &str,
    ) -> Evidence {
        Evidence {
            verdict,
            path: path.map(str::to_string),
            line,
            message: message.to_string(),
            fix: None,
        }
    }

    #[test]
    fn an_observed_check_carries_its_verdict_on_its_one_finding() {
        let check = CheckResult::observed(
            "readyz",
            "GET /api/v1/readyz answers 200",
            Verdict::Fail,
            "503: migrations pending",
            Some("run `cabanas migrate`".into()),
        );
        assert_eq!(check.evidence.len(), 1);
        assert_eq!(check.evidence[0].verdict, Verdict::Fail);
        assert_eq!(check.summary(), "503: migrations pending");
    }

    #[test]
    fn the_summary_shows_what_is_worth_a_look_with_its_place() {
        let check = CheckResult {
            id: "fly_toml".into(),
            verifies: "fly.toml".into(),
            verdict: Verdict::Fail,
            evidence: vec![
                finding(Verdict::Pass, Some("fly.toml"), None, "parses"),
                finding(Verdict::Fail, Some("fly.toml"), Some(12), "no checks"),
                finding(Verdict::Warn, None, None, "no region"),
            ],
            fix: None,
        };
        assert_eq!(check.summary(), "fly.toml:12: no checks; no region");
        let passing = CheckResult {
            evidence: vec![finding(Verdict::Pass, Some("fly.toml"), None, "parses")],
            ..check
        };
        assert_eq!(passing.summary(), "fly.toml: parses");
    }
}
