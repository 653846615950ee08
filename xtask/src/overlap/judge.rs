//! What one request of the race came back with, and the verdict on a whole round. Pure
//! functions: no I/O, so the rule "exactly one wins, N-1 get 409 `date_overlap`, nothing
//! else" is unit-tested on its own.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::verdict::Verdict;

/// The error code the service answers a double booking with.
pub const DATE_OVERLAP: &str = "date_overlap";

/// How many request numbers are listed per kind of unexpected outcome.
const LISTED_REQUESTS: usize = 20;
/// How many characters of a response body are kept as a sample.
const SAMPLE_CHARS: usize = 200;

/// The outcome of one pre-reserve request.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Outcome {
    /// 201 with a reservation code: this request booked the dates.
    Created {
        /// The reservation code from the body.
        code: String,
    },
    /// 409 with `"error": "date_overlap"`: refused because the dates are taken.
    DateOverlap,
    /// Anything else: another status, another error code, a 201 without a code, or no answer.
    Other {
        /// The HTTP status; `None` when the request failed in transport.
        status: Option<u16>,
        /// The `error` field of the body, if it had one.
        error_code: Option<String>,
        /// The start of the body, or the transport error.
        sample: String,
    },
}

impl Outcome {
    /// Classifies an HTTP answer by status and body.
    pub fn from_response(status: u16, body: &str) -> Outcome {
        let json: Option<serde_json::Value> = serde_json::from_str(body).ok();
        let field = |name: &str| {
            json.as_ref()
                .and_then(|v| v.get(name))
                .and_then(|v| v.as_str())
                .map(str::to_string)
        };
        let error_code = field("error");
        match (status, field("code")) {
            (201, Some(code)) if !code.is_empty() => return Outcome::Created { code },
            (409, _) if error_code.as_deref() == Some(DATE_OVERLAP) => return Outcome::DateOverlap,
            _ => {}
        }
        Outcome::Other {
            status: Some(status),
            error_code,
            sample: truncate(body),
        }
    }

    /// A request that got no HTTP answer (refused connection, reset, timeout).
    pub fn transport(error: &str) -> Outcome {
        Outcome::Other {
            status: None,
            error_code: None,
            sample: truncate(error),
        }
    }

    /// A short label grouping like outcomes: `201`, `409 date_overlap`, `500 internal`,
    /// `transport error`.
    pub fn label(&self) -> String {
        match self {
            Outcome::Created { .. } => "201".to_string(),
            Outcome::DateOverlap => format!("409 {DATE_OVERLAP}"),
            Outcome::Other { status: None, .. } => "transport error".to_string(),
            Outcome::Other {
                status: Some(status),
                error_code,
                ..
            } => match (status, error_code) {
                (201, _) => "201 without a reservation code".to_string(),
                (status, Some(code)) => format!("{status} {code}"),
                (status, None) => status.to_string(),
            },
        }
    }
}

/// Keeps the first [`SAMPLE_CHARS`] characters on one line.
pub fn truncate(text: &str) -> String {
    let one_line: String = text.split_whitespace().collect::<Vec<_>>().join(" ");
    let mut sample: String = one_line.chars().take(SAMPLE_CHARS).collect();
    if one_line.chars().count() > SAMPLE_CHARS {
        sample.push('…');
    }
    sample
}

/// One request of a race: its number (0-based), its latency from the release, its outcome.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RequestOutcome {
    /// Position of the request in the race, from 0.
    pub request: usize,
    /// Milliseconds from the release instant to the end of the response.
    pub latency_ms: f64,
    /// What came back.
    pub outcome: Outcome,
}

/// Requests that ended in the same unexpected way.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct OtherGroup {
    /// The outcome label, e.g. `500 internal` or `transport error`.
    pub label: String,
    /// How many requests ended this way.
    pub count: usize,
    /// Their request numbers (the first 20).
    pub requests: Vec<usize>,
    /// The body or error of the first of them.
    pub sample: String,
}

