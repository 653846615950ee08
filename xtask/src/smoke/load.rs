//! The load generator. It only counts: per-worker histograms and error counters, merged at the
//! end into a plain [`EndpointMeasurement`]. Figures and verdicts come from `stats`.
//!
//! Closed model: `concurrency` workers, each sending its next request as soon as the previous
//! one ends; latency runs from send to the last body byte. Open model (`rate`): request `i` is
//! due at `start + i / rate`; a worker (at most `concurrency` in flight) waits for that time,
//! sends, and the latency runs from the *intended* time, so a stalled server cannot hide its
//! queueing delay by slowing the sender down (no coordinated omission, as in wrk2).

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use anyhow::Context;
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use reqwest::{Client, Url};
use tokio::task::JoinSet;

use super::plan::{EndpointPlan, LoadSettings};
use super::stats::{ErrorCounts, LatencyHistogram};

/// Open model: a request sent later than this after its intended time counts as late.
pub const LATE_TOLERANCE: Duration = Duration::from_millis(10);

/// What the load generator counted for one endpoint (warm-up excluded).
#[derive(Debug, Clone, Default)]
pub struct EndpointMeasurement {
    /// Latency of every answered request, whatever its status.
    pub latency: LatencyHistogram,
    /// Latency of the requests answered with an expected status.
    pub success_latency: LatencyHistogram,
    /// Requests answered with an expected status.
    pub succeeded: u64,
    /// Failed requests by kind.
    pub errors: ErrorCounts,
    /// Open model: requests sent later than [`LATE_TOLERANCE`] after their intended time.
    pub late: u64,
    /// Wall time of the measured part.
    pub elapsed: Duration,
    /// The first batch (one request per connection) all timed out, so no more were sent.
    pub first_batch_timed_out: bool,
}

impl EndpointMeasurement {
    fn merge(&mut self, other: &EndpointMeasurement) {
        self.latency.merge(&other.latency);
        self.success_latency.merge(&other.success_latency);
        self.succeeded += other.succeeded;
        self.errors.merge(&other.errors);
        self.late += other.late;
    }

    fn record(&mut self, outcome: Outcome, latency: Duration, endpoint: &EndpointPlan) {
        match outcome {
            Outcome::Status(status) => {
                self.latency.record(latency);
                if endpoint.is_success(status) {
                    self.succeeded += 1;
                    self.success_latency.record(latency);
                } else {
                    *self.errors.status.entry(status).or_default() += 1;
                }
            }
            Outcome::Connect => self.errors.connect += 1,
            Outcome::Timeout => self.errors.timeout += 1,
            Outcome::Transport => self.errors.transport += 1,
        }
    }
}

/// How one request ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Outcome {
    Status(u16),
    Connect,
    Timeout,
    Transport,
}

/// The clients the load runs on, one per worker: HTTP/1.1 only, so `concurrency` means
/// connections, and no worker waits on another's connection pool lock.
pub fn load_clients(load: &LoadSettings) -> anyhow::Result<Vec<Client>> {
    (0..load.concurrency.max(1))
        .map(|_| {
            crate::http::client_builder(load.timeout())
                .http1_only()
                .tcp_nodelay(true)
                .pool_max_idle_per_host(1)
                .build()
                .context("building the HTTP client for the benchmark")
        })
        .collect()
}

/// When a run stops.
#[derive(Debug, Clone, Copy)]
enum Limit {
    Requests(u64),
    Until(Instant),
}

struct Worker {
    clients: Vec<Client>,
    url: Url,
    endpoint: EndpointPlan,
    next: AtomicU64,
    done: AtomicU64,
    /// One request per connection: when all of them time out, the target is not answering.
    first_batch: u64,
    first_batch_timeouts: AtomicU64,
    stopped: std::sync::atomic::AtomicBool,
}

/// Sends the warm-up, then the measured load, to one endpoint.
pub async fn measure_endpoint(
    clients: &[Client],
    url: Url,
    endpoint: &EndpointPlan,
    load: &LoadSettings,
    show_progress: bool,
) -> EndpointMeasurement {
    let concurrency = load.concurrency.max(1);
    if load.warmup > 0 {
        let warmup = Arc::new(Worker::new(clients, &url, endpoint, concurrency));
        let started = Instant::now();
        let mut warmed = run(
            &warmup,
            concurrency,
            None,
            Limit::Requests(load.warmup),
            started,
        )
        .await;
        if warmup.is_stopped() {
            // Nothing answers: the warm-up's timeouts are the whole measurement.
            warmed.elapsed = started.elapsed();
            warmed.first_batch_timed_out = true;
            return warmed;
        }
    }
    let worker = Arc::new(Worker::new(clients, &url, endpoint, concurrency));
    let started = Instant::now();
    let limit = match (load.requests, load.duration_ms) {
        (Some(n), _) => Limit::Requests(n),
        (None, Some(ms)) => Limit::Until(started + Duration::from_millis(ms)),
        (None, None) => Limit::Requests(0),
    };
    let bar = show_progress.then(|| progress_bar(&endpoint.name, load));
    let ticker = bar.clone().map(|bar| {
        let worker = Arc::clone(&worker);
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(Duration::from_millis(100));
            loop {
                tick.tick().await;
                bar.set_position(worker.done.load(Ordering::Relaxed));
            }
        })
    });
    let mut measurement = run(&worker, concurrency, load.rate, limit, started).await;
    measurement.elapsed = started.elapsed();
    measurement.first_batch_timed_out = worker.is_stopped();
    if let Some(ticker) = ticker {
        ticker.abort();
    }
    if let Some(bar) = bar {
        bar.finish_and_clear();
    }
    measurement
}

