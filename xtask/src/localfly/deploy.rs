//! `deploy`: build (copy) or pick the image, run the release command, replace the machines by
//! strategy waiting on fly.toml's checks, and record the release, the way `flyctl deploy`
//! does on the Machines platform. Faults pending on the app change what happens.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

use anyhow::{Context, bail};
use chrono::Utc;

use super::fly_toml::{self, FlyToml};
use super::machine;
use super::rollout;
use super::state::{App, Fault, Image, StateDir, new_machine_id};

/// The environment variable naming the `cabanas` binary a build "packs" into an image.
pub const CABANAS_BIN_ENV: &str = "LOCALFLY_CABANAS_BIN";

/// What `deploy` was asked to do.
#[derive(Debug, Clone)]
pub struct DeployRequest {
    /// `--app`.
    pub app: String,
    /// `--config`.
    pub config: PathBuf,
    /// `--image`: redeploy a known image instead of building.
    pub image: Option<String>,
    /// `--strategy`, else fly.toml's, else rolling.
    pub strategy: Option<String>,
    /// `--wait-timeout`.
    pub wait_timeout: Duration,
    /// `--build-arg` pairs.
    pub build_args: BTreeMap<String, String>,
    /// `--image-label`.
    pub image_label: Option<String>,
    /// `--build-only`: find or build the image, then stop before any release.
    pub build_only: bool,
}

/// Runs a deploy; an error is what flyctl would print after `Error:` (exit 1).
pub fn run(dir: &StateDir, request: &DeployRequest) -> anyhow::Result<()> {
    let mut app = dir.load(&request.app)?;
    let fly = fly_toml::read(&request.config)?;
    let strategy = request
        .strategy
        .clone()
        .or_else(|| fly.strategy.clone())
        .unwrap_or_else(|| "rolling".into());
    if !rollout::STRATEGIES.contains(&strategy.as_str()) {
        bail!(
            "unsupported deployment strategy `{strategy}` (localfly knows {})",
            rollout::STRATEGIES.join(", ")
        );
    }
    let image = match &request.image {
        Some(reference) => find_image(&app, reference).or_else(|error| {
            // Fly's registry is the organisation's: production deploys staging's image, when
            // its token may read it.
            find_in_other_apps(dir, &app, reference).unwrap_or(Err(error))
        })?,
        None => build_image(dir, &mut app, request)?,
    };
    println!("image: {}", image.reference);
    if request.build_only {
        // flyctl `internal/command/deploy/deploy.go`: `determineImage`, then
        // `if flag.GetBuildOnly(ctx) { return nil }` before `deployToMachines`: no release.
        dir.save(&app)?;
        println!("image found: {} ({})", image.reference, image.digest);
        return Ok(());
    }
    if app.take_fault(Fault::NoRelease) {
        dir.save(&app)?;
        println!(
            "Visit your newly deployed app at https://{}.fly.dev/",
            app.name
        );
        return Ok(());
    }
    // A ref by digest alone stays so in the machines' config, as the Machines API keeps the
    // image it was given; the release names the resolved `repo:tag@digest`
    // (flyctl `internal/build/imgsrc/remote_image_resolver.go`: `Tag: img.Ref, Digest: img.Digest`).
    let by_digest = request.image.as_deref().filter(|r| r.contains('@'));
    let release_ref = match by_digest {
        Some(_) => format!("{}@{}", image.reference, image.digest),
        None => image.reference.clone(),
    };
    let mut image = image;
    if let Some(given) = by_digest {
        image.reference = given.to_string();
    }
    app.checks = fly.checks.clone();
    app.fly_env = fly.env.clone();
    app.auto_stop = fly.auto_stop.clone();
    let version = app.push_release(&release_ref, "Deploy image", &strategy);
    for secret in app.secrets.values_mut() {
        secret.status = "Deployed".into();
    }
    dir.save(&app)?;

    let result = release_command(dir, &mut app, &image, &fly).and_then(|()| {
        rollout::replace_machines(dir, &mut app, &image, &fly, &strategy, request.wait_timeout)
    });
    app.finish_release(version, release_status(&result));
    dir.save(&app)?;
    if machine::interrupted() {
        eprintln!(
            "Error: deploy of {} interrupted: release v{version} marked interrupted",
            app.name
        );
        std::process::exit(machine::EXIT_INTERRUPTED);
    }
    result?;
    println!(
        "Visit your newly deployed app at https://{}.fly.dev/",
        app.name
    );
    Ok(())
}

/// A release's final status, as flyctl sets it
/// (`internal/command/deploy/machines_deploymachinesapp.go`): `complete`, `interrupted` when a
/// signal cancelled the deploy, else `failed`.
fn release_status(result: &anyhow::Result<()>) -> &'static str {
    match result {
        Ok(()) => "complete",
        Err(_) if machine::interrupted() => "interrupted",
        Err(_) => "failed",
    }
}

