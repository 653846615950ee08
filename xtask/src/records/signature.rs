//! Which records CI made: anyone with push access can write a file to the records ref, so
//! `promote` and the production gate would otherwise decide from evidence anyone could forge.
//! `records push` under CI signs every record it adds with HMAC-SHA256 keyed by
//! `RECORDS_SIGNING_KEY` (a repository secret only the workflows see); `records pull`, the
//! report and promote verify.
//!
//! The signature is a sidecar file beside the record, `<record>.sig` (so `runs/X.json` travels
//! with `runs/X.json.sig`), holding JSON: the record's file name, the workflow run that signed
//! it (`GITHUB_WORKFLOW`, `GITHUB_RUN_ID`, `GITHUB_RUN_ATTEMPT`, `GITHUB_REPOSITORY`,
//! `GITHUB_SHA`), `key_id` (which key signed, without revealing it) and `mac`, the hex HMAC over
//! a length-prefixed message of a domain tag, the file name, the signing run and the record's
//! exact bytes. Editing the record, renaming it or claiming another run breaks it; a signature
//! made with another key (before a rotation) is not verified, and is not taken for tampering. The record itself is never changed, so unsigned readers
//! and older versions read it as before.
//!
//! A record without a sidecar is local (a developer's run): used by every report, never by
//! the production gate. A sidecar that does not verify is never used, and is named.

use std::path::Path;

use anyhow::bail;
use hmac::{Hmac, KeyInit, Mac};
use serde::{Deserialize, Serialize};
use sha2::Sha256;

/// The variable holding the key (a repository secret in GitHub Actions).
pub const KEY_ENV: &str = "RECORDS_SIGNING_KEY";
/// The shortest key accepted: HMAC-SHA256's own output size, in characters.
pub const MIN_KEY_LEN: usize = 32;
/// What a sidecar's name adds to its record's.
pub const SIDECAR_SUFFIX: &str = ".sig";
const ALGORITHM: &str = "HMAC-SHA256";
const DOMAIN: &str = "sist-cabanas result record v1";

/// The signing key. Never printed: its `Debug` says only that it is set.
#[derive(Clone)]
pub struct SigningKey(Vec<u8>);

impl std::fmt::Debug for SigningKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("SigningKey(****)")
    }
}

impl SigningKey {
    /// A key of at least [`MIN_KEY_LEN`] characters.
    pub fn new(key: &str) -> anyhow::Result<SigningKey> {
        if key.trim().len() < MIN_KEY_LEN {
            bail!(
                "{KEY_ENV} is shorter than {MIN_KEY_LEN} characters: set the repository secret \
                 to a random value, e.g. the output of `openssl rand -hex 32`"
            );
        }
        Ok(SigningKey(key.trim().as_bytes().to_vec()))
    }

    /// `$RECORDS_SIGNING_KEY`, `None` when unset or empty (a local run).
    pub fn from_env() -> anyhow::Result<Option<SigningKey>> {
        match std::env::var(KEY_ENV) {
            Ok(key) if !key.is_empty() => SigningKey::new(&key).map(Some),
            _ => Ok(None),
        }
    }

    /// A name for the key that does not reveal it: the first 16 hex of its HMAC of a fixed
    /// text. A signature made with another key (before a rotation) is then told apart from
    /// one that fails.
    pub fn id(&self) -> String {
        let mut mac = Hmac::<Sha256>::new_from_slice(&self.0).expect("HMAC takes any key");
        mac.update(b"sist-cabanas records key id");
        mac.finalize().into_bytes()[..8]
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect()
    }

    fn mac(&self, record: &str, by: &SignedBy, bytes: &[u8]) -> Hmac<Sha256> {
        let mut mac = Hmac::<Sha256>::new_from_slice(&self.0).expect("HMAC takes any key");
        let by = serde_json::to_vec(by).expect("a SignedBy serialises");
        // Each part length-prefixed, so no two different inputs make the same message.
        for part in [DOMAIN.as_bytes(), record.as_bytes(), &by, bytes] {
            mac.update(&(part.len() as u64).to_be_bytes());
            mac.update(part);
        }
        mac
    }
}

/// The workflow run that signed a record.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SignedBy {
    /// `GITHUB_WORKFLOW` (e.g. `deploy`), or `unknown` outside GitHub Actions.
    pub workflow: String,
    /// `GITHUB_RUN_ID`.
    pub run_id: Option<String>,
    /// `GITHUB_RUN_ATTEMPT`.
    pub run_attempt: Option<String>,
    /// `GITHUB_REPOSITORY`.
    pub repository: Option<String>,
    /// `GITHUB_SHA`: the commit the workflow ran.
    pub commit: Option<String>,
}

