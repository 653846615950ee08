//! The app's log lines between two samples (`flyctl logs --no-tail`): which are new, which
//! are at error level or carry a panic, and masking before any is kept.

use std::collections::BTreeMap;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::flyctl::{Flyctl, Invocation};

/// Error and panic lines seen in one interval.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct LogFindings {
    /// New lines at error level (no panic in them).
    pub errors: u64,
    /// New lines reporting a panic.
    pub panics: u64,
    /// The first few of them, secrets masked.
    pub kept: Vec<String>,
}

impl LogFindings {
    /// Error plus panic lines.
    pub fn total(&self) -> u64 {
        self.errors + self.panics
    }
}

/// How bad a line is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Severity {
    /// A panic (`thread '...' panicked at`, or the word panic in an error line).
    Panic,
    /// Error level, in the service's JSON logs or flyctl's `[error]` prefix.
    Error,
}

/// The severity of a log line, `None` below error level.
pub fn severity(line: &str) -> Option<Severity> {
    let lower = line.to_ascii_lowercase();
    if lower.contains("panicked at") || lower.contains("panic") && is_error_level(&lower) {
        return Some(Severity::Panic);
    }
    is_error_level(&lower).then_some(Severity::Error)
}

fn is_error_level(lower: &str) -> bool {
    lower.contains("\"level\":\"error\"")
        || lower.contains("[error]")
        || lower.contains(" error ")
        || lower.contains("level=error")
}

/// Remembers which lines have been counted: `flyctl logs --no-tail` prints a recent buffer
/// every time, so a line is new only the first time it (or its n-th copy) appears.
#[derive(Debug, Default)]
pub struct LogCursor {
    seen: BTreeMap<String, usize>,
}

impl LogCursor {
    /// The error and panic lines of `output` not counted before, each masked by `mask`;
    /// at most `keep` are kept.
    pub fn advance(
        &mut self,
        output: &str,
        keep: usize,
        mask: impl Fn(&str) -> String,
    ) -> LogFindings {
        let mut now: BTreeMap<&str, usize> = BTreeMap::new();
        let mut findings = LogFindings::default();
        for line in output.lines() {
            let copies = now.entry(line).or_default();
            *copies += 1;
            let before = self.seen.get(line).copied().unwrap_or(0);
            if *copies <= before {
                continue;
            }
            match severity(line) {
                Some(Severity::Panic) => findings.panics += 1,
                Some(Severity::Error) => findings.errors += 1,
                None => continue,
            }
            if findings.kept.len() < keep {
                findings.kept.push(mask_common(&mask(line)));
            }
        }
        for (line, copies) in now {
            let seen = self.seen.entry(line.to_string()).or_default();
            *seen = (*seen).max(copies);
        }
        findings
    }
}

/// Masks what looks like a secret whatever its source: the password of a URL
/// (`scheme://user:****@host`) and bearer tokens. Known values are masked by the caller
/// (the flyctl module's masking of the env file's values) before this runs.
pub fn mask_common(line: &str) -> String {
    let mut masked = String::with_capacity(line.len());
    let mut rest = line;
    while let Some(start) = rest.find("://") {
        let (head, tail) = rest.split_at(start + 3);
        masked.push_str(head);
        let end = tail
            .find(|c: char| c.is_whitespace() || c == '"' || c == '\'')
            .unwrap_or(tail.len());
        let authority = &tail[..end];
        match (authority.find('@'), authority.find(':')) {
            (Some(at), Some(colon)) if colon < at => {
                masked.push_str(&authority[..colon + 1]);
                masked.push_str("****");
                masked.push_str(&authority[at..]);
            }
            _ => masked.push_str(authority),
        }
        rest = &tail[end..];
    }
    masked.push_str(rest);
    mask_bearer(&masked)
}

fn mask_bearer(line: &str) -> String {
    let lower = line.to_ascii_lowercase();
    let Some(start) = lower.find("bearer ") else {
        return line.to_string();
    };
    let token_start = start + "bearer ".len();
    let token_end = line[token_start..]
        .find(|c: char| c.is_whitespace() || c == '"' || c == '\'')
        .map_or(line.len(), |end| token_start + end);
    format!("{}****{}", &line[..token_start], &line[token_end..])
}

/// Where the log lines come from: the app on Fly, read with `flyctl logs --no-tail`.
///
/// Real `fly logs --no-tail` prints one page and, when the app has logged nothing lately,
/// does not exit (flyctl `internal/command/logs/logs.go` waits on the log stream). So a read
/// runs on its own thread: a sample waits for it at most [`LOG_WAIT`], and a read still
/// running then is left to finish (within [`LOG_TIME_LIMIT`]) while the samples go on; the
/// sample says the logs could not be read, which is neither a breach nor silence.
pub struct LogSource {
    /// The flyctl to run (its masking hides the env file's values).
    pub flyctl: Flyctl,
    /// The Fly app.
    pub app: String,
    /// How many lines to keep per interval.
    pub keep: usize,
    cursor: LogCursor,
    pending: Option<PendingRead>,
    /// How many reads finished: the first only marks what is there.
    finished: usize,
    wait: Duration,
}

/// A `flyctl logs --no-tail` running on its own thread.
struct PendingRead {
    answer: std::sync::mpsc::Receiver<Result<String, String>>,
    started: std::time::Instant,
}

