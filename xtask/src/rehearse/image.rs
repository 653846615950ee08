//! `cargo xtask rehearse --image TAG`: the local Fly runs its machines (and the release
//! command) as containers of the image `cargo xtask image` built, instead of as processes of
//! the host's `cabanas` ([`crate::localfly::container`]). What this module adds: the image
//! must exist before anything starts, the shared SQLite database must be writable by the
//! image's unprivileged USER, and afterwards no container of the rehearsal may be left.

use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::process::{Command, Stdio};

use anyhow::{Context, bail};

use crate::localfly::container::{ContainerImage, LABEL};
use crate::verdict::Verdict;

/// The engine the rehearsal runs images with (the local Fly's default).
pub const ENGINE: &str = "podman";

/// The image `tag`, checked to exist in the engine's store (the phase line says so).
pub fn require(tag: &str) -> anyhow::Result<ContainerImage> {
    let exists = Command::new(ENGINE)
        .args(["image", "exists", tag])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .with_context(|| {
            format!("running `{ENGINE} image exists {tag}`: is {ENGINE} installed?")
        })?;
    if !exists.success() {
        bail!(
            "no image {tag} in {ENGINE}'s store: build it first with `cargo xtask image` (or pass --image with another tag)"
        );
    }
    super::phase_line(
        "fly",
        &format!("machines and the release command run as {ENGINE} containers of {tag}"),
    );
    Ok(ContainerImage {
        engine: ENGINE.to_string(),
        tag: tag.to_string(),
    })
}

/// Opens the directory of a SQLite `database_url` and the files in it to every user: the
/// image runs as its own USER (uid 10001), the seeding ran as this user.
pub fn share_database(database_url: &str) -> anyhow::Result<()> {
    let Some(path) = database_url.strip_prefix("sqlite:") else {
        return Ok(());
    };
    let path = Path::new(path.split('?').next().unwrap_or_default());
    let Some(dir) = path.parent() else {
        return Ok(());
    };
    let open = |path: &Path, mode: u32| {
        std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode))
            .with_context(|| format!("opening {} to the image's user", path.display()))
    };
    open(dir, 0o777)?;
    for entry in std::fs::read_dir(dir).with_context(|| format!("reading {}", dir.display()))? {
        let entry = entry?;
        if entry.file_type()?.is_file() {
            open(&entry.path(), 0o666)?;
        }
    }
    Ok(())
}

/// The `fly containers` phase, after the local Fly stopped: passes when none of its
/// containers is left in the engine (`podman ps -a`), else names them.
pub fn containers_phase(image: &ContainerImage) -> anyhow::Result<super::PhaseOutcome> {
    let left = leftovers(image)?;
    let verdict = if left.is_empty() {
        super::phase_line("fly containers", "none left");
        Verdict::Pass
    } else {
        super::phase_line(
            "fly containers",
            &format!("still there: {}", left.join(", ")),
        );
        Verdict::Fail
    };
    Ok(super::PhaseOutcome {
        phase: "fly containers",
        verdict,
    })
}

/// The local Fly's containers still in the engine (running or not): none after a rehearsal.
fn leftovers(image: &ContainerImage) -> anyhow::Result<Vec<String>> {
    let output = Command::new(&image.engine)
        .args(["ps", "--all", "--format", "{{.Names}}", "--filter"])
        .arg(format!("label={LABEL}"))
        .stdin(Stdio::null())
        .output()
        .with_context(|| format!("running `{} ps --all`", image.engine))?;
    Ok(String::from_utf8_lossy(&output.stdout)
        .split_whitespace()
        .map(str::to_string)
        .collect())
}