/// What `secrets import` without `--stage` does on an app with machines: a new release of
/// the current image, its machines replaced one at a time with the new values, waiting on
/// the checks of the last deploy.
pub fn restart_for_secrets(dir: &StateDir, app: &mut App) -> anyhow::Result<()> {
    let Some(current) = app.current_release().map(|r| r.image_ref.clone()) else {
        return Ok(());
    };
    let image = find_image(app, &current)?;
    let fly = FlyToml {
        env: app.fly_env.clone(),
        checks: app.checks.clone(),
        ..FlyToml::default()
    };
    let version = app.push_release(&image.reference, "Update secrets", "rolling");
    for secret in app.secrets.values_mut() {
        secret.status = "Deployed".into();
    }
    dir.save(app)?;
    let result =
        rollout::replace_machines(dir, app, &image, &fly, "rolling", Duration::from_secs(300));
    app.finish_release(version, if result.is_ok() { "complete" } else { "failed" });
    dir.save(app)?;
    result
}

fn find_image(app: &App, reference: &str) -> anyhow::Result<Image> {
    app.image(reference).cloned().with_context(|| {
        format!("failed to fetch an image or build from source: image not found: {reference}")
    })
}

/// An image another app of the organisation built, as `flyctl deploy --image` finds it
/// through `ResolveImageForApp` with the caller's token
/// (flyctl `internal/build/imgsrc/remote_image_resolver.go`). A deploy token is scoped to one
/// app (https://fly.io/docs/reference/deploy-tokens/): `None` when no app has the image,
/// an error naming the token when the app's token may not read it.
fn find_in_other_apps(dir: &StateDir, own: &App, reference: &str) -> Option<anyhow::Result<Image>> {
    let (owner, image) = dir
        .app_names()
        .iter()
        .filter(|name| name.as_str() != own.name)
        .filter_map(|name| dir.load(name).ok())
        .find_map(|other| Some((other.name.clone(), other.image(reference)?.clone())))?;
    Some(match &own.token_scope {
        Some(scope) if !scope.contains(&owner) => Err(anyhow::anyhow!(
            "failed to fetch an image or build from source: unauthorized: the token used for {} \
             may not read {reference} (an image of {owner}); use an org deploy token \
             (`fly tokens create org`) or one covering both apps",
            own.name
        )),
        _ => Ok(image),
    })
}

/// "Builds" an image: links (or copies) `$LOCALFLY_CABANAS_BIN` under the image's ref, with
/// the build args recorded and the image faults pending on the app baked in.
fn build_image(dir: &StateDir, app: &mut App, request: &DeployRequest) -> anyhow::Result<Image> {
    let source = std::env::var_os(CABANAS_BIN_ENV)
        .map(PathBuf::from)
        .with_context(|| {
            format!("{CABANAS_BIN_ENV} is not set: point it at a built `cabanas` (cargo build -p backend --bin cabanas)")
        })?;
    if !source.is_file() {
        bail!("{CABANAS_BIN_ENV}={} is not a file", source.display());
    }
    let tag = request.image_label.clone().unwrap_or_else(|| {
        let id = uuid::Uuid::new_v4()
            .simple()
            .to_string()
            .to_ascii_uppercase();
        format!("deployment-{}", &id[..26])
    });
    let reference = format!("registry.fly.io/{}:{tag}", app.name);
    println!("==> Building image {reference}");
    let image_dir = dir.app_dir(&app.name).join("images").join(&tag);
    let _ = std::fs::remove_dir_all(&image_dir);
    std::fs::create_dir_all(&image_dir)
        .with_context(|| format!("creating {}", image_dir.display()))?;
    let real = image_dir.join("cabanas-real");
    if std::fs::hard_link(&source, &real).is_err() {
        std::fs::copy(&source, &real)
            .with_context(|| format!("copying {} to {}", source.display(), real.display()))?;
    }
    let binary = if app.take_fault(Fault::CrashAtStart) {
        crashing_wrapper(&image_dir, &real)?
    } else {
        real
    };
    let image = Image {
        reference: reference.clone(),
        tag,
        binary,
        build_args: request.build_args.clone(),
        checks_never_pass: app.take_fault(Fault::ChecksNeverPass),
        created_at: Utc::now(),
        digest: String::new(),
    };
    let image = Image {
        digest: image_digest(&image),
        ..image
    };
    app.images.insert(reference, image.clone());
    Ok(image)
}

/// A manifest digest for a local image: sha256 over its ref, build time and build args (the
/// binary is shared by every image, so its bytes would not tell two builds apart).
fn image_digest(image: &Image) -> String {
    use sha2::{Digest, Sha256};
    let mut hasher = Sha256::new();
    hasher.update(image.reference.as_bytes());
    hasher.update(image.created_at.to_rfc3339().as_bytes());
    for (key, value) in &image.build_args {
        hasher.update(format!("{key}={value}\n").as_bytes());
    }
    let hex: String = hasher
        .finalize()
        .iter()
        .map(|byte| format!("{byte:02x}"))
        .collect();
    format!("sha256:{hex}")
}