/// How long a sample waits for the log read it started.
pub const LOG_WAIT: Duration = Duration::from_secs(3);

/// How long one `flyctl logs --no-tail` may run before it is stopped.
pub const LOG_TIME_LIMIT: Duration = Duration::from_secs(60);

impl LogSource {
    /// Reads `app`'s logs through `flyctl`.
    pub fn new(flyctl: Flyctl, app: &str, keep: usize) -> LogSource {
        LogSource {
            flyctl,
            app: app.to_string(),
            keep,
            cursor: LogCursor::default(),
            pending: None,
            finished: 0,
            wait: LOG_WAIT,
        }
    }

    /// The same, waiting at most `wait` for each read.
    pub fn with_wait(mut self, wait: Duration) -> LogSource {
        self.wait = wait;
        self
    }

    /// The lines new since the previous read. The first read only marks what is there: lines
    /// older than the watch are not its business.
    pub(super) fn read(&mut self) -> Result<LogFindings, String> {
        let output = self.read_output()?;
        let flyctl = &self.flyctl;
        let findings = self
            .cursor
            .advance(&output, self.keep, |line| flyctl.mask(line));
        self.finished += 1;
        Ok(if self.finished == 1 {
            LogFindings::default()
        } else {
            findings
        })
    }

    /// Whether a read is still running (the last one outlived its wait).
    pub fn is_reading(&self) -> bool {
        self.pending.is_some()
    }

    /// What one `flyctl logs --no-tail` printed, waiting for it at most the source's wait (a
    /// read still running then is kept for the next call), for callers that pick and count
    /// the lines themselves (`deploy`).
    pub fn read_output(&mut self) -> Result<String, String> {
        let pending = match self.pending.take() {
            Some(pending) => pending,
            None => self.start(),
        };
        let output = match pending.answer.recv_timeout(self.wait) {
            Ok(output) => output?,
            Err(std::sync::mpsc::RecvTimeoutError::Timeout) => {
                let running = pending.started.elapsed().as_secs();
                self.pending = Some(pending);
                return Err(format!(
                    "`flyctl logs --app {} --no-tail` still running after {running}s (flyctl \
                     waits when the app has logged nothing lately): logs not read this interval",
                    self.app
                ));
            }
            Err(std::sync::mpsc::RecvTimeoutError::Disconnected) => {
                return Err("the log reader stopped without an answer".to_string());
            }
        };
        Ok(output)
    }

    fn start(&self) -> PendingRead {
        let (tell, answer) = std::sync::mpsc::channel();
        let flyctl = self.flyctl.clone();
        let invocation = Invocation::new(["logs", "--app", &self.app, "--no-tail"])
            .with_time_limit(Some(LOG_TIME_LIMIT));
        std::thread::spawn(move || {
            let output = flyctl
                .read(&invocation, &mut std::io::sink())
                .map(Option::unwrap_or_default)
                .map_err(|error| format!("{error:#}"));
            // The watch may have ended; nobody is left to tell.
            let _ = tell.send(output);
        });
        PendingRead {
            answer,
            started: std::time::Instant::now(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn severity_reads_json_levels_and_panics() {
        let error =
            r#"2026-12-01T10:00:00Z app[1] eze [info] {"level":"ERROR","message":"db down"}"#;
        let info = r#"2026-12-01T10:00:00Z app[1] eze [info] {"level":"INFO","message":"error page served"}"#;
        let panic = "thread 'tokio-runtime-worker' panicked at src/store.rs:10:5:";
        assert_eq!(severity(error), Some(Severity::Error));
        assert_eq!(severity(info), None);
        assert_eq!(severity(panic), Some(Severity::Panic));
    }

    #[test]
    fn only_new_lines_are_counted() {
        let mut cursor = LogCursor::default();
        let first = "a [error] one\nb info\n";
        assert_eq!(cursor.advance(first, 5, str::to_string).errors, 1);
        assert_eq!(cursor.advance(first, 5, str::to_string).errors, 0);
        let second = "a [error] one\nb info\nc panicked at x\na [error] one\n";
        let found = cursor.advance(second, 5, str::to_string);
        assert_eq!((found.errors, found.panics), (1, 1), "{found:?}");
    }

    #[test]
    fn kept_lines_are_masked_and_bounded() {
        let mut cursor = LogCursor::default();
        let text = "x [error] postgresql://app:hunter22@db/x failed\n\
                    y [error] Authorization: Bearer abc.def.ghi rejected\n\
                    z [error] JWT_SECRET=k3y-v4lue leaked\n";
        let found = cursor.advance(text, 2, |line| line.replace("k3y-v4lue", "****"));
        assert_eq!(found.errors, 3);
        assert_eq!(found.kept.len(), 2);
        assert!(
            found.kept[0].contains("postgresql://app:****@db/x"),
            "{:?}",
            found.kept
        );
        assert!(
            found.kept[1].contains("Bearer **** rejected"),
            "{:?}",
            found.kept
        );
        let all = cursor.advance(&format!("{text}w [error] JWT_SECRET=k3y-v4lue\n"), 5, |l| {
            l.replace("k3y-v4lue", "****")
        });
        assert!(!all.kept.concat().contains("k3y-v4lue"), "{all:?}");
    }
}
