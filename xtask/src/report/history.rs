//! The history section: the last smoke and overlap runs of an environment, the trend of each
//! endpoint's p95 latency and error rate and of the overlap race time, and the comparison of
//! the newest run with the one before. A rise beyond `[history] regression_pct` of
//! `ops/deploy.toml` is a WARN for that endpoint. Pure functions of the records; the chart
//! for `--html` is an inline SVG drawn here (no script, no network).

use std::fmt::Write as _;

use serde::Serialize;

use super::freshness::timestamp;
use super::records::{OverlapView, Saved, SmokeView};
use crate::config::HistorySettings;

/// The history section's data.
#[derive(Debug, Clone, Default, Serialize)]
pub struct HistoryData {
    /// Whether there is any run to show.
    pub present: bool,
    /// The regression limit in percent.
    pub regression_pct: f64,
    /// Latency rises below this are noise, in ms.
    pub regression_floor_ms: f64,
    /// The runs shown, newest first.
    pub runs: Vec<RunRow>,
    /// One trend per benchmarked endpoint, in the order of the newest run.
    pub endpoints: Vec<EndpointTrend>,
    /// The overlap race time, when overlap ran.
    pub race: Option<Trend>,
    /// One WARN line per regression.
    pub warnings: Vec<String>,
}

/// One run in the history table.
#[derive(Debug, Clone, Serialize)]
pub struct RunRow {
    /// `YYYY-MM-DD HH:MM UTC`.
    pub started_at: String,
    /// `smoke` or `overlap`.
    pub task: String,
    /// Its verdict label.
    pub verdict: String,
    /// Short commit.
    pub commit: String,
    /// What it measured, in a few words (the load for smoke, the rounds for overlap).
    pub summary: String,
}

/// A series over runs (oldest first) with the newest compared to the one before.
#[derive(Debug, Clone, Serialize)]
pub struct Trend {
    /// Values, oldest first.
    pub series: Vec<f64>,
    /// `▁▃▅█`: the series at a glance.
    pub sparkline: String,
    /// The run before the newest, when there is one.
    pub previous: Option<f64>,
    /// The newest run.
    pub latest: f64,
    /// `+12.5 %`, `-3.0 %`; `new` when there is no previous run.
    pub change: String,
    /// Whether the newest is a regression over the previous.
    pub regressed: bool,
}

/// An endpoint's p95 latency and error rate over the runs.
#[derive(Debug, Clone, Serialize)]
pub struct EndpointTrend {
    /// Name.
    pub name: String,
    /// Path.
    pub path: String,
    /// p95 latency in ms.
    pub p95: Trend,
    /// Error rate in percent.
    pub error_rate: Trend,
    /// `OK`, `WARN` (a regression) or `NEW` (first run).
    pub verdict: String,
}

/// Builds the section from the newest runs (newest first, as [`super::records::RecordSet`]
/// returns them).
pub fn history(
    smoke: &[Saved<SmokeView>],
    overlap: &[Saved<OverlapView>],
    settings: &HistorySettings,
) -> HistoryData {
    let mut runs: Vec<(chrono::DateTime<chrono::Utc>, RunRow)> = Vec::new();
    for s in smoke {
        let summary = match &s.result.benchmark {
            Some(b) => b
                .load
                .as_ref()
                .map(|l| l.describe())
                .unwrap_or_else(|| "load not recorded".to_string()),
            None => "checks only (no benchmark)".to_string(),
        };
        runs.push((s.started_at, run_row(s, "smoke", summary)));
    }
    for o in overlap {
        let summary = format!(
            "{} round(s) of {} requests",
            o.result.rounds.len(),
            o.result.rounds.first().map_or(0, |r| r.race.requests)
        );
        runs.push((o.started_at, run_row(o, "overlap", summary)));
    }
    runs.sort_by_key(|(at, _)| std::cmp::Reverse(*at));

    // Oldest first from here on.
    let benchmarked: Vec<&Saved<SmokeView>> = smoke
        .iter()
        .rev()
        .filter(|s| s.result.benchmark.is_some())
        .collect();
    let mut warnings = Vec::new();
    let mut endpoints = Vec::new();
    if let Some(newest) = benchmarked.last() {
        for endpoint in newest.result.benchmark.iter().flat_map(|b| &b.endpoints) {
            let points: Vec<(f64, f64)> = benchmarked
                .iter()
                .filter_map(|s| {
                    s.result
                        .benchmark
                        .as_ref()?
                        .endpoints
                        .iter()
                        .find(|e| e.name == endpoint.name)
                        .map(|e| (e.latency.p95_ms, e.error_rate_pct))
                })
                .collect();
            let p95 = trend(
                points.iter().map(|p| p.0).collect(),
                settings.regression_pct,
                settings.regression_floor_ms,
            );
            let error_rate = trend(
                points.iter().map(|p| p.1).collect(),
                settings.regression_pct,
                ERROR_RATE_FLOOR_PCT,
            );
            for (what, t, unit) in [("p95", &p95, "ms"), ("error rate", &error_rate, "%")] {
                if let (true, Some(previous)) = (t.regressed, t.previous) {
                    warnings.push(format!(
                        "smoke {}: {what} {} {unit} against {} {unit} in the previous run ({}, \
                         more than the {} % allowed)",
                        endpoint.name,
                        number(t.latest),
                        number(previous),
                        t.change,
                        number(settings.regression_pct)
                    ));
                }
            }
            let verdict = if p95.regressed || error_rate.regressed {
                "WARN"
            } else if p95.previous.is_none() {
                "NEW"
            } else {
                "OK"
            };
            endpoints.push(EndpointTrend {
                name: endpoint.name.clone(),
                path: endpoint.path.clone(),
                p95,
                error_rate,
                verdict: verdict.to_string(),
            });
        }
    }
    let races: Vec<f64> = overlap
        .iter()
        .rev()
        .filter(|o| !o.result.rounds.is_empty())
        .map(|o| {
            o.result
                .rounds
                .iter()
                .map(|r| r.race_ms)
                .fold(0.0, f64::max)
        })
        .collect();
    let race = (!races.is_empty()).then(|| {
        let t = trend(races, settings.regression_pct, settings.regression_floor_ms);
        if let (true, Some(previous)) = (t.regressed, t.previous) {
            warnings.push(format!(
                "overlap: slowest race {} ms against {} ms in the previous run ({}, more than \
                 the {} % allowed)",
                number(t.latest),
                number(previous),
                t.change,
                number(settings.regression_pct)
            ));
        }
        t
    });
    HistoryData {
        present: !runs.is_empty(),
        regression_pct: settings.regression_pct,
        regression_floor_ms: settings.regression_floor_ms,
        runs: runs.into_iter().map(|(_, row)| row).collect(),
        endpoints,
        race,
        warnings,
    }
}

