//! The 24-hour gate: the release serving on staging must have been watched (`cargo xtask
//! watch`) over enough of the 24 hours since its deploy, with no breach. Pure: the clock, the
//! deploy and the watch records are inputs.
//!
//! The 24 hours are 24 hourly cells from the deploy's start. A cell is covered when a watch
//! sample was taken in it; coverage is covered cells over 24 (an hourly 10-minute watch covers
//! every cell). Breaches count from the deploy on, except the version change *to* the deployed
//! image, which is the deploy itself. A newer deploy restarts the clock: its window starts
//! later, and what was seen before it is not about it.

use std::fmt::Write;

use chrono::{DateTime, Duration, Utc};
use serde::Serialize;

use super::map::State;
use super::records::Saved;
pub use super::views::{BreachView, WatchView};

/// Hours in the gate's window.
pub const WINDOW_HOURS: usize = 24;

/// The marker in the Markdown report where the HTML page draws the timeline as SVG.
pub const SVG_MARKER: &str = "<!-- stability-timeline -->";

/// What one hour of the window shows.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Cell {
    /// Watched, no breach.
    Ok,
    /// Watched, with a breach.
    Breach,
    /// Past, and nothing watched it.
    Gap,
    /// Not reached yet.
    Future,
}

impl Cell {
    /// One character for the Markdown timeline.
    pub fn symbol(self) -> &'static str {
        match self {
            Cell::Ok => "ok",
            Cell::Breach => "**X**",
            Cell::Gap => "-",
            Cell::Future => " ",
        }
    }

    fn color(self) -> &'static str {
        match self {
            Cell::Ok => "#2da44e",
            Cell::Breach => "#cf222e",
            Cell::Gap => "#d0d7de",
            Cell::Future => "#ffffff",
        }
    }
}

/// The gate's outcome and its timeline.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct StabilityGate {
    /// The step's state.
    pub state: State,
    /// Why, in a sentence.
    pub evidence: String,
    /// When the window starts (the deploy).
    pub since: DateTime<Utc>,
    /// Covered hours of the 24, in percent.
    pub coverage_pct: f64,
    /// The coverage required.
    pub required_pct: f64,
    /// The 24 hourly cells.
    pub hours: Vec<Cell>,
    /// Every breach in the window, in time order.
    pub breaches: Vec<BreachView>,
}

/// Judges the window since `deployed_at` of the release serving `image` from `watches`.
pub fn gate(
    deployed_at: DateTime<Utc>,
    image: Option<&str>,
    watches: &[Saved<WatchView>],
    now: DateTime<Utc>,
    required_pct: f64,
) -> StabilityGate {
    let end = deployed_at + Duration::hours(WINDOW_HOURS as i64);
    let hour_of = |at: DateTime<Utc>| -> Option<usize> {
        (at >= deployed_at && at < end).then(|| (at - deployed_at).num_hours() as usize)
    };
    let mut watched = [false; WINDOW_HOURS];
    let mut breached = [false; WINDOW_HOURS];
    let mut breaches: Vec<BreachView> = Vec::new();
    for record in watches {
        for sample in &record.result.samples {
            // A sample of another build says nothing about this release.
            let seen = sample.build.as_ref().and_then(|b| b.image.as_deref());
            if image.is_some() && seen.is_some() && seen != image {
                continue;
            }
            if let Some(hour) = hour_of(sample.at) {
                watched[hour] = true;
            }
        }
        for breach in &record.result.stats.breaches {
            let planned = breach.kind == "version_change"
                && image.is_some()
                && breach.to_build.as_deref() == image;
            if let Some(hour) = hour_of(breach.at).filter(|_| !planned) {
                breached[hour] = true;
                breaches.push(breach.clone());
            }
        }
    }
    breaches.sort_by_key(|b| b.at);
    breaches.dedup();
    let hours: Vec<Cell> = (0..WINDOW_HOURS)
        .map(|h| {
            let start = deployed_at + Duration::hours(h as i64);
            match (breached[h], watched[h]) {
                (true, _) => Cell::Breach,
                (false, true) => Cell::Ok,
                (false, false) if start + Duration::hours(1) <= now => Cell::Gap,
                (false, false) => Cell::Future,
            }
        })
        .collect();
    let covered = watched.iter().filter(|w| **w).count();
    let coverage_pct = covered as f64 * 100.0 / WINDOW_HOURS as f64;
    let (state, evidence) = if let Some(first) = breaches.first() {
        (
            State::Failed,
            format!(
                "{} breach(es) since the deploy, the first at {}: {}",
                breaches.len(),
                first.at.format("%Y-%m-%d %H:%M UTC"),
                first.detail
            ),
        )
    } else if now < end {
        (
            State::Pending,
            format!(
                "watched {covered} of {WINDOW_HOURS} h so far, no breach; the window closes at {}",
                end.format("%Y-%m-%d %H:%M UTC")
            ),
        )
    } else if coverage_pct + 1e-9 >= required_pct {
        (
            State::Done,
            format!(
                "watched {covered} of {WINDOW_HOURS} h since the deploy ({coverage_pct:.0} %, \
                 needs {required_pct} %), no breach"
            ),
        )
    } else {
        (
            State::Failed,
            format!(
                "watch covered {covered} of {WINDOW_HOURS} h since the deploy \
                 ({coverage_pct:.0} %), needs {required_pct} %: deploy again and watch hourly"
            ),
        )
    };
    StabilityGate {
        state,
        evidence,
        since: deployed_at,
        coverage_pct,
        required_pct,
        hours,
        breaches,
    }
}

