//! The benchmark's result: plain data (saved as JSON under `target/xtask/bench/`) and the pure
//! statistics over it: min/median/max of each figure and of each same-run ratio.

use serde::{Deserialize, Serialize};

use super::client::ClientRun;
use super::machine::Machine;

/// Everything one `cargo xtask bench` measured.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct BenchResult {
    /// When it started (RFC 3339, UTC).
    pub started_at: String,
    /// The machine it ran on.
    pub machine: Machine,
    /// Rounds: run 1 of every client, then run 2, ...
    pub runs: u32,
    /// Seconds per client run.
    pub duration_s: f64,
    /// The service's database: `sqlite` or `postgresql`.
    pub database: String,
    /// The comparisons, in the order they ran within a round.
    pub comparisons: Vec<Comparison>,
}

/// Clients measured side by side against the same target, one run each per round.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Comparison {
    /// Short name, as `--only` takes it.
    pub id: String,
    /// Heading.
    pub title: String,
    /// What is compared and why, one or two sentences.
    pub about: String,
    /// The clients (or targets), in table order.
    pub contestants: Vec<Contestant>,
    /// The same-run ratios shown below the table.
    pub ratios: Vec<RatioSpec>,
}

/// One row of a comparison: a client against a target.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Contestant {
    /// Row label, e.g. `xtask smoke`, `oha`, `hello healthz (wrk)`.
    pub label: String,
    /// The command, with the URL, as a reader would type it.
    pub command: String,
    /// Why it did not run (a tool not installed), with the fix.
    pub missing: Option<String>,
    /// One entry per round, in order.
    pub runs: Vec<RunOutcome>,
}

/// One client run: its figures, or why there are none.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "state", rename_all = "snake_case")]
pub enum RunOutcome {
    /// It ran and printed figures (boxed: a run's figures are many times the size of a
    /// failure's reason).
    Measured(Box<ClientRun>),
    /// It could not run or its output could not be read.
    Failed {
        /// What went wrong.
        reason: String,
    },
}

impl RunOutcome {
    /// The figures, when it measured.
    pub fn measured(&self) -> Option<&ClientRun> {
        match self {
            RunOutcome::Measured(run) => Some(run),
            RunOutcome::Failed { .. } => None,
        }
    }
}

/// A figure of a client run.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Metric {
    /// Requests per second.
    Rps,
    /// Median latency.
    P50,
    /// 99th percentile latency.
    P99,
    /// 99th percentile latency counted from when the client released each request: smoke's
    /// open-model figure from release; any other client's own p99 (oha's
    /// `--latency-correction` counts from its ticker's wake, wrk's from the send).
    P99FromRelease,
    /// Client CPU seconds per 100k requests.
    CpuPer100k,
    /// Server CPU seconds per 100k requests.
    ServerCpuPer100k,
    /// Database CPU seconds per 100k requests.
    DatabaseCpuPer100k,
    /// Client, server and database CPU seconds per 100k requests.
    AllCpuPer100k,
    /// Nanoseconds per request of a client that is its own server, one request at a time
    /// (the in-process stack measurement): the inverse of its rate.
    NsPerRequest,
}

impl Metric {
    /// The figure of one run, when it has one.
    pub fn of(self, run: &ClientRun) -> Option<f64> {
        match self {
            Metric::Rps => (run.requests > 0).then_some(run.rps),
            Metric::P50 => run.p50_ms,
            Metric::P99 => run.p99_ms,
            Metric::P99FromRelease => run.p99_from_release_ms.or(run.p99_ms),
            Metric::CpuPer100k => run.cpu_per_100k(),
            Metric::ServerCpuPer100k => run.server_cpu_per_100k(),
            Metric::DatabaseCpuPer100k => run.database_cpu_per_100k(),
            Metric::AllCpuPer100k => run.all_cpu_per_100k(),
            Metric::NsPerRequest => (run.requests > 0 && run.rps > 0.0).then(|| 1e9 / run.rps),
        }
    }

    /// How the figure is named in a ratio's label.
    pub fn label(self) -> &'static str {
        match self {
            Metric::Rps => "req/s",
            Metric::P50 => "p50",
            Metric::P99 => "p99",
            Metric::P99FromRelease => "p99 counted from release",
            Metric::CpuPer100k => "client CPU per request",
            Metric::ServerCpuPer100k => "server CPU per request",
            Metric::DatabaseCpuPer100k => "database CPU per request",
            Metric::AllCpuPer100k => "CPU per request, all processes",
            Metric::NsPerRequest => "time per request",
        }
    }

    /// The unit of a difference of this figure.
    pub fn difference_unit(self) -> &'static str {
        match self {
            Metric::Rps => " req/s",
            Metric::P50 | Metric::P99 | Metric::P99FromRelease => " ms",
            Metric::NsPerRequest => " ns",
            Metric::CpuPer100k
            | Metric::ServerCpuPer100k
            | Metric::DatabaseCpuPer100k
            | Metric::AllCpuPer100k => " s per 100k",
        }
    }
}

/// `contestants[numerator] / contestants[denominator]` of one figure, per round; or their
/// difference (`numerator - denominator`, in the figure's unit) when `difference` is set.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RatioSpec {
    /// Row label, e.g. `smoke / oha`.
    pub label: String,
    /// Index of the numerator contestant.
    pub numerator: usize,
    /// Index of the denominator contestant.
    pub denominator: usize,
    /// The figure compared.
    pub metric: Metric,
    /// A difference (e.g. added latency in ms) instead of a ratio.
    pub difference: bool,
}

