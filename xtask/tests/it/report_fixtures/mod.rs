//! Fixed result sets for the `report` tests: a temporary repository with a deploy config, a
//! checklist and an env file holding a canary secret, and records built from each task's own
//! result type (so drift between what a task saves and what the report reads fails the tests).

use chrono::{DateTime, Duration, Utc};
use serde::Serialize;
use xtask::deploy::DeployResult;
use xtask::overlap::{CleanupReport, OtherGroup, OverlapReport, RoundReport, RoundVerdict, probe};
use xtask::predeploy::{CheckResult, Evidence, PredeployReport};
use xtask::record::{RunRecord, SCHEMA_VERSION};
use xtask::release::RolloutOutcome;
use xtask::repo::{GitState, Repo};
use xtask::report::{self, Options};
use xtask::rollback::{ReleaseRef, RollbackResult};
use xtask::secrets::{SecretState, SecretsResult};
use xtask::smoke::{
    self, BenchmarkReport, ErrorCounts, LatencySummary, LoadSettings, SmokeReport, ThresholdOutcome,
};
use xtask::verdict::Verdict;

pub const HEAD: &str = "a1b2c3d4e5f60718293a4b5c6d7e8f9012345678";
pub const OLD: &str = "0badc0de0badc0de0badc0de0badc0de0badc0de";
pub const CANARY: &str = "canary-7f3e9a1c-do-not-print-this-secret-value";

pub fn now() -> DateTime<Utc> {
    DateTime::parse_from_rfc3339("2026-11-27T12:00:00Z")
        .unwrap()
        .to_utc()
}

pub fn head() -> GitState {
    GitState {
        commit: HEAD.to_string(),
        dirty: false,
        tree: None,
        inputs: Some(inputs_of(HEAD)),
    }
}

/// The deployable inputs' tree a fixture commit is taken to have (one per commit, so another
/// commit means changed inputs).
pub fn inputs_of(commit: &str) -> String {
    format!("7ee{commit}")
}

pub const DEPLOY_TOML: &str = r#"
[environments.staging]
app = "sist-cabanas-staging"
url = "https://sist-cabanas-staging.fly.dev"
env_file = "env/.env.fly.staging"
template = "env/.env.fly.staging.template"

[environments.production]
app = "sist-cabanas"
url = "https://sist-cabanas.fly.dev"
env_file = "env/.env.fly.production"
template = "env/.env.fly.production.template"
"#;

pub const CHECKLIST: &str = "# Production readiness\n\n## Secrets\n\n- [x] JWT secret rotated\n- [ ] Admin emails reviewed\n\n## Operations\n\n- [x] Backups scheduled\n- [x] Alerts routed\n";

/// What a record says of its run besides its result and commit: the task, its environment,
/// how long before [`now`] it started, and its verdict.
pub struct Run<'a> {
    pub task: &'a str,
    pub env: &'a str,
    pub ago: Duration,
    pub verdict: Verdict,
}

impl<'a> Run<'a> {
    pub fn passed(task: &'a str, env: &'a str, ago: Duration) -> Run<'a> {
        let verdict = Verdict::Pass;
        Run {
            task,
            env,
            ago,
            verdict,
        }
    }

    pub fn failed(task: &'a str, env: &'a str, ago: Duration) -> Run<'a> {
        let verdict = Verdict::Fail;
        Run {
            task,
            env,
            ago,
            verdict,
        }
    }
}

pub struct Fixture {
    _dir: tempfile::TempDir,
    pub repo: Repo,
}