impl Worker {
    fn new(clients: &[Client], url: &Url, endpoint: &EndpointPlan, first_batch: u32) -> Worker {
        Worker {
            clients: clients.to_vec(),
            url: url.clone(),
            endpoint: endpoint.clone(),
            next: AtomicU64::new(0),
            done: AtomicU64::new(0),
            first_batch: u64::from(first_batch.max(1)),
            first_batch_timeouts: AtomicU64::new(0),
            stopped: std::sync::atomic::AtomicBool::new(false),
        }
    }

    /// Counts a finished request; stops the run when the whole first batch timed out.
    fn finished(&self, outcome: &Outcome) {
        let index = self.done.fetch_add(1, Ordering::Relaxed);
        if index < self.first_batch
            && matches!(outcome, Outcome::Timeout)
            && self.first_batch_timeouts.fetch_add(1, Ordering::Relaxed) + 1 == self.first_batch
        {
            self.stopped.store(true, Ordering::Relaxed);
        }
    }

    fn is_stopped(&self) -> bool {
        self.stopped.load(Ordering::Relaxed)
    }
}

async fn run(
    worker: &Arc<Worker>,
    concurrency: u32,
    rate: Option<f64>,
    limit: Limit,
    started: Instant,
) -> EndpointMeasurement {
    let mut tasks = JoinSet::new();
    for slot in 0..concurrency as usize {
        let worker = Arc::clone(worker);
        match rate {
            None => tasks.spawn(closed_worker(worker, slot, limit)),
            Some(rate) => tasks.spawn(open_worker(worker, slot, limit, started, rate)),
        };
    }
    let mut total = EndpointMeasurement::default();
    while let Some(joined) = tasks.join_next().await {
        // A worker only panics on a bug; its counts are lost, the others still stand.
        if let Ok(part) = joined {
            total.merge(&part);
        }
    }
    total
}

async fn closed_worker(worker: Arc<Worker>, slot: usize, limit: Limit) -> EndpointMeasurement {
    let client = &worker.clients[slot % worker.clients.len()];
    let mut tally = EndpointMeasurement::default();
    loop {
        let go = match limit {
            Limit::Requests(n) => worker.next.fetch_add(1, Ordering::Relaxed) < n,
            Limit::Until(deadline) => Instant::now() < deadline,
        };
        if !go || worker.is_stopped() {
            break;
        }
        let sent = Instant::now();
        let outcome = send(client, &worker.url).await;
        worker.finished(&outcome);
        tally.record(outcome, sent.elapsed(), &worker.endpoint);
    }
    tally
}

async fn open_worker(
    worker: Arc<Worker>,
    slot: usize,
    limit: Limit,
    started: Instant,
    rate: f64,
) -> EndpointMeasurement {
    let client = &worker.clients[slot % worker.clients.len()];
    let mut tally = EndpointMeasurement::default();
    loop {
        let index = worker.next.fetch_add(1, Ordering::Relaxed);
        let intended = started + Duration::from_secs_f64(index as f64 / rate);
        let go = match limit {
            Limit::Requests(n) => index < n,
            Limit::Until(deadline) => intended < deadline,
        };
        if !go || worker.is_stopped() {
            break;
        }
        let now = Instant::now();
        if intended > now {
            tokio::time::sleep_until(intended.into()).await;
        } else if now - intended > LATE_TOLERANCE {
            tally.late += 1;
        }
        let outcome = send(client, &worker.url).await;
        worker.finished(&outcome);
        tally.record(outcome, intended.elapsed(), &worker.endpoint);
    }
    tally
}

/// One GET, body read to the end (latency includes the whole answer; the connection is reused).
async fn send(client: &Client, url: &Url) -> Outcome {
    let mut response = match client.get(url.clone()).send().await {
        Ok(response) => response,
        Err(error) => return classify(&error),
    };
    let status = response.status().as_u16();
    loop {
        match response.chunk().await {
            Ok(Some(_)) => {}
            Ok(None) => return Outcome::Status(status),
            Err(error) => return classify(&error),
        }
    }
}

fn classify(error: &reqwest::Error) -> Outcome {
    if error.is_timeout() {
        Outcome::Timeout
    } else if error.is_connect() {
        Outcome::Connect
    } else {
        Outcome::Transport
    }
}

fn progress_bar(name: &str, load: &LoadSettings) -> ProgressBar {
    let bar = match load.requests {
        Some(n) => ProgressBar::with_draw_target(Some(n), ProgressDrawTarget::stderr()).with_style(
            ProgressStyle::with_template("{prefix:>16} [{bar:30}] {pos}/{len} {per_sec} eta {eta}")
                .unwrap_or_else(|_| ProgressStyle::default_bar())
                .progress_chars("=> "),
        ),
        None => ProgressBar::with_draw_target(None, ProgressDrawTarget::stderr()).with_style(
            ProgressStyle::with_template(
                "{prefix:>16} {spinner} {pos} requests {per_sec} {elapsed}",
            )
            .unwrap_or_else(|_| ProgressStyle::default_spinner()),
        ),
    };
    bar.set_prefix(name.to_string());
    bar
}
