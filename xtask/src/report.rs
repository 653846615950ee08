//! `cargo xtask report`: renders the saved results of an environment into Markdown (and
//! optionally HTML) for reviewers. It measures nothing: it reads `target/xtask/runs/`,
//! `ops/deploy.toml` and `ops/PROD_READINESS_CHECKLIST.md`, never an env file.

mod assess;
mod checklist;
mod context;
mod decision_map;
#[cfg(test)]
pub(crate) use decision_map::tests::every_task_command;
mod deploys;
mod freshness;
mod history;
mod html;
mod map;
mod promoted;
mod promotes;
mod records;
mod recovery;
mod rows;
mod stability;
mod steps;
mod templates;
mod views;

use std::path::{Path, PathBuf};

use anyhow::{Context, bail};
use chrono::{DateTime, Utc};

pub use assess::{Assessment, Overall, Provenance};
pub use checklist::{CHECKLIST_PATH, Checklist};
pub use context::ReportContext;
pub use decision_map::{DecisionMap, Next, State, Step, StepId};
pub use recovery::{
    BACKUP_MAX_AGE_HOURS, DRILL_MAX_AGE_DAYS, RecoveryView, lines as recovery_lines,
};
pub use stability::{Cell, StabilityGate, WatchView};
pub use templates::{OVERRIDE_DIR, REPORT_TEMPLATE};

use crate::config::{CONFIG_PATH, DeployConfig, WatchSettings};
use crate::records::screen::Trust;
use crate::repo::{GitState, Repo};
use crate::verdict::Verdict;

/// Where the summary is written, relative to the repository root (or `--out`).
pub const SUMMARY_PATH: &str = "backend/docs/DEPLOYMENT_SUMMARY.md";
/// Where the dated copies go.
pub const REPORTS_DIR: &str = "backend/docs/reports";

/// Options of `cargo xtask report`.
///
/// Exit codes: 0 when the report was written (whatever its verdict, which is printed);
/// with `--check`, 0 only for GO and 1 for NO-GO or INCOMPLETE; 2 when it could not run
/// (no results at all, a corrupt record, a broken template).
#[derive(Debug, Clone, Default)]
pub struct RunOptions {
    /// The environment to report on [default: the environment of the newest saved result].
    pub env: Option<String>,
    /// Write under DIR (DIR/backend/docs/...) instead of the repository root.
    pub out: Option<PathBuf>,
    /// Also write each report as a standalone HTML page beside the Markdown.
    pub html: bool,
    /// Exit with the verdict: 0 for GO, 1 for NO-GO or INCOMPLETE (for CI gates).
    pub check: bool,
}

/// What a report is rendered for.
#[derive(Debug, Clone, Default)]
pub struct Options {
    /// The environment; `None` takes the environment of the newest record.
    pub env: Option<String>,
}

/// A rendered report.
#[derive(Debug, Clone)]
pub struct Rendered {
    /// The environment it describes.
    pub environment: String,
    /// GO, NO-GO or INCOMPLETE.
    pub overall: Overall,
    /// The context the templates saw (the map, the verdict reasons, the sections).
    pub context: ReportContext,
    /// The Markdown.
    pub markdown: String,
    /// The history chart (inline SVG) for the HTML page, when there is a benchmarked run.
    pub chart: Option<String>,
}

impl Rendered {
    /// The report as a standalone HTML page.
    pub fn html(&self) -> String {
        let page = html::page_with_chart(
            &format!("Deployment summary: {}", self.environment),
            &self.markdown,
            self.chart.as_deref(),
        );
        // The Markdown marks where the timeline goes; the page draws it there as SVG.
        match &self.context.stability {
            Some(view) => page.replacen(stability::SVG_MARKER, &view.svg, 1),
            None => page,
        }
    }
}

/// Builds the context of `environment` (or of the newest record's) from the saved results.
/// `now` and `head` are inputs so that tests pin them.
pub fn context(
    repo: &Repo,
    options: &Options,
    now: DateTime<Utc>,
    head: Option<&GitState>,
) -> anyhow::Result<ReportContext> {
    context_trusting(repo, options, &Trust::default(), now, head)
}

