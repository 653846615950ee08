//! The per-machine reading of samples (pure): which counter series a sample holds, what
//! build the app as a whole serves, and which machine restarts were crashes.
//!
//! The restart rule: a machine restarted when its version answer's `started_at` changes
//! between two samples that saw it started (or, for a service without `started_at`, when
//! its own counters go back). The change is
//! - a deploy, not a restart, when the machine's build changed with it (a version change);
//! - a wake, not a crash, when a sample in between listed the machine `stopped` or
//!   `suspended`: Fly's proxy stops idle machines (`auto_stop_machines`, checked "every few
//!   minutes", one machine per region at a time) and starts them on a request
//!   (`auto_start_machines`), and a new process is how that looks
//!   (<https://fly.io/docs/reference/fly-proxy-autostop-autostart/>);
//! - a crash otherwise: flyd restarted the process (restart policy) while every sample
//!   listed it started.
//!
//! What it cannot see: a machine stopped and started again between two samples (stopped
//! for less than the interval; the watch's own whole-app probes may be what wakes it) looks
//! like a crash; a crash that left the machine `stopped` when a
//! sample listed it looks like a wake; and nothing is said about a machine while the
//! machine list could not be read. Fly's machine events (exit code, `requested_stop`)
//! would tell these apart; the watch does not read them.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};

use super::breach::{Breach, BreachKind, breach};
use super::sample::Sample;
use super::scrape::MetricsScrape;

/// The counter series in `sample`: the whole-app scrape (key `None`) and each machine's
/// own (key: its id). Deltas are taken within a series only.
pub fn series(sample: &Sample) -> Vec<(Option<String>, &MetricsScrape)> {
    let mut found: Vec<(Option<String>, &MetricsScrape)> = Vec::new();
    if let Some(metrics) = &sample.metrics {
        found.push((None, metrics));
    }
    for machine in sample.machines.iter().flatten() {
        if let Some(metrics) = &machine.metrics {
            found.push((Some(machine.id.clone()), metrics));
        }
    }
    found
}

/// The build the app serves at `sample`: the whole-app answer without a machine list; with
/// one, the build every started machine answered, `None` while they differ (a rolling
/// deploy half done) or none answered.
pub fn app_identity(sample: &Sample) -> Option<String> {
    let Some(machines) = &sample.machines else {
        return sample.build.as_ref().map(|b| b.identity().to_string());
    };
    let mut builds = machines
        .iter()
        .filter(|m| m.is_started())
        .filter_map(|m| m.build.as_ref().map(|b| b.identity().to_string()));
    let first = builds.next()?;
    builds.all(|other| other == first).then_some(first)
}

/// What one machine looked like when last seen started.
#[derive(Default)]
struct Seen<'a> {
    started_at: Option<&'a str>,
    identity: Option<&'a str>,
    metrics: Option<&'a MetricsScrape>,
    stopped_since: bool,
}

/// The crashes among the machines' restarts (the rule in the module doc) and how many
/// wakes from an auto-stop were seen.
pub fn restarts(samples: &[Sample]) -> (Vec<Breach>, usize) {
    let mut seen: BTreeMap<&str, Seen> = BTreeMap::new();
    let mut found = Vec::new();
    let mut wakes = 0;
    for sample in samples {
        for machine in sample.machines.iter().flatten() {
            let last = seen.entry(machine.id.as_str()).or_default();
            if machine.is_stopped() {
                last.stopped_since = true;
                continue;
            }
            let Some(build) = machine.build.as_ref().filter(|_| machine.is_started()) else {
                continue;
            };
            let identity = build.identity();
            let started_at = build.started_at.as_deref();
            let new_process = match (last.started_at, started_at) {
                (Some(before), Some(now)) => before != now,
                (None, None) => last
                    .metrics
                    .zip(machine.metrics.as_ref())
                    .is_some_and(|(before, now)| went_back(before, now)),
                _ => false,
            };
            let deployed = last.identity.is_some_and(|before| before != identity);
            if new_process && !deployed {
                if last.stopped_since {
                    wakes += 1;
                } else {
                    found.push(crash(sample.at, &machine.id, started_at));
                }
            }
            *last = Seen {
                started_at,
                identity: Some(identity),
                metrics: machine.metrics.as_ref().or(last.metrics),
                stopped_since: false,
            };
        }
    }
    (found, wakes)
}

fn crash(at: DateTime<Utc>, machine: &str, started_at: Option<&str>) -> Breach {
    let since = started_at.map_or(String::new(), |s| format!(" (serving since {s})"));
    breach(
        at,
        BreachKind::Restart,
        format!(
            "machine {machine} restarted{since}; no sample in between listed it stopped, so \
             it was no auto-stop"
        ),
    )
}

