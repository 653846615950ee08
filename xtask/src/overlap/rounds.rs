//! The measurement: rounds of race, availability check, boundary probes and cleanup.

use std::time::Instant;

use anyhow::{Context, bail};

use super::admin::AdminToken;
use super::api::{self, PreReserve, Stay};
use super::judge::{LatencySummary, Outcome, judge_round};
use super::ledger::Ledger;
use super::plan::OverlapPlan;
use super::race::race_round;
use super::report::{
    Check, CleanupFailure, CleanupReport, OverlapReport, RoundReport, probe as checked,
};
use crate::config::Target;
use crate::verdict::Verdict;

/// Runs the overlap check against `target` and returns what it measured; nothing is printed.
///
/// Each round fires `plan.concurrency` identical pre-reserves, released together, then judges
/// them (exactly one 201, N-1 409 `date_overlap`, nothing else), checks through availability
/// that exactly one active booking covers the window, probes the boundaries (a stay starting
/// on the winner's check-out is accepted, one overlapping it by a night is refused), and
/// cancels every reservation the round created, and only those. A failed invariant is in the
/// report's verdict; `Err` means the check could not run (unreachable service, no free
/// window, bad plan). Reservations created before an error are still cancelled, and the error
/// names any that could not be.
pub async fn run_rounds(target: &Target, plan: &OverlapPlan) -> anyhow::Result<OverlapReport> {
    if plan.concurrency < 2 {
        bail!("--concurrency must be at least 2: with one request there is no race to judge");
    }
    if plan.rounds == 0 {
        bail!("--rounds must be at least 1");
    }
    let today = chrono::Utc::now().date_naive();
    if let Some(stay) = plan.stay
        && stay.check_in < today
    {
        bail!(
            "--check-in {} is in the past (today is {today} UTC): the service refuses it, so \
             the race would test nothing; pick future dates or leave them out",
            stay.check_in
        );
    }
    // Everything but the race (window search, checks, cleanup) goes through the first region:
    // the primary, where the writes are, so a check never reads a replica behind the race.
    let mut headers = reqwest::header::HeaderMap::new();
    if let Some(first) = plan.regions.first()
        && let Ok(region) = reqwest::header::HeaderValue::from_str(first)
    {
        headers.insert("fly-prefer-region", region);
    }
    let client = crate::http::client_builder(plan.timeout)
        .default_headers(headers)
        .build()
        .context("building the HTTP client")?;
    if let Some(token) = &plan.admin_token {
        api::verify_admin_token(&client, target, token.expose()).await?;
    }
    // Its own test-fixture cabin by default, so an empty database needs no seeding and no
    // guest's dates are held; without a token (`--no-cleanup`) only a listed cabin can be
    // booked.
    let accommodation_id = match (plan.accommodation_id, &plan.admin_token) {
        (Some(id), _) => id,
        (None, Some(token)) => api::fixture_accommodation(&client, target, token.expose()).await?,
        (None, None) => api::first_accommodation(&client, target).await?,
    };
    let ledger = Ledger::new(target, plan.admin_token.as_ref());
    let mut rounds = Vec::new();
    for round in 1..=plan.rounds {
        let started = Instant::now();
        let mut created = Vec::new();
        let measured = measure_round(
            &client,
            target,
            plan,
            accommodation_id,
            round,
            &mut created,
            &ledger,
        )
        .await;
        let stay = measured.as_ref().ok().map(|m| m.0);
        let cleanup = clean_up(
            &client,
            target,
            plan,
            accommodation_id,
            stay,
            created,
            &ledger,
        )
        .await;
        let (stay, mut report) = match measured {
            Ok(measured) => measured,
            Err(error) => {
                let left: Vec<String> = cleanup.failed.iter().map(|f| f.code.clone()).collect();
                let note = if left.is_empty() {
                    "every reservation it created was cancelled".to_string()
                } else {
                    format!("reservations left behind: {}", left.join(", "))
                };
                return Err(error.context(format!("round {round} could not finish ({note})")));
            }
        };
        debug_assert_eq!(
            (report.check_in, report.check_out),
            (stay.check_in, stay.check_out)
        );
        report.cleanup = cleanup;
        report.verdict = round_verdict(&report, plan.admin_token.is_some());
        report.round_ms = started.elapsed().as_secs_f64() * 1000.0;
        rounds.push(report);
    }
    let cross_channel = if plan.cross_channel {
        Some(super::channel::run(&client, target, plan, accommodation_id, &ledger).await?)
    } else {
        None
    };
    let leftovers = rounds
        .iter()
        .flat_map(|r| r.cleanup.failed.iter().map(|f| f.code.clone()))
        .collect();
    let verdict = Verdict::combine(
        rounds
            .iter()
            .map(|r| r.verdict)
            .chain(cross_channel.as_ref().map(|c| c.verdict)),
    );
    Ok(OverlapReport {
        run_id: plan.run_id.clone(),
        url: target.url.clone(),
        accommodation_id,
        concurrency: plan.concurrency,
        cleanup_enabled: plan.admin_token.is_some(),
        rounds,
        leftovers,
        cross_channel,
        verdict,
    })
}

