//! The load generator. It only counts: per-connection histograms and error counters, merged
//! at the end into a plain [`EndpointMeasurement`]. Figures and verdicts come from `stats`.
//!
//! The connections run on their own threads, one single-threaded tokio runtime per core (at
//! most one per connection), like wrk's `-t`: no work stealing, no cross-thread wake-ups per
//! request. Each connection sends its requests one after another (HTTP/1.1, see
//! [`connection`]); the warm-up runs on the same connections, then every thread starts the
//! measured part together.
//!
//! Closed model: each connection sends its next request as soon as the previous one ends;
//! latency runs from send to the last body byte. Open model (`rate`): request `i` is due at
//! `start + i / rate`; it is released on time ([`pacer`]: by a pacer thread at low rates, by
//! the load threads' own timers in batches at high rates) to an idle connection of one of the
//! load threads (at most `concurrency` in flight), and the latency runs from the *intended*
//! time, so a stalled server cannot hide its queueing delay by slowing the sender down (no
//! coordinated omission, as in wrk2). A request sent more than [`LATE_TOLERANCE`] after its
//! time is late; when more than [`MAX_LATE_SHARE_PCT`] of the schedule is late the generator
//! did not keep the rate, and the run says so instead of reporting latencies the generator
//! caused.

mod connection;
mod pacer;
mod ticker;

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Barrier, OnceLock};
use std::time::{Duration, Instant};

use anyhow::Context;
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use reqwest::Url;
use tokio::task::JoinSet;

pub use connection::Outcome;
use connection::{Connection, Destination};
use pacer::{Schedule, Tickets};

use super::plan::{EndpointPlan, LoadSettings};
use super::stats::{ErrorCounts, LatencyHistogram};

// The lateness limits are the statistics' (which judge a run by them); re-exported for the
// generator's callers.
pub use super::stats::{LATE_TOLERANCE, MAX_LATE_SHARE_PCT};

/// What the load generator counted for one endpoint (warm-up excluded).
#[derive(Debug, Clone, Default)]
pub struct EndpointMeasurement {
    /// Latency of every answered request, whatever its status.
    pub latency: LatencyHistogram,
    /// Latency of the requests answered with an expected status.
    pub success_latency: LatencyHistogram,
    /// Open model: latency of every answered request counted from when it was released to a
    /// load thread instead of from its intended time, so without the pacing's own
    /// wait. `None` until a released request is answered, so the closed model never pays
    /// for the histogram (about 150 KB per connection).
    pub from_release: Option<LatencyHistogram>,
    /// Requests answered with an expected status.
    pub succeeded: u64,
    /// Failed requests by kind.
    pub errors: ErrorCounts,
    /// Open model: requests sent later than [`LATE_TOLERANCE`] after their intended time, plus
    /// those due before the end and never sent.
    pub late: u64,
    /// Open model: requests the schedule held (0 in the closed model).
    pub scheduled: u64,
    /// Wall time of the measured part.
    pub elapsed: Duration,
    /// The first batch (one request per connection) all timed out, so no more were sent.
    pub first_batch_timed_out: bool,
}

impl EndpointMeasurement {
    fn merge(&mut self, other: &EndpointMeasurement) {
        self.latency.merge(&other.latency);
        self.success_latency.merge(&other.success_latency);
        if let Some(theirs) = &other.from_release {
            self.from_release
                .get_or_insert_with(LatencyHistogram::new)
                .merge(theirs);
        }
        self.succeeded += other.succeeded;
        self.errors.merge(&other.errors);
        self.late += other.late;
    }

