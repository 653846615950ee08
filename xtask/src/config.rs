//! `ops/deploy.toml`: the environments and the thresholds, typed. Unknown keys are errors.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use anyhow::{Context, bail};
use serde::{Deserialize, Serialize};

use crate::record::ADHOC_ENVIRONMENT;
use crate::repo::Repo;

/// Path of the config file, relative to the repository root.
pub const CONFIG_PATH: &str = "ops/deploy.toml";

/// The whole of `ops/deploy.toml`.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct DeployConfig {
    /// Limits that `smoke` holds measurements against.
    #[serde(default)]
    pub thresholds: Thresholds,
    /// What `smoke` measures.
    #[serde(default)]
    pub smoke: SmokeSettings,
    /// What the report's history section compares.
    #[serde(default)]
    pub history: HistorySettings,
    /// What `watch` holds a running service to, and the 24-hour gate built on it.
    #[serde(default)]
    pub watch: WatchSettings,
    /// Deploy targets by name (`staging`, `production`).
    pub environments: BTreeMap<String, Environment>,
}

/// A deploy target.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct Environment {
    /// The Fly app name.
    pub app: String,
    /// The public base URL, e.g. `https://sist-cabanas-staging.fly.dev`.
    pub url: String,
    /// The filled env file (git-ignored), relative to the repository root.
    pub env_file: PathBuf,
    /// The committed template the env file is checked against.
    pub template: PathBuf,
    /// The Fly config deployed to this environment.
    #[serde(default = "default_fly_config")]
    pub fly_config: PathBuf,
    /// Limits of this environment that differ from `[thresholds]` (production may be
    /// stricter): `[environments.production.thresholds]`.
    #[serde(default)]
    pub thresholds: ThresholdOverrides,
    /// How many machines run where (`[environments.production.machines]`); `None` leaves
    /// the count to Fly (auto-stop may stop them all).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub machines: Option<MachinePlan>,
}

/// The machines an environment runs: `predeploy` holds its Fly config to `min_running`,
/// `cargo xtask scale` brings the app to `regions`, `promote` refuses fewer.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct MachinePlan {
    /// Machines that must keep running whatever the traffic (no auto-stop below this).
    pub min_running: usize,
    /// Machines per region, e.g. `{ scl = 1, gru = 1 }`; the Fly config's
    /// `primary_region` must be one of them.
    pub regions: BTreeMap<String, usize>,
}

impl MachinePlan {
    /// Every region's machines together.
    pub fn total(&self) -> usize {
        self.regions.values().sum()
    }
}

/// An environment's own limits; each one set replaces the `[thresholds]` value.
#[derive(Debug, Clone, Default, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct ThresholdOverrides {
    /// See [`Thresholds::p95_ms`].
    pub p95_ms: Option<f64>,
    /// See [`Thresholds::error_rate_pct`].
    pub error_rate_pct: Option<f64>,
    /// See [`Thresholds::healthz_p95_ms`].
    pub healthz_p95_ms: Option<f64>,
    /// See [`Thresholds::p99_ms`].
    pub p99_ms: Option<f64>,
    /// See [`Thresholds::max_ms`].
    pub max_ms: Option<f64>,
}

fn default_fly_config() -> PathBuf {
    PathBuf::from("fly.toml")
}

/// Latency and error limits. Defaults: p95 < 3000 ms, error rate < 1 %, healthz p95 < 200 ms.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct Thresholds {
    /// Upper limit for the 95th percentile latency of every endpoint, in milliseconds.
    pub p95_ms: f64,
    /// Upper limit for the share of failed requests, in percent.
    pub error_rate_pct: f64,
    /// Upper limit for the 95th percentile latency of the health endpoint, in milliseconds.
    pub healthz_p95_ms: f64,
    /// Upper limit for the 99th percentile latency of every endpoint, in milliseconds
    /// (unchecked when absent).
    pub p99_ms: Option<f64>,
    /// Upper limit for the slowest request of every endpoint, in milliseconds (unchecked when
    /// absent).
    pub max_ms: Option<f64>,
}

