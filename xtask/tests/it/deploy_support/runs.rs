//! Running `deploy` and `rollback` in-process against the fixture: their command lines
//! parsed as the CLI parses them, and what an interrupted deploy must have recorded.

use super::{FakeGates, Fixture};
use crate::support::capture;
use xtask::verdict::Verdict;

/// The record of a deploy interrupted during `flyctl deploy` is a failure whose problems say
/// so and give the way back to `image`; returns that rollback command.
pub fn assert_interrupted_with_the_way_back(
    record: &xtask::record::RunRecord<xtask::deploy::DeployResult>,
    image: &str,
) -> String {
    assert_eq!(record.verdict, Verdict::Fail);
    let rollback = format!("cargo xtask rollback --env staging --to {image}");
    assert!(
        record
            .result
            .problems
            .iter()
            .any(|p| p.contains("interrupted while `flyctl deploy`") && p.contains(&rollback)),
        "{:?}",
        record.result.problems
    );
    rollback
}

/// The options of `cargo xtask deploy` given `words` (the task's name first).
pub fn deploy_options(words: &[&str]) -> xtask::deploy::Options {
    let xtask::cli::Command::Deploy(args) = parsed(words) else {
        panic!("{words:?} is not a deploy");
    };
    args.into()
}

/// The options of `cargo xtask rollback` given `words` (the task's name first).
pub fn rollback_options(words: &[&str]) -> xtask::rollback::Options {
    let xtask::cli::Command::Rollback(args) = parsed(words) else {
        panic!("{words:?} is not a rollback");
    };
    args.into()
}

/// The options of `cargo xtask deploy --env staging` and `extra`, waiting 5 s unless `extra`
/// says how long.
pub fn deploy_args(extra: &[&str]) -> xtask::deploy::Options {
    let mut words = vec!["deploy", "--env", "staging"];
    if !extra.contains(&"--wait-timeout") {
        words.extend(["--wait-timeout", "5s"]);
    }
    words.extend_from_slice(extra);
    deploy_options(&words)
}

/// The options of `cargo xtask rollback --env staging --wait-timeout 5s` and `extra`.
pub fn rollback_args(extra: &[&str]) -> xtask::rollback::Options {
    let words = ["rollback", "--env", "staging", "--wait-timeout", "5s"];
    rollback_options(&[&words[..], extra].concat())
}

/// Deploys `fixture` to staging ([`deploy_args`] of `extra`) through its fake flyctl.
pub fn deploy_staging(
    fixture: &Fixture,
    gates: &FakeGates,
    extra: &[&str],
) -> (Verdict, xtask::deploy::DeployResult, String) {
    let args = deploy_args(extra);
    let (outcome, out) = capture(|out| {
        xtask::deploy::run_with(&fixture.repo(), &args, fixture.flyctl(false), gates, out)
    });
    let (verdict, result) = outcome.unwrap();
    (verdict, result, out)
}

/// Rolls staging back ([`rollback_args`] of `extra`) through `fixture`'s fake flyctl.
pub fn rollback_staging(
    fixture: &Fixture,
    gates: &FakeGates,
    extra: &[&str],
) -> (Verdict, xtask::rollback::RollbackResult, String) {
    let args = rollback_args(extra);
    let flyctl = fixture.flyctl(false);
    let (outcome, out) =
        capture(|out| xtask::rollback::run_with(&fixture.repo(), &args, flyctl, gates, out));
    let (verdict, result) = outcome.unwrap();
    (verdict, result, out)
}

fn parsed(words: &[&str]) -> xtask::cli::Command {
    xtask::cli::Cli::try_parse_words(words).unwrap().command
}
