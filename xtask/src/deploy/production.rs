//! The gate in front of `cargo xtask deploy --env production`. Production takes a release only
//! on the evidence `promote` requires ([`StagingEvidence::missing`]: staging GO at HEAD, the
//! 24-hour gate, the complete production checklist, staging's image), read the way promote
//! reads it (only records CI signed count). The one exception is `--first-deploy`: an app
//! with no machine yet, which promote needs once (blue-green has nothing to replace). A
//! refusal changes nothing and saves no record: a deploy record would stand for a release
//! that never happened.

use std::io::Write;

use anyhow::bail;

use super::{DeployResult, Options};
use crate::config::Environment;
use crate::flyctl::{Flyctl, failure_or_error};
use crate::promote::{StagingEvidence, TO, staging_evidence};
use crate::repo::Repo;
use crate::verdict::Verdict;

/// `None` when the deploy may go ahead; the refusal (exit 1, nothing deployed, nothing
/// recorded) when production lacks its evidence. `--first-deploy` outside production is an
/// error (exit 2).
pub fn gate(
    repo: &Repo,
    args: &Options,
    environment: &Environment,
    flyctl: &Flyctl,
    out: &mut dyn Write,
) -> anyhow::Result<Option<(Verdict, DeployResult)>> {
    if args.env != TO {
        if args.first_deploy {
            bail!(
                "--first-deploy is for production's first deploy (`--env {TO}`), not `--env {}`: drop the flag",
                args.env
            );
        }
        return Ok(None);
    }
    let missing = if args.first_deploy {
        first_deploy_missing(flyctl, &environment.app, out)?
    } else {
        evidence_missing(&staging_evidence(repo)?)
    };
    if missing.is_empty() {
        return Ok(None);
    }
    writeln!(
        out,
        "deploy --env {TO} refused: nothing was deployed and nothing recorded"
    )?;
    for line in &missing {
        writeln!(out, "  missing: {line}")?;
    }
    let mut result = DeployResult::new(&environment.app, &args.strategy);
    result.problems = missing;
    Ok(Some((Verdict::Fail, result)))
}

/// What production lacks for a deploy of HEAD: what promote would lack, each with its fix,
/// and how to deploy anyway the one time that is allowed.
pub fn evidence_missing(evidence: &StagingEvidence) -> Vec<String> {
    let mut missing = evidence.missing();
    if !missing.is_empty() {
        missing.push(
            "production takes a release on staging's evidence (`cargo xtask promote`); \
             `--first-deploy` only for an app with no machine yet"
                .to_string(),
        );
    }
    missing
}

/// `--first-deploy` holds only while the app has no machine.
fn first_deploy_missing(
    flyctl: &Flyctl,
    app: &str,
    out: &mut dyn Write,
) -> anyhow::Result<Vec<String>> {
    let machines = match flyctl.machines(app, out) {
        Ok(Some(machines)) => machines,
        Ok(None) => {
            writeln!(
                out,
                "(dry run: --first-deploy needs {app} to have no machine; checked when run)"
            )?;
            return Ok(Vec::new());
        }
        Err(error) => {
            let failure = failure_or_error(error)?;
            return Ok(vec![format!(
                "could not list the machines of {app} to check --first-deploy: {failure}"
            )]);
        }
    };
    let live = machines.iter().filter(|m| m.state != "destroyed").count();
    Ok(if live == 0 {
        Vec::new()
    } else {
        vec![format!(
            "--first-deploy: {app} already has {live} machine(s); later releases reach production \
             through `cargo xtask promote` (staging GO, the 24-hour gate, the checklist)"
        )]
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn holding() -> StagingEvidence {
        StagingEvidence {
            verdict: "GO".into(),
            reasons: Vec::new(),
            stability_holds: true,
            stability: "24 h watched".into(),
            checklist_complete: true,
            checklist: "complete".into(),
            image: Some("registry.fly.io/sist-cabanas-staging:0123abcd4567".into()),
            ignored_records: Vec::new(),
        }
    }

    #[test]
    fn the_evidence_promote_requires_lets_a_production_deploy_through() {
        assert_eq!(evidence_missing(&holding()), Vec::<String>::new());
    }

    #[test]
    fn each_missing_piece_of_evidence_is_named_with_the_way_forward() {
        let mut evidence = holding();
        evidence.stability_holds = false;
        evidence.checklist_complete = false;
        let missing = evidence_missing(&evidence).join("\n");
        assert!(
            missing.contains("the 24-hour gate does not hold"),
            "{missing}"
        );
        assert!(missing.contains("production checklist"), "{missing}");
        assert!(!missing.contains("staging's verdict"), "{missing}");
        assert!(missing.contains("--first-deploy"), "{missing}");
    }
}
