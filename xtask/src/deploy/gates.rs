//! The real [`Gates`]: `predeploy` before a deploy and `smoke` after it, called as library
//! functions with typed options equal to `cargo xtask predeploy|smoke --env NAME` (a test
//! holds them to the CLI's parse). The seam itself and the readiness poll live in
//! [`crate::release::gates`], shared with rollback.

use crate::output::Output;
use crate::predeploy::{self, CommandLine};
use crate::repo::Repo;
use crate::smoke;
use crate::verdict::Verdict;

pub use crate::release::gates::{Gates, READYZ_PATH, ready_and_smoke, wait_ready};

/// The real tasks, run as `cargo xtask predeploy|smoke --env NAME` runs them.
#[derive(Debug, Clone, Default)]
pub struct TaskGates {
    /// The calling task prints JSON on stdout: the gates' tables go to stderr.
    pub json: bool,
    /// The command line predeploy's `docs_commands` check reads the docs with (`None`
    /// skips that check).
    pub command_line: Option<CommandLine>,
    /// Smoke this base URL instead of the environment's (`deploy --url`).
    pub url: Option<String>,
}

impl TaskGates {
    /// The gates of a task run from the command line: JSON when `output` carries it, the
    /// docs read with `command_line`, smoke against the environment's URL.
    pub fn new(output: Output, command_line: Option<CommandLine>) -> TaskGates {
        TaskGates {
            json: output.json(),
            command_line,
            url: None,
        }
    }

    fn output(&self) -> Output {
        if self.json {
            Output::nested_in_json()
        } else {
            Output::new(false)
        }
    }
}

impl Gates for TaskGates {
    fn json(&self) -> bool {
        self.json
    }

    fn predeploy(&self, repo: &Repo, env: &str, record: bool) -> anyhow::Result<Verdict> {
        let options = predeploy::Options::for_env(env, self.command_line);
        predeploy::check_with_output(repo, &options, self.output(), record, None)
    }

    fn smoke(&self, repo: &Repo, env: &str) -> anyhow::Result<Verdict> {
        let options = smoke::Options {
            url: self.url.clone(),
            ..smoke::Options::for_env(env)
        };
        smoke::run_with_output(repo, options, self.output(), None)
    }
}
