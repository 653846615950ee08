//! The container engine `image` drives: Docker or Podman, found on `PATH` and asked whether
//! it can run before anything is built. Both take the same words for everything used here
//! (`build`, `image inspect`, `run`, `inspect`, `logs`, `rm -f`): see
//! https://docs.podman.io/en/v4.3/markdown/podman-run.1.html and
//! https://docs.docker.com/reference/cli/docker/container/run/.

use std::ffi::OsString;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use anyhow::{Context, bail};
use clap::ValueEnum;

/// Which engine to use.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum EngineKind {
    /// Podman (daemonless; what `.ci/base-images` sets up).
    Podman,
    /// Docker (needs a running daemon).
    Docker,
}

impl EngineKind {
    /// The program name.
    pub fn program(self) -> &'static str {
        match self {
            EngineKind::Podman => "podman",
            EngineKind::Docker => "docker",
        }
    }
}

/// A container engine that answered `info`.
#[derive(Debug, Clone)]
pub struct Engine {
    /// Podman or Docker.
    pub kind: EngineKind,
    /// The program found on `PATH`.
    pub program: PathBuf,
}

/// Why no engine can be used; `image` exits 2 with this text.
pub fn not_found_message(requested: Option<EngineKind>) -> String {
    match requested {
        Some(kind) => format!(
            "--engine {0}: {0} is not on PATH; install it (Podman: apt-get install podman runc, \
             then .ci/base-images) or pick the other engine with --engine",
            kind.program()
        ),
        None => "neither docker nor podman is on PATH: install one (Podman: apt-get install \
                 podman runc, then .ci/base-images; or Docker Engine), or put it on PATH"
            .to_string(),
    }
}

/// Finds the engine: the one asked for, else Podman, else Docker; the first on `PATH` that
/// answers `info` wins.
pub fn find(requested: Option<EngineKind>, path: Option<OsString>) -> anyhow::Result<Engine> {
    let candidates = match requested {
        Some(kind) => vec![kind],
        None => vec![EngineKind::Podman, EngineKind::Docker],
    };
    let found: Vec<Engine> = candidates
        .into_iter()
        .filter_map(|kind| {
            on_path(kind.program(), path.as_deref()).map(|program| Engine { kind, program })
        })
        .collect();
    if found.is_empty() {
        bail!("{}", not_found_message(requested));
    }
    let mut refusals = Vec::new();
    for engine in found {
        match engine.answers() {
            Ok(()) => return Ok(engine),
            Err(why) => refusals.push(format!("{}: {why}", engine.program.display())),
        }
    }
    bail!(
        "no container engine can run here ({}); for Podman run .ci/base-images (it writes \
         /etc/containers/containers.conf), for Docker start the daemon",
        refusals.join("; ")
    )
}

/// The executable `name` in the directories of `path` (`PATH` when `None`).
fn on_path(name: &str, path: Option<&std::ffi::OsStr>) -> Option<PathBuf> {
    use std::os::unix::fs::PermissionsExt;
    let path = path
        .map(OsString::from)
        .or_else(|| std::env::var_os("PATH"))?;
    std::env::split_paths(&path)
        .map(|dir| dir.join(name))
        .find(|file| {
            std::fs::metadata(file)
                .is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
        })
}

impl Engine {
    /// A command for this engine.
    pub fn command(&self) -> Command {
        let mut command = Command::new(&self.program);
        command.stdin(Stdio::null());
        command
    }

