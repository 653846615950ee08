//! What a deploy or rollback is held to around flyctl: the other tasks ([`Gates`]:
//! predeploy before, smoke after) and the readiness poll. The [`Gates`] seam lets tests decide
//! the other tasks' outcomes; `crate::deploy::gates::TaskGates` runs the real ones.

use std::io::Write;
use std::time::Duration;

use crate::readiness::Readiness;
use crate::repo::Repo;
use crate::verdict::Verdict;

/// Path polled until the new release answers 200.
pub const READYZ_PATH: &str = cabanas_contract::routes::READYZ;

/// The other tasks a deploy runs.
pub trait Gates {
    /// The predeploy checks of environment `env` (`cargo xtask predeploy --env ENV`); their
    /// record is saved only when `record` is set (a dry run records nothing: a saved predeploy
    /// would advance the decision map).
    fn predeploy(&self, repo: &Repo, env: &str, record: bool) -> anyhow::Result<Verdict>;
    /// The smoke test against environment `env` (`cargo xtask smoke --env ENV`).
    fn smoke(&self, repo: &Repo, env: &str) -> anyhow::Result<Verdict>;
    /// The calling task prints its record as JSON on stdout (`--json`, chosen by the command
    /// line; a task called by another task never does).
    fn json(&self) -> bool {
        false
    }
}

/// What a release answered once it was proven to serve: readiness, then smoke.
#[derive(Debug, Clone, PartialEq)]
pub struct AfterServing {
    /// Whether readiness answered 200 in time.
    pub readiness: Verdict,
    /// The smoke verdict (`None` when readiness failed or smoke could not run).
    pub smoke: Option<Verdict>,
    /// Why the release fails, if it does.
    pub problem: Option<String>,
}

/// Polls readiness at `url`, then runs smoke against `env`. `subject` names what was deployed
/// in the problem ("the new release", "production", "the rollback"). Deploy, promote and
/// rollback all hold a serving release to this.
pub fn ready_and_smoke(
    repo: &Repo,
    gates: &dyn Gates,
    env: &str,
    url: &str,
    subject: &str,
    timeout: Duration,
    out: &mut dyn Write,
) -> anyhow::Result<AfterServing> {
    let (readiness, evidence) = wait_ready(url, timeout, out)?;
    if readiness == Verdict::Fail {
        return Ok(AfterServing {
            readiness,
            smoke: None,
            problem: Some(format!("{subject} is not ready: {evidence}")),
        });
    }
    let (smoke, problem) = match gates.smoke(repo, env) {
        Ok(Verdict::Fail) => (
            Some(Verdict::Fail),
            Some(format!(
                "smoke fails against {subject}: see `cargo xtask smoke --env {env}`"
            )),
        ),
        Ok(smoke) => (Some(smoke), None),
        Err(error) => (
            None,
            Some(format!("smoke could not run against {subject}: {error:#}")),
        ),
    };
    Ok(AfterServing {
        readiness,
        smoke,
        problem,
    })
}

/// Polls the readiness of the service at `base_url` until it answers 200 or `timeout` passes.
/// `Fail` carries the last status or error seen.
pub fn wait_ready(
    base_url: &str,
    timeout: Duration,
    out: &mut dyn Write,
) -> anyhow::Result<(Verdict, String)> {
    let url = crate::readiness::url(base_url);
    writeln!(
        out,
        "waiting up to {}s for {url} to answer 200",
        timeout.as_secs()
    )?;
    let (verdict, evidence) = match crate::readiness::poll_blocking(base_url, timeout, |_| None)? {
        Readiness::Ready { after, .. } => (
            Verdict::Pass,
            format!("{url} answered 200 after {:.1}s", after.as_secs_f64()),
        ),
        Readiness::TimedOut { last, .. } | Readiness::Gone(last) => (
            Verdict::Fail,
            format!(
                "{url} not ready after {}s (last: {last})",
                timeout.as_secs()
            ),
        ),
    };
    let said = if verdict == Verdict::Pass {
        "ready"
    } else {
        "not ready"
    };
    writeln!(out, "{said}: {evidence}")?;
    Ok((verdict, evidence))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_unreachable_service_is_not_ready() {
        let mut out = Vec::new();
        let (verdict, evidence) =
            wait_ready("http://127.0.0.1:9", Duration::from_secs(1), &mut out).unwrap();
        assert_eq!(verdict, Verdict::Fail);
        assert!(evidence.contains("not ready after 1s"), "{evidence}");
    }
}
