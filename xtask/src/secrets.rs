//! `cargo xtask secrets`: stages an environment's secrets on its Fly app. It checks the env
//! file against its template, sends the template's keys to `flyctl secrets import --stage` on
//! stdin (so they apply at the next deploy, without a restart now), then confirms with
//! `flyctl secrets list --json` that every key arrived. Only names and whether each arrived
//! are printed and recorded: Fly's per-value digest is left out, because a short unkeyed
//! digest of a low-entropy value (an email list, a port, a short token) is reversed by
//! hashing guesses. What changed is told by the salted fingerprint of the whole set
//! ([`sent`]), which includes a 32-character random secret and so cannot be guessed.

pub mod envfile;
pub mod fly_import;
pub mod sent;

use std::collections::BTreeMap;
use std::io::Write;

use anyhow::Context;
use serde::{Deserialize, Serialize};

use crate::config::DeployConfig;
use crate::flyctl::{Flyctl, flyctl_failure};
use crate::output::Output;
use crate::record::RunClock;
use crate::repo::Repo;
use crate::verdict::Verdict;

pub use fly_import::{decode_fly_import, encode_for_fly_import};

/// Options of `cargo xtask secrets`.
#[derive(Debug, Clone)]
pub struct Options {
    /// The environment from ops/deploy.toml whose env file is sent (e.g. staging).
    pub env: String,
    /// Print the flyctl commands (secrets as names only) without running any.
    pub dry_run: bool,
}

impl Options {
    /// The options of `cargo xtask secrets --env ENV`.
    pub fn for_env(env: &str) -> Options {
        Options {
            env: env.to_string(),
            dry_run: false,
        }
    }
}

/// The saved result of a `secrets` run: names and whether each arrived, never a value or a
/// per-value digest.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SecretsResult {
    /// The Fly app the secrets were staged on.
    pub app: String,
    /// The env file read, relative to the repository root.
    pub env_file: String,
    /// The keys sent, with what `flyctl secrets list` reported for each.
    pub keys: Vec<SecretState>,
    /// Keys of the env file that are not in the template, so were not sent.
    pub not_in_template: Vec<String>,
    /// Optional template keys left empty, so not sent.
    pub empty_not_sent: Vec<String>,
    /// Why the run failed, if it did (no secret value in it).
    pub problems: Vec<String>,
    /// A salted digest of every key and value sent (never a value), so that a later change
    /// to the env file shows as stale; absent when nothing was sent.
    #[serde(default)]
    pub sent: Option<sent::SentFingerprint>,
}

/// One sent key as Fly reports it after the import.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SecretState {
    /// The key.
    pub name: String,
    /// Whether `flyctl secrets list` shows it after the import. (Fly's digest of the value is
    /// not kept: see the module's documentation. Records written before say `digest`; it is
    /// ignored when read.)
    pub present: bool,
    /// Fly's status (`Staged`, `Deployed`) in flyctl versions that report one.
    pub status: Option<String>,
}

/// Entry point of `cargo xtask secrets`.
pub fn run(args: Options, output: Output) -> anyhow::Result<Verdict> {
    let repo = Repo::discover()?;
    let flyctl = Flyctl::from_env(args.dry_run)?;
    let mut human = output.human_writer();
    let (verdict, _) = run_printing(&repo, &args, flyctl, output.json(), &mut human)?;
    Ok(verdict)
}

/// Runs the task on `repo` with the given flyctl, writing human text to `out`. Saves the
/// record unless it is a dry run. Returns the verdict and the result.
pub fn run_with(
    repo: &Repo,
    args: &Options,
    flyctl: Flyctl,
    out: &mut dyn Write,
) -> anyhow::Result<(Verdict, SecretsResult)> {
    run_printing(repo, args, flyctl, false, out)
}

