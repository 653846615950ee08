//! What `secrets` sent, in a form that can be compared but not read back: a salted SHA-256
//! over every key and value sent. The env file is git-ignored, so the deployable inputs'
//! tree never sees it change; this fingerprint is what tells the decision map that the
//! values on Fly are no longer the ones in the file.
//!
//! The digest covers the whole set at once, and the set always holds a secret of at least 32
//! random characters (`JWT_SECRET`, enforced by the template rules), so it cannot be used to
//! test guesses of one low-entropy value. The salt is random per run and stored beside it.

use rand::Rng;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

/// The fingerprint of the key-value pairs one `secrets` run sent.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SentFingerprint {
    /// 16 random bytes, hex.
    pub salt: String,
    /// SHA-256 over the salt and every `(key, value)` sorted by key, hex.
    pub sha256: String,
}

impl SentFingerprint {
    /// The fingerprint of `entries` under a fresh random salt.
    pub fn of(entries: &[(String, String)]) -> SentFingerprint {
        let salt: [u8; 16] = rand::rng().random();
        let salt = hex(&salt);
        SentFingerprint {
            sha256: digest(&salt, entries),
            salt,
        }
    }
}

/// Whether `entries` are exactly what was sent with this salt and digest (same keys, same
/// values).
pub fn same_as_sent(salt: &str, sha256: &str, entries: &[(String, String)]) -> bool {
    digest(salt, entries) == sha256
}

fn digest(salt: &str, entries: &[(String, String)]) -> String {
    let mut sorted: Vec<&(String, String)> = entries.iter().collect();
    sorted.sort();
    let mut hasher = Sha256::new();
    // Each field length-prefixed, so no two different sets hash the same input.
    for field in
        std::iter::once(salt).chain(sorted.iter().flat_map(|(k, v)| [k.as_str(), v.as_str()]))
    {
        hasher.update((field.len() as u64).to_be_bytes());
        hasher.update(field.as_bytes());
    }
    hex(&hasher.finalize())
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entries(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn the_same_values_in_any_order_match_and_any_change_does_not() {
        let sent = entries(&[("JWT_SECRET", "a".repeat(40).as_str()), ("ADMIN", "x@y.z")]);
        let print = SentFingerprint::of(&sent);
        let reordered = entries(&[("ADMIN", "x@y.z"), ("JWT_SECRET", "a".repeat(40).as_str())]);
        assert!(same_as_sent(&print.salt, &print.sha256, &reordered));
        let changed = entries(&[("ADMIN", "x@y.w"), ("JWT_SECRET", "a".repeat(40).as_str())]);
        assert!(!same_as_sent(&print.salt, &print.sha256, &changed));
        let added = [sent.clone(), entries(&[("NEW", "1")])].concat();
        assert!(!same_as_sent(&print.salt, &print.sha256, &added));
        // Moving a character between key and value changes the digest too.
        let shifted = entries(&[("ADMINx", "@y.z"), ("JWT_SECRET", "a".repeat(40).as_str())]);
        assert!(!same_as_sent(&print.salt, &print.sha256, &shifted));
    }

    #[test]
    fn the_fingerprint_holds_no_value_and_differs_per_run() {
        let sent = entries(&[("JWT_SECRET", "canary-value-that-must-not-appear-0123456789")]);
        let one = SentFingerprint::of(&sent);
        let two = SentFingerprint::of(&sent);
        assert_ne!(one.sha256, two.sha256, "a fresh salt each run");
        let json = serde_json::to_string(&one).unwrap();
        assert!(!json.contains("canary"), "{json}");
    }
}