impl Thresholds {
    /// These limits with an environment's own applied on top.
    pub fn with(&self, own: &ThresholdOverrides) -> Thresholds {
        Thresholds {
            p95_ms: own.p95_ms.unwrap_or(self.p95_ms),
            error_rate_pct: own.error_rate_pct.unwrap_or(self.error_rate_pct),
            healthz_p95_ms: own.healthz_p95_ms.unwrap_or(self.healthz_p95_ms),
            p99_ms: own.p99_ms.or(self.p99_ms),
            max_ms: own.max_ms.or(self.max_ms),
        }
    }
}

impl Default for Thresholds {
    fn default() -> Self {
        Thresholds {
            p95_ms: 3000.0,
            error_rate_pct: 1.0,
            healthz_p95_ms: 200.0,
            p99_ms: None,
            max_ms: None,
        }
    }
}

/// The report's history: how many runs it shows and what counts as a regression.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct HistorySettings {
    /// Runs per task shown (newest first).
    pub runs: usize,
    /// A p95 latency or error rate above the previous run's by more than this many percent
    /// is a WARN for that endpoint (and a race time, for overlap).
    pub regression_pct: f64,
    /// Latency rises smaller than this, in milliseconds, are noise, whatever the percentage.
    pub regression_floor_ms: f64,
}

impl Default for HistorySettings {
    fn default() -> Self {
        HistorySettings {
            runs: 10,
            regression_pct: 20.0,
            regression_floor_ms: 5.0,
        }
    }
}

/// `watch`'s sampling and limits, and the 24-hour stability gate (`[watch]`).
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct WatchSettings {
    /// Seconds between two samples when `--every` is not given.
    pub every_secs: f64,
    /// Lowest availability (share of samples whose healthz and readyz answered 2xx) that
    /// is not a breach, in percent.
    pub availability_floor_pct: f64,
    /// Share of the hours since a staging deploy that watch runs must cover for the
    /// 24-hour gate to pass, in percent.
    pub coverage_pct: f64,
    /// Error or panic log lines kept (masked) per run; all are counted.
    pub log_lines_kept: usize,
}

impl Default for WatchSettings {
    fn default() -> Self {
        WatchSettings {
            every_secs: 30.0,
            availability_floor_pct: 99.0,
            coverage_pct: 90.0,
            log_lines_kept: 5,
        }
    }
}

/// The benchmark `smoke` runs after its checks.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct SmokeSettings {
    /// Concurrent connections (closed model).
    pub concurrency: u32,
    /// Measured requests per endpoint.
    pub requests: u64,
    /// Requests per endpoint sent first and left out of the figures.
    pub warmup: u64,
    /// Per-request timeout in seconds.
    pub timeout_secs: f64,
    /// The endpoints measured.
    pub endpoints: Vec<SmokeEndpoint>,
}

impl Default for SmokeSettings {
    fn default() -> Self {
        SmokeSettings {
            concurrency: 8,
            requests: 400,
            warmup: 40,
            timeout_secs: 10.0,
            endpoints: vec![
                SmokeEndpoint {
                    name: "healthz".into(),
                    path: cabanas_contract::routes::HEALTHZ.into(),
                    expect: Vec::new(),
                    p95_ms: None,
                },
                SmokeEndpoint {
                    name: "accommodations".into(),
                    path: cabanas_contract::routes::ACCOMMODATIONS.into(),
                    expect: Vec::new(),
                    p95_ms: None,
                },
            ],
        }
    }
}

/// One measured endpoint (GET).
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct SmokeEndpoint {
    /// Short name shown in tables.
    pub name: String,
    /// Path below the base URL.
    pub path: String,
    /// Statuses that count as success; empty means any 2xx.
    #[serde(default)]
    pub expect: Vec<u16>,
    /// Overrides the p95 limit for this endpoint.
    #[serde(default)]
    pub p95_ms: Option<f64>,
}

/// What a network task runs against: a named environment, or a bare URL (`adhoc`).
#[derive(Debug, Clone)]
pub struct Target {
    /// Environment name recorded with the result.
    pub environment: String,
    /// Base URL without a trailing slash.
    pub url: String,
    /// The environment's settings, when it is one from the config.
    pub settings: Option<Environment>,
}

impl DeployConfig {
    /// Reads and parses `ops/deploy.toml` of `repo`.
    pub fn load(repo: &Repo) -> anyhow::Result<DeployConfig> {
        Self::load_from(&repo.path(CONFIG_PATH))
    }

