//! The embedded SQLite database's backup (`VACUUM INTO`) and restore drill, as `rehearse` runs
//! them: a backup restores and passes every check; a tampered copy fails its checksum before
//! it is restored; a backup holding overlapping bookings fails the invariant.

use std::path::Path;

use crate::support::failed_checks;
use sqlx::{Connection, SqliteConnection};
use xtask::backup::sqlite::{drill, take};
use xtask::verdict::Verdict;

const SCHEMA: &str = "CREATE TABLE accommodations (id INTEGER PRIMARY KEY, slug TEXT NOT NULL);
CREATE TABLE reservations (id INTEGER PRIMARY KEY, code TEXT NOT NULL UNIQUE,
  accommodation_id INTEGER NOT NULL, check_in TEXT NOT NULL, check_out TEXT NOT NULL,
  status TEXT NOT NULL);
INSERT INTO accommodations (slug) VALUES ('a'), ('b');
INSERT INTO reservations (code, accommodation_id, check_in, check_out, status) VALUES
  ('R1', 1, '2027-01-01', '2027-01-05', 'confirmed'),
  ('R2', 1, '2027-01-05', '2027-01-08', 'pre_reserved'),
  ('R3', 1, '2027-01-02', '2027-01-04', 'cancelled'),
  ('R4', 2, '2027-01-01', '2027-01-03', 'confirmed');";

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Runtime::new().unwrap()
}

fn execute(path: &Path, sql: &str) {
    runtime().block_on(async {
        let url = format!("sqlite:{}?mode=rwc", path.display());
        let mut connection = SqliteConnection::connect(&url).await.unwrap();
        sqlx::raw_sql(sqlx::AssertSqlSafe(sql.to_string()))
            .execute(&mut connection)
            .await
            .unwrap();
        connection.close().await.unwrap();
    });
}

#[test]
fn an_online_copy_restores_and_a_tampered_or_double_booked_one_fails() {
    let dir = tempfile::tempdir().unwrap();
    let database = dir.path().join("cabanas.db");
    execute(&database, SCHEMA);
    let backups = dir.path().join("backups");
    let (manifest_path, manifest) = runtime()
        .block_on(take(&database, "local", &backups))
        .unwrap();
    assert_eq!(manifest.row_counts["reservations"], 4);
    assert_eq!(manifest.row_counts["accommodations"], 2);
    assert!(
        manifest.server_version.starts_with("SQLite 3."),
        "{manifest:?}"
    );
    let (_, outcome) = runtime()
        .block_on(drill(&manifest_path, &dir.path().join("scratch1")))
        .unwrap();
    assert_eq!(outcome.verdict(), Verdict::Pass, "{:?}", outcome.checks);
    let names: Vec<&str> = outcome.checks.iter().map(|c| c.name).collect();
    assert_eq!(
        names,
        [
            "checksum",
            "restore",
            "integrity",
            "row_counts",
            "no_overlap"
        ]
    );

    let copy = backups.join(&manifest.dump_file);
    let mut bytes = std::fs::read(&copy).unwrap();
    let last = bytes.len() - 1;
    bytes[last] ^= 0x01;
    std::fs::write(&copy, bytes).unwrap();
    let (_, outcome) = runtime()
        .block_on(drill(&manifest_path, &dir.path().join("scratch2")))
        .unwrap();
    assert_eq!(failed_checks(&outcome), ["checksum"]);
    assert_eq!(
        outcome.checks.len(),
        1,
        "nothing restored from a tampered copy"
    );

    // A database without its trigger can hold a double booking; the drill finds it.
    execute(
        &database,
        "INSERT INTO reservations (code, accommodation_id, check_in, check_out, status) \
         VALUES ('DOUBLE', 1, '2027-01-03', '2027-01-06', 'confirmed')",
    );
    let (manifest_path, _) = runtime()
        .block_on(take(&database, "local", &dir.path().join("backups2")))
        .unwrap();
    let (_, outcome) = runtime()
        .block_on(drill(&manifest_path, &dir.path().join("scratch3")))
        .unwrap();
    assert_eq!(
        failed_checks(&outcome),
        ["no_overlap"],
        "{:?}",
        outcome.checks
    );
    let evidence = &outcome.checks.last().unwrap().evidence;
    assert!(
        evidence.contains("R1|DOUBLE") && evidence.contains("R2|DOUBLE"),
        "{evidence}"
    );
}