    /// Requests sent and ended (answered or failed).
    pub fn sent(&self) -> u64 {
        self.succeeded + self.errors.total()
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

/// A request a connection may send.
#[derive(Debug, Clone, Copy)]
struct Claim {
    /// Where its latency counts from: when it was sent (closed model), or its intended time
    /// (open model).
    counted_from: Instant,
    /// Open model: when it was released to the load thread.
    released: Option<Instant>,
    /// Open model: sent more than [`LATE_TOLERANCE`] after its intended time.
    late: bool,
}

/// When a phase stops.
#[derive(Debug, Clone, Copy)]
enum Limit {
    Requests(u64),
    For(Duration),
}

/// One phase (warm-up or measured), shared by every connection and the pacer (if any).
struct Phase {
    endpoint: EndpointPlan,
    limit: Limit,
    /// Open model only.
    schedule: Option<Arc<Schedule>>,
    /// Set once, by the first thread past the start gate.
    started: Arc<OnceLock<Instant>>,
    next: AtomicU64,
    done: AtomicU64,
    /// One request per connection: when all of them time out, the target is not answering.
    first_batch: u64,
    first_batch_timeouts: AtomicU64,
    stopped: Arc<AtomicBool>,
}

impl Phase {
    fn new(endpoint: &EndpointPlan, limit: Limit, connections: u32) -> Phase {
        Phase {
            endpoint: endpoint.clone(),
            limit,
            schedule: None,
            started: Arc::new(OnceLock::new()),
            next: AtomicU64::new(0),
            done: AtomicU64::new(0),
            first_batch: u64::from(connections.max(1)),
            first_batch_timeouts: AtomicU64::new(0),
            stopped: Arc::new(AtomicBool::new(false)),
        }
    }

    fn start(&self) -> Instant {
        *self.started.get_or_init(Instant::now)
    }

    /// The next request this connection may send; `None` when the phase is over. The open
    /// model's requests come from `tickets`, the load thread's share of what was
    /// released.
    async fn claim(&self, tickets: &Tickets) -> Option<Claim> {
        if self.is_stopped() {
            return None;
        }
        let started = self.start();
        let Some(schedule) = &self.schedule else {
            let go = match self.limit {
                Limit::Requests(n) => self.next.fetch_add(1, Ordering::Relaxed) < n,
                Limit::For(d) => started.elapsed() < d,
            };
            return go.then(|| Claim {
                counted_from: Instant::now(),
                released: None,
                late: false,
            });
        };
        let ticket = tickets.take_or_claim(schedule).await?;
        let now = Instant::now();
        let over =
            matches!(self.limit, Limit::For(d) if now.saturating_duration_since(started) >= d);
        if ticket.index >= schedule.total || self.is_stopped() || over {
            return None;
        }
        let intended = schedule.due(started, ticket.index);
        Some(Claim {
            counted_from: intended,
            released: Some(ticket.released),
            late: now.saturating_duration_since(intended) > LATE_TOLERANCE,
        })
    }

    /// Counts a finished request; stops the phase when the whole first batch timed out.
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

/// Sends the warm-up, then the measured load, to one endpoint. Fails only when the load
/// cannot start (an unusable URL, no thread or runtime to run on).
pub async fn measure_endpoint(
    url: &Url,
    endpoint: &EndpointPlan,
    load: &LoadSettings,
    show_progress: bool,
) -> anyhow::Result<EndpointMeasurement> {
    let destination = Destination::new(url, load.timeout())?;
    let concurrency = load.concurrency.max(1);
    let threads = std::thread::available_parallelism()
        .map_or(1, |n| n.get())
        .min(concurrency as usize);
    // Connections are dealt round-robin: thread t drives t, t + threads, ...
    let per_thread: Vec<usize> = (0..threads)
        .map(|thread| (thread..concurrency as usize).step_by(threads).count())
        .collect();
    let warmup = Arc::new(Phase::new(
        endpoint,
        Limit::Requests(load.warmup),
        concurrency,
    ));
    let mut measured = Phase::new(
        endpoint,
        match (load.requests, load.duration_ms) {
            (Some(n), _) => Limit::Requests(n),
            (None, Some(ms)) => Limit::For(Duration::from_millis(ms)),
            (None, None) => Limit::Requests(0),
        },
        concurrency,
    );
    if let Some(rate) = load.rate {
        let total = match measured.limit {
            Limit::Requests(n) => n,
            Limit::For(d) => (d.as_secs_f64() * rate).ceil() as u64,
        };
        measured.schedule = Some(Arc::new(Schedule::new(rate, total, threads)));
    }
    let measured = Arc::new(measured);
    // Every load thread and the pacer (if any) pass this gate together once the warm-up is
    // over.
    let pacer = measured.schedule.as_ref().filter(|s| s.needs_pacer());
    let gate = Arc::new(Barrier::new(threads + usize::from(pacer.is_some())));
    if let Some(schedule) = pacer {
        pacer::spawn(
            Arc::clone(schedule),
            Arc::clone(&measured.started),
            Arc::clone(&gate),
            Arc::clone(&measured.stopped),
        )
        .context("starting the load generator's pacer thread")?;
    }
    let mut results = Vec::new();
    for (thread, &connections) in per_thread.iter().enumerate() {
        let (tx, rx) = tokio::sync::oneshot::channel();
        let (destination, warmup, measured, gate) = (
            destination.clone(),
            Arc::clone(&warmup),
            Arc::clone(&measured),
            Arc::clone(&gate),
        );
        std::thread::Builder::new()
            .name(format!("load-{thread}"))
            .spawn(move || {
                let result = load_thread(
                    &destination,
                    (thread, threads),
                    connections,
                    &warmup,
                    &measured,
                    &gate,
                );
                let _ = tx.send(result);
            })
            .context("starting a load generator thread")?;
        results.push(rx);
    }
    let bar = show_progress.then(|| progress_bar(&endpoint.name, load));
    let ticker = bar.clone().map(|bar| {
        let measured = Arc::clone(&measured);
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(Duration::from_millis(100));
            loop {
                tick.tick().await;
                bar.set_position(measured.done.load(Ordering::Relaxed));
            }
        })
    });
    let mut warm = EndpointMeasurement::default();
    let mut total = EndpointMeasurement::default();
    let mut ended = None::<Instant>;
    let mut failure = None;
    for rx in results {
        // A thread only drops its result on a bug; its counts are lost, the others still stand.
        match rx.await {
            Ok(Ok(part)) => {
                warm.merge(&part.warmup);
                total.merge(&part.measured);
                ended = ended.max(Some(part.ended));
            }
            Ok(Err(error)) => failure = Some(error),
            Err(_) => {}
        }
    }
    if let Some(ticker) = ticker {
        ticker.abort();
    }
    if let Some(bar) = bar {
        bar.finish_and_clear();
    }
    if let Some(error) = failure {
        return Err(error);
    }
    if warmup.is_stopped() {
        // Nothing answers: the warm-up's timeouts are the whole measurement.
        warm.elapsed = warmup
            .started
            .get()
            .zip(ended)
            .map_or(Duration::ZERO, |(s, e)| e.saturating_duration_since(*s));
        warm.first_batch_timed_out = true;
        return Ok(warm);
    }
    let started = measured.started.get().copied();
    total.elapsed = started
        .zip(ended)
        .map_or(Duration::ZERO, |(s, e)| e.saturating_duration_since(s));
    total.first_batch_timed_out = measured.is_stopped();
    if let Some(schedule) = &measured.schedule {
        total.scheduled = schedule.total;
        total.late += schedule.total.saturating_sub(total.sent());
    }
    Ok(total)
}

/// What one load thread counted.
struct ThreadTally {
    warmup: EndpointMeasurement,
    measured: EndpointMeasurement,
    ended: Instant,
}

/// One load thread: its own single-threaded runtime, `connections` connections, the warm-up,
/// the start gate, the measured part. Always passes the gate, even when it cannot run, so the
/// other threads are never left waiting.
fn load_thread(
    destination: &Destination,
    thread: (usize, usize),
    connections: usize,
    warmup: &Arc<Phase>,
    measured: &Arc<Phase>,
    gate: &Barrier,
) -> anyhow::Result<ThreadTally> {
    let prepared = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("starting a load generator runtime")
        .and_then(|runtime| {
            let connections = (0..connections)
                .map(|_| destination.connection())
                .collect::<anyhow::Result<Vec<_>>>()?;
            Ok((runtime, connections))
        });
    let (runtime, connections) = match prepared {
        Ok(prepared) => prepared,
        Err(error) => {
            measured.stopped.store(true, Ordering::Relaxed);
            gate.wait();
            return Err(error);
        }
    };
    let (connections, warm) = runtime.block_on(run_phase(connections, warmup, thread));
    if warmup.is_stopped() {
        measured.stopped.store(true, Ordering::Relaxed);
    }
    gate.wait();
    let (_, tally) = runtime.block_on(run_phase(connections, measured, thread));
    Ok(ThreadTally {
        warmup: warm,
        measured: tally,
        ended: Instant::now(),
    })
}

/// Runs every connection through one phase; hands the connections back for the next. In the
/// open model a dispatcher task turns what is released to this thread (`thread` of
/// `threads`) into tickets its connections take: it is woken once per batch, by the pacer or
/// by its own timer, and the connections are woken from inside the thread.
async fn run_phase(
    connections: Vec<Connection>,
    phase: &Arc<Phase>,
    (thread, threads): (usize, usize),
) -> (Vec<Connection>, EndpointMeasurement) {
    let tickets = Arc::new(Tickets::default());
    let count = connections.len();
    let dispatcher = phase.schedule.as_ref().map(|schedule| {
        let (schedule, tickets, phase) = (
            Arc::clone(schedule),
            Arc::clone(&tickets),
            Arc::clone(phase),
        );
        tokio::spawn(async move {
            if schedule.needs_pacer() {
                tickets.dispatch(&schedule, thread, count).await;
            } else {
                let started = phase.start();
                let deadline = match phase.limit {
                    Limit::For(duration) => Some(started + duration),
                    Limit::Requests(_) => None,
                };
                tickets
                    .release(
                        &schedule,
                        (started, deadline),
                        (thread, threads),
                        count,
                        &phase.stopped,
                    )
                    .await;
            }
        })
    });
    let mut tasks = JoinSet::new();
    for mut connection in connections {
        let (phase, tickets) = (Arc::clone(phase), Arc::clone(&tickets));
        tasks.spawn(async move {
            let tally = drive(&mut connection, &phase, &tickets).await;
            (connection, tally)
        });
    }
    let mut kept = Vec::new();
    let mut total = EndpointMeasurement::default();
    while let Some(joined) = tasks.join_next().await {
        if let Ok((connection, tally)) = joined {
            total.merge(&tally);
            kept.push(connection);
        }
    }
    if let Some(dispatcher) = dispatcher {
        dispatcher.abort();
    }
    (kept, total)
}

/// One connection's loop: claim a request, send it, count it.
async fn drive(
    connection: &mut Connection,
    phase: &Phase,
    tickets: &Tickets,
) -> EndpointMeasurement {
    let mut tally = EndpointMeasurement::default();
    while let Some(claim) = phase.claim(tickets).await {
        if claim.late {
            tally.late += 1;
        }
        let outcome = connection.send().await;
        let ended = Instant::now();
        phase.finished(&outcome);
        if let (Some(released), Outcome::Status(_)) = (claim.released, outcome) {
            tally
                .from_release
                .get_or_insert_with(LatencyHistogram::new)
                .record(ended.saturating_duration_since(released));
        }
        tally.record(
            outcome,
            ended.saturating_duration_since(claim.counted_from),
            &phase.endpoint,
        );
    }
    tally
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
