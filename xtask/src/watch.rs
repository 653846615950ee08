//! `cargo xtask watch`: samples a running service for a bounded time and saves a stability
//! record (samples, coverage, breaches with timestamps) that the 24-hour gate reads.
//!
//! Each interval takes one [`Sample`]: healthz, readyz, the version endpoint, a scrape of
//! `/metrics`, and (when the environment has a Fly app and flyctl is there) the error and panic
//! lines `flyctl logs --no-tail` shows since the previous sample, masked. With a Fly app the
//! scrape is per machine: each sample lists the machines (`flyctl machines list --json`) and
//! asks every started one for its version and `/metrics` through the public URL with
//! `fly-force-instance-id`, since the proxy would otherwise answer consecutive scrapes from
//! different machines and their counters would seem to go back. [`stats::compute`]
//! turns the samples into availability, per-route deltas, interval p95 and the breaches; it
//! is pure. Time is an input: [`observe`] asks a [`Pacer`] when each sample is due, so tests
//! step through instants of their choosing. Ctrl-C saves what has been seen.

pub mod breach;
pub mod logs;
pub mod machines;
pub mod plan;
pub mod record;
pub mod render;
pub mod sample;
pub mod scrape;
pub mod stats;

use std::sync::{Arc, Mutex};
use std::time::Duration;

use crate::config::{CONFIG_PATH, Target, Thresholds, WatchSettings};
use crate::flyctl::Flyctl;
use crate::output::Output;
use crate::record::RunClock;
use crate::repo::Repo;
use crate::verdict::Verdict;

pub use plan::{Pacer, WallClock, WatchPlan};
pub use record::StabilityRecord;
pub use sample::{LogSource, MachineSample, MachineSource, Sample, Sampler};
pub use stats::{Breach, BreachKind, Limits};

/// The task name in run records.
pub const TASK: &str = "watch";

/// Options of `cargo xtask watch`.
#[derive(Debug, Clone)]
pub struct Options {
    /// Environment from ops/deploy.toml to watch (its URL, thresholds, Fly app for logs).
    pub env: Option<String>,
    /// Base URL to watch instead, e.g. http://127.0.0.1:8080 (recorded as `adhoc`; no logs).
    pub url: Option<String>,
    /// How long to watch, e.g. 10m; the run stops by itself then.
    pub duration: Duration,
    /// Time between samples, e.g. 30s (default: [watch] every_secs in ops/deploy.toml, 30s).
    pub every: Option<Duration>,
}

/// Takes the plan's samples at the times `pacer` gives, handing each to `seen` as it comes.
pub async fn observe<P: Pacer>(
    sampler: &mut Sampler,
    plan: &WatchPlan,
    pacer: &mut P,
    mut seen: impl FnMut(&Sample),
) -> Vec<Sample> {
    let mut samples = Vec::with_capacity(plan.planned_samples());
    for index in 0..plan.planned_samples() {
        let at = pacer.wait(index).await;
        let sample = sampler.sample(at).await;
        seen(&sample);
        samples.push(sample);
    }
    samples
}

/// The limits of a watch: the config's thresholds and floor.
pub fn limits(thresholds: &Thresholds, settings: &WatchSettings) -> Limits {
    Limits {
        availability_floor_pct: settings.availability_floor_pct,
        error_rate_pct: thresholds.error_rate_pct,
        p95_ms: thresholds.p95_ms,
    }
}

