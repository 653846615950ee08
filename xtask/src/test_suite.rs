//! `cargo xtask test`: the workspace tests, with the PostgreSQL tests run against a throwaway
//! cluster.

use anyhow::{Context, bail};
use clap::Args as ClapArgs;
use xshell::{Shell, cmd};

use crate::interrupt;
use crate::pgcluster::{PgBinaries, PgCluster};
use crate::repo::Repo;
use crate::verdict::Verdict;

/// Options of `cargo xtask test`.
#[derive(Debug, ClapArgs)]
pub struct Args {
    /// Skip the PostgreSQL cluster and its tests (never allowed when `CI` is set).
    #[arg(long)]
    pub no_postgres: bool,
    /// Extra arguments for `cargo test` (for example a test name filter), after `--`.
    #[arg(last = true)]
    pub cargo_args: Vec<String>,
}

/// Starts the cluster, runs `cargo test --workspace` with `TEST_DATABASE_URL`, stops it.
pub fn run(args: Args) -> anyhow::Result<Verdict> {
    let repo = Repo::discover()?;
    let in_ci = std::env::var_os("CI").is_some_and(|v| !v.is_empty() && v != "false");
    let cluster = if args.no_postgres {
        if in_ci {
            bail!(
                "--no-postgres is not allowed in CI: the PostgreSQL tests guard the booking constraint"
            );
        }
        warn_skipping("--no-postgres was given");
        None
    } else {
        match PgBinaries::find() {
            Some(binaries) => {
                eprintln!(
                    "Starting a throwaway PostgreSQL cluster ({})",
                    binaries.dir().display()
                );
                let cluster = PgCluster::start(&binaries)?;
                eprintln!("PostgreSQL is up at {}", cluster.url());
                Some(cluster)
            }
            None if in_ci => bail!(
                "PostgreSQL server binaries not found (looked in $PG_BIN_DIR, /usr/lib/postgresql/*/bin \
                 and PATH) and CI is set: install them (apt-get install postgresql)"
            ),
            None => {
                warn_skipping(
                    "no PostgreSQL server binaries were found (apt-get install postgresql)",
                );
                None
            }
        }
    };

    let sh = Shell::new()?;
    sh.change_dir(repo.root());
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".to_string());
    let extra = &args.cargo_args;
    let mut command = cmd!(sh, "{cargo} test --workspace {extra...}");
    if let Some(cluster) = &cluster {
        command = command.env("TEST_DATABASE_URL", cluster.url());
    } else {
        command = command.env_remove("TEST_DATABASE_URL");
    }
    // Converted to a std Command so that the test output streams through and the exit status
    // is ours to judge.
    let status = run_to_completion(std::process::Command::from(command));
    drop(cluster);
    let status = status.context("running `cargo test --workspace`")?;
    if status.success() {
        Ok(Verdict::Pass)
    } else {
        eprintln!("cargo test --workspace failed ({status})");
        Ok(Verdict::Fail)
    }
}

/// Runs the tests with inherited output; an interrupt stops them before the cluster goes.
fn run_to_completion(
    mut command: std::process::Command,
) -> std::io::Result<std::process::ExitStatus> {
    let mut child = command.spawn()?;
    let pid = child.id();
    let _guard = interrupt::on_interrupt(move || interrupt::terminate(pid));
    child.wait()
}

fn warn_skipping(reason: &str) {
    eprintln!("==============================================================");
    eprintln!("WARNING: {reason}.");
    eprintln!("The PostgreSQL tests (the exclusion constraint, the race on PostgreSQL)");
    eprintln!("will NOT run. Everything else runs.");
    eprintln!("==============================================================");
}
