//! The local Fly's state directory (`$LOCALFLY_DIR`): one JSON file per app holding its
//! secrets, images, releases, machines and pending faults, plus the images' binaries, the
//! machines' logs and `calls.jsonl`. Written atomically (temp file + rename) so the proxy,
//! which re-reads the app on every request, never sees half a file.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use anyhow::{Context, bail};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

/// The environment variable naming the state directory.
pub const DIR_ENV: &str = "LOCALFLY_DIR";

/// The state directory.
#[derive(Debug, Clone)]
pub struct StateDir {
    root: PathBuf,
}

/// One app, as `apps/<name>/app.json` holds it.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct App {
    /// The app name.
    pub name: String,
    /// The region every machine reports.
    pub region: String,
    /// How many machines a deploy runs.
    pub machine_count: usize,
    /// The proxy's loopback port (the app's URL).
    pub port: u16,
    /// The proxy's process id (its own process group).
    pub proxy_pid: Option<u32>,
    /// When the proxy started (see [`super::machine::start_time`]).
    #[serde(default)]
    pub proxy_started: Option<u64>,
    /// Secrets by name. Values stay in this directory only; `secrets list` shows digests.
    pub secrets: BTreeMap<String, Secret>,
    /// Images by ref.
    pub images: BTreeMap<String, Image>,
    /// Releases, oldest first.
    pub releases: Vec<Release>,
    /// Machines, by id.
    pub machines: BTreeMap<String, Machine>,
    /// Faults the next deploy suffers (each used once).
    pub faults: Vec<Fault>,
    /// The health checks of the last deploy's fly.toml (what `machines list` reports).
    #[serde(default)]
    pub checks: Vec<HttpCheck>,
    /// The `[env]` of the last deploy's fly.toml (for restarts without a deploy).
    #[serde(default)]
    pub fly_env: BTreeMap<String, String>,
    /// `[http_service]`'s auto-stop settings of the last deploy's fly.toml, which the proxy
    /// applies as Fly's does.
    #[serde(default)]
    pub auto_stop: AutoStop,
    /// How long a started machine may sit without a proxied request before auto-stop stops
    /// it (`local create-app --idle-stop-after`; default [`DEFAULT_IDLE_STOP`]).
    #[serde(default)]
    pub idle_stop_after_ms: Option<u64>,
    /// The registry scope of the app's deploy token: the apps whose images a deploy of this
    /// app may pull (`local create-app --token-scope`). `None`: an organisation token, which
    /// reads every app's images.
    #[serde(default)]
    pub token_scope: Option<Vec<String>>,
    /// Each machine's region and each region's variables (see [`super::placement`]).
    #[serde(default)]
    pub regions: super::placement::RegionMap,
}

/// How long Fly's proxy lets a machine idle before auto-stop, unless the app says otherwise:
/// Fly evaluates excess capacity every few minutes
/// (https://fly.io/docs/launch/autostop-autostart/).
pub const DEFAULT_IDLE_STOP: std::time::Duration = std::time::Duration::from_secs(300);

/// fly.toml `[http_service]`'s `auto_stop_machines`, `auto_start_machines` and
/// `min_machines_running` (https://fly.io/docs/reference/configuration/#the-http_service-section).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct AutoStop {
    /// `auto_stop_machines = "stop"` (or `true`, or `"suspend"`): idle machines stop.
    pub stop: bool,
    /// `auto_start_machines = true`: a request to an app without a started machine starts one.
    pub start: bool,
    /// `min_machines_running`: auto-stop leaves at least this many started.
    pub min_running: usize,
}

/// A secret value and whether the running machines have it yet.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Secret {
    /// The value (never printed).
    pub value: String,
    /// A short digest of the value, as `secrets list` shows it.
    pub digest: String,
    /// `Staged` until a deploy applies it, then `Deployed`.
    pub status: String,
}

/// An "image": a copy of a `cabanas` binary under a Fly-style ref.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Image {
    /// `registry.fly.io/<app>:<tag>`.
    pub reference: String,
    /// The tag part of the ref.
    pub tag: String,
    /// The binary machines run.
    pub binary: PathBuf,
    /// `--build-arg` pairs; each becomes an environment variable of the machines, the way
    /// the Dockerfile's `ARG X` + `ENV X=$X` does.
    pub build_args: BTreeMap<String, String>,
    /// A fault baked into the image: its checks never pass.
    pub checks_never_pass: bool,
    /// When it was built.
    pub created_at: DateTime<Utc>,
    /// Its manifest digest, `sha256:<64 hex>`, as the registry reports it; a machine config
    /// may name the image by it alone (`registry.fly.io/<app>@sha256:...`).
    #[serde(default)]
    pub digest: String,
}