/// The timeline as a Markdown table: one column per hour since the deploy.
pub fn markdown(gate: &StabilityGate) -> String {
    let mut text = String::from("| hour |");
    for h in 0..gate.hours.len() {
        let _ = write!(text, " {h} |");
    }
    text.push_str("\n| --- |");
    text.push_str(&" --- |".repeat(gate.hours.len()));
    text.push_str("\n| watch |");
    for cell in &gate.hours {
        let _ = write!(text, " {} |", cell.symbol());
    }
    text.push('\n');
    text
}

/// The timeline as an inline SVG (no script): one rectangle per hour, titled.
pub fn svg(gate: &StabilityGate) -> String {
    const W: usize = 24;
    const H: usize = 24;
    let width = W * gate.hours.len() + 2;
    let mut text = format!(
        "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"{width}\" height=\"{}\" \
         role=\"img\" aria-label=\"watch coverage per hour since the deploy\">\n",
        H + 18
    );
    for (h, cell) in gate.hours.iter().enumerate() {
        let start = gate.since + Duration::hours(h as i64);
        let _ = writeln!(
            text,
            "<rect x=\"{}\" y=\"1\" width=\"{}\" height=\"{H}\" fill=\"{}\" stroke=\"#8c959f\">\
             <title>{} +{h}h: {:?}</title></rect>",
            1 + h * W,
            W - 2,
            cell.color(),
            start.format("%Y-%m-%d %H:%M UTC"),
            cell
        );
        if h % 6 == 0 {
            let _ = writeln!(
                text,
                "<text x=\"{}\" y=\"{}\" font-size=\"10\">{h}h</text>",
                1 + h * W,
                H + 14
            );
        }
    }
    text.push_str("</svg>");
    text
}

#[cfg(test)]
mod tests {
    use super::super::views::{BuildView, SampleView, WatchStatsView};
    use super::*;
    use crate::verdict::Verdict;

