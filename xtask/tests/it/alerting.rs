//! Alerts reach a person: `amtool check-config` accepts `ops/alertmanager.yml`, and with real
//! parts on loopback (the service, a Prometheus scraping it with the project's rules, an
//! Alertmanager rendered from `ops/alertmanager.yml` by the recipe in
//! `ops/runbooks/INCIDENT_RESPONSE.md#alert-delivery`, a webhook receiver in this test),
//! stopping the service delivers `CabanasServiceDown` to the webhook.
//!
//! The tools come from Debian's `prometheus` and `prometheus-alertmanager` packages
//! (`.ci/install alertmanager`); without them the tests are a loud skip locally and a failure
//! under `CI`. Test-only timing: Prometheus scrapes and evaluates every second and the rules'
//! `for:` is cut to 2s; Alertmanager keeps the project's `group_wait`.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use crate::support::service_binary;
use crate::support::workspace as repo;
use xtask::local_service::{LocalService, ServiceSettings};

/// The rules' `for:` in this test (the project's are minutes long).
const TEST_FOR: &str = "2s";
/// Prometheus's scrape and evaluation interval in this test.
const TEST_INTERVAL: Duration = Duration::from_secs(1);

/// The first of `names` on PATH, or a loud skip (a failure under CI).
fn tool(names: &[&str]) -> Option<PathBuf> {
    let found = std::env::var_os("PATH")
        .iter()
        .flat_map(std::env::split_paths)
        .find_map(|dir| {
            names
                .iter()
                .map(|name| dir.join(name))
                .find(|path| path.is_file())
        });
    if found.is_none() {
        let message = format!(
            "{} not found: run `bash .ci/install alertmanager` (Debian's prometheus and \
             prometheus-alertmanager packages)",
            names.join(" / ")
        );
        crate::support::skip_or_fail_in_ci("alerting", &message);
    }
    found
}

fn amtool_accepts(amtool: &Path, config: &Path) {
    let output = Command::new(amtool)
        .arg("check-config")
        .arg(config)
        .output()
        .expect("running amtool");
    assert!(
        output.status.success(),
        "amtool check-config {} failed:\n{}{}",
        config.display(),
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
}

#[test]
fn amtool_accepts_the_alertmanager_config() {
    let Some(amtool) = tool(&["amtool"]) else {
        return;
    };
    amtool_accepts(&amtool, &repo().path("ops/alertmanager.yml"));
}

/// A port free on loopback right now, for a child to bind.
fn free_port() -> u16 {
    xtask::ports::free_port().unwrap()
}

/// A child process stopped when the test ends, however it ends.
struct Running(Child);

impl Drop for Running {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn spawn(program: &Path, args: &[String], log: &Path) -> Running {
    let log = std::fs::File::create(log).unwrap();
    Running(
        Command::new(program)
            .args(args)
            .stdin(Stdio::null())
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .spawn()
            .unwrap_or_else(|e| panic!("starting {}: {e}", program.display())),
    )
}

/// A webhook receiver on loopback: every request's body goes to the returned channel.
fn webhook_receiver() -> (String, mpsc::Receiver<String>) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}/alerts", listener.local_addr().unwrap());
    let (sender, receiver) = mpsc::channel();
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(mut stream) = stream else { continue };
            let mut reader = BufReader::new(stream.try_clone().unwrap());
            let mut length = 0;
            loop {
                let mut line = String::new();
                if reader.read_line(&mut line).unwrap_or(0) == 0 || line.trim().is_empty() {
                    break;
                }
                if let Some((name, value)) = line.split_once(':')
                    && name.eq_ignore_ascii_case("content-length")
                {
                    length = value.trim().parse().unwrap_or(0);
                }
            }
            let mut body = vec![0; length];
            let _ = reader.read_exact(&mut body);
            let _ = stream
                .write_all(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nConnection: close\r\n\r\nok");
            if sender
                .send(String::from_utf8_lossy(&body).into_owned())
                .is_err()
            {
                return;
            }
        }
    });
    (url, receiver)
}