impl Fixture {
    pub fn new() -> Fixture {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path();
        std::fs::write(root.join("Cargo.toml"), "[workspace]\nmembers = []\n").unwrap();
        std::fs::create_dir_all(root.join("ops")).unwrap();
        std::fs::create_dir_all(root.join("env")).unwrap();
        std::fs::write(root.join("ops/deploy.toml"), DEPLOY_TOML).unwrap();
        std::fs::write(root.join("ops/PROD_READINESS_CHECKLIST.md"), CHECKLIST).unwrap();
        std::fs::write(
            root.join("env/.env.fly.staging"),
            format!("DATABASE_URL=postgresql://app:{CANARY}@db/app\nJWT_SECRET={CANARY}\n"),
        )
        .unwrap();
        let repo = Repo::at(root);
        Fixture { _dir: dir, repo }
    }

    pub fn save<T: Serialize>(
        &self,
        task: &str,
        env: &str,
        commit: &str,
        ago: Duration,
        verdict: Verdict,
        result: T,
    ) {
        RunRecord {
            schema_version: SCHEMA_VERSION,
            task: task.to_string(),
            environment: env.to_string(),
            git: Some(GitState {
                commit: commit.to_string(),
                dirty: false,
                tree: None,
                inputs: Some(inputs_of(commit)),
            }),
            started_at: now() - ago,
            duration_ms: 1234,
            tool_version: "0.1.0".to_string(),
            verdict,
            result,
        }
        .save(&self.repo)
        .unwrap();
    }

    /// Saves `result` as the record of `run`, measured on [`HEAD`].
    pub fn record<T: Serialize>(&self, run: Run, result: T) {
        self.save(run.task, run.env, HEAD, run.ago, run.verdict, result);
    }

    /// Saves a smoke run of `env` that failed a minute ago, its first check failed and then
    /// given what `fail` writes into it.
    pub fn save_failed_smoke(&self, env: &str, fail: impl FnOnce(&mut CheckResult)) {
        let (_, mut smoke) = smoke_report(false);
        smoke.checks[0].verdict = Verdict::Fail;
        fail(&mut smoke.checks[0]);
        smoke.verdict = Verdict::Fail;
        self.save(
            "smoke",
            env,
            HEAD,
            Duration::minutes(1),
            Verdict::Fail,
            smoke,
        );
    }

    /// Production's first steps done: predeploy passed an hour ago, secrets sent 50 minutes ago.
    pub fn prepare_production(&self) {
        let (v, p) = predeploy(true);
        self.save("predeploy", "production", HEAD, Duration::hours(1), v, p);
        let secrets = secrets_result();
        let ago = Duration::minutes(50);
        self.save("secrets", "production", HEAD, ago, Verdict::Pass, secrets);
    }

    /// `status`'s text for a rendered report's context.
    pub fn status_text(rendered: &report::Rendered) -> String {
        let context = &rendered.context;
        xtask::status::human(&xtask::status::Status {
            environment: context.environment.clone(),
            verdict: context.verdict.label.clone(),
            reasons: context.verdict.reasons.clone(),
            warnings: context.verdict.warnings.clone(),
            map: context.map.clone(),
            recovery: context.recovery.clone(),
        })
    }

    /// The error rendering `env` (the newest record's when `None`) ends in, with its causes.
    pub fn render_error(&self, env: Option<&str>) -> String {
        let options = Options {
            env: env.map(str::to_string),
        };
        let error = report::render(&self.repo, &options, now(), Some(&head())).unwrap_err();
        format!("{error:#}")
    }

    pub fn render(&self, env: &str) -> report::Rendered {
        self.render_at(env, now())
    }

    /// The report as of `at` (records saved with the real clock need the real clock).
    pub fn render_at(&self, env: &str, at: DateTime<Utc>) -> report::Rendered {
        report::render(
            &self.repo,
            &Options {
                env: Some(env.to_string()),
            },
            at,
            Some(&head()),
        )
        .unwrap()
    }

    pub fn path(&self, relative: &str) -> std::path::PathBuf {
        self.repo.path(relative)
    }
}

