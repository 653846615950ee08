//! Which records a reader may use, by their signatures ([`super::signature`]): every reader
//! leaves out a record whose signature fails and names it; production's gate (`promote`,
//! `report --env production --check`) keeps only records CI signed and that verify, names the
//! ones it ignored, and refuses outright when a signature fails or there is no key.

use serde::Serialize;

use super::signature::{KEY_ENV, Provenance, SigningKey, provenance};
use crate::record::Loaded;

/// Which records a reader may use.
#[derive(Debug, Clone, Default)]
pub struct Trust {
    /// The key to verify signatures with (`RECORDS_SIGNING_KEY`).
    pub key: Option<SigningKey>,
    /// Use only records CI signed and that verify (the production gate and `promote`).
    pub signed_only: bool,
}

impl Trust {
    /// The key from the environment; `signed_only` as the caller says.
    pub fn from_env(signed_only: bool) -> anyhow::Result<Trust> {
        Ok(Trust {
            key: SigningKey::from_env()?,
            signed_only,
        })
    }
}

/// Records sorted by their signatures: the ones a reader may use, and the ones it may not,
/// by file.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Screened {
    /// Whether only verified records were kept.
    pub signed_only: bool,
    /// Whether there was a key to verify with.
    pub key: bool,
    /// Kept records signed by CI that verify.
    pub verified: usize,
    /// Kept records without a verified signature (local runs), outside `signed_only`.
    pub local: usize,
    /// Records left out because they are not verified as CI's (under `signed_only`).
    pub unsigned: Vec<String>,
    /// `(file, why)` of records left out because their signature fails.
    pub failed: Vec<(String, String)>,
}

/// How many names a warning lists before it says how many more.
const NAMED: usize = 10;

impl Screened {
    /// WARN lines for the report: every record with a failing signature, and under
    /// `signed_only` the records it ignored and a missing key.
    pub fn warnings(&self) -> Vec<String> {
        let mut warnings: Vec<String> = self
            .failed
            .iter()
            .map(|(file, why)| format!("{file}: its signature fails ({why}): not used"))
            .collect();
        if self.signed_only && !self.key {
            warnings.push(format!(
                "{KEY_ENV} is not set: no record can be verified as CI's, so none counts here"
            ));
        }
        if self.signed_only && !self.unsigned.is_empty() {
            let more = self.unsigned.len().saturating_sub(NAMED);
            warnings.push(format!(
                "{} record(s) not signed by CI are not used here: {}{}",
                self.unsigned.len(),
                self.unsigned[..self.unsigned.len().min(NAMED)].join(", "),
                if more > 0 {
                    format!(" and {more} more")
                } else {
                    String::new()
                }
            ));
        }
        warnings
    }

    /// Why the evidence cannot gate production at all: a record whose signature fails (the
    /// evidence was tampered with), or no key to verify with. `None` outside `signed_only`.
    pub fn blocking(&self) -> Option<String> {
        if !self.signed_only {
            return None;
        }
        if !self.key {
            return Some(format!(
                "{KEY_ENV} is not set, so no record is verified as CI's: run this in the \
                 workflow that has the secret"
            ));
        }
        (!self.failed.is_empty()).then(|| {
            let files: Vec<&str> = self.failed.iter().map(|(f, _)| f.as_str()).collect();
            format!(
                "record(s) whose signature fails (edited after CI signed them?): {}; delete \
                 them and `cargo xtask records pull` again, or rerun the tasks in CI",
                files.join(", ")
            )
        })
    }
}

/// Keeps the records `trust` allows, oldest-first order kept.
pub fn screen(records: Vec<Loaded>, trust: &Trust) -> (Vec<Loaded>, Screened) {
    let mut screened = Screened {
        signed_only: trust.signed_only,
        key: trust.key.is_some(),
        ..Screened::default()
    };
    let mut kept = Vec::new();
    for loaded in records {
        let file = loaded.file_name();
        match provenance(trust.key.as_ref(), &loaded.path) {
            Provenance::Failed(why) => screened.failed.push((file, why)),
            Provenance::Verified(_) => {
                screened.verified += 1;
                kept.push(loaded);
            }
            _ if trust.signed_only => screened.unsigned.push(file),
            _ => {
                screened.local += 1;
                kept.push(loaded);
            }
        }
    }
    (kept, screened)
}
