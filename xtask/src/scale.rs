//! `cargo xtask scale --env E`: brings an environment's Fly app to the machines
//! `ops/deploy.toml` declares (`[environments.E.machines] regions`), region by region, with
//! `flyctl scale count N --region R --app A --yes`. flyctl counts only the regions it is
//! given (`internal/command/scale/count_machines.go`, `convergeGroupCounts`: "Defaults to
//! all regions where there is at least one machine", and with one region named that region
//! gets exactly N), so one call per region sets that region and leaves the others alone; new
//! machines copy an existing one's config, as `fly machine clone --region` does
//! (`internal/command/machine/clone.go`). A region the plan does not name is scaled to 0.
//!
//! Idempotent: the plan compares the app's machines (`machines list`) with the declaration
//! and only regions that differ get a call, so a second run changes nothing. `--dry-run`
//! prints the plan and runs only the read. Exit 0 when the app matches afterwards, 1 when it
//! still does not, 2 when it could not run (no plan declared, flyctl failed to start).

use std::collections::BTreeMap;
use std::io::Write;

use anyhow::Context;

use crate::config::{CONFIG_PATH, DeployConfig, MachinePlan};
use crate::flyctl::{Flyctl, Invocation, Machine};
use crate::repo::Repo;
use crate::verdict::Verdict;

/// What `scale` does.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Options {
    /// The environment from `ops/deploy.toml`.
    pub env: String,
    /// Print the plan; change nothing.
    pub dry_run: bool,
}

/// One region whose machine count must change.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Step {
    /// The region.
    pub region: String,
    /// App machines there now.
    pub now: usize,
    /// App machines declared there.
    pub wanted: usize,
}

/// The regions to change: every declared region whose count differs, then every region
/// with app machines the plan does not name (to 0). Sorted by region.
pub fn plan(declared: &MachinePlan, machines: &[Machine]) -> Vec<Step> {
    let mut now: BTreeMap<String, usize> = BTreeMap::new();
    for machine in machines.iter().filter(|m| m.managed) {
        let region = machine.region.clone().unwrap_or_default();
        *now.entry(region).or_default() += 1;
    }
    let regions: std::collections::BTreeSet<&String> =
        declared.regions.keys().chain(now.keys()).collect();
    regions
        .into_iter()
        .map(|region| Step {
            region: region.clone(),
            now: now.get(region).copied().unwrap_or(0),
            wanted: declared.regions.get(region).copied().unwrap_or(0),
        })
        .filter(|step| step.now != step.wanted)
        .collect()
}

/// The flyctl call that makes `step` true.
pub fn invocation(app: &str, step: &Step) -> Invocation {
    Invocation::new([
        "scale".to_string(),
        "count".into(),
        step.wanted.to_string(),
        "--region".into(),
        step.region.clone(),
        "--app".into(),
        app.into(),
        "--yes".into(),
    ])
}

/// Entry point of `cargo xtask scale`.
pub fn run(options: Options) -> anyhow::Result<Verdict> {
    let repo = Repo::discover()?;
    let flyctl = Flyctl::from_env(options.dry_run)?;
    run_with(&repo, &options, flyctl, &mut std::io::stdout())
}

/// Scales the environment's app on `repo` with `flyctl`, writing what it does to `out`.
pub fn run_with(
    repo: &Repo,
    options: &Options,
    flyctl: Flyctl,
    out: &mut dyn Write,
) -> anyhow::Result<Verdict> {
    let config = DeployConfig::load(repo)?;
    let environment = config.environment(&options.env)?;
    let declared = environment.machines.as_ref().with_context(|| {
        format!(
            "{CONFIG_PATH} declares no machines for {}: add [environments.{}.machines] with \
             min_running and regions = {{ REGION = COUNT, ... }}",
            options.env, options.env
        )
    })?;
    let app = &environment.app;
    let flyctl = flyctl.in_dir(repo.root()).with_dry_run(options.dry_run);
    let Some(machines) = flyctl.machines(app, out)? else {
        writeln!(out, "no flyctl: cannot read the machines of {app} to plan")?;
        return Ok(Verdict::Pass);
    };
    let steps = plan(declared, &machines);
    if steps.is_empty() {
        writeln!(
            out,
            "{app} already runs {} (nothing to do)",
            describe(declared)
        )?;
        return Ok(Verdict::Pass);
    }
    for step in &steps {
        writeln!(
            out,
            "{app} {}: {} -> {} machine(s)",
            step.region, step.now, step.wanted
        )?;
        flyctl.call(&invocation(app, step), out)?;
    }
    if options.dry_run {
        return Ok(Verdict::Pass);
    }
    let after = flyctl.machines(app, out)?.unwrap_or_default();
    let left = plan(declared, &after);
    if left.is_empty() {
        writeln!(out, "{app} now runs {}", describe(declared))?;
        Ok(Verdict::Pass)
    } else {
        for step in left {
            writeln!(
                out,
                "FAIL {app} {}: {} machine(s), {} declared in {CONFIG_PATH}",
                step.region, step.now, step.wanted
            )?;
        }
        Ok(Verdict::Fail)
    }
}

fn describe(plan: &MachinePlan) -> String {
    plan.regions
        .iter()
        .map(|(region, n)| format!("{n} in {region}"))
        .collect::<Vec<_>>()
        .join(", ")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn machine(id: &str, region: &str, managed: bool) -> Machine {
        let json = serde_json::json!([{
            "id": id, "state": "started", "region": region,
            "config": { "image": "registry.fly.io/a:1", "metadata":
                if managed { serde_json::json!({"fly_platform_version": "v2", "fly_process_group": "app"}) }
                else { serde_json::json!({"fly_platform_version": "v2", "fly_process_group": "fly_app_console"}) } },
        }]);
        crate::flyctl::parse_machines(&json.to_string())
            .unwrap()
            .remove(0)
    }

    #[test]
    fn the_plan_changes_only_the_regions_that_differ_and_empties_undeclared_ones() {
        let declared = MachinePlan {
            min_running: 2,
            regions: [("scl".to_string(), 1), ("gru".to_string(), 1)].into(),
        };
        let steps = plan(
            &declared,
            &[machine("a", "scl", true), machine("c", "scl", false)],
        );
        assert_eq!(
            steps,
            [Step {
                region: "gru".into(),
                now: 0,
                wanted: 1
            }]
        );
        let done = [machine("a", "scl", true), machine("b", "gru", true)];
        assert!(plan(&declared, &done).is_empty(), "idempotent");
        let extra = [
            machine("a", "scl", true),
            machine("b", "gru", true),
            machine("d", "ams", true),
        ];
        assert_eq!(
            plan(&declared, &extra),
            [Step {
                region: "ams".into(),
                now: 1,
                wanted: 0
            }]
        );
        assert_eq!(
            invocation("app", &steps[0]).args,
            [
                "scale", "count", "1", "--region", "gru", "--app", "app", "--yes"
            ]
        );
    }
}