/// A finding at `location` (`path` or `path:line`) saying `message`, with its `fix`.
pub fn evidence(verdict: Verdict, location: &str, message: &str, fix: Option<&str>) -> Evidence {
    let (path, line) = match location.rsplit_once(':') {
        Some((path, line)) => (path, Some(line.parse().unwrap())),
        None => (location, None),
    };
    Evidence {
        verdict,
        path: Some(path.to_string()),
        line,
        message: message.to_string(),
        fix: fix.map(str::to_string),
    }
}

pub fn predeploy(env_filled: bool) -> (Verdict, PredeployReport) {
    let env_check = if env_filled {
        CheckResult {
            id: "env_check".into(),
            verifies: "the env file fills every variable of its template".into(),
            verdict: Verdict::Pass,
            evidence: vec![evidence(
                Verdict::Pass,
                "env/.env.fly.staging",
                "12 of 12 variables filled (values not shown)",
                None,
            )],
            fix: None,
        }
    } else {
        let fix = "fill JWT_SECRET in env/.env.fly.staging (at least 32 random characters)";
        CheckResult {
            id: "env_check".into(),
            verifies: "the env file fills every variable of its template".into(),
            verdict: Verdict::Fail,
            evidence: vec![evidence(
                Verdict::Fail,
                "env/.env.fly.staging:2",
                "JWT_SECRET is empty | template requires it",
                Some(fix),
            )],
            fix: Some(fix.into()),
        }
    };
    let fly_toml = CheckResult {
        id: "fly_toml".into(),
        verifies: "fly.toml checks /api/v1/readyz".into(),
        verdict: Verdict::Pass,
        evidence: vec![
            evidence(
                Verdict::Pass,
                "fly.toml:20",
                "http check on /api/v1/readyz",
                None,
            ),
            evidence(
                Verdict::Pass,
                "fly.toml:8",
                "internal_port 8080 matches PORT",
                None,
            ),
        ],
        fix: None,
    };
    let verdict = if env_filled {
        Verdict::Pass
    } else {
        Verdict::Fail
    };
    (
        verdict,
        PredeployReport {
            environment: "staging".into(),
            verdict,
            checks: vec![env_check, fly_toml],
        },
    )
}

pub fn latency(p50: f64, p95: f64) -> LatencySummary {
    LatencySummary {
        count: 400,
        min_ms: p50 / 2.0,
        p50_ms: p50,
        p90_ms: p95 * 0.9,
        p95_ms: p95,
        p99_ms: p95 * 1.5,
        p99_9_ms: p95 * 2.0,
        max_ms: p95 * 3.0,
        mean_ms: p50 * 1.1,
    }
}

pub fn threshold(metric: &str, measured: f64, limit: f64, unit: &str) -> ThresholdOutcome {
    let verdict = if measured < limit {
        Verdict::Pass
    } else {
        Verdict::Fail
    };
    let relation = if measured < limit { "<" } else { ">=" };
    ThresholdOutcome {
        check: CheckResult::observed(
            metric,
            format!("{metric} stays below {limit} {unit}"),
            verdict,
            format!("{metric} {measured} {unit} {relation} {limit} {unit}"),
            None,
        ),
        measured: Some(measured),
        limit,
        unit: unit.into(),
    }
}

pub fn endpoint(
    name: &str,
    path: &str,
    p95: f64,
    p95_limit: f64,
    error_rate: f64,
) -> smoke::EndpointReport {
    let thresholds = vec![
        threshold("p95 latency", p95, p95_limit, "ms"),
        threshold("error rate", error_rate, 1.0, "%"),
    ];
    smoke::EndpointReport {
        name: name.into(),
        path: path.into(),
        expect: Vec::new(),
        requests: 400,
        succeeded: 400 - (error_rate * 4.0) as u64,
        errors: ErrorCounts::default(),
        error_rate_pct: error_rate,
        late: 0,
        scheduled: 0,
        elapsed_ms: 2000.0,
        throughput_rps: 200.0,
        latency: latency(p95 / 3.0, p95),
        success_latency: latency(p95 / 3.0, p95),
        latency_from_release: None,
        verdict: Verdict::combine(thresholds.iter().map(|t| t.verdict())),
        thresholds,
    }
}

