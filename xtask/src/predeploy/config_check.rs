//! `config`: `ops/deploy.toml` parses (else the task cannot run at all) and every environment
//! is complete: a valid Fly app name, an https URL, an env file that is not its template, and
//! a template and a Fly config that exist.

use std::collections::BTreeMap;
use std::path::Path;

use super::Context;
use super::outcome::{At, Check, CheckResult};
use super::text::toml_key_line;
use crate::config::{CONFIG_PATH, normalize_url};

pub(crate) fn check(cx: &Context) -> CheckResult {
    let mut check = Check::new(
        "config",
        "ops/deploy.toml parses and every environment is complete",
    );
    let config = &cx.config;
    let text = &cx.config_text;
    if config.environments.is_empty() {
        check.fail(
            At::file(CONFIG_PATH),
            "no environments",
            "add [environments.staging] and [environments.production] with app, url, \
             env_file and template",
        );
    }
    let mut apps: BTreeMap<&str, &str> = BTreeMap::new();
    for (name, env) in &config.environments {
        let table = format!("environments.{name}");
        let at = |key: &str| At::line(CONFIG_PATH, toml_key_line(text, &table, 0, key));
        if !is_fly_app_name(&env.app) {
            check.fail(
                at("app"),
                format!("{name}: app is not a Fly app name"),
                "use lowercase letters, digits and hyphens, e.g. sist-cabanas-staging",
            );
        } else if let Some(other) = apps.insert(&env.app, name) {
            check.fail(
                at("app"),
                format!("{name}: app `{}` is also the app of {other}", env.app),
                "give every environment its own Fly app",
            );
        }
        match normalize_url(&env.url) {
            Err(error) => check.fail(
                at("url"),
                format!("{name}: {error:#}"),
                "set url to https://<app>.fly.dev",
            ),
            Ok(url) if !url.starts_with("https://") => check.warn(
                at("url"),
                format!("{name}: url is not https"),
                "use the https:// URL; Fly terminates TLS (force_https)",
            ),
            Ok(_) => {}
        }
        let env_file = env.env_file.to_string_lossy();
        if env_file.is_empty() || env.env_file.is_absolute() || env_file.ends_with(".template") {
            check.fail(
                at("env_file"),
                format!(
                    "{name}: env_file must be a repository-relative path that is not a template"
                ),
                format!("set env_file = \"env/.env.fly.{name}\""),
            );
        } else if env.env_file == env.template {
            check.fail(
                at("env_file"),
                format!("{name}: env_file and template are the same file"),
                format!("set template = \"env/.env.fly.{name}.template\""),
            );
        }
        for (key, path, fix) in [
            (
                "template",
                &env.template,
                "commit the template (every key, required or optional, with its rule)",
            ),
            (
                "fly_config",
                &env.fly_config,
                "point fly_config at the Fly config of this app (default fly.toml)",
            ),
        ] {
            if !file_exists(cx, path) {
                check.fail(
                    at(key),
                    format!("{name}: {key} {} does not exist", path.display()),
                    fix,
                );
            }
        }
    }
    let limits = &config.thresholds;
    let mut limit_tables = vec![(
        "thresholds".to_string(),
        vec![
            ("p95_ms", Some(limits.p95_ms)),
            ("error_rate_pct", Some(limits.error_rate_pct)),
            ("healthz_p95_ms", Some(limits.healthz_p95_ms)),
            ("p99_ms", limits.p99_ms),
            ("max_ms", limits.max_ms),
        ],
    )];
    for (name, env) in &config.environments {
        let own = &env.thresholds;
        limit_tables.push((
            format!("environments.{name}.thresholds"),
            vec![
                ("p95_ms", own.p95_ms),
                ("error_rate_pct", own.error_rate_pct),
                ("healthz_p95_ms", own.healthz_p95_ms),
                ("p99_ms", own.p99_ms),
                ("max_ms", own.max_ms),
            ],
        ));
    }
    for (table, values) in &limit_tables {
        for (key, value) in values {
            if let Some(value) = value
                && !(value.is_finite() && *value > 0.0)
            {
                check.fail(
                    At::line(CONFIG_PATH, toml_key_line(text, table, 0, key)),
                    format!("{table}.{key} must be a positive number"),
                    "use the defaults: p95_ms = 3000, error_rate_pct = 1, healthz_p95_ms = 200",
                );
            }
        }
    }
    for (index, endpoint) in config.smoke.endpoints.iter().enumerate() {
        if !endpoint.path.starts_with('/') {
            check.fail(
                At::line(
                    CONFIG_PATH,
                    toml_key_line(text, "smoke.endpoints", index, "path"),
                ),
                format!(
                    "smoke endpoint `{}`: path must start with `/`",
                    endpoint.name
                ),
                "write the path below the base URL, e.g. /api/v1/healthz",
            );
        }
    }
    if !check.failed() {
        let names: Vec<&str> = config.environments.keys().map(String::as_str).collect();
        check.pass(
            At::file(CONFIG_PATH),
            format!(
                "{} environments complete: {}",
                names.len(),
                names.join(", ")
            ),
        );
    }
    check.finish()
}

fn file_exists(cx: &Context, path: &Path) -> bool {
    !path.as_os_str().is_empty() && cx.repo.path(path).is_file()
}

/// Fly app names: lowercase letters, digits and hyphens, not starting or ending with `-`.
fn is_fly_app_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 63
        && !name.starts_with('-')
        && !name.ends_with('-')
        && name
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
}
