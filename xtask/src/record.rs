//! Result records: what a task measured, saved as JSON under `target/xtask/runs/` so that
//! `report` and `status` can read it later without measuring anything themselves.

use std::path::{Path, PathBuf};
use std::time::Instant;

use anyhow::Context;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize, de::DeserializeOwned};

use crate::repo::{GitState, Repo};
use crate::verdict::Verdict;

/// Version of the record layout; bumped when a field changes meaning.
pub const SCHEMA_VERSION: u32 = 2;

/// The environment name recorded for runs given `--url` without `--env`.
pub const ADHOC_ENVIRONMENT: &str = "adhoc";

/// One run of one task.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct RunRecord<T> {
    /// Layout version, [`SCHEMA_VERSION`] when written.
    pub schema_version: u32,
    /// The task's name, as typed after `cargo xtask`.
    pub task: String,
    /// The environment it ran against (`staging`, `local`, `adhoc`, ...).
    pub environment: String,
    /// The commit it measured, when the repository is a git checkout.
    pub git: Option<GitState>,
    /// When the run started.
    pub started_at: DateTime<Utc>,
    /// How long it took, in milliseconds.
    pub duration_ms: u64,
    /// Version of the xtask that wrote it.
    pub tool_version: String,
    /// The task's overall verdict.
    pub verdict: Verdict,
    /// The task's own result value.
    pub result: T,
}

/// Measures a run's start and duration, then wraps its result into a record.
#[derive(Debug, Clone)]
pub struct RunClock {
    task: &'static str,
    started_at: DateTime<Utc>,
    started: Instant,
}

impl RunClock {
    /// Starts the clock for `task`.
    pub fn start(task: &'static str) -> RunClock {
        RunClock {
            task,
            started_at: Utc::now(),
            started: Instant::now(),
        }
    }

    /// Stops the clock and builds the record.
    pub fn finish<T>(
        self,
        repo: &Repo,
        environment: &str,
        verdict: Verdict,
        result: T,
    ) -> RunRecord<T> {
        RunRecord {
            schema_version: SCHEMA_VERSION,
            task: self.task.to_string(),
            environment: environment.to_string(),
            git: repo.git_state(),
            started_at: self.started_at,
            duration_ms: self.started.elapsed().as_millis() as u64,
            tool_version: env!("CARGO_PKG_VERSION").to_string(),
            verdict,
            result,
        }
    }
}

impl<T: Serialize> RunRecord<T> {
    /// Saves the record under the repository's runs directory and returns its path.
    pub fn save(&self, repo: &Repo) -> anyhow::Result<PathBuf> {
        save_in(&repo.runs_dir(), self)
    }
}

fn save_in<T: Serialize>(dir: &Path, record: &RunRecord<T>) -> anyhow::Result<PathBuf> {
    std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    // Records from many machines meet on the shared ref, which keeps the first file of a
    // name: time, task and process id alone can repeat across CI runners, a random part not.
    let unique = uuid::Uuid::new_v4().simple().to_string();
    let name = format!(
        "{}-{}-{}-{}.json",
        record.started_at.format("%Y%m%dT%H%M%S%.3fZ"),
        record.task,
        sanitize(&record.environment),
        &unique[..12]
    );
    let path = dir.join(name);
    let text = serde_json::to_string_pretty(record).context("serialising the result record")?;
    // Write then rename, so a reader never sees half a record.
    let partial = path.with_extension("json.partial");
    std::fs::write(&partial, text).with_context(|| format!("writing {}", partial.display()))?;
    std::fs::rename(&partial, &path).with_context(|| format!("writing {}", path.display()))?;
    Ok(path)
}

fn sanitize(name: &str) -> String {
    name.chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '_' || c == '-' {
                c
            } else {
                '_'
            }
        })
        .collect()
}

/// A saved record as read from disk, with when this machine saved it.
#[derive(Debug, Clone)]
pub struct Loaded {
    /// The file.
    pub path: PathBuf,
    /// The record, its result undecoded.
    pub record: RunRecord<serde_json::Value>,
    /// The file's modification time, as the file system says (a copy may carry it along).
    pub saved_at: DateTime<Utc>,
    /// When this machine first saw the record (see [`crate::records::seen`]): never later
    /// than the file time, nor than the moment it was first loaded or pulled here.
    pub first_seen: DateTime<Utc>,
}

impl Loaded {
    /// The file's name, as records are listed and shared by it.
    pub fn file_name(&self) -> String {
        self.path
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default()
    }

