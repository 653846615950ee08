//! The template context: plain data built in Rust from the results. Templates only lay it
//! out; every verdict and state in it was computed here or in `assess`/`decision_map`.

use chrono::{DateTime, Utc};
use serde::Serialize;

use super::assess::{self, Assessment, Provenance};
use super::checklist::{CHECKLIST_PATH, Checklist};
use super::decision_map::{self, DecisionMap, MapInputs, StepId};
use super::deploys::stability_gate;
use super::records::{Results, Saved};
use super::rows::{CheckRow, OverlapData, SmokeData};
use super::rows::{check_row, endpoint_row, overlap_data};
use super::stability::{self, SVG_MARKER};
use crate::repo::GitState;

/// Everything a report is built from.
#[derive(Debug, Clone, Copy)]
pub struct Inputs<'a> {
    /// The environment reported on.
    pub environment: &'a str,
    /// Its Fly app, from `ops/deploy.toml`.
    pub app: Option<&'a str>,
    /// Its public URL, from `ops/deploy.toml`.
    pub url: Option<&'a str>,
    /// Whether it has deploys (it is in `ops/deploy.toml`).
    pub deployable: bool,
    /// Its latest results.
    pub results: &'a Results,
    /// Staging's latest results.
    pub staging: &'a Results,
    /// The production checklist, when present.
    pub checklist: Option<&'a Checklist>,
    /// The clock.
    pub now: DateTime<Utc>,
    /// What is checked out.
    pub head: Option<&'a GitState>,
    /// Share of the 24 h since staging's deploy that watch runs must cover, in percent.
    pub watch_coverage_pct: f64,
}

/// The context every template sees.
#[derive(Debug, Clone, Serialize)]
pub struct ReportContext {
    /// Environment name.
    pub environment: String,
    /// Fly app, when configured.
    pub app: Option<String>,
    /// Public URL: configured, else the one smoke measured.
    pub url: Option<String>,
    /// Short HEAD commit, when in git.
    pub commit: Option<String>,
    /// Whether the tree has uncommitted changes.
    pub dirty: bool,
    /// `YYYY-MM-DD HH:MM UTC`.
    pub generated_at: String,
    /// The xtask version.
    pub tool_version: String,
    /// Whether the environment has deploys.
    pub deployable: bool,
    /// GO / NO-GO / INCOMPLETE and why.
    pub verdict: VerdictView,
    /// The decision map.
    pub map: DecisionMap,
    /// The predeploy section.
    pub predeploy: Section<Vec<CheckRow>>,
    /// The smoke section.
    pub smoke: Section<SmokeData>,
    /// The overlap section.
    pub overlap: Section<OverlapData>,
    /// The last deploy.
    pub deploy: Section<DeployData>,
    /// Production readiness.
    pub readiness: ReadinessView,
    /// The last runs, trends and regressions (filled by `report::context`, which reads every
    /// record; empty here).
    pub history: super::history::HistoryData,
    /// The 24-hour gate of the release serving on staging, when there is one to judge.
    pub stability: Option<StabilityView>,
    /// Which records were used by their signatures, and which were left out
    /// (`records::signature`).
    pub provenance: crate::records::screen::Screened,
    /// The environment's newest backup and restore drill (filled by `report::context`, which
    /// reads every record; `None` here).
    pub recovery: Option<super::recovery::RecoveryView>,
}

/// The 24-hour gate for templates: the timeline and every breach.
#[derive(Debug, Clone, Serialize)]
pub struct StabilityView {
    /// When the window starts (the deploy), `YYYY-MM-DD HH:MM UTC`.
    pub since: String,
    /// Covered hours, in percent.
    pub coverage_pct: String,
    /// Coverage required, in percent.
    pub required_pct: String,
    /// The gate's state and why.
    pub state: String,
    /// The hourly cells as a Markdown table.
    pub timeline: String,
    /// The same as an SVG, for the HTML page (drawn where [`SVG_MARKER`] stands).
    pub svg: String,
    /// The marker the template puts where the SVG goes.
    pub svg_marker: String,
    /// Every breach in the window.
    pub breaches: Vec<BreachRow>,
}

/// One breach for templates.
#[derive(Debug, Clone, Serialize)]
pub struct BreachRow {
    /// When, `YYYY-MM-DD HH:MM:SS UTC`.
    pub at: String,
    /// Its kind.
    pub kind: String,
    /// What was seen.
    pub detail: String,
}

