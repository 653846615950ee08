//! Records on a dedicated git ref of the repository itself (by default the branch
//! `xtask-records` on `origin`): one JSON file per run under `runs/`, only ever added to.
//!
//! Everything goes through git plumbing (`hash-object`, `update-index` on a throwaway index,
//! `write-tree`, `commit-tree`, `push`), so the user's work tree, index and branches are never
//! touched. A push rejected because another job pushed first is fetched, merged and retried.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use anyhow::{Context, bail};
use xshell::{Shell, cmd};

use super::redact::SecretValues;
use super::signature::{self, Signer};
use crate::record::RunRecord;
use crate::repo::Repo;

/// The ref records are kept on, on the remote.
pub const DEFAULT_REF: &str = "refs/heads/xtask-records";
/// The remote they are pushed to and pulled from.
pub const DEFAULT_REMOTE: &str = "origin";
/// Where this checkout keeps its copy of the remote ref after a fetch (outside
/// `refs/heads` and `refs/remotes`, so no branch list shows it).
pub const LOCAL_COPY: &str = "refs/xtask/records";
/// The folder of the ref's tree holding the records.
const RUNS_IN_REF: &str = "runs";
/// How often a push rejected by a concurrent one is retried.
const PUSH_ATTEMPTS: u32 = 8;

/// Which remote and ref.
#[derive(Debug, Clone)]
pub struct Place {
    /// The remote name or URL.
    pub remote: String,
    /// The full ref name on the remote.
    pub git_ref: String,
}

impl Default for Place {
    fn default() -> Place {
        Place {
            remote: DEFAULT_REMOTE.to_string(),
            git_ref: DEFAULT_REF.to_string(),
        }
    }
}

/// What a push did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Pushed {
    /// Records added to the ref.
    pub added: Vec<String>,
    /// Local records the ref already held.
    pub already_shared: usize,
    /// Records left here because they hold a secret value: (file, where the value is from).
    pub refused: Vec<(String, String)>,
    /// Local files that are not result records (named, not pushed).
    pub skipped: Vec<String>,
    /// Attempts it took (more than one when another push came first).
    pub attempts: u32,
    /// Records added with a signature beside them (`records::signature`).
    pub signed: usize,
}

/// What a pull did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Pulled {
    /// Records written into the local runs directory.
    pub added: Vec<String>,
    /// Records already present locally.
    pub already_local: usize,
    /// Files on the ref that were not result records (named, skipped).
    pub skipped: Vec<String>,
    /// Records on the ref larger than [`crate::files::RECORD_LIMIT`] (named, skipped): a
    /// local file that size would stop every `status` and `report`.
    pub oversize: Vec<String>,
    /// Signatures (`<record>.sig`) written beside the records.
    pub signatures: Vec<String>,
}

impl Pulled {
    /// How many files of the ref were left out, for whatever reason.
    pub fn skipped_count(&self) -> usize {
        self.skipped.len() + self.oversize.len()
    }
}

// Record file names sit with their signature sidecars' names (signature.rs reads both).
pub use super::signature::is_record_name;

struct Git<'a> {
    sh: Shell,
    repo: &'a Repo,
    place: &'a Place,
}

