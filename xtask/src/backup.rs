//! `cargo xtask backup`: a `pg_dump -Fc` of an environment's database plus a manifest that a
//! restore drill can hold the dump to: database, server version, size, sha256, the row count
//! of every table, start and end time.
//!
//! The counts and the dump see the same data: one psql session opens a repeatable-read
//! transaction, exports its snapshot (`pg_export_snapshot()`), counts the rows in it, and
//! `pg_dump --snapshot` dumps that snapshot while the session holds it open
//! (postgresql.org/docs/current/app-pgdump.html, `--snapshot`). The database URL comes from
//! the env file; its password reaches the tools only through a `PGPASSFILE` ([`pg`]).

pub mod pg;
pub mod sqlite;

use std::collections::BTreeMap;
use std::io::Read;
use std::path::{Path, PathBuf};

use anyhow::{Context, bail};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use sha2::Digest;

use crate::config::DeployConfig;
use crate::repo::Repo;
use crate::verdict::Verdict;
use pg::{PgConnection, Session};

/// The manifest's format version.
pub const MANIFEST_SCHEMA_VERSION: u32 = 1;

/// Options of `cargo xtask backup`, built from its flags by the command line.
#[derive(Debug, Clone)]
pub struct Options {
    /// Environment from ops/deploy.toml whose database (DATABASE_URL in its env file) to dump.
    pub env: String,
    /// Directory to write the dump and its manifest into (created when missing).
    pub to: PathBuf,
}

/// What a backup holds, saved beside the dump as `<dump>.manifest.json`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Manifest {
    /// [`MANIFEST_SCHEMA_VERSION`].
    pub schema_version: u32,
    /// The environment the database belongs to.
    pub environment: String,
    /// The database name.
    pub database: String,
    /// The server's `server_version`.
    pub server_version: String,
    /// The dump's file name, in the manifest's directory.
    pub dump_file: String,
    /// The dump's size in bytes.
    pub size_bytes: u64,
    /// The dump's SHA-256, lower-case hex.
    pub sha256: String,
    /// Rows per table (`schema.table`) in the dumped snapshot.
    pub row_counts: BTreeMap<String, i64>,
    /// When the snapshot was taken: nothing written after it is in the dump.
    pub started_at: DateTime<Utc>,
    /// When the dump was complete.
    pub finished_at: DateTime<Utc>,
}

/// The record a backup saves (`task = "backup"`): its manifest and where it was written.
/// `report` and `status` read the newest one for the backup's age.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct BackupRecord {
    /// The manifest's path, as written.
    pub manifest_file: String,
    /// The manifest.
    pub manifest: Manifest,
}

/// Runs the task: exit 0 with the backup written and recorded, 2 when it could not be taken.
pub fn run(args: Options) -> anyhow::Result<Verdict> {
    let repo = Repo::discover()?;
    let clock = crate::record::RunClock::start("backup");
    let config = DeployConfig::load(&repo)?;
    let environment = config.environment(&args.env)?;
    let url = database_url(&repo.path(&environment.env_file))
        .with_context(|| format!("reading DATABASE_URL of {}", args.env))?;
    let origin = format!("DATABASE_URL in {}", environment.env_file.display());
    let connection = PgConnection::from_url(&url, &origin)?;
    let (path, manifest) = take(&connection, &args.env, &args.to)?;
    eprintln!(
        "backup of {} ({}, PostgreSQL {}): {} bytes, sha256 {}, {} tables, {} rows\nmanifest: {}",
        manifest.database,
        connection.shown,
        manifest.server_version,
        manifest.size_bytes,
        manifest.sha256,
        manifest.row_counts.len(),
        manifest.row_counts.values().sum::<i64>(),
        path.display()
    );
    save(&repo, clock, &args.env, &path, manifest)?;
    Ok(Verdict::Pass)
}

/// Saves the record of a backup of `env` whose manifest was written to `path` (the task's
/// ending, and `rehearse`'s).
pub fn save(
    repo: &Repo,
    clock: crate::record::RunClock,
    env: &str,
    path: &Path,
    manifest: Manifest,
) -> anyhow::Result<Option<PathBuf>> {
    let record = clock.finish(
        repo,
        env,
        Verdict::Pass,
        BackupRecord {
            manifest_file: path.display().to_string(),
            manifest,
        },
    );
    let summary = format!(
        "### backup {env}: PASS\n\n{} bytes, sha256 {}\n",
        record.result.manifest.size_bytes, record.result.manifest.sha256
    );
    let ending = crate::finish::Ending::streamed(&summary, true, false);
    crate::finish::finish(repo, &record, ending, &mut std::io::stderr())
}

/// What a backup knows of its snapshot once the dump is written.
#[derive(Debug, Clone)]
pub struct Taken<'a> {
    /// The environment the database belongs to.
    pub environment: &'a str,
    /// The database name.
    pub database: String,
    /// The server's version.
    pub server_version: String,
    /// Rows per table in the dumped snapshot.
    pub row_counts: BTreeMap<String, i64>,
    /// When the snapshot was taken.
    pub started_at: DateTime<Utc>,
}

impl Taken<'_> {
    /// The manifest of the dump `dump_file` just written in `dir` (its size and SHA-256 read
    /// from the file, finished now), written beside it as `<stem>.manifest.json`; returns
    /// the manifest's path and it.
    pub fn seal(
        self,
        dir: &Path,
        stem: &str,
        dump_file: String,
    ) -> anyhow::Result<(PathBuf, Manifest)> {
        let (size_bytes, sha256) = digest(&dir.join(&dump_file))?;
        let manifest = Manifest {
            schema_version: MANIFEST_SCHEMA_VERSION,
            environment: self.environment.to_string(),
            database: self.database,
            server_version: self.server_version,
            dump_file,
            size_bytes,
            sha256,
            row_counts: self.row_counts,
            started_at: self.started_at,
            finished_at: Utc::now(),
        };
        let path = write_manifest(dir, stem, &manifest)?;
        Ok((path, manifest))
    }
}