    fn t(hours: f64) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339("2026-11-26T09:00:00Z")
            .unwrap()
            .to_utc()
            + Duration::minutes((hours * 60.0) as i64)
    }

    fn watch(hours: &[usize], breaches: Vec<BreachView>) -> Saved<WatchView> {
        Saved {
            schema_version: 1,
            task: "watch".into(),
            environment: "staging".into(),
            git: None,
            started_at: t(0.0),
            duration_ms: 0,
            tool_version: String::new(),
            verdict: Verdict::Pass,
            result: WatchView {
                samples: hours
                    .iter()
                    .map(|h| SampleView {
                        at: t(*h as f64 + 0.25),
                        build: None,
                    })
                    .collect(),
                stats: WatchStatsView { breaches },
            },
        }
    }

    fn breach(hours: f64, kind: &str, to_build: Option<&str>) -> BreachView {
        BreachView {
            at: t(hours),
            kind: kind.into(),
            detail: format!("{kind} seen"),
            to_build: to_build.map(str::to_string),
        }
    }

    const IMAGE: Option<&str> = Some("registry.fly.io/app:v2");

    #[test]
    fn full_coverage_without_breach_passes() {
        let all: Vec<usize> = (0..24).collect();
        let gate = gate(t(0.0), IMAGE, &[watch(&all, vec![])], t(25.0), 90.0);
        assert_eq!(gate.state, State::Done, "{}", gate.evidence);
        assert_eq!(gate.coverage_pct, 100.0);
        assert!(gate.hours.iter().all(|c| *c == Cell::Ok));
    }

    #[test]
    fn eighty_percent_coverage_fails() {
        let some: Vec<usize> = (0..19).collect(); // 19 of 24 = 79 %
        let gate = gate(t(0.0), IMAGE, &[watch(&some, vec![])], t(25.0), 90.0);
        assert_eq!(gate.state, State::Failed, "{}", gate.evidence);
        assert!(gate.evidence.contains("19 of 24"), "{}", gate.evidence);
        assert_eq!(gate.hours[20], Cell::Gap);
        let enough: Vec<usize> = (0..22).collect(); // 22 of 24 = 91.7 %
        let gate = super::gate(t(0.0), IMAGE, &[watch(&enough, vec![])], t(25.0), 90.0);
        assert_eq!(gate.state, State::Done, "{}", gate.evidence);
    }

    #[test]
    fn a_breach_fails_and_is_listed_at_its_hour() {
        let all: Vec<usize> = (0..24).collect();
        let breaches = vec![breach(7.5, "log_lines", None)];
        let gate = gate(t(0.0), IMAGE, &[watch(&all, breaches)], t(25.0), 90.0);
        assert_eq!(gate.state, State::Failed);
        assert_eq!(gate.hours[7], Cell::Breach);
        assert_eq!(gate.breaches.len(), 1);
        assert!(
            gate.evidence.contains("2026-11-26 16:30 UTC"),
            "{}",
            gate.evidence
        );
    }

    #[test]
    fn the_change_to_the_deployed_image_is_the_deploy_not_a_breach() {
        let all: Vec<usize> = (0..24).collect();
        let planned = vec![breach(0.2, "version_change", IMAGE)];
        let ok = gate(t(0.0), IMAGE, &[watch(&all, planned)], t(25.0), 90.0);
        assert_eq!(ok.state, State::Done, "{}", ok.evidence);
        let other = vec![breach(
            3.0,
            "version_change",
            Some("registry.fly.io/app:v3"),
        )];
        let bad = gate(t(0.0), IMAGE, &[watch(&all, other)], t(25.0), 90.0);
        assert_eq!(bad.state, State::Failed);
    }

    #[test]
    fn a_new_release_restarts_the_clock() {
        // Watched for a full day, with a breach, before the new deploy at hour 30: none of it
        // counts for the new release, whose window has only begun.
        let before: Vec<usize> = (0..30).collect();
        let old = watch(&before, vec![breach(10.0, "error_rate", None)]);
        let gate = gate(t(30.0), IMAGE, &[old], t(32.0), 90.0);
        assert_eq!(gate.state, State::Pending, "{}", gate.evidence);
        assert!(gate.breaches.is_empty());
        assert_eq!(gate.coverage_pct, 0.0);
        assert_eq!(gate.hours[0], Cell::Gap);
        assert_eq!(gate.hours[5], Cell::Future);
    }

    #[test]
    fn samples_of_another_build_do_not_cover_the_release() {
        let all: Vec<usize> = (0..24).collect();
        let mut record = watch(&all, vec![]);
        for sample in record.result.samples.iter_mut().take(5) {
            sample.build = Some(BuildView {
                image: Some("registry.fly.io/app:v1".into()),
            });
        }
        let gate = gate(t(0.0), IMAGE, &[record], t(25.0), 90.0);
        assert_eq!(gate.coverage_pct, 19.0 * 100.0 / 24.0);
        assert_eq!(gate.state, State::Failed, "{}", gate.evidence);
    }

    #[test]
    fn the_svg_has_a_rect_per_hour_and_no_script() {
        let gate = gate(t(0.0), IMAGE, &[watch(&[0, 1], vec![])], t(3.0), 90.0);
        let svg = svg(&gate);
        assert_eq!(svg.matches("<rect").count(), 24);
        assert!(!svg.contains("<script"));
    }
}