impl SignedBy {
    /// The run this process is part of, from GitHub Actions' default variables.
    pub fn from_env() -> SignedBy {
        let var = |name: &str| std::env::var(name).ok().filter(|v| !v.is_empty());
        SignedBy {
            workflow: var("GITHUB_WORKFLOW").unwrap_or_else(|| "unknown".into()),
            run_id: var("GITHUB_RUN_ID"),
            run_attempt: var("GITHUB_RUN_ATTEMPT"),
            repository: var("GITHUB_REPOSITORY"),
            commit: var("GITHUB_SHA"),
        }
    }

    /// `deploy run 123 (attempt 1)`.
    pub fn describe(&self) -> String {
        let run = self.run_id.as_deref().unwrap_or("?");
        match &self.run_attempt {
            Some(attempt) => format!("{} run {run} (attempt {attempt})", self.workflow),
            None => format!("{} run {run}", self.workflow),
        }
    }
}

/// The content of a sidecar.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Signature {
    /// `HMAC-SHA256`.
    pub algorithm: String,
    /// The record's file name.
    pub record: String,
    /// The run that signed it.
    pub signed_by: SignedBy,
    /// Which key signed it ([`SigningKey::id`]).
    pub key_id: String,
    /// Hex HMAC (see the module's documentation).
    pub mac: String,
}

/// What `records push` signs with: the key and the run this process is part of.
#[derive(Debug, Clone)]
pub struct Signer {
    /// The key.
    pub key: SigningKey,
    /// The run named in every signature.
    pub by: SignedBy,
}

impl Signer {
    /// `Some` when `RECORDS_SIGNING_KEY` is set (CI), naming the run from GitHub's variables.
    pub fn from_env() -> anyhow::Result<Option<Signer>> {
        Ok(SigningKey::from_env()?.map(|key| Signer {
            key,
            by: SignedBy::from_env(),
        }))
    }

    /// `(sidecar name, sidecar text)` for the record `record` whose bytes are `bytes`.
    pub fn sign(&self, record: &str, bytes: &[u8]) -> (String, String) {
        sign(&self.key, record, bytes, self.by.clone())
    }
}

/// The sidecar's name for a record file name.
pub fn sidecar_name(record: &str) -> String {
    format!("{record}{SIDECAR_SUFFIX}")
}

/// The record a sidecar name belongs to, when `name` is one.
pub fn record_of_sidecar(name: &str) -> Option<&str> {
    name.strip_suffix(SIDECAR_SUFFIX)
        .filter(|record| is_record_name(record))
}

/// Signs the exact `bytes` of the record called `record`: `(sidecar name, sidecar text)`.
pub fn sign(key: &SigningKey, record: &str, bytes: &[u8], by: SignedBy) -> (String, String) {
    let mac = key.mac(record, &by, bytes).finalize().into_bytes();
    let signature = Signature {
        algorithm: ALGORITHM.into(),
        record: record.into(),
        signed_by: by,
        key_id: key.id(),
        mac: mac.iter().map(|b| format!("{b:02x}")).collect(),
    };
    let text = serde_json::to_string_pretty(&signature).expect("a Signature serialises") + "\n";
    (sidecar_name(record), text)
}

/// Where a record came from, as far as its signature tells.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Provenance {
    /// No sidecar: a local run.
    Local,
    /// Signed by this workflow run, and the signature verifies.
    Verified(SignedBy),
    /// Signed, but not with the key here (none here, or signed before a rotation).
    Unverifiable(SignedBy),
    /// A sidecar that does not verify, and why: never used.
    Failed(String),
}

impl Provenance {
    /// One word or phrase for listings: `local`, `CI (deploy run 7)`, `signed, unverified`,
    /// `SIGNATURE FAILS`.
    pub fn label(&self) -> String {
        match self {
            Provenance::Local => "local".into(),
            Provenance::Verified(by) => format!("CI ({})", by.describe()),
            Provenance::Unverifiable(by) => format!("signed by {}, unverified", by.describe()),
            Provenance::Failed(_) => "SIGNATURE FAILS".into(),
        }
    }
}

/// The provenance of the record at `path` (its sidecar is `<path>.sig`), checked against its
/// bytes on disk now.
pub fn provenance(key: Option<&SigningKey>, path: &Path) -> Provenance {
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let sidecar = path.with_file_name(sidecar_name(&name));
    let text = match std::fs::read(&sidecar) {
        Ok(text) => text,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Provenance::Local,
        Err(e) => return Provenance::Failed(format!("cannot read {}: {e}", sidecar.display())),
    };
    let Ok(signature) = serde_json::from_slice::<Signature>(&text) else {
        return Provenance::Failed(format!("{} is not a signature", sidecar_name(&name)));
    };
    if signature.algorithm != ALGORITHM {
        return Provenance::Failed(format!("unknown algorithm {:?}", signature.algorithm));
    }
    if signature.record != name {
        return Provenance::Failed(format!("the signature is for {}", signature.record));
    }
    let Some(key) = key.filter(|key| key.id() == signature.key_id) else {
        return Provenance::Unverifiable(signature.signed_by);
    };
    let Ok(bytes) = std::fs::read(path) else {
        return Provenance::Failed(format!("cannot read {}", path.display()));
    };
    let Ok(expected) = hex::decode(&signature.mac) else {
        return Provenance::Failed("the signature's mac is not hex".into());
    };
    // `verify_slice` compares in constant time.
    match key
        .mac(&name, &signature.signed_by, &bytes)
        .verify_slice(&expected)
    {
        Ok(()) => Provenance::Verified(signature.signed_by),
        Err(_) => Provenance::Failed(
            "the signature does not match the record's bytes (edited after signing?)".into(),
        ),
    }
}