/// The smallest, middle and largest of a set of figures.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Spread {
    /// Smallest.
    pub min: f64,
    /// Median (the mean of the two middle values for an even count).
    pub median: f64,
    /// Largest.
    pub max: f64,
    /// How many values.
    pub count: usize,
}

/// min/median/max of the finite values; `None` when there are none.
pub fn spread(values: impl IntoIterator<Item = f64>) -> Option<Spread> {
    let mut sorted: Vec<f64> = values.into_iter().filter(|v| v.is_finite()).collect();
    if sorted.is_empty() {
        return None;
    }
    sorted.sort_by(f64::total_cmp);
    let n = sorted.len();
    let median = if !n.is_multiple_of(2) {
        sorted[n / 2]
    } else {
        (sorted[n / 2 - 1] + sorted[n / 2]) / 2.0
    };
    Some(Spread {
        min: sorted[0],
        median,
        max: sorted[n - 1],
        count: n,
    })
}

impl Contestant {
    /// min/median/max of one figure over the rounds it measured.
    pub fn spread(&self, metric: Metric) -> Option<Spread> {
        spread(
            self.runs
                .iter()
                .filter_map(RunOutcome::measured)
                .filter_map(|run| metric.of(run)),
        )
    }

    /// min/median/max of any figure of its runs.
    pub fn spread_of(&self, figure: impl Fn(&ClientRun) -> Option<f64>) -> Option<Spread> {
        spread(
            self.runs
                .iter()
                .filter_map(RunOutcome::measured)
                .filter_map(figure),
        )
    }
}

impl Comparison {
    /// The ratio (or difference) of each round where both sides measured, then its spread.
    pub fn ratio(&self, spec: &RatioSpec) -> Option<Spread> {
        let (Some(top), Some(bottom)) = (
            self.contestants.get(spec.numerator),
            self.contestants.get(spec.denominator),
        ) else {
            return None;
        };
        let per_round = top.runs.iter().zip(&bottom.runs).filter_map(|(a, b)| {
            let a = spec.metric.of(a.measured()?)?;
            let b = spec.metric.of(b.measured()?)?;
            if spec.difference {
                Some(a - b)
            } else {
                (b != 0.0).then(|| a / b)
            }
        });
        spread(per_round)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn spread_takes_min_median_and_max() {
        let s = spread([3.0, 1.0, 2.0]).unwrap();
        assert_eq!((s.min, s.median, s.max, s.count), (1.0, 2.0, 3.0, 3));
        let even = spread([4.0, 1.0, 3.0, 2.0]).unwrap();
        assert_eq!(even.median, 2.5);
        assert_eq!(spread([f64::NAN]), None);
        assert_eq!(spread(Vec::new()), None);
    }

    fn run(rps: f64, p50: f64) -> RunOutcome {
        RunOutcome::Measured(Box::new(ClientRun {
            requests: 1000,
            rps,
            p50_ms: Some(p50),
            cpu_s: 1.0,
            ..ClientRun::default()
        }))
    }

    #[test]
    fn ratios_pair_runs_of_the_same_round_and_skip_failed_ones() {
        let contestant = |runs| Contestant {
            label: "x".into(),
            command: "x".into(),
            missing: None,
            runs,
        };
        let failed = RunOutcome::Failed {
            reason: "exit 1".into(),
        };
        let comparison = Comparison {
            id: "c".into(),
            title: "c".into(),
            about: String::new(),
            contestants: vec![
                contestant(vec![run(100.0, 1.0), run(300.0, 1.5), run(90.0, 2.0)]),
                contestant(vec![run(200.0, 0.5), failed, run(100.0, 1.0)]),
            ],
            ratios: Vec::new(),
        };
        let spec = |metric, difference| RatioSpec {
            label: "a / b".into(),
            numerator: 0,
            denominator: 1,
            metric,
            difference,
        };
        let ratio = comparison.ratio(&spec(Metric::Rps, false)).unwrap();
        assert_eq!((ratio.min, ratio.max, ratio.count), (0.5, 0.9, 2));
        let added = comparison.ratio(&spec(Metric::P50, true)).unwrap();
        assert_eq!((added.min, added.max), (0.5, 1.0));
        let cpu = comparison.contestants[0]
            .spread(Metric::CpuPer100k)
            .unwrap();
        assert_eq!(cpu.median, 100.0);
    }

    #[test]
    fn the_p99_from_release_is_smokes_own_figure_or_the_clients_p99() {
        let smoke = ClientRun {
            p99_ms: Some(1.3),
            p99_from_release_ms: Some(0.8),
            ..ClientRun::default()
        };
        let oha = ClientRun {
            p99_ms: Some(0.9),
            ..ClientRun::default()
        };
        assert_eq!(Metric::P99FromRelease.of(&smoke), Some(0.8));
        assert_eq!(Metric::P99.of(&smoke), Some(1.3));
        assert_eq!(Metric::P99FromRelease.of(&oha), Some(0.9));
        assert_eq!(Metric::P99FromRelease.of(&ClientRun::default()), None);
    }
}
