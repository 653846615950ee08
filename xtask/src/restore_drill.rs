//! `cargo xtask restore-drill`: proves a backup restores. It checks the dump against its
//! manifest (size, sha256) before trusting it, restores it with `pg_restore` into a
//! throwaway local cluster ([`crate::pgcluster`]), and checks the result: the migrations are
//! the repository's, every table has the manifest's row count, and no two active bookings of
//! a cabin overlap. It reports the recovery time (RTO: the drill's start to a verified
//! database) and the recovery point (RPO: how old the restored data is).

mod record;

use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use anyhow::Context;
use chrono::Utc;

use crate::backup::pg::{PgConnection, Session};
use crate::backup::{Manifest, client_tool, count_rows, digest};
use crate::pgcluster::{PgBinaries, PgCluster};
use crate::repo::Repo;
use crate::verdict::Verdict;
pub use record::{DrillRecord, RecordedCheck, save};

/// Options of `cargo xtask restore-drill`, built from its flags by the command line.
#[derive(Debug, Clone)]
pub struct Options {
    /// The backup: its `.manifest.json`, or the `.dump` beside it.
    pub from: PathBuf,
}

/// One check of the drill.
#[derive(Debug, Clone, serde::Serialize)]
pub struct DrillCheck {
    /// What it checks.
    pub name: &'static str,
    /// Whether it held.
    pub passed: bool,
    /// What was found (differences named).
    pub evidence: String,
}

/// What a drill found.
#[derive(Debug, Clone)]
pub struct DrillOutcome {
    /// The checks, in the order they ran; a failed checksum stops the drill before restoring.
    pub checks: Vec<DrillCheck>,
    /// From the drill's start to a restored and checked database.
    pub rto: Duration,
    /// How old the restored data is: the drill's start minus the backup's snapshot time.
    pub rpo: chrono::Duration,
}

impl DrillOutcome {
    /// Pass when every check held.
    pub fn verdict(&self) -> Verdict {
        if self.checks.iter().all(|c| c.passed) {
            Verdict::Pass
        } else {
            Verdict::Fail
        }
    }
}

/// Runs the task: exit 0 when the backup restored and every check held, 1 when a check
/// failed, 2 when the drill could not run (no PostgreSQL binaries, unreadable manifest). The
/// record is saved under the backup's environment.
pub fn run(args: Options) -> anyhow::Result<Verdict> {
    let repo = Repo::discover()?;
    let clock = crate::record::RunClock::start("restore-drill");
    let (manifest, _) = load(&args.from)?;
    let outcome = drill(&repo, &args.from, &mut std::io::stderr())?;
    save(&repo, clock, &manifest, &outcome)?;
    Ok(outcome.verdict())
}

/// The manifest for `from` (a manifest, or the dump beside one).
fn manifest_path(from: &Path) -> PathBuf {
    match from.to_str().and_then(|s| s.strip_suffix(".dump")) {
        Some(stem) => PathBuf::from(format!("{stem}.manifest.json")),
        None => from.to_path_buf(),
    }
}

/// Reads the backup `from` (its manifest, or the dump beside one): the manifest and the dump's
/// path.
pub fn load(from: &Path) -> anyhow::Result<(Manifest, PathBuf)> {
    let manifest_path = manifest_path(from);
    let text = std::fs::read_to_string(&manifest_path)
        .with_context(|| format!("reading the manifest {}", manifest_path.display()))?;
    let manifest: Manifest = serde_json::from_str(&text)
        .with_context(|| format!("{} is not a backup manifest", manifest_path.display()))?;
    let dump = manifest_path
        .parent()
        .unwrap_or(Path::new("."))
        .join(&manifest.dump_file);
    Ok((manifest, dump))
}

/// The dump against its manifest's size and SHA-256: nothing restores from a dump that fails.
pub fn checksum(manifest: &Manifest, dump: &Path) -> anyhow::Result<DrillCheck> {
    let (size, sha256) = digest(dump)?;
    let intact = size == manifest.size_bytes && sha256 == manifest.sha256;
    Ok(DrillCheck {
        name: "checksum",
        passed: intact,
        evidence: if intact {
            format!(
                "{} matches its manifest ({size} bytes, sha256 {sha256})",
                dump.display()
            )
        } else {
            format!(
                "{} differs from its manifest: sha256 {} in the manifest, {sha256} on disk; size {} in the manifest, {size} on disk",
                dump.display(),
                manifest.sha256,
                manifest.size_bytes
            )
        },
    })
}

