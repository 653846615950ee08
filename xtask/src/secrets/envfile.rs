//! Which secrets an environment sends. The env file is first held to predeploy's `env` check
//! (every rule of its template), then read with predeploy's parser of fly's import syntax;
//! only the template's keys are sent. The few checks repeated here (required keys filled, no
//! placeholder, no duplicate) keep `secrets` safe even if that check changes.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

use anyhow::Context;

use crate::config::Environment;
use crate::predeploy::envfile::{EnvEntry, parse_env_file};
use crate::predeploy::{Options, evaluate};
use crate::repo::Repo;
use crate::verdict::Verdict;

/// What an import will send, and what stops it.
#[derive(Clone, Default)]
pub struct ImportPlan {
    /// `(key, value)` in template order: the template's keys with a non-empty value.
    pub entries: Vec<(String, String)>,
    /// Keys of the env file that the template does not list (warned about, not sent).
    pub not_in_template: Vec<String>,
    /// Optional keys left empty (not sent).
    pub empty_not_sent: Vec<String>,
    /// Problems that fail the task, each naming the file, line and key (never a value).
    pub problems: Vec<String>,
}

impl std::fmt::Debug for ImportPlan {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ImportPlan")
            .field("keys", &self.keys())
            .field("not_in_template", &self.not_in_template)
            .field("empty_not_sent", &self.empty_not_sent)
            .field("problems", &self.problems)
            .finish()
    }
}

impl ImportPlan {
    /// The keys that will be sent.
    pub fn keys(&self) -> Vec<String> {
        self.entries.iter().map(|(k, _)| k.clone()).collect()
    }
}

/// A key of a template, with whether its comment marks it `[required, ...]`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TemplateKey {
    /// The key.
    pub name: String,
    /// Whether the env file must fill it.
    pub required: bool,
    /// Its line in the template.
    pub line: usize,
}

/// The keys of a template in file order, read by predeploy's template reader (each key's
/// comment states `[required, RULE]` or `[optional, RULE]`).
pub fn template_keys(text: &str) -> anyhow::Result<Vec<TemplateKey>> {
    let keys = crate::predeploy::parse_template(text).map_err(|problems| {
        let lines: Vec<String> = problems
            .iter()
            .map(|(line, message)| format!("line {line}: {message}"))
            .collect();
        anyhow::anyhow!(lines.join("; "))
    })?;
    let mut keys: Vec<TemplateKey> = keys
        .into_iter()
        .map(|(name, key)| TemplateKey {
            name,
            required: key.required,
            line: key.line,
        })
        .collect();
    keys.sort_by_key(|key| key.line);
    Ok(keys)
}

/// The failures and warnings of predeploy's `env` check for environment `env_name`, as
/// `(verdict, "path:line: message")`.
pub fn predeploy_env_findings(
    repo: &Repo,
    env_name: &str,
) -> anyhow::Result<Vec<(Verdict, String)>> {
    let options = Options {
        env: Some(env_name.to_string()),
        strict: false,
        // Only the `env` check is read here: no workflow linter needs to run.
        workflow_linters: Some(crate::predeploy::WorkflowLinters::default()),
        command_line: None,
    };
    let report = evaluate(repo, &options)?;
    let Some(check) = report.check("env") else {
        anyhow::bail!("predeploy has no `env` check any more; update xtask/src/secrets/envfile.rs");
    };
    Ok(check
        .evidence
        .iter()
        .filter(|e| matches!(e.verdict, Verdict::Fail | Verdict::Warn))
        .map(|e| {
            let at = e.location();
            let fix = e
                .fix
                .as_deref()
                .map(|f| format!(" ({f})"))
                .unwrap_or_default();
            let place = if at.is_empty() {
                String::new()
            } else {
                format!("{at}: ")
            };
            (e.verdict, format!("{place}{}{fix}", e.message))
        })
        .collect())
}

