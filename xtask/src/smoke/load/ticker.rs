//! A periodic wake-up for a load thread's own runtime, finer than tokio's timer.
//!
//! tokio's timer wheel ticks in whole milliseconds, so two threads asked to wake half a
//! millisecond apart wake together. On Linux the ticker is a `timerfd` (an hrtimer with no
//! timer slack, see timerfd_create(2)) registered with the runtime's own poller: its expiry
//! wakes the thread straight out of `epoll_wait`, with no other thread involved. Elsewhere,
//! or when the kernel refuses a timerfd, it falls back to tokio's interval.

use std::time::{Duration, Instant};

/// Wakes at `first`, then every `period`; ticks missed while the thread was busy are taken
/// at once, as one, and later ticks keep to the original grid (the kernel counts
/// expirations against the start, not against when the last one was read).
pub struct Ticker {
    inner: Inner,
}

enum Inner {
    #[cfg(target_os = "linux")]
    Timerfd(tokio::io::unix::AsyncFd<std::os::fd::OwnedFd>),
    Tokio(tokio::time::Interval),
}

impl Ticker {
    /// A ticker on the current runtime. Must be called from inside a tokio runtime with I/O
    /// and time enabled.
    pub fn new(first: Instant, period: Duration) -> Ticker {
        let period = period.max(Duration::from_nanos(1));
        #[cfg(target_os = "linux")]
        if let Ok(fd) = linux::timerfd(first, period) {
            // SAFETY: an `OwnedFd` is an open descriptor that stays open, and is the same
            // one, until it is dropped with the `AsyncFd` that owns it.
            let registered = unsafe {
                tokio::io::unix::AsyncFd::register_with_interest(fd, tokio::io::Interest::READABLE)
            };
            if let Ok(fd) = registered {
                return Ticker {
                    inner: Inner::Timerfd(fd),
                };
            }
        }
        Ticker::coarse(first, period)
    }

    /// The fallback: tokio's interval, on whole milliseconds.
    fn coarse(first: Instant, period: Duration) -> Ticker {
        let mut interval = tokio::time::interval_at(first.into(), period);
        interval.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
        Ticker {
            inner: Inner::Tokio(interval),
        }
    }

    /// Waits for the next tick (returns at once when one has passed unread).
    pub async fn tick(&mut self) {
        match &mut self.inner {
            #[cfg(target_os = "linux")]
            Inner::Timerfd(fd) => loop {
                let Ok(mut ready) = fd.readable().await else {
                    // The runtime is shutting down: nothing more will be released.
                    std::future::pending::<()>().await;
                    return;
                };
                match linux::expirations(ready.get_inner()) {
                    Ok(_) => {
                        // Read to zero: the next expiry is a new edge for the poller, so the
                        // readiness can be dropped without the `EAGAIN` read that proves it.
                        ready.clear_ready();
                        return;
                    }
                    Err(error) if error.kind() == std::io::ErrorKind::WouldBlock => {
                        ready.clear_ready();
                    }
                    // Reading 8 bytes from a timerfd cannot fail otherwise; if it does, tick
                    // rather than spin.
                    Err(_) => return,
                }
            },
            Inner::Tokio(interval) => {
                interval.tick().await;
            }
        }
    }

    /// Whether the ticker is the kernel's fine timer rather than tokio's millisecond one.
    #[cfg(test)]
    fn is_fine(&self) -> bool {
        !matches!(self.inner, Inner::Tokio(_))
    }
}

#[cfg(target_os = "linux")]
mod linux {
    use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
    use std::time::{Duration, Instant};

    fn timespec(d: Duration) -> libc::timespec {
        libc::timespec {
            tv_sec: libc::time_t::try_from(d.as_secs()).unwrap_or(libc::time_t::MAX),
            tv_nsec: libc::c_long::from(i32::try_from(d.subsec_nanos()).unwrap_or(0)),
        }
    }

