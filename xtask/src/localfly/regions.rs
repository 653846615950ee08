//! Regions of the local Fly: every machine runs in one, `FLY_REGION` says which and
//! `PRIMARY_REGION` names the app's primary (Fly sets both:
//! <https://fly.io/docs/reference/configuration/#primary-region>).
//!
//! - `deploy` creates machines in the primary region (the app's `--region`), as `fly deploy`
//!   does with fly.toml's `primary_region`; a rolling deploy updates machines in place, so a
//!   machine keeps its region. (`bluegreen` starts new machines: they land in the primary.)
//! - `machine clone <id> --region R` copies a machine into region R (flyctl
//!   `internal/command/machine/clone.go`: the clone's region is `--region`, else the
//!   source's), started and checked like a deploy's machine.
//! - `scale count N --region R --yes` makes region R hold N app machines, cloning or
//!   destroying (flyctl `internal/command/scale/count_machines.go`, `convergeGroupCounts`:
//!   with one region named, that region's count becomes N, others are left alone).
//! - `local region-env --region R KEY=VALUE...` gives region R's machines extra variables:
//!   the address of that region's read replica (`DATABASE_READ_URL`), as a region's machines
//!   get their nearest replica on Fly. They apply to machines started afterwards.

use std::time::{Duration, Instant};

use super::machine::{self, Prober};
use super::state::{App, Machine, StateDir, new_machine_id};
use anyhow::{Context, bail};

/// The region machine `id` of `app` runs in.
pub fn region_of<'a>(app: &'a App, id: &str) -> &'a str {
    app.regions.region_of(&app.region, id)
}

/// The app machines of `app` that are started, alive and healthy in `region`.
pub fn serving_in<'a>(app: &'a App, region: &str) -> Vec<&'a Machine> {
    app.machines
        .values()
        .filter(|m| m.state == "started" && m.healthy && machine::alive(m))
        .filter(|m| region_of(app, &m.id) == region)
        .collect()
}

/// `machine clone <source> --region <region>`: a started, checked copy of `source` in
/// `region` (the source's region when `None`). Returns the new machine's id.
pub fn clone_machine(
    dir: &StateDir,
    name: &str,
    source: &str,
    region: Option<&str>,
) -> anyhow::Result<String> {
    let mut app = dir.load(name)?;
    let Some(original) = app.machines.get(source).cloned() else {
        bail!("could not get machine {source}: machine not found in app {name}");
    };
    let region = region.map_or_else(|| region_of(&app, source).to_string(), str::to_string);
    println!("Cloning Machine {source} into region {region}");
    let id = new_machine_id();
    app.regions.placement.insert(id.clone(), region);
    start_checked(dir, &mut app, &original.image_ref, &id)?;
    println!("Machine {id} has been created...");
    Ok(id)
}

/// `scale count <count> --region <region>`: region `region` holds `count` app machines.
pub fn scale_count(dir: &StateDir, name: &str, count: usize, region: &str) -> anyhow::Result<()> {
    let mut app = dir.load(name)?;
    let mut here: Vec<String> = app
        .machines
        .values()
        .filter(|m| m.managed() && region_of(&app, &m.id) == region)
        .map(|m| m.id.clone())
        .collect();
    let delta = count as i64 - here.len() as i64;
    println!("{delta:+4} machines for group 'app' on region '{region}'");
    if delta > 0 {
        let Some(image) = app.current_release().map(|r| r.image_ref.clone()) else {
            bail!("app {name} has no release yet: deploy it before scaling");
        };
        for _ in 0..delta {
            let id = new_machine_id();
            app.regions.placement.insert(id.clone(), region.into());
            start_checked(dir, &mut app, &image, &id)?;
            println!("  Created {id} group:app region:{region}");
        }
    }
    while here.len() > count {
        let id = here.pop().unwrap_or_default();
        if let Some(mut gone) = app.machines.remove(&id) {
            machine::stop(&mut gone);
            app.regions.placement.remove(&id);
            println!("  Destroyed {id} group:app region:{region}");
        }
    }
    dir.save(&app)
}

/// `local region-env`: variables for the machines of `region`.
pub fn set_env(dir: &StateDir, name: &str, region: &str, pairs: &[String]) -> anyhow::Result<()> {
    let mut app = dir.load(name)?;
    let env = app.regions.env.entry(region.into()).or_default();
    for pair in pairs {
        let Some((key, value)) = pair.split_once('=') else {
            bail!("invalid variable `{pair}`: expected KEY=VALUE");
        };
        env.insert(key.into(), value.into());
    }
    dir.save(&app)
}

fn start_checked(dir: &StateDir, app: &mut App, image_ref: &str, id: &str) -> anyhow::Result<()> {
    let Some(image) = app.images.get(image_ref).cloned() else {
        bail!("image {image_ref} not found in app {}", app.name);
    };
    let fly_env = app.fly_env.clone();
    let mut started = machine::start(&dir.app_dir(&app.name), app, &image, &fly_env, id)
        .with_context(|| format!("starting machine {id}"))?;
    app.machines.insert(id.into(), started.clone());
    dir.save(app)?;
    let prober = Prober::new(Duration::from_secs(5))?;
    let deadline = Instant::now() + Duration::from_secs(120);
    if let Err(why) = prober.wait_passing(&started, &app.checks, image.checks_never_pass, deadline)
    {
        bail!("{why}");
    }
    started.healthy = true;
    app.machines.insert(id.into(), started);
    dir.save(app)
}

impl super::LocalFly {
    /// `machine clone <id> --region <region>` on `app`; returns the new machine's id.
    pub fn clone_machine(&self, app: &str, id: &str, region: &str) -> anyhow::Result<String> {
        let output = self
            .command()
            .args(["machine", "clone", id, "--app", app, "--region", region])
            .stdin(std::process::Stdio::null())
            .output()
            .context("running localfly machine clone")?;
        if !output.status.success() {
            bail!(
                "localfly machine clone {id} --region {region} failed: {}",
                String::from_utf8_lossy(&output.stderr).trim()
            );
        }
        let out = String::from_utf8_lossy(&output.stdout);
        out.lines()
            .find_map(|line| line.strip_prefix("Machine ")?.split(' ').next())
            .map(str::to_string)
            .context("localfly machine clone printed no machine id")
    }
}
