//! Shared by the flyctl/deploy integration tests: a fixture repository, the recording fake
//! flyctl, an in-process stand-in for the deployed app, and gates with chosen outcomes.

#![allow(dead_code)]

use std::cell::RefCell;
use std::collections::VecDeque;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use xtask::deploy::gates::Gates;
use xtask::flyctl::Flyctl;
use xtask::repo::Repo;
use xtask::verdict::Verdict;

mod runs;
pub use runs::*;

pub const APP: &str = "cabanas-test";

/// Secret values of the fixture's env file: none may appear in argv, output or records.
pub const SECRETS: &[&str] = &[
    "s3cr3t=pw%23x",
    "Zq8#v=Lm\"2xR!pT7$kW9&yB4^nC6*dF1",
    "MIIB#x=y+cert-body",
    "\"quoted\" and 'single' # not a comment = fine",
];

pub const TEMPLATE: &str = "\
# [required, postgres-url] database
DATABASE_URL=<postgres-url>

# [required, secret-32] token key
JWT_SECRET=<at-least-32-random-characters>

# [optional, text] a PEM certificate
TLS_CERT=

# [optional, text] a note
QUOTED_NOTE=

# [optional, integer] minutes
TTL=30

# [optional, redis-url] cache
REDIS_URL=
";

pub const ENV_FILE: &str = "\
DATABASE_URL=postgresql://app:s3cr3t=pw%23x@db.internal:5432/cabanas?sslmode=require
JWT_SECRET=\"Zq8#v=Lm\"2xR!pT7$kW9&yB4^nC6*dF1\"
TLS_CERT=\"\"\"-----BEGIN CERTIFICATE-----
MIIB#x=y+cert-body

-----END CERTIFICATE-----\"\"\"
QUOTED_NOTE=\"\"quoted\" and 'single' # not a comment = fine\"
TTL=45
REDIS_URL=
";

/// A temporary repository with ops/deploy.toml pointing `staging` at `url`.
pub struct Fixture {
    pub dir: tempfile::TempDir,
    pub fake_dir: PathBuf,
}

impl Fixture {
    pub fn new(url: &str) -> Fixture {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path();
        write(root, "Cargo.toml", "[workspace]\nmembers = []\n");
        write(
            root,
            "ops/deploy.toml",
            &format!(
                "[environments.staging]\napp = \"{APP}\"\nurl = \"{url}\"\n\
                 env_file = \"env/.env.fly.staging\"\ntemplate = \"env/.env.fly.staging.template\"\n\
                 fly_config = \"fly.toml\"\n"
            ),
        );
        write(root, "env/.env.fly.staging.template", TEMPLATE);
        write(root, "env/.env.fly.staging", ENV_FILE);
        write(root, "fly.toml", &format!("app = \"{APP}\"\n"));
        write(
            root,
            ".gitignore",
            "/target/\n/fake-flyctl/\n/env/.env.fly.staging\n",
        );
        let fake_dir = root.join("fake-flyctl");
        std::fs::create_dir_all(fake_dir.join("responses")).unwrap();
        let fixture = Fixture { dir, fake_dir };
        fixture.git(&["init", "--quiet", "--initial-branch=main"]);
        fixture.commit("fixture");
        fixture
    }

    /// Runs git in the fixture, its stdout trimmed; panics when it fails.
    pub fn git(&self, args: &[&str]) -> String {
        crate::support::git(self.root(), args).trim().to_string()
    }

    /// flyctl's `machines list` answers two machines, m1 and m2, on `image`: the `n`th time
    /// it is asked, or (`None`) every time no numbered answer applies.
    pub fn machines_on(&self, n: Option<usize>, image: &str) {
        let machines = machines_json(&[("m1", image), ("m2", image)]);
        self.respond("machines-list", n, &machines, "", 0);
    }

    /// Runs the built `cargo xtask` with `args` in the fixture, its flyctl the recording
    /// fake, without a CI step summary.
    pub fn xtask(&self, args: &[&str]) -> std::process::Output {
        std::process::Command::new(env!("CARGO_BIN_EXE_xtask"))
            .args(args)
            .current_dir(self.root())
            .env("FLYCTL", env!("CARGO_BIN_EXE_fake-flyctl"))
            .env("FAKE_FLYCTL_DIR", &self.fake_dir)
            .env_remove("GITHUB_STEP_SUMMARY")
            .output()
            .unwrap()
    }

    /// Commits everything (an empty commit when nothing changed); returns the new HEAD.
    pub fn commit(&self, message: &str) -> String {
        self.git(&["add", "--all"]);
        self.git(&["commit", "--quiet", "--allow-empty", "-m", message]);
        self.head()
    }