/// The verdict on one race.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RoundVerdict {
    /// Pass only for exactly one 201 and N-1 409 `date_overlap`.
    pub verdict: Verdict,
    /// N, the number of requests.
    pub requests: usize,
    /// The reservation codes of every 201, in request order.
    pub winners: Vec<String>,
    /// How many got 409 `date_overlap`.
    pub conflicts: usize,
    /// Everything else, grouped by label.
    pub others: Vec<OtherGroup>,
    /// Sentences saying what broke the rule; empty on a pass.
    pub problems: Vec<String>,
}

/// Judges a race: exactly one 201, N-1 409 `date_overlap`, zero other outcomes.
pub fn judge_round(outcomes: &[RequestOutcome]) -> RoundVerdict {
    let mut winners = Vec::new();
    let mut conflicts = 0;
    let mut groups: BTreeMap<String, OtherGroup> = BTreeMap::new();
    for outcome in outcomes {
        match &outcome.outcome {
            Outcome::Created { code } => winners.push(code.clone()),
            Outcome::DateOverlap => conflicts += 1,
            other @ Outcome::Other { sample, .. } => {
                let group = groups.entry(other.label()).or_insert_with(|| OtherGroup {
                    label: other.label(),
                    count: 0,
                    requests: Vec::new(),
                    sample: sample.clone(),
                });
                group.count += 1;
                if group.requests.len() < LISTED_REQUESTS {
                    group.requests.push(outcome.request);
                }
            }
        }
    }
    let others: Vec<OtherGroup> = groups.into_values().collect();
    let requests = outcomes.len();
    let mut problems = Vec::new();
    match winners.len() {
        1 => {}
        0 => problems.push(format!("no request of {requests} was accepted: expected exactly one 201")),
        n => problems.push(format!(
            "{n} requests were accepted for the same dates (codes {}): the extra {} are double bookings",
            winners.join(", "),
            n - 1
        )),
    }
    // With exactly one winner and no other outcome, the rest are necessarily N-1 conflicts.
    for group in &others {
        let listed = group
            .requests
            .iter()
            .map(|r| format!("#{r}"))
            .collect::<Vec<_>>()
            .join(", ");
        let more = if group.count > group.requests.len() {
            ", ..."
        } else {
            ""
        };
        problems.push(format!(
            "{} request(s) ended with {} (requests {listed}{more}); sample: {}",
            group.count, group.label, group.sample
        ));
    }
    if requests == 0 {
        problems.push("no request was sent".to_string());
    }
    let verdict = if problems.is_empty() {
        Verdict::Pass
    } else {
        Verdict::Fail
    };
    RoundVerdict {
        verdict,
        requests,
        winners,
        conflicts,
        others,
        problems,
    }
}

/// Latency figures of a group of requests, in milliseconds.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LatencySummary {
    /// How many requests.
    pub count: usize,
    /// Fastest.
    pub min_ms: f64,
    /// Median (nearest rank).
    pub p50_ms: f64,
    /// 95th percentile (nearest rank).
    pub p95_ms: f64,
    /// Slowest.
    pub max_ms: f64,
}

