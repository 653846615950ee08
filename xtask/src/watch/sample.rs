//! One sample: the probes, the version, the metrics scrape and the new log lines at one
//! moment. The time is an input: the caller says when the sample is taken.

use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use super::logs::LogFindings;
pub use super::logs::{LOG_TIME_LIMIT, LOG_WAIT, LogSource};
use super::scrape::{self, MetricsScrape};
use crate::config::Target;
use crate::flyctl::{Flyctl, Machine};
use crate::release::FORCE_INSTANCE_HEADER;

/// Path of the liveness probe.
pub const HEALTHZ_PATH: &str = cabanas_contract::routes::HEALTHZ;
/// Path of the readiness probe.
pub const READYZ_PATH: &str = cabanas_contract::routes::READYZ;
/// Path of the metrics scrape.
pub const METRICS_PATH: &str = cabanas_contract::routes::METRICS;

/// One HTTP probe.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Probe {
    /// The status, when it answered.
    pub status: Option<u16>,
    /// Time to the response headers, in milliseconds.
    pub latency_ms: f64,
    /// Why it did not answer (refused, timeout).
    pub error: Option<String>,
}

impl Probe {
    /// Answered 2xx.
    pub fn ok(&self) -> bool {
        self.status.is_some_and(|s| (200..300).contains(&s))
    }
}

/// The build serving, as the version endpoint told it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Build {
    /// The git commit of the build.
    pub commit: String,
    /// The image the machine runs, when on Fly.
    pub image: Option<String>,
    /// The machine that answered.
    pub machine: Option<String>,
    /// When that process started serving.
    pub started_at: Option<String>,
}

impl Build {
    /// What identifies the build (not the process): the image, else the commit.
    pub fn identity(&self) -> &str {
        self.image.as_deref().unwrap_or(&self.commit)
    }
}

/// Everything seen at one moment.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Sample {
    /// When the sample was taken.
    pub at: DateTime<Utc>,
    /// `GET /api/v1/healthz`.
    pub healthz: Probe,
    /// `GET /api/v1/readyz`.
    pub readyz: Probe,
    /// `GET /api/v1/version`; `None` when the service has no such route (404).
    pub build: Option<Build>,
    /// The scrape of `/metrics`, when it could be read.
    pub metrics: Option<MetricsScrape>,
    /// Why the scrape could not be read.
    pub metrics_error: Option<String>,
    /// Error and panic log lines since the previous sample; `None` without flyctl.
    pub logs: Option<LogFindings>,
    /// Why the logs could not be read.
    pub logs_error: Option<String>,
    /// Each managed machine of the Fly app, as listed and (when started) sampled on its own;
    /// `None` when the watch does not list machines (no Fly app or no flyctl: `metrics` and
    /// `build` are the whole-app view then), or when the list could not be read.
    #[serde(default)]
    pub machines: Option<Vec<MachineSample>>,
    /// Why the machines could not be listed (the sample then covers nothing).
    #[serde(default)]
    pub machines_error: Option<String>,
}

impl Sample {
    /// The service answered both probes with 2xx.
    pub fn available(&self) -> bool {
        self.healthz.ok() && self.readyz.ok()
    }

    /// The sample saw the whole app: every started machine answered its version and its
    /// `/metrics` (a watch without a machine list covers with its one whole-app scrape).
    pub fn covers_app(&self) -> bool {
        match &self.machines {
            None => self.machines_error.is_none(),
            Some(machines) => machines
                .iter()
                .filter(|m| m.is_started())
                .all(|m| m.metrics.is_some() && m.build.is_some()),
        }
    }
}

/// One machine in one sample: its state in `fly machines list`, and for a started machine
/// its version and `/metrics`, asked through the public URL with `fly-force-instance-id`
/// (the request header Fly's proxy routes to that machine:
/// <https://fly.io/docs/blueprints/sticky-sessions/>).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct MachineSample {
    /// The machine id.
    pub id: String,
    /// Its state as listed (`started`, `stopped`, `suspended`, ...).
    pub state: String,
    /// Its version answer.
    pub build: Option<Build>,
    /// Its scrape of `/metrics`.
    pub metrics: Option<MetricsScrape>,
    /// Why its version or metrics could not be read.
    pub error: Option<String>,
}

impl MachineSample {
    /// Listed as started.
    pub fn is_started(&self) -> bool {
        self.state == "started"
    }

    /// Listed as stopped or suspended (Fly's auto-stop, or by hand).
    pub fn is_stopped(&self) -> bool {
        matches!(self.state.as_str(), "stopped" | "suspended")
    }
}

/// Where the machine list comes from: `flyctl machines list --json` for the app.
#[derive(Clone)]
pub struct MachineSource {
    /// The flyctl to run.
    pub flyctl: Flyctl,
    /// The Fly app.
    pub app: String,
}

impl MachineSource {
    /// The managed machines of the app (release-command and console machines are not
    /// part of the service), read on a blocking thread.
    async fn list(&self) -> Result<Vec<Machine>, String> {
        let source = self.clone();
        let listed = tokio::task::spawn_blocking(move || {
            source.flyctl.machines(&source.app, &mut std::io::sink())
        })
        .await
        .map_err(|error| format!("the machine list stopped: {error}"))?;
        match listed {
            Ok(Some(machines)) => Ok(machines.into_iter().filter(|m| m.managed).collect()),
            Ok(None) => Err("flyctl did not list the machines".to_string()),
            Err(error) => Err(format!("{error:#}")),
        }
    }
}

/// Takes samples of one target.
pub struct Sampler {
    client: reqwest::Client,
    target: Target,
    logs: Option<LogSource>,
    machines: Option<MachineSource>,
    taken: usize,
}