    /// A non-blocking monotonic timerfd that first expires at `first` (at once when that has
    /// passed) and then every `period`.
    pub fn timerfd(first: Instant, period: Duration) -> std::io::Result<OwnedFd> {
        // SAFETY: timerfd_create takes a clock id and flags and returns a new descriptor or -1.
        let raw = unsafe {
            libc::timerfd_create(
                libc::CLOCK_MONOTONIC,
                libc::TFD_NONBLOCK | libc::TFD_CLOEXEC,
            )
        };
        if raw < 0 {
            return Err(std::io::Error::last_os_error());
        }
        // SAFETY: `raw` is a descriptor this function just opened and nothing else owns.
        let fd = unsafe { OwnedFd::from_raw_fd(raw) };
        // A relative first expiry: `Instant` is CLOCK_MONOTONIC on Linux but offers no
        // conversion to it. Zero would disarm the timer, so "now" is one nanosecond.
        let wait = first
            .saturating_duration_since(Instant::now())
            .max(Duration::from_nanos(1));
        let spec = libc::itimerspec {
            it_interval: timespec(period),
            it_value: timespec(wait),
        };
        // SAFETY: `fd` is an open timerfd, `spec` a valid itimerspec, the old value unwanted.
        let rc = unsafe { libc::timerfd_settime(fd.as_raw_fd(), 0, &spec, std::ptr::null_mut()) };
        if rc < 0 {
            return Err(std::io::Error::last_os_error());
        }
        Ok(fd)
    }

    /// Reads how many times the timer expired since the last read (`WouldBlock` when none).
    pub fn expirations(fd: &OwnedFd) -> std::io::Result<u64> {
        let mut count = [0u8; 8];
        // SAFETY: reads at most 8 bytes into an 8-byte buffer from an open descriptor.
        let read = unsafe { libc::read(fd.as_raw_fd(), count.as_mut_ptr().cast(), count.len()) };
        if read < 0 {
            return Err(std::io::Error::last_os_error());
        }
        Ok(u64::from_ne_bytes(count))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn ticks_come_no_earlier_than_their_place_on_the_grid() {
        let start = Instant::now();
        let first = start + Duration::from_millis(3);
        let period = Duration::from_micros(700);
        let mut ticker = Ticker::new(first, period);
        #[cfg(target_os = "linux")]
        assert!(ticker.is_fine(), "a Linux kernel offers timerfd");
        for n in 0..5u32 {
            ticker.tick().await;
            assert!(Instant::now() >= first + period * n, "tick {n} came early");
        }
    }

    #[tokio::test]
    async fn ticks_missed_while_busy_are_taken_at_once_then_the_grid_holds() {
        // The fine ticker and the fallback keep the same grid.
        for coarse in [false, true] {
            let first = Instant::now();
            let period = Duration::from_millis(200);
            let mut ticker = if coarse {
                Ticker::coarse(first, period)
            } else {
                Ticker::new(first, period)
            };
            ticker.tick().await;
            // Busy through two ticks (200 and 400 ms): they are taken at once, as one,
            // without waiting for the one at 600 ms, and the tick after that keeps to the
            // grid.
            std::thread::sleep(Duration::from_millis(450));
            ticker.tick().await;
            assert!(
                Instant::now() < first + period * 3,
                "a passed tick waited ({coarse})"
            );
            ticker.tick().await;
            assert!(
                Instant::now() >= first + period * 3,
                "the grid moved ({coarse})"
            );
        }
    }

    #[test]
    fn a_first_expiry_in_the_past_fires_at_once() {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        runtime.block_on(async {
            let past = Instant::now() - Duration::from_millis(10);
            let mut ticker = Ticker::new(past, Duration::from_secs(3600));
            // An hour-long period: only the immediate first tick can end this wait.
            tokio::time::timeout(Duration::from_secs(5), ticker.tick())
                .await
                .expect("a first expiry already past fires at once");
        });
    }
}