/// Error-rate rises smaller than this many percentage points are noise.
const ERROR_RATE_FLOOR_PCT: f64 = 0.1;

fn run_row<T>(record: &Saved<T>, task: &str, summary: String) -> RunRow {
    RunRow {
        started_at: timestamp(record.started_at),
        task: task.to_string(),
        verdict: record.verdict.label().to_string(),
        commit: record
            .git
            .as_ref()
            .map(|g| g.short().to_string())
            .unwrap_or_else(|| "unknown".to_string()),
        summary,
    }
}

/// The trend of `series` (oldest first, not empty): a regression is the newest above the one
/// before by more than `pct` percent and by at least `floor` (in the series' unit).
fn trend(series: Vec<f64>, pct: f64, floor: f64) -> Trend {
    let latest = series.last().copied().unwrap_or_default();
    let previous = series.len().checked_sub(2).map(|i| series[i]);
    let (change, regressed) = match previous {
        None => ("new".to_string(), false),
        Some(previous) => {
            let rise = latest - previous;
            let change = if previous > 0.0 {
                format!("{:+.1} %", rise / previous * 100.0)
            } else if rise > 0.0 {
                "up from 0".to_string()
            } else {
                "±0.0 %".to_string()
            };
            (
                change,
                rise >= floor && latest > previous * (1.0 + pct / 100.0),
            )
        }
    };
    Trend {
        sparkline: sparkline(&series),
        series,
        previous,
        latest,
        change,
        regressed,
    }
}

/// `▁▃▅█`, scaled between the series' smallest and largest values.
pub fn sparkline(series: &[f64]) -> String {
    const BARS: [char; 8] = ['▁', '▂', '▃', '▄', '▅', '▆', '▇', '█'];
    let min = series.iter().copied().fold(f64::INFINITY, f64::min);
    let max = series.iter().copied().fold(f64::NEG_INFINITY, f64::max);
    series
        .iter()
        .map(|v| {
            if (max - min).abs() < f64::EPSILON {
                BARS[3]
            } else {
                BARS[(((v - min) / (max - min)) * 7.0).round() as usize]
            }
        })
        .collect()
}

/// A number as the report shows it: no trailing `.0`, at most one decimal.
fn number(value: f64) -> String {
    let text = format!("{value:.1}");
    text.strip_suffix(".0").map(str::to_string).unwrap_or(text)
}

const CHART_WIDTH: f64 = 640.0;
const CHART_HEIGHT: f64 = 240.0;
const MARGIN_LEFT: f64 = 56.0;
const MARGIN_RIGHT: f64 = 16.0;
const MARGIN_TOP: f64 = 16.0;
const MARGIN_BOTTOM: f64 = 40.0;
const COLOURS: [&str; 6] = [
    "#0969da", "#cf222e", "#1a7f37", "#8250df", "#bc4c00", "#57606a",
];

