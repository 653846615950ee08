//! `cargo xtask image`: builds the service image the way `fly deploy` does (fly.toml's
//! `[build] dockerfile`, the repository root as context, `--build-arg GIT_COMMIT=<HEAD>`) with
//! the local Docker or Podman, and reports its id, size and build time. With `--check` it
//! then runs the image as Fly would ([`check`]): release command, service, readiness, version,
//! smoke. Exit 1 names the first failing step; exit 2 when no engine can run.

pub mod check;
pub mod engine;

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use serde::Serialize;

use crate::output::Output;
use crate::record::RunClock;
use crate::repo::Repo;
use crate::verdict::Verdict;
pub use engine::{Engine, EngineKind};

/// The task name in run records.
pub const TASK: &str = "image";

/// The environment the record is saved under: the image ran on this machine.
pub const ENVIRONMENT: &str = "local";

/// The tag a build gets unless told otherwise.
pub const DEFAULT_TAG: &str = "sist-cabanas:local";

/// How long the service may take to answer readyz with `--check`, unless told otherwise.
pub const DEFAULT_READY_TIMEOUT: Duration = Duration::from_secs(60);

/// Options of `cargo xtask image`, built from its flags by the command line.
#[derive(Debug, Clone)]
pub struct Options {
    /// Container engine; default: podman, else docker (the first on PATH that runs).
    pub engine: Option<EngineKind>,
    /// Tag of the built image.
    pub tag: String,
    /// Then run it as Fly would: release command, serve (unprivileged, read-only root
    /// filesystem, fly.toml's [env]), readiness, version, smoke; remove every container.
    pub check: bool,
    /// How long the service may take to answer readyz with --check, e.g. 60s.
    pub ready_timeout: Duration,
}

/// One step of the task, as printed and recorded.
#[derive(Debug, Clone, Serialize)]
pub struct Step {
    /// `build`, `release command`, `start`, `readiness`, `version` or `smoke`.
    pub step: &'static str,
    /// Its verdict.
    pub verdict: Verdict,
    /// What was seen.
    pub detail: String,
    /// What to do about a failure.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub fix: Option<String>,
    /// How long it took.
    pub duration_ms: u64,
}

impl Step {
    fn new(step: &'static str, verdict: Verdict, detail: String, fix: Option<String>) -> Step {
        Step {
            step,
            verdict,
            detail,
            fix,
            duration_ms: 0,
        }
    }
    /// A passed step.
    pub fn pass(step: &'static str, detail: impl Into<String>) -> Step {
        Step::new(step, Verdict::Pass, detail.into(), None)
    }
    /// A skipped step.
    pub fn skip(step: &'static str, detail: impl Into<String>) -> Step {
        Step::new(step, Verdict::Skip, detail.into(), None)
    }
    /// A failed step with its fix.
    pub fn fail(step: &'static str, detail: impl Into<String>, fix: impl Into<String>) -> Step {
        Step::new(step, Verdict::Fail, detail.into(), Some(fix.into()))
    }
}

/// The record's `result`.
#[derive(Debug, Clone, Serialize)]
pub struct ImageResult {
    /// `podman` or `docker`.
    pub engine: String,
    /// The tag built.
    pub tag: String,
    /// The Dockerfile, relative to the repository root.
    pub dockerfile: String,
    /// The commit passed as `GIT_COMMIT`.
    pub commit: String,
    /// The image id, when the build succeeded.
    pub image_id: Option<String>,
    /// Its size in bytes.
    pub size_bytes: Option<u64>,
    /// Wall time of the build, in milliseconds (cache hits make it short).
    pub build_ms: u64,
    /// Built on the local stand-in base images of `.ci/base-images`, not the registry's.
    pub stand_in_base: bool,
    /// From starting the service container to readyz 200 (with --check).
    pub start_to_ready_ms: Option<u64>,
    /// The first failing step.
    pub failed_step: Option<&'static str>,
    /// Every step run, in order.
    pub steps: Vec<Step>,
}

