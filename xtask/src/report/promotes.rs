//! Promote records as production's deploys. `cargo xtask promote` deploys staging's verified
//! image to production and proves it serves, exactly as a deploy does, so for the map,
//! `status` and `report` a promote that reached flyctl is a deploy: it changes the release
//! serving (network results older than it are stale), it is the deploy step's evidence, and a
//! rollback it ran fails that step. A promote refused before flyctl ran changed nothing and is
//! not read here (the refusal itself stays in its record).

use std::cmp::Reverse;

use anyhow::Result;
use chrono::{DateTime, Utc};
use serde::Deserialize;

use super::promoted::PromotedView;
use super::records::{DeployView, RecordSet, ReleaseRefView, RollbackView, Saved};
use crate::record::RunRecord;
use crate::verdict::Verdict;

/// The task whose records put staging's image on production.
pub const PROMOTE_TASK: &str = "promote";

/// The `result` of a `promote` record (`PromoteResult`), as far as the map reads it.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default)]
struct PromoteView {
    image: Option<String>,
    strategy: Option<String>,
    refused: Vec<String>,
    release: Option<ReleaseRefView>,
    verification: Option<ProofView>,
    smoke: Option<Verdict>,
    rolled_back: Option<RollbackView>,
    problems: Vec<String>,
}

/// The verdict of a `Verification`.
#[derive(Debug, Clone, Deserialize)]
struct ProofView {
    verdict: Verdict,
}

impl RecordSet {
    /// The runs of `environment` that deployed (deploys, and promotes that reached flyctl),
    /// newest first, each with its rank.
    pub(super) fn deploys(
        &self,
        environment: &str,
    ) -> Result<Vec<(DateTime<Utc>, Saved<DeployView>)>> {
        let mut all = self.all_of::<DeployView>("deploy", environment)?;
        for (rank, promote) in self.all_of::<PromoteView>(PROMOTE_TASK, environment)? {
            if promote.result.refused.is_empty() {
                all.push((rank, as_deploy(promote)));
            }
        }
        all.sort_by_key(|(rank, _)| Reverse(*rank));
        Ok(all)
    }

    /// The newest of [`RecordSet::deploys`].
    pub(super) fn latest_deploy(&self, environment: &str) -> Result<Option<Saved<DeployView>>> {
        Ok(self
            .deploys(environment)?
            .into_iter()
            .next()
            .map(|(_, d)| d))
    }
}

fn as_deploy(promote: Saved<PromoteView>) -> Saved<DeployView> {
    let p = promote.result;
    RunRecord {
        schema_version: promote.schema_version,
        task: promote.task,
        environment: promote.environment,
        git: promote.git,
        started_at: promote.started_at,
        duration_ms: promote.duration_ms,
        tool_version: promote.tool_version,
        verdict: promote.verdict,
        result: DeployView {
            strategy: p.strategy,
            fly_user: None,
            release: p.release,
            rolled_back: p.rolled_back,
            problems: p.problems,
            promoted: Some(PromotedView {
                image: p.image,
                proof: p.verification.map(|v| v.verdict),
                smoke: p.smoke,
            }),
        },
    }
}