pub fn smoke_report(breach: bool) -> (Verdict, SmokeReport) {
    let check = |name: &str, verifies: &str, evidence: &str| {
        CheckResult::observed(name, verifies, Verdict::Pass, evidence, None)
    };
    let checks = vec![
        check(
            "healthz",
            "GET /api/v1/healthz answers 200 healthy",
            "200 {\"status\":\"healthy\"}",
        ),
        check("readyz", "GET /api/v1/readyz answers 200", "200 in 12 ms"),
    ];
    let load = LoadSettings {
        concurrency: 8,
        rate: None,
        requests: Some(400),
        duration_ms: None,
        warmup: 40,
        timeout_ms: 10_000,
    };
    let accommodations_p95 = if breach { 4200.0 } else { 180.0 };
    let endpoints = vec![
        endpoint("healthz", "/api/v1/healthz", 42.0, 200.0, 0.0),
        endpoint(
            "accommodations",
            "/api/v1/reservations/accommodations",
            accommodations_p95,
            3000.0,
            0.25,
        ),
    ];
    let report = SmokeReport::new(
        "https://sist-cabanas-staging.fly.dev",
        checks,
        Some(BenchmarkReport::new(load, endpoints)),
    );
    (report.verdict, report)
}

pub fn round(
    number: u32,
    winners: &[&str],
    conflicts: usize,
    others: Vec<OtherGroup>,
) -> RoundReport {
    let ok = winners.len() == 1 && others.is_empty();
    let verdict = if ok { Verdict::Pass } else { Verdict::Fail };
    let mut problems = Vec::new();
    if winners.len() > 1 {
        problems.push(format!(
            "{} requests were accepted for the same dates (codes {}): the extra {} are double bookings",
            winners.len(),
            winners.join(", "),
            winners.len() - 1
        ));
    }
    for group in &others {
        problems.push(format!(
            "{} request(s) ended with {}",
            group.count, group.label
        ));
    }
    RoundReport {
        round: number,
        check_in: chrono::NaiveDate::from_ymd_opt(2027, 3, 1).unwrap(),
        check_out: chrono::NaiveDate::from_ymd_opt(2027, 3, 4).unwrap(),
        race: RoundVerdict {
            verdict,
            requests: winners.len() + conflicts + others.iter().map(|o| o.count).sum::<usize>(),
            winners: winners.iter().map(|w| w.to_string()).collect(),
            conflicts,
            others,
            problems,
        },
        winner_latency_ms: Some(35.0),
        conflict_latency: None,
        connect_ms: 20.0,
        race_ms: 80.0,
        round_ms: 300.0,
        availability: probe(
            "availability",
            if ok { Verdict::Pass } else { Verdict::Fail },
            "active bookings on the window",
        ),
        boundary: vec![probe(
            "back_to_back",
            Verdict::Pass,
            "201 for a stay starting on the check-out day",
        )],
        cleanup: CleanupReport::default(),
        verdict,
    }
}

pub fn overlap_report(violation: bool) -> (Verdict, OverlapReport) {
    let second = if violation {
        let others = vec![OtherGroup {
            label: "500 internal".into(),
            count: 1,
            requests: vec![7],
            sample: "{\"error\":\"internal\"}".into(),
        }];
        round(2, &["CAB-2B", "CAB-2C"], 17, others)
    } else {
        round(2, &["CAB-2B"], 19, Vec::new())
    };
    let rounds = vec![round(1, &["CAB-1A"], 19, Vec::new()), second];
    let verdict = Verdict::combine(rounds.iter().map(|r| r.verdict));
    let report = OverlapReport {
        run_id: "run-1".into(),
        url: "https://sist-cabanas-staging.fly.dev".into(),
        accommodation_id: 1,
        concurrency: 20,
        cleanup_enabled: true,
        rounds,
        leftovers: Vec::new(),
        cross_channel: None,
        verdict,
    };
    (verdict, report)
}

