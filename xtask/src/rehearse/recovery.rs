//! The rehearsal's backup and restore drill of its own local database, after smoke and overlap
//! wrote bookings into it: on the embedded SQLite default SQLite's online copy and a drill of
//! the copy ([`crate::backup::sqlite`]); on `--postgres` the same `pg_dump` and throwaway-
//! cluster drill as `backup` and `restore-drill`. Both save their records under `local`, and
//! the drill's RTO and RPO are printed.

use std::path::Path;

use super::{LOCAL_ENVIRONMENT, PhaseOutcome, phase_line};
use crate::backup::pg::PgConnection;
use crate::record::RunClock;
use crate::repo::Repo;
use crate::restore_drill::{DrillOutcome, print, save};
use crate::verdict::Verdict;

/// The local database the rehearsal's service runs on.
pub enum LocalDatabase<'a> {
    /// The embedded SQLite file.
    Sqlite(&'a Path),
    /// A PostgreSQL URL (the rehearsal's throwaway cluster).
    Postgres(&'a str),
}

/// Backs up `database` into `workdir/backups` and drills the backup: the `backup` and
/// `restore drill` phases.
pub fn rehearse(
    repo: &Repo,
    database: &LocalDatabase,
    workdir: &Path,
) -> anyhow::Result<Vec<PhaseOutcome>> {
    let dir = workdir.join("backups");
    let clock = RunClock::start("backup");
    let runtime = crate::http::runtime()?;
    let taken = match database {
        LocalDatabase::Sqlite(path) => {
            runtime.block_on(crate::backup::sqlite::take(path, LOCAL_ENVIRONMENT, &dir))
        }
        LocalDatabase::Postgres(url) => PgConnection::from_url(url, "the rehearsal's database")
            .and_then(|connection| crate::backup::take(&connection, LOCAL_ENVIRONMENT, &dir)),
    };
    let (manifest_path, manifest) = match taken {
        Ok(taken) => taken,
        Err(error) => {
            phase_line("backup", &format!("FAIL: {error:#}"));
            return Ok(vec![PhaseOutcome {
                phase: "backup",
                verdict: Verdict::Fail,
            }]);
        }
    };
    crate::backup::save(
        repo,
        clock,
        LOCAL_ENVIRONMENT,
        &manifest_path,
        manifest.clone(),
    )?;
    phase_line(
        "backup",
        &format!(
            "PASS ({}, {} bytes, {} rows)",
            manifest.server_version,
            manifest.size_bytes,
            manifest.row_counts.values().sum::<i64>()
        ),
    );

    let clock = RunClock::start("restore-drill");
    let mut out = std::io::stdout();
    let outcome: DrillOutcome = match database {
        LocalDatabase::Sqlite(_) => {
            let scratch = workdir.join("restored");
            runtime
                .block_on(crate::backup::sqlite::drill(&manifest_path, &scratch))?
                .1
        }
        LocalDatabase::Postgres(_) => {
            crate::restore_drill::drill(repo, &manifest_path, &mut std::io::sink())?
        }
    };
    print(&outcome, &manifest, &mut out)?;
    save(repo, clock, &manifest, &outcome)?;
    let verdict = outcome.verdict();
    phase_line(
        "restore drill",
        &format!(
            "{} (RTO {:.1}s, RPO {})",
            verdict.label(),
            outcome.rto.as_secs_f64(),
            crate::restore_drill::human(outcome.rpo)
        ),
    );
    Ok(vec![
        PhaseOutcome {
            phase: "backup",
            verdict: Verdict::Pass,
        },
        PhaseOutcome {
            phase: "restore drill",
            verdict,
        },
    ])
}