fn stability_view(input: &Inputs, head: Option<&str>) -> Option<StabilityView> {
    if !input.deployable {
        return None;
    }
    let gate = stability_gate(input.staging, input.now, head, input.watch_coverage_pct).ok()?;
    Some(StabilityView {
        since: assess::timestamp(gate.since),
        coverage_pct: format!("{:.0}", gate.coverage_pct),
        required_pct: format!("{}", gate.required_pct),
        state: gate.state.label().to_string(),
        timeline: stability::markdown(&gate),
        svg: stability::svg(&gate),
        svg_marker: SVG_MARKER.to_string(),
        breaches: gate
            .breaches
            .iter()
            .map(|b| BreachRow {
                at: b.at.format("%Y-%m-%d %H:%M:%S UTC").to_string(),
                kind: b.kind.clone(),
                detail: b.detail.clone(),
            })
            .collect(),
    })
}

/// The overall verdict for templates.
#[derive(Debug, Clone, Serialize)]
pub struct VerdictView {
    /// `GO`, `NO-GO` or `INCOMPLETE`.
    pub label: String,
    /// Why.
    pub reasons: Vec<String>,
    /// WARN lines that do not change the verdict (records dated in the future).
    pub warnings: Vec<String>,
}

/// The release network results of a deployed environment are measured against: what the
/// newest deploy left serving (`release v12, image registry.fly.io/app:tag`).
fn serving_release(results: &Results, deployable: bool) -> Option<String> {
    if !deployable {
        return None;
    }
    let deploy = results.deploy.as_ref()?;
    // A rollback after the deploy put another release in place.
    let (version, image) = match &results.rollback {
        Some(r) if r.started_at > deploy.started_at && super::records::passed(r.verdict) => {
            (r.result.to_version, r.result.to_image.clone())
        }
        _ => {
            let release = deploy.result.release.as_ref()?;
            (release.version, release.image_ref.clone())
        }
    };
    let version = version.map(|v| format!("v{v}"));
    match (version, image.as_deref()) {
        (Some(v), Some(image)) => Some(format!("release {v}, image {image}")),
        (Some(v), None) => Some(format!("release {v}")),
        (None, Some(image)) => Some(format!("image {image}")),
        (None, None) => None,
    }
}

/// A section backed by one saved result.
#[derive(Debug, Clone, Serialize)]
pub struct Section<T> {
    /// Whether a result exists.
    pub present: bool,
    /// The command that produces it.
    pub command: String,
    /// Where it came from.
    pub provenance: Option<Provenance>,
    /// Its data.
    pub data: Option<T>,
}

impl<T> Section<T> {
    fn missing(command: String) -> Section<T> {
        Section {
            present: false,
            command,
            provenance: None,
            data: None,
        }
    }
}

/// What a result measured on the service is judged against: HEAD, the last deploy and the
/// release serving (a result older than the deploy, or of another release, is stale).
struct Judged<'a> {
    now: DateTime<Utc>,
    head: Option<&'a str>,
    deployed: Option<DateTime<Utc>>,
    serving: Option<&'a str>,
}

impl Judged<'_> {
    /// The section of `record`: missing without one, else its provenance and the `data` read
    /// from its result.
    fn section<R, T>(
        &self,
        command: String,
        record: Option<&Saved<R>>,
        data: impl FnOnce(&R) -> T,
    ) -> Section<T> {
        let Some(record) = record else {
            return Section::missing(command);
        };
        Section {
            present: true,
            command,
            provenance: Some(assess::provenance(
                record,
                self.now,
                self.head,
                self.deployed,
                self.serving,
            )),
            data: Some(data(&record.result)),
        }
    }
}

/// The last deploy.
#[derive(Debug, Clone, Serialize)]
pub struct DeployData {
    /// The Fly release version, when recorded.
    pub release: Option<String>,
    /// The image reference, when recorded.
    pub image: Option<String>,
    /// The deploy strategy, when recorded.
    pub strategy: Option<String>,
    /// When it started.
    pub time: String,
    /// Its verdict.
    pub verdict: String,
    /// A rollback after it, when there was one.
    pub rolled_back: Option<String>,
}

/// Production readiness progress.
#[derive(Debug, Clone, Serialize)]
pub struct ReadinessView {
    /// Where it is read from.
    pub path: String,
    /// The parsed checklist, when the file exists.
    pub checklist: Option<Checklist>,
}

