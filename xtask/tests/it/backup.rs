//! `backup` and `restore-drill` on the real PostgreSQL (`TEST_DATABASE_URL`; a fresh database
//! is created there, migrated by the service and seeded with bookings): a backup restores and
//! passes every check; a tampered dump or manifest fails the drill naming what differs; a
//! backup holding overlapping bookings fails the invariant check. `restore` refuses without
//! `--yes`, without a backup of what it replaces, or with a tampered dump, and otherwise puts the
//! backup back.

use std::path::{Path, PathBuf};
use std::time::Duration;

use crate::support::workspace as repo;
use crate::support::{capture, failed_checks, one_environment_repo};
use xshell::{Shell, cmd};
use xtask::backup::pg::PgConnection;
use xtask::backup::{Manifest, take};
use xtask::local_service::{LocalService, ServiceSettings};
use xtask::repo::Repo;
use xtask::restore::{Options as RestoreOptions, restore};
use xtask::restore_drill::{DrillOutcome, drill};
use xtask::verdict::Verdict;

fn server() -> Option<String> {
    crate::support::postgres_server("backup and restore drill")
}

fn psql(url: &str, sql: &str) {
    let sh = Shell::new().unwrap();
    cmd!(sh, "psql {url} -v ON_ERROR_STOP=1 -qc {sql}")
        .quiet()
        .run()
        .unwrap_or_else(|e| panic!("psql failed on `{sql}`: {e}"));
}

/// A database of its own in the test cluster, migrated by the service, dropped afterwards.
struct Seeded {
    server: String,
    name: String,
    url: String,
}

impl Seeded {
    fn create(server: &str) -> Seeded {
        let name = format!("backup_{}", uuid::Uuid::new_v4().simple());
        let mut url = reqwest::Url::parse(server).expect("TEST_DATABASE_URL is a URL");
        url.set_path(&format!("/{name}"));
        psql(server, &format!("CREATE DATABASE {name}"));
        let seeded = Seeded {
            server: server.to_string(),
            name,
            url: url.to_string(),
        };
        let dir = tempfile::tempdir().unwrap();
        let settings = ServiceSettings {
            binary: crate::support::service_binary(),
            database_url: seeded.url.clone(),
            jwt_secret: "backup-test-secret-0123456789-abcdefghij".into(),
            admin_email: "ops@example.com".into(),
            log_file: dir.path().join("service.log"),
        };
        let runtime = tokio::runtime::Runtime::new().unwrap();
        let _context = runtime.enter();
        // Starting it applies the migrations.
        LocalService::start(&settings, Duration::from_secs(60))
            .expect("service starts")
            .stop();
        psql(
            &seeded.url,
            "INSERT INTO accommodations (slug, name, capacity, base_price_cents) VALUES \
             ('drill-a', 'Drill A', 4, 100000), ('drill-b', 'Drill B', 2, 80000)",
        );
        for (i, (slug, from, to, status)) in [
            ("drill-a", "2027-01-01", "2027-01-05", "confirmed"),
            ("drill-a", "2027-01-05", "2027-01-08", "pre_reserved"),
            ("drill-a", "2027-01-02", "2027-01-04", "cancelled"),
            ("drill-b", "2027-01-01", "2027-01-03", "confirmed"),
        ]
        .into_iter()
        .enumerate()
        {
            seeded.book(&format!("DRILL{i}"), slug, from, to, status);
        }
        seeded
    }

    fn book(&self, code: &str, slug: &str, from: &str, to: &str, status: &str) {
        psql(
            &self.url,
            &format!(
                "INSERT INTO reservations (code, accommodation_id, check_in, check_out, guests, \
                 channel, contact_name, contact_phone, status, total_price_cents, deposit_cents, \
                 expires_at, created_at, updated_at) SELECT '{code}', id, '{from}', '{to}', 2, \
                 'web', 'Guest', '+5491100000000', '{status}', 100000, 30000, now(), now(), now() \
                 FROM accommodations WHERE slug = '{slug}'"
            ),
        );
    }
}

