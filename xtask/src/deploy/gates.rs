//! The real [`Gates`]: `predeploy` before a deploy and `smoke` after it, called as library
//! functions with typed options equal to `cargo xtask predeploy|smoke --env NAME` (a test
//! holds them to the CLI's parse). The seam itself and the readiness poll live in
//! [`crate::release::gates`], shared with rollback.

use crate::output::Output;
use crate::repo::Repo;
use crate::verdict::Verdict;

pub use crate::release::gates::{Gates, READYZ_PATH, parse_wait, ready_and_smoke, wait_ready};

/// The real tasks, run as `cargo xtask predeploy|smoke --env NAME` runs them.
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

/// The options of `cargo xtask predeploy --env ENV`.
pub fn predeploy_args(env: &str) -> crate::predeploy::Args {
    crate::predeploy::Args {
        env: Some(env.to_string()),
        strict: false,
        json: false,
        junit: None,
    }
}

/// The options of `cargo xtask smoke --env ENV`.
pub fn smoke_args(env: &str) -> crate::smoke::Args {
    crate::smoke::Args {
        env: Some(env.to_string()),
        url: None,
        wait: None,
        concurrency: None,
        requests: None,
        duration: None,
        rate: None,
        warmup: None,
        timeout: None,
        p95_ms: None,
        max_error_rate: None,
        endpoints: Vec::new(),
        skip_bench: false,
        skip_checks: false,
        json: false,
        junit: None,
        deadline: None,
    }
}

impl Gates for TaskGates {
    fn predeploy(&self, _repo: &Repo, env: &str, record: bool) -> anyhow::Result<Verdict> {
        crate::predeploy::check_with_output(predeploy_args(env), self.output(), record)
    }

    fn smoke(&self, _repo: &Repo, env: &str) -> anyhow::Result<Verdict> {
        crate::smoke::run_with_output(smoke_args(env), self.output())
    }
}
