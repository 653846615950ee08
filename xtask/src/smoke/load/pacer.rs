//! The open model's pacer: a dedicated thread that releases request `i` at `start + i / rate`.
//!
//! tokio's timer ticks in whole milliseconds, which at 500 req/s adds most of a millisecond to
//! every latency measured from the intended time. The pacer instead sleeps on the OS timer
//! (with the thread's timer slack cut to 1 ns on Linux) to just before the due time, spins the
//! last few microseconds at low rates, and deals the due requests round-robin to the load
//! threads: each thread has a share the pacer adds to and rings once per deal, and a dispatcher
//! task that turns the share into tickets its idle connections take, so a connection is woken
//! from inside its own thread. Above [`SPIN_MAX_RATE`] the pacer deals in batches (see
//! [`BATCH_INTERVAL`]). When it falls behind it deals everything due at once; the connections
//! then find those requests late.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use tokio::sync::{Notify, Semaphore};

/// Sleep this much less than the wait, then spin to the due time.
const SPIN: Duration = Duration::from_micros(40);
/// Above this rate the gaps are too short to spin through without burning a core the service
/// needs; the pacer only sleeps (a few microseconds late at worst).
const SPIN_MAX_RATE: f64 = 5_000.0;
/// Above [`SPIN_MAX_RATE`] the gap between requests is shorter than a wake-up costs, so the
/// pacer deals what came due at most this often: a request waits at most that long past its
/// intended time (latency counts from the intended time, so the wait is in every figure, never
/// hidden). Up to that rate every request is dealt on its own, on time to the microsecond.
/// Measured at
/// 15,000 req/s on 2 cores (5 s runs against oha in the same minute): dealing every request
/// on its own cost 5.3-5.5 s of client CPU per 100k requests, every 100 µs 4.6-4.7 s, every
/// 250 µs 3.4-3.6 s, every 500 µs 2.6-2.8 s (oha: 2.1-2.3 s), the wake-ups of the pacer and of
/// the load threads being most of the difference.
const BATCH_INTERVAL: Duration = Duration::from_micros(500);
/// The longest single sleep, so a stopped run is noticed promptly.
const LONGEST_NAP: Duration = Duration::from_millis(20);

/// When each request of an open-model run is due, and the shares that release them to the
/// load threads.
#[derive(Debug)]
pub struct Schedule {
    /// Requests per second.
    pub rate: f64,
    /// Requests scheduled in all.
    pub total: u64,
    /// One per load thread.
    shares: Vec<Share>,
}

/// What the pacer dealt one load thread and not yet handed over: requests due, whether the
/// schedule is over, and the bell that wakes the thread's dispatcher. One wake-up per thread
/// per batch, however many requests the batch holds.
#[derive(Debug, Default)]
pub struct Share {
    pending: AtomicU64,
    finished: AtomicBool,
    bell: Notify,
}

impl Share {
    /// Waits until the pacer dealt this thread requests or ended the schedule; returns the
    /// requests and whether the schedule is over.
    async fn take(&self) -> (u64, bool) {
        loop {
            // `finished` first: once it reads true, every request dealt before it is in
            // `pending` for the swap that follows.
            let finished = self.finished.load(Ordering::Acquire);
            let pending = self.pending.swap(0, Ordering::AcqRel);
            if pending > 0 || finished {
                return (pending, finished);
            }
            self.bell.notified().await;
        }
    }

    fn deal(&self, n: u64) {
        if n > 0 {
            self.pending.fetch_add(n, Ordering::Release);
            // Stores a wake-up when the dispatcher is not waiting yet: none is lost.
            self.bell.notify_one();
        }
    }

    fn finish(&self) {
        self.finished.store(true, Ordering::Release);
        self.bell.notify_one();
    }
}

/// One load thread's tickets: its share of the due requests, turned into permits its
/// connections take, then one stop per connection once the schedule is over. The thread's
/// requests are counted apart from its stops, so a connection never takes a stop as a
/// request while another thread still holds requests of the schedule.
#[derive(Debug)]
pub struct Tickets {
    permits: Semaphore,
    requests: AtomicU64,
    taken: AtomicU64,
}

impl Default for Tickets {
    fn default() -> Self {
        Tickets {
            permits: Semaphore::new(0),
            requests: AtomicU64::new(0),
            taken: AtomicU64::new(0),
        }
    }
}

impl Tickets {
    /// Waits for a ticket: `true` for a request to send, `false` to stop.
    pub async fn take(&self) -> bool {
        let Ok(permit) = self.permits.acquire().await else {
            return false;
        };
        permit.forget();
        // Request permits are added after their count, stops only after the last request:
        // the k-th ticket taken is a request exactly when k is within the count.
        self.taken.fetch_add(1, Ordering::Relaxed) < self.requests.load(Ordering::Acquire)
    }

    /// Turns what the pacer deals `thread` into tickets until the schedule is over, then
    /// adds one stop for each of the thread's `connections`.
    pub async fn dispatch(&self, schedule: &Schedule, thread: usize, connections: usize) {
        let share = &schedule.shares[thread];
        loop {
            let (requests, finished) = share.take().await;
            self.requests.fetch_add(requests, Ordering::Release);
            self.permits
                .add_permits(usize::try_from(requests).unwrap_or(Semaphore::MAX_PERMITS));
            if finished {
                self.permits.add_permits(connections);
                return;
            }
        }
    }
}

impl Schedule {
    /// A schedule of `total` requests at `rate` per second, dealt to `threads` load threads.
    pub fn new(rate: f64, total: u64, threads: usize) -> Schedule {
        Schedule {
            rate,
            total,
            shares: (0..threads).map(|_| Share::default()).collect(),
        }
    }

