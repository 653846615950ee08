//! The deployment decision map: each step's state computed from the saved results, and the
//! one next command (the first step not done). Pure: the clock and HEAD are inputs.
//!
//! Order for staging (and any deployable environment other than production): predeploy,
//! Fly login, secrets loaded, deploy, health, smoke thresholds, overlap, staging validated,
//! 24 h of stability, production checklist. Production moves the three gates (staging
//! validated, 24 h, checklist) before its own deploy. Environments not in `ops/deploy.toml`
//! (`local`, `adhoc`) have no deploy: predeploy, health, thresholds, overlap.

pub use super::deploys::rolled_back;
use super::deploys::stability;
pub use super::map::{DecisionMap, MapInputs, Next, PRODUCTION, STAGING, State, Step, StepId};
use super::steps::{
    deploy, fly_login, health, overlap, predeploy, production_checklist, secrets,
    staging_validated, thresholds,
};

/// Computes the map.
pub fn decision_map(input: &MapInputs) -> DecisionMap {
    let env = input.environment;
    let steps = if !input.deployable {
        vec![
            predeploy(input),
            health(input),
            thresholds(input),
            overlap(input),
        ]
    } else if env == PRODUCTION {
        vec![
            predeploy(input),
            fly_login(input),
            secrets(input),
            staging_validated(input),
            stability(input),
            production_checklist(input),
            deploy(input),
            health(input),
            thresholds(input),
            overlap(input),
        ]
    } else {
        vec![
            predeploy(input),
            fly_login(input),
            secrets(input),
            deploy(input),
            health(input),
            thresholds(input),
            overlap(input),
            staging_validated(input),
            stability(input),
            production_checklist(input),
        ]
    };
    let done = steps.iter().filter(|s| s.state == State::Done).count();
    let next = match steps.iter().find(|s| s.state != State::Done) {
        Some(step) => Next {
            step: step.id.to_string(),
            command: step.command.clone(),
            action: format!("{} ({}): {}", step.title, step.state.label(), step.evidence),
        },
        None if !input.deployable => Next {
            step: "all".into(),
            command: Some(format!("cargo xtask predeploy --env {STAGING}")),
            action: "every local step is done: prepare staging".into(),
        },
        None if env == PRODUCTION => Next {
            step: "all".into(),
            command: None,
            action: "production is deployed and verified: nothing left to run".into(),
        },
        None => Next {
            step: "all".into(),
            command: Some(format!("cargo xtask predeploy --env {PRODUCTION}")),
            action: format!("{env} is validated and stable: prepare production"),
        },
    };
    DecisionMap {
        environment: env.to_string(),
        steps,
        done,
        next,
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use chrono::DateTime;

    use super::super::checklist::Checklist;
    use super::super::records::Results;
    use super::*;

    /// Every `cargo xtask ...` command the maps of staging and production name, without the
    /// prefix: the CLI's tests hold each to the real command line.
    pub(crate) fn every_task_command() -> Vec<String> {
        [STAGING, PRODUCTION]
            .into_iter()
            .flat_map(|env| map(env, true, &Results::default(), None).steps)
            .filter_map(|step| step.command)
            .filter_map(|command| command.strip_prefix("cargo xtask ").map(str::to_string))
            .collect()
    }

    fn map(
        environment: &str,
        deployable: bool,
        results: &Results,
        checklist: Option<&Checklist>,
    ) -> DecisionMap {
        decision_map(&MapInputs {
            environment,
            deployable,
            results,
            staging: results,
            checklist,
            url: Some("http://127.0.0.1:9"),
            now: DateTime::parse_from_rfc3339("2026-11-27T12:00:00Z")
                .unwrap()
                .to_utc(),
            head: Some("abc"),
            watch_coverage_pct: 90.0,
        })
    }

    #[test]
    fn with_nothing_measured_the_next_command_is_the_first_step() {
        let empty = Results::default();
        let staging = map(STAGING, true, &empty, None);
        assert_eq!(staging.done, 0);
        assert_eq!(staging.next.step, "predeploy");
        assert_eq!(
            staging.next.command.as_deref(),
            Some("cargo xtask predeploy --env staging")
        );
        let checklist = staging.step(StepId::ProductionChecklist).unwrap();
        assert_eq!(
            checklist.state,
            State::Unknown,
            "no checklist file: unknown, not done"
        );
    }

    #[test]
    fn local_environments_point_commands_at_their_url() {
        let local = map("local", false, &Results::default(), None);
        let commands: Vec<&str> = local
            .steps
            .iter()
            .filter_map(|s| s.command.as_deref())
            .collect();
        assert_eq!(
            commands,
            [
                "cargo xtask predeploy",
                "cargo xtask smoke --url http://127.0.0.1:9",
                "cargo xtask smoke --url http://127.0.0.1:9",
                "cargo xtask overlap --url http://127.0.0.1:9 --mutating",
            ]
        );
    }

    #[test]
    fn every_step_has_a_state_evidence_and_a_real_command_or_a_human_action() {
        for env in [STAGING, PRODUCTION] {
            for step in map(env, true, &Results::default(), None).steps {
                assert!(!step.evidence.is_empty(), "{step:?}");
                match &step.command {
                    // `cargo xtask` commands are parsed in the CLI's tests.
                    Some(command) => assert!(
                        command.starts_with("cargo xtask ") || command.starts_with("fly "),
                        "{command}"
                    ),
                    None => assert_eq!(step.id, StepId::ProductionChecklist),
                }
            }
        }
    }
}
