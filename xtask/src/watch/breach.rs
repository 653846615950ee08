//! A breach of the watch's limits: what kind, when, and what was seen. A leaf that the
//! statistics (`stats`) and the per-machine rules (`machines`) both build on.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

/// What kind of breach.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum BreachKind {
    /// The service did not answer healthz/readyz with 2xx, and availability is under the floor.
    Availability,
    /// 5xx at or over the error threshold in an interval.
    ErrorRate,
    /// p95 latency over the threshold in an interval.
    Latency,
    /// Error-level or panic lines in the logs.
    LogLines,
    /// Another build started serving during the watch.
    VersionChange,
    /// The same build restarted (counters reset or a new process start time).
    Restart,
}

impl BreachKind {
    /// Words for tables.
    pub fn label(self) -> &'static str {
        match self {
            BreachKind::Availability => "availability",
            BreachKind::ErrorRate => "5xx rate",
            BreachKind::Latency => "p95 latency",
            BreachKind::LogLines => "error/panic log lines",
            BreachKind::VersionChange => "version change",
            BreachKind::Restart => "restart",
        }
    }
}

/// One breach, at the sample that showed it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Breach {
    /// When it was first seen.
    pub at: DateTime<Utc>,
    /// When it was last seen, for a stretch (an outage).
    pub until: Option<DateTime<Utc>>,
    /// What it is.
    pub kind: BreachKind,
    /// What was seen, in a sentence.
    pub detail: String,
    /// For a version change: the build that started serving (image, else commit).
    #[serde(default)]
    pub to_build: Option<String>,
}

/// A breach at `at` with no stretch and no build.
pub(super) fn breach(at: DateTime<Utc>, kind: BreachKind, detail: String) -> Breach {
    Breach {
        at,
        until: None,
        kind,
        detail,
        to_build: None,
    }
}
