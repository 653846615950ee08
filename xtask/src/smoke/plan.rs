//! What one smoke run will do: the checks, the readiness wait and the benchmark settings,
//! resolved from `ops/deploy.toml` (or the defaults) and the command-line overrides.

use std::time::Duration;

use anyhow::bail;
use serde::{Deserialize, Serialize};

use crate::config::{SmokeEndpoint, SmokeSettings, Thresholds};

/// A whole smoke run: phase 1 (checks) and phase 2 (benchmark).
#[derive(Debug, Clone, PartialEq)]
pub struct SmokePlan {
    /// Run the phase 1 checks (healthz, readyz, metrics, the read path).
    pub checks: bool,
    /// Poll readiness for up to this long before anything else.
    pub wait: Option<Duration>,
    /// Per-request timeout of the checks.
    pub timeout: Duration,
    /// The benchmark, unless skipped.
    pub bench: Option<BenchPlan>,
    /// Draw progress bars on stderr while loading (only sensible on a terminal).
    pub progress: bool,
    /// The whole run (wait, checks, benchmark) ends, failed, after this long.
    pub deadline: Duration,
}

/// The default `--deadline`: far above any configured run, far below a hung one.
pub const DEFAULT_DEADLINE: Duration = Duration::from_secs(15 * 60);

/// The benchmark: how load is generated and what each endpoint is held against.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct BenchPlan {
    /// How load is generated.
    pub load: LoadSettings,
    /// The endpoints, measured one after another, each with the full load.
    pub endpoints: Vec<EndpointPlan>,
    /// The error rate limit in percent: an endpoint passes when its rate is strictly below.
    pub error_rate_pct: f64,
}

/// Load generation settings, recorded with the result so a report can say what was run.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LoadSettings {
    /// Connections (closed model), or the cap on requests in flight (open model).
    pub concurrency: u32,
    /// Open model: requests per second, each latency measured from its intended send time.
    /// `None` is the closed model: every connection sends its next request when the last ends.
    pub rate: Option<f64>,
    /// Measured requests per endpoint; `None` when the run is bounded by `duration_ms`.
    pub requests: Option<u64>,
    /// Measured time per endpoint in milliseconds; `None` when bounded by `requests`.
    pub duration_ms: Option<u64>,
    /// Requests per endpoint sent first and left out of every figure.
    pub warmup: u64,
    /// Per-request timeout in milliseconds.
    pub timeout_ms: u64,
}

impl LoadSettings {
    /// The per-request timeout.
    pub fn timeout(&self) -> Duration {
        Duration::from_millis(self.timeout_ms)
    }

    /// `closed` or `open`, for tables.
    pub fn model(&self) -> &'static str {
        if self.rate.is_some() {
            "open"
        } else {
            "closed"
        }
    }
}

/// One measured endpoint (GET) with its resolved limits.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct EndpointPlan {
    /// Short name shown in tables.
    pub name: String,
    /// Path below the base URL.
    pub path: String,
    /// Statuses that count as success; empty means any 2xx.
    pub expect: Vec<u16>,
    /// The p95 latency limit in milliseconds (strictly below passes).
    pub p95_ms: f64,
    /// The p99 latency limit in milliseconds, when one is set.
    #[serde(default)]
    pub p99_ms: Option<f64>,
    /// The limit for the slowest request in milliseconds, when one is set.
    #[serde(default)]
    pub max_ms: Option<f64>,
}

impl EndpointPlan {
    /// Whether `status` counts as a success for this endpoint.
    pub fn is_success(&self, status: u16) -> bool {
        if self.expect.is_empty() {
            (200..300).contains(&status)
        } else {
            self.expect.contains(&status)
        }
    }
}

/// Command-line overrides of the config; `None` keeps the config's value.
#[derive(Debug, Clone, Default)]
pub struct Overrides {
    /// `--concurrency`: connections (closed model), or the cap on requests in flight with
    /// `--rate`.
    pub concurrency: Option<u32>,
    /// `--requests`: measured requests per endpoint.
    pub requests: Option<u64>,
    /// `--duration`: measure each endpoint this long instead of a number of requests.
    pub duration: Option<Duration>,
    /// `--rate`: the open model, this many requests per second, latency measured from each
    /// intended send time.
    pub rate: Option<f64>,
    /// `--warmup`: requests per endpoint sent first and left out of every figure.
    pub warmup: Option<u64>,
    /// `--timeout`: per request (checks and benchmark).
    pub timeout: Option<Duration>,
    /// `--p95-ms`, applied to every endpoint.
    pub p95_ms: Option<f64>,
    /// `--max-error-rate`, in percent; an endpoint passes strictly below it (0 allows no
    /// error).
    pub max_error_rate: Option<f64>,
    /// `--endpoint`, replacing the config's list.
    pub endpoints: Vec<String>,
}