/// A request counter or a latency bucket of the same series went down: a new process.
pub fn went_back(before: &MetricsScrape, now: &MetricsScrape) -> bool {
    now.routes.iter().any(|(route, counts)| {
        before
            .routes
            .get(route)
            .is_some_and(|then| counts.requests < then.requests)
    }) || before.latency_buckets.iter().any(|(bound, then)| {
        now.latency_buckets
            .iter()
            .find(|(b, _)| b == bound)
            .is_some_and(|(_, count)| count < then)
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::watch::sample::{Build, MachineSample, Probe};
    use crate::watch::scrape::RouteCounts;

    fn minute(m: i64) -> DateTime<Utc> {
        DateTime::from_timestamp(1_796_000_000 + 60 * m, 0).unwrap()
    }

    fn scrape(requests: f64) -> MetricsScrape {
        let mut metrics = MetricsScrape::default();
        metrics.routes.insert(
            cabanas_contract::routes::HEALTHZ.into(),
            RouteCounts {
                requests,
                server_errors: 0.0,
            },
        );
        metrics
    }

    /// A machine as listed: `(id, state, image, started_at, requests)`.
    type Seen<'a> = (&'a str, &'a str, &'a str, &'a str, f64);

    fn sample(m: i64, machines: &[Seen]) -> Sample {
        let probe = Probe {
            status: Some(200),
            latency_ms: 1.0,
            error: None,
        };
        let machines = machines
            .iter()
            .map(|(id, state, image, started_at, requests)| {
                let started = *state == "started";
                MachineSample {
                    id: id.to_string(),
                    state: state.to_string(),
                    build: started.then(|| Build {
                        commit: "abc1234".into(),
                        image: Some(image.to_string()),
                        machine: Some(id.to_string()),
                        started_at: Some(started_at.to_string()),
                    }),
                    metrics: started.then(|| scrape(*requests)),
                    error: None,
                }
            })
            .collect();
        Sample {
            at: minute(m),
            healthz: probe.clone(),
            readyz: probe,
            build: None,
            metrics: None,
            metrics_error: None,
            logs: None,
            logs_error: None,
            machines: Some(machines),
            machines_error: None,
        }
    }

    /// Minute `m`: machines m1 and m2 started on build v1, each `(started_at, requests)`.
    fn both_started(m: i64, m1: (&str, f64), m2: (&str, f64)) -> Sample {
        sample(
            m,
            &[
                ("m1", "started", "v1", m1.0, m1.1),
                ("m2", "started", "v1", m2.0, m2.1),
            ],
        )
    }

    #[test]
    fn a_new_start_time_while_listed_started_is_a_crash() {
        let samples = [
            both_started(0, ("t0", 50.0), ("t0", 5.0)),
            both_started(1, ("t0", 60.0), ("t1", 1.0)),
        ];
        let (crashes, wakes) = restarts(&samples);
        assert_eq!(crashes.len(), 1, "{crashes:?}");
        assert_eq!(crashes[0].at, minute(1));
        assert!(crashes[0].detail.contains("m2"), "{}", crashes[0].detail);
        assert_eq!(wakes, 0);
    }

    #[test]
    fn a_new_start_time_after_being_listed_stopped_is_a_wake() {
        let samples = [
            sample(0, &[("m2", "started", "v1", "t0", 5.0)]),
            sample(1, &[("m2", "stopped", "v1", "", 0.0)]),
            sample(2, &[("m2", "suspended", "v1", "", 0.0)]),
            sample(3, &[("m2", "started", "v1", "t3", 1.0)]),
            // Crashing after the wake is a crash again.
            sample(4, &[("m2", "started", "v1", "t4", 1.0)]),
        ];
        let (crashes, wakes) = restarts(&samples);
        assert_eq!(wakes, 1);
        assert_eq!(
            crashes.iter().map(|c| c.at).collect::<Vec<_>>(),
            [minute(4)]
        );
    }

    #[test]
    fn a_new_start_time_with_a_new_build_is_a_deploy() {
        let samples = [
            sample(0, &[("m1", "started", "v1", "t0", 5.0)]),
            sample(1, &[("m1", "started", "v2", "t1", 1.0)]),
        ];
        assert_eq!(restarts(&samples), (Vec::new(), 0));
    }

    #[test]
    fn the_app_serves_a_build_once_every_started_machine_does() {
        let half = sample(
            0,
            &[
                ("m1", "started", "v2", "t", 1.0),
                ("m2", "started", "v1", "t", 1.0),
            ],
        );
        assert_eq!(app_identity(&half), None);
        let done = sample(
            1,
            &[
                ("m1", "started", "v2", "t", 1.0),
                ("m2", "stopped", "v1", "", 0.0),
            ],
        );
        assert_eq!(app_identity(&done).as_deref(), Some("v2"));
    }

    #[test]
    fn a_sample_covers_the_app_only_when_every_started_machine_answered() {
        let mut seen = sample(
            0,
            &[
                ("m1", "started", "v1", "t", 1.0),
                ("m2", "stopped", "v1", "", 0.0),
            ],
        );
        assert!(seen.covers_app(), "a stopped machine has nothing to sample");
        seen.machines.as_mut().unwrap()[0].metrics = None;
        assert!(!seen.covers_app());
        seen.machines = None;
        seen.machines_error = Some("flyctl: not logged in".into());
        assert!(!seen.covers_app(), "an unread machine list covers nothing");
    }

    #[test]
    fn each_machine_is_its_own_counter_series() {
        // m1 is far ahead of m2; neither goes back, so the interval is the sum of both.
        let samples = [
            both_started(0, ("t0", 100.0), ("t0", 5.0)),
            both_started(1, ("t0", 103.0), ("t0", 9.0)),
        ];
        let limits = crate::watch::Limits {
            availability_floor_pct: 99.0,
            error_rate_pct: 1.0,
            p95_ms: 1000.0,
        };
        let stats = crate::watch::stats::compute(&samples, &limits);
        assert_eq!(stats.intervals.len(), 1);
        assert_eq!(stats.intervals[0].requests, 7.0);
        assert!(!stats.intervals[0].counters_reset);
        assert!(stats.breaches.is_empty(), "{:?}", stats.breaches);
    }

    #[test]
    fn an_old_sample_without_machines_still_reads() {
        let old = r#"{"at":"2026-12-01T10:00:00Z",
            "healthz":{"status":200,"latency_ms":1.0,"error":null},
            "readyz":{"status":200,"latency_ms":1.0,"error":null},
            "build":null,"metrics":null,"metrics_error":null,"logs":null,"logs_error":null}"#;
        let sample: Sample = serde_json::from_str(old).unwrap();
        assert_eq!(sample.machines, None);
        assert!(sample.covers_app());
    }
}