    /// The engine's name, `podman` or `docker`.
    pub fn name(&self) -> &'static str {
        self.kind.program()
    }

    /// `info` succeeds: Docker's daemon is up, Podman can read its storage.
    fn answers(&self) -> Result<(), String> {
        let output = self
            .command()
            .args(["info", "--format", "{{json .}}"])
            .output()
            .map_err(|e| format!("cannot start it: {e}"))?;
        if output.status.success() {
            return Ok(());
        }
        Err(first_line(&String::from_utf8_lossy(&output.stderr)))
    }

    /// Runs the engine with `args`, returning trimmed stdout; an error carries its stderr.
    pub fn read(&self, args: &[&str]) -> anyhow::Result<String> {
        let output = self
            .command()
            .args(args)
            .output()
            .with_context(|| format!("starting {} {}", self.name(), args.join(" ")))?;
        if !output.status.success() {
            bail!(
                "{} {} failed: {}",
                self.name(),
                args.first().copied().unwrap_or(""),
                String::from_utf8_lossy(&output.stderr).trim()
            );
        }
        Ok(String::from_utf8_lossy(&output.stdout).trim().to_string())
    }

    /// `build -f dockerfile -t tag --build-arg GIT_COMMIT=commit context`, its output in
    /// `log`. Returns whether it succeeded.
    pub fn build(
        &self,
        dockerfile: &Path,
        tag: &str,
        commit: &str,
        context: &Path,
        log: &Path,
    ) -> anyhow::Result<bool> {
        let file =
            std::fs::File::create(log).with_context(|| format!("creating {}", log.display()))?;
        let status = self
            .command()
            .arg("build")
            .arg("--file")
            .arg(dockerfile)
            .args(["--tag", tag, "--build-arg"])
            .arg(format!("GIT_COMMIT={commit}"))
            .arg(context)
            .stdout(file.try_clone()?)
            .stderr(file)
            .status()
            .with_context(|| format!("starting {} build", self.name()))?;
        Ok(status.success())
    }

    /// Facts about a built image.
    pub fn inspect_image(&self, tag: &str) -> anyhow::Result<ImageFacts> {
        let id = self.read(&["image", "inspect", "--format", "{{.Id}}", tag])?;
        let size = self.read(&["image", "inspect", "--format", "{{.Size}}", tag])?;
        let user = self.read(&["image", "inspect", "--format", "{{.Config.User}}", tag])?;
        let labels = self.read(&[
            "image",
            "inspect",
            "--format",
            "{{json .Config.Labels}}",
            tag,
        ])?;
        let labels: serde_json::Value = serde_json::from_str(&labels).unwrap_or_default();
        Ok(ImageFacts {
            id: id.trim_start_matches("sha256:").to_string(),
            size_bytes: size.parse().ok(),
            user,
            stand_in_base: labels.get(STAND_IN_LABEL).and_then(|v| v.as_str()) == Some("true"),
        })
    }

    /// Removes containers by name, one at a time (a name already gone, such as a `--rm`
    /// container that ended, must not keep the others).
    pub fn remove_containers(&self, names: &[String]) {
        for name in names {
            let _ = self
                .command()
                .args(["rm", "--force", name])
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .status();
        }
    }
}

/// The label `.ci/base-images` puts on its stand-in base images; images built on them
/// inherit it.
pub const STAND_IN_LABEL: &str = "org.sist-cabanas.stand-in";

/// What `image` reports about a built image.
#[derive(Debug, Clone)]
pub struct ImageFacts {
    /// The image id, without `sha256:`.
    pub id: String,
    /// Its size in bytes, as the engine counts it.
    pub size_bytes: Option<u64>,
    /// The `USER` it runs as (empty: root).
    pub user: String,
    /// Built on a stand-in base from `.ci/base-images`.
    pub stand_in_base: bool,
}

/// The first non-empty line of `text`, or a placeholder.
pub fn first_line(text: &str) -> String {
    text.lines()
        .map(str::trim)
        .find(|l| !l.is_empty())
        .unwrap_or("(no message)")
        .to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_empty_path_finds_neither_engine_and_names_both() {
        let empty = tempfile::tempdir().unwrap();
        let error = find(None, Some(empty.path().as_os_str().to_owned())).unwrap_err();
        let text = error.to_string();
        assert!(text.contains("docker") && text.contains("podman"), "{text}");
        let error = find(
            Some(EngineKind::Docker),
            Some(empty.path().as_os_str().to_owned()),
        )
        .unwrap_err();
        assert!(error.to_string().contains("--engine docker"), "{error}");
    }
}
