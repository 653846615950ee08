//! The flags of `cargo xtask smoke`, turned into [`crate::smoke::Options`].

use std::time::Duration;

use super::duration::parse_duration;
use crate::smoke;

/// Options of `cargo xtask smoke`. Without flags, everything comes from `ops/deploy.toml`
/// (or the built-in defaults when `--url` is used and the file is absent).
#[derive(Debug, Clone, clap::Args)]
pub struct Args {
    /// Environment from ops/deploy.toml to check (its URL, thresholds and endpoints).
    #[arg(long, value_name = "NAME", required_unless_present = "url")]
    pub env: Option<String>,
    /// Base URL to check instead, e.g. http://127.0.0.1:8080 (recorded as `adhoc` without --env).
    #[arg(long, value_name = "URL")]
    pub url: Option<String>,
    /// Poll readiness for up to this long first, e.g. 60s (right after a deploy).
    #[arg(long, value_name = "DURATION", value_parser = parse_duration)]
    pub wait: Option<Duration>,
    /// Connections (closed model), or the cap on requests in flight with --rate.
    #[arg(long, value_name = "C")]
    pub concurrency: Option<u32>,
    /// Measured requests per endpoint.
    #[arg(long, value_name = "N", conflicts_with = "duration")]
    pub requests: Option<u64>,
    /// Measure each endpoint for this long instead of a number of requests, e.g. 30s.
    #[arg(long, value_name = "DURATION", value_parser = parse_duration)]
    pub duration: Option<Duration>,
    /// Open model: send this many requests per second, latency measured from each intended send time.
    #[arg(long, value_name = "R")]
    pub rate: Option<f64>,
    /// Requests per endpoint sent first and left out of every figure.
    #[arg(long, value_name = "N")]
    pub warmup: Option<u64>,
    /// Per-request timeout, e.g. 10s (checks and benchmark).
    #[arg(long, value_name = "DURATION", value_parser = parse_duration)]
    pub timeout: Option<Duration>,
    /// p95 latency limit in milliseconds for every endpoint (overrides the config).
    #[arg(long, value_name = "MS")]
    pub p95_ms: Option<f64>,
    /// Error rate limit in percent; an endpoint passes strictly below it (0 allows no error).
    #[arg(long, value_name = "PCT")]
    pub max_error_rate: Option<f64>,
    /// Path to benchmark (repeatable); replaces the config's endpoint list.
    #[arg(long = "endpoint", value_name = "PATH")]
    pub endpoints: Vec<String>,
    /// Run the checks only, no benchmark.
    #[arg(long, conflicts_with = "skip_checks")]
    pub skip_bench: bool,
    /// Run the benchmark only, no checks (for comparing load generators).
    #[arg(long)]
    pub skip_checks: bool,
    /// Also write the outcome as JUnit XML to PATH (one test case per check and per threshold of each endpoint), for CI test
    /// reporters.
    #[arg(long, value_name = "PATH")]
    pub junit: Option<std::path::PathBuf>,
    /// End the whole run, failed, after this long, e.g. 5m (default 15m). Against a target
    /// that never answers the run ends much sooner: the benchmark is skipped when every
    /// check timed out, and stopped when its first batch of requests times out.
    #[arg(long, value_name = "DURATION", value_parser = parse_duration)]
    pub deadline: Option<Duration>,
    /// Print the result record as JSON on stdout (human text goes to stderr).
    #[arg(long)]
    pub json: bool,
}

impl Args {
    /// The task's options; `--json` and `--junit` choose the output and stay here.
    pub fn into_options(self) -> smoke::Options {
        smoke::Options {
            env: self.env,
            url: self.url,
            wait: self.wait,
            overrides: smoke::plan::Overrides {
                concurrency: self.concurrency,
                requests: self.requests,
                duration: self.duration,
                rate: self.rate,
                warmup: self.warmup,
                timeout: self.timeout,
                p95_ms: self.p95_ms,
                max_error_rate: self.max_error_rate,
                endpoints: self.endpoints,
            },
            skip_bench: self.skip_bench,
            skip_checks: self.skip_checks,
            deadline: self.deadline,
        }
    }
}
