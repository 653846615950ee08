//! Rendering a [`SmokeReport`]: the human table and the Markdown job summary. Pure functions
//! of the report, so `report` can render a saved record the same way.

use std::fmt::Write;

use super::plan::LoadSettings;
use super::report::{EndpointReport, SmokeReport};
use super::stats::{LatencySummary, fmt_num};
use crate::escape::markdown_inline as cell;
use crate::junit::{Case, Suite, check_case};
use crate::verdict::Verdict;

/// The human table: checks, benchmark figures, thresholds, verdict.
pub fn human(report: &SmokeReport) -> String {
    let mut out = String::new();
    let _ = writeln!(out, "smoke {}", report.url);
    if !report.checks.is_empty() {
        let _ = writeln!(out, "\nChecks");
        for check in &report.checks {
            let _ = writeln!(
                out,
                "  {:<5} {:<15} {}",
                check.verdict.label(),
                check.id,
                check.summary()
            );
            if let Some(fix) = &check.fix {
                let _ = writeln!(out, "  {:<5} {:<15} fix: {fix}", "", "");
            }
        }
    }
    if let Some(bench) = &report.benchmark {
        let _ = writeln!(out, "\nBenchmark: {}", describe_load(&bench.load));
        let _ = writeln!(
            out,
            "  {:<16} {:>8} {:>8} {:>6} {:>9} {:>8} {:>8} {:>8} {:>8} {:>8} {:>8} {:>8} {:>8}",
            "endpoint (ms)",
            "requests",
            "ok",
            "err%",
            "req/s",
            "min",
            "p50",
            "p90",
            "p95",
            "p99",
            "p99.9",
            "max",
            "mean"
        );
        for e in &bench.endpoints {
            let _ = writeln!(
                out,
                "  {:<16} {:>8} {:>8} {:>6} {:>9} {}",
                e.name,
                e.requests,
                e.succeeded,
                fmt_num(e.error_rate_pct),
                fmt_num(e.throughput_rps),
                latency_cells(&e.latency)
            );
            let _ = writeln!(
                out,
                "  {:<16} {:>8} {:>8} {:>6} {:>9} {}",
                "  success only",
                "",
                "",
                "",
                "",
                latency_cells(&e.success_latency)
            );
        }
        for e in bench.endpoints.iter().filter(|e| e.errors.total() > 0) {
            let _ = writeln!(out, "  errors {}: {}", e.name, e.errors.describe());
        }
        if let Some(rate) = bench.load.rate {
            for e in &bench.endpoints {
                let _ = writeln!(
                    out,
                    "  rate {}: achieved {} of {} req/s; {} of {} scheduled sent late or not at all",
                    e.name,
                    fmt_num(e.throughput_rps),
                    fmt_num(rate),
                    e.late,
                    e.scheduled
                );
                if let Some(released) = &e.latency_from_release {
                    let _ = writeln!(
                        out,
                        "  rate {}: counted from release instead of the intended time, p50 {} ms, p99 {} ms",
                        e.name,
                        fmt_num(released.p50_ms),
                        fmt_num(released.p99_ms)
                    );
                }
            }
        }
        let _ = writeln!(out, "\nThresholds");
        for e in &bench.endpoints {
            for t in &e.thresholds {
                let _ = writeln!(
                    out,
                    "  {:<5} {:<15} {:<12} {}",
                    t.verdict().label(),
                    e.name,
                    t.metric(),
                    t.check.summary()
                );
            }
        }
    }
    let failures = report.failures();
    let _ = match failures.len() {
        0 => writeln!(out, "\nVerdict: {}", report.verdict),
        n => writeln!(out, "\nVerdict: {} ({n} failed)", report.verdict),
    };
    out
}

