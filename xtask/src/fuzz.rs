//! `cargo xtask fuzz`: contract fuzzing with Schemathesis, an independent tool that reads the
//! service's OpenAPI document, generates valid and invalid requests for every operation and
//! checks each answer against the document (status, content type, headers, body schema) and
//! for server errors.
//!
//! Without `--url` it starts a local service the way `rehearse` does (SQLite, demo data, a
//! random JWT secret) and stops it afterwards.

use std::path::PathBuf;
use std::time::Duration;

use anyhow::{Context, bail};
use rand::Rng;
use rand::distr::Alphanumeric;
use serde::{Deserialize, Serialize};
use xshell::{Shell, cmd};

use crate::check::CheckResult;
use crate::config::normalize_url;
use crate::local_service::{LocalService, ServiceSettings, build_service};
use crate::output::Output;
use crate::overlap::admin::{AdminToken, sign_for};
use crate::record::{ADHOC_ENVIRONMENT, RunClock};
use crate::repo::Repo;
use crate::verdict::Verdict;

/// Where the service serves its document.
pub const OPENAPI_PATH: &str = cabanas_contract::routes::OPENAPI;

/// The environment variable naming the Schemathesis executable.
pub const SCHEMATHESIS_ENV: &str = "SCHEMATHESIS";

/// Checks run on every answer. Left out: `positive_data_acceptance` (a schema-valid booking
/// can still break a business rule, e.g. dates in the past, and must be refused with 422),
/// `use_after_free` and `ensure_resource_availability` (they need links between operations,
/// which the document does not declare), and `ignored_auth` (fuzzing runs without a token).
pub const CHECKS: &str = "not_a_server_error,status_code_conformance,content_type_conformance,\
response_headers_conformance,response_schema_conformance,negative_data_rejection,\
missing_required_header,unsupported_method";

/// Examples per operation without `--max-examples`.
pub const DEFAULT_MAX_EXAMPLES: u32 = 20;
/// The seed without `--seed`, so two runs send the same requests.
pub const DEFAULT_SEED: u64 = 1;

/// Options of `cargo xtask fuzz`.
#[derive(Debug)]
pub struct Options {
    /// Fuzz the service at this base URL instead of starting a local one.
    pub url: Option<String>,
    /// Generated requests per operation and phase.
    pub max_examples: u32,
    /// Seed for the generated data, to reproduce a run.
    pub seed: u64,
    /// Use a `cabanas` binary already built instead of building it (local service only).
    pub service_bin: Option<PathBuf>,
}

/// The saved result of a `fuzz` run: one check per operation Schemathesis exercised.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FuzzResult {
    /// The base URL fuzzed.
    pub url: String,
    /// Whether fuzz started the service itself (SQLite, demo data).
    pub local_service: bool,
    /// The seed of the generated data: rerun with `--seed` to reproduce.
    pub seed: u64,
    /// Generated requests per operation and phase.
    pub max_examples: u32,
    /// The checks Schemathesis ran on every answer.
    pub schemathesis_checks: Vec<String>,
    /// One per operation, from Schemathesis' JUnit report (`<METHOD> <path>`).
    pub checks: Vec<CheckResult>,
    /// The JUnit report, relative to the repository when under it.
    pub junit: String,
}

/// The environment a fuzz record is saved under: `local` for the service it started,
/// `adhoc` for `--url`.
const LOCAL_ENVIRONMENT: &str = "local";

/// Runs Schemathesis; exit 1 on any failure it reports, 2 when it cannot run.
pub fn run(args: Options, output: Output) -> anyhow::Result<Verdict> {
    let repo = Repo::discover()?;
    let clock = RunClock::start("fuzz");
    let schemathesis = find_schemathesis()?;
    let workdir = repo.path("target/xtask/fuzz");
    std::fs::create_dir_all(&workdir).with_context(|| format!("creating {}", workdir.display()))?;

    // The local service's admin token reaches Schemathesis through its environment and a
    // config file placeholder, never a command line: with it, the admin operations are
    // exercised past 401 and the rate limit does not cut the run short.
    let (base, token, _service) = match &args.url {
        Some(url) => (normalize_url(url)?, None, None),
        None => {
            let binary = match args.service_bin.clone() {
                Some(path) if path.is_file() => path,
                Some(path) => bail!("--service-bin {} is not a file", path.display()),
                None => build_service(&repo)?,
            };
            let db = workdir.join("cabanas.db");
            let _ = std::fs::remove_file(&db);
            let jwt_secret: String = rand::rng()
                .sample_iter(Alphanumeric)
                .take(48)
                .map(char::from)
                .collect();
            let settings = ServiceSettings {
                binary,
                database_url: format!("sqlite:{}?mode=rwc", db.display()),
                jwt_secret: jwt_secret.clone(),
                admin_email: FUZZ_ADMIN.into(),
                log_file: workdir.join("service.log"),
            };
            let service = LocalService::start(&settings, Duration::from_secs(60))?;
            eprintln!("fuzz: local service at {}", service.url());
            let token = sign_for(&jwt_secret, FUZZ_ADMIN, chrono::Utc::now(), 3600)?;
            (service.url().to_string(), Some(token), Some(service))
        }
    };
    let (verdict, mut result) =
        run_schemathesis(&schemathesis, &base, token.as_ref(), &args, &workdir)?;
    result.junit = workdir
        .join("junit.xml")
        .strip_prefix(repo.root())
        .map_or_else(|_| result.junit.clone(), |p| p.display().to_string());
    let environment = if args.url.is_some() {
        ADHOC_ENVIRONMENT
    } else {
        LOCAL_ENVIRONMENT
    };
    let failed: Vec<String> = result
        .checks
        .iter()
        .filter(|c| c.verdict == Verdict::Fail)
        .map(|c| c.id.clone())
        .collect();
    let summary = crate::output::facts_markdown(
        &format!("fuzz ({})", result.url),
        verdict,
        &[
            ("operations", result.checks.len().to_string()),
            ("seed", result.seed.to_string()),
            ("JUnit", result.junit.clone()),
        ],
        &failed,
    );
    let record = clock.finish(&repo, environment, verdict, result);
    let ending = crate::finish::Ending::streamed(&summary, true, output.json());
    let mut human = output.human_writer();
    crate::finish::finish(&repo, &record, ending, &mut human)?;
    Ok(verdict)
}