pub fn release(version: u64, tag: &str) -> ReleaseRef {
    ReleaseRef {
        version,
        image_ref: Some(format!("registry.fly.io/sist-cabanas-staging:{tag}")),
        status: "complete".into(),
    }
}

pub fn deploy_result() -> DeployResult {
    DeployResult {
        app: "sist-cabanas-staging".into(),
        strategy: "rolling".into(),
        predeploy: Verdict::Pass,
        fly_user: Some("ops@example.com".into()),
        rollback_target: Some(release(11, "deployment-01H")),
        problems: Vec::new(),
        rollout: RolloutOutcome {
            release: Some(release(12, "deployment-01J")),
            readiness: Some(Verdict::Pass),
            smoke: Some(Verdict::Pass),
            rollback_command: Some("cargo xtask rollback --env staging --to-version 11".into()),
            ..RolloutOutcome::default()
        },
        commit: None,
        image_label: None,
        rollback_image: Some("registry.fly.io/sist-cabanas-staging:deployment-01H".into()),
        rollback_commit: None,
        before: None,
        logs: None,
    }
}

/// A promote of staging's v12 image that production proved to serve (its release v3) and
/// smoked: what `cargo xtask promote` saves after a success.
pub fn promote_result() -> xtask::promote::PromoteResult {
    let image = release(12, "deployment-01J").image_ref;
    let serving = ReleaseRef {
        version: 3,
        image_ref: image.clone(),
        status: "complete".into(),
    };
    xtask::promote::PromoteResult {
        app: "sist-cabanas".into(),
        image: image.clone(),
        strategy: "bluegreen".into(),
        dry_run: false,
        staging: xtask::promote::StagingEvidence {
            verdict: "GO".into(),
            reasons: Vec::new(),
            stability_holds: true,
            stability: "24 h watched without a breach".into(),
            checklist_complete: true,
            checklist: "every item ticked".into(),
            image: image.clone(),
            ignored_records: Vec::new(),
        },
        refused: Vec::new(),
        rollback_target: None,
        before: None,
        rollout: xtask::release::RolloutOutcome {
            release: Some(serving.clone()),
            verification: Some(xtask::release::verify::Verification {
                what: "the promoted image serves".into(),
                verdict: Verdict::Pass,
                expected: xtask::release::verify::Expected {
                    newer_than: Some(2),
                    image,
                    commit: Some(HEAD.into()),
                    wake: false,
                },
                release: Some(serving),
                conditions: Vec::new(),
                attempts: 1,
                seconds: 4.0,
                snapshot: xtask::release::Snapshot {
                    releases: Vec::new(),
                    machines: Vec::new(),
                },
            }),
            readiness: Some(Verdict::Pass),
            smoke: Some(Verdict::Pass),
            ..Default::default()
        },
        problems: Vec::new(),
    }
}

pub fn rollback_result() -> RollbackResult {
    RollbackResult {
        app: "sist-cabanas-staging".into(),
        from: Some(release(12, "deployment-01J")),
        to_image: Some("registry.fly.io/sist-cabanas-staging:deployment-01H".into()),
        to_version: Some(11),
        problems: Vec::new(),
        from_commit: None,
        to_commit: None,
        before: None,
        rollout: RolloutOutcome {
            readiness: Some(Verdict::Pass),
            smoke: Some(Verdict::Pass),
            ..RolloutOutcome::default()
        },
        migrations_not_reverted: Vec::new(),
    }
}

pub fn secrets_result() -> SecretsResult {
    SecretsResult {
        app: "sist-cabanas-staging".into(),
        env_file: "env/.env.fly.staging".into(),
        keys: vec![SecretState {
            name: "JWT_SECRET".into(),
            present: true,
            status: Some("Deployed".into()),
        }],
        not_in_template: Vec::new(),
        empty_not_sent: Vec::new(),
        problems: Vec::new(),
        sent: None,
    }
}

