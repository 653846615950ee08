//! What promote checks before flyctl runs: what staging's saved results say about the
//! release to promote ([`StagingEvidence`]), and production's prerequisites for a blue-green
//! deploy ([`prerequisites`]).

use serde::{Deserialize, Serialize};

use super::{FROM, TO};
use crate::config::Environment;
use crate::repo::Repo;
use crate::report::{self, CHECKLIST_PATH, Overall, State, StepId};

/// What staging's saved results say about the release to promote.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StagingEvidence {
    /// Staging's report verdict (`GO`, `NO-GO`, `INCOMPLETE`) and why.
    pub verdict: String,
    /// The reasons behind a verdict other than GO.
    pub reasons: Vec<String>,
    /// The 24-hour gate: holds, and why.
    pub stability_holds: bool,
    /// The gate's evidence.
    pub stability: String,
    /// Whether the production checklist is complete, and what is open.
    pub checklist_complete: bool,
    /// The checklist step's evidence.
    pub checklist: String,
    /// The image staging's deploy recorded (the one verified there).
    pub image: Option<String>,
    /// The records left out because CI did not sign them or their signature fails, named
    /// (`records::signature`).
    #[serde(default)]
    pub ignored_records: Vec<String>,
}

impl StagingEvidence {
    /// Reads the evidence from staging's rendered report.
    pub fn from_report(rendered: &report::Rendered) -> StagingEvidence {
        let step = |id: StepId| {
            rendered
                .context
                .map
                .step(id)
                .map(|s| (s.state == State::Done, s.evidence.clone()))
                .unwrap_or((false, format!("no `{id}` step in staging's decision map")))
        };
        let (stability_holds, stability) = step(StepId::Stability24h);
        let (checklist_complete, checklist) = step(StepId::ProductionChecklist);
        StagingEvidence {
            verdict: rendered.context.verdict.label.clone(),
            reasons: rendered.context.verdict.reasons.clone(),
            stability_holds,
            stability,
            checklist_complete,
            checklist,
            image: rendered
                .context
                .deploy
                .data
                .as_ref()
                .and_then(|d| d.image.clone()),
            ignored_records: rendered.context.provenance.warnings(),
        }
        .with_go(rendered.overall == Overall::Go)
    }

    fn with_go(mut self, go: bool) -> StagingEvidence {
        if go {
            self.verdict = "GO".into();
        }
        self
    }

    /// Everything that is missing for a promotion, each naming the fix.
    pub fn missing(&self) -> Vec<String> {
        let mut missing = Vec::new();
        if self.verdict != "GO" {
            missing.push(format!(
                "staging's verdict is {}, not GO ({}): see `cargo xtask report --env {FROM}`",
                self.verdict,
                self.reasons.join("; ")
            ));
        }
        if !self.stability_holds {
            missing.push(format!(
                "the 24-hour gate does not hold for the staging release: {}",
                self.stability
            ));
        }
        if !self.checklist_complete {
            missing.push(format!(
                "the production checklist ({CHECKLIST_PATH}) is not complete: {}",
                self.checklist
            ));
        }
        if self.image.is_none() {
            missing.push(format!(
                "staging's deploy recorded no image ref to promote: deploy staging with \
                 `cargo xtask deploy --env {FROM}`"
            ));
        }
        missing
    }
}

/// Production's prerequisites for the deploy, from its fly config and its machines.
pub fn prerequisites(
    repo: &Repo,
    environment: &Environment,
    machines: Option<usize>,
) -> Vec<String> {
    let mut problems = Vec::new();
    let path = repo.path(&environment.fly_config);
    let config: toml::Value = match std::fs::read_to_string(&path)
        .map_err(|e| e.to_string())
        .and_then(|text| toml::from_str(&text).map_err(|e| e.to_string()))
    {
        Ok(config) => config,
        Err(error) => {
            return vec![format!("cannot read {}: {error}", path.display())];
        }
    };
    let has = |table: &str, key: &str| {
        config
            .get(table)
            .and_then(|t| t.get(key))
            .and_then(|v| v.as_array())
            .is_some_and(|a| !a.is_empty())
    };
    let top_checks = config
        .get("checks")
        .and_then(|c| c.as_table())
        .is_some_and(|t| !t.is_empty());
    if !has("http_service", "checks") && !top_checks {
        problems.push(format!(
            "{} defines no health checks ([[http_service.checks]]): blue-green needs them to \
             know when the new machines serve",
            path.display()
        ));
    }
    if config.get("mounts").is_some() {
        problems.push(format!(
            "{} mounts a volume ([mounts]): blue-green cannot move volumes; use --strategy rolling",
            path.display()
        ));
    }
    if let (Some(plan), Some(running)) = (&environment.machines, machines)
        && running > 0
        && running < plan.total()
    {
        problems.push(format!(
            "{} has {running} machine(s) but {} declares {} ({}; min_running = {}): run \
             `cargo xtask scale --env {TO}` first",
            environment.app,
            crate::config::CONFIG_PATH,
            plan.total(),
            plan.regions
                .iter()
                .map(|(region, n)| format!("{region} {n}"))
                .collect::<Vec<_>>()
                .join(", "),
            plan.min_running
        ));
    }
    if machines == Some(0) {
        problems.push(format!(
            "{} has no machine: deploy it once with `cargo xtask deploy --env {TO} --first-deploy` first",
            environment.app
        ));
    }
    problems
}
