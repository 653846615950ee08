//! `cargo xtask logs`: the app's recent log lines, with every value of the environment's env
//! file masked, so an on-call person can paste them into an incident channel.
//!
//! flyctl has no flag to bound the output: `fly logs` takes `--app`, `--config`, `--region`,
//! `--machine`, `--select`, `--json` and `--no-tail` (superfly/flyctl
//! internal/command/logs/logs.go). With `--no-tail` it prints the buffer Fly keeps and exits.
//! So `--since` and `--lines` are applied here, to the lines flyctl printed: each starts with
//! the entry's RFC 3339 time (internal/render/logs.go, `format.Time`), which `--since` reads.
//! Besides the env file's values, URL passwords and bearer tokens are masked as `watch` does.

use std::io::Write;
use std::time::Duration;

use chrono::{DateTime, Utc};

use crate::config::{DeployConfig, Environment};
use crate::flyctl::{Flyctl, Invocation, failure_or_error};
use crate::masking::Masker;
use crate::repo::Repo;
use crate::verdict::Verdict;
use crate::watch::logs::mask_common;

/// Lines printed when `--lines` is not given.
pub const DEFAULT_LINES: usize = 500;

/// Values shorter than this are not masked: `info`, `30` or `true` would hide ordinary words,
/// and no credential is that short.
const SHORTEST_MASKED: usize = 6;

/// How long `fly logs --no-tail` may take before the call counts as failed.
const FLYCTL_LIMIT: Duration = Duration::from_secs(60);

/// Options of `cargo xtask logs`, built from its flags by the command line.
#[derive(Debug, Clone)]
pub struct Options {
    /// Environment from ops/deploy.toml whose Fly app's logs to print.
    pub env: String,
    /// Print at most this many of the newest lines.
    pub lines: usize,
    /// Only lines from this long ago on, e.g. 10m or 2h.
    pub since: Option<Duration>,
}

/// Which lines to keep.
#[derive(Debug, Clone, Copy)]
pub struct Window {
    /// At most this many of the newest lines.
    pub lines: usize,
    /// Only lines stamped at or after this time.
    pub since: Option<DateTime<Utc>>,
}

/// Runs the task: exit 0 when the logs were printed, 1 when flyctl ran and failed, 2 when it
/// could not run (no flyctl, an unknown environment).
pub fn run(args: Options) -> anyhow::Result<Verdict> {
    let repo = Repo::discover()?;
    let flyctl = Flyctl::from_env(false)?.in_dir(repo.root());
    let now = Utc::now();
    let window = Window {
        lines: args.lines,
        since: args
            .since
            .map(|since| now - chrono::Duration::from_std(since).unwrap_or_default()),
    };
    let stdout = std::io::stdout();
    let stderr = std::io::stderr();
    print_logs(
        &repo,
        flyctl,
        &args.env,
        window,
        &mut stdout.lock(),
        &mut stderr.lock(),
    )
}

/// Prints the masked lines of `env`'s app in `window` on `out`; notes go to `notes`.
pub fn print_logs(
    repo: &Repo,
    mut flyctl: Flyctl,
    env: &str,
    window: Window,
    out: &mut dyn Write,
    notes: &mut dyn Write,
) -> anyhow::Result<Verdict> {
    let config = DeployConfig::load(repo)?;
    let environment = config.environment(env)?;
    let (values, note) = env_file_values(repo, environment);
    if let Some(note) = note {
        writeln!(notes, "warning: {note}")?;
    }
    let masker = masker_of(&values, environment);
    flyctl.hide_values(
        values
            .iter()
            .map(|(_, v)| v.as_str())
            .filter(|v| long_enough(v)),
    );
    let invocation = Invocation::new(["logs", "--app", environment.app.as_str(), "--no-tail"])
        .with_time_limit(Some(FLYCTL_LIMIT));
    let text = match flyctl.read(&invocation, notes) {
        Ok(text) => text.unwrap_or_default(),
        Err(error) => {
            let failure = failure_or_error(error)?;
            writeln!(notes, "{failure}")?;
            writeln!(
                notes,
                "fix: check `fly auth whoami` and that app {} exists (`fly status --app {}`)",
                environment.app, environment.app
            )?;
            return Ok(Verdict::Fail);
        }
    };
    let kept = select(&text, window);
    if kept.is_empty() {
        writeln!(notes, "no log lines of {} in the window", environment.app)?;
    }
    for line in kept {
        // Values the env file does not hold (another URL's password, a bearer token) too, the way
        // `watch` masks the lines it keeps.
        writeln!(out, "{}", mask_common(&masker.mask(line).0))?;
    }
    Ok(Verdict::Pass)
}

