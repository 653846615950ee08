//! The per-client request budget, in memory and bounded.
//!
//! The cost it exists for: anyone can send requests under as many client addresses as they
//! like, so neither the work per request nor the memory may grow with the number of clients.
//! The first version scanned its whole table on every request once it tracked 10,000 clients
//! (a flood of distinct addresses cut the throughput of pre-reserve by more than half) and
//! kept each client's key as sent (8 KB keys were accepted).
//!
//! Here a client is a fixed-size fingerprint of at most [`MAX_KEY_BYTES`] of its key, and the
//! windows live in two generations of at most half of [`MAX_TRACKED_CLIENTS`] each. A
//! generation is retired whole (one `clear`, no scan) when it is a window old, which only
//! forgets windows that have ended, or when the newer one is full, which forgets the clients
//! not seen for the longest (at least half the cap of newer clients ago). A client's window
//! moves to the newer generation whenever it makes a request, so a client that keeps sending
//! stays counted and stays limited however many others arrive; a forgotten client starts a
//! fresh window. Nobody else's budget changes at the cap, so it never opens for everyone.

use std::collections::HashMap;
use std::hash::{BuildHasher, RandomState};
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// The length of one rate-limit window.
pub const WINDOW: Duration = Duration::from_secs(60);

/// The most clients whose windows are kept at once (about 2 MB of tables at most).
pub const MAX_TRACKED_CLIENTS: usize = 50_000;

/// Only this many leading bytes of a client key tell clients apart (an IPv6 address in text
/// takes at most 45); longer keys cost no more memory or hashing than this.
pub const MAX_KEY_BYTES: usize = 64;

/// A fixed one-minute window per client, starting at the client's first request, kept in
/// memory (per instance).
#[derive(Debug)]
pub struct RateLimiter {
    per_window: u32,
    per_generation: usize,
    /// Keys the fingerprints with a per-process secret, so nobody can choose keys that share
    /// a window with someone else's.
    fingerprints: RandomState,
    generations: Mutex<Generations>,
}

#[derive(Debug, Clone, Copy)]
struct Window {
    start: Instant,
    count: u32,
}

impl Window {
    fn is_open(&self, now: Instant) -> bool {
        now.saturating_duration_since(self.start) < WINDOW
    }
}

#[derive(Debug, Default)]
struct Generations {
    /// When `current` started taking windows; `None` before the first request.
    started: Option<Instant>,
    /// Windows of clients seen since `started`.
    current: HashMap<u64, Window>,
    /// Windows of clients last seen in the generation before.
    previous: HashMap<u64, Window>,
}

impl Generations {
    /// Retires what time has closed. Every window in `previous` was placed there before
    /// `started`, so once `started` is a window old all of them have ended (and after two
    /// windows, all of `current`'s too).
    fn advance(&mut self, now: Instant) {
        let Some(started) = self.started else {
            self.started = Some(now);
            return;
        };
        let age = now.saturating_duration_since(started);
        if age >= 2 * WINDOW {
            self.current.clear();
            self.previous.clear();
            self.started = Some(now);
        } else if age >= WINDOW {
            self.rotate(now);
        }
    }

    /// Forgets the older generation; the current one becomes it. `clear` keeps the table's
    /// allocation and, for plain values, costs no per-entry work.
    fn rotate(&mut self, now: Instant) {
        self.previous.clear();
        std::mem::swap(&mut self.current, &mut self.previous);
        self.started = Some(now);
    }
}

impl RateLimiter {
    /// A limiter allowing `per_minute` requests per client per minute (0: unlimited),
    /// tracking at most [`MAX_TRACKED_CLIENTS`] clients.
    pub fn new(per_minute: u32) -> Self {
        Self::with_max_clients(per_minute, MAX_TRACKED_CLIENTS)
    }

    /// The same with another cap on the clients tracked at once (at least 2).
    pub fn with_max_clients(per_minute: u32, max_clients: usize) -> Self {
        Self {
            per_window: per_minute,
            per_generation: (max_clients / 2).max(1),
            fingerprints: RandomState::new(),
            generations: Mutex::new(Generations::default()),
        }
    }

    /// Counts one request of `client` at `now`; `Err(wait)` when it is over the limit, with
    /// the time until its window ends. Constant work apart from retiring a generation, which
    /// is amortised over the requests that filled it.
    pub fn check(&self, client: &str, now: Instant) -> Result<(), Duration> {
        if self.per_window == 0 {
            return Ok(());
        }
        let key = client.as_bytes();
        let id = self
            .fingerprints
            .hash_one(&key[..key.len().min(MAX_KEY_BYTES)]);
        let mut generations = self.generations.lock().unwrap_or_else(|p| p.into_inner());
        generations.advance(now);
        let window = if let Some(window) = generations.current.get_mut(&id) {
            window
        } else {
            let carried = generations.previous.remove(&id).filter(|w| w.is_open(now));
            if generations.current.len() >= self.per_generation {
                generations.rotate(now);
            }
            generations
                .current
                .entry(id)
                .or_insert(carried.unwrap_or(Window {
                    start: now,
                    count: 0,
                }))
        };
        if !window.is_open(now) {
            *window = Window {
                start: now,
                count: 0,
            };
        }
        if window.count >= self.per_window {
            return Err(WINDOW.saturating_sub(now.saturating_duration_since(window.start)));
        }
        window.count += 1;
        Ok(())
    }