/// Runs the drill on the backup `from`, printing each check on `out`.
pub fn drill(repo: &Repo, from: &Path, out: &mut dyn Write) -> anyhow::Result<DrillOutcome> {
    let started = Instant::now();
    let started_at = Utc::now();
    let (manifest, dump) = load(from)?;
    let first = checksum(&manifest, &dump)?;
    let intact = first.passed;
    let mut checks = vec![first];
    if intact {
        restore_and_check(repo, &manifest, &dump, &mut checks)?;
    }
    let outcome = DrillOutcome {
        checks,
        rto: started.elapsed(),
        rpo: started_at - manifest.started_at,
    };
    print(&outcome, &manifest, out)?;
    Ok(outcome)
}

/// Prints each check, the RTO and RPO, and the verdict of a drill of `manifest`'s backup.
pub fn print(
    outcome: &DrillOutcome,
    manifest: &Manifest,
    out: &mut dyn Write,
) -> anyhow::Result<()> {
    for check in &outcome.checks {
        let mark = if check.passed { "PASS" } else { "FAIL" };
        writeln!(out, "{:<11} {mark}  {}", check.name, check.evidence)?;
    }
    writeln!(
        out,
        "RTO {:.1}s (drill start to a checked database); RPO {} (data as of {}, the backup's snapshot)",
        outcome.rto.as_secs_f64(),
        human(outcome.rpo),
        manifest.started_at.to_rfc3339()
    )?;
    writeln!(
        out,
        "restore-drill: {}",
        if outcome.verdict() == Verdict::Pass {
            "PASS"
        } else {
            "FAIL"
        }
    )?;
    Ok(())
}

/// A duration as `42s`, `17m` or `3h05m`.
pub fn human(duration: chrono::Duration) -> String {
    let seconds = duration.num_seconds().max(0);
    match seconds {
        s if s < 120 => format!("{s}s"),
        s if s < 7200 => format!("{}m", s / 60),
        s => format!("{}h{:02}m", s / 3600, (s % 3600) / 60),
    }
}

fn restore_and_check(
    repo: &Repo,
    manifest: &Manifest,
    dump: &Path,
    checks: &mut Vec<DrillCheck>,
) -> anyhow::Result<()> {
    let binaries = PgBinaries::find().context(
        "PostgreSQL server binaries not found (initdb, pg_ctl, postgres): install postgresql or set PG_BIN_DIR",
    )?;
    let (psql, pg_restore) = (client_tool("psql")?, client_tool("pg_restore")?);
    let cluster = PgCluster::start(&binaries)?;
    let server = PgConnection::from_url(cluster.url(), "the drill cluster's URL")?;
    server.query(&psql, "CREATE DATABASE drill")?;
    let restored = server.with_database("drill");
    let output = restored
        .command(&pg_restore)
        .args([
            "--no-owner",
            "--no-privileges",
            "--exit-on-error",
            "--dbname",
            "drill",
        ])
        .arg(dump)
        .output()
        .with_context(|| format!("starting {}", pg_restore.display()))?;
    let stderr = String::from_utf8_lossy(&output.stderr);
    checks.push(DrillCheck {
        name: "restore",
        passed: output.status.success(),
        evidence: if output.status.success() {
            format!(
                "pg_restore restored {} into a throwaway cluster",
                manifest.database
            )
        } else {
            format!("pg_restore failed: {}", crate::flyctl::tail(&stderr, 5))
        },
    });
    if !output.status.success() {
        return Ok(());
    }
    checks.push(migrations_check(repo, &restored, &psql)?);
    let mut session = Session::open(&restored, &psql)?;
    let counts = count_rows(&mut session)?;
    let overlaps = session.ask(OVERLAPS)?;
    session.close()?;
    checks.push(row_counts_check(&manifest.row_counts, &counts));
    let overlaps: Vec<String> = overlaps.into_iter().filter(|l| !l.is_empty()).collect();
    checks.push(no_overlap_check(&overlaps));
    drop(cluster);
    Ok(())
}

/// The anti-double-booking invariant on the restored data: `overlaps` are the pairs of
/// overlapping active bookings (`code|code`) the overlap query of its database found.
pub fn no_overlap_check(overlaps: &[String]) -> DrillCheck {
    DrillCheck {
        name: "no_overlap",
        passed: overlaps.is_empty(),
        evidence: if overlaps.is_empty() {
            "no two active bookings of one cabin overlap".to_string()
        } else {
            format!(
                "overlapping active bookings (code|code): {}",
                overlaps.join(", ")
            )
        },
    }
}