/// Writes `manifest` beside its dump as `<stem>.manifest.json`; returns the path.
pub fn write_manifest(dir: &Path, stem: &str, manifest: &Manifest) -> anyhow::Result<PathBuf> {
    let manifest_path = dir.join(format!("{stem}.manifest.json"));
    std::fs::write(
        &manifest_path,
        serde_json::to_string_pretty(manifest)? + "\n",
    )
    .with_context(|| format!("writing {}", manifest_path.display()))?;
    Ok(manifest_path)
}

/// `DATABASE_URL` of an env file.
pub fn database_url(env_file: &Path) -> anyhow::Result<String> {
    let text = crate::files::read_text_capped(env_file, crate::files::CONFIG_LIMIT).with_context(|| {
        format!(
            "reading {}: copy its .template beside it and fill DATABASE_URL (the URL `fly postgres attach` set)",
            env_file.display()
        )
    })?;
    let entries = crate::predeploy::envfile::parse_env_file(&text).map_err(|_| {
        anyhow::anyhow!(
            "{} does not parse: run `cargo xtask predeploy` for the problems",
            env_file.display()
        )
    })?;
    entries
        .into_iter()
        .find(|e| e.key == "DATABASE_URL" && !e.value.expose().trim().is_empty())
        .map(|e| e.value.expose().trim().to_string())
        .with_context(|| format!("fill DATABASE_URL in {}", env_file.display()))
}

/// A PostgreSQL client tool: from the server binaries' directory when there is one (the
/// newest Debian version, matching the server), else `PATH`.
pub fn client_tool(name: &str) -> anyhow::Result<PathBuf> {
    let from_binaries = crate::pgcluster::PgBinaries::find().map(|b| b.dir().join(name));
    let from_path = std::env::var_os("PATH")
        .iter()
        .flat_map(std::env::split_paths)
        .map(|dir| dir.join(name))
        .find(|p| p.is_file());
    from_binaries
        .filter(|p| p.is_file())
        .or(from_path)
        .with_context(|| format!("{name} not found: install the PostgreSQL client (apt-get install postgresql-client)"))
}

/// Takes the backup of `connection` into `dir`; returns the manifest's path and the manifest.
pub fn take(
    connection: &PgConnection,
    environment: &str,
    dir: &Path,
) -> anyhow::Result<(PathBuf, Manifest)> {
    let (psql, pg_dump) = (client_tool("psql")?, client_tool("pg_dump")?);
    std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    let started_at = Utc::now();
    let stem = format!(
        "{}-{}",
        connection.database,
        started_at.format("%Y%m%dT%H%M%SZ")
    );
    let dump_file = format!("{stem}.dump");
    let dump_path = dir.join(&dump_file);

    let mut session = Session::open(connection, &psql)
        .with_context(|| format!("connecting to {}/{}", connection.shown, connection.database))?;
    let snapshot = single(session.ask("SELECT pg_export_snapshot();")?, "the snapshot")?;
    let server_version = single(session.ask("SHOW server_version;")?, "server_version")?;
    let row_counts = count_rows(&mut session)?;
    let output = connection
        .command(&pg_dump)
        .args(["--format=custom", "--no-password"])
        .arg(format!("--snapshot={snapshot}"))
        .arg("--file")
        .arg(&dump_path)
        .output()
        .with_context(|| format!("starting {}", pg_dump.display()))?;
    session.close()?;
    if !output.status.success() {
        bail!(
            "pg_dump of {}/{} failed: {}",
            connection.shown,
            connection.database,
            String::from_utf8_lossy(&output.stderr).trim()
        );
    }
    let taken = Taken {
        environment,
        database: connection.database.clone(),
        server_version,
        row_counts,
        started_at,
    };
    taken.seal(dir, &stem, dump_file)
}

/// The row count of every table outside the system schemas, in the session's snapshot.
pub fn count_rows(session: &mut Session) -> anyhow::Result<BTreeMap<String, i64>> {
    let tables = session.ask(
        "SELECT quote_ident(table_schema) || '.' || quote_ident(table_name) \
         FROM information_schema.tables \
         WHERE table_schema NOT IN ('pg_catalog', 'information_schema') \
         AND table_type = 'BASE TABLE' ORDER BY 1;",
    )?;
    let mut counts = BTreeMap::new();
    for table in tables.into_iter().filter(|t| !t.is_empty()) {
        let count = single(
            session.ask(&format!("SELECT count(*) FROM {table};"))?,
            &table,
        )?;
        counts.insert(
            table.clone(),
            count.parse().with_context(|| format!("count of {table}"))?,
        );
    }
    Ok(counts)
}

/// Size and SHA-256 of a file.
pub fn digest(path: &Path) -> anyhow::Result<(u64, String)> {
    let mut file =
        std::fs::File::open(path).with_context(|| format!("opening {}", path.display()))?;
    let mut hasher = sha2::Sha256::new();
    let mut buffer = vec![0; 1 << 16];
    let mut size = 0u64;
    loop {
        let read = file.read(&mut buffer)?;
        if read == 0 {
            break;
        }
        size += read as u64;
        hasher.update(&buffer[..read]);
    }
    let hash = hasher.finalize();
    Ok((size, hash.iter().map(|b| format!("{b:02x}")).collect()))
}

fn single(lines: Vec<String>, what: &str) -> anyhow::Result<String> {
    match lines.as_slice() {
        [one] => Ok(one.trim().to_string()),
        _ => bail!("expected one line for {what}, got {}", lines.len()),
    }
}