    /// How many clients' windows are kept now (never more than the cap).
    pub fn tracked_clients(&self) -> usize {
        let generations = self.generations.lock().unwrap_or_else(|p| p.into_inner());
        generations.current.len() + generations.previous.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_request_past_the_limit_waits_for_its_window() {
        let limiter = RateLimiter::new(3);
        let t0 = Instant::now();
        for _ in 0..3 {
            assert!(limiter.check("a", t0).is_ok());
        }
        let wait = limiter
            .check("a", t0 + Duration::from_secs(20))
            .unwrap_err();
        assert_eq!(wait, Duration::from_secs(40));
        assert!(
            limiter.check("b", t0).is_ok(),
            "other clients are unaffected"
        );
        assert!(limiter.check("a", t0 + WINDOW).is_ok(), "a new window");
    }

    #[test]
    fn zero_turns_the_limit_off() {
        let limiter = RateLimiter::new(0);
        let t0 = Instant::now();
        assert!((0..1000).all(|_| limiter.check("a", t0).is_ok()));
    }

    /// A window that started in the older generation keeps its count when the generations
    /// turn, until the window itself ends.
    #[test]
    fn a_window_outlives_the_generation_it_started_in() {
        let limiter = RateLimiter::new(2);
        let t0 = Instant::now();
        assert!(limiter.check("a", t0).is_ok());
        assert!(limiter.check("b", t0 + Duration::from_secs(50)).is_ok());
        assert!(limiter.check("b", t0 + Duration::from_secs(50)).is_ok());
        // At 70 s the generation of t0 turns; b's window (from 50 s) is still open.
        let wait = limiter
            .check("b", t0 + Duration::from_secs(70))
            .unwrap_err();
        assert_eq!(wait, Duration::from_secs(40));
        assert!(limiter.check("a", t0 + Duration::from_secs(70)).is_ok());
        // Two windows of silence forget everyone.
        assert!(limiter.check("b", t0 + Duration::from_secs(200)).is_ok());
        assert_eq!(limiter.tracked_clients(), 1);
    }

    /// A flood of 100,000 distinct clients within one minute: the table never holds more
    /// than the cap, clients that keep sending stay limited, and newcomers get their budget.
    #[test]
    fn a_flood_of_distinct_clients_stays_within_the_cap_and_keeps_limits() {
        let limiter = RateLimiter::new(100);
        let t0 = Instant::now();
        let abusers: Vec<String> = (0..10).map(|n| format!("198.51.100.{n}")).collect();
        for abuser in &abusers {
            for _ in 0..100 {
                limiter.check(abuser, t0).unwrap();
            }
        }
        let mut most_tracked = 0;
        for n in 0..100_000u32 {
            let now = t0 + Duration::from_micros(u64::from(n) * 500);
            let client = format!("10.{}.{}.{}", n >> 16, (n >> 8) & 0xff, n & 0xff);
            assert!(limiter.check(&client, now).is_ok(), "newcomer {client}");
            if n % 1000 == 0 {
                for abuser in &abusers {
                    assert!(
                        limiter.check(abuser, now).is_err(),
                        "{abuser} after {n} newcomers"
                    );
                }
            }
            most_tracked = most_tracked.max(limiter.tracked_clients());
        }
        assert!(
            most_tracked <= MAX_TRACKED_CLIENTS,
            "tracked {most_tracked} clients, cap {MAX_TRACKED_CLIENTS}"
        );
        assert!(most_tracked > MAX_TRACKED_CLIENTS / 2, "{most_tracked}");
        // A newcomer from the flood that is still tracked keeps its count too.
        let last = "10.1.134.159";
        for _ in 1..100 {
            limiter.check(last, t0 + Duration::from_secs(50)).unwrap();
        }
        assert!(limiter.check(last, t0 + Duration::from_secs(50)).is_err());
    }

    /// Keys longer than [`MAX_KEY_BYTES`] are told apart by their first bytes only: they cost
    /// one fixed-size entry, and varying their tail does not buy a fresh budget.
    #[test]
    fn an_over_long_key_is_bounded() {
        let limiter = RateLimiter::new(2);
        let t0 = Instant::now();
        let prefix = "x".repeat(MAX_KEY_BYTES);
        let long = |tail: usize| format!("{prefix}{}", "y".repeat(tail));
        assert!(limiter.check(&long(8 * 1024), t0).is_ok());
        assert!(limiter.check(&long(8 * 1024 - 1), t0).is_ok());
        assert!(limiter.check(&long(1), t0).is_err(), "same first bytes");
        assert!(limiter.check(&prefix, t0).is_err(), "same first bytes");
        assert_eq!(limiter.tracked_clients(), 1);
        let other = format!("z{}", long(8 * 1024));
        assert!(limiter.check(&other, t0).is_ok(), "other first bytes");
        assert_eq!(limiter.tracked_clients(), 2);
    }
}
