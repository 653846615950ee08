//! Records travel to a shared ref, so before one leaves this machine every secret value this
//! checkout knows (the filled env files of `ops/deploy.toml`, the Fly token in the
//! environment) is masked in it, in its raw and JSON-escaped forms. Tasks already keep
//! secrets out of what they record; this is the last gate before the records are shared.

use anyhow::Context;

use crate::config::{CONFIG_PATH, DeployConfig};
use crate::predeploy::envfile::read_env_file;
use crate::repo::Repo;

/// Process variables whose values are secrets wherever they appear.
const SECRET_VARIABLES: &[&str] = &["FLY_API_TOKEN", "FLY_ACCESS_TOKEN"];

/// Values shorter than this would mask ordinary words (`true`, `5432`); they cannot be told
/// apart from them anyway.
const SHORTEST_MASKED: usize = 6;

/// The secret values to keep out of shared records.
#[derive(Default)]
pub struct SecretValues {
    values: Vec<String>,
}

impl std::fmt::Debug for SecretValues {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "SecretValues({} values)", self.values.len())
    }
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
                secrets.add(entries.iter().map(|e| e.value.expose()));
            }
        }
        for name in SECRET_VARIABLES {
            if let Ok(value) = std::env::var(name) {
                secrets.add([value.as_str()]);
            }
        }
        Ok(secrets)
    }

    /// Adds values (and each of their lines, for multi-line values).
    pub fn add<'a>(&mut self, values: impl IntoIterator<Item = &'a str>) {
        for value in values {
            for piece in std::iter::once(value).chain(value.lines()) {
                let piece = piece.trim();
                if piece.len() < SHORTEST_MASKED {
                    continue;
                }
                // A record is JSON: the value may appear escaped.
                let escaped = serde_json::to_string(piece).unwrap_or_default();
                let escaped = escaped.trim_matches('"').to_string();
                for form in [piece.to_string(), escaped] {
                    if !self.values.contains(&form) {
                        self.values.push(form);
                    }
                }
            }
        }
        // Longest first, so a value is masked whole before any of its lines.
        self.values.sort_by_key(|v| std::cmp::Reverse(v.len()));
    }

    /// `text` with every value replaced by `****`, and whether anything was.
    pub fn mask(&self, text: &str) -> (String, bool) {
        let mut masked = text.to_string();
        let mut changed = false;
        for value in &self.values {
            if masked.contains(value.as_str()) {
                masked = masked.replace(value.as_str(), "****");
                changed = true;
            }
        }
        (masked, changed)
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
}