    /// Reads and parses a config file.
    pub fn load_from(path: &Path) -> anyhow::Result<DeployConfig> {
        let text = crate::files::read_text_capped(path, crate::files::CONFIG_LIMIT).with_context(
            || {
                format!(
                    "reading {} (the deploy config; see docs/tasks.md)",
                    path.display()
                )
            },
        )?;
        Self::parse(&text)
            .with_context(|| format!("{} is not a valid deploy config", path.display()))
    }

    /// Parses config text; errors carry line and column.
    pub fn parse(text: &str) -> anyhow::Result<DeployConfig> {
        Ok(toml::from_str(text)?)
    }

    /// The limits `smoke` holds `environment` to: `[thresholds]` with the environment's own
    /// `[environments.NAME.thresholds]` on top (ad-hoc and local targets get `[thresholds]`).
    pub fn thresholds_for(&self, environment: &str) -> Thresholds {
        match self.environments.get(environment) {
            Some(settings) => self.thresholds.with(&settings.thresholds),
            None => self.thresholds.clone(),
        }
    }

    /// The named environment, or an error listing the known ones.
    pub fn environment(&self, name: &str) -> anyhow::Result<&Environment> {
        self.environments.get(name).with_context(|| {
            let known: Vec<&str> = self.environments.keys().map(String::as_str).collect();
            format!(
                "no environment `{name}` in {CONFIG_PATH}; known: {}",
                known.join(", ")
            )
        })
    }

    /// Resolves `--env` / `--url` into a target. `--url` alone is recorded as `adhoc`; both
    /// together measure the URL under the environment's name.
    pub fn target(&self, env: Option<&str>, url: Option<&str>) -> anyhow::Result<Target> {
        match (env, url) {
            (Some(name), url) => {
                let settings = self.environment(name)?.clone();
                let url = url.unwrap_or(&settings.url);
                Ok(Target {
                    environment: name.to_string(),
                    url: normalize_url(url)?,
                    settings: Some(settings),
                })
            }
            (None, Some(url)) => Ok(Target::adhoc(url)?),
            (None, None) => bail!("name a target: --env NAME (from {CONFIG_PATH}) or --url URL"),
        }
    }
}

impl Target {
    /// Resolves `--env` / `--url` on `repo` as `smoke` and `watch` do: the config is read
    /// when `--env` names an environment or `ops/deploy.toml` exists (its limits then hold an
    /// ad-hoc URL too); without the file `--url` alone is an ad-hoc target. Returns the
    /// config when it was read.
    pub fn resolve(
        repo: &Repo,
        env: Option<&str>,
        url: Option<&str>,
    ) -> anyhow::Result<(Option<DeployConfig>, Target)> {
        if env.is_none() && !repo.path(CONFIG_PATH).exists() {
            return match url {
                Some(url) => Ok((None, Target::adhoc(url)?)),
                None => bail!("name a target: --env NAME (from {CONFIG_PATH}) or --url URL"),
            };
        }
        let config = DeployConfig::load(repo)?;
        let target = config.target(env, url)?;
        Ok((Some(config), target))
    }

    /// A bare URL, recorded under the environment `adhoc`.
    pub fn adhoc(url: &str) -> anyhow::Result<Target> {
        Ok(Target {
            environment: ADHOC_ENVIRONMENT.to_string(),
            url: normalize_url(url)?,
            settings: None,
        })
    }

    /// A bare URL recorded under the given environment name (`rehearse` uses `local`).
    pub fn named(environment: &str, url: &str) -> anyhow::Result<Target> {
        Ok(Target {
            environment: environment.to_string(),
            url: normalize_url(url)?,
            settings: None,
        })
    }

    /// The base URL joined with an absolute path.
    pub fn endpoint(&self, path: &str) -> String {
        format!("{}{}", self.url, path)
    }
}

