//! Rendering an [`OverlapReport`]: the terminal table and the Markdown job summary. Reads
//! the report only; measures nothing.

use std::fmt::Write;

use super::report::{OverlapReport, RoundReport};
use crate::junit::{Case, Suite, check_case};
use crate::verdict::Verdict;

fn ms(value: Option<f64>) -> String {
    value.map_or_else(|| "-".to_string(), |v| format!("{v:.1}"))
}

fn conflicts_ms(round: &RoundReport) -> String {
    round.conflict_latency.as_ref().map_or_else(
        || "-".to_string(),
        |l| format!("{:.1}/{:.1}/{:.1}", l.p50_ms, l.p95_ms, l.max_ms),
    )
}

fn others(round: &RoundReport) -> usize {
    round.race.others.iter().map(|g| g.count).sum()
}

/// The human report: one table row per round, then every problem, cleanup, and the verdict.
pub fn text(report: &OverlapReport) -> String {
    let mut out = String::new();
    let _ = writeln!(
        out,
        "overlap: {} accommodation {}, N={} per round, {} round(s), run {}\n",
        report.url,
        report.accommodation_id,
        report.concurrency,
        report.rounds.len(),
        report.run_id
    );
    let header = [
        "round",
        "dates",
        "N",
        "winners",
        "conflicts",
        "others",
        "winner ms",
        "409 p50/p95/max ms",
        "race ms",
        "verdict",
    ];
    let mut rows: Vec<[String; 10]> = vec![header.map(str::to_string)];
    for round in &report.rounds {
        rows.push([
            round.round.to_string(),
            format!("{}..{}", round.check_in, round.check_out),
            round.race.requests.to_string(),
            round.race.winners.len().to_string(),
            round.race.conflicts.to_string(),
            others(round).to_string(),
            ms(round.winner_latency_ms),
            conflicts_ms(round),
            format!("{:.0}", round.race_ms),
            round.verdict.label().to_string(),
        ]);
    }
    let widths: Vec<usize> = (0..header.len())
        .map(|col| {
            rows.iter()
                .map(|r| r[col].chars().count())
                .max()
                .unwrap_or(0)
        })
        .collect();
    for row in &rows {
        let cells: Vec<String> = row
            .iter()
            .zip(&widths)
            .enumerate()
            .map(|(col, (cell, width))| {
                if col <= 1 {
                    format!("{cell:<width$}")
                } else {
                    format!("{cell:>width$}")
                }
            })
            .collect();
        let _ = writeln!(out, "  {}", cells.join("  ").trim_end());
    }
    out.push('\n');
    for round in &report.rounds {
        let _ = writeln!(
            out,
            "round {}: connections opened in {:.0} ms, round took {:.0} ms",
            round.round, round.connect_ms, round.round_ms
        );
        for check in std::iter::once(&round.availability).chain(&round.boundary) {
            let _ = writeln!(
                out,
                "  {:<4} {}: {}",
                check.verdict.label(),
                check.id,
                check.summary()
            );
        }
        for problem in &round.race.problems {
            let _ = writeln!(out, "  FAIL race: {problem}");
        }
        let cleanup = &round.cleanup;
        let _ = writeln!(
            out,
            "  cleanup: {} created, {} cancelled{}",
            cleanup.created.len(),
            cleanup.cancelled.len(),
            if cleanup.failed.is_empty() {
                String::new()
            } else {
                format!(", {} NOT cleaned up", cleanup.failed.len())
            }
        );
        for failure in &cleanup.failed {
            let _ = writeln!(
                out,
                "    left active: {} ({})",
                failure.code, failure.reason
            );
        }
        if let Some(active) = cleanup.still_active.filter(|n| *n > 0) {
            let _ = writeln!(
                out,
                "    {active} active booking(s) remain on the window after cleanup"
            );
        }
    }
    for line in cross_channel_lines(report) {
        let _ = writeln!(out, "{line}");
    }
    out.push('\n');
    let _ = writeln!(out, "{}", verdict_sentence(report));
    out
}

/// The cross-channel round in a few lines: the block, the race, each check.
fn cross_channel_lines(report: &OverlapReport) -> Vec<String> {
    let Some(channel) = &report.cross_channel else {
        return Vec::new();
    };
    let mut lines = vec![format!(
        "cross-channel: imported block {}..{}: {} winner(s), {} date_overlap, {} other: {}",
        channel.check_in,
        channel.check_out,
        channel.winners.len(),
        channel.conflicts,
        channel.others,
        channel.verdict.label()
    )];
    for check in [&channel.import, &channel.race, &channel.cleanup] {
        lines.push(format!(
            "  {:<4} {}: {}",
            check.verdict.label(),
            check.id,
            check.summary()
        ));
    }
    lines
}

