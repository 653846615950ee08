//! The command-line definition. It lives in the library so that the `docs_commands` check can
//! parse every `cargo xtask ...` line in the docs with the real CLI.

use std::time::Duration;

use clap::{Parser, Subcommand};

/// Deploy workspace of sist-cabanas: validate, deploy, smoke-test and report on the service.
///
/// Exit codes: 0 = pass, 1 = a check or threshold failed, 2 = the task could not run.
#[derive(Debug, Parser)]
#[command(name = "xtask", bin_name = "cargo xtask", version)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

/// The tasks.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Validate the repository and the environment files before a deploy.
    Predeploy(crate::predeploy::Args),
    /// Stage an environment's secrets on its Fly app (via stdin) and confirm every key arrived.
    Secrets(crate::secrets::Args),
    /// Predeploy, deploy to Fly with health checks, wait for readiness, then smoke-test.
    Deploy(crate::deploy::Args),
    /// Deploy the last good release's image again, then wait for readiness and smoke-test.
    Rollback(crate::rollback::Args),
    /// Check health and readiness, then benchmark latency against the thresholds.
    Smoke(crate::smoke::Args),
    /// Prove that exactly one of N concurrent bookings for the same dates wins.
    Overlap(crate::overlap::Args),
    /// Render the saved results into backend/docs/DEPLOYMENT_SUMMARY.md with the GO / NO-GO
    /// verdict and the decision map (exit 0 when written; with --check, 1 unless GO).
    Report(crate::report::Args),
    /// Print where the deployment stands on the decision map and the one next command.
    Status(crate::status::Args),
    /// Walk the decision map for staging in order (predeploy, Fly, secrets, deploy, smoke,
    /// overlap), skipping fresh steps and resuming at the last failure.
    Staging(crate::staging::Args),
    /// Run the whole pipeline locally: start the service, predeploy, smoke, overlap, report.
    Rehearse(crate::rehearse::Args),
    /// Deploy to production the exact image staging verified, once staging is GO, the 24-hour
    /// gate holds and the production checklist is complete (blue-green, rollback on failure).
    Promote(crate::promote::Args),
    /// Sample a running service for a bounded time (health, version, metrics, log lines) and
    /// save a stability record with every breach.
    Watch(crate::watch::Args),
    /// Run the workspace tests against a throwaway PostgreSQL cluster.
    Test(crate::test_suite::Args),
    /// Share result records through a git ref of the repository: push, pull or list them.
    Records(crate::records::Args),
    /// Print a short-lived admin token (HS256) for an environment, e.g. to confirm or cancel
    /// a reservation by hand; only the token is printed.
    AdminToken(crate::admin_token::Args),
    /// Fuzz the API against its OpenAPI document with Schemathesis, on a local service or a
    /// given URL (exit 1 on a server error or a contract violation).
    Fuzz(crate::fuzz::Args),
    /// Benchmark the release build side by side: smoke's load generator against oha and wrk,
    /// the service's routes against a bare server, pre-reserve against the pgbench ceiling
    /// (--postgres); prints Markdown tables of min/median/max ratios (exit 0 once measured).
    Bench(crate::bench::Args),
    /// Build the service image with Docker or Podman (id, size, build time); with --check,
    /// run it as Fly would and name the first failing step.
    Image(crate::image::Args),
    /// Print an environment's recent app logs (`fly logs --no-tail`) with every value of its
    /// env file masked; --since and --lines narrow them.
    Logs(crate::logs::Args),
    /// Dump an environment's database (pg_dump -Fc) with a manifest: server version, size,
    /// sha256, rows per table, start and end time.
    Backup(crate::backup::Args),
    /// Restore a backup into a throwaway local cluster and check it (checksum, migrations,
    /// row counts, no overlapping bookings); reports RTO and RPO (exit 1 when a check fails).
    RestoreDrill(crate::restore_drill::Args),
}

impl Cli {
    /// Parses a command line given as words, as `cargo xtask` would receive it (without the
    /// leading `cargo xtask`). Used to validate documented commands.
    pub fn try_parse_words<I, S>(words: I) -> Result<Cli, clap::Error>
    where
        I: IntoIterator<Item = S>,
        S: Into<std::ffi::OsString> + Clone,
    {
        let argv = std::iter::once(std::ffi::OsString::from("cargo-xtask"))
            .chain(words.into_iter().map(Into::into));
        Cli::try_parse_from(argv)
    }
}

