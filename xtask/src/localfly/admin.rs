//! `localfly local ...`: create an app (and start its proxy), queue a fault, stop everything.

use std::os::unix::process::CommandExt;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};

use super::cli::LocalCommand;
use super::machine::{self, log_tail};
use super::state::{App, StateDir};
use crate::interrupt::process_alive;
use crate::ports::free_port;

/// Runs an admin command.
pub fn run(dir: &StateDir, command: LocalCommand) -> anyhow::Result<()> {
    match command {
        LocalCommand::CreateApp {
            app,
            machines,
            port,
            region,
            idle_stop_after,
        } => {
            let idle = idle_stop_after
                .map(|text| super::deploy::parse_duration(&text))
                .transpose()
                .map_err(|e| anyhow::anyhow!("--idle-stop-after: {e}"))?;
            let url = create_app(dir, &app.app, machines, port, &region, idle)?;
            println!("{url}");
        }
        LocalCommand::TokenScope { app, reads } => {
            let _lock = dir.lock(&app.app)?;
            let mut app = dir.load(&app.app)?;
            let mut scope = vec![app.name.clone()];
            scope.extend(reads);
            println!(
                "the deploy token of {} reads images of: {}",
                app.name,
                scope.join(", ")
            );
            app.token_scope = Some(scope);
            dir.save(&app)?;
        }
        LocalCommand::Fault { app, fault } => {
            let _lock = dir.lock(&app.app)?;
            let mut app = dir.load(&app.app)?;
            app.faults.push(fault);
            dir.save(&app)?;
        }
        LocalCommand::Down { app } => {
            let names = match app {
                Some(app) => vec![app],
                None => dir.app_names(),
            };
            let mut stopped = 0;
            for name in names {
                stopped += down(dir, &name)?;
            }
            println!("stopped {stopped} process group(s)");
        }
        LocalCommand::StopMachine { app, machine } => {
            let _lock = dir.lock(&app.app)?;
            let id = stop_machine(dir, &app.app, machine.as_deref())?;
            println!("stopped machine {id}");
        }
        LocalCommand::AddMachine { app, kind, image } => {
            let _lock = dir.lock(&app.app)?;
            let id = add_machine(dir, &app.app, kind, image)?;
            println!("added machine {id}");
        }
        LocalCommand::RegionEnv { app, region, vars } => {
            super::regions::set_env(dir, &app.app, &region, &vars)?;
        }
        LocalCommand::Proxy { app, port } => super::proxy::serve(dir.clone(), &app.app, port)?,
    }
    Ok(())
}

/// Stops `id` (or the first started machine deploy manages), as auto-stop does.
fn stop_machine(dir: &StateDir, name: &str, id: Option<&str>) -> anyhow::Result<String> {
    let mut app = dir.load(name)?;
    let id = match id {
        Some(id) => id.to_string(),
        None => app
            .machines
            .values()
            .find(|m| m.managed() && m.state == "started")
            .map(|m| m.id.clone())
            .with_context(|| format!("app {name} has no started machine to stop"))?,
    };
    let machine = app
        .machines
        .get_mut(&id)
        .with_context(|| format!("app {name} has no machine {id}"))?;
    machine::stop(machine);
    machine.state = "stopped".into();
    machine.healthy = false;
    machine.updated_at = chrono::Utc::now();
    dir.save(&app)?;
    Ok(id)
}

/// Adds a stopped machine of `kind` on `image` (default: the app's current image).
fn add_machine(
    dir: &StateDir,
    name: &str,
    kind: super::state::MachineKind,
    image: Option<String>,
) -> anyhow::Result<String> {
    let mut app = dir.load(name)?;
    let image_ref = match image {
        Some(image) => image,
        None => app
            .current_release()
            .map(|r| r.image_ref.clone())
            .with_context(|| format!("app {name} has no release yet: deploy it first"))?,
    };
    let id = super::state::new_machine_id();
    let now = chrono::Utc::now();
    let log = dir.app_dir(name).join("logs").join(format!("{id}.log"));
    app.machines.insert(
        id.clone(),
        super::state::Machine {
            id: id.clone(),
            state: "stopped".into(),
            image_ref,
            port: 0,
            healthy: false,
            pid: None,
            started: None,
            log,
            created_at: now,
            updated_at: now,
            kind,
        },
    );
    dir.save(&app)?;
    Ok(id)
}

/// Creates `app` and starts its proxy on `port` (0: a free one); returns the app's URL.
pub fn create_app(
    dir: &StateDir,
    name: &str,
    machines: usize,
    port: u16,
    region: &str,
    idle_stop_after: Option<Duration>,
) -> anyhow::Result<String> {
    if dir.load(name).is_ok() {
        bail!("app {name} already exists in {}", dir.root().display());
    }
    if machines == 0 {
        bail!("--machines must be at least 1");
    }
    let port = if port == 0 { free_port()? } else { port };
    let mut app = App {
        name: name.into(),
        region: region.into(),
        machine_count: machines,
        port,
        idle_stop_after_ms: idle_stop_after.map(|d| d.as_millis() as u64),
        ..App::default()
    };
    dir.save(&app)?;
    let log = dir.app_dir(name).join("proxy.log");
    let file =
        std::fs::File::create(&log).with_context(|| format!("creating {}", log.display()))?;
    let program = std::env::current_exe().context("finding the localfly binary")?;
    let child = Command::new(program)
        .args(["local", "proxy", "--app", name, "--port", &port.to_string()])
        .env(super::state::DIR_ENV, dir.root())
        .stdin(Stdio::null())
        .stdout(file.try_clone()?)
        .stderr(file)
        .process_group(0)
        .spawn()
        .context("starting the proxy")?;
    app.proxy_pid = Some(child.id());
    app.proxy_started = machine::start_time(child.id());
    dir.save(&app)?;
    let deadline = Instant::now() + Duration::from_secs(10);
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
        if !process_alive(child.id()) || Instant::now() > deadline {
            bail!(
                "the proxy of {name} did not start on 127.0.0.1:{port}:\n{}",
                log_tail(&log, 10)
            );
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    Ok(format!("http://127.0.0.1:{port}"))
}

/// Stops the app's machines and proxy; returns how many process groups were running.
pub fn down(dir: &StateDir, name: &str) -> anyhow::Result<usize> {
    let mut app = dir.load(name)?;
    let mut stopped = 0;
    for machine in app.machines.values_mut() {
        if machine::alive(machine) {
            stopped += 1;
        }
        machine::stop(machine);
    }
    if machine::stop_group(app.proxy_pid.take(), app.proxy_started.take()) {
        stopped += 1;
    }
    dir.save(&app)?;
    Ok(stopped)
}
