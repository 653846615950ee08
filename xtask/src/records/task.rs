//! `cargo xtask records push|pull|list`: share result records through a git ref of the
//! repository, so CI, teammates and a reviewer's fresh clone read the same evidence.

use serde::Serialize;

use super::git_ref::{self, Place};
use super::redact::SecretValues;
use super::signature::{self, Signer, SigningKey, Tally};
use crate::output::Output;
use crate::record;
use crate::repo::Repo;
use crate::verdict::Verdict;

/// Options of `cargo xtask records`.
#[derive(Debug, Clone)]
pub struct Options {
    /// What to do with the records.
    pub action: Action,
    /// The git remote (name or URL) that holds the records ref.
    pub remote: String,
    /// The ref on the remote that holds the records (one JSON file per run, append-only); a
    /// bare name is a branch.
    pub git_ref: String,
}

/// What to do with the records.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    /// Add every local record the remote ref lacks, retrying when another push came first. A
    /// record holding a value of a filled env file (in any echoed form) stays here: exit 1.
    Push,
    /// Copy every record of the remote ref that is not local yet into target/xtask/runs/.
    Pull,
    /// List the local records, newest last, and whether each is on the ref (as last fetched).
    List,
}

/// One line of `records list`.
#[derive(Debug, Clone, Serialize)]
pub struct Listed {
    /// File name.
    pub file: String,
    /// Task.
    pub task: String,
    /// Environment.
    pub environment: String,
    /// Verdict label.
    pub verdict: String,
    /// Claimed start (RFC 3339).
    pub started_at: String,
    /// Whether it claims to start after this machine saved it.
    pub from_future: bool,
    /// On the ref as last fetched or pushed (`None`: never fetched here).
    pub shared: Option<bool>,
    /// Who made it, as its signature tells: `local`, `CI (deploy run 7)`, ... (see
    /// [`signature::Provenance::label`]; checked when `RECORDS_SIGNING_KEY` is set).
    pub provenance: String,
}

#[derive(Serialize)]
struct Summary<'a> {
    action: &'a str,
    added: &'a [String],
    refused: &'a [String],
    skipped: &'a [String],
    unchanged: usize,
    /// Push: how many were signed. Pull: the signatures of the records pulled.
    #[serde(skip_serializing_if = "Option::is_none")]
    signatures: Option<Signatures>,
}

#[derive(Serialize)]
struct Signatures {
    /// Whether `RECORDS_SIGNING_KEY` was set.
    key: bool,
    signed: usize,
    #[serde(flatten)]
    tally: Option<Tally>,
}

/// Entry point of `cargo xtask records`.
pub fn run(args: Options, output: Output) -> anyhow::Result<Verdict> {
    let repo = Repo::discover()?;
    let place = Place {
        remote: args.remote.clone(),
        git_ref: full_ref(&args.git_ref),
    };
    match args.action {
        Action::Push => {
            let secrets = SecretValues::of_checkout(&repo)?;
            let signer = Signer::from_env()?;
            let pushed = git_ref::push_signed(&repo, &place, &secrets, signer.as_ref())?;
            if !pushed.skipped.is_empty() {
                output.human(&format!(
                    "records push: not result records, left out: {}\n",
                    pushed.skipped.join(", ")
                ));
            }
            output.human(&format!(
                "records push: {} added to {} on {} ({}), {} already there\n",
                pushed.added.len(),
                place.git_ref,
                place.remote,
                match &signer {
                    Some(signer) => format!("signed as {}", signer.by.describe()),
                    None => format!("unsigned: {} is not set", signature::KEY_ENV),
                },
                pushed.already_shared,
            ));
            output.human(&refusals(&repo, &pushed.refused));
            let refused: Vec<String> = pushed.refused.iter().map(|(f, _)| f.clone()).collect();
            output.machine(&Summary {
                action: "push",
                added: &pushed.added,
                refused: &refused,
                skipped: &pushed.skipped,
                unchanged: pushed.already_shared,
                signatures: Some(Signatures {
                    key: signer.is_some(),
                    signed: pushed.signed,
                    tally: None,
                }),
            })?;
            if !refused.is_empty() {
                return Ok(Verdict::Fail);
            }
        }
        Action::Pull => {
            let key = SigningKey::from_env()?;
            let pulled = git_ref::pull(&repo, &place)?;
            // The arrival is the first sighting here, whatever the records claim.
            let arrived = chrono::Utc::now();
            super::seen::note(
                &repo.runs_dir(),
                pulled.added.iter().map(|name| (name.clone(), arrived)),
            )?;
            let mut tally = Tally::default();
            for name in &pulled.added {
                let provenance = signature::provenance(key.as_ref(), &repo.runs_dir().join(name));
                tally.count(name, &provenance);
            }
            output.human(&format!(
                "records pull: {} new from {} on {}, {} already here{}\n",
                pulled.added.len(),
                place.git_ref,
                place.remote,
                pulled.already_local,
                pull_skips(&pulled),
            ));
            let skipped: Vec<String> = pulled
                .skipped
                .iter()
                .chain(&pulled.oversize)
                .cloned()
                .collect();
            output.machine(&Summary {
                action: "pull",
                added: &pulled.added,
                refused: &[],
                skipped: &skipped,
                unchanged: pulled.already_local,
                signatures: Some(Signatures {
                    key: key.is_some(),
                    signed: pulled.signatures.len(),
                    tally: Some(tally.clone()),
                }),
            })?;
            output.human(&pull_signatures(key.is_some(), &tally));
            if !tally.failed.is_empty() {
                return Ok(Verdict::Warn);
            }
        }
        Action::List => {
            let listed = list(&repo, &place)?;
            let mut text = String::new();
            for l in &listed {
                let shared = match l.shared {
                    Some(true) => "shared",
                    Some(false) => "local only",
                    None => "not fetched",
                };
                let warn = if l.from_future {
                    "  WARN: dated in the future"
                } else {
                    ""
                };
                text.push_str(&format!(
                    "{}  {:<10} {:<11} {:<5} {:<11} {}  {}{warn}\n",
                    l.started_at, l.task, l.environment, l.verdict, shared, l.file, l.provenance
                ));
            }
            if listed.is_empty() {
                text.push_str("no records yet: run a task, or `cargo xtask records pull`\n");
            }
            output.human(&text);
            output.machine(&listed)?;
        }
    }
    Ok(Verdict::Pass)
}