/// Fail when the race or a check failed; Warn when only cleanup fell short (the invariant
/// held, but bookings were left behind); else Pass.
fn round_verdict(report: &RoundReport, cleanup_enabled: bool) -> Verdict {
    let checks = std::iter::once(report.race.verdict)
        .chain(std::iter::once(report.availability.verdict))
        .chain(report.boundary.iter().map(|c| c.verdict));
    let measured = Verdict::combine(checks);
    let cleanup_short = !report.cleanup.failed.is_empty()
        || report.cleanup.still_active.is_some_and(|n| n > 0)
        || !cleanup_enabled;
    match measured {
        Verdict::Fail => Verdict::Fail,
        _ if cleanup_short => Verdict::Warn,
        other => other,
    }
}

/// The race and the checks of one round; every code it is answered with goes into `created`
/// as soon as it is seen, so cleanup finds it even if a later step fails.
async fn measure_round(
    client: &reqwest::Client,
    target: &Target,
    plan: &OverlapPlan,
    accommodation_id: i64,
    round: u32,
    created: &mut Vec<String>,
    ledger: &Ledger,
) -> anyhow::Result<(Stay, RoundReport)> {
    let token = plan.admin_token.as_ref().map(AdminToken::expose);
    let stay = match plan.stay {
        Some(stay) => {
            let taken =
                api::bookings(client, target, accommodation_id, stay.with_margin(), token).await?;
            if !taken.is_empty() {
                bail!(
                    "the dates {} of accommodation {accommodation_id} (with a night either side \
                     for the boundary probes) already have {} active booking(s): pick other dates \
                     or leave --check-in/--check-out out to find a free window",
                    stay,
                    taken.len()
                );
            }
            stay
        }
        None => {
            let today = chrono::Utc::now().date_naive();
            api::find_free_window(client, target, accommodation_id, plan.nights, today, token)
                .await?
        }
    };
    let raced = race_round(target, plan, accommodation_id, stay, ledger).await?;
    let verdict = judge_round(&raced.outcomes);
    // The racers noted the winners in the ledger already.
    created.extend(verdict.winners.iter().cloned());

    let winner_latency_ms = raced
        .outcomes
        .iter()
        .find(|o| matches!(o.outcome, Outcome::Created { .. }))
        .map(|o| o.latency_ms);
    let conflict_latencies: Vec<f64> = raced
        .outcomes
        .iter()
        .filter(|o| o.outcome == Outcome::DateOverlap)
        .map(|o| o.latency_ms)
        .collect();

    let active = api::bookings(client, target, accommodation_id, stay, token)
        .await
        .context("reading availability after the race")?;
    let availability = match active.as_slice() {
        [one] if one.check_in == stay.check_in && one.check_out == stay.check_out => checked(
            "availability",
            Verdict::Pass,
            format!("exactly one active booking covers {stay} ({})", one.status),
        ),
        bookings => checked(
            "availability",
            Verdict::Fail,
            format!(
                "expected exactly one active booking on {stay}, found {}: {}",
                bookings.len(),
                bookings
                    .iter()
                    .map(|b| format!("[{}, {}) {}", b.check_in, b.check_out, b.status))
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
        ),
    };

    let boundary = if verdict.winners.is_empty() {
        vec![checked(
            "boundary",
            Verdict::Skip,
            "no winner to probe against",
        )]
    } else {
        let mut checks = Vec::new();
        let probes = [
            ("back_to_back", stay.back_to_back(), true),
            ("overlap_by_one_night", stay.overlapping_last_night(), false),
        ];
        for (name, probe, should_win) in probes {
            let Some(flight) = ledger.recorder().in_flight() else {
                bail!("interrupted before the boundary probes");
            };
            let outcome = api::pre_reserve(
                client,
                target,
                &PreReserve::new(accommodation_id, probe, &plan.run_id),
                plan.admin_token.as_ref().map(AdminToken::expose),
                None,
            )
            .await;
            if let Outcome::Created { code } = &outcome {
                ledger.record(code);
                created.push(code.clone());
            }
            drop(flight);
            checks.push(judge_probe(name, probe, should_win, &outcome));
        }
        checks
    };

    let report = RoundReport {
        round,
        check_in: stay.check_in,
        check_out: stay.check_out,
        race: verdict,
        winner_latency_ms,
        conflict_latency: LatencySummary::of(&conflict_latencies),
        connect_ms: raced.connect_ms,
        race_ms: raced.race_ms,
        round_ms: 0.0,
        availability,
        boundary,
        cleanup: CleanupReport::default(),
        verdict: Verdict::Fail,
    };
    Ok((stay, report))
}

/// A back-to-back stay must be accepted (201); one overlapping by a night must get 409
/// `date_overlap`.
fn judge_probe(name: &str, probe: Stay, should_win: bool, outcome: &Outcome) -> Check {
    match (should_win, outcome) {
        (true, Outcome::Created { code }) => checked(
            name,
            Verdict::Pass,
            format!("{probe} was accepted ({code})"),
        ),
        (false, Outcome::DateOverlap) => checked(
            name,
            Verdict::Pass,
            format!("{probe} was refused with 409 date_overlap"),
        ),
        (true, other) => checked(
            name,
            Verdict::Fail,
            format!(
                "{probe} starts on the winner's check-out and must be accepted, got {}",
                describe(other)
            ),
        ),
        (false, other) => checked(
            name,
            Verdict::Fail,
            format!(
                "{probe} overlaps the winner by one night and must get 409 date_overlap, got {}",
                describe(other)
            ),
        ),
    }
}

fn describe(outcome: &Outcome) -> String {
    match outcome {
        Outcome::Created { code } => format!("201 ({code}, a double booking)"),
        Outcome::Other { sample, .. } => format!("{}: {sample}", outcome.label()),
        Outcome::DateOverlap => outcome.label(),
    }
}

/// Cancels every code in `created`, and nothing else, then counts active bookings left on
/// the window and its margin.
async fn clean_up(
    client: &reqwest::Client,
    target: &Target,
    plan: &OverlapPlan,
    accommodation_id: i64,
    stay: Option<Stay>,
    created: Vec<String>,
    ledger: &Ledger,
) -> CleanupReport {
    let mut report = CleanupReport {
        created: created.clone(),
        ..CleanupReport::default()
    };
    let Some(token) = &plan.admin_token else {
        report.failed = created
            .into_iter()
            .map(|code| CleanupFailure {
                code,
                reason: "cleanup disabled (--no-cleanup)".to_string(),
            })
            .collect();
        return report;
    };
    for code in created {
        match api::cancel(client, target, &code, token.expose()).await {
            Ok(()) => {
                ledger.settle(&code);
                report.cancelled.push(code);
            }
            Err(reason) => report.failed.push(CleanupFailure { code, reason }),
        }
    }
    if let Some(stay) = stay {
        let token = Some(token.expose());
        report.still_active =
            api::bookings(client, target, accommodation_id, stay.with_margin(), token)
                .await
                .ok()
                .map(|bookings| bookings.len());
    }
    report
}