/// [`context`] from the records `trust` allows: a record whose signature fails is never used
/// (a WARN names it); under `trust.signed_only` only records CI signed count, the others are
/// named, and a failing signature or a missing key makes the verdict NO-GO.
pub fn context_trusting(
    repo: &Repo,
    options: &Options,
    trust: &Trust,
    now: DateTime<Utc>,
    head: Option<&GitState>,
) -> anyhow::Result<ReportContext> {
    let (records, screened) = records::RecordSet::load_screened(repo, trust)?;
    let environment = match &options.env {
        Some(env) => env.clone(),
        None => match records.newest_environment() {
            Some(env) => env.to_string(),
            None if records.is_empty() => {
                bail!("no results yet: run cargo xtask predeploy first")
            }
            None => bail!(
                "only predeploy results for all environments so far: name one with --env \
                 (for example --env staging)"
            ),
        },
    };
    let config_path = repo.path(CONFIG_PATH);
    let config = if config_path.exists() {
        Some(DeployConfig::load(repo)?)
    } else {
        None
    };
    let settings = config
        .as_ref()
        .and_then(|c| c.environments.get(&environment));
    if settings.is_none() && !records.has_environment(&environment) {
        let known: Vec<&str> = config
            .iter()
            .flat_map(|c| c.environments.keys().map(String::as_str))
            .collect();
        bail!(
            "no environment `{environment}` in {CONFIG_PATH} and no results recorded under it; \
             configured: {}",
            known.join(", ")
        );
    }
    let mut results = records.results(&environment, settings.is_some())?;
    if let Some(settings) = settings {
        results.compare_secrets(repo, settings);
    }
    let staging = if environment == decision_map::STAGING {
        results.clone()
    } else {
        records.results(decision_map::STAGING, true)?
    };
    // The checklist is production's: its computed items read production's backups and drills.
    let production_recovery = recovery::view(&records, decision_map::PRODUCTION, now)?;
    let checklist_path = repo.path(CHECKLIST_PATH);
    let checklist =
        match crate::files::read_text_capped(&checklist_path, crate::files::CONFIG_LIMIT) {
            Ok(text) => Some(checklist::parse_with(
                &text,
                &production_recovery.evidence(),
            )),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => None,
            Err(e) => {
                return Err(e).with_context(|| format!("reading {}", checklist_path.display()));
            }
        };
    let history_settings = config
        .as_ref()
        .map(|c| c.history.clone())
        .unwrap_or_default();
    let history = history::history(
        &records.recent("smoke", &environment, history_settings.runs)?,
        &records.recent("overlap", &environment, history_settings.runs)?,
        &history_settings,
    );
    let mut built = context::build(&context::Inputs {
        environment: &environment,
        app: settings.map(|s| s.app.as_str()),
        url: settings.map(|s| s.url.as_str()),
        deployable: settings.is_some(),
        results: &results,
        staging: &staging,
        checklist: checklist.as_ref(),
        now,
        head,
        watch_coverage_pct: config
            .as_ref()
            .map_or(WatchSettings::default().coverage_pct, |c| {
                c.watch.coverage_pct
            }),
    });
    built
        .verdict
        .warnings
        .extend(history.warnings.iter().cloned());
    built.verdict.warnings.extend(screened.warnings());
    if let Some(reason) = screened.blocking() {
        built.verdict.label = Overall::NoGo.label().to_string();
        built.verdict.reasons.push(reason);
    }
    built.history = history;
    built.provenance = screened;
    built.recovery = Some(if environment == decision_map::PRODUCTION {
        production_recovery
    } else {
        recovery::view(&records, &environment, now)?
    });
    Ok(built)
}

/// Renders the report of an environment with the templates (embedded, or overridden from
/// `<repo>/ops/templates/`).
pub fn render(
    repo: &Repo,
    options: &Options,
    now: DateTime<Utc>,
    head: Option<&GitState>,
) -> anyhow::Result<Rendered> {
    render_trusting(repo, options, &Trust::default(), now, head)
}

