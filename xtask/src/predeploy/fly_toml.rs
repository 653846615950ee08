//! `fly_toml`: the Fly config of every checked environment parses and deploys what we mean:
//! its app, a region, an existing Dockerfile, the container's port, a readiness check with
//! timings, a known deploy strategy and a release command that migrates.
//!
//! One `fly.toml` serves both environments, so its `app` can match only one of them. Every
//! flyctl call the tasks make passes `--app` from `ops/deploy.toml` (`deploy`, `rollback`,
//! `promote` also `--config`), and `-a` overrides the file's app
//! (<https://fly.io/docs/apps/deploy/>: "Use `fly deploy -a <app-name>` to override the app
//! name given in fly.toml"), so the file's app only matters to a bare `fly` command typed by a
//! person. That goes wrong only when the file names the production app (a bare `fly deploy`
//! ships to production) or no app of `ops/deploy.toml` at all (a typo, a stale name): those
//! warn. A file naming another environment's app passes. A missing `app` fails, because then a
//! bare `fly deploy` has no target at all.

use std::collections::BTreeMap;
use std::path::Path;

use toml::{Table, Value};

use super::Context;
use super::dockerfile_syntax;
use super::outcome::{At, Check, CheckResult};
use super::text::{FileText, read_text, toml_error, toml_key_line};
use crate::config::CONFIG_PATH;

/// The readiness path Fly's checks must probe (DESIGN section 4).
pub(crate) const READINESS_PATH: &str = cabanas_contract::routes::READYZ;
const STRATEGIES: [&str; 4] = ["rolling", "bluegreen", "canary", "immediate"];

/// What other checks need from a Fly config.
#[derive(Debug)]
pub(crate) struct FlyFacts {
    /// The Dockerfile it builds, repository-relative.
    pub(crate) dockerfile: String,
    /// `http_service.internal_port`.
    pub(crate) internal_port: Option<i64>,
}

/// Loads a Fly config for the facts other checks need; `None` when it cannot be read (the
/// `fly_toml` check reports why).
pub(crate) fn facts(cx: &Context, relative: &str) -> Option<FlyFacts> {
    let FileText::Text(text) = read_text(&cx.repo.path(relative)) else {
        return None;
    };
    let table: Table = toml::from_str(&text).ok()?;
    Some(facts_of(relative, &table))
}

fn facts_of(relative: &str, table: &Table) -> FlyFacts {
    let declared = table
        .get("build")
        .and_then(|b| b.get("dockerfile"))
        .and_then(Value::as_str)
        .unwrap_or("Dockerfile");
    let dir = Path::new(relative).parent().unwrap_or(Path::new(""));
    FlyFacts {
        dockerfile: dir.join(declared).to_string_lossy().replace('\\', "/"),
        internal_port: table
            .get("http_service")
            .and_then(|h| h.get("internal_port"))
            .and_then(Value::as_integer),
    }
}

/// The distinct Fly configs of the checked environments, with the environments using each.
pub(crate) fn configs(cx: &Context) -> BTreeMap<String, Vec<(String, String)>> {
    let mut configs: BTreeMap<String, Vec<(String, String)>> = BTreeMap::new();
    for (name, env) in &cx.environments {
        let path = env.fly_config.to_string_lossy().replace('\\', "/");
        configs
            .entry(path)
            .or_default()
            .push((name.clone(), env.app.clone()));
    }
    configs
}

pub(crate) fn check(cx: &Context) -> CheckResult {
    let mut check = Check::new(
        "fly_toml",
        "fly.toml names the app and region, builds an existing Dockerfile, serves the container \
         port, checks /api/v1/readyz, uses a known strategy and migrates on release",
    );
    for (path, environments) in configs(cx) {
        match read_text(&cx.repo.path(&path)) {
            FileText::Missing => check.fail(
                At::file(&path),
                "does not exist",
                "create it (see the repository's fly.toml) or fix fly_config in ops/deploy.toml",
            ),
            FileText::Unreadable(why) => {
                check.fail(At::file(&path), why, "replace it with a TOML text file")
            }
            FileText::Text(text) => match toml::from_str::<Table>(&text) {
                Err(error) => {
                    let (line, message) = toml_error(&text, &error);
                    check.fail(
                        At::line(&path, line),
                        message,
                        "fix the TOML syntax at that line",
                    );
                }
                Ok(table) => check_config(cx, &mut check, &path, &text, &table, &environments),
            },
        }
    }
    check.finish()
}