/// What a scenario changes from the all-pass set.
#[derive(Default, Clone, Copy)]
pub struct Scenario {
    pub failed_check: bool,
    pub breach: bool,
    pub violation: bool,
    pub only_predeploy: bool,
    pub commit_of_results: Option<&'static str>,
    /// No watch runs after the deploy (the 24-hour gate has nothing to count).
    pub unwatched: bool,
}

/// Staging's records in the scenario `change` makes of the all-pass one.
pub fn staging_with(change: impl FnOnce(&mut Scenario)) -> Fixture {
    let mut scenario = Scenario::default();
    change(&mut scenario);
    staging(scenario)
}

pub fn staging(s: Scenario) -> Fixture {
    let f = Fixture::new();
    let commit = s.commit_of_results.unwrap_or(HEAD);
    let (v, p) = predeploy(!s.failed_check);
    f.save("predeploy", "staging", commit, Duration::hours(3), v, p);
    if s.only_predeploy {
        return f;
    }
    f.save(
        "secrets",
        "staging",
        commit,
        Duration::hours(28),
        Verdict::Pass,
        secrets_result(),
    );
    f.save(
        "deploy",
        "staging",
        commit,
        Duration::hours(27),
        Verdict::Pass,
        deploy_result(),
    );
    // An hourly 10-minute watch over the 24 h since the deploy (27 h ago).
    for hour in (0..24).filter(|_| !s.unwatched) {
        let ago = Duration::hours(27) - Duration::minutes(10) - Duration::hours(hour);
        let (v, r) = watch_result(now() - ago, None);
        f.save("watch", "staging", commit, ago, v, r);
    }
    let (v, r) = smoke_report(s.breach);
    f.save("smoke", "staging", commit, Duration::hours(2), v, r);
    let (v, r) = overlap_report(s.violation);
    f.save("overlap", "staging", commit, Duration::minutes(90), v, r);
    f
}

/// A 10-minute watch started `at` (3 samples), healthy unless `panic_at_minute` puts a panic
/// line in the logs at that minute.
pub fn watch_result(
    at: DateTime<Utc>,
    panic_at_minute: Option<i64>,
) -> (Verdict, xtask::watch::StabilityRecord) {
    use xtask::watch::logs::LogFindings;
    use xtask::watch::sample::{Build, Probe, Sample};
    let probe = Probe {
        status: Some(200),
        latency_ms: 12.0,
        error: None,
    };
    let samples = [0, 5, 10]
        .into_iter()
        .map(|minute| Sample {
            at: at + Duration::minutes(minute),
            healthz: probe.clone(),
            readyz: probe.clone(),
            build: Some(Build {
                commit: HEAD.into(),
                // The image the fixture's staging deploy released.
                image: release(12, "deployment-01J").image_ref,
                machine: Some("m1".into()),
                started_at: Some("2026-11-26T09:00:00Z".into()),
            }),
            metrics: None,
            metrics_error: None,
            machines: None,
            machines_error: None,
            logs: Some(LogFindings {
                errors: 0,
                panics: u64::from(panic_at_minute == Some(minute)),
                kept: Vec::new(),
            }),
            logs_error: None,
        })
        .collect();
    let plan = xtask::watch::WatchPlan::new(
        std::time::Duration::from_secs(600),
        std::time::Duration::from_secs(300),
        xtask::watch::Limits {
            availability_floor_pct: 99.0,
            error_rate_pct: 1.0,
            p95_ms: 3000.0,
        },
        5,
    )
    .unwrap();
    let record = xtask::watch::StabilityRecord::new(
        "https://sist-cabanas-staging.fly.dev",
        Some("sist-cabanas-staging"),
        &plan,
        samples,
        false,
    );
    (record.verdict(), record)
}
