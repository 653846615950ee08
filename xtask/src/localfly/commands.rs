//! Runs one `localfly` call: records it, then does what flyctl would. Errors print as
//! flyctl's do (`Error: ...`) and exit 1.

use std::io::{IsTerminal, Read, Write};
use std::process::ExitCode;
use std::time::Duration;

use anyhow::{Context, bail};
use clap::Parser;
use serde_json::json;

use super::cli::{
    AppListing, AppsCommand, AuthCommand, Cli, FlyCommand, MachinesCommand, ScaleCommand,
    SecretsCommand,
};
use super::deploy::{self, DeployRequest};
use super::machine::Prober;
use super::state::{Secret, StateDir, digest};
use super::{admin, output};

/// The `localfly` binary's `main`.
pub fn main() -> ExitCode {
    let argv: Vec<String> = std::env::args().skip(1).collect();
    // Only `secrets import` reads stdin, as with flyctl: any other call returns at once even
    // when its caller leaves stdin open.
    let words: Vec<&str> = argv
        .iter()
        .map(String::as_str)
        .filter(|a| !a.starts_with('-'))
        .take(2)
        .collect();
    let mut stdin = String::new();
    if words == ["secrets", "import"] && !std::io::stdin().is_terminal() {
        let _ = std::io::stdin().read_to_string(&mut stdin);
    }
    let dir = StateDir::from_env();
    if let Ok(dir) = &dir
        && let Err(error) = record(dir, &argv, &stdin)
    {
        eprintln!("Error: recording the call: {error:#}");
        return ExitCode::from(1);
    }
    let cli = Cli::parse();
    let outcome = dir.and_then(|dir| run(&dir, cli, &stdin));
    match outcome {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("Error: {error:#}");
            ExitCode::from(1)
        }
    }
}

/// Appends `{"argv", "stdin", "cwd", "env"}` to `calls.jsonl`, as the recording fake does,
/// so tests can check that secret values travel on stdin only.
fn record(dir: &StateDir, argv: &[String], stdin: &str) -> anyhow::Result<()> {
    std::fs::create_dir_all(dir.root())
        .with_context(|| format!("creating {}", dir.root().display()))?;
    let call = json!({
        "argv": argv,
        "stdin": stdin,
        "cwd": std::env::current_dir().map(|d| d.display().to_string()).unwrap_or_default(),
        "env": { "FLY_API_TOKEN": std::env::var_os("FLY_API_TOKEN").is_some() },
    });
    let path = dir.root().join("calls.jsonl");
    let mut file = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(&path)
        .with_context(|| format!("opening {}", path.display()))?;
    writeln!(file, "{call}").with_context(|| format!("writing {}", path.display()))
}

fn print_json(value: &serde_json::Value) -> anyhow::Result<()> {
    println!("{}", serde_json::to_string_pretty(value)?);
    Ok(())
}