/// Counts of provenances over some records.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Tally {
    /// Signed by CI, verified.
    pub verified: usize,
    /// No signature: local runs.
    pub unsigned: usize,
    /// Signed, not verified (no key here, or another key).
    pub unverified: usize,
    /// `(file, why)` of every record whose signature fails.
    pub failed: Vec<(String, String)>,
}

impl Tally {
    /// Adds one record's provenance.
    pub fn count(&mut self, file: &str, provenance: &Provenance) {
        match provenance {
            Provenance::Local => self.unsigned += 1,
            Provenance::Verified(_) => self.verified += 1,
            Provenance::Unverifiable(_) => self.unverified += 1,
            Provenance::Failed(why) => self.failed.push((file.to_string(), why.clone())),
        }
    }
}

/// Whether `name` may be a record file: a plain file name ending in `.json`.
pub fn is_record_name(name: &str) -> bool {
    name.ends_with(".json")
        && !name.starts_with('.')
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-'))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key() -> SigningKey {
        SigningKey::new("k3y-for-tests-0123456789abcdef0123456789").unwrap()
    }

    fn by() -> SignedBy {
        SignedBy {
            workflow: "deploy".into(),
            run_id: Some("7".into()),
            run_attempt: Some("1".into()),
            repository: Some("sist/cabanas".into()),
            commit: None,
        }
    }

    fn signed(dir: &Path, name: &str, text: &str) -> std::path::PathBuf {
        let path = dir.join(name);
        std::fs::write(&path, text).unwrap();
        let (sidecar, signature) = sign(&key(), name, text.as_bytes(), by());
        std::fs::write(dir.join(sidecar), signature).unwrap();
        path
    }

    #[test]
    fn a_signed_record_verifies_and_an_edited_one_fails() {
        let dir = tempfile::tempdir().unwrap();
        let path = signed(dir.path(), "a.json", "{\"verdict\":\"fail\"}\n");
        assert_eq!(provenance(Some(&key()), &path), Provenance::Verified(by()));
        assert_eq!(provenance(None, &path), Provenance::Unverifiable(by()));
        std::fs::write(&path, "{\"verdict\":\"pass\"}\n").unwrap();
        assert!(matches!(
            provenance(Some(&key()), &path),
            Provenance::Failed(_)
        ));
        // Another key (a rotation): not verified, and not taken for tampering either.
        let other = SigningKey::new("another-key-0123456789abcdef0123456789").unwrap();
        let path = signed(dir.path(), "b.json", "{}\n");
        assert_eq!(
            provenance(Some(&other), &path),
            Provenance::Unverifiable(by())
        );
    }

    #[test]
    fn a_signature_moved_to_another_record_or_run_fails() {
        let dir = tempfile::tempdir().unwrap();
        signed(dir.path(), "a.json", "{}\n");
        std::fs::write(dir.path().join("b.json"), "{}\n").unwrap();
        let moved = std::fs::read_to_string(dir.path().join("a.json.sig")).unwrap();
        std::fs::write(dir.path().join("b.json.sig"), &moved).unwrap();
        let b = dir.path().join("b.json");
        assert!(matches!(
            provenance(Some(&key()), &b),
            Provenance::Failed(_)
        ));
        let claimed = moved.replace("\"run_id\": \"7\"", "\"run_id\": \"8\"");
        assert_ne!(claimed, moved);
        std::fs::write(dir.path().join("a.json.sig"), claimed).unwrap();
        let a = dir.path().join("a.json");
        assert!(matches!(
            provenance(Some(&key()), &a),
            Provenance::Failed(_)
        ));
    }

    #[test]
    fn an_unsigned_record_is_local_and_short_keys_are_refused() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("a.json");
        std::fs::write(&path, "{}").unwrap();
        assert_eq!(provenance(Some(&key()), &path), Provenance::Local);
        assert!(SigningKey::new("short").is_err());
        assert_eq!(format!("{:?}", key()), "SigningKey(****)");
        assert_eq!(record_of_sidecar("a.json.sig"), Some("a.json"));
        assert_eq!(record_of_sidecar("a.json"), None);
    }
}
