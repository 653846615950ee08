//! `cargo xtask test`: the workspace tests, with the PostgreSQL tests run against a throwaway
//! cluster.

use anyhow::{Context, bail};
use xshell::Shell;

use crate::interrupt;
use crate::pgcluster::{PgBinaries, PgCluster};
use crate::repo::Repo;
use crate::verdict::Verdict;

/// Options of `cargo xtask test`.
#[derive(Debug)]
pub struct Options {
    /// Skip the PostgreSQL cluster and its tests (never allowed when `CI` is set).
    pub no_postgres: bool,
    /// Extra arguments for `cargo test` (for example a test name filter), after `--`.
    pub cargo_args: Vec<String>,
}

/// Starts the cluster, runs `cargo test --workspace` with `TEST_DATABASE_URL`, stops it.
pub fn run(args: Options) -> anyhow::Result<Verdict> {
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
    let mut command = crate::repo::nested_cargo(&sh, &repo)
        .args(["test", "--workspace"])
        .args(&args.cargo_args);
    if let Some(cluster) = &cluster {
        command = command.env("TEST_DATABASE_URL", cluster.url());
    } else {
        command = command.env_remove("TEST_DATABASE_URL");
    }
    // Converted to a std Command so that the test output streams through and the exit status
    // is ours to judge.
    let outcome = run_to_completion(std::process::Command::from(command));
    drop(cluster);
    let (status, tally) = outcome.context("running `cargo test --workspace`")?;
    // One closing line for the whole workspace: the last binary's own line (often a doc-test
    // run of zero tests) says nothing about the run.
    crate::output::say(format_args!(
        "xtask: {} passed, {} failed, {} skipped",
        tally.passed, tally.failed, tally.ignored
    ));
    if status.success() && tally.failed == 0 {
        Ok(Verdict::Pass)
    } else {
        eprintln!("cargo test --workspace failed ({status})");
        Ok(Verdict::Fail)
    }
}

/// Test counts summed over every `test result:` line of a cargo test run.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Tally {
    /// Tests that passed.
    pub passed: u64,
    /// Tests that failed.
    pub failed: u64,
    /// Tests marked `#[ignore]`.
    pub ignored: u64,
}

impl Tally {
    /// Adds the counts of a libtest summary line such as
    /// `test result: ok. 12 passed; 0 failed; 1 ignored; 0 measured; 0 filtered out; ...`.
    pub fn add_line(&mut self, line: &str) {
        let Some(rest) = line.trim().strip_prefix("test result: ") else {
            return;
        };
        for part in rest.split(';') {
            let mut words = part.split_whitespace().rev();
            let (Some(label), Some(count)) = (words.next(), words.next()) else {
                continue;
            };
            let Ok(count) = count.parse::<u64>() else {
                continue;
            };
            match label {
                "passed" => self.passed += count,
                "failed" => self.failed += count,
                "ignored" => self.ignored += count,
                _ => {}
            }
        }
    }
}

/// Runs the tests, echoing their output as it comes and tallying the summary lines; an
/// interrupt stops them before the cluster goes.
fn run_to_completion(
    mut command: std::process::Command,
) -> std::io::Result<(std::process::ExitStatus, Tally)> {
    use std::io::{BufRead, Write};
    use std::os::unix::process::CommandExt;
    // Its own process group: cargo does not pass signals on to the test binaries it runs, so
    // an interrupt stops the whole group, or a test would outlive the cluster it uses.
    let mut child = command
        .stdout(std::process::Stdio::piped())
        .process_group(0)
        .spawn()?;
    let pid = child.id();
    let _guard = interrupt::on_interrupt(move || interrupt::terminate_group(pid));
    let mut tally = Tally::default();
    if let Some(stdout) = child.stdout.take() {
        let mut echo = std::io::stdout();
        for line in std::io::BufReader::new(stdout).lines() {
            let line = line?;
            tally.add_line(&line);
            let _ = writeln!(echo, "{line}");
        }
    }
    Ok((child.wait()?, tally))
}

fn warn_skipping(reason: &str) {
    eprintln!("==============================================================");
    eprintln!("WARNING: {reason}.");
    eprintln!("The PostgreSQL tests (the exclusion constraint, the race on PostgreSQL)");
    eprintln!("will NOT run. Everything else runs.");
    eprintln!("==============================================================");
}

#[cfg(test)]
mod tests {
    use super::Tally;

    #[test]
    fn summary_lines_are_summed() {
        let mut tally = Tally::default();
        tally.add_line("test result: ok. 12 passed; 0 failed; 1 ignored; 0 measured; 0 filtered out; finished in 0.01s");
        tally.add_line(
            "test result: FAILED. 3 passed; 2 failed; 0 ignored; 0 measured; 5 filtered out",
        );
        tally.add_line("test passing_test ... ok");
        assert_eq!(
            tally,
            Tally {
                passed: 15,
                failed: 2,
                ignored: 1
            }
        );
    }
}
