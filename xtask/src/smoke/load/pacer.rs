//! The open model's release of requests: request `i` is due at `start + i / rate`.
//!
//! tokio's timer ticks in whole milliseconds, which at 500 req/s adds most of a millisecond to
//! every latency measured from the intended time. Up to [`SPIN_MAX_RATE`] a dedicated pacer
//! thread releases every request on its own: it sleeps on the OS timer (with the thread's
//! timer slack cut to 1 ns on Linux) to just before the due time, spins the last few
//! microseconds, and deals the request, stamped with the instant it was released, to the load
//! threads in turn (passing over one that has not taken its last batch yet): each thread has a
//! share the pacer adds batches to and rings once per batch, and a dispatcher task that turns
//! the share into tickets its idle connections take, so a connection is woken from inside its
//! own thread. When the pacer falls behind it deals everything due at once; the connections
//! then find those requests late.
//!
//! Above [`SPIN_MAX_RATE`] the gaps are shorter than a wake-up costs and requests are released
//! in batches (see [`BATCH_INTERVAL`]), and there is no pacer thread: each load thread's
//! dispatcher wakes on its own fine timer ([`super::ticker`]), staggered so that between them
//! the threads look every [`BATCH_INTERVAL`], and takes for its connections whatever came due
//! that no other thread took. One wake-up per batch, in the thread that sends it; a stalled
//! thread's requests are taken by the next thread to wake.

use std::collections::VecDeque;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant};

use tokio::sync::{Notify, Semaphore};

use super::ticker::Ticker;

/// Sleep this much less than the wait, then spin to the due time.
const SPIN: Duration = Duration::from_micros(40);
/// Above this rate the gaps are too short to spin through without burning a core the service
/// needs, and too short for a wake-up per request: the load threads release in batches.
const SPIN_MAX_RATE: f64 = 5_000.0;
/// Above [`SPIN_MAX_RATE`] the gap between requests is shorter than a wake-up costs, so what
/// came due is released at most this often: a request waits at most that long past its
/// intended time while the load threads run (latency counts from the intended time, so the
/// wait is in every figure, never hidden). Up to that rate every request is dealt on its own,
/// on time to the microsecond. Measured when the pacer thread still dealt the batches, at
/// 15,000 req/s on 2 cores (5 s runs against oha in the same minute): dealing every request
/// on its own cost 5.3-5.5 s of client CPU per 100k requests, every 100 µs 4.6-4.7 s, every
/// 250 µs 3.4-3.6 s, every 500 µs 2.6-2.8 s (oha: 2.1-2.3 s), the wake-ups of the pacer and of
/// the load threads being most of the difference. Then the load threads took over the pacing
/// (no pacer thread, no wake-up from one thread to another; each thread wakes every
/// `threads` intervals, staggered): see [`Tickets::release`].
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
    /// One per load thread (pacer thread only).
    shares: Vec<Share>,
    /// Without a pacer thread: how many requests, from the first, the load threads have
    /// taken between them.
    released: AtomicU64,
}

/// Requests `first..first + count` of the schedule, released together at `at`: the instant
/// the pacer woke and found them due.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Batch {
    first: u64,
    count: u64,
    at: Instant,
}

/// One request a connection may send: its index in the schedule (it is due at
/// [`Schedule::due`]) and when it was released to the load thread.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Ticket {
    /// Index in the schedule.
    pub index: u64,
    /// When it was released to the load thread (by the pacer or the thread itself).
    pub released: Instant,
}

/// What the pacer dealt one load thread and not yet handed over: batches released, whether
/// the schedule is over, and the bell that wakes the thread's dispatcher. One wake-up per
/// batch, however many requests it holds.
#[derive(Debug, Default)]
pub struct Share {
    batches: Mutex<VecDeque<Batch>>,
    finished: AtomicBool,
    bell: Notify,
}

impl Share {
    /// Waits until the pacer dealt this thread requests or ended the schedule; moves the
    /// batches into `into` and returns how many requests they hold and whether the schedule
    /// is over.
    async fn take(&self, into: &Mutex<VecDeque<Batch>>) -> (u64, bool) {
        loop {
            // `finished` first: once it reads true, every batch dealt before it is in
            // `batches` for the take that follows.
            let finished = self.finished.load(Ordering::Acquire);
            let taken = std::mem::take(&mut *lock(&self.batches));
            if !taken.is_empty() || finished {
                let requests = taken.iter().map(|b| b.count).sum();
                lock(into).extend(taken);
                return (requests, finished);
            }
            self.bell.notified().await;
        }
    }

