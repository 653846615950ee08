//! What the local Fly tests share: a local Fly with one app whose secrets are staged, and
//! helpers that deploy through `xtask::flyctl` and ask machines through the proxy.
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;

use serde_json::Value;
use xtask::flyctl::{DeployCommand, Flyctl};
use xtask::localfly::{FORCE_INSTANCE, LocalFly};
use xtask::repo::Repo;
use xtask::secrets::fly_import::encode_for_fly_import;

pub const JWT: &str = "localfly-test-jwt-secret-0123456789-abcdef";

pub fn repo() -> Repo {
    Repo::discover_from(Path::new(env!("CARGO_MANIFEST_DIR"))).expect("the repository")
}

/// The `cabanas` binary, built once per test run.
pub fn cabanas() -> PathBuf {
    static BINARY: OnceLock<PathBuf> = OnceLock::new();
    BINARY
        .get_or_init(|| xtask::local_service::build_service(&repo()).expect("building cabanas"))
        .clone()
}

pub struct Harness {
    pub fly: LocalFly,
    pub flyctl: Flyctl,
    pub url: String,
    pub app: String,
    pub db_dir: tempfile::TempDir,
}

/// A local Fly with one app of `machines` machines, its secrets staged (a SQLite database).
pub fn harness(app: &str, machines: usize) -> Harness {
    harness_on(app, machines, None)
}

/// Like [`harness`], on the database `database` when given.
pub fn harness_on(app: &str, machines: usize, database: Option<&str>) -> Harness {
    let fly = LocalFly::new(env!("CARGO_BIN_EXE_localfly"), cabanas()).unwrap();
    let url = fly.create_app(app, machines).unwrap();
    harness_for(fly, url, app, database)
}

/// Like [`harness`], with auto-stop stopping a machine after `idle` without a request
/// (the workspace's fly.toml says `auto_stop_machines = "stop"`, `min_machines_running = 1`).
pub fn harness_idle_stop(app: &str, machines: usize, idle: std::time::Duration) -> Harness {
    let fly = LocalFly::new(env!("CARGO_BIN_EXE_localfly"), cabanas()).unwrap();
    let url = fly.create_app_idle_stop(app, machines, idle).unwrap();
    harness_for(fly, url, app, None)
}

fn harness_for(fly: LocalFly, url: String, app: &str, database: Option<&str>) -> Harness {
    let flyctl = fly.flyctl().in_dir(repo().root());
    let db_dir = tempfile::tempdir().unwrap();
    let database = database
        .map(String::from)
        .unwrap_or_else(|| format!("sqlite:{}?mode=rwc", db_dir.path().join("app.db").display()));
    let payload =
        encode_for_fly_import([("DATABASE_URL", database.as_str()), ("JWT_SECRET", JWT)]).unwrap();
    let keys = vec!["DATABASE_URL".to_string(), "JWT_SECRET".to_string()];
    flyctl
        .secrets_import(app, payload, keys, &mut Vec::new())
        .unwrap();
    Harness {
        fly,
        flyctl,
        url,
        app: app.into(),
        db_dir,
    }
}

impl Harness {
    pub fn deploy(&self, commit: &str, strategy: Option<&str>, wait: u64) -> anyhow::Result<()> {
        let command = DeployCommand {
            app: self.app.clone(),
            config: "fly.toml".into(),
            image: None,
            strategy: strategy.map(String::from),
            wait_timeout: std::time::Duration::from_secs(wait),
            build_args: vec![("GIT_COMMIT".into(), commit.into())],
            image_label: Some(commit.into()),
            time_limit: None,
        };
        self.flyctl.deploy(&command, &mut Vec::new()).map(drop)
    }

    pub fn deploy_image(&self, image: &str) -> anyhow::Result<()> {
        let command = DeployCommand {
            app: self.app.clone(),
            config: "fly.toml".into(),
            image: Some(image.into()),
            strategy: None,
            wait_timeout: std::time::Duration::from_secs(60),
            build_args: Vec::new(),
            image_label: None,
            time_limit: None,
        };
        self.flyctl.deploy(&command, &mut Vec::new()).map(drop)
    }

    pub fn machines(&self) -> Vec<xtask::flyctl::Machine> {
        self.flyctl
            .machines(&self.app, &mut Vec::new())
            .unwrap()
            .unwrap()
    }

    pub fn releases(&self) -> Vec<xtask::flyctl::Release> {
        self.flyctl
            .releases(&self.app, &mut Vec::new())
            .unwrap()
            .unwrap()
    }

    /// `GET /api/v1/version` through the proxy, optionally forced to one machine.
    pub fn version(&self, machine: Option<&str>) -> (u16, Value) {
        let client = xtask::http::client(std::time::Duration::from_secs(10)).unwrap();
        let mut request = client.get(format!("{}/api/v1/version", self.url));
        if let Some(id) = machine {
            request = request.header(FORCE_INSTANCE, id);
        }
        answer(request)
    }

    /// A request through the proxy to machine `machine`: `(status, JSON body)`.
    pub fn call(
        &self,
        machine: &str,
        method: &str,
        path: &str,
        body: Option<&Value>,
    ) -> (u16, Value) {
        let client = xtask::http::client(std::time::Duration::from_secs(10)).unwrap();
        let method = reqwest::Method::from_bytes(method.as_bytes()).unwrap();
        let mut request = client
            .request(method, format!("{}{path}", self.url))
            .header(FORCE_INSTANCE, machine);
        if let Some(body) = body {
            request = request.json(body);
        }
        answer(request)
    }

    /// Each running machine's commit, asked through the proxy with fly-force-instance-id.
    pub fn commits(&self) -> Vec<(String, String)> {
        self.machines()
            .iter()
            .filter(|m| m.state == "started")
            .map(|m| {
                let (status, body) = self.version(Some(&m.id));
                assert_eq!(status, 200, "machine {}: {body}", m.id);
                assert_eq!(
                    body["machine"],
                    m.id.as_str(),
                    "routed to the wrong machine"
                );
                (
                    m.id.clone(),
                    body["commit"].as_str().unwrap_or("").to_string(),
                )
            })
            .collect()
    }
}

pub fn failure_text(error: anyhow::Error) -> String {
    format!("{error:#}")
}

/// Runs `sql` on the PostgreSQL server at `server`.
pub fn psql(server: &str, sql: &str) {
    let status = Command::new("psql")
        .args([server, "-v", "ON_ERROR_STOP=1", "-qc", sql])
        .status()
        .unwrap_or_else(|e| panic!("running psql: {e}"));
    assert!(status.success(), "psql failed on `{sql}`");
}

/// Sends `request` (through the proxy) on a runtime of its own: `(status, JSON body)`, the
/// body `null` when it is not JSON.
fn answer(request: reqwest::RequestBuilder) -> (u16, Value) {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(async {
        let response = request.send().await.expect("the proxy answers");
        let status = response.status().as_u16();
        (status, response.json().await.unwrap_or(Value::Null))
    })
}