impl Image {
    /// `registry.fly.io/<app>@<digest>`: the image named by its digest alone.
    pub fn digest_ref(&self) -> String {
        format!("{}@{}", repository(&self.reference), self.digest)
    }
}

/// `registry.fly.io/<app>` of `registry.fly.io/<app>:<tag>[@digest]`.
pub fn repository(reference: &str) -> &str {
    let name = reference.split('@').next().unwrap_or(reference);
    let last_slash = name.rfind('/').map_or(0, |i| i + 1);
    match name[last_slash..].rfind(':') {
        Some(i) => &name[..last_slash + i],
        None => name,
    }
}

/// A release, with the fields flyctl's JSON has.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Release {
    /// Increasing from 1.
    pub version: u64,
    /// `running`, `complete`, `failed` or `interrupted`.
    pub status: String,
    /// What made it (`Deploy image`, `Update secrets`).
    pub description: String,
    /// The image the release runs.
    pub image_ref: String,
    /// The strategy used.
    pub strategy: String,
    /// When it was created.
    pub created_at: DateTime<Utc>,
}

/// A machine: a `cabanas` process on a loopback port.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Machine {
    /// 14 hex digits, like Fly's.
    pub id: String,
    /// `started`, `replacing`, `stopped`.
    pub state: String,
    /// The image it runs.
    pub image_ref: String,
    /// Its loopback port.
    pub port: u16,
    /// Whether its checks passed since it started: the proxy balances only over healthy
    /// machines, as Fly's does (a forced instance is reached either way).
    #[serde(default)]
    pub healthy: bool,
    /// Its process id (leader of its own process group).
    pub pid: Option<u32>,
    /// When that process started (see [`super::machine::start_time`]).
    #[serde(default)]
    pub started: Option<u64>,
    /// Its log file (stdout and stderr).
    pub log: PathBuf,
    /// When it was created.
    pub created_at: DateTime<Utc>,
    /// When it last changed.
    pub updated_at: DateTime<Utc>,
    /// What kind of machine it is: one `deploy` manages, or one it leaves alone.
    #[serde(default)]
    pub kind: MachineKind,
}

impl Machine {
    /// Whether `deploy` replaces it (fly-go `flaps/flaps_machines.go`, `ListFlyAppsMachines`).
    pub fn managed(&self) -> bool {
        self.kind == MachineKind::App
    }
}

/// The kinds of machine an app lists. Only `app` machines are part of a release; the others
/// are what real apps accumulate beside them and keep their image through every deploy.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "kebab-case")]
pub enum MachineKind {
    /// A machine of the app's `app` process group.
    #[default]
    App,
    /// A leftover release-command machine (`fly_process_group = fly_app_release_command`).
    ReleaseCommand,
    /// A `fly console` machine (`fly_process_group = fly_app_console`).
    Console,
    /// A `fly machine run` machine: no `fly_platform_version` in its metadata.
    MachineRun,
}

impl MachineKind {
    /// Its config metadata as `machines list --json` shows it (fly-go `machine_types.go`).
    pub fn metadata(self) -> serde_json::Value {
        match self {
            Self::App => {
                serde_json::json!({"fly_platform_version": "v2", "fly_process_group": "app"})
            }
            Self::ReleaseCommand => serde_json::json!({
                "fly_platform_version": "v2", "fly_process_group": "fly_app_release_command"
            }),
            Self::Console => serde_json::json!({
                "fly_platform_version": "v2", "fly_process_group": "fly_app_console"
            }),
            Self::MachineRun => serde_json::json!({}),
        }
    }
}

/// A fault the next deploy suffers.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "kebab-case")]
pub enum Fault {
    /// The new image's binary exits as soon as it starts.
    CrashAtStart,
    /// The release command exits non-zero.
    ReleaseCommandFails,
    /// The new image's health checks never pass.
    ChecksNeverPass,
    /// `deploy` exits 0 without making a release or touching a machine.
    NoRelease,
}

impl StateDir {
    /// The directory named by `$LOCALFLY_DIR`.
    pub fn from_env() -> anyhow::Result<StateDir> {
        match std::env::var_os(DIR_ENV) {
            Some(dir) if !dir.is_empty() => Ok(StateDir::at(PathBuf::from(dir))),
            _ => bail!("{DIR_ENV} is not set: point it at the local Fly's state directory"),
        }
    }

    /// The state directory at `root`.
    pub fn at(root: impl Into<PathBuf>) -> StateDir {
        StateDir { root: root.into() }
    }

    /// Its root.
    pub fn root(&self) -> &Path {
        &self.root
    }

    /// `apps/<app>`.
    pub fn app_dir(&self, app: &str) -> PathBuf {
        self.root.join("apps").join(app)
    }

    fn app_file(&self, app: &str) -> PathBuf {
        self.app_dir(app).join("app.json")
    }

