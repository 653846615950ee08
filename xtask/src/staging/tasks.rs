//! The real tasks behind `cargo xtask staging`, each called through its library function with
//! typed options equal to `cargo xtask <task> --env staging` (a test holds them to the CLI's
//! parse), and the map read as `status --env staging` reads it.

use std::path::PathBuf;

use chrono::Utc;

use super::{ENVIRONMENT, Outcome, Task, Tasks};
use crate::config::DeployConfig;
use crate::deploy::gates::{TaskGates, predeploy_args, smoke_args};
use crate::flyctl::Flyctl;
use crate::output::Output;
use crate::repo::Repo;
use crate::report::{self, DecisionMap};

/// The tasks on the repository, with flyctl from the environment (`FLYCTL` or the PATH).
pub struct Real {
    repo: Repo,
    flyctl: Flyctl,
    app: String,
}

impl Real {
    /// Loads `ops/deploy.toml`'s staging entry and locates flyctl.
    pub fn new(repo: Repo, dry_run: bool) -> anyhow::Result<Real> {
        let config = DeployConfig::load(&repo)?;
        let app = config.environment(ENVIRONMENT)?.app.clone();
        let flyctl = Flyctl::from_env(dry_run)?.in_dir(repo.root());
        Ok(Real { repo, flyctl, app })
    }
}

/// The options of `cargo xtask secrets --env ENV`.
pub fn secrets_args(env: &str) -> crate::secrets::Args {
    crate::secrets::Args {
        env: env.to_string(),
        dry_run: false,
        json: false,
    }
}

/// The options of `cargo xtask deploy --env ENV`.
pub fn deploy_args(env: &str) -> crate::deploy::Args {
    crate::deploy::Args {
        env: env.to_string(),
        dry_run: false,
        strategy: "rolling".to_string(),
        rollback_on_failure: false,
        wait_timeout: 300,
        deploy_timeout: 1800,
        wake: false,
        json: false,
    }
}

/// The options of `cargo xtask overlap --env ENV --mutating`.
pub fn overlap_args(env: &str) -> crate::overlap::Args {
    crate::overlap::Args {
        env: Some(env.to_string()),
        url: None,
        mutating: true,
        concurrency: 10,
        rounds: 1,
        accommodation_id: None,
        check_in: None,
        check_out: None,
        nights: None,
        admin_token: None,
        env_file: None,
        no_cleanup: false,
        timeout: std::time::Duration::from_secs(30),
        timeout_secs: None,
        junit: None,
        json: false,
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
            Task::Predeploy => Outcome::of(crate::predeploy::run_with_output(
                predeploy_args(ENVIRONMENT),
                out_put,
            )?),
            Task::Fly => super::fly::check(&self.flyctl, &self.app, &mut out)?,
            Task::Secrets => {
                let args = secrets_args(ENVIRONMENT);
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
                let args = deploy_args(ENVIRONMENT);
                let gates = TaskGates { json: false };
                let (verdict, result) = crate::deploy::run_with(
                    &self.repo,
                    &args,
                    self.flyctl.clone(),
                    &gates,
                    &mut out,
                )?;
                Outcome {
                    verdict,
                    notes: result.problems,
                    rollback: result.rollback_command,
                    fix: Vec::new(),
                }
            }
            Task::Smoke => Outcome::of(crate::smoke::run_with_output(
                smoke_args(ENVIRONMENT),
                out_put,
            )?),
            Task::Overlap => Outcome::of(crate::overlap::run(overlap_args(ENVIRONMENT))?),
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cli::{Cli, Command};

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
        assert_eq!(format!("{cli:?}"), format!("{:?}", secrets_args("staging")));
        let Command::Deploy(cli) = parse("deploy --env staging") else {
            panic!()
        };
        assert_eq!(format!("{cli:?}"), format!("{:?}", deploy_args("staging")));
        let Command::Overlap(cli) = parse("overlap --env staging --mutating") else {
            panic!()
        };
        // The admin token may come from the environment; everything else must match.
        let cli = crate::overlap::Args {
            admin_token: None,
            ..cli
        };
        assert_eq!(format!("{cli:?}"), format!("{:?}", overlap_args("staging")));
    }
}