fn run(dir: &StateDir, cli: Cli, stdin: &str) -> anyhow::Result<()> {
    match cli.command {
        FlyCommand::Version => {
            println!("fly v0.3.0-localfly linux/amd64 Commit: localfly BuildDate: -");
        }
        FlyCommand::Auth {
            command: AuthCommand::Whoami,
        } => println!("localfly@example.com"),
        FlyCommand::Status { app, json } => {
            let app = dir.load(&app.app)?;
            let value = output::status(&app, &Prober::new(Duration::from_secs(2))?);
            if json {
                print_json(&value)?;
            } else {
                println!(
                    "App\n  Name     = {}\n  Hostname = {}.fly.dev",
                    app.name, app.name
                );
                for m in value["Machines"].as_array().into_iter().flatten() {
                    println!("{}\t{}\t{}", m["id"], m["state"], m["config"]["image"]);
                }
            }
        }
        FlyCommand::Apps {
            command: AppsCommand::List { json },
        } => {
            let apps = dir
                .app_names()
                .iter()
                .map(|name| dir.load(name).map(|app| output::app_summary(&app)))
                .collect::<anyhow::Result<Vec<_>>>()?;
            if json {
                print_json(&serde_json::Value::Array(apps))?;
            } else {
                for app in apps {
                    println!("{}\t{}", app["Name"], app["Status"]);
                }
            }
        }
        FlyCommand::Secrets { command } => secrets(dir, command, stdin)?,
        FlyCommand::Deploy(args) => {
            super::machine::watch_for_interrupt();
            let _lock = dir.lock(&args.app.app)?;
            let wait_timeout = deploy::parse_duration(&args.wait_timeout)
                .map_err(|e| anyhow::anyhow!("--wait-timeout: {e}"))?;
            let request = DeployRequest {
                app: args.app.app.clone(),
                config: args.config.clone(),
                image: args.image.clone(),
                strategy: args.strategy.clone(),
                wait_timeout,
                build_args: args.build_arg_map()?,
                image_label: args.image_label.clone(),
                build_only: args.build_only,
            };
            deploy::run(dir, &request)?;
        }
        FlyCommand::Releases { app, json, image } => {
            let app = dir.load(&app.app)?;
            let value = output::releases(&app, image);
            if json {
                print_json(&value)?;
            } else {
                for r in value.as_array().into_iter().flatten() {
                    println!("v{}\t{}\t{}", r["Version"], r["Status"], r["Description"]);
                }
            }
        }
        FlyCommand::Machines {
            command: MachinesCommand::List(AppListing { app, json }),
        } => {
            let app = dir.load(&app.app)?;
            let value = output::machines(&app, &Prober::new(Duration::from_secs(2))?);
            if json {
                print_json(&value)?;
            } else {
                for m in value.as_array().into_iter().flatten() {
                    println!("{}\t{}\t{}", m["id"], m["state"], m["config"]["image"]);
                }
            }
        }
        FlyCommand::Machines {
            command:
                MachinesCommand::Clone {
                    machine_id,
                    app,
                    region,
                },
        } => {
            super::regions::clone_machine(dir, &app.app, &machine_id, region.as_deref())?;
        }
        FlyCommand::Scale {
            command: ScaleCommand::Count {
                count, app, region, ..
            },
        } => super::regions::scale_count(dir, &app.app, count, &region)?,
        FlyCommand::Logs { app, no_tail } => {
            if !no_tail {
                bail!("localfly cannot follow logs: pass --no-tail");
            }
            for line in one_log_page(dir, &app.app)? {
                println!("{line}");
            }
        }
        FlyCommand::Local { command } => admin::run(dir, command)?,
    }
    Ok(())
}

/// `logs --no-tail` as flyctl runs it (`logs/polling.go`, `Poll`): ask for a page; an empty
/// page is asked again after a back-off from 64 ms doubling to 4 s, for as long as it stays
/// empty; the first page with lines is printed and the command exits. So on an app that
/// has logged nothing it never returns, like the real one.
fn one_log_page(dir: &StateDir, app: &str) -> anyhow::Result<Vec<String>> {
    const MIN_WAIT: Duration = Duration::from_millis(64);
    const MAX_WAIT: Duration = Duration::from_millis(64 << 6);
    let mut wait = MIN_WAIT;
    loop {
        let lines = output::logs(&dir.load(app)?);
        if !lines.is_empty() {
            return Ok(lines);
        }
        std::thread::sleep(wait);
        wait = (wait * 2).min(MAX_WAIT);
    }
}

fn secrets(dir: &StateDir, command: SecretsCommand, stdin: &str) -> anyhow::Result<()> {
    match command {
        SecretsCommand::Import { app, stage } => {
            let _lock = dir.lock(&app.app)?;
            let mut app = dir.load(&app.app)?;
            let entries = crate::secrets::fly_import::decode_fly_import(stdin)?;
            if entries.is_empty() {
                bail!("requires at least one SECRET=VALUE pair on stdin");
            }
            let status = if stage { "Staged" } else { "Deployed" };
            for entry in entries {
                let secret = Secret {
                    digest: digest(&entry.value),
                    value: entry.value,
                    status: status.into(),
                };
                app.secrets.insert(entry.name, secret);
            }
            dir.save(&app)?;
            if !stage && !app.machines.is_empty() {
                // Like flyctl: new values mean a new release and restarted machines.
                deploy::restart_for_secrets(dir, &mut app)?;
            }
            if stage {
                println!(
                    "Secrets have been staged, but not set on VMs. Deploy or update machines in this app for the secrets to take effect."
                );
            }
        }
        SecretsCommand::List(AppListing { app, json }) => {
            let app = dir.load(&app.app)?;
            let value = output::secrets(&app);
            if json {
                print_json(&value)?;
            } else {
                for s in value.as_array().into_iter().flatten() {
                    println!("{}\t{}\t{}", s["name"], s["digest"], s["status"]);
                }
            }
        }
    }
    Ok(())
}
