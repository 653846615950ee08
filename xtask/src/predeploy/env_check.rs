//! `env`: each filled env file (all present ones, or the `--env` one, which must exist) holds
//! every key its template requires, each obeying the rule the template states, with no
//! placeholders, duplicates or unknown keys. Values are read as data ([`super::envfile`]) and
//! never appear in a finding: findings name the key and the line.
//!
//! The template is the contract: each key is preceded by a comment starting
//! `[required, RULE]` or `[optional, RULE]`, where RULE is one of [`Rule`]'s names.

use std::collections::BTreeMap;

use super::Context;
use super::env_rules::{Rule, is_placeholder, nearest, validate};
use super::envfile::{EnvEntry, parse_env_file, shown_key};
use super::outcome::{At, Check, CheckResult};
use super::text::{FileText, read_text};

/// One key of a template.
#[derive(Debug, Clone)]
pub(crate) struct TemplateKey {
    pub(crate) required: bool,
    /// Its line in the template.
    pub(crate) line: usize,
    pub(crate) rule: Rule,
    /// The template's example value, which a filled file must not keep for secret keys.
    example: String,
}

impl TemplateKey {
    /// The template's own value for the key (its example or placeholder).
    pub(crate) fn example(&self) -> &str {
        self.example.trim()
    }
}

/// Reads a template into its keys, or problems (`line`, message).
pub(crate) fn parse_template(
    text: &str,
) -> Result<BTreeMap<String, TemplateKey>, Vec<(usize, String)>> {
    let entries = parse_env_file(text).map_err(|problems| {
        problems
            .into_iter()
            .map(|p| (p.line, p.message))
            .collect::<Vec<_>>()
    })?;
    let lines: Vec<&str> = text.lines().collect();
    let mut keys = BTreeMap::new();
    let mut problems = Vec::new();
    for entry in entries {
        // The comment block right above the key.
        let mut annotation = None;
        let mut index = entry.line.saturating_sub(1);
        while index > 0 && lines[index - 1].starts_with('#') {
            let comment = lines[index - 1].trim_start_matches('#').trim();
            if comment.starts_with('[') {
                annotation = Some(comment.to_string());
            }
            index -= 1;
        }
        let parsed = annotation.as_deref().and_then(|a| {
            let inner = a.strip_prefix('[')?.split(']').next()?;
            let (kind, rule) = inner.split_once(',')?;
            let required = match kind.trim() {
                "required" => true,
                "optional" => false,
                _ => return None,
            };
            Some((required, Rule::parse(rule.trim())?))
        });
        match parsed {
            Some((required, rule)) => {
                keys.insert(
                    entry.key,
                    TemplateKey {
                        required,
                        line: entry.line,
                        rule,
                        example: entry.value.expose().to_string(),
                    },
                );
            }
            None => problems.push((
                entry.line,
                format!("{}: the comment above it must start with [required, RULE] or [optional, RULE] (RULE: postgres-url, redis-url, https-url, smtp-url, secret-32, emails, integer, text)", entry.key),
            )),
        }
    }
    if problems.is_empty() {
        Ok(keys)
    } else {
        Err(problems)
    }
}

pub(crate) fn check(cx: &Context) -> CheckResult {
    let mut check = Check::new(
        "env",
        "each filled env file has every required key, valid by its template's rule, with no \
         placeholders, duplicates or unknown keys",
    );
    for (name, env) in &cx.environments {
        let file = env.env_file.to_string_lossy().replace('\\', "/");
        let template_path = env.template.to_string_lossy().replace('\\', "/");
        let text = match read_text(&cx.repo.path(&file)) {
            FileText::Missing if cx.options.env.is_some() => {
                check.fail(
                    At::file(&file),
                    format!("{name}: the env file does not exist"),
                    format!("copy {template_path} to {file}, fill it, chmod 600 it"),
                );
                continue;
            }
            FileText::Missing => {
                check.skip(At::file(&file), format!("{name}: not filled here (checked when present, or required with --env {name})"));
                continue;
            }
            FileText::Unreadable(why) => {
                check.fail(
                    At::file(&file),
                    why,
                    "write it as UTF-8 text, NAME=VALUE per line",
                );
                continue;
            }
            FileText::Text(text) => text,
        };
        let template = match read_text(&cx.repo.path(&template_path)) {
            FileText::Text(t) => {
                match parse_template(&t) {
                    Ok(keys) => keys,
                    Err(problems) => {
                        for (line, message) in problems {
                            check.fail(At::line(&template_path, Some(line)), message, "fix the template: it is the contract the env file is checked against");
                        }
                        continue;
                    }
                }
            }
            _ => {
                check.fail(
                    At::file(&template_path),
                    format!("{name}: the template is missing or unreadable"),
                    "commit the template (see config)",
                );
                continue;
            }
        };
        match parse_env_file(&text) {
            Err(problems) => {
                for problem in problems {
                    let key = problem.key.map(|k| format!("{k}: ")).unwrap_or_default();
                    check.fail(
                        At::line(&file, Some(problem.line)),
                        format!("{key}{}", problem.message),
                        "fix the line; the syntax is `fly secrets import`'s",
                    );
                }
            }
            Ok(entries) => check_entries(&mut check, name, &file, &entries, &template),
        }
    }
    check.finish()
}