impl<'a> Git<'a> {
    fn new(repo: &'a Repo, place: &'a Place) -> anyhow::Result<Git<'a>> {
        let sh = Shell::new().context("starting a shell for git")?;
        sh.change_dir(repo.root());
        Ok(Git { sh, repo, place })
    }

    /// Fetches the remote ref into [`LOCAL_COPY`]; `None` when the remote has no such ref yet.
    fn fetch(&self) -> anyhow::Result<Option<String>> {
        let Place { remote, git_ref } = self.place;
        let listed = cmd!(self.sh, "git ls-remote --refs {remote} {git_ref}")
            .quiet()
            .ignore_status()
            .output()
            .context("running git ls-remote")?;
        if !listed.status.success() {
            bail!(
                "cannot reach the git remote `{remote}` from {}: {} (check `git remote -v`, or \
                 pass --remote)",
                self.repo.root().display(),
                String::from_utf8_lossy(&listed.stderr).trim()
            );
        }
        if String::from_utf8_lossy(&listed.stdout).trim().is_empty() {
            return Ok(None);
        }
        let refspec = format!("+{git_ref}:{LOCAL_COPY}");
        let fetched = cmd!(self.sh, "git fetch --quiet --no-tags {remote} {refspec}")
            .quiet()
            .ignore_status()
            .output()
            .context("running git fetch")?;
        if !fetched.status.success() {
            bail!(
                "fetching {git_ref} from `{remote}` failed: {}",
                String::from_utf8_lossy(&fetched.stderr).trim()
            );
        }
        let peeled = format!("{LOCAL_COPY}^{{commit}}");
        let commit = cmd!(self.sh, "git rev-parse --verify {peeled}")
            .quiet()
            .read()
            .with_context(|| format!("reading {LOCAL_COPY} after fetching it"))?;
        Ok(Some(commit))
    }

    /// The local copy of the ref as last fetched or pushed, if any.
    fn local_copy(&self) -> Option<String> {
        let peeled = format!("{LOCAL_COPY}^{{commit}}");
        cmd!(self.sh, "git rev-parse --verify --quiet {peeled}")
            .quiet()
            .ignore_stderr()
            .read()
            .ok()
            .filter(|c| !c.is_empty())
    }

    /// `(blob, file name)` of every record on `commit`.
    fn records_on(&self, commit: &str) -> anyhow::Result<Vec<(String, String)>> {
        let listing = cmd!(self.sh, "git ls-tree {commit} {RUNS_IN_REF}/")
            .quiet()
            .read()
            .with_context(|| format!("listing the records of {commit}"))?;
        Ok(listing
            .lines()
            .filter_map(|line| {
                // `<mode> <type> <object>\t<path>`
                let (meta, path) = line.split_once('\t')?;
                let mut meta = meta.split(' ');
                let (_, kind, object) = (meta.next()?, meta.next()?, meta.next()?);
                let name = path.strip_prefix(&format!("{RUNS_IN_REF}/"))?;
                (kind == "blob").then(|| (object.to_string(), name.to_string()))
            })
            .collect())
    }

    /// `wanted` (blob, name) without the blobs larger than a record may be, whose names go to
    /// `oversize`: sizes come from `git cat-file --batch-check`, so none is read.
    fn within_record_limit(
        &self,
        wanted: Vec<(String, String)>,
        oversize: &mut Vec<String>,
    ) -> anyhow::Result<Vec<(String, String)>> {
        if wanted.is_empty() {
            return Ok(wanted);
        }
        let ids: String = wanted.iter().map(|(blob, _)| format!("{blob}\n")).collect();
        let sizes = cmd!(self.sh, "git cat-file --batch-check")
            .stdin(ids)
            .quiet()
            .read()
            .context("reading the sizes of the records on the ref")?;
        let mut kept = Vec::new();
        for ((blob, name), line) in wanted.into_iter().zip(sizes.lines()) {
            // `<id> <type> <size>`
            let size: Option<u64> = line.rsplit(' ').next().and_then(|s| s.parse().ok());
            match size {
                Some(size) if size <= crate::files::RECORD_LIMIT => kept.push((blob, name)),
                _ => oversize.push(name),
            }
        }
        Ok(kept)
    }

    /// One attempt: builds a commit on `parent` adding `new` (name, text) and pushes it.
    /// `Ok(false)` when another push came first.
    fn try_push(
        &self,
        parent: Option<&str>,
        new: &[(String, String)],
        scratch: &Path,
    ) -> anyhow::Result<bool> {
        let sh = &self.sh;
        let index = scratch.join("index");
        let _ = std::fs::remove_file(&index);
        let _index = sh.push_env("GIT_INDEX_FILE", &index);
        if let Some(parent) = parent {
            cmd!(sh, "git read-tree {parent}").quiet().run()?;
        }
        let mut files: Vec<PathBuf> = Vec::new();
        for (name, text) in new {
            let file = scratch.join(name);
            std::fs::write(&file, text).with_context(|| format!("writing {}", file.display()))?;
            files.push(file);
        }
        let blobs = cmd!(sh, "git hash-object -w -- {files...}")
            .quiet()
            .read()
            .context("storing the records in the git object database")?;
        let index_info: String = blobs
            .lines()
            .zip(new)
            .map(|(blob, (name, _))| format!("100644 blob {blob}\t{RUNS_IN_REF}/{name}\n"))
            .collect();
        cmd!(sh, "git update-index --index-info")
            .stdin(index_info)
            .quiet()
            .run()?;
        let tree = cmd!(sh, "git write-tree").quiet().read()?;
        let message = format!("Add {} result record(s)", new.len());
        let parent_args: Vec<&str> = parent.into_iter().flat_map(|p| ["-p", p]).collect();
        let commit = cmd!(sh, "git commit-tree {tree} {parent_args...} -m {message}")
            .quiet()
            .env("GIT_AUTHOR_NAME", "cargo xtask records")
            .env("GIT_AUTHOR_EMAIL", "records@xtask.invalid")
            .env("GIT_COMMITTER_NAME", "cargo xtask records")
            .env("GIT_COMMITTER_EMAIL", "records@xtask.invalid")
            .read()
            .context("committing the records")?;
        let Place { remote, git_ref } = self.place;
        let refspec = format!("{commit}:{git_ref}");
        let pushed = cmd!(sh, "git push --quiet --porcelain {remote} {refspec}")
            .quiet()
            .ignore_status()
            .output()
            .context("running git push")?;
        if pushed.status.success() {
            cmd!(sh, "git update-ref {LOCAL_COPY} {commit}")
                .quiet()
                .run()?;
            return Ok(true);
        }
        let said = format!(
            "{}{}",
            String::from_utf8_lossy(&pushed.stdout),
            String::from_utf8_lossy(&pushed.stderr)
        );
        let lost_race = [
            "non-fast-forward",
            "fetch first",
            "cannot lock ref",
            "failed to lock",
        ]
        .iter()
        .any(|sign| said.contains(sign));
        if lost_race {
            return Ok(false);
        }
        bail!(
            "pushing the records to {git_ref} on `{remote}` failed: {}",
            said.trim()
        )
    }
}

