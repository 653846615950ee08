//! The command line, on top of every task: one file per task holds its clap `Args` and turns
//! them into the task's own options; no task imports this module. It lives in the library so
//! that the `docs_commands` check can read every `cargo xtask ...` line in the docs with the
//! real CLI (handed down to it as [`documented_command`]).

pub mod admin_token;
pub mod backup;
pub mod bench;
pub mod deploy;
pub mod duration;
pub mod fuzz;
pub mod image;
pub mod logs;
pub mod overlap;
pub mod predeploy;
pub mod promote;
pub mod records;
pub mod rehearse;
pub mod report;
pub mod restore;
pub mod restore_drill;
pub mod rollback;
pub mod scale;
pub mod secrets;
pub mod smoke;
pub mod staging;
pub mod status;
pub mod test_suite;
pub mod watch;

use std::path::{Path, PathBuf};

use clap::error::ErrorKind;
use clap::{Parser, Subcommand};

pub use duration::{MAX_DURATION, parse_duration};

use crate::output::Output;
use crate::predeploy::CommandCheck;
use crate::repo::Repo;
use crate::verdict::Verdict;

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
    Predeploy(predeploy::Args),
    /// Stage an environment's secrets on its Fly app (via stdin) and confirm every key arrived.
    Secrets(secrets::Args),
    /// Predeploy, deploy to Fly with health checks, wait for readiness, then smoke-test.
    Deploy(deploy::Args),
    /// Deploy the last good release's image again, then wait for readiness and smoke-test.
    Rollback(rollback::Args),
    /// Bring an environment's Fly app to the machines and regions ops/deploy.toml declares
    /// (`fly scale count` per region); --dry-run prints the plan.
    Scale(scale::Args),
    /// Check health and readiness, then benchmark latency against the thresholds.
    Smoke(smoke::Args),
    /// Prove that exactly one of N concurrent bookings for the same dates wins.
    Overlap(overlap::Args),
    /// Render the saved results into backend/docs/DEPLOYMENT_SUMMARY.md with the GO / NO-GO
    /// verdict and the decision map (exit 0 when written; with --check, 1 unless GO).
    Report(report::Args),
    /// Print where the deployment stands on the decision map and the one next command.
    Status(status::Args),
    /// Walk the decision map for staging in order (predeploy, Fly, secrets, deploy, smoke,
    /// overlap), skipping fresh steps and resuming at the last failure.
    Staging(staging::Args),
    /// Run the whole pipeline locally: start the service, predeploy, smoke, overlap, report.
    Rehearse(rehearse::Args),
    /// Deploy to production the exact image staging verified, once staging is GO, the 24-hour
    /// gate holds and the production checklist is complete (blue-green, rollback on failure).
    Promote(promote::Args),
    /// Sample a running service for a bounded time (health, version, metrics, log lines) and
    /// save a stability record with every breach.
    Watch(watch::Args),
    /// Run the workspace tests against a throwaway PostgreSQL cluster.
    Test(test_suite::Args),
    /// Share result records through a git ref of the repository: push, pull or list them.
    Records(records::Args),
    /// Print a short-lived admin token (HS256) for an environment, e.g. to confirm or cancel
    /// a reservation by hand; only the token is printed.
    AdminToken(admin_token::Args),
    /// Fuzz the API against its OpenAPI document with Schemathesis, on a local service or a
    /// given URL (exit 1 on a server error or a contract violation).
    Fuzz(fuzz::Args),
    /// Benchmark the release build side by side: smoke's load generator against oha and wrk,
    /// the service's routes against a bare server, pre-reserve against the pgbench ceiling
    /// (--postgres); prints Markdown tables of min/median/max ratios (exit 0 once measured).
    Bench(bench::Args),
    /// Build the service image with Docker or Podman (id, size, build time); with --check,
    /// run it as Fly would and name the first failing step.
    Image(image::Args),
    /// Print an environment's recent app logs (`fly logs --no-tail`) with every value of its
    /// env file masked; --since and --lines narrow them.
    Logs(logs::Args),
    /// Dump an environment's database (pg_dump -Fc) with a manifest: server version, size,
    /// sha256, rows per table, start and end time.
    Backup(backup::Args),
    /// Restore a backup into a throwaway local cluster and check it (checksum, migrations,
    /// row counts, no overlapping bookings); reports RTO and RPO (exit 1 when a check fails).
    RestoreDrill(restore_drill::Args),
    /// Restore a backup into an environment's database, after checking its checksum and
    /// backing up what it replaces; refuses without --yes (exit 1 when a row count differs).
    Restore(restore::Args),
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

