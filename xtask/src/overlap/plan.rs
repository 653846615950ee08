//! What an overlap run does: its plan, built from the command line or by other tasks
//! (rehearse), and read by the rounds and the cross-channel round alike.

use std::time::Duration;

use super::admin::AdminToken;
use super::api::Stay;

/// What to run: built from the command line by `run`, or directly by other tasks.
#[derive(Debug, Clone)]
pub struct OverlapPlan {
    /// N, identical pre-reserves per round (at least 1).
    pub concurrency: usize,
    /// How many rounds, each on a fresh window (at least 1).
    pub rounds: u32,
    /// The accommodation to book; `None` takes the test-fixture cabin `overlap-check` (found
    /// or created with the admin token), or without a token the first listed.
    pub accommodation_id: Option<i64>,
    /// Fixed dates; `None` finds a free random window 180+ days ahead each round.
    pub stay: Option<Stay>,
    /// Nights of a random window; `None` draws 2-4.
    pub nights: Option<u32>,
    /// Token for cancelling what the run created; `None` leaves it behind (`--no-cleanup`).
    pub admin_token: Option<AdminToken>,
    /// Per-request timeout.
    pub timeout: Duration,
    /// Tag of the run, put in the synthetic guest name.
    pub run_id: String,
    /// After the rounds, the cross-channel round ([`super::channel`]).
    pub cross_channel: bool,
    /// Regions the racers enter through, in turn (`fly-prefer-region`); empty: wherever the
    /// proxy sends them.
    pub regions: Vec<String>,
}

impl OverlapPlan {
    /// A plan with the defaults: N=10, one round, the test-fixture cabin, random window.
    pub fn new(admin_token: Option<AdminToken>) -> OverlapPlan {
        OverlapPlan {
            concurrency: 10,
            rounds: 1,
            accommodation_id: None,
            stay: None,
            nights: None,
            admin_token,
            timeout: Duration::from_secs(30),
            run_id: new_run_id(),
            cross_channel: false,
            regions: Vec::new(),
        }
    }
}

/// A short random tag for a run, e.g. `ov-3f9a1c2e`.
pub fn new_run_id() -> String {
    format!("ov-{}", &uuid::Uuid::new_v4().simple().to_string()[..8])
}