/// The longest duration a flag accepts.
pub const MAX_DURATION: Duration = Duration::from_secs(30 * 24 * 3600);

/// Parses a duration such as `500ms`, `10s`, `1.5s`, `2m` or `1h` (a number and a unit).
pub fn parse_duration(text: &str) -> Result<Duration, String> {
    let text = text.trim();
    let split = text
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(text.len());
    let (number, unit) = text.split_at(split);
    let hint = "expected a number and a unit, e.g. 500ms, 10s, 2m, 1h";
    let value: f64 = number
        .parse()
        .map_err(|_| format!("`{text}` is not a duration: {hint}"))?;
    let factor = match unit.trim() {
        "ms" => 0.001,
        "s" => 1.0,
        "m" => 60.0,
        "h" => 3600.0,
        "" => return Err(format!("`{text}` has no unit: {hint}")),
        other => return Err(format!("unknown unit `{other}` in `{text}`: {hint}")),
    };
    let duration = Duration::try_from_secs_f64(value * factor)
        .map_err(|_| format!("`{text}` is out of range: {hint}"))?;
    // Every wait, run and timeout a task takes is far shorter; longer is a typo, and deadlines
    // computed from it must not overflow.
    if duration > MAX_DURATION {
        return Err(format!("`{text}` is longer than 30 days: {hint}"));
    }
    Ok(duration)
}

/// The warning for a duration written the old way, as a bare number of seconds (`300`):
/// still accepted for one release, to be written with its unit (`300s`).
pub fn bare_seconds_warning(text: &str) -> Option<String> {
    let text = text.trim();
    (!text.is_empty() && text.chars().all(|c| c.is_ascii_digit())).then(|| {
        format!(
            "warning: duration `{text}` without a unit is read as seconds; this spelling will \
             go away: write `{text}s` (durations are a number and a unit: 500ms, 30s, 5m, 1h)"
        )
    })
}

/// Prints the warning for an old flag or spelling on stderr (never on stdout, which `--json`
/// owns).
pub fn warn_old_spelling(message: &str) {
    use std::io::Write;
    let _ = writeln!(std::io::stderr().lock(), "{message}");
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory;

    #[test]
    fn cli_definition_is_consistent() {
        Cli::command().debug_assert();
    }

    #[test]
    fn bare_seconds_are_the_old_spelling_and_units_are_the_new_one() {
        let warning = bare_seconds_warning("300").unwrap();
        assert!(warning.contains("write `300s`"), "{warning}");
        assert_eq!(bare_seconds_warning("300s"), None);
        assert_eq!(bare_seconds_warning("5m"), None);
        assert_eq!(bare_seconds_warning(""), None);
    }

    #[test]
    fn old_duration_spellings_parse_to_the_same_values_as_the_new_ones() {
        let parse = |words: &str| Cli::try_parse_words(words.split_whitespace()).map(|c| c.command);
        let (Ok(Command::Overlap(old)), Ok(Command::Overlap(new))) = (
            parse("overlap --url http://127.0.0.1:9 --timeout-secs 5"),
            parse("overlap --url http://127.0.0.1:9 --timeout 5s"),
        ) else {
            panic!("overlap's timeout spellings must parse")
        };
        assert_eq!(
            crate::overlap::request_timeout(&old),
            Duration::from_secs(5)
        );
        assert_eq!(
            crate::overlap::request_timeout(&new),
            Duration::from_secs(5)
        );
        assert!(parse("overlap --url http://127.0.0.1:9 --timeout 5s --timeout-secs 5").is_err());
        let (Ok(Command::Deploy(old)), Ok(Command::Deploy(new))) = (
            parse("deploy --env staging --wait-timeout 300"),
            parse("deploy --env staging --wait-timeout 5m"),
        ) else {
            panic!("deploy's wait spellings must parse")
        };
        assert_eq!((old.wait_timeout, new.wait_timeout), (300, 300));
    }

    #[test]
    fn unknown_task_is_rejected() {
        assert!(Cli::try_parse_words(["deploy-everything"]).is_err());
        assert!(Cli::try_parse_words(["test"]).is_ok());
    }
}