/// A binary that exits at once when asked to serve (other commands, such as the release
/// command, still work), like a build that panics at start-up.
fn crashing_wrapper(image_dir: &Path, real: &Path) -> anyhow::Result<PathBuf> {
    use std::os::unix::fs::PermissionsExt;
    let wrapper = image_dir.join("cabanas");
    let script = format!(
        "#!/bin/sh\nif [ \"$1\" = serve ]; then\n  echo 'thread main panicked at start-up (localfly fault crash-at-start)' >&2\n  exit 101\nfi\nexec '{}' \"$@\"\n",
        real.display()
    );
    std::fs::write(&wrapper, script).with_context(|| format!("writing {}", wrapper.display()))?;
    std::fs::set_permissions(&wrapper, std::fs::Permissions::from_mode(0o755))?;
    Ok(wrapper)
}

/// Runs fly.toml's release command once, in a temporary "machine" of the new image.
fn release_command(
    dir: &StateDir,
    app: &mut App,
    image: &Image,
    fly: &FlyToml,
) -> anyhow::Result<()> {
    let Some(command) = &fly.release_command else {
        return Ok(());
    };
    println!(
        "Running {} release_command: {}",
        app.name,
        command.join(" ")
    );
    let mut env = machine::machine_env(app, image, &fly.env, &new_machine_id(), 0);
    // Fly marks the release command's temporary machine this way.
    env.insert("RELEASE_COMMAND".into(), "1".into());
    if app.take_fault(Fault::ReleaseCommandFails) {
        // A database the command cannot open: the real binary fails the real way.
        env.insert(
            "DATABASE_URL".into(),
            "sqlite:/nonexistent/localfly-fault/release.db".into(),
        );
    }
    dir.save(app)?;
    // `cabanas` is the image's binary, as it is on the image's PATH.
    let program = match command[0].as_str() {
        "cabanas" => image.binary.clone(),
        other => PathBuf::from(other),
    };
    let release_id = new_machine_id();
    let mut process = match super::container::configured() {
        Some(container) => container.command(&app.name, &release_id, &env, command),
        None => {
            let mut process = Command::new(&program);
            process.args(&command[1..]).env_clear().envs(env);
            process
        }
    };
    // The release command runs on a temporary Fly machine, not under flyctl: a Ctrl-C to
    // flyctl (which the deploy tools pass to flyctl's whole process group) does not end it.
    // In its own group here too, so an interrupted deploy is marked interrupted, never failed
    // by a release command the signal killed first.
    std::os::unix::process::CommandExt::process_group(&mut process, 0);
    let output = process
        .current_dir(dir.app_dir(&app.name))
        .stdin(Stdio::null())
        .output()
        .with_context(|| format!("running the release command {}", program.display()))?;
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    if !output.status.success() {
        bail!(
            "release command failed - aborting deployment. error running release_command machine: exit code {}\n{}",
            output.status.code().unwrap_or(-1),
            crate::flyctl::tail(&text, 10)
        );
    }
    println!(
        "Running {} release_command: {} done",
        app.name,
        command.join(" ")
    );
    Ok(())
}

/// Parses a `--wait-timeout`: a Go duration (`300s`, `5m`, `5m0s`, `1h`) or whole seconds.
pub fn parse_duration(text: &str) -> Result<Duration, String> {
    if let Ok(seconds) = text.parse::<u64>() {
        return Ok(Duration::from_secs(seconds));
    }
    let mut total = 0f64;
    let mut number = String::new();
    let mut chars = text.chars().peekable();
    while let Some(c) = chars.next() {
        if c.is_ascii_digit() || c == '.' {
            number.push(c);
            continue;
        }
        let mut unit = c.to_string();
        if c == 'm' && chars.peek() == Some(&'s') {
            unit.push(chars.next().unwrap_or('s'));
        }
        let value: f64 = number
            .parse()
            .map_err(|_| format!("invalid duration \"{text}\""))?;
        number.clear();
        total += value
            * match unit.as_str() {
                "h" => 3600.0,
                "m" => 60.0,
                "s" => 1.0,
                "ms" => 0.001,
                _ => return Err(format!("invalid duration \"{text}\" (unknown unit {unit})")),
            };
    }
    if !number.is_empty() || text.is_empty() {
        return Err(format!("invalid duration \"{text}\" (missing unit)"));
    }
    Ok(Duration::from_secs_f64(total))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wait_timeouts_parse_like_go_durations() {
        assert_eq!(parse_duration("300s"), Ok(Duration::from_secs(300)));
        assert_eq!(parse_duration("5m0s"), Ok(Duration::from_secs(300)));
        assert_eq!(parse_duration("1h"), Ok(Duration::from_secs(3600)));
        assert_eq!(parse_duration("45"), Ok(Duration::from_secs(45)));
        assert_eq!(parse_duration("500ms"), Ok(Duration::from_millis(500)));
        assert!(parse_duration("5x").is_err());
        assert!(parse_duration("5m3").is_err());
        assert!(parse_duration("").is_err());
    }
}
