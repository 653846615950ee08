//! After a deploy is proven, the new release's first words: the app's log lines for a bounded
//! time (`--logs`, 30 s by default), their error and panic lines counted, the first few shown
//! and recorded with the env file's values masked (the masking `cargo xtask logs` uses:
//! values too short to be a credential, like `info`, stay readable). Error lines make the
//! deploy WARN; a panic makes it FAIL; logs that could not be read are noted in the record and
//! change nothing (the deploy was proven without them).
//!
//! The lines come from `flyctl logs --no-tail` through watch's [`LogSource`]: on real Fly the
//! call does not return while the app's buffer is empty (flyctl
//! `internal/command/logs/logs.go` waits on the stream), so each read is waited for at most
//! what is left of the window and a read still running is left behind. Only lines stamped at
//! or after the deploy's start count: the buffer also holds the previous release's lines.

use std::io::Write;
use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::config::Environment;
use crate::flyctl::Flyctl;
use crate::logs::{Window, env_masker, select};
use crate::repo::Repo;
use crate::watch::logs::{LOG_WAIT, LogCursor, LogSource};

/// The default of `--logs`.
pub const DEFAULT_LOG_WINDOW: Duration = Duration::from_secs(30);

/// How many error or panic lines are shown and recorded.
pub const SHOWN_LINES: usize = 5;

/// Time between two reads within the window.
const READ_EVERY: Duration = Duration::from_secs(5);

/// What the logs said after the deploy.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct DeployLogs {
    /// How long they were read, in seconds.
    pub window_secs: u64,
    /// How many reads answered.
    pub reads: u32,
    /// Lines at error level (no panic in them) since the deploy started.
    pub errors: u64,
    /// Lines reporting a panic since the deploy started.
    pub panics: u64,
    /// The first of them, secrets masked.
    pub shown: Vec<String>,
    /// Why no read answered, when none did.
    pub unread: Option<String>,
}

/// Reads `environment`'s logs for `window`, counting the lines stamped at or after `since`.
pub fn read_after_deploy(
    repo: &Repo,
    flyctl: &Flyctl,
    environment: &Environment,
    since: DateTime<Utc>,
    window: Duration,
    out: &mut dyn Write,
) -> anyhow::Result<DeployLogs> {
    let (masker, note) = env_masker(repo, environment);
    if let Some(note) = note {
        writeln!(out, "warning: {note}")?;
    }
    writeln!(
        out,
        "reading the logs of {} for {}s (`flyctl logs --no-tail`)",
        environment.app,
        window.as_secs()
    )?;
    // LogCursor applies `mask_common` (URL passwords, bearer tokens) after this.
    let mask = |line: &str| masker.mask(line).0;
    let mut source = LogSource::new(flyctl.clone(), &environment.app, SHOWN_LINES);
    let mut cursor = LogCursor::default();
    let mut logs = DeployLogs {
        window_secs: window.as_secs(),
        ..DeployLogs::default()
    };
    let deadline = Instant::now() + window;
    let mut last_problem = None;
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        source = source.with_wait(left.clamp(Duration::from_millis(100), LOG_WAIT));
        match source.read_output() {
            Ok(output) => {
                logs.reads += 1;
                let window = Window {
                    lines: usize::MAX,
                    since: Some(since),
                };
                let recent = select(&output, window).join("\n");
                let found = cursor.advance(&recent, SHOWN_LINES, mask);
                logs.errors += found.errors;
                logs.panics += found.panics;
                let room = SHOWN_LINES.saturating_sub(logs.shown.len());
                logs.shown.extend(found.kept.into_iter().take(room));
            }
            Err(problem) => {
                last_problem = Some(problem);
                // flyctl failed (not logged in, no such app, no `logs` command): asking again
                // within the window would fail the same way.
                if !source.is_reading() {
                    break;
                }
            }
        }
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            break;
        }
        // Pacing between reads of a buffer, not waiting for an event.
        std::thread::sleep(left.min(READ_EVERY));
    }
    if logs.reads == 0 {
        logs.unread = last_problem;
    }
    writeln!(out, "{}", describe(&logs))?;
    for line in &logs.shown {
        writeln!(out, "    {line}")?;
    }
    Ok(logs)
}

/// One line about what the logs said.
pub fn describe(logs: &DeployLogs) -> String {
    match &logs.unread {
        Some(problem) => format!("logs not read: {problem}"),
        None => format!(
            "logs since the deploy started: {} error line(s), {} panic line(s) in {}s",
            logs.errors, logs.panics, logs.window_secs
        ),
    }
}