impl LatencySummary {
    /// Summarises latencies; `None` for none.
    pub fn of(latencies: &[f64]) -> Option<LatencySummary> {
        let mut sorted: Vec<f64> = latencies
            .iter()
            .copied()
            .filter(|v| v.is_finite())
            .collect();
        if sorted.is_empty() {
            return None;
        }
        sorted.sort_by(f64::total_cmp);
        let rank = |q: f64| {
            let index = ((q * sorted.len() as f64).ceil() as usize).clamp(1, sorted.len()) - 1;
            sorted[index]
        };
        Some(LatencySummary {
            count: sorted.len(),
            min_ms: sorted[0],
            p50_ms: rank(0.50),
            p95_ms: rank(0.95),
            max_ms: sorted[sorted.len() - 1],
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn race(outcomes: Vec<Outcome>) -> Vec<RequestOutcome> {
        outcomes
            .into_iter()
            .enumerate()
            .map(|(request, outcome)| RequestOutcome {
                request,
                latency_ms: request as f64,
                outcome,
            })
            .collect()
    }

    fn created(code: &str) -> Outcome {
        Outcome::from_response(201, &format!(r#"{{"code":"{code}","nights":2}}"#))
    }

    fn overlap() -> Outcome {
        Outcome::from_response(409, r#"{"error":"date_overlap","detail":"taken"}"#)
    }

    #[test]
    fn one_winner_and_the_rest_conflicts_pass() {
        let mut outcomes = vec![created("CB-AAAA")];
        outcomes.extend((0..9).map(|_| overlap()));
        let verdict = judge_round(&race(outcomes));
        assert_eq!(verdict.verdict, Verdict::Pass, "{:?}", verdict.problems);
        assert_eq!(verdict.winners, vec!["CB-AAAA"]);
        assert_eq!(verdict.conflicts, 9);
        assert!(verdict.problems.is_empty());
    }

    #[test]
    fn a_single_request_that_wins_passes() {
        assert_eq!(
            judge_round(&race(vec![created("CB-ONE")])).verdict,
            Verdict::Pass
        );
    }

    #[test]
    fn two_winners_fail_naming_both_codes() {
        let verdict = judge_round(&race(vec![
            created("CB-AAAA"),
            created("CB-BBBB"),
            overlap(),
        ]));
        assert_eq!(verdict.verdict, Verdict::Fail);
        let text = verdict.problems.join("\n");
        assert!(
            text.contains("CB-AAAA") && text.contains("CB-BBBB"),
            "{text}"
        );
        assert!(text.contains("double booking"), "{text}");
    }

    #[test]
    fn no_winner_fails() {
        let verdict = judge_round(&race(vec![overlap(), overlap()]));
        assert_eq!(verdict.verdict, Verdict::Fail);
        assert!(
            verdict.problems[0].contains("no request"),
            "{:?}",
            verdict.problems
        );
    }

    #[test]
    fn a_server_error_fails_with_a_sample_and_the_request_number() {
        let verdict = judge_round(&race(vec![
            created("CB-AAAA"),
            overlap(),
            Outcome::from_response(500, r#"{"error":"internal","detail":"boom"}"#),
        ]));
        assert_eq!(verdict.verdict, Verdict::Fail);
        assert_eq!(verdict.others.len(), 1);
        assert_eq!(verdict.others[0].label, "500 internal");
        assert_eq!(verdict.others[0].requests, vec![2]);
        let text = verdict.problems.join("\n");
        assert!(text.contains("#2") && text.contains("boom"), "{text}");
    }

    #[test]
    fn a_409_with_another_code_is_other() {
        let outcome = Outcome::from_response(409, r#"{"error":"idempotency_in_progress"}"#);
        assert_eq!(outcome.label(), "409 idempotency_in_progress");
        let verdict = judge_round(&race(vec![created("CB-AAAA"), outcome]));
        assert_eq!(verdict.verdict, Verdict::Fail);
        assert_eq!(verdict.conflicts, 0);
    }

    #[test]
    fn transport_errors_and_odd_bodies_are_other() {
        assert_eq!(
            Outcome::transport("connection reset").label(),
            "transport error"
        );
        assert_eq!(
            Outcome::from_response(201, "{}").label(),
            "201 without a reservation code"
        );
        assert_eq!(Outcome::from_response(409, "not json").label(), "409");
        assert!(matches!(
            Outcome::from_response(409, "not json"),
            Outcome::Other { .. }
        ));
    }

    #[test]
    fn long_samples_are_cut_to_one_line() {
        let sample = truncate(&"line\n".repeat(100));
        assert!(!sample.contains('\n'));
        assert!(sample.ends_with('…'));
    }

    #[test]
    fn latency_summary_uses_nearest_rank() {
        let values: Vec<f64> = (1..=100).map(f64::from).collect();
        let summary = LatencySummary::of(&values).unwrap();
        assert_eq!(
            (
                summary.min_ms,
                summary.p50_ms,
                summary.p95_ms,
                summary.max_ms
            ),
            (1.0, 50.0, 95.0, 100.0)
        );
        assert!(LatencySummary::of(&[]).is_none());
    }
}