/// [`render`] from the records `trust` allows (see [`context_trusting`]).
pub fn render_trusting(
    repo: &Repo,
    options: &Options,
    trust: &Trust,
    now: DateTime<Utc>,
    head: Option<&GitState>,
) -> anyhow::Result<Rendered> {
    let context = context_trusting(repo, options, trust, now, head)?;
    let env = templates::environment(Some(repo.path(OVERRIDE_DIR)));
    let value = templates::to_value(
        serde_json::to_value(&context).context("serialising the report context")?,
    );
    let markdown = templates::render(&env, REPORT_TEMPLATE, value)?;
    let overall = match context.verdict.label.as_str() {
        "GO" => Overall::Go,
        "NO-GO" => Overall::NoGo,
        _ => Overall::Incomplete,
    };
    Ok(Rendered {
        environment: context.environment.clone(),
        overall,
        chart: history::chart(&context.history),
        context,
        markdown,
    })
}

/// The files a report was written to.
#[derive(Debug, Clone)]
pub struct Written {
    /// `backend/docs/DEPLOYMENT_SUMMARY.md` and the dated copy, plus their HTML pages.
    pub paths: Vec<PathBuf>,
}

/// Writes the summary and its dated copy under `root` (and the HTML pages when asked).
pub fn write(
    rendered: &Rendered,
    root: &Path,
    now: DateTime<Utc>,
    with_html: bool,
) -> anyhow::Result<Written> {
    let summary = root.join(SUMMARY_PATH);
    let dated = root.join(REPORTS_DIR).join(format!(
        "{}-{}.md",
        file_safe(&rendered.environment),
        now.format("%Y%m%dT%H%M%SZ")
    ));
    let mut paths = Vec::new();
    for path in [summary, dated] {
        write_file(&path, &rendered.markdown)?;
        paths.push(path.clone());
        if with_html {
            let page = path.with_extension("html");
            write_file(&page, &rendered.html())?;
            paths.push(page);
        }
    }
    Ok(Written { paths })
}

fn write_file(path: &Path, text: &str) -> anyhow::Result<()> {
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    }
    std::fs::write(path, text).with_context(|| format!("writing {}", path.display()))
}

fn file_safe(name: &str) -> String {
    name.chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '-' || c == '_' {
                c
            } else {
                '_'
            }
        })
        .collect()
}

/// Entry point of `cargo xtask report`.
pub fn run(args: RunOptions) -> anyhow::Result<Verdict> {
    let repo = Repo::discover()?;
    let now = Utc::now();
    let head = repo.git_state();
    // Production's gate counts only what CI signed; every report leaves out a record whose
    // signature fails.
    let gates_production = args.check && args.env.as_deref() == Some(decision_map::PRODUCTION);
    let trust = Trust::from_env(gates_production)?;
    let rendered = render_trusting(
        &repo,
        &Options {
            env: args.env.clone(),
        },
        &trust,
        now,
        head.as_ref(),
    )?;
    let root = args
        .out
        .clone()
        .unwrap_or_else(|| repo.root().to_path_buf());
    let written = write(&rendered, &root, now, args.html)?;
    crate::output::append_step_summary(&rendered.markdown)?;
    for path in &written.paths {
        crate::output::say(format_args!("wrote {}", path.display()));
    }
    crate::output::say(format_args!(
        "{}: {}",
        rendered.environment,
        rendered.overall.label()
    ));
    for reason in &rendered.context.verdict.reasons {
        crate::output::say(format_args!("  - {reason}"));
    }
    for warning in &rendered.context.provenance.warnings() {
        crate::output::say(format_args!("  WARN: {warning}"));
    }
    if let Some(command) = &rendered.context.map.next.command {
        crate::output::say(format_args!("next: {command}"));
    }
    Ok(match (args.check, rendered.overall) {
        (false, _) | (true, Overall::Go) => Verdict::Pass,
        (true, _) => Verdict::Fail,
    })
}