/// Entry point: resolves the target, samples until the end (or Ctrl-C), saves the record.
pub fn run(args: Options, output: Output) -> anyhow::Result<Verdict> {
    let out = output;
    let repo = Repo::discover()?;
    let (config, target) = Target::resolve(&repo, args.env.as_deref(), args.url.as_deref())?;
    let (thresholds, settings) = match &config {
        Some(config) => (
            config.thresholds_for(&target.environment),
            config.watch.clone(),
        ),
        None => (Thresholds::default(), WatchSettings::default()),
    };
    let every = match args.every {
        Some(every) => every,
        None => Duration::try_from_secs_f64(settings.every_secs).map_err(|_| {
            anyhow::anyhow!(
                "[watch] every_secs = {} in {CONFIG_PATH} is not a duration in seconds",
                settings.every_secs
            )
        })?,
    };
    let plan = WatchPlan::new(
        args.duration,
        every,
        limits(&thresholds, &settings),
        settings.log_lines_kept,
    )?;
    let logs = log_source(&repo, &target, settings.log_lines_kept, out);
    let app = logs.as_ref().map(|source| source.app.clone());
    let machines = logs.as_ref().map(|source| MachineSource {
        flyctl: source.flyctl.clone(),
        app: source.app.clone(),
    });
    let timeout = every.clamp(Duration::from_secs(1), Duration::from_secs(10));
    let mut sampler = Sampler::new(target.clone(), timeout, logs)?;
    if let Some(machines) = machines {
        sampler = sampler.per_machine(machines);
    }

    let clock = RunClock::start(TASK);
    let seen: Arc<Mutex<Vec<Sample>>> = Arc::default();
    let finish = {
        let (repo, plan, seen, url, environment) = (
            repo.clone(),
            plan.clone(),
            seen.clone(),
            target.url.clone(),
            target.environment.clone(),
        );
        move |clock: RunClock, interrupted: bool| -> anyhow::Result<Verdict> {
            let samples = seen.lock().unwrap_or_else(|p| p.into_inner()).clone();
            let record = StabilityRecord::new(&url, app.as_deref(), &plan, samples, interrupted);
            let verdict = record.verdict();
            let human = render::human(&record);
            let summary = render::markdown(&record);
            let run = clock.finish(&repo, &environment, verdict, record);
            let ending = crate::finish::Ending {
                human: &human,
                summary: &summary,
                save: true,
                json: out.json(),
            };
            crate::finish::finish(&repo, &run, ending, &mut out.human_writer())?;
            Ok(verdict)
        }
    };
    let on_interrupt = {
        let finish = finish.clone();
        let clock = RunClock::start(TASK);
        move || {
            if let Err(error) = finish(clock, true) {
                eprintln!("error: saving the watch record: {error:#}");
            }
        }
    };
    let guard = crate::interrupt::on_interrupt(on_interrupt);

    let progress = progress_bar(plan.planned_samples() as u64);
    let runtime = crate::http::runtime()?;
    runtime.block_on(async {
        let mut pacer = WallClock::start(plan.every());
        observe(&mut sampler, &plan, &mut pacer, |sample| {
            seen.lock()
                .unwrap_or_else(|p| p.into_inner())
                .push(sample.clone());
            progress.set_message(if sample.available() { "up" } else { "DOWN" });
            progress.inc(1);
        })
        .await
    });
    progress.finish_and_clear();
    drop(guard);
    finish(clock, false)
}

/// A bar on a terminal; hidden (draws nothing) elsewhere.
fn progress_bar(samples: u64) -> indicatif::ProgressBar {
    if !std::io::IsTerminal::is_terminal(&std::io::stderr()) {
        return indicatif::ProgressBar::hidden();
    }
    let bar = indicatif::ProgressBar::new(samples);
    if let Ok(style) = indicatif::ProgressStyle::with_template(
        "watch {bar:30} {pos}/{len} samples, {msg} (eta {eta})",
    ) {
        bar.set_style(style);
    }
    bar
}

/// The app's logs through flyctl, when the target is a configured environment and flyctl is
/// there; the env file's values (when the file is present) are masked in every kept line.
fn log_source(repo: &Repo, target: &Target, keep: usize, out: Output) -> Option<LogSource> {
    let environment = target.settings.as_ref()?;
    let mut flyctl = match Flyctl::from_env(false) {
        Ok(flyctl) => flyctl.in_dir(repo.root()),
        Err(error) => {
            out.human(&format!("note: log lines not read: {error:#}\n"));
            return None;
        }
    };
    if let Ok(plan) = crate::secrets::envfile::plan_import(repo, environment) {
        flyctl.hide_values(plan.entries.iter().map(|(_, value)| value.as_str()));
    }
    Some(LogSource::new(flyctl, &environment.app, keep))
}