/// One sentence on the whole run.
pub fn verdict_sentence(report: &OverlapReport) -> String {
    let n = report.concurrency;
    match report.verdict {
        Verdict::Pass => format!(
            "PASS: in each of {} round(s), exactly one of {n} requests won and {} got 409 date_overlap; \
             everything created was cancelled",
            report.rounds.len(),
            n.saturating_sub(1)
        ),
        Verdict::Warn => format!(
            "WARN: the invariant held in every round, but {} reservation(s) created by this run are \
             still active{}: cancel them by code",
            report.leftovers.len(),
            if report.leftovers.is_empty() {
                String::new()
            } else {
                format!(" ({})", report.leftovers.join(", "))
            }
        ),
        Verdict::Fail => {
            let failed: Vec<String> = report
                .rounds
                .iter()
                .filter(|r| r.verdict == Verdict::Fail)
                .map(|r| r.round.to_string())
                .collect();
            if failed.is_empty() {
                return "FAIL: the cross-channel round failed: bookings must not win dates another \
                        channel's imported block holds"
                    .to_string();
            }
            format!(
                "FAIL: the anti-double-booking invariant (exactly one wins, {} get 409 date_overlap, nothing else) \
                 broke in round(s) {}",
                n.saturating_sub(1),
                failed.join(", ")
            )
        }
        Verdict::Skip => "SKIP: no round ran".to_string(),
    }
}

/// The Markdown job summary.
pub fn markdown(report: &OverlapReport) -> String {
    let mut out = String::new();
    let _ = writeln!(out, "### overlap: {}\n", report.verdict.label());
    let _ = writeln!(
        out,
        "`{}`, accommodation {}, N={}, run `{}`\n",
        report.url, report.accommodation_id, report.concurrency, report.run_id
    );
    let _ = writeln!(
        out,
        "| round | dates | N | winners | conflicts | others | winner ms | 409 p50/p95/max ms | race ms | verdict |"
    );
    let _ = writeln!(out, "|---|---|--:|--:|--:|--:|--:|--:|--:|---|");
    for round in &report.rounds {
        let _ = writeln!(
            out,
            "| {} | {}..{} | {} | {} | {} | {} | {} | {} | {:.0} | {} |",
            round.round,
            round.check_in,
            round.check_out,
            round.race.requests,
            round.race.winners.len(),
            round.race.conflicts,
            others(round),
            ms(round.winner_latency_ms),
            conflicts_ms(round),
            round.race_ms,
            round.verdict.label()
        );
    }
    out.push('\n');
    for round in &report.rounds {
        for problem in round.problems() {
            let _ = writeln!(
                out,
                "- round {}: {}",
                round.round,
                crate::escape::markdown_inline(&problem)
            );
        }
    }
    for line in cross_channel_lines(report) {
        let _ = writeln!(out, "- {}", line.trim().replace('|', "\\|"));
    }
    let _ = writeln!(out, "\n{}\n", verdict_sentence(report));
    out
}

/// The JUnit cases of an overlap run: per round the race, the availability probe and each boundary
/// probe, then the cleanup.
pub fn junit_suite(environment: &str, report: &OverlapReport) -> Suite {
    let mut cases = Vec::new();
    for round in &report.rounds {
        let class = format!("overlap.round{}", round.round);
        let race = &round.race;
        cases.push(Case {
            classname: class.clone(),
            name: format!(
                "exactly one of {} concurrent bookings wins ({} to {})",
                race.requests, round.check_in, round.check_out
            ),
            verdict: race.verdict,
            message: if race.problems.is_empty() {
                format!(
                    "{} winner(s), {} date_overlap conflict(s)",
                    race.winners.len(),
                    race.conflicts
                )
            } else {
                race.problems.join("\n")
            },
        });
        for check in std::iter::once(&round.availability).chain(&round.boundary) {
            cases.push(check_case(&class, check));
        }
    }
    if let Some(channel) = &report.cross_channel {
        for check in [&channel.import, &channel.race, &channel.cleanup] {
            cases.push(check_case("overlap.cross_channel", check));
        }
    }
    cases.push(Case {
        classname: "overlap".into(),
        name: "cleanup: nothing created is left active".into(),
        // The task holds leftovers to a WARN: the guarantee was still proven.
        verdict: if report.leftovers.is_empty() {
            Verdict::Pass
        } else {
            Verdict::Warn
        },
        message: if report.leftovers.is_empty() {
            String::new()
        } else {
            format!("left active: {}", report.leftovers.join(", "))
        },
    });
    Suite {
        name: format!("overlap ({environment})"),
        cases,
    }
}
