//! The flags of `cargo xtask predeploy`, turned into [`crate::predeploy::Options`].

use crate::output::Output;
use crate::predeploy::{self, Options};
use crate::repo::Repo;
use crate::verdict::Verdict;

/// Options of `cargo xtask predeploy`.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// Check only this environment of ops/deploy.toml; its filled env file must then exist.
    #[arg(long, value_name = "NAME")]
    pub env: Option<String>,
    /// Fail, not just warn, on a dirty working tree (use before production and in CI).
    #[arg(long)]
    pub strict: bool,
    /// Also write the outcome as JUnit XML to PATH (one test case per check), for CI test
    /// reporters.
    #[arg(long, value_name = "PATH")]
    pub junit: Option<std::path::PathBuf>,
    /// Print the result record as JSON on stdout; the table goes to stderr.
    #[arg(long)]
    pub json: bool,
}

impl Args {
    /// The task's options: the checks to run, with this command line to read the docs with.
    pub fn options(&self) -> Options {
        Options {
            env: self.env.clone(),
            strict: self.strict,
            workflow_linters: None,
            command_line: Some(super::documented_command),
        }
    }

    /// Checks the repository containing the current directory, recording the result.
    pub fn run(self) -> anyhow::Result<Verdict> {
        let repo = Repo::discover()?;
        predeploy::check_with_output(
            &repo,
            &self.options(),
            Output::new(self.json),
            true,
            self.junit.as_deref(),
        )
    }
}