    fn deal(&self, batch: Batch) {
        if batch.count > 0 {
            lock(&self.batches).push_back(batch);
            // Stores a wake-up when the dispatcher is not waiting yet: none is lost.
            self.bell.notify_one();
        }
    }

    fn finish(&self) {
        self.finished.store(true, Ordering::Release);
        self.bell.notify_one();
    }
}

/// One load thread's tickets: the batches its share was dealt, in order, with one permit per
/// request for its connections to take, then one stop per connection once the schedule is
/// over. Request permits are added only after their batch is queued and stops only after the
/// last batch, so a permit that finds the queue empty is a stop, even while another thread
/// still holds requests of the schedule.
#[derive(Debug)]
pub struct Tickets {
    permits: Semaphore,
    batches: Mutex<VecDeque<Batch>>,
}

impl Default for Tickets {
    fn default() -> Self {
        Tickets {
            permits: Semaphore::new(0),
            batches: Mutex::new(VecDeque::new()),
        }
    }
}

impl Tickets {
    /// Waits for a ticket: a request to send, or `None` to stop.
    pub async fn take(&self) -> Option<Ticket> {
        let permit = self.permits.acquire().await.ok()?;
        permit.forget();
        let mut batches = lock(&self.batches);
        let batch = batches.front_mut()?;
        let ticket = Ticket {
            index: batch.first,
            released: batch.at,
        };
        batch.first += 1;
        batch.count -= 1;
        if batch.count == 0 {
            batches.pop_front();
        }
        Some(ticket)
    }

    /// Turns what the pacer deals `thread` into tickets until the schedule is over, then
    /// adds one stop for each of the thread's `connections`.
    pub async fn dispatch(&self, schedule: &Schedule, thread: usize, connections: usize) {
        let share = &schedule.shares[thread];
        loop {
            let (requests, finished) = share.take(&self.batches).await;
            self.permits
                .add_permits(usize::try_from(requests).unwrap_or(Semaphore::MAX_PERMITS));
            if finished {
                self.permits.add_permits(connections);
                return;
            }
        }
    }

    /// Without a pacer thread: releases requests to this load thread's connections until the
    /// schedule is over or `stopped` is set, then adds one stop for each of its
    /// `connections`. Thread `thread` of `threads` wakes at `started + thread` intervals, then
    /// every `threads` intervals ([`BATCH_INTERVAL`]), so between them the threads look once
    /// per interval, and each wake-up takes, as one batch stamped with the instant it woke,
    /// every request due by then that no thread has taken: a thread kept off the CPU leaves
    /// its turn to the next one to wake, and nothing is released twice.
    pub async fn release(
        &self,
        schedule: &Schedule,
        started: Instant,
        (thread, threads): (usize, usize),
        connections: usize,
        stopped: &AtomicBool,
    ) {
        let threads = u32::try_from(threads.max(1)).unwrap_or(u32::MAX);
        let offset = u32::try_from(thread).unwrap_or(0) % threads;
        let mut ticker = Ticker::new(started + BATCH_INTERVAL * offset, BATCH_INTERVAL * threads);
        while !stopped.load(Ordering::Relaxed) {
            ticker.tick().await;
            let now = Instant::now();
            let due = schedule.due_by(started, now);
            let before = schedule.released.fetch_max(due, Ordering::AcqRel);
            if due > before {
                lock(&self.batches).push_back(Batch {
                    first: before,
                    count: due - before,
                    at: now,
                });
                self.permits
                    .add_permits(usize::try_from(due - before).unwrap_or(Semaphore::MAX_PERMITS));
            }
            if due.max(before) >= schedule.total {
                break;
            }
        }
        self.permits.add_permits(connections);
    }
}

/// A lock whose holder cannot leave the queue half-changed: a poisoned one is used as is.
fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}

impl Schedule {
    /// A schedule of `total` requests at `rate` per second, dealt to `threads` load threads.
    pub fn new(rate: f64, total: u64, threads: usize) -> Schedule {
        Schedule {
            rate,
            total,
            shares: (0..threads).map(|_| Share::default()).collect(),
            released: AtomicU64::new(0),
        }
    }

