//! Text for a stability record: a human summary and the Markdown job summary.

use std::fmt::Write;

use super::record::StabilityRecord;
use crate::output::facts_markdown;

fn time(at: Option<chrono::DateTime<chrono::Utc>>) -> String {
    at.map_or_else(
        || "-".to_string(),
        |at| at.format("%Y-%m-%d %H:%M:%SZ").to_string(),
    )
}

fn ms(value: Option<f64>) -> String {
    value.map_or_else(|| "-".to_string(), |v| format!("{v:.0} ms"))
}

/// The facts shown in both renderings.
fn facts(record: &StabilityRecord) -> Vec<(&'static str, String)> {
    let stats = &record.stats;
    // A fold from +0: an empty f64 sum is -0, which would print as "-0".
    let requests = stats.routes.values().fold(0.0, |sum, r| sum + r.requests);
    let errors = stats
        .routes
        .values()
        .fold(0.0, |sum, r| sum + r.server_errors);
    let scraped = record
        .samples
        .iter()
        .filter(|s| s.metrics.is_some())
        .count();
    vec![
        ("url", record.url.clone()),
        (
            "window",
            format!(
                "{} .. {}",
                time(record.first_sample_at),
                time(record.last_sample_at)
            ),
        ),
        (
            "samples",
            format!(
                "{} of {} ({:.0} % coverage{})",
                stats.samples,
                record.planned_samples,
                record.coverage_pct,
                if record.interrupted {
                    ", interrupted"
                } else {
                    ""
                }
            ),
        ),
        (
            "availability",
            format!(
                "{:.1} % (floor {} %)",
                stats.availability_pct, record.plan.limits.availability_floor_pct
            ),
        ),
        (
            "healthz probe",
            format!(
                "p95 {}, max {}",
                ms(stats.probe_p95_ms),
                ms(stats.probe_max_ms)
            ),
        ),
        (
            "requests",
            match (
                scraped,
                record
                    .samples
                    .iter()
                    .find_map(|s| s.metrics_error.as_deref()),
            ) {
                (0, Some(error)) => format!("metrics not read: {error}"),
                _ => format!("{requests} ({errors} answered 5xx)"),
            },
        ),
        ("log lines", log_fact(record)),
        ("machines", machine_fact(record)),
        ("breaches", stats.breaches.len().to_string()),
    ]
}

/// The machines sampled one by one, or why they were not listed.
fn machine_fact(record: &StabilityRecord) -> String {
    let listed = record
        .samples
        .iter()
        .filter(|s| s.machines.is_some())
        .count();
    let failed = record
        .samples
        .iter()
        .find_map(|s| s.machines_error.as_deref());
    let mut ids: Vec<&str> = record
        .samples
        .iter()
        .flat_map(|s| s.machines.iter().flatten())
        .map(|m| m.id.as_str())
        .collect();
    ids.sort_unstable();
    ids.dedup();
    match (listed, failed) {
        (0, None) => "not listed (whole-app scrape: no Fly app or no flyctl)".to_string(),
        (0, Some(error)) => format!("not listed: {error}"),
        (_, failure) => format!(
            "{} sampled one by one ({}), {} woke from auto-stop{}",
            ids.len(),
            ids.join(", "),
            record.stats.machine_wakes,
            failure.map_or(String::new(), |e| format!("; a list failed, e.g. {e}"))
        ),
    }
}

/// How many error/panic lines were counted, or why the logs were not read.
fn log_fact(record: &StabilityRecord) -> String {
    let Some(app) = &record.app else {
        return "not read (no Fly app: --url)".to_string();
    };
    let read = record.samples.iter().filter(|s| s.logs.is_some()).count();
    let failed = record.samples.iter().find_map(|s| s.logs_error.as_deref());
    match (read, failed) {
        (0, Some(error)) => format!("not read from {app}: {error}"),
        (_, Some(error)) => format!(
            "{} error/panic lines ({app}; {} of {} reads failed, e.g. {error})",
            record.stats.log_lines,
            record.samples.len() - read,
            record.samples.len()
        ),
        _ => format!("{} error/panic lines ({app})", record.stats.log_lines),
    }
}

fn breach_lines(record: &StabilityRecord) -> Vec<String> {
    record
        .stats
        .breaches
        .iter()
        .map(|b| {
            let until = b
                .until
                .map(|u| format!(" .. {}", time(Some(u))))
                .unwrap_or_default();
            format!(
                "{}{until} {}: {}",
                time(Some(b.at)),
                b.kind.label(),
                b.detail
            )
        })
        .collect()
}

/// The human summary.
pub fn human(record: &StabilityRecord) -> String {
    let mut text = format!("watch {}: {}\n", record.url, record.verdict());
    for (name, value) in facts(record) {
        let _ = writeln!(text, "  {name:<14} {value}");
    }
    for (route, counts) in &record.stats.routes {
        let _ = writeln!(
            text,
            "  route {route}: +{} requests, +{} 5xx",
            counts.requests, counts.server_errors
        );
    }
    for line in breach_lines(record) {
        let _ = writeln!(text, "  BREACH {line}");
    }
    for kept in record
        .samples
        .iter()
        .filter_map(|s| s.logs.as_ref())
        .flat_map(|l| &l.kept)
    {
        let _ = writeln!(text, "  log: {kept}");
    }
    text
}

/// The Markdown job summary.
pub fn markdown(record: &StabilityRecord) -> String {
    facts_markdown(
        &format!("watch {}", record.url),
        record.verdict(),
        &facts(record),
        &breach_lines(record),
    )
}
