//! The rollout: replacing an app's machines with ones running a new image, by strategy,
//! the way Fly's Machines platform does it. `rolling` replaces one machine at a time in place
//! and waits on its checks; `canary` first proves the image on one extra machine, then rolls;
//! `bluegreen` starts a full set of new machines and switches only when all pass; `immediate`
//! replaces everything without waiting.

use std::time::{Duration, Instant};

use anyhow::bail;

use super::fly_toml::FlyToml;
use super::machine::{self, Prober};
use super::state::{App, Image, StateDir, new_machine_id};

/// The strategies `deploy --strategy` (or fly.toml's `[deploy] strategy`) may name.
pub const STRATEGIES: [&str; 4] = ["rolling", "canary", "bluegreen", "immediate"];

pub fn replace_machines(
    dir: &StateDir,
    app: &mut App,
    image: &Image,
    fly: &FlyToml,
    strategy: &str,
    wait_timeout: Duration,
) -> anyhow::Result<()> {
    let app_dir = dir.app_dir(&app.name);
    let prober = Prober::new(Duration::from_secs(5))?;
    // Like flyctl's --wait-timeout: a bound for each machine, not for the whole rollout.
    let deadline = || Instant::now() + wait_timeout;
    // Only the app's own machines are part of a release; a leftover release-command machine,
    // a console or a `fly machine run` keeps its image (fly-go `ListFlyAppsMachines`).
    let mut ids: Vec<String> = app
        .machines
        .values()
        .filter(|m| m.managed())
        .map(|m| m.id.clone())
        .collect();
    while ids.len() < app.machine_count {
        ids.push(new_machine_id());
    }
    println!(
        "Updating existing machines in '{}' with {strategy} strategy",
        app.name
    );
    match strategy {
        "bluegreen" => {
            refuse_mixed_images(app)?;
            let green: Vec<String> = (0..app.machine_count).map(|_| new_machine_id()).collect();
            for id in &green {
                let mut started = machine::start(&app_dir, app, image, &fly.env, id)?;
                started.state = "created".into();
                app.machines.insert(id.clone(), started);
            }
            dir.save(app)?;
            let failure = green.iter().find_map(|id| {
                prober
                    .wait_passing(
                        &app.machines[id],
                        &fly.checks,
                        image.checks_never_pass,
                        deadline(),
                    )
                    .err()
            });
            let losers: Vec<String> = if failure.is_some() {
                green.clone()
            } else {
                app.machines
                    .values()
                    .filter(|m| m.managed() && !green.contains(&m.id))
                    .map(|m| m.id.clone())
                    .collect()
            };
            for id in &green {
                if let Some(m) = app.machines.get_mut(id) {
                    m.state = "started".into();
                    m.healthy = failure.is_none();
                }
            }
            for id in losers {
                if let Some(mut old) = app.machines.remove(&id) {
                    machine::stop(&mut old);
                }
            }
            dir.save(app)?;
            if let Some(failure) = failure {
                bail!("failed to deploy green machines: {failure}");
            }
        }
        "immediate" => {
            for id in &ids {
                if machine::interrupted() {
                    bail!("interrupted (SIGINT or SIGTERM) before machine {id} was updated");
                }
                if let Some(old) = app.machines.get_mut(id) {
                    machine::stop(old);
                }
                let mut started = machine::start(&app_dir, app, image, &fly.env, id)?;
                // Nobody waits on checks with this strategy: traffic goes at once.
                started.healthy = true;
                app.machines.insert(id.clone(), started);
            }
            dir.save(app)?;
        }
        _ => {
            if strategy == "canary" {
                canary(dir, app, image, fly, &prober, deadline())?;
            }
            for id in &ids {
                if machine::interrupted() {
                    bail!("interrupted (SIGINT or SIGTERM) before machine {id} was updated");
                }
                if let Some(old) = app.machines.get_mut(id)
                    && old.state == "stopped"
                    && !machine::alive(old)
                {
                    // flyctl `internal/command/deploy/machines_launchinput.go`,
                    // `shouldSkipLaunch`: a machine Fly stopped is updated to the new image and
                    // left stopped; its checks are not waited on.
                    old.image_ref = image.reference.clone();
                    old.updated_at = chrono::Utc::now();
                    dir.save(app)?;
                    println!("Machine {id} [app] is stopped: updated without starting it");
                    continue;
                }
                if let Some(old) = app.machines.get_mut(id) {
                    old.state = "replacing".into();
                    dir.save(app)?;
                    let old = app.machines.get_mut(id).expect("present");
                    machine::stop(old);
                }
                let started = machine::start(&app_dir, app, image, &fly.env, id)?;
                app.machines.insert(id.clone(), started);
                dir.save(app)?;
                let waited = prober.wait_passing(
                    &app.machines[id],
                    &fly.checks,
                    image.checks_never_pass,
                    deadline(),
                );
                if let Err(failure) = waited {
                    bail!("failed to update machine {id}: {failure}");
                }
                if let Some(m) = app.machines.get_mut(id) {
                    m.healthy = true;
                }
                dir.save(app)?;
                println!("Machine {id} [app] update finished: success");
            }
        }
    }
    Ok(())
}

/// flyctl's blue-green refuses an app whose machines run more than one image
/// (`internal/command/deploy/strategy_bluegreen.go`, `DetectMultipleImageVersions`:
/// "Found N different images in your app", `ErrMultipleImageVersions`). Only the machines
/// deploy manages count; two names of one image (tag, digest) are one image.
fn refuse_mixed_images(app: &App) -> anyhow::Result<()> {
    let mut images: std::collections::BTreeMap<String, Vec<&str>> = Default::default();
    for m in app.machines.values().filter(|m| m.managed()) {
        let image = app
            .image(&m.image_ref)
            .map_or_else(|| m.image_ref.clone(), |i| i.reference.clone());
        images.entry(image).or_default().push(&m.id);
    }
    if images.len() <= 1 {
        return Ok(());
    }
    let listed: Vec<String> = images
        .iter()
        .map(|(image, ids)| format!("[x] {image} - {} machine(s) ({})", ids.len(), ids.join(",")))
        .collect();
    bail!(
        "found multiple image versions: Found {} different images in your app (for bluegreen to \
         work, all machines need to run a single image): {}",
        images.len(),
        listed.join("; ")
    )
}

/// Proves the image on one extra machine first; the canary is destroyed either way.
fn canary(
    dir: &StateDir,
    app: &mut App,
    image: &Image,
    fly: &FlyToml,
    prober: &Prober,
    deadline: Instant,
) -> anyhow::Result<()> {
    let id = new_machine_id();
    let mut canary = machine::start(&dir.app_dir(&app.name), app, image, &fly.env, &id)?;
    canary.state = "created".into();
    app.machines.insert(id.clone(), canary);
    dir.save(app)?;
    let waited = prober.wait_passing(
        &app.machines[&id],
        &fly.checks,
        image.checks_never_pass,
        deadline,
    );
    if let Some(mut canary) = app.machines.remove(&id) {
        machine::stop(&mut canary);
    }
    dir.save(app)?;
    if let Err(failure) = waited {
        bail!("canary machine {id} failed: {failure}");
    }
    println!("Canary machine {id} passed its checks");
    Ok(())
}