/// The p95 trend of every endpoint as an inline SVG line chart (oldest run on the left);
/// `None` without a benchmarked run. Static markup only: no script, no external reference.
pub fn chart(history: &HistoryData) -> Option<String> {
    if history.endpoints.is_empty() {
        return None;
    }
    let runs = history
        .endpoints
        .iter()
        .map(|e| e.p95.series.len())
        .max()
        .unwrap_or(0);
    let top = history
        .endpoints
        .iter()
        .flat_map(|e| e.p95.series.iter().copied())
        .fold(0.0_f64, f64::max)
        .max(1.0)
        * 1.1;
    let plot_w = CHART_WIDTH - MARGIN_LEFT - MARGIN_RIGHT;
    let plot_h = CHART_HEIGHT - MARGIN_TOP - MARGIN_BOTTOM;
    let x = |i: usize, n: usize| {
        if n <= 1 {
            MARGIN_LEFT + plot_w / 2.0
        } else {
            MARGIN_LEFT + plot_w * i as f64 / (n - 1) as f64
        }
    };
    let y = |v: f64| MARGIN_TOP + plot_h * (1.0 - v / top);
    let mut svg = String::new();
    let _ = writeln!(
        svg,
        "<svg xmlns=\"http://www.w3.org/2000/svg\" role=\"img\" width=\"{CHART_WIDTH}\" \
         height=\"{CHART_HEIGHT}\" viewBox=\"0 0 {CHART_WIDTH} {CHART_HEIGHT}\" \
         font-family=\"system-ui,sans-serif\" font-size=\"11\">"
    );
    let _ = writeln!(
        svg,
        "<title>p95 latency per endpoint over the last {runs} smoke run(s), oldest on the left</title>"
    );
    // Axes and the y scale: 0, half, top.
    let _ = writeln!(
        svg,
        "<g stroke=\"#d0d7de\"><line x1=\"{MARGIN_LEFT}\" y1=\"{MARGIN_TOP}\" x2=\"{MARGIN_LEFT}\" \
         y2=\"{:.1}\"/><line x1=\"{MARGIN_LEFT}\" y1=\"{:.1}\" x2=\"{:.1}\" y2=\"{:.1}\"/></g>",
        y(0.0),
        y(0.0),
        CHART_WIDTH - MARGIN_RIGHT,
        y(0.0)
    );
    for fraction in [0.0, 0.5, 1.0] {
        let value = top / 1.1 * fraction;
        let _ = writeln!(
            svg,
            "<text x=\"{:.1}\" y=\"{:.1}\" text-anchor=\"end\" fill=\"#57606a\">{} ms</text>",
            MARGIN_LEFT - 6.0,
            y(value) + 4.0,
            number(value)
        );
    }
    for (index, endpoint) in history.endpoints.iter().enumerate() {
        let colour = COLOURS[index % COLOURS.len()];
        let n = endpoint.p95.series.len();
        // Series shorter than the longest end at the newest run, like the others.
        let offset = runs - n;
        let points: Vec<String> = endpoint
            .p95
            .series
            .iter()
            .enumerate()
            .map(|(i, v)| format!("{:.1},{:.1}", x(i + offset, runs), y(*v)))
            .collect();
        let _ = writeln!(
            svg,
            "<polyline fill=\"none\" stroke=\"{colour}\" stroke-width=\"2\" points=\"{}\"/>",
            points.join(" ")
        );
        for (i, v) in endpoint.p95.series.iter().enumerate() {
            let _ = writeln!(
                svg,
                "<circle cx=\"{:.1}\" cy=\"{:.1}\" r=\"3\" fill=\"{colour}\"><title>{}: p95 {} ms</title></circle>",
                x(i + offset, runs),
                y(*v),
                crate::escape::html(&endpoint.name),
                number(*v)
            );
        }
        let _ = writeln!(
            svg,
            "<text x=\"{:.1}\" y=\"{:.1}\" fill=\"{colour}\">{} ({})</text>",
            MARGIN_LEFT + 140.0 * index as f64,
            CHART_HEIGHT - 12.0,
            crate::escape::html(&endpoint.name),
            endpoint.verdict
        );
    }
    svg.push_str("</svg>\n");
    Some(svg)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_rise_beyond_the_limit_and_the_floor_is_a_regression() {
        let t = trend(vec![100.0, 130.0], 20.0, 5.0);
        assert!(t.regressed);
        assert_eq!(t.change, "+30.0 %");
        assert!(
            !trend(vec![100.0, 115.0], 20.0, 5.0).regressed,
            "within 20 %"
        );
        assert!(
            !trend(vec![1.0, 3.0], 20.0, 5.0).regressed,
            "under the floor"
        );
        assert!(
            trend(vec![0.0, 0.5], 20.0, 0.1).regressed,
            "errors from none"
        );
        let first = trend(vec![100.0], 20.0, 5.0);
        assert!(!first.regressed);
        assert_eq!(first.change, "new");
    }

    #[test]
    fn sparklines_scale_between_min_and_max() {
        assert_eq!(sparkline(&[1.0, 2.0, 3.0]), "▁▅█");
        assert_eq!(sparkline(&[5.0, 5.0]), "▄▄");
    }
}
