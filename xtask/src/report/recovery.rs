//! Backups and restore drills as `report` and `status` show them, read from the `backup` and
//! `restore-drill` records: the newest backup's age, the last drill's RTO and RPO, and the two
//! production checklist items they prove ("daily backups", "restore tested"), so those are
//! computed, never ticked by hand.

use chrono::{DateTime, Duration, Utc};
use serde::Serialize;

use super::checklist::Evidence;
use super::records::RecordSet;
use crate::backup::BackupRecord;
use crate::restore_drill::{DrillRecord, human};
use crate::verdict::Verdict;

/// A daily backup is late after this many hours (a day, plus slack for a nightly job that ran
/// a little later than the night before).
pub const BACKUP_MAX_AGE_HOURS: i64 = 26;

/// A restore counts as tested when a drill passed within this many days (the nightly drill,
/// with a week of slack for a broken night).
pub const DRILL_MAX_AGE_DAYS: i64 = 8;

/// The checklist key of the "daily backups" item.
pub const BACKUPS_KEY: &str = "backups";
/// The checklist key of the "restore tested" item.
pub const RESTORE_KEY: &str = "restore-drill";

/// Backups and drills of one environment.
#[derive(Debug, Clone, Serialize)]
pub struct RecoveryView {
    /// The environment.
    pub environment: String,
    /// The newest backup, when one was recorded.
    pub backup: Option<BackupSeen>,
    /// The newest restore drill of one of its backups, when one was recorded.
    pub drill: Option<DrillSeen>,
    /// Whether a backup is younger than [`BACKUP_MAX_AGE_HOURS`], and why.
    pub daily_backups: Proof,
    /// Whether the newest drill passed within [`DRILL_MAX_AGE_DAYS`], and why.
    pub restore_tested: Proof,
}

/// The newest backup.
#[derive(Debug, Clone, Serialize)]
pub struct BackupSeen {
    /// Its snapshot time, `YYYY-MM-DD HH:MM UTC`.
    pub taken_at: String,
    /// How old it is (`5h02m`).
    pub age: String,
    /// The database dumped.
    pub database: String,
    /// The dump's size in bytes.
    pub size_bytes: u64,
}

/// The newest restore drill.
#[derive(Debug, Clone, Serialize)]
pub struct DrillSeen {
    /// When it ran, `YYYY-MM-DD HH:MM UTC`.
    pub at: String,
    /// How long ago.
    pub age: String,
    /// `PASS` or `FAIL`.
    pub verdict: String,
    /// Its recovery time (`12.3s`).
    pub rto: String,
    /// Its recovery point (`3h05m`).
    pub rpo: String,
}

/// A computed checklist item.
#[derive(Debug, Clone, Serialize)]
pub struct Proof {
    /// Whether the records prove it.
    pub done: bool,
    /// The sentence saying why.
    pub evidence: String,
}

impl RecoveryView {
    /// The checklist evidence these records give.
    pub fn evidence(&self) -> Evidence {
        let mut evidence = Evidence::new();
        for (key, proof) in [
            (BACKUPS_KEY, &self.daily_backups),
            (RESTORE_KEY, &self.restore_tested),
        ] {
            evidence.insert(key.to_string(), (proof.done, proof.evidence.clone()));
        }
        evidence
    }
}

fn time(at: DateTime<Utc>) -> String {
    at.format("%Y-%m-%d %H:%M UTC").to_string()
}

/// The view of `environment` at `now`.
pub fn view(
    records: &RecordSet,
    environment: &str,
    now: DateTime<Utc>,
) -> anyhow::Result<RecoveryView> {
    let backup = records
        .all_of::<BackupRecord>("backup", environment)?
        .into_iter()
        .map(|(_, r)| r)
        .find(|r| r.verdict == Verdict::Pass);
    let drill = records
        .all_of::<DrillRecord>("restore-drill", environment)?
        .into_iter()
        .map(|(_, r)| r)
        .next();
    let daily_backups = match &backup {
        None => Proof {
            done: false,
            evidence: format!(
                "no backup of {environment} recorded: `cargo xtask backup --env {environment} --to DIR` (nightly in .github/workflows/backup.yml)"
            ),
        },
        Some(b) => {
            let age = now - b.result.manifest.started_at;
            Proof {
                done: age < Duration::hours(BACKUP_MAX_AGE_HOURS),
                evidence: format!(
                    "newest backup of {environment} {} old (needs under {BACKUP_MAX_AGE_HOURS}h)",
                    human(age)
                ),
            }
        }
    };
    let restore_tested = match &drill {
        None => Proof {
            done: false,
            evidence: format!(
                "no restore drill of a {environment} backup recorded: `cargo xtask restore-drill --from BACKUP`"
            ),
        },
        Some(d) => {
            let age = now - d.started_at;
            let recent = age < Duration::days(DRILL_MAX_AGE_DAYS);
            Proof {
                done: d.verdict == Verdict::Pass && recent,
                evidence: format!(
                    "last restore drill {} {} ago (needs a pass within {DRILL_MAX_AGE_DAYS} days), RTO {:.1}s",
                    d.verdict.label(),
                    human(age),
                    d.result.rto_ms as f64 / 1000.0
                ),
            }
        }
    };
    Ok(RecoveryView {
        environment: environment.to_string(),
        backup: backup.map(|b| BackupSeen {
            taken_at: time(b.result.manifest.started_at),
            age: human(now - b.result.manifest.started_at),
            database: b.result.manifest.database.clone(),
            size_bytes: b.result.manifest.size_bytes,
        }),
        drill: drill.map(|d| DrillSeen {
            at: time(d.started_at),
            age: human(now - d.started_at),
            verdict: d.verdict.label().to_string(),
            rto: format!("{:.1}s", d.result.rto_ms as f64 / 1000.0),
            rpo: human(Duration::seconds(d.result.rpo_seconds)),
        }),
        daily_backups,
        restore_tested,
    })
}

/// The lines `status` prints.
pub fn lines(view: &RecoveryView) -> Vec<String> {
    let backup = match &view.backup {
        Some(b) => format!(
            "newest backup {} old ({}, {} bytes, taken {})",
            b.age, b.database, b.size_bytes, b.taken_at
        ),
        None => "no backup recorded".to_string(),
    };
    let drill = match &view.drill {
        Some(d) => format!(
            "last restore drill {} {} ago: RTO {}, RPO {}",
            d.verdict, d.age, d.rto, d.rpo
        ),
        None => "no restore drill recorded".to_string(),
    };
    vec![backup, drill]
}
