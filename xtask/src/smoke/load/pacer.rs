//! The open model's pacer: a dedicated thread that releases request `i` at `start + i / rate`.
//!
//! tokio's timer ticks in whole milliseconds, which at 500 req/s adds most of a millisecond to
//! every latency measured from the intended time. The pacer instead sleeps on the OS timer
//! (with the thread's timer slack cut to 1 ns on Linux) to just before the due time, spins the
//! last few microseconds at low rates, and hands each due request to whichever connection is
//! idle through a semaphore: one permit per due request. When it falls behind it releases
//! everything due at once; the connections then find those requests late.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use tokio::sync::Semaphore;

/// Sleep this much less than the wait, then spin to the due time.
const SPIN: Duration = Duration::from_micros(40);
/// Above this rate the gaps are too short to spin through without burning a core the service
/// needs; the pacer only sleeps (a few microseconds late at worst).
const SPIN_MAX_RATE: f64 = 5_000.0;
/// The longest single sleep, so a stopped run is noticed promptly.
const LONGEST_NAP: Duration = Duration::from_millis(20);

/// When each request of an open-model run is due, and the permits that release them.
#[derive(Debug)]
pub struct Schedule {
    /// Requests per second.
    pub rate: f64,
    /// Requests scheduled in all.
    pub total: u64,
    /// One permit per due request, plus one per connection at the end (to stop them).
    pub tickets: Semaphore,
}

impl Schedule {
    /// A schedule of `total` requests at `rate` per second.
    pub fn new(rate: f64, total: u64) -> Schedule {
        Schedule {
            rate,
            total,
            tickets: Semaphore::new(0),
        }
    }

    /// When request `index` is due.
    pub fn due(&self, started: Instant, index: u64) -> Instant {
        started + Duration::from_secs_f64(index as f64 / self.rate)
    }
}

/// Releases the schedule's requests on time from `started`, then one permit per connection so
/// that each finds the schedule exhausted. Returns early when `stopped` is set.
pub fn run(schedule: &Schedule, started: Instant, connections: usize, stopped: &AtomicBool) {
    finer_timer();
    let spin = if schedule.rate <= SPIN_MAX_RATE {
        SPIN
    } else {
        Duration::ZERO
    };
    let mut released = 0u64;
    while released < schedule.total && !stopped.load(Ordering::Relaxed) {
        let now = Instant::now();
        let elapsed = now.saturating_duration_since(started).as_secs_f64();
        let due = ((elapsed * schedule.rate) as u64)
            .saturating_add(1)
            .min(schedule.total);
        if due > released {
            schedule
                .tickets
                .add_permits(usize::try_from(due - released).unwrap_or(usize::MAX));
            released = due;
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
    schedule.tickets.add_permits(connections);
}

/// Starts the pacer on its own thread.
pub fn spawn(
    schedule: Arc<Schedule>,
    started: Arc<std::sync::OnceLock<Instant>>,
    gate: Arc<std::sync::Barrier>,
    connections: usize,
    stopped: Arc<AtomicBool>,
) -> std::io::Result<std::thread::JoinHandle<()>> {
    std::thread::Builder::new()
        .name("load-pacer".into())
        .spawn(move || {
            gate.wait();
            let started = *started.get_or_init(Instant::now);
            run(&schedule, started, connections, &stopped);
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
