//! `machines`: an environment that declares machines in `ops/deploy.toml`
//! (`[environments.NAME.machines]`) deploys a Fly config that keeps at least `min_running` of
//! them running. Fly's auto-stop stops idle machines down to `min_machines_running`, and that
//! floor only counts machines in the primary region
//! (<https://fly.io/docs/launch/autostart-stop/>: "keep one or more Machines running in your
//! primary region"); with `auto_stop_machines = "off"` (or `false`) none is stopped. So the
//! machines kept running are every declared one when auto-stop is off, else
//! `min(min_machines_running, machines declared in the primary region)`. An environment
//! without a plan (staging) may auto-stop to zero.

use toml::{Table, Value};

use super::Context;
use super::outcome::{At, Check, CheckResult};
use super::text::{FileText, read_text, toml_key_line};
use crate::config::{CONFIG_PATH, MachinePlan};

pub(crate) fn check(cx: &Context) -> CheckResult {
    let mut check = Check::new(
        "machines",
        "each environment's Fly config keeps running the machines ops/deploy.toml declares \
         (min_running), in regions that include its primary region",
    );
    for (name, env) in &cx.environments {
        let Some(plan) = &env.machines else {
            check.pass(
                At::file(CONFIG_PATH),
                format!("{name} declares no machines: auto-stop may stop them all"),
            );
            continue;
        };
        let path = env.fly_config.to_string_lossy().replace('\\', "/");
        // Unreadable or malformed configs are the fly_toml check's to report.
        let FileText::Text(text) = read_text(&cx.repo.path(&path)) else {
            continue;
        };
        let Ok(table) = toml::from_str::<Table>(&text) else {
            continue;
        };
        check_environment(&mut check, name, plan, &path, &text, &table);
    }
    check.finish()
}

/// How many machines Fly keeps running under `table`'s `[http_service]` when `plan`'s are
/// deployed, and the key that decides it.
pub(crate) fn kept_running(table: &Table, plan: &MachinePlan) -> (usize, &'static str) {
    let http = table.get("http_service").and_then(Value::as_table);
    let auto_stop = http.and_then(|h| h.get("auto_stop_machines"));
    let off = match auto_stop {
        Some(Value::String(mode)) => mode == "off",
        Some(Value::Boolean(on)) => !on,
        // Fly's default for an http_service is to stop idle machines.
        _ => false,
    };
    if off {
        return (plan.total(), "auto_stop_machines");
    }
    let floor = http
        .and_then(|h| h.get("min_machines_running"))
        .and_then(Value::as_integer)
        .unwrap_or(0)
        .max(0) as usize;
    let primary = table
        .get("primary_region")
        .and_then(Value::as_str)
        .and_then(|region| plan.regions.get(region))
        .copied()
        .unwrap_or(0);
    (floor.min(primary), "min_machines_running")
}

fn check_environment(
    check: &mut Check,
    name: &str,
    plan: &MachinePlan,
    path: &str,
    text: &str,
    table: &Table,
) {
    let at = |section: &str, key: &str| At::line(path, toml_key_line(text, section, 0, key));
    if plan.total() < plan.min_running {
        check.fail(
            At::file(CONFIG_PATH),
            format!(
                "{name} declares {} machine(s) in its regions but min_running = {}",
                plan.total(),
                plan.min_running
            ),
            format!("add machines to [environments.{name}.machines] regions in {CONFIG_PATH}"),
        );
    }
    match table.get("primary_region").and_then(Value::as_str) {
        Some(primary) if plan.regions.get(primary).is_some_and(|n| *n > 0) => {}
        primary => check.fail(
            at("", "primary_region"),
            format!(
                "primary_region {} has no machine in {name}'s regions ({})",
                primary.unwrap_or("(unset)"),
                plan.regions.keys().cloned().collect::<Vec<_>>().join(", ")
            ),
            format!(
                "set primary_region to a region of [environments.{name}.machines] in \
                 {CONFIG_PATH}, or add it there: writes are served only in the primary region"
            ),
        ),
    }
    let (kept, key) = kept_running(table, plan);
    if kept < plan.min_running {
        check.fail(
            at("http_service", key),
            format!(
                "{name} could run only {kept} machine(s): auto-stop keeps \
                 min_machines_running, counted in the primary region only, and \
                 {CONFIG_PATH} requires min_running = {}",
                plan.min_running
            ),
            format!(
                "set [http_service] auto_stop_machines = \"off\" in {path} (or \
                 min_machines_running = {} with that many machines in the primary region)",
                plan.min_running
            ),
        );
    } else {
        check.pass(
            at("http_service", key),
            format!(
                "{name} keeps {kept} of {} machine(s) running (min_running = {})",
                plan.total(),
                plan.min_running
            ),
        );
    }
}
