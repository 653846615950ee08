//! `cargo xtask smoke`: checks that a deployed service is healthy, then benchmarks it against
//! the thresholds of `ops/deploy.toml`.
//!
//! Phase 1 checks `healthz`, `readyz`, `/metrics` and a read path, each a verdict with its
//! evidence (after `--wait`, which polls readiness first). Phase 2 loads each configured
//! endpoint (closed model: `--concurrency` connections; open model: `--rate` requests per
//! second with latency from the intended send time) and holds its p95 latency and error rate
//! against the limits.
//!
//! Measurement, statistics and rendering are separate: [`measure`] produces a [`SmokeReport`]
//! (plain data, saved as the run record's `result`), [`render`] turns one into text. The deploy
//! and rollback tasks call [`measure`] after a deploy; `report` renders saved records.

pub mod checks;
pub mod contract;
mod fetch;
pub mod load;
pub mod plan;
pub mod render;
pub mod report;
pub mod stats;

use std::path::Path;
use std::time::Duration;

use anyhow::{Context, bail};

use crate::config::{SmokeSettings, Target, Thresholds};
use crate::output::Output;
use crate::record::RunClock;
use crate::repo::Repo;
use crate::verdict::Verdict;

pub use checks::EXPECTED_METRICS;
pub use plan::{BenchPlan, EndpointPlan, LoadSettings, Overrides, SmokePlan};
pub use render::junit_suite;
pub use report::{BenchmarkReport, CheckResult, EndpointReport, SmokeReport};
pub use stats::{ErrorCounts, LatencySummary, ThresholdOutcome};

/// The task name in run records.
pub const TASK: &str = "smoke";

/// Options of `cargo xtask smoke`. Without flags, everything comes from `ops/deploy.toml`
/// (or the built-in defaults when `--url` is used and the file is absent).
#[derive(Debug, Clone, Default)]
pub struct Options {
    /// Environment from ops/deploy.toml to check (its URL, thresholds and endpoints).
    pub env: Option<String>,
    /// Base URL to check instead, e.g. http://127.0.0.1:8080 (recorded as `adhoc` without --env).
    pub url: Option<String>,
    /// Poll readiness for up to this long first, e.g. 60s (right after a deploy).
    pub wait: Option<Duration>,
    /// The config's load, limits and endpoints as the flags override them.
    pub overrides: Overrides,
    /// Run the checks only, no benchmark.
    pub skip_bench: bool,
    /// Run the benchmark only, no checks (for comparing load generators).
    pub skip_checks: bool,
    /// End the whole run, failed, after this long, e.g. 5m (default 15m). Against a target
    /// that never answers the run ends much sooner: the benchmark is skipped when every
    /// check timed out, and stopped when its first batch of requests times out.
    pub deadline: Option<Duration>,
}

impl Options {
    /// The options of `cargo xtask smoke --env ENV`: everything from `ops/deploy.toml`.
    pub fn for_env(env: &str) -> Options {
        Options {
            env: Some(env.to_string()),
            ..Options::default()
        }
    }
}

impl SmokePlan {
    /// The plan the config describes: all checks, no wait, the configured benchmark.
    pub fn new(settings: &SmokeSettings, thresholds: &Thresholds) -> anyhow::Result<SmokePlan> {
        SmokePlan::resolve(settings, thresholds, &Overrides::default())
    }

    /// The config's plan with command-line overrides applied.
    pub fn resolve(
        settings: &SmokeSettings,
        thresholds: &Thresholds,
        overrides: &Overrides,
    ) -> anyhow::Result<SmokePlan> {
        let bench = BenchPlan::resolve(settings, thresholds, overrides)?;
        Ok(SmokePlan {
            checks: true,
            wait: None,
            timeout: bench.load.timeout(),
            bench: Some(bench),
            progress: false,
            deadline: plan::DEFAULT_DEADLINE,
        })
    }
}

