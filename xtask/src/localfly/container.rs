//! Machines as containers of the real image: with `LOCALFLY_CONTAINER_IMAGE` set (by
//! `cargo xtask rehearse --image`), every machine and the release command run in a container
//! of that image instead of as a process of `$LOCALFLY_CABANAS_BIN`, so the rehearsal proves
//! what Fly would run: the image's binary, USER, base and CA roots.
//!
//! The container is `podman run --rm` in the foreground: the engine's client is the
//! machine's process (its own process group, as every machine), `podman run` forwards the
//! TERM `local down` sends to the service inside, and `--rm` removes the container when it
//! exits. A container that outlives its client (a KILL after the grace period) is removed by
//! [`remove`], found by its label. Settings that work with rootful podman 4.3 on a machine
//! without a bridge network or systemd (the same as `cargo xtask image --check`, `.ci/base-images`):
//! the host network (a machine listens on its loopback port, `HOST=127.0.0.1`), explicit
//! `nofile`/`nproc` ulimits no higher than this process's hard limits. The machine's
//! environment reaches the container by name only (`--env NAME`, the value from the engine's
//! own environment), so no secret is on an argv. A SQLite `DATABASE_URL` is mounted at the
//! same path, so the machines share the database as the processes do.
//!
//! Not modelled in containers: the `crash-at-start` fault, which wraps the host binary
//! (`checks-never-pass` works: the local Fly's probe asks a path that cannot answer).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

/// The image tag machines run from; unset, machines are processes.
pub const IMAGE_VAR: &str = "LOCALFLY_CONTAINER_IMAGE";
/// The engine (default `podman`).
pub const ENGINE_VAR: &str = "LOCALFLY_CONTAINER_ENGINE";
/// The label every container of the local Fly carries; its value is the machine id.
pub const LABEL: &str = "org.sist-cabanas.localfly.machine";
/// The highest `nofile`/`nproc` asked for; the host's hard limits may be lower.
const ULIMIT_CAP: u64 = 65_536;

/// Where machines run: the engine and the image tag.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ContainerImage {
    /// `podman` or `docker` (a program on PATH, or a path).
    pub engine: String,
    /// The image tag, e.g. `sist-cabanas:local`.
    pub tag: String,
}

/// The container image machines run from, when `LOCALFLY_CONTAINER_IMAGE` is set.
pub fn configured() -> Option<ContainerImage> {
    let tag = std::env::var(IMAGE_VAR)
        .ok()
        .filter(|t| !t.trim().is_empty())?;
    let engine = std::env::var(ENGINE_VAR)
        .ok()
        .filter(|e| !e.trim().is_empty())
        .unwrap_or_else(|| "podman".to_string());
    Some(ContainerImage { engine, tag })
}

impl ContainerImage {
    /// `ENGINE run --rm` of `argv` (e.g. `cabanas serve`) for machine `id` of `app`, with
    /// `env` passed by name. The returned command's own environment holds the values.
    pub fn command(
        &self,
        app: &str,
        id: &str,
        env: &BTreeMap<String, String>,
        argv: &[String],
    ) -> Command {
        let mut command = Command::new(&self.engine);
        command.args(["run", "--rm", "--name", &format!("localfly-{app}-{id}")]);
        command.arg("--label").arg(format!("{LABEL}={id}"));
        command.args(["--network", "host"]);
        let (nofile, nproc) = ulimits();
        command
            .arg("--ulimit")
            .arg(format!("nofile={nofile}:{nofile}"));
        command
            .arg("--ulimit")
            .arg(format!("nproc={nproc}:{nproc}"));
        if let Some(dir) = env.get("DATABASE_URL").and_then(|u| sqlite_dir(u)) {
            command
                .arg("--volume")
                .arg(format!("{}:{}", dir.display(), dir.display()));
        }
        // The image's PATH finds `cabanas`; the host's would not.
        for name in env.keys().filter(|name| name.as_str() != "PATH") {
            command.arg("--env").arg(name);
        }
        command.arg(&self.tag).args(argv);
        command.envs(env.iter().filter(|(name, _)| name.as_str() != "PATH"));
        command
    }
}

/// The directory of a SQLite `DATABASE_URL` (`sqlite:/path/db?mode=rwc`), to mount.
fn sqlite_dir(url: &str) -> Option<PathBuf> {
    let path = url.strip_prefix("sqlite:")?;
    let path = path.trim_start_matches("//");
    let path = path.split('?').next()?;
    Path::new(path)
        .is_absolute()
        .then(|| Path::new(path).parent().map(Path::to_path_buf))?
}