/// Renders `ops/alertmanager.yml` into `dir` by running the recipe of the runbook's "Alert
/// delivery" section, with its paths pointed at `dir`, the repository and `env_file`.
fn render_by_the_runbook(dir: &Path, env_file: &Path) {
    let runbook =
        std::fs::read_to_string(repo().path("ops/runbooks/INCIDENT_RESPONSE.md")).unwrap();
    let section = runbook
        .split("\n## ")
        .find(|s| s.starts_with("Alert delivery"))
        .expect("INCIDENT_RESPONSE.md has an `Alert delivery` section");
    let script = section
        .split("```sh\n")
        .nth(1)
        .and_then(|rest| rest.split("```").next())
        .expect("the Alert delivery section has a ```sh block");
    let script = script
        .replace(
            "~/sist-cabanas/env/.env.fly.production",
            &env_file.display().to_string(),
        )
        .replace("~/sist-cabanas", &repo().root().display().to_string())
        .replace("/etc/cabanas-alertmanager", &dir.display().to_string());
    let output = Command::new("bash")
        .arg("-euc")
        .arg(&script)
        .output()
        .expect("running bash");
    assert!(
        output.status.success(),
        "the runbook's recipe failed:\n{script}\n{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
}

/// The project's rules with every `for:` cut to [`TEST_FOR`].
fn rules_with_short_for(dir: &Path) -> Vec<PathBuf> {
    let mut written = Vec::new();
    for entry in std::fs::read_dir(repo().path("ops/alerts")).unwrap() {
        let path = entry.unwrap().path();
        if path.extension().is_none_or(|e| e != "yml") {
            continue;
        }
        let text = std::fs::read_to_string(&path).unwrap();
        let short: Vec<String> = text
            .lines()
            .map(|line| match line.trim_start().strip_prefix("for:") {
                Some(_) => format!(
                    "{}for: {TEST_FOR}",
                    &line[..line.len() - line.trim_start().len()]
                ),
                None => line.to_string(),
            })
            .collect();
        let target = dir.join(path.file_name().unwrap());
        std::fs::write(&target, short.join("\n")).unwrap();
        written.push(target);
    }
    written
}

/// Polls `check` every 200 ms until it answers `Some`, for at most `bound`.
fn poll<T>(bound: Duration, mut check: impl FnMut() -> Option<T>) -> Option<T> {
    let started = Instant::now();
    while started.elapsed() < bound {
        if let Some(found) = check() {
            return Some(found);
        }
        std::thread::sleep(Duration::from_millis(200));
    }
    None
}

#[test]
fn a_stopped_service_pages_through_alertmanager_to_the_webhook() {
    let (Some(prometheus), Some(alertmanager), Some(_amtool)) = (
        tool(&["prometheus"]),
        tool(&["alertmanager", "prometheus-alertmanager"]),
        tool(&["amtool"]),
    ) else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let (webhook_url, received) = webhook_receiver();

    // The env file's alert keys, as an operator fills them; the mail server does not exist
    // (its delivery fails and must not hold the webhook back).
    let env_file = dir.path().join("env.production");
    std::fs::write(
        &env_file,
        format!(
            "JWT_SECRET=not-an-alert-key-0123456789abcdef\nALERT_WEBHOOK_URL={webhook_url}\n\
             ALERT_EMAIL_TO=oncall@example.org\nALERT_EMAIL_FROM=alerts@example.org\n\
             ALERT_SMTP_HOST=127.0.0.1\nALERT_SMTP_PORT={}\nALERT_SMTP_USERNAME=alerts\n\
             ALERT_SMTP_PASSWORD=smtp-password-0123\n",
            free_port()
        ),
    )
    .unwrap();
    let am_dir = dir.path().join("alertmanager");
    std::fs::create_dir_all(&am_dir).unwrap();
    render_by_the_runbook(&am_dir, &env_file);
    let rendered = std::fs::read_to_string(am_dir.join("alertmanager.yml")).unwrap();
    let settings_lines = rendered
        .lines()
        .filter(|l| !l.trim_start().starts_with('#'));
    let left: Vec<&str> = settings_lines.filter(|l| l.contains("${")).collect();
    assert!(left.is_empty(), "markers left: {left:?}");
    for secret in [webhook_url.as_str(), "smtp-password-0123"] {
        assert!(
            !rendered.contains(secret),
            "a secret in the rendered config"
        );
    }
    assert!(
        !am_dir.join("values/JWT_SECRET").exists(),
        "only ALERT_* keys are written"
    );

    let service_dir = tempfile::tempdir().unwrap();
    let settings = ServiceSettings {
        binary: service_binary(),
        database_url: format!(
            "sqlite:{}?mode=rwc",
            service_dir.path().join("cabanas.db").display()
        ),
        jwt_secret: "alerting-test-secret-0123456789-abcdef".to_string(),
        admin_email: "ops@example.com".to_string(),
        log_file: service_dir.path().join("service.log"),
    };
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let service = {
        let _context = runtime.enter();
        LocalService::start(&settings, Duration::from_secs(60)).expect("service starts")
    };
    let service_addr = service
        .url()
        .trim_start_matches("http://")
        .trim_end_matches('/')
        .to_string();

    let am_port = free_port();
    let _alertmanager = spawn(
        &alertmanager,
        &[
            format!(
                "--config.file={}",
                am_dir.join("alertmanager.yml").display()
            ),
            format!("--storage.path={}", am_dir.join("data").display()),
            format!("--web.listen-address=127.0.0.1:{am_port}"),
            "--cluster.listen-address=".to_string(),
        ],
        &dir.path().join("alertmanager.log"),
    );

    let prom_dir = dir.path().join("prometheus");
    std::fs::create_dir_all(&prom_dir).unwrap();
    let rules = rules_with_short_for(&prom_dir);
    let interval = format!("{}s", TEST_INTERVAL.as_secs());
    let rule_files: String = rules
        .iter()
        .map(|r| format!("  - {}\n", r.display()))
        .collect();
    std::fs::write(
        prom_dir.join("prometheus.yml"),
        format!(
            "global:\n  scrape_interval: {interval}\n  evaluation_interval: {interval}\n\
             rule_files:\n{rule_files}\
             alerting:\n  alertmanagers:\n    - static_configs:\n        - targets: ['127.0.0.1:{am_port}']\n\
             scrape_configs:\n  - job_name: cabanas\n    static_configs:\n      - targets: ['{service_addr}']\n"
        ),
    )
    .unwrap();
    let prom_port = free_port();
    let _prometheus = spawn(
        &prometheus,
        &[
            format!(
                "--config.file={}",
                prom_dir.join("prometheus.yml").display()
            ),
            format!("--storage.tsdb.path={}", prom_dir.join("data").display()),
            format!("--web.listen-address=127.0.0.1:{prom_port}"),
        ],
        &dir.path().join("prometheus.log"),
    );

    // The service is scraped and up before it goes down.
    let up_query =
        format!("http://127.0.0.1:{prom_port}/api/v1/query?query=up%7Bjob%3D%22cabanas%22%7D");
    let scraped = poll(Duration::from_secs(30), || {
        let body =
            runtime.block_on(async { reqwest::get(&up_query).await.ok()?.text().await.ok() })?;
        body.contains("\"1\"]").then_some(())
    });
    let logs = |name: &str| std::fs::read_to_string(dir.path().join(name)).unwrap_or_default();
    assert!(
        scraped.is_some(),
        "Prometheus never scraped the service up:\n{}",
        logs("prometheus.log")
    );

    service.stop();
    let stopped = Instant::now();
    // The rule's `for:` after the first failed scrape and evaluation, then Alertmanager's
    // group_wait (30s in ops/alertmanager.yml), with room for a slow machine.
    let bound = Duration::from_secs(2) + 3 * TEST_INTERVAL + Duration::from_secs(30 + 15);
    let mut other = Vec::new();
    let page = poll(bound, || {
        let body = received.try_recv().ok()?;
        if body.contains("CabanasServiceDown") && body.contains("FIRING") {
            Some(body)
        } else {
            other.push(body);
            None
        }
    });
    let page = page.unwrap_or_else(|| {
        panic!(
            "no CabanasServiceDown notice at the webhook within {bound:?} of stopping the \
             service; other notices: {other:?}\nalertmanager.log:\n{}\nprometheus.log:\n{}",
            logs("alertmanager.log"),
            logs("prometheus.log")
        )
    });
    assert!(
        page.contains("ops/runbooks/INCIDENT_RESPONSE.md#service-down"),
        "the notice leads to the runbook: {page}"
    );
    eprintln!(
        "CabanasServiceDown reached the webhook {:.1}s after the service stopped",
        stopped.elapsed().as_secs_f64()
    );
}