/// What the service's fly.toml says about running it.
#[derive(Debug, Clone)]
pub struct ServiceConfig {
    /// `[build] dockerfile`, relative to the root (default `Dockerfile`).
    pub dockerfile: String,
    /// `[env]`, as Fly sets it on every machine.
    pub env: Vec<(String, String)>,
    /// `[deploy] release_command`, split into words.
    pub release_command: Option<Vec<String>>,
    /// How long readiness may take.
    pub ready_timeout: Duration,
}

impl ServiceConfig {
    /// Reads `fly.toml` at the repository root.
    pub fn load(repo: &Repo, ready_timeout: Duration) -> anyhow::Result<ServiceConfig> {
        let path = repo.path("fly.toml");
        let text = crate::files::read_text_capped(&path, crate::files::CONFIG_LIMIT).with_context(
            || {
                format!(
                    "reading {}: image builds what fly.toml names",
                    path.display()
                )
            },
        )?;
        let table: toml::Table = toml::from_str(&text).with_context(|| {
            format!(
                "{} is not valid TOML; fix it (cargo xtask predeploy)",
                path.display()
            )
        })?;
        let dockerfile = table
            .get("build")
            .and_then(|b| b.get("dockerfile"))
            .and_then(|d| d.as_str())
            .unwrap_or("Dockerfile")
            .to_string();
        let env = table
            .get("env")
            .and_then(|e| e.as_table())
            .map(|e| {
                e.iter()
                    .map(|(k, v)| {
                        (
                            k.clone(),
                            v.as_str()
                                .map(str::to_string)
                                .unwrap_or_else(|| v.to_string()),
                        )
                    })
                    .collect()
            })
            .unwrap_or_default();
        let release_command = table
            .get("deploy")
            .and_then(|d| d.get("release_command"))
            .and_then(|c| c.as_str())
            .map(|c| c.split_whitespace().map(str::to_string).collect());
        Ok(ServiceConfig {
            dockerfile,
            env,
            release_command,
            ready_timeout,
        })
    }
}

/// Entry point.
pub fn run(args: Options, output: Output) -> anyhow::Result<Verdict> {
    let repo = Repo::discover()?;
    let engine = engine::find(args.engine, None)?;
    let service = ServiceConfig::load(&repo, args.ready_timeout)?;
    let commit = head(&repo)?;
    let clock = RunClock::start(TASK);
    let say = |line: String| output.human(&format!("{line}\n"));

    let workdir = repo.path("target/xtask/image");
    std::fs::create_dir_all(&workdir).with_context(|| format!("creating {}", workdir.display()))?;
    let log = workdir.join("build.log");
    let dockerfile = repo.path(&service.dockerfile);
    say(format!(
        "==> build: {} build --file {} --tag {} --build-arg GIT_COMMIT={commit} . (log: {})",
        engine.name(),
        service.dockerfile,
        args.tag,
        shown(&repo, &log)
    ));
    let started = Instant::now();
    let built = engine.build(&dockerfile, &args.tag, &commit, repo.root(), &log)?;
    let build_ms = started.elapsed().as_millis() as u64;
    let mut result = ImageResult {
        engine: engine.name().to_string(),
        tag: args.tag.clone(),
        dockerfile: service.dockerfile.clone(),
        commit: commit.clone(),
        image_id: None,
        size_bytes: None,
        build_ms,
        stand_in_base: false,
        start_to_ready_ms: None,
        failed_step: None,
        steps: Vec::new(),
    };
    if built {
        let facts = engine.inspect_image(&args.tag)?;
        result.image_id = Some(facts.id.clone());
        result.size_bytes = facts.size_bytes;
        result.stand_in_base = facts.stand_in_base;
        let mut step = Step::pass(
            "build",
            format!(
                "image {} ({}) in {}",
                &facts.id[..facts.id.len().min(12)],
                facts
                    .size_bytes
                    .map(megabytes)
                    .unwrap_or_else(|| "size unknown".into()),
                seconds(build_ms)
            ),
        );
        step.duration_ms = build_ms;
        result.steps.push(step);
        if facts.stand_in_base {
            say(
                "!!! built on STAND-IN base images (.ci/base-images), not the registry's: \
                 the size and times are this machine's, never deploy this image"
                    .to_string(),
            );
        }
        if args.check {
            let measured = check::run(
                &repo,
                &engine,
                &args.tag,
                &facts.user,
                &service,
                &commit,
                &mut result.steps,
            )?;
            result.start_to_ready_ms = measured.start_to_ready_ms;
        }
    } else {
        let text = std::fs::read_to_string(&log).unwrap_or_default();
        let mut step = Step::fail(
            "build",
            format!("{} build failed: {}", engine.name(), last_lines(&text, 6)),
            format!(
                "fix {} (full output: {})",
                service.dockerfile,
                shown(&repo, &log)
            ),
        );
        step.duration_ms = build_ms;
        result.steps.push(step);
    }
    result.failed_step = result
        .steps
        .iter()
        .find(|s| s.verdict == Verdict::Fail)
        .map(|s| s.step);
    let verdict = Verdict::combine(result.steps.iter().map(|s| s.verdict));
    let human = render(&result, verdict);
    let summary = format!("### image\n\n```\n{human}```\n");
    let record = clock.finish(&repo, ENVIRONMENT, verdict, result);
    let ending = crate::finish::Ending {
        human: &human,
        summary: &summary,
        save: true,
        json: output.json(),
    };
    crate::finish::finish(&repo, &record, ending, &mut *output.human_writer())?;
    Ok(verdict)
}