/// Runs a plan against a target: the readiness wait (if any), the checks, the benchmark.
///
/// Returns an error only when the run cannot happen: the first health check cannot connect
/// (refused, DNS), or no HTTP client can be built. Everything else, including a readiness wait
/// that runs out, is a verdict in the report. A failed wait skips the rest.
///
/// The run ends at `plan.deadline` with a failed `deadline` check.
pub async fn measure(target: &Target, plan: &SmokePlan) -> anyhow::Result<SmokeReport> {
    match tokio::time::timeout(plan.deadline, measure_until_done(target, plan)).await {
        Ok(report) => report,
        Err(_) => Ok(SmokeReport::new(
            &target.url,
            vec![CheckResult::observed(
                "deadline",
                format!(
                    "the run ends within its deadline of {}",
                    humantime(plan.deadline)
                ),
                Verdict::Fail,
                format!(
                    "stopped after {}: the target is not answering in time",
                    humantime(plan.deadline)
                ),
                Some(
                    "check that the service answers (fly status, fly logs); raise --deadline \
                     for a longer benchmark"
                        .into(),
                ),
            )],
            None,
        )),
    }
}

fn humantime(duration: Duration) -> String {
    format!("{}s", duration.as_secs_f64())
}

async fn measure_until_done(target: &Target, plan: &SmokePlan) -> anyhow::Result<SmokeReport> {
    let client = crate::http::client(plan.timeout)?;
    let mut outcomes = Vec::new();
    if let Some(wait) = plan.wait {
        let waited = checks::wait_ready(&client, target, wait).await;
        let ready = waited.verdict != Verdict::Fail;
        outcomes.push(waited);
        if !ready {
            return Ok(SmokeReport::new(&target.url, outcomes, None));
        }
    }
    let mut served = report::ServedVersion::NotAsked;
    let mut bench = plan.bench.as_ref();
    if plan.checks {
        let checked = checks::run_checks(&client, target).await?;
        let all_timed_out = checked.silent;
        outcomes.extend(checked.outcomes);
        if !all_timed_out {
            served = served_version(&client, target).await;
        }
        if bench.is_some() && all_timed_out {
            bench = None;
            outcomes.push(CheckResult::observed(
                "benchmark",
                "the benchmark runs against a target that answers",
                Verdict::Fail,
                "skipped: every check timed out, the target accepts connections \
                           but does not answer",
                Some("check that the service answers (fly status, fly logs)".into()),
            ));
        }
    }
    let benchmark = match bench {
        Some(bench) => {
            let (report, stopped) = benchmark(target, bench, plan.progress).await?;
            if let Some(path) = stopped {
                outcomes.push(CheckResult::observed(
                    "benchmark",
                    "the benchmark runs against a target that answers",
                    Verdict::Fail,
                    format!("stopped: the first batch of requests to {path} timed out"),
                    Some("check that the service answers (fly status, fly logs)".into()),
                ));
            }
            Some(report)
        }
        None => None,
    };
    let mut report = SmokeReport::new(&target.url, outcomes, benchmark);
    report.served_version = served;
    Ok(report)
}

/// The version endpoint's answer: which build is serving. 404 means the service has none.
async fn served_version(client: &reqwest::Client, target: &Target) -> report::ServedVersion {
    use report::ServedVersion;
    /// A version answer is a few fields; more is not one.
    const LARGEST: usize = 16 * 1024;
    let url = target.endpoint(VERSION_PATH);
    let response = match client.get(&url).send().await {
        Ok(response) => response,
        Err(e) => {
            return ServedVersion::Unreadable {
                detail: format!("GET {VERSION_PATH}: {e}"),
            };
        }
    };
    let status = response.status().as_u16();
    if status == 404 {
        return ServedVersion::NoEndpoint;
    }
    if status != 200 {
        return ServedVersion::Unreadable {
            detail: format!("GET {VERSION_PATH} answered {status}"),
        };
    }
    match response.bytes().await {
        Ok(bytes) if bytes.len() > LARGEST => ServedVersion::Unreadable {
            detail: format!("GET {VERSION_PATH} answered {} bytes", bytes.len()),
        },
        Ok(bytes) => match serde_json::from_slice(&bytes) {
            Ok(body) => ServedVersion::Answered { body },
            Err(_) => ServedVersion::Unreadable {
                detail: format!("GET {VERSION_PATH} answered something other than JSON"),
            },
        },
        Err(e) => ServedVersion::Unreadable {
            detail: format!("GET {VERSION_PATH}: {e}"),
        },
    }
}