impl BenchPlan {
    /// Resolves the benchmark from the config (or defaults) and the overrides, rejecting
    /// values that cannot run (zero connections, a negative rate, an empty endpoint list).
    pub fn resolve(
        settings: &SmokeSettings,
        thresholds: &Thresholds,
        overrides: &Overrides,
    ) -> anyhow::Result<BenchPlan> {
        let concurrency = overrides.concurrency.unwrap_or(settings.concurrency);
        if concurrency == 0 {
            bail!("--concurrency must be at least 1");
        }
        if let Some(rate) = overrides.rate
            && !(rate.is_finite() && rate > 0.0)
        {
            bail!("--rate must be a positive number of requests per second, got {rate}");
        }
        let (requests, duration_ms) = match (overrides.requests, overrides.duration) {
            (Some(_), Some(_)) => bail!("give --requests or --duration, not both"),
            (_, Some(d)) if d.is_zero() => bail!("--duration must be longer than zero"),
            (_, Some(d)) => (None, Some(d.as_millis() as u64)),
            (Some(0), _) => bail!("--requests must be at least 1"),
            (Some(n), None) => (Some(n), None),
            (None, None) if settings.requests == 0 => {
                bail!("smoke.requests in the deploy config must be at least 1")
            }
            (None, None) => (Some(settings.requests), None),
        };
        let timeout = match overrides.timeout {
            Some(t) => t,
            None => seconds(
                settings.timeout_secs,
                "smoke.timeout_secs in the deploy config",
            )?,
        };
        if timeout.is_zero() {
            bail!("--timeout must be longer than zero");
        }
        let error_rate_pct = overrides
            .max_error_rate
            .unwrap_or(thresholds.error_rate_pct);
        if !(0.0..=100.0).contains(&error_rate_pct) {
            bail!("--max-error-rate is a percentage between 0 and 100, got {error_rate_pct}");
        }
        if let Some(p95) = overrides.p95_ms
            && !(p95.is_finite() && p95 > 0.0)
        {
            bail!("--p95-ms must be a positive number of milliseconds, got {p95}");
        }
        let configured: Vec<SmokeEndpoint> = if overrides.endpoints.is_empty() {
            settings.endpoints.clone()
        } else {
            overrides
                .endpoints
                .iter()
                .map(|path| endpoint_from_path(path))
                .collect::<Result<_, _>>()?
        };
        if configured.is_empty() {
            bail!(
                "no endpoint to benchmark: list some under [smoke] in the deploy config or pass --endpoint PATH"
            );
        }
        let endpoints = configured
            .into_iter()
            .map(|e| {
                let default_p95 = if is_health_path(&e.path) {
                    thresholds.healthz_p95_ms
                } else {
                    thresholds.p95_ms
                };
                EndpointPlan {
                    p95_ms: overrides.p95_ms.or(e.p95_ms).unwrap_or(default_p95),
                    p99_ms: thresholds.p99_ms,
                    max_ms: thresholds.max_ms,
                    name: e.name,
                    path: e.path,
                    expect: e.expect,
                }
            })
            .collect();
        Ok(BenchPlan {
            load: LoadSettings {
                concurrency,
                rate: overrides.rate,
                requests,
                duration_ms,
                warmup: overrides.warmup.unwrap_or(settings.warmup),
                timeout_ms: timeout.as_millis() as u64,
            },
            endpoints,
            error_rate_pct,
        })
    }
}

fn seconds(value: f64, what: &str) -> anyhow::Result<Duration> {
    Duration::try_from_secs_f64(value)
        .map_err(|_| anyhow::anyhow!("{what} must be a positive number of seconds, got {value}"))
}

fn is_health_path(path: &str) -> bool {
    path.trim_end_matches('/').ends_with("/healthz")
}

fn endpoint_from_path(path: &str) -> anyhow::Result<SmokeEndpoint> {
    if !path.starts_with('/') {
        bail!(
            "--endpoint takes a path below the base URL starting with `/`, e.g. /api/v1/healthz; got `{path}`"
        );
    }
    let name = path
        .trim_end_matches('/')
        .rsplit('/')
        .next()
        .filter(|s| !s.is_empty())
        .unwrap_or("/");
    Ok(SmokeEndpoint {
        name: name.to_string(),
        path: path.to_string(),
        expect: Vec::new(),
        p95_ms: None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn health_endpoints_get_the_health_limit_and_flags_override() {
        let thresholds = Thresholds::default();
        let plan = BenchPlan::resolve(
            &SmokeSettings::default(),
            &thresholds,
            &Overrides::default(),
        )
        .unwrap();
        assert_eq!(plan.endpoints[0].p95_ms, 200.0);
        assert_eq!(plan.endpoints[1].p95_ms, 3000.0);
        assert_eq!(plan.load.requests, Some(400));
        let overrides = Overrides {
            p95_ms: Some(5.0),
            endpoints: vec!["/x/healthz".into()],
            duration: Some(Duration::from_secs(2)),
            ..Overrides::default()
        };
        let plan = BenchPlan::resolve(&SmokeSettings::default(), &thresholds, &overrides).unwrap();
        assert_eq!(plan.endpoints.len(), 1);
        assert_eq!(plan.endpoints[0].name, "healthz");
        assert_eq!(plan.endpoints[0].p95_ms, 5.0);
        assert_eq!(
            (plan.load.requests, plan.load.duration_ms),
            (None, Some(2000))
        );
    }

    #[test]
    fn unusable_overrides_are_rejected() {
        let settings = SmokeSettings::default();
        let thresholds = Thresholds::default();
        let cases = [
            Overrides {
                concurrency: Some(0),
                ..Overrides::default()
            },
            Overrides {
                rate: Some(-1.0),
                ..Overrides::default()
            },
            Overrides {
                requests: Some(0),
                ..Overrides::default()
            },
            Overrides {
                max_error_rate: Some(150.0),
                ..Overrides::default()
            },
            Overrides {
                endpoints: vec!["healthz".into()],
                ..Overrides::default()
            },
        ];
        for overrides in cases {
            assert!(
                BenchPlan::resolve(&settings, &thresholds, &overrides).is_err(),
                "{overrides:?}"
            );
        }
    }

    #[test]
    fn expected_statuses_default_to_2xx() {
        let mut endpoint = EndpointPlan {
            name: "x".into(),
            path: "/x".into(),
            expect: vec![],
            p95_ms: 1.0,
            p99_ms: None,
            max_ms: None,
        };
        assert!(endpoint.is_success(204));
        assert!(!endpoint.is_success(404) && !endpoint.is_success(429));
        endpoint.expect = vec![404];
        assert!(endpoint.is_success(404) && !endpoint.is_success(200));
    }
}
