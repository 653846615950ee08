//! `cargo xtask restore`: puts a backup back into an environment's database, the one step of
//! disaster recovery that destroys data. So it refuses three ways before touching anything:
//! without `--yes`; when the dump does not match its manifest (size, sha256); and when it
//! cannot first take a backup of what it replaces (the "fresh backup" is the one it takes
//! itself, right before, with the same `backup` code: a restore of the wrong file can be
//! undone with that one).
//!
//! The restore runs `pg_restore --clean --if-exists --single-transaction`
//! (postgresql.org/docs/current/app-pgrestore.html): the dump's objects are dropped and
//! recreated in one transaction, so a failure leaves the database as it was. Afterwards every
//! table must hold the manifest's row count. The password reaches the tools only through a
//! `PGPASSFILE` ([`crate::backup::pg`]).

use std::io::Write;
use std::path::{Path, PathBuf};

use anyhow::{Context, bail};
use serde::Serialize;

use crate::backup::pg::{PgConnection, Session};
use crate::backup::{client_tool, count_rows, database_url};
use crate::config::DeployConfig;
use crate::finish::{Ending, finish};
use crate::output::Output;
use crate::record::RunClock;
use crate::repo::Repo;
use crate::restore_drill::{DrillCheck, checksum, load, row_counts_check};
use crate::verdict::Verdict;

/// Where the backup of what a restore replaces goes when `--keep` is not given, under the
/// repository root.
pub const DEFAULT_KEEP_DIR: &str = "target/xtask/backups";

/// Options of `cargo xtask restore`, built from its flags by the command line.
#[derive(Debug, Clone)]
pub struct Options {
    /// Environment from ops/deploy.toml whose database (DATABASE_URL in its env file) to
    /// replace.
    pub env: String,
    /// The backup: its `.manifest.json`, or the `.dump` beside it.
    pub from: PathBuf,
    /// The operator's confirmation that the database's current content may be replaced.
    pub yes: bool,
    /// Directory for the backup of what the restore replaces (relative: to the repository).
    pub keep: PathBuf,
}

/// What a restore did, saved as its record.
#[derive(Debug, Clone, Serialize)]
pub struct RestoreResult {
    /// The restored backup's dump file.
    pub dump_file: String,
    /// Its SHA-256, as its manifest states and the file matched.
    pub sha256: String,
    /// When the restored data was current (the backup's snapshot).
    pub data_as_of: chrono::DateTime<chrono::Utc>,
    /// The manifest of the backup taken of what was replaced, when it was taken.
    pub replaced_backup: Option<PathBuf>,
    /// The checks, in order: checksum, then (once restored) restore and row counts.
    pub checks: Vec<DrillCheck>,
}

/// Runs the task: exit 0 when restored and every table holds the manifest's rows, 1 when the
/// checksum or a row count failed, 2 when it refused (no `--yes`, no backup of what it would
/// replace) or could not run.
pub fn run(options: Options, output: Output) -> anyhow::Result<Verdict> {
    let repo = Repo::discover()?;
    restore_printing(&repo, &options, output.json(), &mut output.human_writer())
}

/// Restores `options.from` into `options.env`'s database, printing each step on `out`, and
/// saves the record.
pub fn restore(repo: &Repo, options: &Options, out: &mut dyn Write) -> anyhow::Result<Verdict> {
    restore_printing(repo, options, false, out)
}

