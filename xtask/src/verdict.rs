//! Verdicts and the exit codes every task shares.

use serde::{Deserialize, Serialize};

/// Exit code of a task that ran and found something failing.
pub const EXIT_FAILED: u8 = 1;
/// Exit code of a task that could not run (bad usage, bad config, unreachable target or tool).
pub const EXIT_COULD_NOT_RUN: u8 = 2;

/// The outcome of one check, or of a whole task.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Verdict {
    /// Verified and fine.
    Pass,
    /// Not verified: the input it needs is absent, and that is allowed.
    Skip,
    /// Fine to proceed, but worth a look.
    Warn,
    /// Not fine: the task exits 1.
    Fail,
}

impl Verdict {
    /// Exit code for a task whose overall verdict is this one. Only `Fail` is non-zero.
    pub fn exit_code(self) -> u8 {
        match self {
            Verdict::Fail => EXIT_FAILED,
            Verdict::Pass | Verdict::Skip | Verdict::Warn => 0,
        }
    }

    /// The overall verdict of several: any failure fails, else any warning warns, else pass.
    /// Skips never turn a set into a pass on their own: all skipped is `Skip`.
    pub fn combine(verdicts: impl IntoIterator<Item = Verdict>) -> Verdict {
        let mut worst: Option<Verdict> = None;
        for verdict in verdicts {
            worst = Some(match worst {
                None => verdict,
                Some(Verdict::Skip) => verdict,
                Some(current) if verdict == Verdict::Skip => current,
                Some(current) => current.max(verdict),
            });
        }
        worst.unwrap_or(Verdict::Skip)
    }

    /// Upper-case label for tables.
    pub fn label(self) -> &'static str {
        match self {
            Verdict::Pass => "PASS",
            Verdict::Skip => "SKIP",
            Verdict::Warn => "WARN",
            Verdict::Fail => "FAIL",
        }
    }
}

impl std::fmt::Display for Verdict {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.label())
    }
}

#[cfg(test)]
mod tests {
    use super::Verdict::*;
    use super::*;

    #[test]
    fn any_failure_fails_the_whole() {
        assert_eq!(Verdict::combine([Pass, Warn, Fail, Skip]), Fail);
        assert_eq!(Verdict::combine([Skip, Fail]), Fail);
    }

    #[test]
    fn warnings_and_skips() {
        assert_eq!(Verdict::combine([Pass, Warn]), Warn);
        assert_eq!(Verdict::combine([Pass, Skip]), Pass);
        assert_eq!(Verdict::combine([Skip, Skip]), Skip);
        assert_eq!(Verdict::combine([]), Skip);
    }

    #[test]
    fn only_failure_exits_non_zero() {
        assert_eq!(Fail.exit_code(), 1);
        assert_eq!(Warn.exit_code(), 0);
        assert_eq!(Pass.exit_code(), 0);
    }
}