    /// Whether the record claims to have started after this machine first saw it (beyond
    /// [`crate::records::order::CLOCK_TOLERANCE`]): a skewed clock or a copied file.
    /// A file time after the first sighting counts too: the file was copied with its time.
    pub fn from_future(&self) -> bool {
        crate::records::order::from_future(self.record.started_at, self.first_seen)
            || crate::records::order::from_future(self.saved_at, self.first_seen)
    }

    /// Where the record ranks among runs: its claimed start, but never later than when this
    /// machine first saw it, so a record dated in the future cannot outrank a newer run.
    pub fn rank(&self) -> DateTime<Utc> {
        crate::records::order::rank(self.record.started_at, self.first_seen)
    }
}

/// Every saved record, oldest first (by [`Loaded::rank`]), with its path. Unreadable files
/// are reported, not hidden.
pub fn load_all(repo: &Repo) -> anyhow::Result<Vec<Loaded>> {
    load_dir(&repo.runs_dir())
}

/// Like [`load_all`], for any directory of records.
pub fn load_dir(dir: &Path) -> anyhow::Result<Vec<Loaded>> {
    let entries = match std::fs::read_dir(dir) {
        Ok(entries) => entries,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(e).with_context(|| format!("reading {}", dir.display())),
    };
    let mut records = Vec::new();
    for entry in entries {
        let path = entry
            .with_context(|| format!("reading {}", dir.display()))?
            .path();
        if path.extension().is_none_or(|ext| ext != "json") {
            continue;
        }
        let text = crate::files::read_text_capped(&path, crate::files::RECORD_LIMIT)
            .with_context(|| format!("reading {}", path.display()))?;
        let record: RunRecord<serde_json::Value> =
            serde_json::from_str(&text).with_context(|| {
                format!(
                    "{} is not a result record; delete it or rerun its task",
                    path.display()
                )
            })?;
        let saved_at = std::fs::metadata(&path)
            .and_then(|m| m.modified())
            .map(DateTime::<Utc>::from)
            .with_context(|| format!("reading the modification time of {}", path.display()))?;
        records.push(Loaded {
            path,
            record,
            saved_at,
            first_seen: saved_at,
        });
    }
    note_first_sightings(dir, &mut records);
    records.sort_by(|a, b| {
        a.rank()
            .cmp(&b.rank())
            .then(a.saved_at.cmp(&b.saved_at))
            .then(a.path.cmp(&b.path))
    });
    Ok(records)
}

/// Sets each record's [`Loaded::first_seen`] from the ledger of `dir`, noting the records it
/// lacks at the time they are first seen now. Noting is best effort: a read-only checkout
/// still ranks by file time, capped at now.
fn note_first_sightings(dir: &Path, records: &mut [Loaded]) {
    use crate::records::seen;
    let ledger = seen::read(dir);
    let now = Utc::now();
    let mut unseen = Vec::new();
    for loaded in records.iter_mut() {
        let name = loaded.file_name();
        let noted = ledger.get(&name).copied();
        loaded.first_seen = seen::first_seen(noted, loaded.saved_at, now);
        if noted.is_none() {
            unseen.push((name, loaded.first_seen));
        }
    }
    if !unseen.is_empty() {
        let _ = seen::note(dir, unseen);
    }
}

/// The newest record of `task` for `environment`, with its result decoded as `T`.
pub fn latest<T: DeserializeOwned>(
    repo: &Repo,
    task: &str,
    environment: &str,
) -> anyhow::Result<Option<RunRecord<T>>> {
    let newest = load_all(repo)?
        .into_iter()
        .rev()
        .find(|l| l.record.task == task && l.record.environment == environment);
    let Some(Loaded { path, record, .. }) = newest else {
        return Ok(None);
    };
    let result: T = serde_json::from_value(record.result).with_context(|| {
        format!(
            "{} was written by another version of the {task} task; rerun it",
            path.display()
        )
    })?;
    Ok(Some(RunRecord {
        schema_version: record.schema_version,
        task: record.task,
        environment: record.environment,
        git: record.git,
        started_at: record.started_at,
        duration_ms: record.duration_ms,
        tool_version: record.tool_version,
        verdict: record.verdict,
        result,
    }))
}