    /// Every app's name, sorted.
    pub fn app_names(&self) -> Vec<String> {
        let Ok(entries) = std::fs::read_dir(self.root.join("apps")) else {
            return Vec::new();
        };
        let mut names: Vec<String> = entries
            .filter_map(|e| e.ok())
            .filter(|e| e.path().join("app.json").is_file())
            .filter_map(|e| e.file_name().into_string().ok())
            .collect();
        names.sort();
        names
    }

    /// Loads an app; the error reads like flyctl's for an unknown app.
    pub fn load(&self, app: &str) -> anyhow::Result<App> {
        let path = self.app_file(app);
        let text = std::fs::read_to_string(&path).map_err(|_| {
            anyhow::anyhow!(
                "Could not find App \"{app}\" (no {}; create it with `localfly local create-app --app {app}`)",
                path.display()
            )
        })?;
        serde_json::from_str(&text).with_context(|| format!("reading {}", path.display()))
    }

    /// Waits for, then holds, the app's lock until the file is dropped. Every call that
    /// changes an app (a deploy, a secrets import, an admin command) and the proxy's auto-stop
    /// and auto-start hold it, so none overwrites another's machines with a stale copy.
    pub fn lock(&self, app: &str) -> anyhow::Result<std::fs::File> {
        let file = self.lock_file(app)?;
        file.lock()
            .with_context(|| format!("locking {}", self.app_dir(app).display()))?;
        Ok(file)
    }

    /// The app's lock if nobody holds it now.
    pub fn try_lock(&self, app: &str) -> Option<std::fs::File> {
        let file = self.lock_file(app).ok()?;
        file.try_lock().ok()?;
        Some(file)
    }

    fn lock_file(&self, app: &str) -> anyhow::Result<std::fs::File> {
        let dir = self.app_dir(app);
        std::fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
        let path = dir.join("lock");
        std::fs::OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&path)
            .with_context(|| format!("opening {}", path.display()))
    }

    /// Saves an app atomically.
    pub fn save(&self, app: &App) -> anyhow::Result<()> {
        let dir = self.app_dir(&app.name);
        std::fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
        let path = self.app_file(&app.name);
        let temp = dir.join(format!(".app.json.{}", std::process::id()));
        std::fs::write(&temp, serde_json::to_vec_pretty(app)?)
            .with_context(|| format!("writing {}", temp.display()))?;
        std::fs::rename(&temp, &path).with_context(|| format!("writing {}", path.display()))
    }
}

impl App {
    /// The newest release.
    pub fn current_release(&self) -> Option<&Release> {
        self.releases.last()
    }

    /// Adds a release and returns its version.
    pub fn push_release(&mut self, image_ref: &str, description: &str, strategy: &str) -> u64 {
        let version = self.releases.last().map_or(1, |r| r.version + 1);
        self.releases.push(Release {
            version,
            status: "running".into(),
            description: description.into(),
            image_ref: image_ref.into(),
            strategy: strategy.into(),
            created_at: Utc::now(),
        });
        version
    }

    /// Sets the status of release `version`.
    pub fn finish_release(&mut self, version: u64, status: &str) {
        if let Some(release) = self.releases.iter_mut().find(|r| r.version == version) {
            release.status = status.into();
        }
    }

    /// The image `reference` names: by its ref, or by its digest alone
    /// (`registry.fly.io/<app>@sha256:...`).
    pub fn image(&self, reference: &str) -> Option<&Image> {
        let (name, digest) = match reference.split_once('@') {
            Some((name, digest)) => (name, Some(digest)),
            None => (reference, None),
        };
        self.images.values().find(|image| match digest {
            Some(digest) => {
                image.digest == digest && repository(&image.reference) == repository(name)
            }
            None => image.reference == name,
        })
    }

    /// Removes and returns a pending fault.
    pub fn take_fault(&mut self, fault: Fault) -> bool {
        let before = self.faults.len();
        self.faults.retain(|f| *f != fault);
        before != self.faults.len()
    }
}

/// A new machine id: 14 hex digits.
pub fn new_machine_id() -> String {
    uuid::Uuid::new_v4().simple().to_string()[..14].to_string()
}

/// A short, stable digest of a secret value (FNV-1a, hex): shows that a value changed, and
/// reveals nothing useful about it.
pub fn digest(value: &str) -> String {
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
    for byte in value.bytes() {
        hash ^= u64::from(byte);
        hash = hash.wrapping_mul(0x0100_0000_01b3);
    }
    format!("{hash:016x}")
}

/// One HTTP health check, as fly.toml's `[[http_service.checks]]` describes it.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
pub struct HttpCheck {
    /// The path probed, e.g. `/api/v1/readyz`.
    pub path: String,
    /// Fly's name for it.
    pub name: String,
}