/// Checks that `url` is an http(s) URL with a host and strips the trailing slash.
pub fn normalize_url(url: &str) -> anyhow::Result<String> {
    let parsed = reqwest::Url::parse(url)
        .with_context(|| format!("`{url}` is not a URL; expected e.g. http://127.0.0.1:8080"))?;
    if !parsed.username().is_empty() || parsed.password().is_some() {
        // The URL is printed, recorded and rendered into reports: credentials in it would
        // leak everywhere. Say so without repeating them.
        bail!(
            "the URL for {}://{} carries credentials (user:password@): remove them; the tasks \
             need none, and a URL is printed and recorded",
            parsed.scheme(),
            parsed.host_str().unwrap_or("?")
        );
    }
    if !matches!(parsed.scheme(), "http" | "https") || parsed.host_str().is_none() {
        bail!("`{url}` must be an http:// or https:// URL with a host");
    }
    Ok(url.trim_end_matches('/').to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    const VALID: &str = r#"
[thresholds]
p95_ms = 2500.0

[environments.staging]
app = "sist-cabanas-staging"
url = "https://sist-cabanas-staging.fly.dev/"
env_file = "env/.env.fly.staging"
template = "env/.env.fly.staging.template"
"#;

    #[test]
    fn parses_with_defaults() {
        let config = DeployConfig::parse(VALID).unwrap();
        assert_eq!(config.thresholds.p95_ms, 2500.0);
        assert_eq!(config.thresholds.error_rate_pct, 1.0);
        assert_eq!(config.thresholds.healthz_p95_ms, 200.0);
        assert_eq!(config.smoke.endpoints.len(), 2);
        let staging = config.environment("staging").unwrap();
        assert_eq!(staging.fly_config, PathBuf::from("fly.toml"));
    }

    #[test]
    fn unknown_keys_are_named_with_their_line() {
        let text = VALID.replace("p95_ms = 2500.0", "p95_ms = 2500.0\np42_ms = 1.0");
        let error = format!("{:#}", DeployConfig::parse(&text).unwrap_err());
        assert!(error.contains("p42_ms"), "{error}");
        assert!(error.contains("line 4"), "{error}");
    }

    #[test]
    fn targets_resolve_from_env_or_url() {
        let config = DeployConfig::parse(VALID).unwrap();
        let staging = config.target(Some("staging"), None).unwrap();
        assert_eq!(staging.url, "https://sist-cabanas-staging.fly.dev");
        assert_eq!(staging.environment, "staging");
        let adhoc = config.target(None, Some("http://127.0.0.1:9/")).unwrap();
        assert_eq!(adhoc.environment, "adhoc");
        assert_eq!(
            adhoc.endpoint("/api/v1/healthz"),
            "http://127.0.0.1:9/api/v1/healthz"
        );
        assert!(config.target(None, None).is_err());
        let unknown = config.target(Some("prod"), None).unwrap_err().to_string();
        assert!(unknown.contains("known: staging"), "{unknown}");
        assert!(config.target(None, Some("ftp://x")).is_err());
        let leaky = config
            .target(None, Some("http://admin:s3cretPW@127.0.0.1:9"))
            .unwrap_err()
            .to_string();
        assert!(
            leaky.contains("credentials") && !leaky.contains("s3cretPW"),
            "{leaky}"
        );
    }

    #[test]
    fn an_environment_may_set_stricter_limits_with_p99_and_max() {
        let config = DeployConfig::parse(
            r#"
[thresholds]
p95_ms = 3000.0
p99_ms = 5000.0

[environments.staging]
app = "a-staging"
url = "https://a-staging.fly.dev"
env_file = "env/.env.fly.staging"
template = "env/.env.fly.staging.template"

[environments.production]
app = "a"
url = "https://a.fly.dev"
env_file = "env/.env.fly.production"
template = "env/.env.fly.production.template"
[environments.production.thresholds]
p95_ms = 1500.0
max_ms = 4000.0
"#,
        )
        .unwrap();
        let staging = config.thresholds_for("staging");
        assert_eq!(
            (staging.p95_ms, staging.p99_ms, staging.max_ms),
            (3000.0, Some(5000.0), None)
        );
        let production = config.thresholds_for("production");
        assert_eq!(
            (production.p95_ms, production.p99_ms, production.max_ms),
            (1500.0, Some(5000.0), Some(4000.0))
        );
        assert_eq!(production.error_rate_pct, 1.0);
        assert_eq!(config.thresholds_for("adhoc"), config.thresholds);
        let typo = DeployConfig::parse(
            "[environments.production]\napp = \"a\"\nurl = \"https://a.fly.dev\"\n\
             env_file = \"e\"\ntemplate = \"t\"\n[environments.production.thresholds]\np59_ms = 1.0\n",
        );
        assert!(format!("{:#}", typo.unwrap_err()).contains("p59_ms"));
    }
}