    /// Whether a pacer thread releases the requests ([`spawn`]); otherwise the load threads
    /// release them for themselves ([`Tickets::release`]).
    pub fn needs_pacer(&self) -> bool {
        self.rate <= SPIN_MAX_RATE
    }

    /// How many requests, from the first, are due at `now`.
    fn due_by(&self, started: Instant, now: Instant) -> u64 {
        let elapsed = now.saturating_duration_since(started).as_secs_f64();
        ((elapsed * self.rate) as u64)
            .saturating_add(1)
            .min(self.total)
    }

    /// When request `index` is due.
    pub fn due(&self, started: Instant, index: u64) -> Instant {
        started + Duration::from_secs_f64(index as f64 / self.rate)
    }

    /// Deals requests `first..first + n`, released at `at`, to one thread whole, and moves the
    /// cursor past it: one wake-up per batch, not one per thread. (Measured when the pacer
    /// still dealt the high rates too, at 15,000 req/s on 2 cores, `cargo xtask bench --only
    /// open`, 3 rounds of 5 s against oha: spreading each batch over both threads cost 1.23 /
    /// 1.24 / 1.30x oha's client CPU per request, whole batches in turn 0.87 / 1.06 / 1.13x.)
    ///
    /// The thread is the one at the cursor unless it has not yet taken what it was dealt
    /// before (it is not running: descheduled, or busy), then the next one that has; when
    /// none has, the one at the cursor. A batch waits for a stalled thread only when every
    /// thread is stalled.
    fn deal(&self, first: u64, n: u64, at: Instant, next: &mut usize) {
        let threads = self.shares.len();
        if threads == 0 || n == 0 {
            return;
        }
        let thread = (0..threads)
            .map(|offset| (*next + offset) % threads)
            .find(|&thread| lock(&self.shares[thread].batches).is_empty())
            .unwrap_or(*next % threads);
        self.shares[thread].deal(Batch {
            first,
            count: n,
            at,
        });
        *next = (thread + 1) % threads;
    }
}

