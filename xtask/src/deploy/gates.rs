//! What a deploy is held to before and after flyctl runs: `predeploy` before, readiness and
//! `smoke` after. The [`Gates`] seam lets tests decide the outcome of the other tasks while
//! the real implementation runs them exactly as `cargo xtask predeploy|smoke --env NAME` would.

use std::io::Write;
use std::time::{Duration, Instant};

use anyhow::{Context, bail};

use crate::cli::{Cli, Command};
use crate::output::Output;
use crate::repo::Repo;
use crate::verdict::Verdict;

/// Path polled until the new release answers 200.
pub const READYZ_PATH: &str = "/api/v1/readyz";

/// The other tasks a deploy runs.
pub trait Gates {
    /// The predeploy checks of environment `env` (`cargo xtask predeploy --env ENV`).
    fn predeploy(&self, repo: &Repo, env: &str) -> anyhow::Result<Verdict>;
    /// The smoke test against environment `env` (`cargo xtask smoke --env ENV`).
    fn smoke(&self, repo: &Repo, env: &str) -> anyhow::Result<Verdict>;
}

/// The real tasks, run through the real CLI so their flags stay the documented ones.
#[derive(Debug, Clone, Copy, Default)]
pub struct TaskGates {
    /// The calling task prints JSON on stdout: the gates' tables go to stderr.
    pub json: bool,
}

impl TaskGates {
    fn output(&self) -> Output {
        if self.json {
            Output::nested_in_json()
        } else {
            Output::new(false)
        }
    }
}

impl Gates for TaskGates {
    fn predeploy(&self, _repo: &Repo, env: &str) -> anyhow::Result<Verdict> {
        match parse_task(&["predeploy", "--env", env])? {
            Command::Predeploy(args) => crate::predeploy::run_with_output(args, self.output()),
            _ => unreachable!("parsed as predeploy"),
        }
    }

    fn smoke(&self, _repo: &Repo, env: &str) -> anyhow::Result<Verdict> {
        match parse_task(&["smoke", "--env", env])? {
            Command::Smoke(args) => crate::smoke::run_with_output(args, self.output()),
            _ => unreachable!("parsed as smoke"),
        }
    }
}

fn parse_task(words: &[&str]) -> anyhow::Result<Command> {
    let cli = Cli::try_parse_words(words.iter().copied()).with_context(|| {
        format!(
            "`cargo xtask {}` is not a valid command line",
            words.join(" ")
        )
    })?;
    Ok(cli.command)
}

/// Parses a wait like `300`, `90s`, `5m` or `1h` into seconds.
pub fn parse_wait(text: &str) -> anyhow::Result<u64> {
    let text = text.trim();
    // A bare number is seconds, as flyctl's own --wait-timeout reads it.
    let duration = if !text.is_empty() && text.chars().all(|c| c.is_ascii_digit()) {
        Duration::from_secs(
            text.parse()
                .with_context(|| format!("`{text}` is not a duration; use e.g. 300, 90s or 5m"))?,
        )
    } else {
        crate::cli::parse_duration(text).map_err(anyhow::Error::msg)?
    };
    let seconds = duration.as_secs_f64().ceil() as u64;
    if seconds == 0 {
        bail!("a wait of 0 seconds cannot succeed; use e.g. 5m");
    }
    Ok(seconds)
}

/// Polls `<base_url>/api/v1/readyz` until it answers 200 or `timeout` passes. `Fail` carries
/// the last status or error seen.
pub fn wait_ready(
    base_url: &str,
    timeout: Duration,
    out: &mut dyn Write,
) -> anyhow::Result<(Verdict, String)> {
    let url = format!("{}{READYZ_PATH}", base_url.trim_end_matches('/'));
    writeln!(
        out,
        "waiting up to {}s for {url} to answer 200",
        timeout.as_secs()
    )?;
    let client = crate::http::client(Duration::from_secs(5).min(timeout))?;
    let runtime = crate::http::runtime()?;
    let started = Instant::now();
    loop {
        let last = match runtime.block_on(async { client.get(&url).send().await }) {
            Ok(response) if response.status().is_success() => {
                let evidence = format!(
                    "{url} answered {} after {:.1}s",
                    response.status(),
                    started.elapsed().as_secs_f64()
                );
                writeln!(out, "ready: {evidence}")?;
                return Ok((Verdict::Pass, evidence));
            }
            Ok(response) => format!("last answer {}", response.status()),
            Err(error) => format!("last error: {error}"),
        };
        if started.elapsed() >= timeout {
            let evidence = format!("{url} not ready after {}s ({last})", timeout.as_secs());
            writeln!(out, "not ready: {evidence}")?;
            return Ok((Verdict::Fail, evidence));
        }
        std::thread::sleep(
            Duration::from_secs(2)
                .min(timeout.saturating_sub(started.elapsed()))
                .max(Duration::from_millis(100)),
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_real_gates_command_lines_parse() {
        assert!(matches!(
            parse_task(&["predeploy", "--env", "staging"]).unwrap(),
            Command::Predeploy(_)
        ));
        assert!(matches!(
            parse_task(&["smoke", "--env", "staging"]).unwrap(),
            Command::Smoke(_)
        ));
    }

    #[test]
    fn waits_parse_with_units() {
        assert_eq!(parse_wait("300").unwrap(), 300);
        assert_eq!(parse_wait("90s").unwrap(), 90);
        assert_eq!(parse_wait("5m").unwrap(), 300);
        assert_eq!(parse_wait("1h").unwrap(), 3600);
        assert!(parse_wait("5 minutes").is_err());
        assert!(parse_wait("0").is_err());
        assert!(parse_wait("").is_err());
    }

    #[test]
    fn an_unreachable_service_is_not_ready() {
        let mut out = Vec::new();
        let (verdict, evidence) =
            wait_ready("http://127.0.0.1:9", Duration::from_secs(1), &mut out).unwrap();
        assert_eq!(verdict, Verdict::Fail);
        assert!(evidence.contains("not ready after 1s"), "{evidence}");
    }
}