/// Builds the context.
pub fn build(input: &Inputs) -> ReportContext {
    // Results are matched against the commit and, with uncommitted changes, the exact tree.
    let head_identity = input.head.map(GitState::identity);
    let head_commit = head_identity.as_deref();
    let r = input.results;
    let deployed = assess::deployed_at(r, input.deployable);
    let serving = serving_release(r, input.deployable);
    let serving = serving.as_deref();
    let smoke_url = r.smoke.as_ref().and_then(|s| s.result.url.clone());
    let url = input.url.map(str::to_string).or(smoke_url);
    let map = decision_map::decision_map(&MapInputs {
        environment: input.environment,
        deployable: input.deployable,
        results: r,
        staging: input.staging,
        checklist: input.checklist,
        url: url.as_deref(),
        now: input.now,
        head: head_commit,
        watch_coverage_pct: input.watch_coverage_pct,
    });
    let command_of = |id: StepId, fallback: String| {
        map.step(id)
            .and_then(|s| s.command.clone())
            .unwrap_or(fallback)
    };
    let assessment: Assessment = assess::reconcile(
        assess::assess(r, input.deployable, head_commit),
        map.steps
            .iter()
            .filter(|step| assess::required_for_go(step.id, input.environment, input.deployable)),
    );

    let predeploy = match &r.predeploy {
        None => Section::missing(command_of(
            StepId::Predeploy,
            "cargo xtask predeploy".into(),
        )),
        Some(rec) => Section {
            present: true,
            command: command_of(StepId::Predeploy, String::new()),
            provenance: Some(assess::provenance(rec, input.now, head_commit, None, None)),
            data: Some(rec.result.checks.iter().map(check_row).collect()),
        },
    };
    let on_the_service = Judged {
        now: input.now,
        head: head_commit,
        deployed,
        serving,
    };
    let smoke = on_the_service.section(
        command_of(StepId::Health, "cargo xtask smoke".into()),
        r.smoke.as_ref(),
        |smoke| SmokeData {
            url: smoke.url.clone().unwrap_or_default(),
            checks: smoke.checks.iter().map(check_row).collect(),
            benchmarked: smoke.benchmark.is_some(),
            served: smoke.served_note(),
            load: smoke
                .benchmark
                .as_ref()
                .and_then(|b| b.load.as_ref())
                .map(|l| l.describe()),
            endpoints: smoke
                .benchmark
                .iter()
                .flat_map(|b| &b.endpoints)
                .map(endpoint_row)
                .collect(),
        },
    );
    let overlap = on_the_service.section(
        command_of(StepId::Overlap, "cargo xtask overlap".into()),
        r.overlap.as_ref(),
        overlap_data,
    );
    let deploy_command = command_of(
        StepId::Deploy,
        format!("cargo xtask deploy --env {}", input.environment),
    );
    let deploy = match (&r.deploy, input.deployable) {
        (Some(rec), true) => Section {
            present: true,
            command: deploy_command,
            provenance: Some(assess::provenance(rec, input.now, head_commit, None, None)),
            data: Some(DeployData {
                release: rec
                    .result
                    .release
                    .as_ref()
                    .and_then(|r| r.version)
                    .map(|v| format!("v{v}")),
                image: rec
                    .result
                    .release
                    .as_ref()
                    .and_then(|r| r.image_ref.clone()),
                strategy: rec.result.strategy.clone(),
                time: assess::timestamp(rec.started_at),
                verdict: rec.verdict.label().to_string(),
                rolled_back: decision_map::rolled_back(r),
            }),
        },
        _ => Section::missing(deploy_command),
    };

    ReportContext {
        environment: input.environment.to_string(),
        app: input.app.map(str::to_string),
        url,
        commit: input.head.map(|g| g.short().to_string()),
        dirty: input.head.is_some_and(|g| g.dirty),
        generated_at: assess::timestamp(input.now),
        tool_version: env!("CARGO_PKG_VERSION").to_string(),
        deployable: input.deployable,
        verdict: VerdictView {
            label: assessment.overall.label().to_string(),
            reasons: assessment.reasons,
            warnings: r.warnings.clone(),
        },
        map,
        predeploy,
        smoke,
        overlap,
        deploy,
        history: Default::default(),
        readiness: ReadinessView {
            path: CHECKLIST_PATH.to_string(),
            checklist: input.checklist.cloned(),
        },
        stability: stability_view(input, head_commit),
        provenance: Default::default(),
        recovery: None,
    }
}