    /// When request `index` is due.
    pub fn due(&self, started: Instant, index: u64) -> Instant {
        started + Duration::from_secs_f64(index as f64 / self.rate)
    }

    /// Deals `n` due requests round-robin from `*next`: each thread gets `n / threads`, and the
    /// first `n % threads` from the cursor one more (the cursor moves past them).
    fn deal(&self, n: u64, next: &mut usize) {
        let threads = self.shares.len();
        if threads == 0 {
            return;
        }
        let (each, extra) = (n / threads as u64, (n % threads as u64) as usize);
        for offset in 0..threads {
            let thread = (*next + offset) % threads;
            self.shares[thread].deal(each + u64::from(offset < extra));
        }
        *next = (*next + extra) % threads;
    }
}

/// Releases the schedule's requests on time from `started`, then tells every load thread the
/// schedule is over. Returns early when `stopped` is set.
pub fn run(schedule: &Schedule, started: Instant, stopped: &AtomicBool) {
    finer_timer();
    // Low rates: on time to the microsecond (spin the last few). High rates: in batches.
    let (spin, batch) = if schedule.rate <= SPIN_MAX_RATE {
        (SPIN, Duration::ZERO)
    } else {
        (Duration::ZERO, BATCH_INTERVAL)
    };
    let mut released = 0u64;
    let mut cursor = 0;
    while released < schedule.total && !stopped.load(Ordering::Relaxed) {
        let now = Instant::now();
        let elapsed = now.saturating_duration_since(started).as_secs_f64();
        let due = ((elapsed * schedule.rate) as u64)
            .saturating_add(1)
            .min(schedule.total);
        if due > released {
            schedule.deal(due - released, &mut cursor);
            released = due;
            if !batch.is_zero() {
                std::thread::sleep(batch);
            }
            continue;
        }
        let next = schedule.due(started, released);
        let wait = next.saturating_duration_since(now);
        if wait > spin {
            std::thread::sleep((wait - spin).min(LONGEST_NAP));
        } else {
            while Instant::now() < next {
                std::hint::spin_loop();
            }
        }
    }
    for share in &schedule.shares {
        share.finish();
    }
}

/// Starts the pacer on its own thread.
pub fn spawn(
    schedule: Arc<Schedule>,
    started: Arc<std::sync::OnceLock<Instant>>,
    gate: Arc<std::sync::Barrier>,
    stopped: Arc<AtomicBool>,
) -> std::io::Result<std::thread::JoinHandle<()>> {
    std::thread::Builder::new()
        .name("load-pacer".into())
        .spawn(move || {
            gate.wait();
            let started = *started.get_or_init(Instant::now);
            run(&schedule, started, &stopped);
        })
}

/// Asks the kernel to wake this thread's sleeps on time instead of grouping them (the default
/// slack is 50 µs).
fn finer_timer() {
    #[cfg(target_os = "linux")]
    // SAFETY: PR_SET_TIMERSLACK takes one integer argument and only affects this thread.
    unsafe {
        libc::prctl(libc::PR_SET_TIMERSLACK, 1 as libc::c_ulong);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pending(schedule: &Schedule) -> Vec<u64> {
        schedule
            .shares
            .iter()
            .map(|s| s.pending.swap(0, Ordering::Acquire))
            .collect()
    }

    #[test]
    fn batches_are_dealt_round_robin_and_the_remainder_rotates() {
        let schedule = Schedule::new(20_000.0, 100, 3);
        let mut cursor = 0;
        schedule.deal(7, &mut cursor);
        assert_eq!(pending(&schedule), [3, 2, 2]);
        schedule.deal(1, &mut cursor);
        assert_eq!(pending(&schedule), [0, 1, 0]);
        schedule.deal(2, &mut cursor);
        assert_eq!(pending(&schedule), [1, 0, 1]);
    }

    #[tokio::test]
    async fn a_deal_before_the_dispatcher_waits_is_not_lost() {
        let schedule = Schedule::new(10.0, 10, 1);
        schedule.shares[0].deal(2);
        schedule.shares[0].deal(3);
        assert_eq!(schedule.shares[0].take().await, (5, false));
        // Nothing more was dealt: the stored wake-up does not invent a request.
        let more = tokio::time::timeout(Duration::from_millis(50), schedule.shares[0].take()).await;
        assert!(more.is_err());
        schedule.shares[0].deal(1);
        schedule.shares[0].finish();
        assert_eq!(schedule.shares[0].take().await, (1, true));
    }

    #[test]
    fn the_whole_schedule_is_dealt_then_every_thread_is_told_it_is_over() {
        let schedule = Schedule::new(1_000_000.0, 500, 2);
        run(&schedule, Instant::now(), &AtomicBool::new(false));
        assert!(
            schedule
                .shares
                .iter()
                .all(|s| s.finished.load(Ordering::Acquire))
        );
        let shares = pending(&schedule);
        assert_eq!(shares.iter().sum::<u64>(), 500);
        assert!(shares[0].abs_diff(shares[1]) <= 1, "{shares:?}");
    }

    #[tokio::test]
    async fn a_thread_takes_its_own_requests_then_one_stop_per_connection() {
        // One thread was dealt 3 requests; its 2 connections take them, then stop, even
        // though other threads may still hold requests of the schedule.
        let schedule = Schedule::new(10.0, 10, 2);
        schedule.shares[0].deal(3);
        schedule.shares[0].finish();
        let tickets = Tickets::default();
        tickets.dispatch(&schedule, 0, 2).await;
        let mut taken = Vec::new();
        for _ in 0..5 {
            taken.push(tickets.take().await);
        }
        assert_eq!(taken, [true, true, true, false, false]);
        // Nothing is left: a sixth take would wait.
        let more = tokio::time::timeout(Duration::from_millis(20), tickets.take()).await;
        assert!(more.is_err());
    }
}