/// [`run_with`], printing the record as JSON on stdout when `json` (`--json`).
fn run_printing(
    repo: &Repo,
    args: &Options,
    flyctl: Flyctl,
    json: bool,
    out: &mut dyn Write,
) -> anyhow::Result<(Verdict, SecretsResult)> {
    let clock = RunClock::start("secrets");
    let config = DeployConfig::load(repo)?;
    let environment = config.environment(&args.env)?.clone();
    let mut flyctl = flyctl.in_dir(repo.root()).with_dry_run(args.dry_run);
    let mut result = SecretsResult {
        app: environment.app.clone(),
        env_file: environment.env_file.display().to_string(),
        keys: Vec::new(),
        not_in_template: Vec::new(),
        empty_not_sent: Vec::new(),
        problems: Vec::new(),
        sent: None,
    };

    // predeploy's env check first: it knows every rule of the template.
    let mut env_problems = Vec::new();
    for (verdict, finding) in envfile::predeploy_env_findings(repo, &args.env)? {
        match verdict {
            Verdict::Fail => env_problems.push(finding),
            _ => writeln!(out, "warning: {finding}")?,
        }
    }
    let plan = envfile::plan_import(repo, &environment)?;
    result.not_in_template = plan.not_in_template.clone();
    result.empty_not_sent = plan.empty_not_sent.clone();
    if !plan.not_in_template.is_empty() {
        writeln!(
            out,
            "warning: {} has keys the template does not list; not sent: {}",
            result.env_file,
            plan.not_in_template.join(", ")
        )?;
    }
    if !plan.empty_not_sent.is_empty() {
        writeln!(
            out,
            "note: optional keys left empty, not sent: {}",
            plan.empty_not_sent.join(", ")
        )?;
    }
    result.problems = env_problems;
    for problem in &plan.problems {
        if !result.problems.contains(problem) {
            result.problems.push(problem.clone());
        }
    }

    if result.problems.is_empty() {
        flyctl.hide_values(plan.entries.iter().map(|(_, v)| v.as_str()));
        let pairs = plan.entries.iter().map(|(k, v)| (k.as_str(), v.as_str()));
        match encode_for_fly_import(pairs) {
            Err(error) => result.problems.push(format!("{error:#}")),
            Ok(payload) => {
                let outcome =
                    import_and_confirm(&flyctl, &environment.app, payload, plan.keys(), out);
                match outcome {
                    Ok(keys) => {
                        result.keys = keys;
                        result.sent = Some(sent::SentFingerprint::of(&plan.entries));
                    }
                    Err(error) => match flyctl_failure(&error) {
                        Some(failure) => result.problems.push(failure.to_string()),
                        None => return Err(error),
                    },
                }
                let missing: Vec<&str> = result
                    .keys
                    .iter()
                    .filter(|k| !k.present && !flyctl.dry_run())
                    .map(|k| k.name.as_str())
                    .collect();
                if !missing.is_empty() {
                    result.problems.push(format!(
                        "`flyctl secrets list` does not show {} after the import; check `flyctl secrets list --app {}`",
                        missing.join(", "),
                        environment.app
                    ));
                }
            }
        }
    }

    let verdict = if result.problems.is_empty() {
        Verdict::Pass
    } else {
        Verdict::Fail
    };
    print_summary(&result, verdict, flyctl.dry_run(), out)?;
    {
        // Names and whether each arrived only, like everything this task prints.
        let facts: Vec<(&str, String)> = result
            .keys
            .iter()
            .map(|key| {
                let state = match (key.present, &key.status) {
                    (true, Some(status)) => format!("present ({status})"),
                    (true, None) => "present".to_string(),
                    (false, _) => "MISSING".to_string(),
                };
                (key.name.as_str(), state)
            })
            .collect();
        let summary = crate::output::facts_markdown(
            &format!("secrets {} ({})", args.env, result.app),
            verdict,
            &facts,
            &result.problems,
        );
        let record = clock.finish(repo, &args.env, verdict, result.clone());
        let ending = crate::finish::Ending::streamed(&summary, !flyctl.dry_run(), json);
        crate::finish::finish(repo, &record, ending, out)?;
    }
    Ok((verdict, result))
}

/// Stages the payload, then reads back what Fly has for each key (all absent in a dry run).
fn import_and_confirm(
    flyctl: &Flyctl,
    app: &str,
    payload: String,
    keys: Vec<String>,
    out: &mut dyn Write,
) -> anyhow::Result<Vec<SecretState>> {
    flyctl.secrets_import(app, payload, keys.clone(), out)?;
    let listed = flyctl.secrets_list(app, out)?.unwrap_or_default();
    let by_name: BTreeMap<&str, _> = listed.iter().map(|s| (s.name.as_str(), s)).collect();
    Ok(keys
        .into_iter()
        .map(|name| {
            let seen = by_name.get(name.as_str());
            SecretState {
                present: seen.is_some(),
                status: seen.and_then(|s| s.status.clone()),
                name,
            }
        })
        .collect())
}

fn print_summary(
    result: &SecretsResult,
    verdict: Verdict,
    dry_run: bool,
    out: &mut dyn Write,
) -> anyhow::Result<()> {
    if !result.keys.is_empty() && !dry_run {
        writeln!(out, "\n{:<32} {:<10} status", "secret", "on Fly")?;
        for key in &result.keys {
            let arrived = if key.present { "present" } else { "MISSING" };
            writeln!(
                out,
                "{:<32} {:<10} {}",
                key.name,
                arrived,
                key.status.as_deref().unwrap_or("-")
            )?;
        }
    }
    for problem in &result.problems {
        writeln!(out, "problem: {problem}")?;
    }
    if dry_run {
        writeln!(out, "dry run: nothing was sent and nothing recorded")?;
    } else {
        writeln!(out, "secrets for {}: {verdict}", result.app).context("writing the summary")?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_record_written_with_fly_digests_still_reads_and_drops_them() {
        let old = r#"{"name":"JWT_SECRET","present":true,"digest":"3f2a9c0d1e2b4a5c","status":"Deployed"}"#;
        let state: SecretState = serde_json::from_str(old).unwrap();
        assert!(state.present);
        assert!(!serde_json::to_string(&state).unwrap().contains("digest"));
    }
}