/// The message for records a push left here because they hold a secret value.
fn refusals(repo: &Repo, refused: &[(String, String)]) -> String {
    let runs = repo.runs_dir();
    let runs = runs.strip_prefix(repo.root()).unwrap_or(&runs);
    refused
        .iter()
        .map(|(file, origin)| {
            format!(
                "records push: refused {}: it holds the value of {origin} (raw or escaped); it \
                 stays local. Fix the task that recorded it, delete the file, and rotate the \
                 secret if the record was copied anywhere\n",
                runs.join(file).display()
            )
        })
        .collect()
}

/// `; skipped 2: ...` for a pull that left files of the ref out, naming them and why.
fn pull_skips(pulled: &git_ref::Pulled) -> String {
    if pulled.skipped_count() == 0 {
        return String::new();
    }
    let mut why = Vec::new();
    if !pulled.skipped.is_empty() {
        why.push(format!("not result records: {}", pulled.skipped.join(", ")));
    }
    if !pulled.oversize.is_empty() {
        why.push(format!(
            "larger than the {} MiB a record may be: {}",
            crate::files::RECORD_LIMIT / (1024 * 1024),
            pulled.oversize.join(", ")
        ));
    }
    format!("; skipped {} ({})", pulled.skipped_count(), why.join("; "))
}

/// The signature line of `records pull`: how many of the records pulled CI signed (and
/// verify), how many are local runs, and every one whose signature fails, by file.
fn pull_signatures(key: bool, tally: &Tally) -> String {
    let mut text = if key {
        format!(
            "records pull: signatures: {} verified, {} unsigned (local runs), {} failed{}\n",
            tally.verified,
            tally.unsigned,
            tally.failed.len(),
            if tally.unverified > 0 {
                format!(
                    ", {} signed with another key (before a rotation)",
                    tally.unverified
                )
            } else {
                String::new()
            }
        )
    } else {
        format!(
            "records pull: signatures not checked ({} is not set): {} signed, {} unsigned \
             (local runs)\n",
            signature::KEY_ENV,
            tally.unverified,
            tally.unsigned
        )
    };
    for (file, why) in &tally.failed {
        text.push_str(&format!(
            "records pull: WARN: {file}: {why}; it is never used as CI's evidence\n"
        ));
    }
    text
}

/// A bare branch name means that branch: a push of a commit needs the full ref name.
pub fn full_ref(name: &str) -> String {
    if name.starts_with("refs/") {
        name.to_string()
    } else {
        format!("refs/heads/{name}")
    }
}

/// The local records, oldest first, with whether each is on the ref and who made it.
pub fn list(repo: &Repo, place: &Place) -> anyhow::Result<Vec<Listed>> {
    let shared = git_ref::shared_names(repo, place)?;
    let key = SigningKey::from_env()?;
    Ok(record::load_all(repo)?
        .into_iter()
        .map(|l| {
            let file = l.file_name();
            Listed {
                provenance: signature::provenance(key.as_ref(), &l.path).label(),
                shared: shared.as_ref().map(|s| s.contains(&file)),
                from_future: l.from_future(),
                file,
                task: l.record.task,
                environment: l.record.environment,
                verdict: l.record.verdict.label().to_string(),
                started_at: l
                    .record
                    .started_at
                    .to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
            }
        })
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_bare_ref_name_is_a_branch() {
        assert_eq!(full_ref("xtask-records"), "refs/heads/xtask-records");
        assert_eq!(full_ref("refs/xtask/shared"), "refs/xtask/shared");
    }
}
