//! Repository tasks for sist-cabanas, run as `cargo xtask <task>`.
//!
//! Every task follows one contract (see `docs/architecture.md`): it measures, produces a plain
//! result value, saves it as a [`record::RunRecord`] under `target/xtask/runs/`, and prints it.
//! Exit codes are the same everywhere: 0 pass, 1 a check failed, 2 the task could not run.

pub mod admin_token;
pub mod announce;
pub mod backup;
pub mod bench;
pub mod check;
pub mod cli;
pub mod config;
pub mod deploy;
pub mod escape;
pub mod files;
pub mod finish;
pub mod flyctl;
pub mod fuzz;
pub mod http;
pub mod image;
pub mod interrupt;
pub mod junit;
pub mod local_service;
pub mod localfly;
pub mod logs;
pub mod masking;
pub mod output;
pub mod overlap;
pub mod pgcluster;
pub mod ports;
pub mod predeploy;
pub mod promote;
pub mod readiness;
pub mod record;
pub mod records;
pub mod rehearse;
pub mod release;
pub mod repo;
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
pub mod verdict;
pub mod watch;

use std::process::ExitCode;

use cli::Cli;
use verdict::Verdict;

/// Runs the task named on the command line and turns its outcome into the process exit code.
pub fn dispatch(cli: Cli) -> ExitCode {
    exit_code(cli.command.run())
}

/// Maps a task outcome to the shared exit codes: 0 pass, 1 failed check, 2 could not run.
pub fn exit_code(outcome: anyhow::Result<Verdict>) -> ExitCode {
    match outcome {
        Ok(verdict) => ExitCode::from(verdict.exit_code()),
        Err(error) => {
            eprintln!("error: {error:#}");
            ExitCode::from(verdict::EXIT_COULD_NOT_RUN)
        }
    }
}
