//! Proving that a build serves. After flyctl returns, "serving" means all of:
//!
//! 1. a release newer than the one recorded before is complete (and, for a rollback, runs the
//!    image deployed);
//! 2. every machine deploy manages runs that release's image;
//! 3. every started machine passes every check;
//! 4. `GET /api/v1/version`, sent through the app URL with `fly-force-instance-id: <id>` for
//!    each started machine, is answered by that machine and reports the expected commit.
//!
//! As real Fly behaves:
//! - Machines `fly deploy` does not manage (a leftover release-command machine, `fly console`,
//!   `fly machine run`) are left out and named in the evidence (fly-go
//!   `flaps/flaps_machines.go`, `ListFlyAppsMachines`).
//! - A machine Fly stopped for idleness (`auto_stop_machines`) is updated by `fly deploy` to the
//!   new image and left stopped, its checks skipped (flyctl
//!   `internal/command/deploy/machines_launchinput.go`, `shouldSkipLaunch`): its config naming
//!   the new image is what proves it updated. With `wake`, each is asked for its version too,
//!   which makes Fly's proxy start it (`auto_start_machines`), so it is proven like the rest.
//!
//! Polled with a bound; the verdict names each condition with its evidence.

mod judge;
mod versions;

use std::io::Write;
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};

use super::{ReleaseRef, Snapshot, VERSION_PATH};
use crate::flyctl::{Flyctl, failure_or_error};
use crate::verdict::Verdict;

pub use judge::judge;
pub use versions::{VersionAnswer, ask_versions, machines_to_ask};

/// Pause between two polls.
const POLL_INTERVAL: Duration = Duration::from_millis(500);

/// What must serve.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Expected {
    /// The release must be newer than this one (the release recorded before flyctl ran).
    pub newer_than: Option<u64>,
    /// The release must run this image (a rollback knows it; a build learns it from Fly).
    pub image: Option<String>,
    /// The commit every machine must report (`None`: only that each machine answers).
    pub commit: Option<String>,
    /// Ask stopped machines for their version too, which starts them (`--wake`).
    #[serde(default)]
    pub wake: bool,
}

/// One condition of "serving", with what was seen.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Condition {
    /// `new release complete`, `machines run its image`, `machine checks pass`,
    /// `version endpoint reports the commit`.
    pub name: String,
    /// Whether it held at the last poll.
    pub passed: bool,
    /// What was seen (release numbers, images, check states, answers).
    pub evidence: String,
}

/// The outcome of one verification.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Verification {
    /// What was verified (`the new build serves`, `the rollback serves`).
    pub what: String,
    /// `Pass` when every condition held at one poll.
    pub verdict: Verdict,
    /// What was expected.
    pub expected: Expected,
    /// The release found serving (the newest one newer than expected), if any.
    pub release: Option<ReleaseRef>,
    /// Every condition at the last poll.
    pub conditions: Vec<Condition>,
    /// How many polls ran.
    pub attempts: u32,
    /// How long it polled, in seconds.
    pub seconds: f64,
    /// The app as seen at the last poll.
    pub snapshot: Snapshot,
}

/// Polls releases, machines and each machine's version endpoint until every condition holds
/// or `timeout` passes. flyctl calls that fail count as failed conditions (and the poll goes
/// on); only a flyctl that cannot start is an error.
pub fn verify(
    what: &str,
    flyctl: &Flyctl,
    app: &str,
    base_url: &str,
    expected: &Expected,
    timeout: Duration,
    out: &mut dyn Write,
) -> anyhow::Result<Verification> {
    writeln!(
        out,
        "verifying that {what} (releases, machines, {VERSION_PATH} per machine; up to {}s)",
        timeout.as_secs()
    )?;
    let started = Instant::now();
    let mut attempts = 0;
    loop {
        attempts += 1;
        // The polls' own command lines would drown the verdict: they go nowhere.
        let mut quiet = std::io::sink();
        let (conditions, release, snapshot) =
            match poll(flyctl, app, base_url, expected, &mut quiet)? {
                Ok(polled) => polled,
                Err(problem) => (
                    vec![Condition {
                        name: "flyctl lists releases and machines".into(),
                        passed: false,
                        evidence: problem,
                    }],
                    None,
                    Snapshot::default(),
                ),
            };
        let passed = conditions.iter().all(|c| c.passed);
        if passed || started.elapsed() >= timeout {
            let verification = Verification {
                what: what.to_string(),
                verdict: if passed { Verdict::Pass } else { Verdict::Fail },
                expected: expected.clone(),
                release,
                conditions,
                attempts,
                seconds: started.elapsed().as_secs_f64(),
                snapshot,
            };
            super::print_verification(&verification, out)?;
            return Ok(verification);
        }
        std::thread::sleep(POLL_INTERVAL.min(timeout.saturating_sub(started.elapsed())));
    }
}

type Polled = (Vec<Condition>, Option<ReleaseRef>, Snapshot);

fn poll(
    flyctl: &Flyctl,
    app: &str,
    base_url: &str,
    expected: &Expected,
    out: &mut dyn Write,
) -> anyhow::Result<Result<Polled, String>> {
    let releases = match flyctl.releases(app, out) {
        Ok(releases) => releases.unwrap_or_default(),
        Err(error) => return Ok(Err(failure_or_error(error)?.to_string())),
    };
    let machines = match flyctl.machines(app, out) {
        Ok(machines) => machines.unwrap_or_default(),
        Err(error) => return Ok(Err(failure_or_error(error)?.to_string())),
    };
    let answers = ask_versions(base_url, &machines_to_ask(&machines, expected.wake))?;
    let (conditions, release) = judge(expected, &releases, &machines, &answers);
    let snapshot = Snapshot::from_parts(&releases, &machines, &answers);
    Ok(Ok((conditions, release, snapshot)))
}