fn check_config(
    cx: &Context,
    check: &mut Check,
    path: &str,
    text: &str,
    table: &Table,
    environments: &[(String, String)],
) {
    let at = |section: &str, nth: usize, key: &str| {
        At::line(path, toml_key_line(text, section, nth, key))
    };
    let str_at = |t: &Table, key: &str| {
        t.get(key)
            .and_then(Value::as_str)
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .map(str::to_string)
    };
    let empty = Table::new();
    let section = |name: &str| table.get(name).and_then(Value::as_table).unwrap_or(&empty);

    match str_at(table, "app") {
        None => check.fail(
            At::file(path),
            "has no `app`",
            "set app = \"<staging app>\" so that a bare `fly deploy` has a target",
        ),
        Some(app) => check_app(cx, check, at("", 0, "app"), &app, path, environments),
    }
    match str_at(table, "primary_region") {
        Some(region) => check.pass(
            at("", 0, "primary_region"),
            format!("primary_region `{region}`"),
        ),
        None => check.fail(
            At::file(path),
            "has no primary_region",
            "set primary_region = \"scl\" (Santiago) or the region closest to the users",
        ),
    }

    let facts = facts_of(path, table);
    if cx.repo.path(&facts.dockerfile).is_file() {
        check.pass(
            at("build", 0, "dockerfile"),
            format!("builds {}", facts.dockerfile),
        );
    } else {
        check.fail(
            at("build", 0, "dockerfile"),
            format!("the Dockerfile {} does not exist", facts.dockerfile),
            "set [build] dockerfile to the service's Dockerfile (backend/Dockerfile)",
        );
    }

    let http = section("http_service");
    check_port(
        cx,
        check,
        path,
        text,
        table,
        facts.internal_port,
        &facts.dockerfile,
    );
    check_readiness(check, path, text, http);

    // `cargo xtask promote` deploys production blue-green, which cannot move volumes.
    if environments.iter().any(|(env, _)| env == "production") && table.contains_key("mounts") {
        check.fail(
            at("mounts", 0, ""),
            "mounts a volume, and production is promoted blue-green, which cannot move volumes",
            "keep state in the database (DATABASE_URL), not on a volume; or promote with \
             `cargo xtask promote --strategy rolling`",
        );
    }
    // Fly scrapes /metrics only when [metrics] says where; the alert rules need it.
    match str_at(section("metrics"), "path") {
        Some(metrics) if metrics == cabanas_contract::routes::METRICS => {
            check.pass(at("metrics", 0, "path"), "Fly scrapes /metrics ([metrics])")
        }
        _ => check.warn(
            At::line(path, toml_key_line(text, "metrics", 0, "")),
            "no [metrics] path = \"/metrics\": Fly does not scrape the service",
            "add [metrics] with port = the internal port and path = \"/metrics\"",
        ),
    }

    let deploy = section("deploy");
    match str_at(deploy, "strategy") {
        Some(s) if STRATEGIES.contains(&s.as_str()) => check.pass(
            at("deploy", 0, "strategy"),
            format!("deploy strategy `{s}`"),
        ),
        Some(s) => check.fail(
            at("deploy", 0, "strategy"),
            format!(
                "deploy strategy `{s}` is not one of {}",
                STRATEGIES.join(", ")
            ),
            "set [deploy] strategy = \"rolling\"",
        ),
        None => check.fail(
            At::line(path, toml_key_line(text, "deploy", 0, "")),
            "[deploy] has no strategy",
            "set [deploy] strategy = \"rolling\" (explicit, so a reviewer sees it)",
        ),
    }
    match str_at(deploy, "release_command") {
        Some(command) if runs_migrate(&command) => check.pass(
            at("deploy", 0, "release_command"),
            "release_command runs `cabanas migrate`",
        ),
        Some(_) => check.fail(
            at("deploy", 0, "release_command"),
            "release_command does not run `cabanas migrate`",
            "set [deploy] release_command = \"cabanas migrate\"",
        ),
        None => check.fail(
            At::line(path, toml_key_line(text, "deploy", 0, "")),
            "no release_command: migrations would not run before the new machines serve",
            "set [deploy] release_command = \"cabanas migrate\"",
        ),
    }

    if let Some(experimental) = table.get("experimental").and_then(Value::as_table) {
        for key in experimental.keys() {
            check.warn(
                at("experimental", 0, key),
                format!("legacy key [experimental] {key}"),
                "remove it: Apps V2 ignores [experimental] (rollbacks are `cargo xtask rollback`)",
            );
        }
    }
    if let Some(flag) = http.get("auto_stop_machines").and_then(Value::as_bool) {
        check.warn(
            at("http_service", 0, "auto_stop_machines"),
            format!("auto_stop_machines = {flag} is the legacy boolean form"),
            "use \"stop\", \"suspend\" or \"off\"",
        );
    }
}

