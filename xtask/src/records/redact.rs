//! Records travel to a shared ref, so before one leaves this machine it is searched for every
//! secret value this checkout knows (the filled env files of `ops/deploy.toml`, the Fly token
//! and the records signing key in the environment), in every form the masker knows (raw, JSON, Go `%q`, shell and bash
//! `printf %q` quoting, `\uXXXX` escapes; see [`crate::masking::forms`]). Tasks already keep
//! secrets out of what they record; this is the last gate before the records are shared.

use anyhow::Context;

use crate::config::{CONFIG_PATH, DeployConfig};
use crate::masking::Masker;
use crate::predeploy::envfile::read_env_file;
use crate::repo::Repo;

/// Process variables whose values are secrets wherever they appear.
const SECRET_VARIABLES: &[&str] = &[
    "FLY_API_TOKEN",
    "FLY_ACCESS_TOKEN",
    super::signature::KEY_ENV,
];

/// Values shorter than this would mask ordinary words (`true`, `5432`); they cannot be told
/// apart from them anyway.
const SHORTEST_MASKED: usize = 6;

/// The secret values to keep out of shared records. Its `Debug` shows counts only.
#[derive(Debug, Default)]
pub struct SecretValues {
    masker: Masker,
}

impl SecretValues {
    /// Every value of every environment's filled env file (absent files skipped), plus the
    /// Fly token of this process. A broken `ops/deploy.toml` is an error: without it the
    /// env files cannot be found, and records must not leave unchecked.
    pub fn of_checkout(repo: &Repo) -> anyhow::Result<SecretValues> {
        let mut secrets = SecretValues::default();
        if repo.path(CONFIG_PATH).exists() {
            let config = DeployConfig::load(repo)?;
            for environment in config.environments.values() {
                let path = repo.path(&environment.env_file);
                let text = match std::fs::read_to_string(&path) {
                    Ok(text) => text,
                    Err(e) if e.kind() == std::io::ErrorKind::NotFound => continue,
                    Err(e) => {
                        return Err(e).with_context(|| {
                            format!(
                                "reading {} to keep its values out of shared records",
                                path.display()
                            )
                        });
                    }
                };
                let (entries, _) = read_env_file(&text);
                for entry in &entries {
                    let origin = format!("{} in {}", entry.key, environment.env_file.display());
                    secrets.add_from(entry.value.expose(), &origin);
                }
            }
        }
        for name in SECRET_VARIABLES {
            if let Ok(value) = std::env::var(name) {
                secrets.add_from(&value, &format!("{name} in the environment"));
            }
        }
        Ok(secrets)
    }

    /// Adds values (and each of their lines, for multi-line values).
    pub fn add<'a>(&mut self, values: impl IntoIterator<Item = &'a str>) {
        for value in values {
            self.add_from(value, "a secret value");
        }
    }

    /// Adds one value, saying where it came from (`JWT_SECRET in env/.env.fly.staging`).
    pub fn add_from(&mut self, value: &str, origin: &str) {
        self.masker.add(value, origin, SHORTEST_MASKED);
    }

    /// `text` with every value replaced by `****`, and whether anything was.
    pub fn mask(&self, text: &str) -> (String, bool) {
        self.masker.mask(text)
    }

    /// Where the first secret value found in a record's text came from, if it holds any. The
    /// text is searched as it is and, when it is JSON, string by string as decoded, so a
    /// record written with other escapes than serde's is searched too.
    pub fn found_in_record(&self, text: &str) -> Option<&str> {
        if self.masker.is_empty() {
            return None;
        }
        if let Some(origin) = self.masker.find(text) {
            return Some(origin);
        }
        let value: serde_json::Value = serde_json::from_str(text).ok()?;
        let mut strings = Vec::new();
        collect_strings(&value, &mut strings);
        strings.into_iter().find_map(|s| self.masker.find(s))
    }
}

/// Every string (keys too) inside a JSON value.
fn collect_strings<'a>(value: &'a serde_json::Value, into: &mut Vec<&'a str>) {
    match value {
        serde_json::Value::String(s) => into.push(s),
        serde_json::Value::Array(items) => items.iter().for_each(|i| collect_strings(i, into)),
        serde_json::Value::Object(map) => {
            for (key, item) in map {
                into.push(key);
                collect_strings(item, into);
            }
        }
        _ => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn raw_and_json_escaped_forms_are_masked() {
        let mut secrets = SecretValues::default();
        secrets.add(["pa\"ss\\word-123", "short"]);
        let record = serde_json::json!({ "error": "bad pa\"ss\\word-123 here", "x": "short" });
        let (masked, changed) = secrets.mask(&record.to_string());
        assert!(changed);
        assert!(!masked.contains("word-123"), "{masked}");
        assert!(masked.contains("short"), "short values are left: {masked}");
        let (raw, _) = secrets.mask("raw pa\"ss\\word-123");
        assert_eq!(raw, "raw ****");
    }

    /// A record written by another encoder (every character as `\uXXXX` at the record
    /// layer) is searched as decoded too, and the finding names where the value came from.
    #[test]
    fn a_secret_is_found_in_any_form_and_named() {
        let mut secrets = SecretValues::default();
        secrets.add_from("tok\nen-9", "JWT_SECRET in env/.env.fly.staging");
        let printf_q = serde_json::json!({ "error": "retry: $'tok\\nen-9'" }).to_string();
        assert_eq!(
            secrets.found_in_record(&printf_q),
            Some("JWT_SECRET in env/.env.fly.staging")
        );
        // Only the first character escaped: no echoed form, found once decoded.
        let foreign = "{\"error\": \"\\u0074ok\\nen-9\"}";
        assert!(secrets.found_in_record(foreign).is_some(), "{foreign}");
        assert_eq!(secrets.found_in_record("{\"error\": \"tok en-9\"}"), None);
    }
}