/// Reads a documented command (the words after `cargo xtask`) as [`Cli`] does: help and
/// version requests parse; a refused value is told apart, since the docs may write a
/// placeholder (`NAME`, `<N>`) there.
pub fn documented_command(words: &[String]) -> CommandCheck {
    match Cli::try_parse_words(words) {
        Ok(_) => CommandCheck::Parses,
        Err(error) => match error.kind() {
            ErrorKind::DisplayHelp
            | ErrorKind::DisplayVersion
            | ErrorKind::DisplayHelpOnMissingArgumentOrSubcommand => CommandCheck::Parses,
            ErrorKind::InvalidValue | ErrorKind::ValueValidation => {
                CommandCheck::BadValue(error.kind().to_string())
            }
            kind => CommandCheck::Refused(kind.to_string()),
        },
    }
}

/// Runs a measuring task on the repository the current directory is in: `--json` and
/// `--junit` choose its output and stay here; the task gets its options.
fn measure<O>(
    options: O,
    json: bool,
    junit: Option<PathBuf>,
    task: impl FnOnce(&Repo, O, Output, Option<&Path>) -> anyhow::Result<Verdict>,
) -> anyhow::Result<Verdict> {
    task(
        &Repo::discover()?,
        options,
        Output::new(json),
        junit.as_deref(),
    )
}