    /// The full HEAD commit.
    pub fn head(&self) -> String {
        self.git(&["rev-parse", "HEAD"])
    }

    /// Writes a file under the fixture's root.
    pub fn write(&self, relative: &str, text: &str) {
        write(self.root(), relative, text);
    }

    pub fn root(&self) -> &Path {
        self.dir.path()
    }

    pub fn repo(&self) -> Repo {
        Repo::at(self.root())
    }

    /// The fake, with a token in its environment to prove it arrives there and nowhere else.
    pub fn flyctl(&self, dry_run: bool) -> Flyctl {
        Flyctl::at(env!("CARGO_BIN_EXE_fake-flyctl"), dry_run)
            .with_env("FAKE_FLYCTL_DIR", &self.fake_dir)
            .with_env("FLY_API_TOKEN", "FlyV1 tok-must-stay-secret")
    }

    /// Cans the answer to the `n`-th call of `key` (`None`: every call).
    pub fn respond(&self, key: &str, n: Option<usize>, stdout: &str, stderr: &str, exit: i32) {
        let name = match n {
            Some(n) => format!("{key}.{n}.json"),
            None => format!("{key}.json"),
        };
        let body = serde_json::json!({"stdout": stdout, "stderr": stderr, "exit": exit});
        std::fs::write(self.fake_dir.join("responses").join(name), body.to_string()).unwrap();
    }

    /// The fake's `key` command hangs for a minute, then succeeds: something to interrupt or
    /// outlive.
    pub fn hang(&self, key: &str) {
        let hang = serde_json::json!({"stdout": "", "stderr": "", "exit": 0, "sleep_ms": 60_000});
        let path = self.fake_dir.join("responses").join(format!("{key}.json"));
        std::fs::write(path, hang.to_string()).unwrap();
    }

    /// Every recorded call.
    pub fn calls(&self) -> Vec<serde_json::Value> {
        std::fs::read_to_string(self.fake_dir.join("calls.jsonl"))
            .unwrap_or_default()
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect()
    }