/// [`restore`], printing the record as JSON on stdout when `json` (`--json`).
fn restore_printing(
    repo: &Repo,
    options: &Options,
    json: bool,
    out: &mut dyn Write,
) -> anyhow::Result<Verdict> {
    let clock = RunClock::start("restore");
    let (manifest, dump) = load(&options.from)?;
    let first = checksum(&manifest, &dump)?;
    writeln!(out, "{}", shown(&first))?;
    let mut result = RestoreResult {
        dump_file: manifest.dump_file.clone(),
        sha256: manifest.sha256.clone(),
        data_as_of: manifest.started_at,
        replaced_backup: None,
        checks: vec![first.clone()],
    };
    if !first.passed {
        writeln!(out, "restore: FAIL (nothing touched)")?;
        return end(repo, options, clock, Verdict::Fail, &result, json, out);
    }
    let config = DeployConfig::load(repo)?;
    let environment = config.environment(&options.env)?;
    if !options.yes {
        bail!(
            "restore replaces the whole database of {} (DATABASE_URL in {}) with {} (data as of {}): \
             rerun with --yes to confirm; a backup of the current database is taken first",
            options.env,
            environment.env_file.display(),
            dump.display(),
            manifest.started_at.to_rfc3339()
        );
    }
    if manifest.environment != options.env {
        writeln!(
            out,
            "note: the backup was taken of {}, it is restored into {}",
            manifest.environment, options.env
        )?;
    }
    let url = database_url(&repo.path(&environment.env_file))
        .with_context(|| format!("reading DATABASE_URL of {}", options.env))?;
    let origin = format!("DATABASE_URL in {}", environment.env_file.display());
    let connection = PgConnection::from_url(&url, &origin)?;
    let keep = repo.path(&options.keep);
    let (kept, _) = crate::backup::take(&connection, &options.env, &keep).with_context(|| {
        format!(
            "refusing to restore: the backup of what it would replace (into {}) failed; nothing was \
             touched. Fix that backup (`cargo xtask backup --env {} --to {}` shows the same error) and rerun",
            keep.display(),
            options.env,
            options.keep.display()
        )
    })?;
    writeln!(
        out,
        "kept       the database being replaced is backed up: {}",
        kept.display()
    )?;
    result.replaced_backup = Some(kept);
    let restored = pg_restore(&connection, &dump)?;
    writeln!(out, "{}", shown(&restored))?;
    result.checks.push(restored.clone());
    if restored.passed {
        let psql = client_tool("psql")?;
        let mut session = Session::open(&connection, &psql)?;
        let counts = count_rows(&mut session)?;
        session.close()?;
        // Tables the dump does not hold are left as they were by --clean; only the dump's are
        // compared.
        let counts = counts
            .into_iter()
            .filter(|(table, _)| manifest.row_counts.contains_key(table))
            .collect();
        let check = row_counts_check(&manifest.row_counts, &counts);
        writeln!(out, "{}", shown(&check))?;
        result.checks.push(check);
    }
    let verdict = if result.checks.iter().all(|c| c.passed) {
        Verdict::Pass
    } else {
        Verdict::Fail
    };
    writeln!(out, "restore: {}", verdict.label())?;
    end(repo, options, clock, verdict, &result, json, out)
}

fn shown(check: &DrillCheck) -> String {
    let mark = if check.passed { "PASS" } else { "FAIL" };
    format!("{:<11}{mark}  {}", check.name, check.evidence)
}

/// `pg_restore` of `dump` over `connection`'s database, in one transaction.
fn pg_restore(connection: &PgConnection, dump: &Path) -> anyhow::Result<DrillCheck> {
    let pg_restore = client_tool("pg_restore")?;
    let output = connection
        .command(&pg_restore)
        .args([
            "--clean",
            "--if-exists",
            "--single-transaction",
            "--exit-on-error",
            "--no-owner",
            "--no-privileges",
            "--no-password",
        ])
        // Without --dbname pg_restore prints SQL instead of restoring; the name is no secret.
        .arg(format!("--dbname={}", connection.database))
        .arg(dump)
        .output()
        .with_context(|| format!("starting {}", pg_restore.display()))?;
    let stderr = String::from_utf8_lossy(&output.stderr);
    Ok(DrillCheck {
        name: "restore",
        passed: output.status.success(),
        evidence: if output.status.success() {
            format!(
                "pg_restore replaced {}/{} in one transaction",
                connection.shown, connection.database
            )
        } else {
            format!(
                "pg_restore failed and rolled back (the database is as it was): {}",
                crate::flyctl::tail(&stderr, 5)
            )
        },
    })
}

fn end(
    repo: &Repo,
    options: &Options,
    clock: RunClock,
    verdict: Verdict,
    result: &RestoreResult,
    json: bool,
    out: &mut dyn Write,
) -> anyhow::Result<Verdict> {
    let record = clock.finish(repo, &options.env, verdict, result);
    let summary = format!(
        "### restore {}: {}\n\n{} (sha256 {})\n",
        options.env,
        verdict.label(),
        result.dump_file,
        result.sha256
    );
    let ending = Ending::streamed(&summary, true, json);
    finish(repo, &record, ending, out)?;
    Ok(verdict)
}
