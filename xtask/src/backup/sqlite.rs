//! The embedded SQLite database's backup and restore drill, for `rehearse` on its default
//! database. The backup is SQLite's online copy, `VACUUM INTO 'file'`: it reads the database
//! in one read transaction while the service keeps writing, and writes a consistent, compact
//! copy (sqlite.org/lang_vacuum.html, "VACUUM INTO"). Restoring a SQLite backup is copying the
//! file back; the drill copies it into a scratch directory and checks it as the PostgreSQL
//! drill does: the checksum first, then `PRAGMA integrity_check`, the row count of every
//! table, and the no-overlap invariant by SQL.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Instant;

use anyhow::Context;
use chrono::Utc;
use sqlx::sqlite::SqliteConnectOptions;
use sqlx::{Connection, Row, SqliteConnection};

use super::{Manifest, Taken};
use crate::restore_drill::{
    DrillCheck, DrillOutcome, checksum, load, no_overlap_check, row_counts_check,
};

/// Pairs of active bookings of one accommodation whose half-open stays overlap (dates are
/// `YYYY-MM-DD` text, which orders as the dates do).
const OVERLAPS: &str = "SELECT a.code || '|' || b.code FROM reservations a JOIN reservations b \
    ON a.accommodation_id = b.accommodation_id AND a.id < b.id \
    AND a.status IN ('pre_reserved', 'confirmed') AND b.status IN ('pre_reserved', 'confirmed') \
    AND a.check_in < b.check_out AND b.check_in < a.check_out ORDER BY 1";

async fn open(path: &Path, read_only: bool) -> anyhow::Result<SqliteConnection> {
    let options = SqliteConnectOptions::new()
        .filename(path)
        .read_only(read_only);
    SqliteConnection::connect_with(&options)
        .await
        .with_context(|| format!("opening the SQLite database {}", path.display()))
}

/// Copies the database at `database` into `dir` with `VACUUM INTO` and writes its manifest
/// (counts read from the copy: the snapshot itself); returns the manifest's path and it.
pub async fn take(
    database: &Path,
    environment: &str,
    dir: &Path,
) -> anyhow::Result<(PathBuf, Manifest)> {
    std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    let started_at = Utc::now();
    let name = database
        .file_stem()
        .and_then(|s| s.to_str())
        .unwrap_or("cabanas")
        .to_string();
    let stem = format!("{name}-{}", started_at.format("%Y%m%dT%H%M%S%.3fZ"));
    let dump_file = format!("{stem}.sqlite");
    let copy = dir.join(&dump_file);
    let mut source = open(database, true).await?;
    sqlx::query("VACUUM INTO ?")
        .bind(copy.display().to_string())
        .execute(&mut source)
        .await
        .with_context(|| format!("VACUUM INTO {}", copy.display()))?;
    let server_version: String = sqlx::query_scalar("SELECT sqlite_version()")
        .fetch_one(&mut source)
        .await?;
    source.close().await?;
    let mut snapshot = open(&copy, true).await?;
    let row_counts = count_rows(&mut snapshot).await?;
    snapshot.close().await?;
    let taken = Taken {
        environment,
        database: name,
        server_version: format!("SQLite {server_version}"),
        row_counts,
        started_at,
    };
    taken.seal(dir, &stem, dump_file)
}

/// Rows per table, every table but SQLite's own.
async fn count_rows(connection: &mut SqliteConnection) -> anyhow::Result<BTreeMap<String, i64>> {
    let tables: Vec<String> = sqlx::query_scalar(
        "SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%' ORDER BY name",
    )
    .fetch_all(&mut *connection)
    .await?;
    let mut counts = BTreeMap::new();
    for table in tables {
        let quoted = format!("\"{}\"", table.replace('"', "\"\""));
        // The name comes from sqlite_master and is quoted as an identifier.
        let sql = sqlx::AssertSqlSafe(format!("SELECT count(*) FROM {quoted}"));
        let count: i64 = sqlx::query_scalar(sql)
            .fetch_one(&mut *connection)
            .await
            .with_context(|| format!("counting {table}"))?;
        counts.insert(table, count);
    }
    Ok(counts)
}

/// The drill of the SQLite backup `from` (its manifest or the file beside it), restored into
/// `scratch`.
pub async fn drill(from: &Path, scratch: &Path) -> anyhow::Result<(Manifest, DrillOutcome)> {
    let started = Instant::now();
    let started_at = Utc::now();
    let (manifest, dump) = load(from)?;
    let first = checksum(&manifest, &dump)?;
    let mut checks = vec![first.clone()];
    if first.passed {
        std::fs::create_dir_all(scratch)
            .with_context(|| format!("creating {}", scratch.display()))?;
        let restored = scratch.join("restored.sqlite");
        std::fs::copy(&dump, &restored)
            .with_context(|| format!("copying {} to {}", dump.display(), restored.display()))?;
        checks.extend(check_restored(&restored, &manifest).await?);
    }
    let outcome = DrillOutcome {
        checks,
        rto: started.elapsed(),
        rpo: started_at - manifest.started_at,
    };
    Ok((manifest, outcome))
}

async fn check_restored(restored: &Path, manifest: &Manifest) -> anyhow::Result<Vec<DrillCheck>> {
    let mut connection = match open(restored, false).await {
        Ok(connection) => connection,
        Err(error) => {
            return Ok(vec![DrillCheck {
                name: "restore",
                passed: false,
                evidence: format!("{error:#}"),
            }]);
        }
    };
    let mut checks = vec![DrillCheck {
        name: "restore",
        passed: true,
        evidence: format!("copied and opened as {}", restored.display()),
    }];
    let integrity: Vec<String> = sqlx::query("PRAGMA integrity_check")
        .fetch_all(&mut connection)
        .await?
        .iter()
        .map(|row| row.get::<String, _>(0))
        .collect();
    let intact = integrity == ["ok"];
    checks.push(DrillCheck {
        name: "integrity",
        passed: intact,
        evidence: if intact {
            "PRAGMA integrity_check: ok".to_string()
        } else {
            format!("PRAGMA integrity_check: {}", integrity.join("; "))
        },
    });
    let counts = count_rows(&mut connection).await?;
    checks.push(row_counts_check(&manifest.row_counts, &counts));
    let overlaps: Vec<String> = sqlx::query_scalar(OVERLAPS)
        .fetch_all(&mut connection)
        .await
        .context("checking the no-overlap invariant (is there a reservations table?)")?;
    checks.push(no_overlap_check(&overlaps));
    connection.close().await?;
    Ok(checks)
}