/// The restored row count of every table against the manifest's, differences named.
pub fn row_counts_check(
    promised: &std::collections::BTreeMap<String, i64>,
    counts: &std::collections::BTreeMap<String, i64>,
) -> DrillCheck {
    let differences: Vec<String> = promised
        .keys()
        .chain(counts.keys())
        .collect::<std::collections::BTreeSet<_>>()
        .into_iter()
        .filter(|t| promised.get(*t) != counts.get(*t))
        .map(|t| {
            let shown = |n: Option<&i64>| n.map_or("no table".to_string(), i64::to_string);
            format!(
                "{t}: {} in the manifest, {} restored",
                shown(promised.get(t)),
                shown(counts.get(t))
            )
        })
        .collect();
    DrillCheck {
        name: "row_counts",
        passed: differences.is_empty(),
        evidence: if differences.is_empty() {
            format!(
                "{} tables, {} rows, as in the manifest",
                counts.len(),
                counts.values().sum::<i64>()
            )
        } else {
            differences.join("; ")
        },
    }
}

/// Pairs of active bookings of one accommodation whose half-open stays overlap. Joining every
/// booking with every other of its cabin took 51 s for 100,000 bookings; so a window first
/// finds the cabins where a stay starts before an earlier one ended (one sort), and only their
/// bookings are paired to name the conflicts (0.7 s on the same data).
pub const OVERLAPS: &str = "WITH active AS MATERIALIZED ( \
    SELECT id, code, accommodation_id, check_in, check_out FROM reservations \
    WHERE status IN ('pre_reserved', 'confirmed')), \
  suspect AS MATERIALIZED ( \
    SELECT * FROM active WHERE accommodation_id IN ( \
      SELECT accommodation_id FROM ( \
        SELECT accommodation_id, check_in, max(check_out) OVER (PARTITION BY accommodation_id \
          ORDER BY check_in, id ROWS BETWEEN UNBOUNDED PRECEDING AND 1 PRECEDING) AS earlier_out \
        FROM active) ordered \
      WHERE check_in < earlier_out)) \
  SELECT a.code || '|' || b.code FROM suspect a JOIN suspect b \
    ON a.accommodation_id = b.accommodation_id AND a.id < b.id \
    AND daterange(a.check_in, a.check_out) && daterange(b.check_in, b.check_out) ORDER BY 1;";

/// The restored `_sqlx_migrations` against `backend/migrations/postgres`: every applied
/// migration succeeded and is one of the repository's; newer ones are pending (the service
/// applies them at start).
fn migrations_check(
    repo: &Repo,
    restored: &PgConnection,
    psql: &Path,
) -> anyhow::Result<DrillCheck> {
    let dir = repo.path("backend/migrations/postgres");
    let mut known: Vec<i64> = std::fs::read_dir(&dir)
        .with_context(|| format!("reading {}", dir.display()))?
        .filter_map(|e| {
            e.ok()?
                .file_name()
                .to_str()?
                .split('_')
                .next()?
                .parse()
                .ok()
        })
        .collect();
    known.sort();
    let applied = restored
        .query(
            psql,
            "SELECT version || '|' || success FROM _sqlx_migrations ORDER BY version",
        )
        .unwrap_or_default();
    let applied: Vec<(i64, bool)> = applied
        .lines()
        .filter_map(|l| {
            let (version, success) = l.split_once('|')?;
            Some((version.parse().ok()?, matches!(success, "t" | "true")))
        })
        .collect();
    let mut problems = Vec::new();
    if applied.is_empty() {
        problems.push("no applied migration (_sqlx_migrations is missing or empty)".to_string());
    }
    for (version, success) in &applied {
        if !success {
            problems.push(format!("migration {version} is recorded as failed"));
        }
        if !known.contains(version) {
            problems.push(format!(
                "migration {version} is not in backend/migrations/postgres"
            ));
        }
    }
    let pending: Vec<String> = known
        .iter()
        .filter(|v| !applied.iter().any(|(a, _)| a == *v))
        .map(i64::to_string)
        .collect();
    Ok(DrillCheck {
        name: "migrations",
        passed: problems.is_empty(),
        evidence: if problems.is_empty() {
            let pending = if pending.is_empty() {
                String::new()
            } else {
                format!(
                    "; pending (applied at the service's start): {}",
                    pending.join(", ")
                )
            };
            format!(
                "{} applied, all of the repository's{pending}",
                applied.len()
            )
        } else {
            problems.join("; ")
        },
    })
}