impl Drop for Seeded {
    fn drop(&mut self) {
        psql(
            &self.server,
            &format!("DROP DATABASE IF EXISTS {} WITH (FORCE)", self.name),
        );
    }
}

fn backup(seeded: &Seeded, dir: &Path) -> (PathBuf, Manifest) {
    let connection = PgConnection::from_url(&seeded.url, "the test database URL").unwrap();
    take(&connection, "test", dir).expect("the backup is taken")
}

fn run_drill(manifest: &Path) -> (DrillOutcome, String) {
    let (outcome, out) = capture(|out| drill(&repo(), manifest, out));
    (outcome.expect("the drill runs"), out)
}

#[test]
fn a_backup_restores_and_a_tampered_one_fails_the_drill() {
    let Some(server) = server() else { return };
    let seeded = Seeded::create(&server);
    let dir = tempfile::tempdir().unwrap();
    let (manifest_path, manifest) = backup(&seeded, dir.path());
    assert_eq!(manifest.row_counts["public.reservations"], 4);
    assert!(manifest.row_counts["public.accommodations"] >= 2);
    assert!(
        manifest
            .server_version
            .chars()
            .next()
            .unwrap()
            .is_ascii_digit()
    );
    assert_eq!(manifest.sha256.len(), 64);

    let (outcome, text) = run_drill(&manifest_path);
    assert_eq!(outcome.verdict(), Verdict::Pass, "{text}");
    let names: Vec<&str> = outcome.checks.iter().map(|c| c.name).collect();
    assert_eq!(
        names,
        [
            "checksum",
            "restore",
            "migrations",
            "row_counts",
            "no_overlap"
        ]
    );
    assert!(text.contains("RTO") && text.contains("RPO"), "{text}");

    // A manifest that promises another row count.
    let mut promised = manifest.clone();
    promised.row_counts.insert("public.reservations".into(), 5);
    std::fs::write(&manifest_path, serde_json::to_string(&promised).unwrap()).unwrap();
    let (outcome, text) = run_drill(&manifest_path);
    assert_eq!(failed_checks(&outcome), ["row_counts"], "{text}");
    assert!(
        text.contains("public.reservations: 5 in the manifest, 4 restored"),
        "{text}"
    );
    std::fs::write(&manifest_path, serde_json::to_string(&manifest).unwrap()).unwrap();

    // A dump with one byte changed: refused before it is restored, given as the .dump.
    let dump = dir.path().join(&manifest.dump_file);
    let mut bytes = std::fs::read(&dump).unwrap();
    let middle = bytes.len() / 2;
    bytes[middle] ^= 0x01;
    std::fs::write(&dump, bytes).unwrap();
    let (outcome, text) = run_drill(&dump);
    assert_eq!(outcome.verdict(), Verdict::Fail);
    assert_eq!(failed_checks(&outcome), ["checksum"], "{text}");
    assert_eq!(
        outcome.checks.len(),
        1,
        "nothing restored from a tampered dump"
    );
    assert!(
        text.contains("differs from its manifest") && text.contains(&manifest.sha256),
        "{text}"
    );
}

#[test]
fn a_backup_holding_overlapping_bookings_fails_the_invariant() {
    let Some(server) = server() else { return };
    let seeded = Seeded::create(&server);
    // Only a database without its guarantee can hold them: drop it, then double-book.
    psql(
        &seeded.url,
        "ALTER TABLE reservations DROP CONSTRAINT reservations_no_overlap",
    );
    seeded.book("DOUBLE", "drill-a", "2027-01-03", "2027-01-06", "confirmed");
    let dir = tempfile::tempdir().unwrap();
    let (manifest_path, _) = backup(&seeded, dir.path());
    let (outcome, text) = run_drill(&manifest_path);
    assert_eq!(failed_checks(&outcome), ["no_overlap"], "{text}");
    assert!(
        text.contains("DOUBLE") && text.contains("DRILL0|DOUBLE"),
        "{text}"
    );
}

