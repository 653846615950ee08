//! Fly's proxy stops and starts machines (https://fly.io/docs/launch/autostop-autostart/):
//! with fly.toml's `auto_stop_machines = "stop"`, a started machine that has had no request
//! for a while is stopped, leaving at least `min_machines_running` started; with
//! `auto_start_machines = true`, a request for an app with no started machine (or for a
//! stopped machine named by `fly-force-instance-id`) starts one first. The local proxy does
//! both, under the app's lock, so a deploy never overwrites what it did.
//!
//! Fly's proxy also starts machines when the started ones pass their concurrency soft limit;
//! the local one starts a machine only when none serves.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use super::machine::{self, Prober};
use super::state::{App, DEFAULT_IDLE_STOP, StateDir};

/// When each machine last had a request through the proxy (first seen counts as one).
#[derive(Debug, Default)]
pub struct Idle {
    last_request: BTreeMap<String, Instant>,
}

impl Idle {
    /// A request for `id` now.
    pub fn touch(&mut self, id: &str) {
        self.last_request.insert(id.to_string(), Instant::now());
    }

    /// How long `id` has gone without a request (zero the first time it is seen).
    fn idle_for(&mut self, id: &str) -> Duration {
        self.last_request
            .entry(id.to_string())
            .or_insert_with(Instant::now)
            .elapsed()
    }
}

/// How long the app lets a machine idle before auto-stop.
pub fn idle_limit(app: &App) -> Duration {
    app.idle_stop_after_ms
        .map_or(DEFAULT_IDLE_STOP, Duration::from_millis)
}

/// How often the proxy looks for idle machines: a quarter of the limit, between 20 ms and 1 s.
pub fn tick(app: &App) -> Duration {
    (idle_limit(app) / 4).clamp(Duration::from_millis(20), Duration::from_secs(1))
}

/// Stops the started machines of `name` idle longer than its limit, most idle first, while
/// more than `min_machines_running` stay started. A deploy (or another call) holding the
/// app's lock counts as activity on every machine: the round is skipped and the idle clocks
/// start again, so a machine a deploy just proved is not stopped before anyone asks it.
/// Returns the ids stopped.
pub fn stop_idle(dir: &StateDir, name: &str, idle: &mut Idle) -> Vec<String> {
    let Some(_lock) = dir.try_lock(name) else {
        if let Ok(app) = dir.load(name) {
            app.machines.keys().for_each(|id| idle.touch(id));
        }
        return Vec::new();
    };
    let Ok(mut app) = dir.load(name) else {
        return Vec::new();
    };
    if !app.auto_stop.stop {
        return Vec::new();
    }
    let limit = idle_limit(&app);
    let started: Vec<String> = app
        .machines
        .values()
        .filter(|m| m.managed() && m.state == "started" && machine::alive(m))
        .map(|m| m.id.clone())
        .collect();
    let mut idle_ones: Vec<(Duration, String)> = started
        .iter()
        .map(|id| (idle.idle_for(id), id.clone()))
        .filter(|(for_, _)| *for_ >= limit)
        .collect();
    idle_ones.sort_by_key(|(idle_for, _)| std::cmp::Reverse(*idle_for));
    let stoppable = started.len().saturating_sub(app.auto_stop.min_running);
    let mut stopped = Vec::new();
    for (_, id) in idle_ones.into_iter().take(stoppable) {
        if let Some(m) = app.machines.get_mut(&id) {
            machine::stop(m);
            stopped.push(id);
        }
    }
    if !stopped.is_empty() && dir.save(&app).is_err() {
        return Vec::new();
    }
    stopped
}

/// Starts stopped machine `wanted` (or, without one, the first stopped machine deploy
/// manages) of `name` from its image, waits until it passes the last deploy's checks, and
/// marks it healthy. Returns its id, or why none could be started. Blocking: the proxy runs
/// it on a thread of its own.
pub fn start_stopped(dir: &StateDir, name: &str, wanted: Option<&str>) -> Result<String, String> {
    let _lock = dir.lock(name).map_err(|e| format!("{e:#}"))?;
    let mut app = dir.load(name).map_err(|e| format!("{e:#}"))?;
    if !app.auto_stop.start {
        return Err(format!("auto_start_machines is off for {name}"));
    }
    let candidate = app.machines.values().find(|m| {
        m.managed()
            && wanted.is_none_or(|id| m.id == id)
            && (m.state != "started" || !machine::alive(m))
    });
    let Some(stopped) = candidate.cloned() else {
        // Another request started it meanwhile.
        return match wanted {
            Some(id) if app.machines.contains_key(id) => Ok(id.to_string()),
            _ => Err(format!("{name} has no stopped machine to start")),
        };
    };
    let image = app.image(&stopped.image_ref).cloned().ok_or_else(|| {
        format!(
            "machine {}: image {} is gone",
            stopped.id, stopped.image_ref
        )
    })?;
    let mut image_as_named = image.clone();
    image_as_named.reference = stopped.image_ref.clone();
    let app_dir = dir.app_dir(name);
    let mut started = machine::start(&app_dir, &app, &image_as_named, &app.fly_env, &stopped.id)
        .map_err(|e| format!("{e:#}"))?;
    started.created_at = stopped.created_at;
    started.kind = stopped.kind;
    let prober = Prober::new(Duration::from_secs(5)).map_err(|e| format!("{e:#}"))?;
    let deadline = Instant::now() + Duration::from_secs(60);
    let waited = prober.wait_passing(&started, &app.checks, image.checks_never_pass, deadline);
    started.healthy = waited.is_ok();
    let id = started.id.clone();
    app.machines.insert(id.clone(), started);
    dir.save(&app).map_err(|e| format!("{e:#}"))?;
    waited.map(|()| id)
}