/// The service's version endpoint.
pub const VERSION_PATH: &str = cabanas_contract::routes::VERSION;

/// The benchmark report, and the path of the endpoint whose first batch timed out (which
/// ends the benchmark there).
async fn benchmark(
    target: &Target,
    bench: &BenchPlan,
    progress: bool,
) -> anyhow::Result<(BenchmarkReport, Option<String>)> {
    let mut endpoints = Vec::new();
    let mut stopped = None;
    for endpoint in &bench.endpoints {
        let url = target.endpoint(&endpoint.path);
        let url =
            reqwest::Url::parse(&url).with_context(|| format!("`{url}` is not a valid URL"))?;
        let measurement = load::measure_endpoint(&url, endpoint, &bench.load, progress).await?;
        endpoints.push(report::endpoint_report(
            endpoint,
            &measurement,
            bench.error_rate_pct,
        ));
        if measurement.first_batch_timed_out {
            stopped = Some(endpoint.path.clone());
            break;
        }
    }
    Ok((BenchmarkReport::new(bench.load.clone(), endpoints), stopped))
}

/// Entry point: resolves the target and the plan on `repo`, measures, prints, saves the
/// record, and writes JUnit XML to `junit` when given. The output is the caller's (a deploy
/// under `--json` keeps stdout clean).
pub fn run_with_output(
    repo: &Repo,
    args: Options,
    out: Output,
    junit: Option<&Path>,
) -> anyhow::Result<Verdict> {
    let (config, target) = Target::resolve(repo, args.env.as_deref(), args.url.as_deref())?;
    let (settings, thresholds) = match &config {
        Some(config) => (
            config.smoke.clone(),
            config.thresholds_for(&target.environment),
        ),
        None => (SmokeSettings::default(), Thresholds::default()),
    };
    let mut plan = SmokePlan::resolve(&settings, &thresholds, &args.overrides)?;
    plan.wait = args.wait;
    plan.deadline = args.deadline.unwrap_or(plan::DEFAULT_DEADLINE);
    plan.checks = !args.skip_checks;
    // indicatif draws nothing off a terminal; checking here also keeps the ticker task away.
    plan.progress = std::io::IsTerminal::is_terminal(&std::io::stderr());
    if args.skip_bench {
        plan.bench = None;
    }

    let clock = RunClock::start(TASK);
    let report = crate::http::runtime()?.block_on(measure(&target, &plan))?;
    let verdict = report.verdict;
    let rate_not_kept = rate_not_kept(&report);
    let human = render::human(&report);
    let summary = render::markdown(&report);
    let record = clock.finish(repo, &target.environment, verdict, report);
    let ending = crate::finish::Ending {
        human: &human,
        summary: &summary,
        save: true,
        json: out.json(),
    };
    crate::finish::finish(repo, &record, ending, &mut out.human_writer())?;
    if let Some(junit) = junit {
        render::junit_suite(&target.environment, &record.result).write(junit)?;
    }
    if let Some(shortfall) = rate_not_kept {
        // The latencies include the generator's own delay: not a measurement of the target.
        bail!("{shortfall}");
    }
    Ok(verdict)
}

/// The "could not keep the rate" message when the open model fell behind its schedule.
fn rate_not_kept(report: &SmokeReport) -> Option<String> {
    let bench = report.benchmark.as_ref()?;
    let rate = bench.load.rate?;
    let behind: Vec<String> = bench
        .rate_not_kept()
        .iter()
        .map(|e| {
            format!(
                "{}: {} of {} late, achieved {} req/s",
                e.path,
                e.late,
                e.scheduled,
                stats::fmt_num(e.throughput_rps)
            )
        })
        .collect();
    (!behind.is_empty()).then(|| {
        format!(
            "the generator could not keep the rate of {} req/s (more than {} % of the requests \
             sent over {} ms late or not at all; {}); its latencies would be the generator's \
             own: lower --rate, or raise --concurrency if every connection was busy",
            stats::fmt_num(rate),
            stats::fmt_num(load::MAX_LATE_SHARE_PCT),
            load::LATE_TOLERANCE.as_millis(),
            behind.join("; ")
        )
    })
}