/// A repository whose `test` environment's env file points at `seeded`.
fn restore_fixture(dir: &Path, seeded: &Seeded) -> Repo {
    one_environment_repo(dir, "test", &format!("DATABASE_URL={}\n", seeded.url))
}

fn restore_options(from: &Path, yes: bool, keep: &Path) -> RestoreOptions {
    RestoreOptions {
        env: "test".into(),
        from: from.to_path_buf(),
        yes,
        keep: keep.to_path_buf(),
    }
}

fn reservations(seeded: &Seeded) -> i64 {
    let sh = Shell::new().unwrap();
    let url = &seeded.url;
    cmd!(sh, "psql {url} -XAtqc 'SELECT count(*) FROM reservations'")
        .quiet()
        .read()
        .unwrap()
        .trim()
        .parse()
        .unwrap()
}

#[test]
fn restore_refuses_without_yes_a_tampered_dump_or_a_backup_of_what_it_replaces() {
    let Some(server) = server() else { return };
    let seeded = Seeded::create(&server);
    let dir = tempfile::tempdir().unwrap();
    let (manifest_path, manifest) = backup(&seeded, &dir.path().join("backups"));
    // Written after the backup: what a restore replaces.
    seeded.book("AFTER", "drill-b", "2027-02-01", "2027-02-03", "confirmed");
    let repo_dir = tempfile::tempdir().unwrap();
    let repo = restore_fixture(repo_dir.path(), &seeded);
    let keep = repo_dir.path().join("kept");
    let mut out = Vec::new();

    let refused = restore(
        &repo,
        &restore_options(&manifest_path, false, &keep),
        &mut out,
    )
    .expect_err("no --yes");
    assert!(format!("{refused:#}").contains("--yes"), "{refused:#}");
    assert_eq!(reservations(&seeded), 5);

    // The backup of what it replaces cannot be written: a file stands where its directory goes.
    let blocked = repo_dir.path().join("blocked");
    std::fs::write(&blocked, "").unwrap();
    let refused = restore(
        &repo,
        &restore_options(&manifest_path, true, &blocked),
        &mut out,
    )
    .expect_err("no backup of what it replaces");
    assert!(
        format!("{refused:#}").contains("refusing to restore"),
        "{refused:#}"
    );
    assert_eq!(reservations(&seeded), 5);

    let dump = dir.path().join("backups").join(&manifest.dump_file);
    let original = std::fs::read(&dump).unwrap();
    let mut tampered = original.clone();
    let middle = tampered.len() / 2;
    tampered[middle] ^= 0x01;
    std::fs::write(&dump, tampered).unwrap();
    let verdict = restore(
        &repo,
        &restore_options(&manifest_path, true, &keep),
        &mut out,
    )
    .unwrap();
    assert_eq!(verdict, Verdict::Fail);
    assert_eq!(reservations(&seeded), 5);
    assert!(
        !keep.exists(),
        "nothing taken or touched for a tampered dump"
    );
    std::fs::write(&dump, original).unwrap();

    let mut out = Vec::new();
    let verdict = restore(&repo, &restore_options(&dump, true, &keep), &mut out).unwrap();
    let text = String::from_utf8(out).unwrap();
    assert_eq!(verdict, Verdict::Pass, "{text}");
    assert_eq!(reservations(&seeded), 4, "{text}");
    assert!(text.contains("row_counts PASS"), "{text}");
    // What it replaced, AFTER included, is kept and restores in a drill.
    let kept = std::fs::read_dir(&keep)
        .unwrap()
        .filter_map(|e| Some(e.ok()?.path()))
        .find(|p| p.to_string_lossy().ends_with(".manifest.json"))
        .expect("a backup of what was replaced");
    let kept: Manifest = serde_json::from_str(&std::fs::read_to_string(kept).unwrap()).unwrap();
    assert_eq!(kept.row_counts["public.reservations"], 5);
    let records: Vec<_> = std::fs::read_dir(repo.runs_dir()).unwrap().collect();
    assert_eq!(
        records.len(),
        2,
        "the tampered run and the restore are recorded"
    );
}
