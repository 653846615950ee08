//! `cargo xtask report` and `status` on fixed result sets: snapshots of the rendered report,
//! the verdict and decision-map logic end to end, HTML output, template overrides, and that no
//! secret value from an env file ever reaches a report.
//!
//! The predeploy, smoke and overlap fixtures are built from those tasks' own public result
//! types, so a change to what they save that the report's views cannot read fails here.

use std::path::Path;

use chrono::{DateTime, Duration, Utc};
use serde::Serialize;
use xtask::deploy::DeployResult;
use xtask::overlap::{Check, CleanupReport, OtherGroup, OverlapReport, RoundReport, RoundVerdict};
use xtask::predeploy::{CheckOutcome, Evidence, PredeployReport};
use xtask::record::{RunRecord, SCHEMA_VERSION};
use xtask::repo::{GitState, Repo};
use xtask::report::{self, Options, Overall, State};
use xtask::rollback::{ReleaseRef, RollbackResult};
use xtask::secrets::{SecretState, SecretsResult};
use xtask::smoke::{
    self, BenchmarkReport, ErrorCounts, LatencySummary, LoadSettings, SmokeReport, ThresholdOutcome,
};
use xtask::verdict::Verdict;

const HEAD: &str = "a1b2c3d4e5f60718293a4b5c6d7e8f9012345678";
const OLD: &str = "0badc0de0badc0de0badc0de0badc0de0badc0de";
const CANARY: &str = "canary-7f3e9a1c-do-not-print-this-secret-value";

fn now() -> DateTime<Utc> {
    DateTime::parse_from_rfc3339("2026-11-27T12:00:00Z")
        .unwrap()
        .to_utc()
}

fn head() -> GitState {
    GitState {
        commit: HEAD.to_string(),
        dirty: false,
    }
}

const DEPLOY_TOML: &str = r#"
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

const CHECKLIST: &str = "# Production readiness\n\n## Secrets\n\n- [x] JWT secret rotated\n- [ ] Admin emails reviewed\n\n## Operations\n\n- [x] Backups scheduled\n- [x] Alerts routed\n";

struct Fixture {
    _dir: tempfile::TempDir,
    repo: Repo,
}