/// Pushes every local record the ref lacks, except those holding a known secret value (in any
/// form [`SecretValues`] knows), which are named in [`Pushed::refused`]. Retries when another
/// push came first. The local records are never changed or removed.
pub fn push(repo: &Repo, place: &Place, secrets: &SecretValues) -> anyhow::Result<Pushed> {
    push_signed(repo, place, secrets, None)
}

/// [`push`], adding beside each record a signature of the exact bytes pushed when `signer` is
/// given (CI).
pub fn push_signed(
    repo: &Repo,
    place: &Place,
    secrets: &SecretValues,
    signer: Option<&Signer>,
) -> anyhow::Result<Pushed> {
    let git = Git::new(repo, place)?;
    let local = local_records(repo)?;
    let scratch = tempfile::tempdir().context("creating a scratch directory")?;
    for attempt in 1..=PUSH_ATTEMPTS {
        let parent = git.fetch()?;
        let shared: BTreeSet<String> = match &parent {
            Some(commit) => git
                .records_on(commit)?
                .into_iter()
                .map(|(_, name)| name)
                .collect(),
            None => BTreeSet::new(),
        };
        let mut outcome = Pushed {
            attempts: attempt,
            ..Pushed::default()
        };
        let mut new = Vec::new();
        for (name, path) in &local {
            if shared.contains(name) {
                outcome.already_shared += 1;
                continue;
            }
            let text = std::fs::read_to_string(path)
                .with_context(|| format!("reading {}", path.display()))?;
            // Only result records travel: a half-written or foreign file stays here.
            if serde_json::from_str::<RunRecord<serde_json::Value>>(&text).is_err() {
                outcome.skipped.push(name.clone());
                continue;
            }
            // A secret in any echoed form keeps the record here: masking it would share a
            // record that still says where the secret was and how long it is.
            if let Some(origin) = secrets.found_in_record(&text) {
                outcome.refused.push((name.clone(), origin.to_string()));
                continue;
            }
            outcome.added.push(name.clone());
            if let Some(signer) = signer {
                new.push(signer.sign(name, text.as_bytes()));
                outcome.signed += 1;
            }
            new.push((name.clone(), text));
        }
        if new.is_empty() || git.try_push(parent.as_deref(), &new, scratch.path())? {
            return Ok(outcome);
        }
        // Another job pushed first: back off a little, then merge with what it pushed.
        let pause = rand::random_range(20..200u64) * u64::from(attempt);
        std::thread::sleep(std::time::Duration::from_millis(pause));
    }
    bail!(
        "pushing the records to {} on `{}` was rejected {PUSH_ATTEMPTS} times because other \
         pushes kept coming first; the local records are kept: run `cargo xtask records push` \
         again",
        place.git_ref,
        place.remote
    )
}