/// A masker of every value of `environment`'s env file long enough to be a credential
/// (`info` stays `info`), and a note when the file cannot be read (then nothing is known to
/// mask). `deploy` masks the log lines it shows with it, as this task does.
pub fn env_masker(repo: &Repo, environment: &Environment) -> (Masker, Option<String>) {
    let (values, note) = env_file_values(repo, environment);
    (masker_of(&values, environment), note)
}

/// A masker of `values`, each named by its key in `environment`'s env file.
fn masker_of(values: &[(String, String)], environment: &Environment) -> Masker {
    let mut masker = Masker::default();
    for (key, value) in values {
        masker.add(
            value,
            &format!("{key} in {}", environment.env_file.display()),
            SHORTEST_MASKED,
        );
    }
    masker
}

fn long_enough(value: &str) -> bool {
    value.trim().chars().count() >= SHORTEST_MASKED
}

/// Every non-empty value of the environment's env file, with its key, and a note when the file
/// cannot be read (then nothing is known to mask).
fn env_file_values(
    repo: &Repo,
    environment: &Environment,
) -> (Vec<(String, String)>, Option<String>) {
    let path = repo.path(&environment.env_file);
    let shown = environment.env_file.display();
    let text = match crate::files::read_text_capped(&path, crate::files::CONFIG_LIMIT) {
        Ok(text) => text,
        Err(error) => {
            return (
                Vec::new(),
                Some(format!(
                    "{shown} cannot be read ({error}): no value of it is masked; the service \
                     never logs its secrets, but check what you share"
                )),
            );
        }
    };
    match crate::predeploy::envfile::parse_env_file(&text) {
        Ok(entries) => (
            entries
                .into_iter()
                .filter(|e| !e.value.expose().trim().is_empty())
                .map(|e| (e.key, e.value.expose().to_string()))
                .collect(),
            None,
        ),
        Err(_) => (
            Vec::new(),
            Some(format!(
                "{shown} does not parse: no value of it is masked; run `cargo xtask predeploy --env NAME` to see why"
            )),
        ),
    }
}

/// The lines of `text` in `window`: from the first line stamped at or after `since` (a line
/// without a time of its own belongs with the line before it), then the newest `lines`.
pub fn select(text: &str, window: Window) -> Vec<&str> {
    let mut kept = Vec::new();
    let mut inside = window.since.is_none();
    for line in text.lines() {
        if let (Some(since), Some(at)) = (window.since, stamp(line)) {
            inside = at >= since;
        }
        if inside {
            kept.push(line);
        }
    }
    let skip = kept.len().saturating_sub(window.lines);
    kept.split_off(skip)
}

/// The time a flyctl log line starts with (`2026-12-06T15:04:05Z app[...] ...`).
fn stamp(line: &str) -> Option<DateTime<Utc>> {
    let first = line.split_whitespace().next()?;
    DateTime::parse_from_rfc3339(first)
        .ok()
        .map(|t| t.with_timezone(&Utc))
}

#[cfg(test)]
mod tests {
    use super::*;

    const LOGS: &str = "2026-12-06T10:00:00Z app[m1] scl [info] started\n\
                        2026-12-06T10:20:00Z app[m1] scl [info] one\n\
                        continued without a time\n\
                        2026-12-06T10:25:00+00:00 app[m2] scl [info] two\n\
                        2026-12-06T10:29:00Z app[m1] scl [info] three\n";

    fn at(text: &str) -> Option<DateTime<Utc>> {
        Some(text.parse().unwrap())
    }

    #[test]
    fn since_keeps_the_lines_from_that_time_on_with_their_continuations() {
        let window = Window {
            lines: 100,
            since: at("2026-12-06T10:15:00Z"),
        };
        let kept = select(LOGS, window);
        assert_eq!(kept.len(), 4, "{kept:?}");
        assert!(kept[0].ends_with("one") && kept[1] == "continued without a time");
        let none = select(
            LOGS,
            Window {
                lines: 100,
                since: at("2026-12-06T11:00:00Z"),
            },
        );
        assert!(none.is_empty(), "{none:?}");
    }

    #[test]
    fn lines_keeps_the_newest() {
        let kept = select(
            LOGS,
            Window {
                lines: 2,
                since: None,
            },
        );
        assert_eq!(kept.len(), 2);
        assert!(kept[1].ends_with("three") && kept[0].ends_with("two"));
        assert!(
            select(
                LOGS,
                Window {
                    lines: 0,
                    since: None
                }
            )
            .is_empty()
        );
    }
}
