//! The real [`Gates`]: `predeploy` before a deploy and `smoke` after it, run exactly as
//! `cargo xtask predeploy|smoke --env NAME` would. The seam itself and the readiness poll live
//! in [`crate::release::gates`], shared with rollback.

use anyhow::Context;

use crate::cli::{Cli, Command};
use crate::output::Output;
use crate::repo::Repo;
use crate::verdict::Verdict;

pub use crate::release::gates::{Gates, READYZ_PATH, parse_wait, wait_ready};

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
}