/// The environment of the newest saved record, if any: the default of `report` and `status`.
pub fn newest_environment(repo: &Repo) -> anyhow::Result<Option<String>> {
    Ok(load_all(repo)?.pop().map(|l| l.record.environment))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, Serialize, Deserialize, PartialEq)]
    struct Sample {
        value: u32,
    }

    #[test]
    fn saved_records_are_found_newest_first_per_task_and_environment() {
        let dir = tempfile::tempdir().unwrap();
        let repo = Repo::at(dir.path());
        for (value, env) in [(1, "staging"), (2, "staging"), (3, "local")] {
            let mut record =
                RunClock::start("smoke").finish(&repo, env, Verdict::Pass, Sample { value });
            record.started_at += chrono::Duration::milliseconds(value as i64);
            record.save(&repo).unwrap();
        }
        let newest: RunRecord<Sample> = latest(&repo, "smoke", "staging").unwrap().unwrap();
        assert_eq!(newest.result, Sample { value: 2 });
        assert_eq!(newest.schema_version, SCHEMA_VERSION);
        assert!(
            latest::<Sample>(&repo, "overlap", "staging")
                .unwrap()
                .is_none()
        );
        assert_eq!(newest_environment(&repo).unwrap().as_deref(), Some("local"));
    }

    /// Saves a smoke PASS of staging that claims to start a year from now, its file modified
    /// at `file_time`; returns its path.
    fn save_pass_from_next_year(repo: &Repo, file_time: std::time::SystemTime) -> PathBuf {
        let mut copied =
            RunClock::start("smoke").finish(repo, "staging", Verdict::Pass, Sample { value: 1 });
        copied.started_at += chrono::Duration::days(365);
        let copied_path = copied.save(repo).unwrap();
        std::fs::File::options()
            .write(true)
            .open(&copied_path)
            .unwrap()
            .set_modified(file_time)
            .unwrap();
        copied_path
    }

    /// Saves a smoke FAIL of staging run here and now; returns the newest record `latest` finds.
    fn fail_here_and_read_newest(repo: &Repo) -> RunRecord<Sample> {
        RunClock::start("smoke")
            .finish(repo, "staging", Verdict::Fail, Sample { value: 2 })
            .save(repo)
            .unwrap();
        latest(repo, "smoke", "staging").unwrap().unwrap()
    }

    #[test]
    fn a_record_dated_in_the_future_does_not_mask_a_newer_run() {
        let dir = tempfile::tempdir().unwrap();
        let repo = Repo::at(dir.path());
        // A PASS copied from a machine whose clock runs a year ahead, saved an hour ago.
        let an_hour_ago = std::time::SystemTime::now() - std::time::Duration::from_secs(3600);
        let copied_path = save_pass_from_next_year(&repo, an_hour_ago);
        // Then a fresh failure here.
        let newest = fail_here_and_read_newest(&repo);
        assert_eq!(newest.verdict, Verdict::Fail);
        assert_eq!(newest.result, Sample { value: 2 });
        let flagged: Vec<_> = load_all(&repo)
            .unwrap()
            .into_iter()
            .filter(Loaded::from_future)
            .map(|l| l.path)
            .collect();
        assert_eq!(flagged, vec![copied_path]);
    }

    /// A record whose claimed start and file time are both a year ahead (copied with its
    /// time, or written under a clock since corrected) ranks at its first sighting here.
    #[test]
    fn a_record_and_file_both_dated_in_the_future_do_not_win() {
        let dir = tempfile::tempdir().unwrap();
        let repo = Repo::at(dir.path());
        let next_year = std::time::SystemTime::now() + std::time::Duration::from_secs(365 * 86400);
        save_pass_from_next_year(&repo, next_year);
        // `status` sees it first; then a run here fails.
        let seen = load_all(&repo).unwrap();
        assert!(seen[0].from_future(), "flagged as dated in the future");
        let newest = fail_here_and_read_newest(&repo);
        assert_eq!(newest.verdict, Verdict::Fail);
        // Still so on every later load: the first sighting is kept.
        let all = load_all(&repo).unwrap();
        assert_eq!(all.last().map(|l| l.record.verdict), Some(Verdict::Fail));
        assert_eq!(all.iter().filter(|l| l.from_future()).count(), 1);
    }

    #[test]
    fn a_corrupt_record_is_named() {
        let dir = tempfile::tempdir().unwrap();
        let repo = Repo::at(dir.path());
        std::fs::create_dir_all(repo.runs_dir()).unwrap();
        std::fs::write(repo.runs_dir().join("broken.json"), "{").unwrap();
        let error = format!("{:#}", load_all(&repo).unwrap_err());
        assert!(error.contains("broken.json"), "{error}");
    }
}
