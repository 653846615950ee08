//! The reservations this run created and has not cancelled yet, shared with the Ctrl-C
//! handler: an interrupted run still cancels what it booked before the process exits, so a
//! Ctrl-C on staging does not leave synthetic guests holding real dates.

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use super::admin::AdminToken;
use super::api;
use crate::config::Target;
use crate::interrupt::{self, CleanupGuard};

/// How long the interrupt handler spends per cancellation.
const INTERRUPT_CANCEL_TIMEOUT: Duration = Duration::from_secs(5);
/// How long the interrupt handler waits for pre-reserves in flight to answer, so that a
/// reservation created at the moment of the Ctrl-C is known and cancelled too.
const IN_FLIGHT_WAIT: Duration = Duration::from_secs(10);

#[derive(Debug, Default)]
struct Shared {
    codes: Mutex<Vec<String>>,
    in_flight: AtomicUsize,
    closing: AtomicBool,
}

type Codes = Arc<Shared>;

/// Codes created and not yet cancelled.
#[derive(Debug)]
pub struct Ledger {
    codes: Codes,
    _interrupt: Option<CleanupGuard>,
}

impl Ledger {
    /// A ledger that cancels its codes on Ctrl-C when a token is given (none under
    /// `--no-cleanup`, where leaving them is the point).
    pub fn new(target: &Target, token: Option<&AdminToken>) -> Ledger {
        let codes: Codes = Arc::default();
        let guard = token.map(|token| {
            let (codes, target, token) = (codes.clone(), target.clone(), token.clone());
            interrupt::on_interrupt(move || cancel_all(&target, &token, &codes))
        });
        Ledger {
            codes,
            _interrupt: guard,
        }
    }

    /// Notes a code the server just handed out.
    pub fn record(&self, code: &str) {
        self.recorder().record(code);
    }

    /// A handle the racers use to note their code the moment it arrives, so a Ctrl-C in the
    /// middle of a race still cancels its winner.
    pub fn recorder(&self) -> Recorder {
        Recorder(self.codes.clone())
    }

    /// Forgets a code once it is cancelled.
    pub fn settle(&self, code: &str) {
        lock(&self.codes).retain(|c| c != code);
    }
}

/// Notes codes into a [`Ledger`] from the racers' tasks.
#[derive(Debug, Clone)]
pub struct Recorder(Codes);

impl Recorder {
    /// Notes a code the server just handed out.
    pub fn record(&self, code: &str) {
        lock(&self.0).push(code.to_string());
    }

    /// Marks a pre-reserve as sent until the returned guard is dropped (after its code, if
    /// any, is recorded). `None` once the interrupt handler has started: the request must
    /// not be sent, since nobody would cancel what it creates.
    pub fn in_flight(&self) -> Option<InFlight> {
        // Paired with `cancel_all`, which sets `closing` and then reads `in_flight`: either
        // it sees this request and waits for it, or this request sees `closing` and stays.
        self.0.in_flight.fetch_add(1, Ordering::SeqCst);
        let flight = InFlight(self.0.clone());
        (!self.0.closing.load(Ordering::SeqCst)).then_some(flight)
    }
}

/// A pre-reserve whose answer is not recorded yet.
#[derive(Debug)]
pub struct InFlight(Codes);

impl Drop for InFlight {
    fn drop(&mut self) {
        self.0.in_flight.fetch_sub(1, Ordering::SeqCst);
    }
}

fn lock(codes: &Codes) -> std::sync::MutexGuard<'_, Vec<String>> {
    codes
        .codes
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// Runs on the interrupt thread while the task's runtime may be mid-request: its own small
/// runtime and client, one attempt per code, and a line for anything left.
fn cancel_all(target: &Target, token: &AdminToken, codes: &Codes) {
    codes.closing.store(true, Ordering::SeqCst);
    let deadline = Instant::now() + IN_FLIGHT_WAIT;
    while codes.in_flight.load(Ordering::SeqCst) > 0 && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(20));
    }
    let pending = std::mem::take(&mut *lock(codes));
    if pending.is_empty() {
        return;
    }
    eprintln!(
        "overlap: cancelling {} reservation(s) this run created",
        pending.len()
    );
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build();
    let (Ok(runtime), Ok(client)) = (runtime, crate::http::client(INTERRUPT_CANCEL_TIMEOUT)) else {
        eprintln!(
            "overlap: could not cancel, left active: {}",
            pending.join(", ")
        );
        return;
    };
    for code in pending {
        let cancelled = runtime.block_on(api::cancel(&client, target, &code, token.expose()));
        if let Err(reason) = cancelled {
            eprintln!("overlap: left active: {code} ({reason})");
        }
    }
}