impl Command {
    /// Runs the task the command names with the options its flags give.
    pub fn run(self) -> anyhow::Result<Verdict> {
        match self {
            Command::Predeploy(args) => args.run(),
            Command::Smoke(args) => {
                let (json, junit) = (args.json, args.junit.clone());
                measure(
                    args.into_options(),
                    json,
                    junit,
                    crate::smoke::run_with_output,
                )
            }
            Command::Overlap(args) => {
                let (json, junit) = (args.json, args.junit.clone());
                measure(args.into(), json, junit, crate::overlap::run_with)
            }
            Command::Test(args) => crate::test_suite::run(args.into()),
            Command::Secrets(args) => {
                let output = Output::new(args.json);
                crate::secrets::run(args.into(), output)
            }
            Command::Deploy(args) => {
                let output = Output::new(args.json);
                crate::deploy::run(args.into(), output, Some(documented_command))
            }
            Command::Rollback(args) => {
                let output = Output::new(args.json);
                crate::rollback::run(args.into(), output, Some(documented_command))
            }
            Command::Scale(args) => crate::scale::run(args.into()),
            Command::Report(args) => crate::report::run(args.into()),
            Command::Status(args) => {
                let output = Output::new(args.json);
                crate::status::run(args.into(), output)
            }
            Command::Rehearse(args) => crate::rehearse::run(args.into()),
            Command::Records(args) => {
                let output = Output::new(args.json);
                crate::records::run(args.into(), output)
            }
            Command::AdminToken(args) => crate::admin_token::run(args.into()),
            Command::Fuzz(args) => {
                let output = Output::new(args.json);
                crate::fuzz::run(args.into(), output)
            }
            Command::Staging(args) => crate::staging::run(args.into()),
            Command::Watch(args) => {
                let output = Output::new(args.json);
                crate::watch::run(args.into(), output)
            }
            Command::Promote(args) => {
                let output = Output::new(args.json);
                crate::promote::run(args.into(), output, Some(documented_command))
            }
            Command::Bench(args) => crate::bench::run(args.into()),
            Command::Image(args) => {
                let output = Output::new(args.json);
                crate::image::run(args.into(), output)
            }
            Command::Logs(args) => crate::logs::run(args.into()),
            Command::Backup(args) => crate::backup::run(args.into()),
            Command::RestoreDrill(args) => crate::restore_drill::run(args.into()),
            Command::Restore(args) => {
                let output = Output::new(args.json);
                crate::restore::run(args.into(), output)
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;
    use clap::CommandFactory;

    fn words(list: &[&str]) -> Vec<String> {
        list.iter().map(|w| w.to_string()).collect()
    }

    #[test]
    fn parses_with_the_real_cli() {
        let parses = |list: &[&str]| documented_command(&words(list)) == CommandCheck::Parses;
        assert!(parses(&["predeploy", "--strict"]));
        assert!(parses(&["--help"]));
        assert!(!parses(&["predeploy", "--no-such-flag"]));
        assert!(!parses(&["deploy-everything"]));
    }

    #[test]
    fn cli_definition_is_consistent() {
        Cli::command().debug_assert();
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
            crate::overlap::Options::from(old).timeout,
            Duration::from_secs(5)
        );
        assert_eq!(
            crate::overlap::Options::from(new).timeout,
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

    #[test]
    fn every_command_of_the_decision_map_is_a_real_command() {
        let commands = crate::report::every_task_command();
        assert!(!commands.is_empty());
        for words in commands {
            let parsed = Cli::try_parse_words(words.split_whitespace());
            assert!(
                parsed.is_ok(),
                "`cargo xtask {words}` is not a real command: {parsed:?}"
            );
        }
    }

    fn parse(words: &str) -> Command {
        Cli::try_parse_words(words.split_whitespace())
            .unwrap()
            .command
    }

    #[test]
    fn typed_options_equal_the_cli_parse_of_the_documented_commands() {
        let Command::Secrets(cli) = parse("secrets --env staging") else {
            panic!()
        };
        assert_eq!(
            format!("{:?}", crate::secrets::Options::from(cli)),
            format!("{:?}", crate::secrets::Options::for_env("staging"))
        );
        let Command::Deploy(cli) = parse("deploy --env staging") else {
            panic!()
        };
        assert_eq!(
            format!("{:?}", crate::deploy::Options::from(cli)),
            format!("{:?}", crate::deploy::Options::for_env("staging"))
        );
        let Command::Overlap(cli) = parse("overlap --env staging --mutating") else {
            panic!()
        };
        // The admin token may come from the environment; everything else must match.
        let cli = crate::overlap::Options {
            admin_token: None,
            ..cli.into()
        };
        assert_eq!(
            format!("{cli:?}"),
            format!("{:?}", crate::overlap::Options::mutating_against("staging"))
        );
        let Command::Predeploy(cli) = parse("predeploy --env staging") else {
            panic!()
        };
        assert_eq!(
            format!("{:?}", cli.options()),
            format!(
                "{:?}",
                crate::predeploy::Options::for_env("staging", Some(documented_command))
            )
        );
        let Command::Smoke(cli) = parse("smoke --env staging") else {
            panic!()
        };
        assert_eq!(
            format!("{:?}", cli.into_options()),
            format!("{:?}", crate::smoke::Options::for_env("staging"))
        );
    }

    #[test]
    fn defaults_written_as_text_are_the_tasks_constants() {
        // Durations and waits are written as clap defaults; the tasks name them as constants.
        let Command::Bench(bench) = parse("bench") else {
            panic!()
        };
        assert_eq!(bench.duration, crate::bench::DEFAULT_DURATION);
        let Command::AdminToken(token) = parse("admin-token --env staging") else {
            panic!()
        };
        assert_eq!(token.ttl, crate::admin_token::DEFAULT_TTL);
        let Command::Image(image) = parse("image") else {
            panic!()
        };
        assert_eq!(image.ready_timeout, crate::image::DEFAULT_READY_TIMEOUT);
        assert_eq!(image.tag, crate::image::DEFAULT_TAG);
        let Command::Overlap(overlap) = parse("overlap --url http://127.0.0.1:9") else {
            panic!()
        };
        assert_eq!(overlap.timeout, crate::overlap::DEFAULT_TIMEOUT);
        let Command::Rollback(rollback) = parse("rollback --env staging") else {
            panic!()
        };
        let rollback = crate::rollback::Options::from(rollback);
        assert_eq!(rollback.wait_timeout, crate::deploy::DEFAULT_WAIT_TIMEOUT);
        assert_eq!(
            rollback.deploy_timeout,
            crate::deploy::DEFAULT_DEPLOY_TIMEOUT
        );
        let Command::Promote(promote) = parse("promote") else {
            panic!()
        };
        let promote = crate::promote::Options::from(promote);
        assert_eq!(promote.wait_timeout, crate::deploy::DEFAULT_WAIT_TIMEOUT);
        assert_eq!(
            promote.deploy_timeout,
            crate::deploy::DEFAULT_DEPLOY_TIMEOUT
        );
    }
}