/// HEAD's commit: what the image is built from and must report.
fn head(repo: &Repo) -> anyhow::Result<String> {
    match repo.git_snapshot() {
        Some(snapshot) => {
            if !snapshot.changed.is_empty() {
                crate::output::say(format_args!(
                    "note: uncommitted changes are built into the image, labelled with HEAD {}",
                    snapshot.commit
                ));
            }
            Ok(snapshot.commit)
        }
        None => bail!(
            "{} is not a git checkout with a commit: the image is labelled with HEAD (commit first)",
            repo.root().display()
        ),
    }
}

/// The lines the task prints at its end.
pub fn render(result: &ImageResult, verdict: Verdict) -> String {
    let mut text = String::new();
    for step in &result.steps {
        text.push_str(&format!(
            "  {:<16} {:<4}  {:>8}  {}\n",
            step.step,
            step.verdict.label(),
            seconds(step.duration_ms),
            step.detail
        ));
        if let Some(fix) = &step.fix {
            text.push_str(&format!("  {:<16}       fix: {fix}\n", ""));
        }
    }
    if let Some(id) = &result.image_id {
        text.push_str(&format!(
            "image: {} id {} size {} build {}{}\n",
            result.tag,
            &id[..id.len().min(12)],
            result
                .size_bytes
                .map(megabytes)
                .unwrap_or_else(|| "?".into()),
            seconds(result.build_ms),
            if result.stand_in_base {
                " (STAND-IN base images)"
            } else {
                ""
            }
        ));
    }
    if let Some(ms) = result.start_to_ready_ms {
        text.push_str(&format!("start to ready: {}\n", seconds(ms)));
    }
    match result.failed_step {
        Some(step) => text.push_str(&format!(
            "verdict: {} (failed step: {step})\n",
            verdict.label()
        )),
        None => text.push_str(&format!("verdict: {}\n", verdict.label())),
    }
    text
}

fn megabytes(bytes: u64) -> String {
    format!("{:.1} MB", bytes as f64 / 1_000_000.0)
}

fn seconds(ms: u64) -> String {
    format!("{:.1}s", ms as f64 / 1000.0)
}

fn shown(repo: &Repo, path: &Path) -> String {
    path.strip_prefix(repo.root())
        .map(PathBuf::from)
        .unwrap_or_else(|_| path.to_path_buf())
        .display()
        .to_string()
}

/// The last `n` non-empty lines, joined with ` | ` (the engine's error is at the end).
fn last_lines(text: &str, n: usize) -> String {
    let lines: Vec<&str> = text
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .collect();
    lines[lines.len().saturating_sub(n)..].join(" | ")
}