/// Fetches the ref and writes every record it holds that is not local yet into the runs
/// directory. Local records are never overwritten.
pub fn pull(repo: &Repo, place: &Place) -> anyhow::Result<Pulled> {
    let git = Git::new(repo, place)?;
    let mut outcome = Pulled::default();
    let Some(commit) = git.fetch()? else {
        return Ok(outcome);
    };
    let dir = repo.runs_dir();
    std::fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
    let mut wanted = Vec::new();
    for (blob, name) in git.records_on(&commit)? {
        let sidecar = signature::record_of_sidecar(&name).is_some();
        if !is_record_name(&name) && !sidecar {
            outcome.skipped.push(name);
        } else if dir.join(&name).exists() {
            outcome.already_local += usize::from(!sidecar);
        } else {
            wanted.push((blob, name));
        }
    }
    let wanted = git.within_record_limit(wanted, &mut outcome.oversize)?;
    if wanted.is_empty() {
        return Ok(outcome);
    }
    // One `git cat-file --batch` for all of them, not one process per record.
    let ids: String = wanted.iter().map(|(blob, _)| format!("{blob}\n")).collect();
    let batch = cmd!(git.sh, "git cat-file --batch")
        .stdin(ids)
        .quiet()
        .output()
        .with_context(|| format!("reading the records of {commit}"))?;
    let mut rest: &[u8] = &batch.stdout;
    for (blob, name) in wanted {
        let (text, after) =
            next_blob(rest).with_context(|| format!("reading {name} ({blob}) from {commit}"))?;
        rest = after;
        let sidecar = signature::record_of_sidecar(&name).is_some();
        let readable = if sidecar {
            serde_json::from_slice::<signature::Signature>(text).is_ok()
        } else {
            serde_json::from_slice::<RunRecord<serde_json::Value>>(text).is_ok()
        };
        if !readable {
            outcome.skipped.push(name);
            continue;
        }
        let path = dir.join(&name);
        let partial = dir.join(format!("{name}.partial"));
        std::fs::write(&partial, text).with_context(|| format!("writing {}", partial.display()))?;
        std::fs::rename(&partial, &path).with_context(|| format!("writing {}", path.display()))?;
        if sidecar {
            outcome.signatures.push(name);
        } else {
            outcome.added.push(name);
        }
    }
    Ok(outcome)
}

/// The record file names on the local copy of the ref (as last fetched or pushed).
pub fn shared_names(repo: &Repo, place: &Place) -> anyhow::Result<Option<BTreeSet<String>>> {
    let git = Git::new(repo, place)?;
    let Some(commit) = git.local_copy() else {
        return Ok(None);
    };
    Ok(Some(
        git.records_on(&commit)?
            .into_iter()
            .map(|(_, name)| name)
            .collect(),
    ))
}

/// The content of the first object of `git cat-file --batch` output
/// (`<id> <type> <size>\n<content>\n`) and what follows it.
fn next_blob(output: &[u8]) -> anyhow::Result<(&[u8], &[u8])> {
    let header_end = output
        .iter()
        .position(|b| *b == b'\n')
        .context("git cat-file ended early")?;
    let header = String::from_utf8_lossy(&output[..header_end]);
    let size: usize = header
        .rsplit(' ')
        .next()
        .and_then(|s| s.parse().ok())
        .with_context(|| format!("git cat-file answered `{header}`"))?;
    let start = header_end + 1;
    let end = start + size;
    if output.len() < end + 1 {
        bail!("git cat-file ended early");
    }
    Ok((&output[start..end], &output[end + 1..]))
}

/// `(file name, path)` of each local record, sorted by name.
fn local_records(repo: &Repo) -> anyhow::Result<Vec<(String, PathBuf)>> {
    let dir = repo.runs_dir();
    let entries = match std::fs::read_dir(&dir) {
        Ok(entries) => entries,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(e).with_context(|| format!("reading {}", dir.display())),
    };
    let mut found = Vec::new();
    for entry in entries {
        let entry = entry.with_context(|| format!("reading {}", dir.display()))?;
        let name = entry.file_name().to_string_lossy().into_owned();
        if is_record_name(&name) && entry.file_type().is_ok_and(|t| t.is_file()) {
            found.push((name, entry.path()));
        }
    }
    found.sort();
    Ok(found)
}