/// The file's `app` is the default of a bare `fly` command; the tasks always pass `--app`.
fn check_app(
    cx: &Context,
    check: &mut Check,
    at: At,
    app: &str,
    path: &str,
    environments: &[(String, String)],
) {
    // Only `fly.toml` is what a bare `fly deploy` reads; another file deploys only when named.
    let read_by_default = Path::new(path).file_name() == Some("fly.toml".as_ref());
    let owner = cx
        .config
        .environments
        .iter()
        .find(|(_, env)| env.app == app)
        .map(|(name, _)| name.as_str());
    let others: Vec<String> = environments
        .iter()
        .filter(|(_, expected)| expected != app)
        .map(|(env, expected)| format!("{env} (`{expected}`)"))
        .collect();
    let passed_explicitly = if others.is_empty() {
        String::new()
    } else {
        format!(
            "; the tasks pass --app for {}, which overrides it",
            others.join(", ")
        )
    };
    match owner {
        Some("production") if !read_by_default => check.pass(
            at,
            format!("app `{app}` is the production app, deployed only with --config {path}"),
        ),
        Some("production") => check.warn(
            at,
            format!("app `{app}` is the production app: a bare `fly deploy` ships to production"),
            "set app to the staging app, so that a command without --app lands on staging",
        ),
        Some(env) => check.pass(
            at,
            format!("app `{app}` is the {env} app, the default of a bare `fly` command{passed_explicitly}"),
        ),
        None => check.warn(
            at,
            format!(
                "app `{app}` is no app of {CONFIG_PATH}: a bare `fly deploy` would deploy to it"
            ),
            "set app to the staging app from ops/deploy.toml (the tasks pass --app, but a \
             person typing `fly` does not)",
        ),
    }
}

fn check_port(
    cx: &Context,
    check: &mut Check,
    path: &str,
    text: &str,
    table: &Table,
    internal_port: Option<i64>,
    dockerfile_path: &str,
) {
    let Some(port) = internal_port else {
        check.fail(
            At::line(path, toml_key_line(text, "http_service", 0, "")),
            "[http_service] has no internal_port",
            "set [http_service] internal_port = 8080, the port the container serves",
        );
        return;
    };
    let env_port = table.get("env").and_then(|e| e.get("PORT")).and_then(|p| {
        p.as_str()
            .map(str::to_string)
            .or_else(|| p.as_integer().map(|i| i.to_string()))
    });
    let (served, source) = match env_port {
        Some(p) => (
            Some(p),
            At::line(path, toml_key_line(text, "env", 0, "PORT")),
        ),
        None => match dockerfile_syntax::env_port(cx, dockerfile_path) {
            Some((p, line)) => (Some(p), At::line(dockerfile_path, Some(line))),
            None => (None, At::none()),
        },
    };
    let at = At::line(
        path,
        toml_key_line(text, "http_service", 0, "internal_port"),
    );
    match served {
        Some(p) if p.trim() == port.to_string() => check.pass(
            at,
            format!("internal_port {port} is the port the container serves"),
        ),
        Some(_) => check.fail(
            at,
            format!(
                "internal_port {port} differs from the PORT the container serves (set at {})",
                source.describe()
            ),
            "make [http_service] internal_port, [env] PORT and the Dockerfile's EXPOSE agree",
        ),
        None => check.warn(
            at,
            "no PORT in [env] or the Dockerfile: cannot tell which port the container serves",
            "set [env] PORT = \"8080\"",
        ),
    }
}