    /// Every recorded argv, joined with spaces.
    pub fn argvs(&self) -> Vec<String> {
        self.calls()
            .iter()
            .map(|c| {
                c["argv"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .map(|a| a.as_str().unwrap())
                    .collect::<Vec<_>>()
                    .join(" ")
            })
            .collect()
    }

    /// The text of every saved record.
    pub fn records(&self) -> String {
        let dir = self.repo().runs_dir();
        let mut text = String::new();
        for entry in std::fs::read_dir(&dir).into_iter().flatten() {
            text.push_str(&std::fs::read_to_string(entry.unwrap().path()).unwrap());
        }
        text
    }

    /// Fails when any secret (or the token) appears in argv, the given output or a record.
    pub fn assert_no_secret(&self, output: &str) {
        let argv = self.argvs().join("\n");
        let records = self.records();
        for secret in SECRETS.iter().copied().chain(["tok-must-stay-secret"]) {
            assert!(!argv.contains(secret), "secret in argv: {argv}");
            assert!(!output.contains(secret), "secret in output: {output}");
            assert!(!records.contains(secret), "secret in a record: {records}");
        }
    }
}

fn write(root: &Path, relative: &str, text: &str) {
    let path = root.join(relative);
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    std::fs::write(path, text).unwrap();
}

/// `machines list --json` in the Machines API's keys: `(id, image)`, started, checks passing.
pub fn machines_json(machines: &[(&str, &str)]) -> String {
    let list: Vec<serde_json::Value> = machines
        .iter()
        .map(|(id, image)| {
            serde_json::json!({
                "id": id, "name": format!("m-{id}"), "state": "started", "region": "scl",
                "config": {"image": image,
                           "metadata": {"fly_platform_version": "v2", "fly_process_group": "app"}},
                "checks": [{"name": "servicecheck-00-http-8080", "status": "passing", "output": "OK"}],
            })
        })
        .collect();
    serde_json::to_string(&list).unwrap()
}

/// Releases JSON in flyctl's Go-style keys: `(version, status, image)`, newest first.
pub fn releases_json(releases: &[(u64, &str, &str)]) -> String {
    let list: Vec<serde_json::Value> = releases
        .iter()
        .map(|(v, status, image)| {
            serde_json::json!({
                "ID": format!("rel{v}"), "Version": v, "Stable": true, "InProgress": false,
                "Reason": "", "Description": "Deploy image", "Status": status,
                "DeploymentStrategy": "rolling", "User": {"Email": "ops@example.org"},
                "EvaluationID": "", "CreatedAt": "2026-11-20T10:00:00Z", "ImageRef": image,
            })
        })
        .collect();
    serde_json::to_string(&list).unwrap()
}

/// The deployed app: readyz answers 200 while `ready` is set, else 503; `/api/v1/version`
/// reports `commit` and, as the machine, the `fly-force-instance-id` the request carried.
pub struct App {
    pub url: String,
    pub ready: Arc<AtomicBool>,
    pub commit: Arc<std::sync::Mutex<String>>,
}

pub fn start_app() -> App {
    use axum::{Json, Router, http::HeaderMap, http::StatusCode, routing::get};
    let ready = Arc::new(AtomicBool::new(true));
    let commit = Arc::new(std::sync::Mutex::new("unknown".to_string()));
    let flag = ready.clone();
    let reported = commit.clone();
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    listener.set_nonblocking(true).unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    std::thread::spawn(move || {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        runtime.block_on(async move {
            let router =
                Router::new()
                    .route(
                        "/api/v1/readyz",
                        get(move || {
                            let up = flag.load(Ordering::SeqCst);
                            async move {
                                if up {
                                    StatusCode::OK
                                } else {
                                    StatusCode::SERVICE_UNAVAILABLE
                                }
                            }
                        }),
                    )
                    .route(
                        "/api/v1/version",
                        get(move |headers: HeaderMap| {
                            let commit = reported.lock().unwrap().clone();
                            let machine = headers
                                .get("fly-force-instance-id")
                                .and_then(|v| v.to_str().ok())
                                .map(String::from);
                            async move {
                                Json(serde_json::json!({"commit": commit, "machine": machine}))
                            }
                        }),
                    );
            let listener = tokio::net::TcpListener::from_std(listener).unwrap();
            axum::serve(listener, router).await.unwrap();
        });
    });
    App { url, ready, commit }
}

/// Gates with chosen outcomes; records which ran.
pub struct FakeGates {
    pub predeploy: Verdict,
    /// When set, smoke cannot run (an error, as when its target is unreachable).
    pub smoke_cannot_run: std::cell::Cell<bool>,
    pub smoke: RefCell<VecDeque<Verdict>>,
    pub ran: RefCell<Vec<String>>,
}

impl FakeGates {
    pub fn new(predeploy: Verdict, smoke: &[Verdict]) -> FakeGates {
        FakeGates {
            predeploy,
            smoke_cannot_run: std::cell::Cell::new(false),
            smoke: RefCell::new(smoke.iter().copied().collect()),
            ran: RefCell::new(Vec::new()),
        }
    }
}

impl Gates for FakeGates {
    fn predeploy(&self, _repo: &Repo, env: &str, _record: bool) -> anyhow::Result<Verdict> {
        self.ran.borrow_mut().push(format!("predeploy --env {env}"));
        Ok(self.predeploy)
    }

    fn smoke(&self, _repo: &Repo, env: &str) -> anyhow::Result<Verdict> {
        self.ran.borrow_mut().push(format!("smoke --env {env}"));
        if self.smoke_cannot_run.replace(false) {
            anyhow::bail!("smoke could not start: the fake said so");
        }
        Ok(self
            .smoke
            .borrow_mut()
            .pop_front()
            .expect("an unexpected smoke run"))
    }
}

/// A deploy whose fake flyctl answers the healthy path (v2 serving on two machines, v3
/// deployed and complete on both, the app reporting HEAD), with `env_extra` appended to the
/// env file and committed.
pub fn healthy_deploy(env_extra: &str) -> (App, Fixture) {
    const IMG1: &str = "registry.fly.io/cabanas-test:deployment-01";
    const IMG2: &str = "registry.fly.io/cabanas-test:deployment-02";
    const IMG3: &str = "registry.fly.io/cabanas-test:deployment-03";
    let app = start_app();
    let fixture = Fixture::new(&app.url);
    fixture.write("env/.env.fly.staging", &format!("{ENV_FILE}{env_extra}"));
    fixture.commit("the env file");
    *app.commit.lock().unwrap() = fixture.head();
    fixture.respond("auth-whoami", None, "ops@example.org\n", "", 0);
    fixture.respond("deploy", None, "--> v3 deployed successfully\n", "", 0);
    let before = releases_json(&[(2, "complete", IMG2), (1, "complete", IMG1)]);
    let done = releases_json(&[(3, "complete", IMG3), (2, "complete", IMG2)]);
    fixture.respond("releases", Some(1), &before, "", 0);
    fixture.respond("releases", None, &done, "", 0);
    fixture.machines_on(Some(1), IMG2);
    fixture.machines_on(None, IMG3);
    (app, fixture)
}