/// The admin the local service allows during fuzzing.
const FUZZ_ADMIN: &str = "fuzz@cabanas.example";

/// The environment variable the config file's placeholder reads the token from.
const TOKEN_ENV: &str = "CABANAS_FUZZ_TOKEN";

/// Runs Schemathesis against `base`; the verdict comes from its exit status, the checks from
/// its JUnit report (a failure Schemathesis reports without a failing operation in the report
/// is one failed `schemathesis` check, so the two never disagree).
pub fn run_schemathesis(
    schemathesis: &std::path::Path,
    base: &str,
    token: Option<&AdminToken>,
    args: &Options,
    workdir: &std::path::Path,
) -> anyhow::Result<(Verdict, FuzzResult)> {
    let sh = Shell::new()?;
    let config = workdir.join("schemathesis.toml");
    let mut config_text = match token {
        Some(_) => format!("headers = {{ Authorization = \"Bearer ${{{TOKEN_ENV}}}\" }}\n"),
        None => String::new(),
    };
    // Its crash cache goes under target/, not into whatever directory it was started from.
    let cache = workdir.join("cache");
    config_text.push_str(&format!(
        "[cache]\ndirectory = {:?}\n",
        cache.display().to_string()
    ));
    std::fs::write(&config, config_text)
        .with_context(|| format!("writing {}", config.display()))?;
    let document = format!("{base}{OPENAPI_PATH}");
    let max_examples = args.max_examples.max(1).to_string();
    let seed = args.seed.to_string();
    let junit = workdir.join("junit.xml");
    // A report left by an earlier run must not stand in for this one's.
    let _ = std::fs::remove_file(&junit);
    eprintln!("fuzz: {} run {document}", schemathesis.display());
    let status = cmd!(
        sh,
        "{schemathesis} --config-file {config} run {document} --url {base} --checks {CHECKS} --max-examples {max_examples} --seed {seed} --phases examples,coverage,fuzzing --workers 2 --request-timeout 10 --generation-database none --no-color --report junit --report-junit-path {junit}"
    )
    .env("SCHEMATHESIS_HOOKS", "")
    .env(TOKEN_ENV, token.map_or("", AdminToken::expose))
    .ignore_status()
    .output()
    .with_context(|| format!("running {}", schemathesis.display()))?;
    eprint!("{}", String::from_utf8_lossy(&status.stdout));
    eprint!("{}", String::from_utf8_lossy(&status.stderr));
    let verdict = match status.status.code() {
        Some(0) => Verdict::Pass,
        Some(1) => Verdict::Fail,
        other => bail!(
            "Schemathesis could not run against {document} (exit {}): see its output above",
            other.map_or_else(|| "signal".to_string(), |c| c.to_string())
        ),
    };
    let mut checks = match std::fs::read_to_string(&junit) {
        Ok(xml) => operation_checks(&xml, args.seed)
            .with_context(|| format!("reading Schemathesis' JUnit report {}", junit.display()))?,
        Err(_) => Vec::new(),
    };
    if verdict == Verdict::Fail && !checks.iter().any(|c| c.verdict == Verdict::Fail) {
        checks.push(CheckResult::observed(
            "schemathesis",
            "Schemathesis finds no failure",
            Verdict::Fail,
            "Schemathesis exited 1 without a failing operation in its report: see its output",
            Some(reproduce(args.seed)),
        ));
    }
    if verdict == Verdict::Pass {
        eprintln!("fuzz: PASS: no server error or contract violation");
    } else {
        eprintln!(
            "fuzz: FAIL: Schemathesis found failures (above; JUnit report {})",
            junit.display()
        );
    }
    let result = FuzzResult {
        url: base.to_string(),
        local_service: args.url.is_none(),
        seed: args.seed,
        max_examples: args.max_examples.max(1),
        schemathesis_checks: CHECKS.split(',').map(str::to_string).collect(),
        checks,
        junit: junit.display().to_string(),
    };
    Ok((verdict, result))
}