fn latency_cells(s: &LatencySummary) -> String {
    if s.count == 0 {
        return format!(
            "{:>8} {:>8} {:>8} {:>8} {:>8} {:>8} {:>8} {:>8}",
            "-", "-", "-", "-", "-", "-", "-", "-"
        );
    }
    [
        s.min_ms, s.p50_ms, s.p90_ms, s.p95_ms, s.p99_ms, s.p99_9_ms, s.max_ms, s.mean_ms,
    ]
    .iter()
    .map(|v| format!("{:>8}", fmt_num(*v)))
    .collect::<Vec<_>>()
    .join(" ")
}

/// `closed model, 8 connections, 400 requests per endpoint, warm-up 40, timeout 10000 ms`.
pub fn describe_load(load: &LoadSettings) -> String {
    let model = match load.rate {
        Some(rate) => format!(
            "open model at {} req/s, at most {} in flight",
            fmt_num(rate),
            load.concurrency
        ),
        None => format!("closed model, {} connections", load.concurrency),
    };
    let amount = match (load.requests, load.duration_ms) {
        (Some(n), _) => format!("{n} requests per endpoint"),
        (None, Some(ms)) => format!("{} s per endpoint", fmt_num(ms as f64 / 1000.0)),
        (None, None) => "no requests".to_string(),
    };
    format!(
        "{model}, {amount}, warm-up {}, timeout {} ms",
        load.warmup, load.timeout_ms
    )
}

/// The Markdown summary for `$GITHUB_STEP_SUMMARY`.
pub fn markdown(report: &SmokeReport) -> String {
    let mut out = String::new();
    let _ = writeln!(
        out,
        "### smoke: {} ({})\n",
        report.verdict,
        cell(&report.url)
    );
    if !report.checks.is_empty() {
        let _ = writeln!(out, "| check | verdict | evidence |\n|---|---|---|");
        for c in &report.checks {
            let _ = writeln!(
                out,
                "| {} | {} | {} |",
                cell(&c.id),
                c.verdict,
                cell(&c.summary())
            );
        }
        out.push('\n');
    }
    if let Some(bench) = &report.benchmark {
        let _ = writeln!(out, "{}\n", cell(&describe_load(&bench.load)));
        let _ = writeln!(
            out,
            "| endpoint | verdict | requests | errors | req/s | p50 ms | p95 ms | p99 ms | max ms | thresholds |\n|---|---|---|---|---|---|---|---|---|---|"
        );
        for e in &bench.endpoints {
            let _ = writeln!(out, "{}", endpoint_row(e));
        }
        out.push('\n');
    }
    out
}

fn endpoint_row(e: &EndpointReport) -> String {
    let thresholds: Vec<String> = e
        .thresholds
        .iter()
        .map(|t| format!("{} {}", t.verdict(), t.check.summary()))
        .collect();
    format!(
        "| {} | {} | {} | {} | {} | {} | {} | {} | {} | {} |",
        cell(&e.name),
        e.verdict,
        e.requests,
        cell(&e.errors.describe()),
        fmt_num(e.throughput_rps),
        fmt_num(e.latency.p50_ms),
        fmt_num(e.latency.p95_ms),
        fmt_num(e.latency.p99_ms),
        fmt_num(e.latency.max_ms),
        cell(&thresholds.join("; "))
    )
}

/// The JUnit cases of a smoke run: each check, then each threshold of each endpoint.
pub fn junit_suite(environment: &str, report: &SmokeReport) -> Suite {
    let mut cases: Vec<Case> = report
        .checks
        .iter()
        .map(|c| check_case("smoke.checks", c))
        .collect();
    match &report.benchmark {
        None => cases.push(Case {
            classname: "smoke.thresholds".into(),
            name: "benchmark".into(),
            verdict: Verdict::Skip,
            message: "the benchmark did not run, so no threshold was measured".into(),
        }),
        Some(bench) => {
            for endpoint in &bench.endpoints {
                for threshold in &endpoint.thresholds {
                    let mut case = check_case("smoke.thresholds", &threshold.check);
                    case.name = format!("{} {}", endpoint.name, case.name);
                    cases.push(case);
                }
            }
        }
    }
    Suite {
        name: format!("smoke ({environment})"),
        cases,
    }
}