impl Fixture {
    fn new() -> Fixture {
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

    fn save<T: Serialize>(
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

    fn render(&self, env: &str) -> report::Rendered {
        report::render(
            &self.repo,
            &Options {
                env: Some(env.to_string()),
            },
            now(),
            Some(&head()),
        )
        .unwrap()
    }

    fn path(&self, relative: &str) -> std::path::PathBuf {
        self.repo.path(relative)
    }
}

fn evidence(
    verdict: Verdict,
    path: Option<&str>,
    line: Option<usize>,
    message: &str,
    fix: Option<&str>,
) -> Evidence {
    Evidence {
        verdict,
        path: path.map(str::to_string),
        line,
        message: message.to_string(),
        fix: fix.map(str::to_string),
    }
}

fn predeploy(env_filled: bool) -> (Verdict, PredeployReport) {
    let env_check = if env_filled {
        CheckOutcome {
            id: "env_check".into(),
            verifies: "the env file fills every variable of its template".into(),
            verdict: Verdict::Pass,
            evidence: vec![evidence(
                Verdict::Pass,
                Some("env/.env.fly.staging"),
                None,
                "12 of 12 variables filled (values not shown)",
                None,
            )],
            fix: None,
        }
    } else {
        let fix = "fill JWT_SECRET in env/.env.fly.staging (at least 32 random characters)";
        CheckOutcome {
            id: "env_check".into(),
            verifies: "the env file fills every variable of its template".into(),
            verdict: Verdict::Fail,
            evidence: vec![evidence(
                Verdict::Fail,
                Some("env/.env.fly.staging"),
                Some(2),
                "JWT_SECRET is empty | template requires it",
                Some(fix),
            )],
            fix: Some(fix.into()),
        }
    };
    let fly_toml = CheckOutcome {
        id: "fly_toml".into(),
        verifies: "fly.toml checks /api/v1/readyz".into(),
        verdict: Verdict::Pass,
        evidence: vec![
            evidence(
                Verdict::Pass,
                Some("fly.toml"),
                Some(20),
                "http check on /api/v1/readyz",
                None,
            ),
            evidence(
                Verdict::Pass,
                Some("fly.toml"),
                Some(8),
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

fn latency(p50: f64, p95: f64) -> LatencySummary {
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

fn threshold(metric: &str, measured: f64, limit: f64, unit: &str) -> ThresholdOutcome {
    let verdict = if measured < limit {
        Verdict::Pass
    } else {
        Verdict::Fail
    };
    let relation = if measured < limit { "<" } else { ">=" };
    ThresholdOutcome {
        metric: metric.into(),
        measured: Some(measured),
        limit,
        unit: unit.into(),
        verdict,
        evidence: format!("{metric} {measured} {unit} {relation} {limit} {unit}"),
    }
}

fn endpoint(
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
        elapsed_ms: 2000.0,
        throughput_rps: 200.0,
        latency: latency(p95 / 3.0, p95),
        success_latency: latency(p95 / 3.0, p95),
        verdict: Verdict::combine(thresholds.iter().map(|t| t.verdict)),
        thresholds,
    }
}

fn smoke_report(breach: bool) -> (Verdict, SmokeReport) {
    let check = |name: &str, verifies: &str, evidence: &str| smoke::CheckOutcome {
        name: name.into(),
        verifies: verifies.into(),
        verdict: Verdict::Pass,
        evidence: evidence.into(),
        fix: None,
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

fn round(number: u32, winners: &[&str], conflicts: usize, others: Vec<OtherGroup>) -> RoundReport {
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
        availability: Check::new(
            "availability",
            if ok { Verdict::Pass } else { Verdict::Fail },
            "active bookings on the window",
        ),
        boundary: vec![Check::new(
            "back_to_back",
            Verdict::Pass,
            "201 for a stay starting on the check-out day",
        )],
        cleanup: CleanupReport::default(),
        verdict,
    }
}

fn overlap_report(violation: bool) -> (Verdict, OverlapReport) {
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
        verdict,
    };
    (verdict, report)
}

fn release(version: u64, tag: &str) -> ReleaseRef {
    ReleaseRef {
        version,
        image_ref: Some(format!("registry.fly.io/sist-cabanas-staging:{tag}")),
        status: "complete".into(),
    }
}

fn deploy_result() -> DeployResult {
    DeployResult {
        app: "sist-cabanas-staging".into(),
        strategy: "rolling".into(),
        predeploy: Verdict::Pass,
        fly_user: Some("ops@example.com".into()),
        release: Some(release(12, "deployment-01J")),
        readiness: Some(Verdict::Pass),
        smoke: Some(Verdict::Pass),
        rollback_target: Some(release(11, "deployment-01H")),
        rollback_command: Some("cargo xtask rollback --env staging --to-version 11".into()),
        rolled_back: None,
        problems: Vec::new(),
    }
}

fn rollback_result() -> RollbackResult {
    RollbackResult {
        app: "sist-cabanas-staging".into(),
        from: Some(release(12, "deployment-01J")),
        to_image: Some("registry.fly.io/sist-cabanas-staging:deployment-01H".into()),
        to_version: Some(11),
        readiness: Some(Verdict::Pass),
        smoke: Some(Verdict::Pass),
        problems: Vec::new(),
    }
}

fn secrets_result() -> SecretsResult {
    SecretsResult {
        app: "sist-cabanas-staging".into(),
        env_file: "env/.env.fly.staging".into(),
        keys: vec![SecretState {
            name: "JWT_SECRET".into(),
            present: true,
            digest: Some("3f2a9c".into()),
            status: Some("Deployed".into()),
        }],
        not_in_template: Vec::new(),
        empty_not_sent: Vec::new(),
        problems: Vec::new(),
    }
}

/// What a scenario changes from the all-pass set.
#[derive(Default, Clone, Copy)]
struct Scenario {
    failed_check: bool,
    breach: bool,
    violation: bool,
    only_predeploy: bool,
    commit_of_results: Option<&'static str>,
}

fn staging(s: Scenario) -> Fixture {
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
    let (v, r) = smoke_report(s.breach);
    f.save("smoke", "staging", commit, Duration::hours(2), v, r);
    let (v, r) = overlap_report(s.violation);
    f.save("overlap", "staging", commit, Duration::minutes(90), v, r);
    f
}

fn snapshot(name: &str, markdown: &str) {
    insta::with_settings!({
        filters => vec![(r"xtask \d+\.\d+\.\d+\S*", "xtask [VERSION]")],
        prepend_module_to_snapshot => false,
    }, {
        insta::assert_snapshot!(name, markdown);
    });
}

#[test]
fn report_all_pass_is_go() {
    let rendered = staging(Scenario::default()).render("staging");
    assert_eq!(rendered.overall, Overall::Go, "{}", rendered.markdown);
    let map = &rendered.context.map;
    let states: Vec<State> = map.steps.iter().map(|s| s.state).collect();
    assert!(states[..9].iter().all(|s| *s == State::Done), "{map:#?}");
    assert_eq!(map.next.step, "production_checklist");
    snapshot("report_all_pass", &rendered.markdown);
}

#[test]
fn report_failed_check_is_no_go() {
    let rendered = staging(Scenario {
        failed_check: true,
        ..Default::default()
    })
    .render("staging");
    assert_eq!(rendered.overall, Overall::NoGo);
    assert!(
        rendered
            .markdown
            .contains("JWT_SECRET is empty \\| template requires it"),
        "cells escape pipes"
    );
    assert_eq!(
        rendered.context.map.next.command.as_deref(),
        Some("cargo xtask predeploy --env staging")
    );
    snapshot("report_failed_check", &rendered.markdown);
}

#[test]
fn report_threshold_breach_is_no_go() {
    let rendered = staging(Scenario {
        breach: true,
        ..Default::default()
    })
    .render("staging");
    assert_eq!(rendered.overall, Overall::NoGo);
    assert_eq!(rendered.context.map.next.step, "smoke_thresholds");
    snapshot("report_threshold_breach", &rendered.markdown);
}

#[test]
fn report_overlap_violation_is_no_go() {
    let rendered = staging(Scenario {
        violation: true,
        ..Default::default()
    })
    .render("staging");
    assert_eq!(rendered.overall, Overall::NoGo);
    assert_eq!(
        rendered.context.map.next.command.as_deref(),
        Some("cargo xtask overlap --env staging --mutating")
    );
    snapshot("report_overlap_violation", &rendered.markdown);
}

#[test]
fn report_missing_results_is_incomplete() {
    let rendered = staging(Scenario {
        only_predeploy: true,
        ..Default::default()
    })
    .render("staging");
    assert_eq!(rendered.overall, Overall::Incomplete);
    assert!(
        rendered
            .markdown
            .contains("No smoke result for staging yet")
    );
    assert_eq!(
        rendered.context.map.next.command.as_deref(),
        Some("fly auth login")
    );
    snapshot("report_missing_results", &rendered.markdown);
}

#[test]
fn report_stale_results_are_incomplete_never_go() {
    let rendered = staging(Scenario {
        commit_of_results: Some(OLD),
        ..Default::default()
    })
    .render("staging");
    assert_eq!(rendered.overall, Overall::Incomplete);
    assert!(rendered.markdown.contains("HEAD is a1b2c3d4e5f6: stale"));
    assert!(rendered.markdown.contains("**Warning:**"));
    snapshot("report_stale_results", &rendered.markdown);
}

#[test]
fn results_from_before_the_last_deploy_are_stale() {
    let f = staging(Scenario::default());
    f.save(
        "deploy",
        "staging",
        HEAD,
        Duration::minutes(10),
        Verdict::Pass,
        deploy_result(),
    );
    let rendered = f.render("staging");
    assert_eq!(rendered.overall, Overall::Incomplete);
    assert!(
        rendered
            .markdown
            .contains("before the last deploy at 2026-11-27 11:50 UTC: stale")
    );
    let stability = rendered
        .context
        .map
        .steps
        .iter()
        .find(|s| s.id == "stability_24h")
        .unwrap();
    assert_eq!(
        stability.state,
        State::Pending,
        "a new deploy restarts the 24 h clock"
    );
}

#[test]
fn a_rollback_after_the_deploy_is_no_go() {
    let f = staging(Scenario::default());
    let rollback = rollback_result();
    f.save(
        "rollback",
        "staging",
        HEAD,
        Duration::minutes(30),
        Verdict::Pass,
        rollback,
    );
    let rendered = f.render("staging");
    assert_eq!(rendered.overall, Overall::NoGo);
    assert!(
        rendered.markdown.contains("rolled back to release v11"),
        "{}",
        rendered.markdown
    );
}

#[test]
fn production_map_gates_its_deploy_on_staging_and_the_checklist() {
    let f = staging(Scenario::default());
    let (v, p) = predeploy(true);
    f.save("predeploy", "production", HEAD, Duration::hours(1), v, p);
    f.save(
        "secrets",
        "production",
        HEAD,
        Duration::minutes(50),
        Verdict::Pass,
        secrets_result(),
    );
    let rendered = f.render("production");
    assert_eq!(rendered.overall, Overall::Incomplete);
    let ids: Vec<&str> = rendered.context.map.steps.iter().map(|s| s.id).collect();
    assert_eq!(
        ids,
        [
            "predeploy",
            "fly_login",
            "secrets_loaded",
            "staging_validated",
            "stability_24h",
            "production_checklist",
            "deploy",
            "health",
            "smoke_thresholds",
            "overlap"
        ]
    );
    let state = |id: &str| {
        rendered
            .context
            .map
            .steps
            .iter()
            .find(|s| s.id == id)
            .unwrap()
            .state
    };
    assert_eq!(state("staging_validated"), State::Done);
    assert_eq!(state("stability_24h"), State::Done);
    assert_eq!(rendered.context.map.next.step, "production_checklist");
    assert_eq!(rendered.context.map.next.command, None);
    let status = xtask::status::human(&xtask::status::Status {
        environment: rendered.context.environment.clone(),
        verdict: rendered.context.verdict.label.clone(),
        reasons: rendered.context.verdict.reasons.clone(),
        map: rendered.context.map.clone(),
    });
    snapshot("status_production", &status);
}

#[test]
fn local_runs_have_no_deploy_steps() {
    let f = Fixture::new();
    let (v, r) = smoke_report(false);
    f.save("smoke", "local", HEAD, Duration::minutes(5), v, r);
    let rendered = report::render(&f.repo, &Options::default(), now(), Some(&head())).unwrap();
    assert_eq!(
        rendered.environment, "local",
        "defaults to the newest record's environment"
    );
    let ids: Vec<&str> = rendered.context.map.steps.iter().map(|s| s.id).collect();
    assert_eq!(ids, ["predeploy", "health", "smoke_thresholds", "overlap"]);
    assert_eq!(rendered.overall, Overall::Incomplete);
    assert!(!rendered.markdown.contains("## Last deploy"));
}

#[test]
fn a_predeploy_of_all_environments_stands_in_only_where_there_is_no_env_file() {
    let f = Fixture::new();
    let (v, p) = predeploy(true);
    f.save("predeploy", "all", HEAD, Duration::minutes(20), v, p);
    let (v, r) = smoke_report(false);
    f.save("smoke", "local", HEAD, Duration::minutes(5), v, r);
    let local = f.render("local");
    assert_eq!(local.context.map.steps[0].state, State::Done);
    let staging = f.render("staging");
    assert_eq!(staging.context.map.steps[0].state, State::Pending);
    assert!(staging.markdown.contains(
        "No predeploy result for staging yet: run `cargo xtask predeploy --env staging`"
    ));
}

#[test]
fn no_results_at_all_says_what_to_run() {
    let f = Fixture::new();
    let error = report::render(&f.repo, &Options::default(), now(), Some(&head())).unwrap_err();
    assert!(
        format!("{error:#}").contains("no results yet: run cargo xtask predeploy first"),
        "{error:#}"
    );
}

#[test]
fn a_corrupt_record_is_named() {
    let f = staging(Scenario::default());
    std::fs::write(
        f.repo
            .runs_dir()
            .join("20261127T000000.000Z-smoke-staging-1.json"),
        "{ not json",
    )
    .unwrap();
    let error = format!(
        "{:#}",
        report::render(&f.repo, &Options::default(), now(), Some(&head())).unwrap_err()
    );
    assert!(
        error.contains("20261127T000000.000Z-smoke-staging-1.json"),
        "{error}"
    );
}

#[test]
fn html_is_a_standalone_page_with_the_tables() {
    let rendered = staging(Scenario {
        breach: true,
        ..Default::default()
    })
    .render("staging");
    let html = rendered.html();
    assert!(html.starts_with("<!DOCTYPE html>"));
    assert!(html.contains("<table>"), "{html}");
    assert!(html.contains("<th>Endpoint</th>"), "{html}");
    assert!(html.contains("Verdict: NO-GO"), "{html}");
    assert!(html.contains("type=\"checkbox\"") || !rendered.markdown.contains("- ["));
    assert_balanced(&html);
}

/// Every opened element is closed in order (void elements aside): the page parses.
fn assert_balanced(html: &str) {
    const VOID: &[&str] = &["meta", "br", "hr", "img", "input", "link"];
    let mut stack: Vec<String> = Vec::new();
    let mut rest = html;
    while let Some(start) = rest.find('<') {
        rest = &rest[start + 1..];
        let end = rest.find('>').expect("an unclosed tag");
        let tag = &rest[..end];
        rest = &rest[end + 1..];
        if tag.starts_with('!') || tag.ends_with('/') {
            continue;
        }
        let name: String = tag
            .trim_start_matches('/')
            .chars()
            .take_while(|c| c.is_ascii_alphanumeric())
            .collect();
        if VOID.contains(&name.as_str()) {
            continue;
        }
        if tag.starts_with('/') {
            assert_eq!(
                stack.pop().as_deref(),
                Some(name.as_str()),
                "mismatched </{name}>"
            );
        } else {
            stack.push(name);
        }
    }
    assert!(stack.is_empty(), "unclosed: {stack:?}");
}

#[test]
fn reports_never_contain_a_secret_value() {
    let f = staging(Scenario {
        failed_check: true,
        ..Default::default()
    });
    let env_file = std::fs::read_to_string(f.path("env/.env.fly.staging")).unwrap();
    assert!(env_file.contains(CANARY), "the fixture holds the canary");
    let rendered = f.render("staging");
    let out = tempfile::tempdir().unwrap();
    let written = report::write(&rendered, out.path(), now(), true).unwrap();
    assert_eq!(written.paths.len(), 4);
    for path in &written.paths {
        let text = std::fs::read_to_string(path).unwrap();
        assert!(
            !text.contains(CANARY),
            "{} leaks the secret",
            path.display()
        );
        assert!(
            text.contains("JWT_SECRET"),
            "names are fine, values are not"
        );
    }
    let json = serde_json::to_string(&rendered.context).unwrap();
    assert!(!json.contains(CANARY));
}

#[test]
fn reports_are_written_as_summary_and_dated_copy() {
    let rendered = staging(Scenario::default()).render("staging");
    let out = tempfile::tempdir().unwrap();
    let written = report::write(&rendered, out.path(), now(), false).unwrap();
    let relative: Vec<String> = written
        .paths
        .iter()
        .map(|p| {
            p.strip_prefix(out.path())
                .unwrap()
                .to_string_lossy()
                .replace('\\', "/")
        })
        .collect();
    assert_eq!(
        relative,
        [
            "backend/docs/DEPLOYMENT_SUMMARY.md",
            "backend/docs/reports/staging-20261127T120000Z.md"
        ]
    );
    let summary =
        std::fs::read_to_string(out.path().join("backend/docs/DEPLOYMENT_SUMMARY.md")).unwrap();
    assert_eq!(summary, rendered.markdown);
}

#[test]
fn a_team_template_overrides_the_embedded_one() {
    let f = staging(Scenario::default());
    std::fs::create_dir_all(f.path("ops/templates")).unwrap();
    std::fs::write(
        f.path("ops/templates/verdict.md.j2"),
        "## Veredicto: {{ verdict.label }}\n\n{% for r in verdict.reasons %}- {{ r }}\n{% endfor %}\n",
    )
    .unwrap();
    let rendered = f.render("staging");
    assert!(
        rendered.markdown.contains("## Veredicto: GO"),
        "{}",
        rendered.markdown
    );
    assert!(!rendered.markdown.contains("## Verdict:"));
}

#[test]
fn an_unknown_variable_in_a_template_names_it_and_the_line() {
    let f = staging(Scenario::default());
    write(
        &f.path("ops/templates/smoke.md.j2"),
        "## Smoke\n\n{{ smoke.present }}\n{{ umbral }}\n",
    );
    let error = format!(
        "{:#}",
        report::render(&f.repo, &Options::default(), now(), Some(&head())).unwrap_err()
    );
    assert!(error.contains("smoke.md.j2:4"), "{error}");
    assert!(error.contains("undefined"), "{error}");
}

fn write(path: &Path, text: &str) {
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    std::fs::write(path, text).unwrap();
}
