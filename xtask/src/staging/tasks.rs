//! The real tasks behind `cargo xtask staging`, each called through its library function with
//! typed options equal to `cargo xtask <task> --env staging` (a test holds them to the CLI's
//! parse; deploy adds `--rollback-on-failure`, as the decision map's deploy step runs it), and
//! the map read as `status --env staging` reads it.

use std::path::PathBuf;

use chrono::Utc;

use super::{ENVIRONMENT, Outcome, Task, Tasks};
use crate::config::DeployConfig;
use crate::deploy::gates::TaskGates;
use crate::flyctl::Flyctl;
use crate::output::Output;
use crate::predeploy::CommandLine;
use crate::repo::Repo;
use crate::report::{self, DecisionMap};

/// The tasks on the repository, with flyctl from the environment (`FLYCTL` or the PATH).
pub struct Real {
    repo: Repo,
    flyctl: Flyctl,
    app: String,
    url: Option<String>,
    command_line: Option<CommandLine>,
}

impl Real {
    /// Loads `ops/deploy.toml`'s staging entry and locates flyctl; deploy, smoke and overlap
    /// run against `url` when given (else staging's); predeploy reads the docs with
    /// `command_line`.
    pub fn new(
        repo: Repo,
        dry_run: bool,
        url: Option<String>,
        command_line: Option<CommandLine>,
    ) -> anyhow::Result<Real> {
        let config = DeployConfig::load(&repo)?;
        let app = config.environment(ENVIRONMENT)?.app.clone();
        let flyctl = Flyctl::from_env(dry_run)?.in_dir(repo.root());
        Ok(Real {
            repo,
            flyctl,
            app,
            url,
            command_line,
        })
    }
}

impl Tasks for Real {
    fn position(&self) -> anyhow::Result<DecisionMap> {
        let head = self.repo.git_state();
        let options = report::Options {
            env: Some(ENVIRONMENT.to_string()),
        };
        Ok(report::context(&self.repo, &options, Utc::now(), head.as_ref())?.map)
    }

    fn run(&self, task: Task) -> anyhow::Result<Outcome> {
        let mut out = std::io::stderr();
        let out_put = Output::new(false);
        Ok(match task {
            Task::Predeploy => Outcome::of(crate::predeploy::check_with_output(
                &self.repo,
                &crate::predeploy::Options::for_env(ENVIRONMENT, self.command_line),
                out_put,
                true,
                None,
            )?),
            Task::Fly => super::fly::check(&self.flyctl, &self.app, &mut out)?,
            Task::Secrets => {
                let args = crate::secrets::Options::for_env(ENVIRONMENT);
                let (verdict, result) =
                    crate::secrets::run_with(&self.repo, &args, self.flyctl.clone(), &mut out)?;
                Outcome {
                    verdict,
                    notes: result.problems,
                    rollback: None,
                    fix: Vec::new(),
                }
            }
            Task::Deploy => {
                // The map's deploy step: a release that fails goes back to what served.
                let args = crate::deploy::Options {
                    rollback_on_failure: true,
                    url: self.url.clone(),
                    ..crate::deploy::Options::for_env(ENVIRONMENT)
                };
                let gates = TaskGates {
                    json: false,
                    command_line: self.command_line,
                    url: self.url.clone(),
                };
                let (verdict, result) = crate::deploy::run_with(
                    &self.repo,
                    &args,
                    self.flyctl.clone(),
                    &gates,
                    &mut out,
                )?;
                Outcome {
                    verdict,
                    rollback: rollback_left(&result),
                    notes: result.problems,
                    fix: Vec::new(),
                }
            }
            Task::Smoke => Outcome::of(crate::smoke::run_with_output(
                &self.repo,
                crate::smoke::Options {
                    url: self.url.clone(),
                    ..crate::smoke::Options::for_env(ENVIRONMENT)
                },
                out_put,
                None,
            )?),
            Task::Overlap => Outcome::of(crate::overlap::run_with(
                &self.repo,
                crate::overlap::Options {
                    url: self.url.clone(),
                    ..crate::overlap::Options::mutating_against(ENVIRONMENT)
                },
                out_put,
                None,
            )?),
        })
    }

    fn report(&self) -> anyhow::Result<Vec<PathBuf>> {
        let now = Utc::now();
        let options = report::Options {
            env: Some(ENVIRONMENT.to_string()),
        };
        let rendered = report::render(&self.repo, &options, now, self.repo.git_state().as_ref())?;
        let written = report::write(&rendered, self.repo.root(), now, false)?;
        crate::output::append_step_summary(&rendered.markdown)?;
        Ok(written.paths)
    }
}

/// The rollback command still to run after a failed deploy: none when the deploy's own
/// rollback proved the previous release serves again.
fn rollback_left(result: &crate::deploy::DeployResult) -> Option<String> {
    let restored = result.rollout.rolled_back.as_ref().is_some_and(|rb| {
        rb.problems.is_empty()
            && rb
                .rollout
                .verification
                .as_ref()
                .is_some_and(|v| v.verdict == crate::verdict::Verdict::Pass)
    });
    if restored {
        None
    } else {
        result.rollout.rollback_command.clone()
    }
}