fn check_readiness(check: &mut Check, path: &str, text: &str, http: &Table) {
    let checks = http
        .get("checks")
        .and_then(Value::as_array)
        .map(Vec::as_slice)
        .unwrap_or(&[]);
    let mut found = false;
    for (index, entry) in checks.iter().enumerate() {
        let Some(entry) = entry.as_table() else {
            continue;
        };
        if entry.get("path").and_then(Value::as_str) != Some(READINESS_PATH) {
            continue;
        }
        found = true;
        let at = At::line(path, toml_key_line(text, "http_service.checks", index, ""));
        let mut missing = Vec::new();
        let mut durations = BTreeMap::new();
        for key in ["interval", "timeout", "grace_period"] {
            match entry.get(key).and_then(Value::as_str).and_then(duration_ms) {
                Some(ms) => {
                    durations.insert(key, ms);
                }
                None => missing.push(key),
            }
        }
        if !missing.is_empty() {
            check.fail(
                at,
                format!("the readiness check lacks a valid {}", missing.join(", ")),
                "set interval = \"15s\", timeout = \"5s\", grace_period = \"10s\" (Go durations)",
            );
        } else if durations["timeout"] >= durations["interval"] {
            check.fail(
                at,
                "the readiness check's timeout is not shorter than its interval",
                "make timeout shorter than interval, e.g. 5s and 15s",
            );
        } else {
            check.pass(
                at,
                format!("HTTP check on {READINESS_PATH} with interval, timeout and grace period"),
            );
        }
    }
    if !found {
        check.fail(
            At::line(path, toml_key_line(text, "http_service", 0, "")),
            format!("no [[http_service.checks]] on {READINESS_PATH}"),
            format!("add [[http_service.checks]] with path = \"{READINESS_PATH}\", interval, timeout and grace_period"),
        );
    }
}

/// Whether a release command runs `cabanas migrate` (the binary by name or path).
fn runs_migrate(command: &str) -> bool {
    let words: Vec<&str> = command.split_whitespace().collect();
    words
        .windows(2)
        .any(|w| (w[0] == "cabanas" || w[0].ends_with("/cabanas")) && w[1] == "migrate")
}

/// A Go duration such as `10s`, `1m30s` or `500ms`, in milliseconds.
pub(crate) fn duration_ms(text: &str) -> Option<u64> {
    let mut rest = text.trim();
    if rest.is_empty() {
        return None;
    }
    let mut total = 0f64;
    while !rest.is_empty() {
        let digits = rest
            .find(|c: char| !(c.is_ascii_digit() || c == '.'))
            .unwrap_or(rest.len());
        let number: f64 = rest[..digits].parse().ok()?;
        rest = &rest[digits..];
        let unit = rest
            .find(|c: char| c.is_ascii_digit())
            .unwrap_or(rest.len());
        let factor = match &rest[..unit] {
            "ms" => 1.0,
            "s" => 1_000.0,
            "m" => 60_000.0,
            "h" => 3_600_000.0,
            _ => return None,
        };
        total += number * factor;
        rest = &rest[unit..];
    }
    Some(total as u64)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_and_release_commands() {
        assert_eq!(duration_ms("10s"), Some(10_000));
        assert_eq!(duration_ms("1m30s"), Some(90_000));
        assert_eq!(duration_ms("500ms"), Some(500));
        assert_eq!(duration_ms("10"), None);
        assert_eq!(duration_ms("ten"), None);
        assert!(runs_migrate("cabanas migrate"));
        assert!(runs_migrate("/usr/local/bin/cabanas migrate --wait"));
        assert!(!runs_migrate("cabanas serve"));
    }
}