/// The pacer thread's loop (up to [`SPIN_MAX_RATE`]): releases the schedule's requests on
/// time from `started`, then tells every load thread the schedule is over. Returns early when
/// `stopped` is set.
pub fn run(schedule: &Schedule, started: Instant, stopped: &AtomicBool) {
    finer_timer();
    let mut released = 0u64;
    let mut cursor = 0;
    while released < schedule.total && !stopped.load(Ordering::Relaxed) {
        let now = Instant::now();
        let due = schedule.due_by(started, now);
        if due > released {
            schedule.deal(released, due - released, now, &mut cursor);
            released = due;
            continue;
        }
        // On time to the microsecond: sleep to just before the due time, spin the rest.
        let next = schedule.due(started, released);
        let wait = next.saturating_duration_since(now);
        if wait > SPIN {
            std::thread::sleep((wait - SPIN).min(LONGEST_NAP));
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

    /// What each thread's share holds, as (first, count) per batch; emptied.
    fn dealt(schedule: &Schedule) -> Vec<Vec<(u64, u64)>> {
        schedule
            .shares
            .iter()
            .map(|s| {
                std::mem::take(&mut *lock(&s.batches))
                    .iter()
                    .map(|b| (b.first, b.count))
                    .collect()
            })
            .collect()
    }

    #[test]
    fn batches_go_whole_to_the_threads_in_turn() {
        let schedule = Schedule::new(20_000.0, 100, 3);
        let at = Instant::now();
        let mut cursor = 0;
        let mut each = Vec::new();
        for (first, n) in [(0, 7), (7, 1), (8, 2), (10, 4)] {
            schedule.deal(first, n, at, &mut cursor);
            each.push(dealt(&schedule));
        }
        assert_eq!(
            each,
            [
                [vec![(0, 7)], vec![], vec![]],
                [vec![], vec![(7, 1)], vec![]],
                [vec![], vec![], vec![(8, 2)]],
                [vec![(10, 4)], vec![], vec![]],
            ]
        );
        // Nothing due, nothing dealt, and the cursor stays.
        schedule.deal(14, 0, at, &mut cursor);
        assert_eq!(cursor, 1);
        assert_eq!(dealt(&schedule), [vec![], vec![], vec![]]);
    }

    #[test]
    fn a_thread_that_has_not_taken_its_last_batch_is_passed_over() {
        let schedule = Schedule::new(20_000.0, 100, 3);
        let at = Instant::now();
        let mut cursor = 0;
        // Thread 0 takes nothing: the next batches go to 1 and 2, which take theirs.
        schedule.deal(0, 5, at, &mut cursor);
        schedule.deal(5, 5, at, &mut cursor);
        let _ = std::mem::take(&mut *lock(&schedule.shares[1].batches));
        schedule.deal(10, 5, at, &mut cursor);
        let _ = std::mem::take(&mut *lock(&schedule.shares[2].batches));
        // The cursor is back at 0, still stalled: 1 gets it.
        schedule.deal(15, 5, at, &mut cursor);
        assert_eq!(dealt(&schedule), [vec![(0, 5)], vec![(15, 5)], vec![]]);
        // With the cursor at 2, the next three go to 2, 0 and 1; then every thread is
        // stalled, and the one at the cursor gets the batch: none is lost.
        schedule.deal(20, 1, at, &mut cursor);
        schedule.deal(21, 1, at, &mut cursor);
        schedule.deal(22, 1, at, &mut cursor);
        schedule.deal(23, 1, at, &mut cursor);
        assert_eq!(
            dealt(&schedule),
            [vec![(21, 1)], vec![(22, 1)], vec![(20, 1), (23, 1)]]
        );
    }

    #[tokio::test]
    async fn a_deal_before_the_dispatcher_waits_is_not_lost() {
        let schedule = Schedule::new(10.0, 10, 1);
        let (at, queue) = (Instant::now(), Mutex::new(VecDeque::new()));
        let share = &schedule.shares[0];
        share.deal(Batch {
            first: 0,
            count: 2,
            at,
        });
        share.deal(Batch {
            first: 2,
            count: 3,
            at,
        });
        assert_eq!(share.take(&queue).await, (5, false));
        assert_eq!(lock(&queue).len(), 2);
        // Nothing more was dealt: the stored wake-up does not invent a request.
        let more = tokio::time::timeout(Duration::from_millis(50), share.take(&queue)).await;
        assert!(more.is_err());
        share.deal(Batch {
            first: 5,
            count: 1,
            at,
        });
        share.finish();
        assert_eq!(share.take(&queue).await, (1, true));
        assert_eq!(lock(&queue).len(), 3);
    }

    #[test]
    fn the_whole_schedule_is_dealt_in_order_then_every_thread_is_told_it_is_over() {
        // The pacer's highest rate: 100 requests in 20 ms.
        let schedule = Schedule::new(SPIN_MAX_RATE, 100, 2);
        assert!(schedule.needs_pacer());
        let started = Instant::now();
        run(&schedule, started, &AtomicBool::new(false));
        assert!(
            schedule
                .shares
                .iter()
                .all(|s| s.finished.load(Ordering::Acquire))
        );
        let mut batches: Vec<Batch> = schedule
            .shares
            .iter()
            .flat_map(|s| std::mem::take(&mut *lock(&s.batches)))
            .collect();
        batches.sort_by_key(|b| b.first);
        // Every request exactly once, each released no earlier than it was due, and the
        // batches released in the order of their requests.
        let mut next = 0;
        for pair in batches.windows(2) {
            assert!(pair[0].at <= pair[1].at, "{pair:?}");
        }
        for batch in &batches {
            assert_eq!(batch.first, next, "{batches:?}");
            assert!(batch.at >= schedule.due(started, batch.first + batch.count - 1));
            next += batch.count;
        }
        assert_eq!(next, 100);
    }

    #[tokio::test]
    async fn a_thread_takes_its_own_requests_with_their_release_then_one_stop_per_connection() {
        // One thread was dealt requests 4-5 and 9 in two batches; its 2 connections take them,
        // then stop, even though other threads may still hold requests of the schedule.
        let schedule = Schedule::new(10.0, 10, 2);
        let early = Instant::now();
        let late = early + Duration::from_millis(3);
        schedule.shares[0].deal(Batch {
            first: 4,
            count: 2,
            at: early,
        });
        schedule.shares[0].deal(Batch {
            first: 9,
            count: 1,
            at: late,
        });
        schedule.shares[0].finish();
        let tickets = Tickets::default();
        tickets.dispatch(&schedule, 0, 2).await;
        let mut taken = Vec::new();
        for _ in 0..5 {
            taken.push(tickets.take().await);
        }
        let ticket = |index, released| Some(Ticket { index, released });
        assert_eq!(
            taken,
            [
                ticket(4, early),
                ticket(5, early),
                ticket(9, late),
                None,
                None
            ]
        );
        // Nothing is left: a sixth take would wait.
        let more = tokio::time::timeout(Duration::from_millis(20), tickets.take()).await;
        assert!(more.is_err());
    }

    /// Every batch a load thread released for itself, and the permits it added.
    fn released(tickets: &Tickets) -> (Vec<Batch>, usize) {
        (
            lock(&tickets.batches).iter().copied().collect(),
            tickets.permits.available_permits(),
        )
    }

    /// The batches of several threads together cover the schedule exactly once, each
    /// released no earlier than its last request was due.
    fn covers_once(schedule: &Schedule, started: Instant, batches: &mut [Batch]) {
        batches.sort_by_key(|b| b.first);
        let mut next = 0;
        for batch in batches.iter() {
            assert_eq!(batch.first, next, "{batches:?}");
            assert!(batch.count > 0);
            assert!(batch.at >= schedule.due(started, batch.first + batch.count - 1));
            next += batch.count;
        }
        assert_eq!(next, schedule.total, "{batches:?}");
    }

    #[tokio::test]
    async fn the_load_threads_release_the_schedule_between_them_once_then_stop_their_connections() {
        // 20,000 requests in 200 ms, above the pacer's rates: no pacer thread.
        let schedule = Schedule::new(100_000.0, 20_000, 2);
        assert!(!schedule.needs_pacer());
        let (started, stopped) = (Instant::now(), AtomicBool::new(false));
        let (first, second) = (Tickets::default(), Tickets::default());
        tokio::join!(
            first.release(&schedule, started, (0, 2), 3, &stopped),
            second.release(&schedule, started, (1, 2), 5, &stopped),
        );
        let ((mut batches, first_permits), (theirs, second_permits)) =
            (released(&first), released(&second));
        // Each thread has one permit per request it took, then one stop per connection.
        let requests = |b: &[Batch]| b.iter().map(|b| b.count).sum::<u64>() as usize;
        assert_eq!(first_permits, requests(&batches) + 3);
        assert_eq!(second_permits, requests(&theirs) + 5);
        // Both woke in turn and took their part; within a thread, in order.
        assert!(
            !batches.is_empty() && !theirs.is_empty(),
            "{batches:?} {theirs:?}"
        );
        for own in [&batches, &theirs] {
            assert!(own.windows(2).all(|p| p[0].first < p[1].first), "{own:?}");
        }
        batches.extend(theirs);
        covers_once(&schedule, started, &mut batches);
    }

    #[tokio::test]
    async fn a_thread_kept_off_the_cpu_leaves_its_turn_to_the_next_one_to_wake() {
        // Thread 0 of 2 never runs: thread 1 releases the whole schedule, its own turns and
        // the other's.
        let schedule = Schedule::new(100_000.0, 1_000, 2);
        let (started, stopped) = (Instant::now(), AtomicBool::new(false));
        let tickets = Tickets::default();
        tickets
            .release(&schedule, started, (1, 2), 2, &stopped)
            .await;
        let (mut batches, permits) = released(&tickets);
        assert_eq!(permits, 1_000 + 2);
        covers_once(&schedule, started, &mut batches);
    }

    #[tokio::test]
    async fn a_stopped_phase_releases_nothing_more_and_stops_every_connection() {
        let schedule = Schedule::new(100_000.0, 1_000_000, 2);
        let tickets = Tickets::default();
        let stopped = AtomicBool::new(true);
        tickets
            .release(&schedule, Instant::now(), (0, 2), 4, &stopped)
            .await;
        let (batches, permits) = released(&tickets);
        assert!(batches.is_empty(), "{batches:?}");
        assert_eq!(permits, 4);
        for _ in 0..4 {
            assert_eq!(tickets.take().await, None);
        }
    }
}
