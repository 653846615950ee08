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
//! that no other thread took, up to one queued per connection. One wake-up per batch, in the
//! thread that sends it; what a stalled thread, or one whose connections fall behind, leaves
//! is taken by the next look with room or by a connection that comes free.

use std::collections::VecDeque;
use std::sync::atomic::{AtomicBool, Ordering};
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
    /// Without a pacer thread: what the load threads have taken between them.
    taken: Mutex<Taken>,
    /// Whether a look left requests it found due untaken: read without the lock by every
    /// connection that comes free, so that none takes the lock when nothing is left.
    left: AtomicBool,
}

/// Without a pacer thread: how many requests, from the first, the load threads have taken
/// between them, and the looks that found requests due that are not all taken yet.
#[derive(Debug, Default)]
struct Taken {
    count: u64,
    /// Oldest first: the due count each look saw, and when. A request is released at the
    /// first look that found it due, whoever takes it and whenever.
    looks: VecDeque<(u64, Instant)>,
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
    async fn take(&self) -> Option<Ticket> {
        let permit = self.permits.acquire().await.ok()?;
        permit.forget();
        self.pop()
    }

    /// A ticket: a request to send, or `None` to stop. At once when one is at hand (this
    /// thread's own, else one a look found due and left for want of room, so a connection
    /// that comes free never idles while released work waits), otherwise the next one this
    /// thread is given. With a pacer thread nothing is ever left: only the thread's own.
    pub async fn take_or_claim(&self, schedule: &Schedule) -> Option<Ticket> {
        if let Ok(permit) = self.permits.try_acquire() {
            permit.forget();
            return self.pop();
        }
        let mut claimed = None;
        if schedule.left.load(Ordering::Relaxed) {
            schedule.take_due(None, 1, |batch| {
                claimed = Some(Ticket {
                    index: batch.first,
                    released: batch.at,
                });
            });
        }
        match claimed {
            Some(ticket) => Some(ticket),
            None => self.take().await,
        }
    }