impl Sampler {
    /// A sampler of `target`, reading logs from `logs` when given.
    pub fn new(
        target: Target,
        timeout: Duration,
        logs: Option<LogSource>,
    ) -> anyhow::Result<Sampler> {
        Ok(Sampler {
            client: crate::http::client(timeout)?,
            target,
            logs,
            machines: None,
            taken: 0,
        })
    }

    /// The same, sampling each machine of `source`'s app on its own: behind one public URL
    /// Fly's proxy spreads requests over the machines, so consecutive whole-app scrapes come
    /// from different processes and their counters are not one series.
    pub fn per_machine(mut self, source: MachineSource) -> Sampler {
        self.machines = Some(source);
        self
    }

    /// Takes one sample, recorded as taken `at`.
    pub async fn sample(&mut self, at: DateTime<Utc>) -> Sample {
        let healthz = self.probe(HEALTHZ_PATH).await.0;
        let readyz = self.probe(READYZ_PATH).await.0;
        let build = self.build(None).await;
        let (machines, machines_error) = match &self.machines {
            None => (None, None),
            Some(source) => match source.list().await {
                Ok(listed) => (Some(self.each_machine(&listed).await), None),
                Err(error) => (None, Some(error)),
            },
        };
        // With a machine list the whole-app scrape would mix processes: the machines' own
        // scrapes stand in for it.
        let (metrics, metrics_error) = match self.machines {
            Some(_) => (None, None),
            None => match self.metrics(None).await {
                Ok(metrics) => (Some(metrics), None),
                Err(error) => (None, Some(error)),
            },
        };
        let (logs, logs_error) = match self.logs.as_mut() {
            None => (None, None),
            Some(source) => match source.read() {
                Ok(findings) => (Some(findings), None),
                Err(error) => (None, Some(error)),
            },
        };
        self.taken += 1;
        Sample {
            at,
            healthz,
            readyz,
            build,
            metrics,
            metrics_error,
            logs,
            logs_error,
            machines,
            machines_error,
        }
    }

    /// Every listed machine; the started ones asked for their version and `/metrics`.
    async fn each_machine(&self, listed: &[Machine]) -> Vec<MachineSample> {
        let mut found = Vec::with_capacity(listed.len());
        for machine in listed {
            let mut sample = MachineSample {
                id: machine.id.clone(),
                state: machine.state.clone(),
                build: None,
                metrics: None,
                error: None,
            };
            if machine.is_started() {
                sample.build = self.build(Some(&machine.id)).await;
                match self.metrics(Some(&machine.id)).await {
                    Ok(metrics) => sample.metrics = Some(metrics),
                    Err(error) => sample.error = Some(error),
                }
                if sample.build.is_none() && sample.error.is_none() {
                    sample.error = Some(format!(
                        "{} did not answer its version",
                        crate::release::VERSION_PATH
                    ));
                }
            }
            found.push(sample);
        }
        found
    }

    /// `GET path`, routed to `machine` when given (Fly's `fly-force-instance-id`).
    async fn probe_on(
        &self,
        path: &str,
        machine: Option<&str>,
    ) -> (Probe, Option<reqwest::Response>) {
        let started = Instant::now();
        let mut request = self.client.get(self.target.endpoint(path));
        if let Some(id) = machine {
            request = request.header(FORCE_INSTANCE_HEADER, id);
        }
        let result = request.send().await;
        let latency_ms = started.elapsed().as_secs_f64() * 1000.0;
        match result {
            Ok(response) => (
                Probe {
                    status: Some(response.status().as_u16()),
                    latency_ms,
                    error: None,
                },
                Some(response),
            ),
            Err(error) => (
                Probe {
                    status: None,
                    latency_ms,
                    error: Some(describe(&error)),
                },
                None,
            ),
        }
    }

    async fn probe(&self, path: &str) -> (Probe, Option<reqwest::Response>) {
        self.probe_on(path, None).await
    }

    async fn build(&self, machine: Option<&str>) -> Option<Build> {
        #[derive(Deserialize)]
        struct Body {
            commit: String,
            #[serde(default)]
            image: Option<String>,
            #[serde(default)]
            machine: Option<String>,
            #[serde(default)]
            started_at: Option<String>,
        }
        let (probe, response) = self.probe_on(crate::release::VERSION_PATH, machine).await;
        let response = response.filter(|_| probe.ok())?;
        let body: Body = response.json().await.ok()?;
        Some(Build {
            commit: body.commit,
            image: body.image,
            machine: body.machine,
            started_at: body.started_at,
        })
    }

    async fn metrics(&self, machine: Option<&str>) -> Result<MetricsScrape, String> {
        let url = match machine {
            Some(id) => format!("{} (machine {id})", self.target.endpoint(METRICS_PATH)),
            None => self.target.endpoint(METRICS_PATH),
        };
        let (probe, response) = self.probe_on(METRICS_PATH, machine).await;
        let response = match (response, probe.status) {
            (Some(response), _) if probe.ok() => response,
            (_, Some(status)) => return Err(format!("GET {url} answered {status}")),
            _ => return Err(format!("GET {url}: {}", probe.error.unwrap_or_default())),
        };
        let text = response
            .text()
            .await
            .map_err(|error| format!("reading {url}: {}", describe(&error)))?;
        scrape::parse(&text).map_err(|error| format!("{url}: {error:#}"))
    }
}

fn describe(error: &reqwest::Error) -> String {
    if error.is_timeout() {
        "timed out".to_string()
    } else if error.is_connect() {
        "could not connect".to_string()
    } else {
        error.to_string()
    }
}
