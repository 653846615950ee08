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
use clap::Args as ClapArgs;
use rand::Rng;
use rand::distr::Alphanumeric;
use xshell::{Shell, cmd};

use crate::config::normalize_url;
use crate::local_service::{LocalService, ServiceSettings, build_service};
use crate::overlap::admin::{AdminToken, sign_for};
use crate::repo::Repo;
use crate::verdict::Verdict;

/// Where the service serves its document.
pub const OPENAPI_PATH: &str = "/api/v1/openapi.json";

/// The environment variable naming the Schemathesis executable.
pub const SCHEMATHESIS_ENV: &str = "SCHEMATHESIS";

/// Checks run on every answer. Left out: `positive_data_acceptance` (a schema-valid booking
/// can still break a business rule, e.g. dates in the past, and must be refused with 422),
/// `use_after_free` and `ensure_resource_availability` (they need links between operations,
/// which the document does not declare), and `ignored_auth` (fuzzing runs without a token).
pub const CHECKS: &str = "not_a_server_error,status_code_conformance,content_type_conformance,\
response_headers_conformance,response_schema_conformance,negative_data_rejection,\
missing_required_header,unsupported_method";

/// Flags of `cargo xtask fuzz`.
#[derive(Debug, ClapArgs)]
pub struct Args {
    /// Fuzz the service at this base URL instead of starting a local one.
    #[arg(long, value_name = "URL")]
    pub url: Option<String>,
    /// Generated requests per operation and phase.
    #[arg(long, default_value_t = 20, value_name = "N")]
    pub max_examples: u32,
    /// Seed for the generated data, to reproduce a run.
    #[arg(long, default_value_t = 1, value_name = "SEED")]
    pub seed: u64,
    /// Use a `cabanas` binary already built instead of building it (local service only).
    #[arg(long, value_name = "PATH")]
    pub service_bin: Option<PathBuf>,
}

/// Runs Schemathesis; exit 1 on any failure it reports, 2 when it cannot run.
pub fn run(args: Args) -> anyhow::Result<Verdict> {
    let repo = Repo::discover()?;
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
    run_schemathesis(&schemathesis, &base, token.as_ref(), &args, &workdir)
}

/// The admin the local service allows during fuzzing.
const FUZZ_ADMIN: &str = "fuzz@cabanas.example";

/// The environment variable the config file's placeholder reads the token from.
const TOKEN_ENV: &str = "CABANAS_FUZZ_TOKEN";

/// Runs Schemathesis against `base` and maps its exit status to a verdict.
pub fn run_schemathesis(
    schemathesis: &std::path::Path,
    base: &str,
    token: Option<&AdminToken>,
    args: &Args,
    workdir: &std::path::Path,
) -> anyhow::Result<Verdict> {
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
    match status.status.code() {
        Some(0) => {
            eprintln!("fuzz: PASS: no server error or contract violation");
            Ok(Verdict::Pass)
        }
        Some(1) => {
            eprintln!(
                "fuzz: FAIL: Schemathesis found failures (above; JUnit report {})",
                junit.display()
            );
            Ok(Verdict::Fail)
        }
        other => bail!(
            "Schemathesis could not run against {document} (exit {}): see its output above",
            other.map_or_else(|| "signal".to_string(), |c| c.to_string())
        ),
    }
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