    /// The next ticket of this thread's queue for a permit just taken; `None` (a stop) when
    /// the queue is empty.
    fn pop(&self) -> Option<Ticket> {
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
    /// whole schedule is taken, `deadline` has passed or `stopped` is set, then adds one stop
    /// for each of its `connections`. Thread `thread` of `threads` wakes at `started + thread`
    /// intervals, then every `threads` intervals ([`BATCH_INTERVAL`]), so between them the
    /// threads look once per interval. Each look takes, in order, the requests due by then
    /// that no thread has taken, as many as leave at most one queued per connection of this
    /// thread: a thread kept off the CPU, or whose connections fall behind, leaves the rest to
    /// the next look or to a connection that comes free ([`Tickets::take_or_claim`]), so a
    /// thread with fewer connections never gathers a queue the others could send, and
    /// nothing is released twice.
    pub async fn release(
        &self,
        schedule: &Schedule,
        (started, deadline): (Instant, Option<Instant>),
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
            if deadline.is_some_and(|deadline| now >= deadline) {
                break;
            }
            let room = connections.saturating_sub(self.permits.available_permits());
            let mut added = 0;
            let mut batches = lock(&self.batches);
            let all_taken = schedule.take_due(Some((started, now)), room as u64, |batch| {
                added += batch.count;
                batches.push_back(batch);
            });
            drop(batches);
            self.permits
                .add_permits(usize::try_from(added).unwrap_or(Semaphore::MAX_PERMITS));
            if all_taken {
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
            taken: Mutex::default(),
            left: AtomicBool::new(false),
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

    /// Without a pacer thread: takes up to `room` requests that no thread has taken, in
    /// order, handing them to `out` as batches, each stamped with the look that first found
    /// its requests due (its release). A `look` (a load thread's tick at `now`) first records
    /// what is due, so requests it leaves for want of room keep it as their release. Without
    /// a look (a connection that came free between ticks) only requests a look already found
    /// due are taken: what came due since waits for the next look, so requests still go out
    /// in batches, one wake-up each. Returns whether the whole schedule is taken.
    fn take_due(
        &self,
        look: Option<(Instant, Instant)>,
        room: u64,
        mut out: impl FnMut(Batch),
    ) -> bool {
        let mut taken = lock(&self.taken);
        if let Some((started, now)) = look {
            let due = self.due_by(started, now);
            if taken.count < due && taken.looks.back().is_none_or(|&(seen, _)| seen < due) {
                taken.looks.push_back((due, now));
            }
        }
        let seen = taken.looks.back().map_or(taken.count, |&(seen, _)| seen);
        let end = seen.min(taken.count.saturating_add(room));
        let mut first = taken.count;
        for &(seen, at) in &taken.looks {
            if first >= end {
                break;
            }
            if seen > first {
                let last = seen.min(end);
                out(Batch {
                    first,
                    count: last - first,
                    at,
                });
                first = last;
            }
        }
        taken.count = taken.count.max(end);
        let count = taken.count;
        while taken.looks.front().is_some_and(|&(seen, _)| seen <= count) {
            taken.looks.pop_front();
        }
        self.left.store(!taken.looks.is_empty(), Ordering::Relaxed);
        count >= self.total
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

    #[test]
    fn looks_take_what_they_have_room_for_and_leave_the_rest_stamped_with_their_release() {
        // 1 request per ms, 12 in all: at 4.5 ms requests 0-4 are due.
        let schedule = Schedule::new(1_000.0, 12, 2);
        let started = Instant::now();
        let at = |us: u64| started + Duration::from_micros(us);
        let take = |look: Option<u64>, room| {
            let mut batches = Vec::new();
            let all = schedule.take_due(look.map(|us| (started, at(us))), room, |b| {
                batches.push((b.first, b.count, b.at));
            });
            (batches, all)
        };
        // A look with room for 2 of the 5 due takes 0-1.
        assert_eq!(take(Some(4_500), 2), (vec![(0, 2, at(4_500))], false));
        // The next look finds 0-6 due: 2-4 keep the first look's release, 5-6 get its own.
        assert_eq!(
            take(Some(6_500), 10),
            (vec![(2, 3, at(4_500)), (5, 2, at(6_500))], false)
        );
        // A connection come free between looks finds nothing a look left: what came due
        // since waits for the next look.
        assert_eq!(take(None, 1), (vec![], false));
        // A look without room takes nothing but is the release of what it found due, which a
        // connection come free then takes, as much as it has room for.
        assert_eq!(take(Some(10_100), 0), (vec![], false));
        assert_eq!(take(None, 1), (vec![(7, 1, at(10_100))], false));
        assert_eq!(take(None, 0), (vec![], false));
        // The last look takes the rest and says the schedule is all taken.
        assert_eq!(
            take(Some(20_000), 100),
            (vec![(8, 3, at(10_100)), (11, 1, at(20_000))], true)
        );
        assert_eq!(take(Some(21_000), 100), (vec![], true));
        assert_eq!(take(None, 1), (vec![], true));
    }

    /// Runs `connections` connections per load thread (each taking tickets until told to
    /// stop, yielding between them as a request would) beside the releases of the `running`
    /// threads, all on this runtime; the tickets each thread's connections took.
    async fn run_threads(
        schedule: &Arc<Schedule>,
        connections: &[usize],
        running: &[usize],
    ) -> Vec<Vec<Ticket>> {
        let started = Instant::now();
        let threads = connections.len();
        let stopped = Arc::new(AtomicBool::new(false));
        let mut tasks = tokio::task::JoinSet::new();
        for &thread in running {
            let tickets = Arc::new(Tickets::default());
            let (shared, stopped, mine) = (schedule.clone(), stopped.clone(), tickets.clone());
            let count = connections[thread];
            tasks.spawn(async move {
                mine.release(&shared, (started, None), (thread, threads), count, &stopped)
                    .await;
                (thread, Vec::new())
            });
            for _ in 0..count {
                let (schedule, tickets) = (schedule.clone(), tickets.clone());
                tasks.spawn(async move {
                    let mut took = Vec::new();
                    while let Some(ticket) = tickets.take_or_claim(&schedule).await {
                        assert!(ticket.released >= schedule.due(started, ticket.index));
                        took.push(ticket);
                        tokio::task::yield_now().await;
                    }
                    (thread, took)
                });
            }
        }
        let mut each = vec![Vec::new(); threads];
        while let Some(joined) = tasks.join_next().await {
            let (thread, took) = joined.expect("a connection or release task panicked");
            each[thread].extend(took);
        }
        each
    }

    /// Every request of the schedule taken exactly once.
    fn once_each(schedule: &Schedule, each: &[Vec<Ticket>]) {
        let mut indices: Vec<u64> = each.iter().flatten().map(|t| t.index).collect();
        indices.sort_unstable();
        assert_eq!(indices, (0..schedule.total).collect::<Vec<_>>());
    }

    #[tokio::test]
    async fn the_load_threads_release_the_schedule_between_them_once_then_stop_their_connections() {
        // 20,000 requests in 200 ms, above the pacer's rates: no pacer thread. Uneven
        // connections (2 and 1) still take every request once, each no earlier than due.
        let schedule = Arc::new(Schedule::new(100_000.0, 20_000, 2));
        assert!(!schedule.needs_pacer());
        let each = run_threads(&schedule, &[2, 1], &[0, 1]).await;
        assert!(
            each.iter().all(|took| !took.is_empty()),
            "both threads took part"
        );
        once_each(&schedule, &each);
    }

    #[tokio::test]
    async fn a_thread_kept_off_the_cpu_leaves_its_turn_to_the_next_one_to_wake() {
        // Thread 0 of 2 never runs: thread 1 releases the whole schedule, its own turns and
        // the other's.
        let schedule = Arc::new(Schedule::new(100_000.0, 1_000, 2));
        let each = run_threads(&schedule, &[2, 2], &[1]).await;
        assert!(each[0].is_empty());
        once_each(&schedule, &each);
    }

    #[tokio::test]
    async fn a_thread_queues_at_most_one_request_per_connection_and_the_deadline_ends_it() {
        // Its 3 connections never come to take: the first look takes one request for each,
        // later looks find no room and leave the rest for other threads, and the release ends
        // at its deadline.
        let schedule = Schedule::new(100_000.0, 1_000_000, 2);
        let tickets = Tickets::default();
        let started = Instant::now();
        let deadline = started + Duration::from_millis(5);
        tickets
            .release(
                &schedule,
                (started, Some(deadline)),
                (0, 2),
                3,
                &AtomicBool::new(false),
            )
            .await;
        assert!(Instant::now() >= deadline);
        assert_eq!(lock(&schedule.taken).count, 3);
        // What the looks found due and left is there for a connection that comes free.
        assert!(schedule.left.load(Ordering::Relaxed));
        let queued: Vec<u64> = lock(&tickets.batches)
            .iter()
            .flat_map(|b| b.first..b.first + b.count)
            .collect();
        assert_eq!(queued, [0, 1, 2]);
        // The three requests, then a stop each.
        assert_eq!(tickets.permits.available_permits(), 3 + 3);
    }

    #[tokio::test]
    async fn a_stopped_phase_releases_nothing_more_and_stops_every_connection() {
        let schedule = Schedule::new(100_000.0, 1_000_000, 2);
        let tickets = Tickets::default();
        let started = Instant::now() - Duration::from_millis(10);
        tickets
            .release(
                &schedule,
                (started, None),
                (0, 2),
                4,
                &AtomicBool::new(true),
            )
            .await;
        // A thousand requests are due, none taken: every connection is told to stop.
        assert_eq!(lock(&schedule.taken).count, 0);
        for _ in 0..4 {
            assert_eq!(tickets.take().await, None);
        }
    }
}