/// Reads the environment's template and env file and decides what to send.
pub fn plan_import(repo: &Repo, environment: &Environment) -> anyhow::Result<ImportPlan> {
    let template_path = repo.path(&environment.template);
    let template_text = crate::files::read_text_capped(&template_path, crate::files::CONFIG_LIMIT)
        .with_context(|| format!("reading the template {}", template_path.display()))?;
    let template = template_keys(&template_text)
        .with_context(|| format!("{} is not a valid template", template_path.display()))?;
    let env_path = repo.path(&environment.env_file);
    let env_text = match crate::files::read_text_capped(&env_path, crate::files::CONFIG_LIMIT) {
        Ok(text) => text,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            return Ok(ImportPlan {
                problems: vec![format!(
                    "{} does not exist: copy {} to it and fill every <placeholder>",
                    environment.env_file.display(),
                    environment.template.display()
                )],
                ..ImportPlan::default()
            });
        }
        Err(e) => return Err(e).with_context(|| format!("reading {}", env_path.display())),
    };
    Ok(plan_from(&environment.env_file, &env_text, &template))
}

/// The plan for an env file's text against a template's keys.
pub fn plan_from(env_file: &Path, env_text: &str, template: &[TemplateKey]) -> ImportPlan {
    let shown = env_file.display();
    let mut plan = ImportPlan::default();
    let entries: Vec<EnvEntry> = match parse_env_file(env_text) {
        Ok(entries) => entries,
        Err(problems) => {
            for problem in problems {
                let key = problem.key.map(|k| format!("{k}: ")).unwrap_or_default();
                plan.problems.push(format!(
                    "{shown}:{}: {key}{}",
                    problem.line, problem.message
                ));
            }
            return plan;
        }
    };
    let mut by_name: BTreeMap<&str, &EnvEntry> = BTreeMap::new();
    for entry in &entries {
        if let Some(first) = by_name.insert(entry.key.as_str(), entry) {
            plan.problems.push(format!(
                "{shown}:{}: {} is set again (first on line {}); keep one",
                entry.line,
                crate::predeploy::envfile::shown_key(&entry.key, entry.line),
                first.line
            ));
        }
    }
    let known: BTreeSet<&str> = template.iter().map(|k| k.name.as_str()).collect();
    plan.not_in_template = by_name
        .iter()
        .filter(|(k, _)| !known.contains(*k))
        .map(|(k, entry)| crate::predeploy::envfile::shown_key(k, entry.line))
        .collect();
    for key in template {
        let filled = by_name
            .get(key.name.as_str())
            .filter(|e| !e.value.expose().is_empty());
        let Some(entry) = filled else {
            if key.required {
                plan.problems.push(format!(
                    "{shown}: {} is required (see the template, line {}) but missing or empty",
                    key.name, key.line
                ));
            } else {
                plan.empty_not_sent.push(key.name.clone());
            }
            continue;
        };
        let value = entry.value.expose().trim();
        if value.starts_with('<') && value.ends_with('>') {
            plan.problems.push(format!(
                "{shown}:{}: {} still holds the template's placeholder; fill it",
                entry.line, key.name
            ));
        } else {
            plan.entries
                .push((key.name.clone(), entry.value.expose().to_string()));
        }
    }
    plan
}

#[cfg(test)]
mod tests {
    use super::*;

    const TEMPLATE: &str = "# [required, postgres-url] db\nDATABASE_URL=<postgres-url>\n\n\
        # [optional, integer] ttl\nTTL=30\n# [optional, redis-url]\nREDIS_URL=\n";

    #[test]
    fn template_keys_know_which_are_required() {
        let keys = template_keys(TEMPLATE).unwrap();
        let flags: Vec<(&str, bool)> = keys.iter().map(|k| (k.name.as_str(), k.required)).collect();
        assert_eq!(
            flags,
            [("DATABASE_URL", true), ("TTL", false), ("REDIS_URL", false)]
        );
        assert_eq!(keys[0].line, 2);
    }