fn reproduce(seed: u64) -> String {
    format!(
        "fix the handler or its #[utoipa::path]; reproduce with `cargo xtask fuzz --seed {seed}`"
    )
}

/// The most of one failure's text kept in the record (the JUnit report has all of it).
const FAILURE_TEXT_LIMIT: usize = 2_000;

/// One check per `<testcase>` of a Schemathesis JUnit report: a `<failure>` or `<error>`
/// child fails it, `<skipped>` skips it.
pub fn operation_checks(xml: &str, seed: u64) -> anyhow::Result<Vec<CheckResult>> {
    let doc = roxmltree::Document::parse(xml).context("not well-formed XML")?;
    let verifies = "answers to generated requests are never 5xx and match the OpenAPI document";
    let checks = doc
        .descendants()
        .filter(|n| n.has_tag_name("testcase"))
        .map(|case| {
            let name = case.attribute("name").unwrap_or("(unnamed operation)");
            let failure = case
                .children()
                .find(|c| c.has_tag_name("failure") || c.has_tag_name("error"));
            let skipped = case.children().any(|c| c.has_tag_name("skipped"));
            match failure {
                Some(failure) => {
                    let text = failure
                        .text()
                        .filter(|t| !t.trim().is_empty())
                        .or_else(|| failure.attribute("message"))
                        .unwrap_or("failed")
                        .trim();
                    let text = match text.char_indices().nth(FAILURE_TEXT_LIMIT) {
                        Some((cut, _)) => {
                            format!("{}... (the rest in the JUnit report)", &text[..cut])
                        }
                        None => text.to_string(),
                    };
                    CheckResult::observed(
                        name,
                        verifies,
                        Verdict::Fail,
                        text,
                        Some(reproduce(seed)),
                    )
                }
                None if skipped => CheckResult::observed(
                    name,
                    verifies,
                    Verdict::Skip,
                    "skipped by Schemathesis",
                    None,
                ),
                None => CheckResult::observed(name, verifies, Verdict::Pass, "no failure", None),
            }
        })
        .collect();
    Ok(checks)
}

/// `$SCHEMATHESIS`, else `schemathesis` on `PATH`; an error (exit 2) says how to install it.
pub fn find_schemathesis() -> anyhow::Result<PathBuf> {
    let install = "install it in a virtual environment: `python3 -m venv ~/.cache/cabanas/st && \
                   ~/.cache/cabanas/st/bin/pip install schemathesis`, then set \
                   SCHEMATHESIS=~/.cache/cabanas/st/bin/schemathesis (or put it on PATH)";
    if let Some(path) = std::env::var_os(SCHEMATHESIS_ENV).filter(|p| !p.is_empty()) {
        let path = PathBuf::from(path);
        if path.is_file() {
            return Ok(path);
        }
        bail!(
            "{SCHEMATHESIS_ENV} is set to {}, which is not a file: {install}",
            path.display()
        );
    }
    let found = std::env::var_os("PATH").and_then(|paths| {
        std::env::split_paths(&paths)
            .map(|dir| dir.join("schemathesis"))
            .find(|candidate| candidate.is_file())
    });
    found.with_context(|| format!("Schemathesis is not installed: {install}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_operation_of_the_report_is_a_check() {
        let xml = r#"<?xml version="1.0" encoding="utf-8"?>
<testsuites><testsuite name="schemathesis" tests="3">
  <testcase name="GET /api/v1/healthz" time="0.2" />
  <testcase name="GET /count" time="0.1"><failure type="failure" message="1. Response violates schema">1. Response violates schema

    'many' is not of type 'integer'</failure></testcase>
  <testcase name="GET /skipped" time="0"><skipped message="no examples" /></testcase>
</testsuite></testsuites>"#;
        let checks = operation_checks(xml, 7).unwrap();
        let verdicts: Vec<(&str, Verdict)> =
            checks.iter().map(|c| (c.id.as_str(), c.verdict)).collect();
        assert_eq!(
            verdicts,
            [
                ("GET /api/v1/healthz", Verdict::Pass),
                ("GET /count", Verdict::Fail),
                ("GET /skipped", Verdict::Skip),
            ]
        );
        assert!(
            checks[1]
                .summary()
                .contains("'many' is not of type 'integer'")
        );
        assert!(checks[1].fix.as_deref().unwrap().contains("--seed 7"));
    }

    #[test]
    fn a_report_that_is_not_xml_is_an_error() {
        assert!(operation_checks("<testsuites>", 1).is_err());
    }
}