fn check_entries(
    check: &mut Check,
    env: &str,
    file: &str,
    entries: &[EnvEntry],
    template: &BTreeMap<String, TemplateKey>,
) {
    let before = check.fail_count();
    let mut first: BTreeMap<&str, usize> = BTreeMap::new();
    for entry in entries {
        let at = At::line(file, Some(entry.line));
        let key = entry.key.as_str();
        let shown = shown_key(key, entry.line);
        if let Some(line) = first.insert(key, entry.line) {
            first.insert(key, line);
            check.fail(
                at,
                format!("{shown} is defined again (first at line {line})"),
                "keep one definition: fly would import only the last",
            );
            continue;
        }
        let Some(spec) = template.get(key) else {
            let hint = nearest(key, template.keys().map(String::as_str))
                .map(|k| format!(": did you mean {k}?"))
                .unwrap_or_default();
            check.warn(
                at,
                format!("{shown} is not in the template{hint}"),
                "rename it to the template's key, or add it to the template with its rule",
            );
            continue;
        };
        let value = entry.value.expose();
        if entry.hash_cut {
            check.warn(
                at.clone(),
                format!("{key} has a `#` that fly reads as the start of a comment, dropping the rest of the line"),
                format!("wrap the value of {key} in double quotes if the `#` belongs to it"),
            );
        }
        if value.trim().is_empty() {
            if spec.required {
                check.fail(
                    at,
                    format!("{key} is required but empty"),
                    format!("fill {key} in {file}"),
                );
            }
            continue;
        }
        if is_placeholder(value)
            || (spec.rule.is_secret() && !spec.example.is_empty() && value == spec.example)
        {
            check.fail(
                at,
                format!("{key} still holds a placeholder"),
                format!("replace the placeholder of {key} in {file} with the real value"),
            );
            continue;
        }
        if value != value.trim_end() {
            check.warn(
                at.clone(),
                format!("{key} ends with whitespace, which fly keeps"),
                "remove the trailing whitespace",
            );
        }
        if let Err(why) = validate(spec.rule, value.trim_end()) {
            check.fail(at, format!("{key} {why}"), format!("fix {key} in {file}"));
        }
    }
    for (key, spec) in template {
        if spec.required && !first.contains_key(key.as_str()) {
            check.fail(
                At::file(file),
                format!("{key} is required and missing"),
                format!("add {key}=... to {file} (see the template for its rule)"),
            );
        }
    }
    if check.fail_count() == before {
        check.pass(
            At::file(file),
            format!("{env}: {} keys read", entries.len()),
        );
    }
}

/// The payment and messaging credentials both env templates require (the templates' tests
/// and the secrets plan's hold them to it).
#[cfg(test)]
pub(crate) const PROVIDER_CREDENTIALS: [&str; 6] = [
    "MERCADOPAGO_ACCESS_TOKEN",
    "MERCADOPAGO_WEBHOOK_SECRET",
    "WHATSAPP_ACCESS_TOKEN",
    "WHATSAPP_APP_SECRET",
    "WHATSAPP_BUSINESS_ACCOUNT_ID",
    "WHATSAPP_PHONE_NUMBER_ID",
];

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn templates_state_each_rule() {
        let keys = parse_template(include_str!("../../../env/.env.fly.staging.template")).unwrap();
        assert!(keys["DATABASE_URL"].required);
        assert!(!keys.contains_key("REDIS_URL"), "the service uses no cache");
        for required in PROVIDER_CREDENTIALS {
            assert!(keys[required].required, "{required}");
        }
        assert_eq!(keys["WHATSAPP_BUSINESS_ACCOUNT_ID"].rule, Rule::Integer);
        assert_eq!(keys["WHATSAPP_PHONE_NUMBER_ID"].rule, Rule::Integer);
        assert_eq!(keys["WHATSAPP_API_URL"].rule, Rule::HttpsUrl);
        assert!(!keys["WHATSAPP_API_URL"].required);
        assert_eq!(keys["MERCADOPAGO_API_URL"].rule, Rule::HttpsUrl);
        assert_eq!(keys["SMTP_URL"].rule, Rule::SmtpUrl);
        assert!(Rule::SmtpUrl.is_secret());
        assert!(!keys["SMTP_URL"].required);
        assert_eq!(keys["SMTP_FROM"].rule, Rule::Emails);
        assert!(!keys["SMTP_FROM"].required);
        assert!(!keys["WHATSAPP_VERIFY_TOKEN"].required);
        let problems = parse_template("# no rule here\nA=1\n").unwrap_err();
        assert_eq!(problems[0].0, 2);
    }
}
