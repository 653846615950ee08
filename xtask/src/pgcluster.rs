//! A throwaway PostgreSQL cluster: system server binaries, a temporary data directory, loopback
//! only, stopped on every exit path. Used by `cargo xtask test` and `cargo xtask rehearse`.

use std::path::{Path, PathBuf};

use anyhow::{Context, bail};
use xshell::{Shell, cmd};

use crate::interrupt::{self, CleanupGuard};

mod replica;

/// The user the server runs as when this process is root (`initdb` refuses to run as root).
const UNPRIVILEGED_USER: &str = "postgres";

/// The directory holding `initdb`, `pg_ctl` and `postgres`.
#[derive(Debug, Clone)]
pub struct PgBinaries {
    dir: PathBuf,
}

impl PgBinaries {
    /// Finds the server binaries: `$PG_BIN_DIR`, else the newest `/usr/lib/postgresql/*/bin`
    /// (Debian's layout), else the directory of `initdb` on `PATH`.
    pub fn find() -> Option<PgBinaries> {
        if let Some(dir) = std::env::var_os("PG_BIN_DIR").filter(|d| !d.is_empty()) {
            return Some(PgBinaries { dir: dir.into() }).filter(PgBinaries::complete);
        }
        let mut debian: Vec<(u32, PathBuf)> = std::fs::read_dir("/usr/lib/postgresql")
            .into_iter()
            .flatten()
            .flatten()
            .filter_map(|entry| {
                let version = entry.file_name().to_str()?.parse::<u32>().ok()?;
                Some((version, entry.path().join("bin")))
            })
            .collect();
        debian.sort();
        let from_path = std::env::var_os("PATH")
            .map(|paths| std::env::split_paths(&paths).collect::<Vec<_>>())
            .unwrap_or_default();
        debian
            .into_iter()
            .rev()
            .map(|(_, dir)| dir)
            .chain(from_path)
            .map(|dir| PgBinaries { dir })
            .find(PgBinaries::complete)
    }

    fn complete(&self) -> bool {
        ["initdb", "pg_ctl", "postgres"]
            .iter()
            .all(|tool| self.dir.join(tool).is_file())
    }

    fn tool(&self, name: &str) -> PathBuf {
        self.dir.join(name)
    }

    /// Where the binaries are.
    pub fn dir(&self) -> &Path {
        &self.dir
    }
}

/// Whether the cluster flushes its commits to disk.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Durability {
    /// `fsync`, `synchronous_commit` and `full_page_writes` off: fast, lost on a crash.
    Off,
    /// PostgreSQL's defaults (fsync on).
    On,
}

/// A running throwaway cluster. Dropping it stops the server and deletes its files.
#[derive(Debug)]
pub struct PgCluster {
    url: String,
    control: Control,
    _interrupt: CleanupGuard,
    // Dropped last: the server must be stopped before its directory goes.
    _dir: tempfile::TempDir,
}

/// How a server tool is launched: directly, or through `runuser` when this process is root.
#[derive(Debug, Clone)]
struct Launcher {
    as_user: Option<&'static str>,
}

impl Launcher {
    /// The program to execute and the arguments that precede the tool's own.
    fn invoke(&self, tool: &Path) -> (PathBuf, Vec<std::ffi::OsString>) {
        match self.as_user {
            Some(user) => (
                PathBuf::from("runuser"),
                vec!["-u".into(), user.into(), "--".into(), tool.into()],
            ),
            None => (tool.to_path_buf(), Vec::new()),
        }
    }
}

#[derive(Debug, Clone)]
struct Control {
    pg_ctl: PathBuf,
    data: PathBuf,
    launcher: Launcher,
}

impl Control {
    fn stop(&self) {
        let Ok(sh) = Shell::new() else { return };
        let data = &self.data;
        let (program, prefix) = self.launcher.invoke(&self.pg_ctl);
        // Immediate mode: the data is thrown away, so there is nothing to flush.
        let _ = cmd!(sh, "{program} {prefix...} -D {data} -m immediate -w stop")
            .quiet()
            .ignore_stdout()
            .ignore_stderr()
            .run();
    }
}

impl PgCluster {
    /// Initialises and starts a cluster on a free loopback port, without durability (fsync
    /// off): the data is thrown away, and tests run faster.
    pub fn start(binaries: &PgBinaries) -> anyhow::Result<PgCluster> {
        PgCluster::start_with(binaries, Durability::Off)
    }