    #[test]
    fn only_template_keys_with_values_are_sent() {
        let template = template_keys(TEMPLATE).unwrap();
        let env = "DATABASE_URL=postgres://u:pw@h/db\nTTL=45\nREDIS_URL=\nEXTRA=1\n";
        let plan = plan_from(Path::new("env/.env.x"), env, &template);
        assert!(plan.problems.is_empty(), "{:?}", plan.problems);
        assert_eq!(plan.keys(), ["DATABASE_URL", "TTL"]);
        assert_eq!(plan.not_in_template, ["EXTRA"]);
        assert_eq!(plan.empty_not_sent, ["REDIS_URL"]);
        assert!(!format!("{plan:?}").contains("pw@h"));
    }

    #[test]
    fn the_real_templates_send_the_payment_and_whatsapp_keys() {
        let filled = "DATABASE_URL=postgres://u:pw@db.internal/cabanas\n\
            JWT_SECRET=k3J9xQ2mP8vL4nR7tY1wE6uI0oA5sD2f\n\
            ADMIN_ALLOWED_EMAILS=ana@example.org\n\
            MERCADOPAGO_ACCESS_TOKEN=APP_USR-4821-k3J9xQ2mP8vL4nR7tY1wE6uI0oA5\n\
            MERCADOPAGO_WEBHOOK_SECRET=9f2c7a1e5b3d8f0a6c4e2b9d7f1a3c5e\n\
            MERCADOPAGO_API_URL=\n\
            WHATSAPP_ACCESS_TOKEN=EAAGm0PX4ZCpsBAk3J9xQ2mP8vL4nR7tY1wE6\n\
            WHATSAPP_APP_SECRET=3b8e1f6a9c2d5e7f0a4b8c1d6e9f2a5b\n\
            WHATSAPP_BUSINESS_ACCOUNT_ID=102290129340398\n\
            WHATSAPP_PHONE_NUMBER_ID=106540352242922\n\
            WHATSAPP_API_URL=https://graph.facebook.com/v24.0\n\
            WHATSAPP_VERIFY_TOKEN=\n";
        for template in [
            include_str!("../../../env/.env.fly.staging.template"),
            include_str!("../../../env/.env.fly.production.template"),
        ] {
            let keys = template_keys(template).unwrap();
            let plan = plan_from(Path::new("env/.env.x"), filled, &keys);
            assert!(plan.problems.is_empty(), "{:?}", plan.problems);
            let sent = crate::predeploy::PROVIDER_CREDENTIALS;
            for key in sent.into_iter().chain(["WHATSAPP_API_URL"]) {
                assert!(plan.keys().iter().any(|k| k == key), "{key} is sent");
            }
            assert!(
                plan.empty_not_sent
                    .contains(&"WHATSAPP_VERIFY_TOKEN".to_string())
            );
            // A file without them cannot be sent: they are required.
            let without = filled
                .lines()
                .filter(|l| !l.trim_start().starts_with("MERCADOPAGO_WEBHOOK_SECRET"))
                .collect::<Vec<_>>()
                .join("\n");
            let plan = plan_from(Path::new("env/.env.x"), &without, &keys);
            assert!(
                plan.problems
                    .iter()
                    .any(|p| p.contains("MERCADOPAGO_WEBHOOK_SECRET is required")),
                "{:?}",
                plan.problems
            );
        }
    }

    #[test]
    fn missing_required_placeholders_and_duplicates_are_problems() {
        let template = template_keys(TEMPLATE).unwrap();
        let plan = plan_from(Path::new("e"), "TTL=1\nTTL=2\n", &template);
        assert!(
            plan.problems
                .iter()
                .any(|p| p.contains("DATABASE_URL is required")),
            "{:?}",
            plan.problems
        );
        assert!(
            plan.problems
                .iter()
                .any(|p| p.contains("e:2: TTL is set again")),
            "{:?}",
            plan.problems
        );
        let plan = plan_from(Path::new("e"), "DATABASE_URL=<postgres-url>\n", &template);
        assert!(
            plan.problems[0].contains("placeholder"),
            "{:?}",
            plan.problems
        );
    }
}
