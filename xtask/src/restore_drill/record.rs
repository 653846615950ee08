//! What a restore drill saves: its record, read by `report` and `status` for the last drill's
//! RTO and RPO and the checklist's "restore tested" item.

use std::path::PathBuf;

use chrono::Utc;
use serde::{Deserialize, Serialize};

use super::{DrillOutcome, human};
use crate::backup::Manifest;
use crate::repo::Repo;

/// The record a drill saves (`task = "restore-drill"`, under the backup's environment):
/// `report` and `status` show its RTO and RPO, and the checklist's "restore tested" item is
/// computed from the newest one.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct DrillRecord {
    /// The drilled backup's dump file.
    pub dump_file: String,
    /// When the backup's snapshot was taken.
    pub backup_taken_at: chrono::DateTime<Utc>,
    /// RTO in milliseconds.
    pub rto_ms: u64,
    /// RPO in seconds.
    pub rpo_seconds: i64,
    /// The checks, in order.
    pub checks: Vec<RecordedCheck>,
}

/// A drill check as recorded.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct RecordedCheck {
    /// What it checks.
    pub name: String,
    /// Whether it held.
    pub passed: bool,
    /// What was found.
    pub evidence: String,
}

impl DrillRecord {
    /// The record of `outcome`, a drill of the backup `manifest`.
    pub fn of(outcome: &DrillOutcome, manifest: &Manifest) -> DrillRecord {
        DrillRecord {
            dump_file: manifest.dump_file.clone(),
            backup_taken_at: manifest.started_at,
            rto_ms: outcome.rto.as_millis() as u64,
            rpo_seconds: outcome.rpo.num_seconds(),
            checks: outcome
                .checks
                .iter()
                .map(|c| RecordedCheck {
                    name: c.name.to_string(),
                    passed: c.passed,
                    evidence: c.evidence.clone(),
                })
                .collect(),
        }
    }
}

/// Saves the record of a drill of `manifest`'s backup (the drill's own ending, and
/// `rehearse`'s).
pub fn save(
    repo: &Repo,
    clock: crate::record::RunClock,
    manifest: &Manifest,
    outcome: &DrillOutcome,
) -> anyhow::Result<Option<PathBuf>> {
    let verdict = outcome.verdict();
    let record = clock.finish(
        repo,
        &manifest.environment,
        verdict,
        DrillRecord::of(outcome, manifest),
    );
    let summary = format!(
        "### restore drill of {}: {}\n\nRTO {:.1}s, RPO {}\n",
        manifest.dump_file,
        verdict.label(),
        outcome.rto.as_secs_f64(),
        human(outcome.rpo)
    );
    let ending = crate::finish::Ending::streamed(&summary, true, false);
    crate::finish::finish(repo, &record, ending, &mut std::io::stderr())
}