/// `nofile` and `nproc` for the container: this process's hard limits (runc refuses more),
/// at most [`ULIMIT_CAP`], and `nproc` at most `pid_max`.
fn ulimits() -> (u64, u64) {
    let limits = std::fs::read_to_string("/proc/self/limits").unwrap_or_default();
    let pid_max = std::fs::read_to_string("/proc/sys/kernel/pid_max")
        .ok()
        .and_then(|t| t.trim().parse().ok())
        .unwrap_or(ULIMIT_CAP);
    let nofile = hard_limit(&limits, "Max open files").min(ULIMIT_CAP);
    let nproc = hard_limit(&limits, "Max processes")
        .min(ULIMIT_CAP)
        .min(pid_max);
    (nofile, nproc)
}

/// The hard limit on the `/proc/self/limits` line starting with `name` (`unlimited` and
/// anything unreadable count as [`ULIMIT_CAP`]).
fn hard_limit(limits: &str, name: &str) -> u64 {
    limits
        .lines()
        .find(|line| line.starts_with(name))
        .and_then(|line| line[name.len()..].split_whitespace().nth(1))
        .and_then(|hard| hard.parse().ok())
        .unwrap_or(ULIMIT_CAP)
}

/// Removes machine `id`'s container if it is still there (it outlived its client). Quiet:
/// a container already gone is what stopping wants.
pub fn remove(image: &ContainerImage, id: &str) {
    let listed = Command::new(&image.engine)
        .args(["ps", "--all", "--quiet", "--filter"])
        .arg(format!("label={LABEL}={id}"))
        .stdin(Stdio::null())
        .stderr(Stdio::null())
        .output();
    let Ok(listed) = listed else {
        return;
    };
    let ids: Vec<String> = String::from_utf8_lossy(&listed.stdout)
        .split_whitespace()
        .map(str::to_string)
        .collect();
    if !ids.is_empty() {
        let _ = Command::new(&image.engine)
            .args(["rm", "--force"])
            .args(&ids)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn values_stay_off_the_argv_and_the_database_is_mounted() {
        let image = ContainerImage {
            engine: "podman".into(),
            tag: "sist-cabanas:local".into(),
        };
        let env = BTreeMap::from([
            ("JWT_SECRET".to_string(), "s3cret-value".to_string()),
            (
                "DATABASE_URL".to_string(),
                "sqlite:/tmp/fly/app.db?mode=rwc".to_string(),
            ),
            ("PATH".to_string(), "/host/bin".to_string()),
        ]);
        let command = image.command("demo", "m1", &env, &["cabanas".into(), "serve".into()]);
        let argv: Vec<String> = command
            .get_args()
            .map(|a| a.to_string_lossy().into_owned())
            .collect();
        let joined = argv.join(" ");
        assert!(!joined.contains("s3cret-value"), "{joined}");
        assert!(joined.contains("--env JWT_SECRET"), "{joined}");
        assert!(joined.contains("--volume /tmp/fly:/tmp/fly"), "{joined}");
        assert!(joined.contains("--network host"), "{joined}");
        assert!(joined.contains("--ulimit nofile="), "{joined}");
        assert!(!joined.contains("PATH"), "{joined}");
        assert!(
            joined.ends_with("sist-cabanas:local cabanas serve"),
            "{joined}"
        );
        let envs: BTreeMap<String, String> = command
            .get_envs()
            .filter_map(|(k, v)| Some((k.to_string_lossy().into(), v?.to_string_lossy().into())))
            .collect();
        assert_eq!(envs["JWT_SECRET"], "s3cret-value");
    }

    #[test]
    fn hard_limits_are_read_and_capped() {
        let limits = "Limit                     Soft Limit           Hard Limit           Units\n\
                      Max processes             1024                 4096                 processes\n\
                      Max open files            1024                 unlimited            files\n";
        assert_eq!(hard_limit(limits, "Max processes"), 4096);
        assert_eq!(hard_limit(limits, "Max open files"), ULIMIT_CAP);
        assert_eq!(
            sqlite_dir("sqlite://var/db/x.db"),
            None,
            "relative after //"
        );
        assert_eq!(
            sqlite_dir("sqlite:///var/db/x.db"),
            Some(PathBuf::from("/var/db"))
        );
        assert_eq!(sqlite_dir("postgres://u@h/db"), None);
    }
}