    /// Initialises and starts a cluster with the given durability. Benchmarks use
    /// [`Durability::On`] (PostgreSQL's defaults), so commits cost what they cost in production.
    pub fn start_with(binaries: &PgBinaries, durability: Durability) -> anyhow::Result<PgCluster> {
        let sh = Shell::new()?;
        let dir = tempfile::Builder::new()
            .prefix("cabanas-pg-")
            .tempdir()
            .context("creating a temporary directory for PostgreSQL")?;
        let launcher = if running_as_root(&sh)? {
            hand_over(&sh, dir.path())?;
            Launcher {
                as_user: Some(UNPRIVILEGED_USER),
            }
        } else {
            Launcher { as_user: None }
        };
        let data = dir.path().join("data");
        let (initdb, pg_ctl) = (binaries.tool("initdb"), binaries.tool("pg_ctl"));

        let (program, prefix) = launcher.invoke(&initdb);
        cmd!(
            sh,
            "{program} {prefix...} -D {data} -U postgres --auth=trust --no-sync -E UTF8 --locale=C"
        )
        .quiet()
        .ignore_stdout()
        .output()
        .with_context(|| format!("initdb failed ({})", initdb.display()))?;

        serve(&sh, &pg_ctl, launcher, dir, durability)
    }

    /// A superuser URL to the cluster's `postgres` database.
    pub fn url(&self) -> &str {
        &self.url
    }

    /// The postmaster's process id (the first line of `postmaster.pid`): every backend of
    /// the cluster runs under it.
    pub fn postmaster_pid(&self) -> Option<u32> {
        let text = std::fs::read_to_string(self.control.data.join("postmaster.pid")).ok()?;
        text.lines().next()?.trim().parse().ok()
    }
}

impl Drop for PgCluster {
    fn drop(&mut self) {
        self.control.stop();
    }
}

/// Starts the server on the data directory `dir/data` on a free loopback port.
fn serve(
    sh: &Shell,
    pg_ctl: &Path,
    launcher: Launcher,
    dir: tempfile::TempDir,
    durability: Durability,
) -> anyhow::Result<PgCluster> {
    let data = dir.path().join("data");
    let log = dir.path().join("server.log");
    let socket_dir = dir.path();
    let port = crate::ports::free_port()?;
    let durability = match durability {
        Durability::Off => "-c fsync=off -c synchronous_commit=off -c full_page_writes=off ",
        Durability::On => "",
    };
    let options = format!(
        "-c listen_addresses=127.0.0.1 -p {port} -k {} {durability}-c max_connections=400",
        socket_dir.display()
    );
    let control = Control {
        pg_ctl: pg_ctl.to_path_buf(),
        data: data.clone(),
        launcher: launcher.clone(),
    };
    let interrupt_control = control.clone();
    let interrupt_dir = dir.path().to_path_buf();
    // On an interrupt the process exits without running destructors: stop the server and
    // delete its files here.
    let guard = interrupt::on_interrupt(move || {
        interrupt_control.stop();
        let _ = std::fs::remove_dir_all(&interrupt_dir);
    });
    let (program, prefix) = launcher.invoke(pg_ctl);
    let started = cmd!(
        sh,
        "{program} {prefix...} -D {data} -l {log} -o {options} -w -t 60 start"
    )
    .quiet()
    .ignore_stdout()
    .output();
    if let Err(error) = started {
        control.stop();
        let tail = std::fs::read_to_string(&log).unwrap_or_default();
        let tail: Vec<&str> = tail.lines().rev().take(15).collect();
        let tail: Vec<&str> = tail.into_iter().rev().collect();
        bail!(
            "starting PostgreSQL failed: {error}\nserver log:\n{}",
            tail.join("\n")
        );
    }
    Ok(PgCluster {
        url: format!("postgres://postgres@127.0.0.1:{port}/postgres"),
        control,
        _interrupt: guard,
        _dir: dir,
    })
}

fn running_as_root(sh: &Shell) -> anyhow::Result<bool> {
    let uid = cmd!(sh, "id -u")
        .quiet()
        .read()
        .context("running `id -u`")?;
    Ok(uid.trim() == "0")
}

/// Gives the cluster directory to the unprivileged user the server runs as.
fn hand_over(sh: &Shell, dir: &Path) -> anyhow::Result<()> {
    let user = UNPRIVILEGED_USER;
    let ids = || -> anyhow::Result<(u32, u32)> {
        let uid = cmd!(sh, "id -u {user}").quiet().ignore_stderr().read()?;
        let gid = cmd!(sh, "id -g {user}").quiet().ignore_stderr().read()?;
        Ok((uid.trim().parse()?, gid.trim().parse()?))
    };
    let (uid, gid) = ids().with_context(|| {
        format!(
            "running as root, PostgreSQL must run as an unprivileged user, and there is no `{user}` \
             user: install the server package (apt-get install postgresql) or `useradd --system {user}`"
        )
    })?;
    std::os::unix::fs::chown(dir, Some(uid), Some(gid))
        .with_context(|| format!("giving {} to the `{user}` user", dir.display()))
}
