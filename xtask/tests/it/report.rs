//! `cargo xtask report` and `status` on fixed result sets: snapshots of the rendered report,
//! the verdict and decision-map logic end to end, HTML output, template overrides, and that no
//! secret value from an env file ever reaches a report.
//!
//! The fixtures (`report_fixtures/`) are built from every task's own public result type, so a
//! change to what a task saves that the report's views cannot read fails here.

use crate::report_fixtures;

use std::path::Path;

use chrono::Duration;
use report_fixtures::*;
use xtask::repo::GitState;
use xtask::report::{self, Options, Overall, State, StepId};
use xtask::verdict::Verdict;

fn snapshot(name: &str, markdown: &str) {
    insta::with_settings!({
        filters => vec![(r"xtask \d+\.\d+\.\d+\S*", "xtask [VERSION]")],
        prepend_module_to_snapshot => false,
    }, {
        insta::assert_snapshot!(name, markdown);
    });
}

/// Staging's report in the scenario `change` makes of the all-pass one: its verdict is
/// `overall`, and its Markdown matches the snapshot `name`.
fn staging_report(
    change: impl FnOnce(&mut Scenario),
    overall: Overall,
    name: &str,
) -> report::Rendered {
    let rendered = staging_with(change).render("staging");
    assert_eq!(rendered.overall, overall, "{}", rendered.markdown);
    snapshot(name, &rendered.markdown);
    rendered
}

/// The command the decision map says to run next.
fn next_command(rendered: &report::Rendered) -> Option<&str> {
    rendered.context.map.next.command.as_deref()
}

/// The ids of the steps of the report's decision map, in order.
fn step_ids(rendered: &report::Rendered) -> Vec<&str> {
    let steps = &rendered.context.map.steps;
    steps.iter().map(|s| s.id.as_str()).collect()
}

/// One of `said` (reasons, warnings) says `text`.
fn assert_said(said: &[String], text: &str) {
    assert!(said.iter().any(|s| s.contains(text)), "{said:?}");
}

/// The report's Markdown shows `text`.
fn assert_shows(rendered: &report::Rendered, text: &str) {
    assert!(rendered.markdown.contains(text), "{}", rendered.markdown);
}

/// Rendering `env` (the newest record's when `None`) fails with an error saying each of
/// `texts`.
fn assert_render_fails_saying(f: &Fixture, env: Option<&str>, texts: &[&str]) {
    let error = f.render_error(env);
    for text in texts {
        assert!(error.contains(text), "{error}");
    }
}

#[test]
fn report_all_pass_is_go() {
    let rendered = staging_report(|_| {}, Overall::Go, "report_all_pass");
    let map = &rendered.context.map;
    let states: Vec<State> = map.steps.iter().map(|s| s.state).collect();
    assert!(states[..9].iter().all(|s| *s == State::Done), "{map:#?}");
    assert_eq!(map.next.step, "production_checklist");
}

#[test]
fn report_failed_check_is_no_go() {
    let rendered = staging_report(
        |s| s.failed_check = true,
        Overall::NoGo,
        "report_failed_check",
    );
    let cell = "JWT_SECRET is empty \\| template requires it";
    assert!(rendered.markdown.contains(cell), "cells escape pipes");
    let next = "cargo xtask predeploy --env staging";
    assert_eq!(next_command(&rendered), Some(next));
}

#[test]
fn report_threshold_breach_is_no_go() {
    let rendered = staging_report(
        |s| s.breach = true,
        Overall::NoGo,
        "report_threshold_breach",
    );
    assert_eq!(rendered.context.map.next.step, "smoke_thresholds");
}

#[test]
fn report_overlap_violation_is_no_go() {
    let name = "report_overlap_violation";
    let rendered = staging_report(|s| s.violation = true, Overall::NoGo, name);
    let next = "cargo xtask overlap --env staging --mutating";
    assert_eq!(next_command(&rendered), Some(next));
}

#[test]
fn report_missing_results_is_incomplete() {
    let name = "report_missing_results";
    let rendered = staging_report(|s| s.only_predeploy = true, Overall::Incomplete, name);
    assert_shows(&rendered, "No smoke result for staging yet");
    assert_eq!(next_command(&rendered), Some("fly auth login"));
}

#[test]
fn report_stale_results_are_incomplete_never_go() {
    let name = "report_stale_results";
    let old = |s: &mut Scenario| s.commit_of_results = Some(OLD);
    let rendered = staging_report(old, Overall::Incomplete, name);
    let stale = "deployable inputs changed: their tree is now 7eea1b2c3d4e: stale";
    assert!(rendered.markdown.contains(stale));
    assert!(rendered.markdown.contains("**Warning:**"));
}

#[test]
fn results_measured_on_a_replaced_release_are_stale() {
    let f = staging(Scenario::default());
    let mut next = deploy_result();
    next.rollout.release = Some(release(13, "deployment-01K"));
    f.record(
        Run::passed("deploy", "staging", Duration::minutes(10)),
        next,
    );
    let rendered = f.render("staging");
    assert_eq!(rendered.overall, Overall::Incomplete);
    assert!(
        rendered.markdown.contains(
            "another release has served since: the current one since 2026-11-27 11:50 UTC: stale"
        ),
        "{}",
        rendered.markdown
    );
    assert!(
        rendered.markdown.contains(
            "against an earlier release (release v13, image \
             registry.fly.io/sist-cabanas-staging:deployment-01K serves now)"
        ),
        "{}",
        rendered.markdown
    );
    let stability = rendered.context.map.step(StepId::Stability24h).unwrap();
    assert_eq!(
        stability.state,
        State::Pending,
        "a new deploy restarts the 24 h clock"
    );
}

#[test]
fn a_deploy_that_left_the_same_release_serving_keeps_results_fresh() {
    let f = staging(Scenario::default());
    // A deploy that failed before replacing anything: v12 still serves.
    let mut kept = deploy_result();
    kept.problems = vec!["the build failed".into()];
    f.record(
        Run::failed("deploy", "staging", Duration::minutes(10)),
        kept,
    );
    let rendered = f.render("staging");
    let smoke = rendered.context.smoke.provenance.as_ref().unwrap();
    assert!(!smoke.stale, "{}", smoke.note);
    assert!(smoke.against.contains("release v12"), "{}", smoke.against);
}

#[test]
fn a_docs_only_commit_keeps_local_results_fresh_and_a_backend_change_stales_them() {
    let f = Fixture::new();
    let (v, r) = smoke_report(false);
    f.save("smoke", "local", HEAD, Duration::minutes(5), v, r);
    let render_at = |head: &GitState| {
        report::render(
            &f.repo,
            &Options {
                env: Some("local".into()),
            },
            now(),
            Some(head),
        )
        .unwrap()
    };
    // Another commit with the same deployable inputs (a README change).
    let docs_commit = GitState {
        commit: "d0c5d0c5d0c5".into(),
        ..head()
    };
    let smoke = render_at(&docs_commit).context.smoke.provenance.unwrap();
    assert!(!smoke.stale, "{}", smoke.note);
    assert!(
        smoke.note.contains("against deployable inputs tree"),
        "{}",
        smoke.note
    );
    // Another commit whose inputs differ (a backend/ change).
    let backend_commit = GitState {
        commit: "bacbacbacbac".into(),
        inputs: Some(inputs_of("bacbacbacbac")),
        ..head()
    };
    let smoke = render_at(&backend_commit).context.smoke.provenance.unwrap();
    assert!(smoke.stale, "{}", smoke.note);
    assert!(smoke.note.contains("deployable inputs"), "{}", smoke.note);
}

#[test]
fn a_rollback_after_the_deploy_is_no_go() {
    let f = staging(Scenario::default());
    let rollback = rollback_result();
    f.record(
        Run::passed("rollback", "staging", Duration::minutes(30)),
        rollback,
    );
    let rendered = f.render("staging");
    assert_eq!(rendered.overall, Overall::NoGo);
    let smoke = rendered.context.smoke.provenance.as_ref().unwrap();
    assert!(smoke.stale, "{}", smoke.note);
    assert_eq!(
        smoke.against,
        "against an earlier release (release v11, image \
         registry.fly.io/sist-cabanas-staging:deployment-01H serves now)"
    );
    assert_shows(&rendered, "rolled back to release v11");
}

#[test]
fn production_map_gates_its_deploy_on_staging_and_the_checklist() {
    let f = staging(Scenario::default());
    f.prepare_production();
    let rendered = f.render("production");
    assert_eq!(rendered.overall, Overall::Incomplete);
    let ids = step_ids(&rendered);
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
    let state = |id: StepId| rendered.context.map.step(id).unwrap().state;
    assert_eq!(state(StepId::StagingValidated), State::Done);
    assert_eq!(state(StepId::Stability24h), State::Done);
    assert_eq!(rendered.context.map.next.step, "production_checklist");
    assert_eq!(rendered.context.map.next.command, None);
    let status = Fixture::status_text(&rendered);
    snapshot("status_production", &status);
}

/// A successful promote is production's deploy: the deploy step shows the promoted release,
/// its proof and its smoke, and with production's own checks after it and the checklist
/// complete, production is GO (`report --env production --check` exits 0 only then). A
/// promote refused afterwards changed nothing and leaves it GO.
#[test]
fn a_promote_is_productions_deploy_and_production_reaches_go() {
    let f = staging(Scenario::default());
    std::fs::write(
        f.path("ops/PROD_READINESS_CHECKLIST.md"),
        CHECKLIST.replace("- [ ]", "- [x]"),
    )
    .unwrap();
    f.prepare_production();
    let (v, r) = smoke_report(false);
    f.save("smoke", "production", HEAD, Duration::minutes(45), v, r);
    f.record(
        Run::passed("promote", "production", Duration::minutes(40)),
        promote_result(),
    );
    // Smoke from before the promote measured another release.
    let rendered = f.render("production");
    let state = |r: &report::Rendered, id: StepId| r.context.map.step(id).unwrap().clone();
    assert_eq!(state(&rendered, StepId::Deploy).state, State::Done);
    assert_eq!(state(&rendered, StepId::Health).state, State::Pending);

    let (v, r) = smoke_report(false);
    f.save("smoke", "production", HEAD, Duration::minutes(30), v, r);
    let (v, r) = overlap_report(false);
    f.save("overlap", "production", HEAD, Duration::minutes(20), v, r);
    let mut refused = promote_result();
    refused.refused = vec!["staging is not GO".into()];
    refused.rollout.release = None;
    f.record(
        Run::failed("promote", "production", Duration::minutes(10)),
        refused,
    );
    let rendered = f.render("production");
    let deploy = state(&rendered, StepId::Deploy);
    assert_eq!(deploy.state, State::Done, "{}", deploy.evidence);
    for shown in [
        "promote passed at",
        "release v3 (registry.fly.io/sist-cabanas-staging:deployment-01J)",
        "proven to serve: PASS",
        "smoke: PASS",
    ] {
        assert!(
            deploy.evidence.contains(shown),
            "{shown}: {}",
            deploy.evidence
        );
    }
    assert_eq!(rendered.overall, Overall::Go, "{}", rendered.markdown);
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
    let ids = step_ids(&rendered);
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
    assert_render_fails_saying(
        &f,
        None,
        &["no results yet: run cargo xtask predeploy first"],
    );
}

/// `status` on a fresh checkout cannot reach any result without `--env`: exit 2, saying what
/// to run; naming the environment, it reads the (empty) results and informs: exit 0.
#[test]
fn status_exits_2_without_results_to_read_and_0_once_it_reads_them() {
    let f = Fixture::new();
    let status = |args: &[&str]| {
        std::process::Command::new(env!("CARGO_BIN_EXE_xtask"))
            .arg("status")
            .args(args)
            .current_dir(f.repo.root())
            .output()
            .unwrap()
    };
    let fresh = status(&[]);
    let stderr = String::from_utf8_lossy(&fresh.stderr);
    assert_eq!(fresh.status.code(), Some(2), "{stderr}");
    assert!(stderr.contains("no results yet"), "{stderr}");
    let named = status(&["--env", "staging"]);
    let stdout = String::from_utf8_lossy(&named.stdout);
    assert_eq!(named.status.code(), Some(0), "{stdout}");
    assert!(stdout.contains("staging: INCOMPLETE"), "{stdout}");
}

#[test]
fn an_unknown_environment_is_an_error_listing_the_known_ones() {
    let f = staging(Scenario::default());
    assert_render_fails_saying(
        &f,
        Some("prod"),
        &["no environment `prod`", "production, staging"],
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
    assert_render_fails_saying(&f, None, &["20261127T000000.000Z-smoke-staging-1.json"]);
}

#[test]
fn html_is_a_standalone_page_with_the_tables() {
    let rendered = staging_with(|s| s.breach = true).render("staging");
    let html = rendered.html();
    assert!(html.starts_with("<!DOCTYPE html>"));
    assert!(html.contains("<table>"), "{html}");
    assert!(html.contains("<th>Endpoint</th>"), "{html}");
    assert!(html.contains("Verdict: NO-GO"), "{html}");
    // The readiness checklist is a table in the report (its items are counted, not listed
    // as task boxes), and the page shows it as one.
    assert_shows(&rendered, "| Section | Checked |");
    assert!(html.contains("<th>Section</th>"), "{html}");
    assert_balanced(&html);
}

#[test]
fn markup_from_a_measured_service_is_shown_not_executed() {
    let f = staging(Scenario::default());
    f.save_failed_smoke("staging", |check| {
        check.evidence[0].message = "500 <script>alert(1)</script> | <img src=x>".into();
    });
    let rendered = f.render("staging");
    let html = rendered.html();
    assert!(!html.contains("<script>"), "{html}");
    assert!(!html.contains("<img"), "{html}");
    assert!(
        html.contains("&lt;script&gt;alert(1)&lt;/script&gt;"),
        "{html}"
    );
    assert_balanced(&html);
}

/// Records arrive from a shared ref: every field is untrusted. Script, image and
/// `javascript:` markup stays text in the HTML page, and no field can start a heading, a link
/// or a new table row in the Markdown.
#[test]
fn hostile_record_fields_stay_text_in_markdown_and_html() {
    const HOSTILE: &str = "x\n# GO\n<script>alert(1)</script> <img src=x onerror=alert(1)> \
                           [click](javascript:alert(1)) `tick` | col";
    let f = staging(Scenario::default());
    f.save_failed_smoke("staging", |check| {
        check.verifies = HOSTILE.into();
        check.fix = Some(HOSTILE.into());
        check.evidence[0].message = HOSTILE.into();
    });
    let mut deploy = deploy_result();
    deploy.strategy = HOSTILE.into();
    f.record(
        Run::passed("deploy", "staging", Duration::minutes(30)),
        deploy,
    );
    let rendered = f.render("staging");
    let markdown = &rendered.markdown;
    assert!(!markdown.contains("\n# GO"), "{markdown}");
    assert_eq!(
        markdown.matches("](javascript:").count(),
        markdown.matches("\\](javascript:").count(),
        "every link bracket is escaped: {markdown}"
    );
    assert!(!markdown.contains("<script"), "{markdown}");
    assert!(!markdown.contains("<img"), "{markdown}");
    // Every table row still has as many cells as its header.
    for line in markdown
        .lines()
        .filter(|l| l.contains("`tick") || l.contains("\\`tick"))
    {
        assert!(line.contains("\\| col"), "the pipe is escaped: {line}");
    }
    let html = rendered.html();
    assert!(!html.contains("<script"), "{html}");
    assert!(!html.contains("<img"), "{html}");
    assert!(!html.contains("href=\"javascript:"), "{html}");
    assert!(!html.contains("<h1>GO"), "{html}");
    assert!(
        html.contains("&lt;script&gt;alert(1)&lt;/script&gt;"),
        "{html}"
    );
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
    let f = staging_with(|s| s.failed_check = true);
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
    assert_shows(&rendered, "## Veredicto: GO");
    assert!(!rendered.markdown.contains("## Verdict:"));
}

#[test]
fn an_unknown_variable_in_a_template_names_it_and_the_line() {
    let f = staging(Scenario::default());
    write(
        &f.path("ops/templates/smoke.md.j2"),
        "## Smoke\n\n{{ smoke.present }}\n{{ umbral }}\n",
    );
    assert_render_fails_saying(&f, None, &["smoke.md.j2:4", "undefined"]);
}

fn write(path: &Path, text: &str) {
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    std::fs::write(path, text).unwrap();
}

/// Three smoke runs (the newest slower on one endpoint and failing more requests) and two
/// overlap runs on local: the history section and its chart.
fn history_fixture() -> Fixture {
    let f = Fixture::new();
    let runs = [(5, 150.0, 0.0), (4, 160.0, 0.25), (3, 240.0, 0.5)];
    for (hours_ago, accommodations_p95, errors) in runs {
        let (_, mut r) = smoke_report(false);
        let bench = r.benchmark.as_mut().unwrap();
        bench.endpoints[1] = endpoint(
            "accommodations",
            "/api/v1/reservations/accommodations",
            accommodations_p95,
            3000.0,
            errors,
        );
        f.save(
            "smoke",
            "local",
            HEAD,
            Duration::hours(hours_ago),
            r.verdict,
            r,
        );
    }
    for (hours_ago, race_ms) in [(4, 80.0), (2, 85.0)] {
        let (v, mut r) = overlap_report(false);
        for round in &mut r.rounds {
            round.race_ms = race_ms;
        }
        f.save("overlap", "local", HEAD, Duration::hours(hours_ago), v, r);
    }
    f
}

#[test]
fn history_shows_trends_and_warns_on_a_regression_per_endpoint() {
    let f = history_fixture();
    let rendered = f.render("local");
    let history = &rendered.context.history;
    let verdicts: Vec<(&str, &str)> = history
        .endpoints
        .iter()
        .map(|e| (e.name.as_str(), e.verdict.as_str()))
        .collect();
    assert_eq!(verdicts, [("healthz", "OK"), ("accommodations", "WARN")]);
    assert_said(
        &rendered.context.verdict.warnings,
        "smoke accommodations: p95 240 ms against 160 ms",
    );
    assert_shows(&rendered, "> **WARN:** smoke accommodations");
    let section = rendered
        .markdown
        .split("## History")
        .nth(1)
        .and_then(|rest| rest.split("\n## ").next())
        .unwrap();
    snapshot("history_section", &format!("## History{section}"));
}

#[test]
fn html_draws_the_trend_as_inline_svg_without_script() {
    let f = history_fixture();
    let rendered = f.render("local");
    let chart = rendered
        .chart
        .clone()
        .expect("a chart with benchmarked runs");
    snapshot("history_chart_svg", &chart);
    let html = rendered.html();
    let at_heading = html.find("<h2>History</h2>").unwrap();
    let at_chart = html.find("<svg").unwrap();
    assert!(
        at_chart > at_heading,
        "the chart sits under the History heading"
    );
    assert!(!html.contains("<script"));
    // Nothing fetched or run: the only URL is the SVG namespace.
    assert!(!chart.contains("href"));
    assert_eq!(chart.matches("http").count(), 1);
    // Three points for each of two endpoints.
    assert_eq!(chart.matches("<circle").count(), 6);
}

#[test]
fn p99_and_max_limits_are_shown_beside_the_percentiles() {
    let f = Fixture::new();
    let (_, mut r) = smoke_report(false);
    let endpoint = &mut r.benchmark.as_mut().unwrap().endpoints[0];
    endpoint
        .thresholds
        .push(threshold("p99 latency", 63.0, 5000.0, "ms"));
    endpoint
        .thresholds
        .push(threshold("max latency", 126.0, 100.0, "ms"));
    f.save("smoke", "local", HEAD, Duration::minutes(5), r.verdict, r);
    let rendered = f.render("local");
    assert!(
        rendered
            .markdown
            .contains("| 63.0 ms (< 5000 ms) | 126 ms (< 100 ms) |"),
        "{}",
        rendered.markdown
    );
}

#[test]
fn a_record_from_the_future_is_flagged_and_does_not_mask_a_fresh_failure() {
    use xtask::record::{RunRecord, SCHEMA_VERSION};
    let f = Fixture::new();
    let save = |started_at: chrono::DateTime<chrono::Utc>, verdict: Verdict, breach: bool| {
        let (_, result) = smoke_report(breach);
        RunRecord {
            schema_version: SCHEMA_VERSION,
            task: "smoke".into(),
            environment: "local".into(),
            git: Some(head()),
            started_at,
            duration_ms: 1,
            tool_version: "0.1.0".into(),
            verdict,
            result,
        }
        .save(&f.repo)
        .unwrap()
    };
    // A PASS copied from a machine whose clock runs a year ahead, saved here an hour ago ...
    let copied = save(
        chrono::Utc::now() + Duration::days(365),
        Verdict::Pass,
        false,
    );
    std::fs::File::options()
        .write(true)
        .open(&copied)
        .unwrap()
        .set_modified(std::time::SystemTime::now() - std::time::Duration::from_secs(3600))
        .unwrap();
    // ... then a failure measured here now.
    save(chrono::Utc::now(), Verdict::Fail, true);
    let rendered = f.render_at("local", chrono::Utc::now());
    assert_eq!(
        rendered.context.smoke.provenance.as_ref().unwrap().verdict,
        "FAIL"
    );
    assert_eq!(rendered.overall, Overall::NoGo);
    let warnings = &rendered.context.verdict.warnings;
    assert_said(warnings, "claims to start at");
    assert_shows(&rendered, "> **WARN:** the smoke record for local");
}

#[test]
fn smoke_that_saw_another_build_than_the_deploy_is_stale() {
    let f = staging(Scenario::default());
    let (v, mut r) = smoke_report(false);
    r.served_version = xtask::smoke::report::ServedVersion::Answered {
        body: serde_json::json!({"commit": "0ther0ther0ther"}),
    };
    f.save("smoke", "staging", HEAD, Duration::minutes(30), v, r);
    let rendered = f.render("staging");
    assert_eq!(rendered.overall, Overall::Incomplete);
    assert_said(
        &rendered.context.verdict.reasons,
        "version endpoint reported commit 0ther0ther0ther",
    );
    assert_shows(
        &rendered,
        "build served: the version endpoint reported commit 0ther0ther0ther",
    );

    // The same commit as the deploy confirms it.
    let (v, mut r) = smoke_report(false);
    r.served_version = xtask::smoke::report::ServedVersion::Answered {
        body: serde_json::json!({"commit": HEAD}),
    };
    f.save("smoke", "staging", HEAD, Duration::minutes(20), v, r);
    assert_eq!(f.render("staging").overall, Overall::Go);
}

/// The 24-hour gate on a release deployed 20 h ago and watched for its first 10 hours, with
/// a panic in hour 3: the breach fails the gate and is listed; the hours since are gaps and
/// the rest is still ahead. The HTML page draws the same hours as an SVG.
#[test]
fn stability_timeline_shows_breaches_gaps_and_hours_ahead() {
    let f = staging_with(|s| s.unwatched = true);
    f.record(
        Run::passed("deploy", "staging", Duration::hours(20)),
        deploy_result(),
    );
    for hour in 0..10 {
        let ago = Duration::hours(20) - Duration::minutes(10) - Duration::hours(hour);
        let panic = (hour == 3).then_some(5);
        let (v, r) = watch_result(now() - ago, panic);
        f.save("watch", "staging", HEAD, ago, v, r);
    }
    let rendered = f.render("staging");
    let step = rendered.context.map.step(StepId::Stability24h).unwrap();
    assert_eq!(step.state, State::Failed, "{}", step.evidence);
    assert!(
        step.evidence.contains("2026-11-26 19:15 UTC"),
        "{}",
        step.evidence
    );
    let start = rendered.markdown.find("### Staging: 24 hours").unwrap();
    let end = rendered.markdown[start..]
        .find("\n## ")
        .map_or(rendered.markdown.len(), |e| start + e);
    snapshot("stability_timeline", &rendered.markdown[start..end]);

    let html = rendered.html();
    assert_eq!(html.matches("<rect").count(), 24, "one cell per hour");
    assert!(html.contains("#cf222e"), "the breach hour is drawn red");
    assert!(
        !html.contains("stability-timeline"),
        "the marker became the SVG"
    );
    assert!(!html.contains("<script"));
}

#[test]
fn a_record_from_before_the_shared_check_layout_is_left_out_and_named() {
    use xtask::record::RunRecord;
    let f = Fixture::new();
    // A smoke record as written before every check shared one layout: `name` and one
    // sentence of evidence. A PASS in that shape must not be read (by guessing) as this
    // environment's smoke result.
    let old = serde_json::json!({
        "url": "http://127.0.0.1:8080",
        "checks": [{"name": "healthz", "verifies": "GET /api/v1/healthz answers 200",
                    "verdict": "pass", "evidence": "200 healthy", "fix": null}],
        "benchmark": null,
        "verdict": "pass",
    });
    RunRecord {
        schema_version: 1,
        task: "smoke".into(),
        environment: "local".into(),
        git: Some(head()),
        started_at: chrono::Utc::now(),
        duration_ms: 1,
        tool_version: "0.1.0".into(),
        verdict: Verdict::Pass,
        result: old,
    }
    .save(&f.repo)
    .unwrap();
    let rendered = f.render_at("local", chrono::Utc::now());
    assert!(rendered.context.smoke.provenance.is_none());
    let warnings = &rendered.context.verdict.warnings;
    assert_said(
        warnings,
        "1 record(s) of smoke were written before checks shared one layout",
    );
}

#[test]
fn secrets_go_stale_when_the_env_file_changes_after_they_were_sent() {
    use xtask::secrets::sent::SentFingerprint;
    let f = staging(Scenario::default());
    let root = f.repo.root().to_path_buf();
    std::fs::write(
        root.join("env/.env.fly.staging.template"),
        "# [required, postgres-url] db\nDATABASE_URL=<postgres-url>\n\
         # [required, secret-32] key\nJWT_SECRET=<at-least-32-random-characters>\n",
    )
    .unwrap();
    let entries = vec![
        (
            "DATABASE_URL".to_string(),
            format!("postgresql://app:{CANARY}@db/app"),
        ),
        ("JWT_SECRET".to_string(), CANARY.to_string()),
    ];
    let mut sent = secrets_result();
    sent.sent = Some(SentFingerprint::of(&entries));
    f.record(
        Run::passed("secrets", "staging", Duration::minutes(30)),
        sent,
    );
    let secrets_step = |f: &Fixture| {
        let rendered = f.render("staging");
        let step = rendered
            .context
            .map
            .step(StepId::SecretsLoaded)
            .unwrap()
            .clone();
        (step.state, step.evidence, rendered.markdown)
    };
    let (state, evidence, _) = secrets_step(&f);
    assert_eq!(state, State::Done, "{evidence}");

    // One value changed in the env file: what Fly holds is no longer the file's.
    std::fs::write(
        root.join("env/.env.fly.staging"),
        format!("DATABASE_URL=postgresql://app:{CANARY}@db/app\nJWT_SECRET={CANARY}-rotated\n"),
    )
    .unwrap();
    let (state, evidence, markdown) = secrets_step(&f);
    assert_eq!(state, State::Pending, "{evidence}");
    assert!(
        evidence.contains("env/.env.fly.staging changed since its values were sent"),
        "{evidence}"
    );
    assert!(!markdown.contains(CANARY), "no value reaches the report");
}

fn backup_record(taken: chrono::DateTime<chrono::Utc>) -> xtask::backup::BackupRecord {
    xtask::backup::BackupRecord {
        manifest_file: "/var/backups/cabanas/cabanas.manifest.json".into(),
        manifest: xtask::backup::Manifest {
            schema_version: xtask::backup::MANIFEST_SCHEMA_VERSION,
            environment: "production".into(),
            database: "cabanas".into(),
            server_version: "17.2".into(),
            dump_file: "cabanas.dump".into(),
            size_bytes: 4096,
            sha256: "ab".repeat(32),
            row_counts: [("public.reservations".to_string(), 100_000)].into(),
            started_at: taken,
            finished_at: taken,
        },
    }
}

fn drill_record(taken: chrono::DateTime<chrono::Utc>) -> xtask::restore_drill::DrillRecord {
    xtask::restore_drill::DrillRecord {
        dump_file: "cabanas.dump".into(),
        backup_taken_at: taken,
        rto_ms: 12_345,
        rpo_seconds: 3 * 3600 + 5 * 60,
        checks: Vec::new(),
    }
}

/// "Daily backups" and "restore tested" are computed from production's backup and drill
/// records: ticked boxes prove nothing, a backup 30 hours old is late, a fresh backup and a
/// passed drill tick them; the report and status show the backup's age, RTO and RPO.
#[test]
fn backups_and_drills_decide_their_checklist_items_and_show_their_age() {
    let f = staging(Scenario::default());
    std::fs::write(
        f.path("ops/PROD_READINESS_CHECKLIST.md"),
        "# Readiness\n\n## Database\n\n- [x] Daily backups <!-- computed: backups -->\n\
         - [x] Restore tested <!-- computed: restore-drill -->\n",
    )
    .unwrap();
    let checked = |f: &report_fixtures::Fixture| {
        let rendered = f.render("production");
        let list = rendered.context.readiness.checklist.clone().unwrap();
        (list.checked, list.sections[0].open.clone(), rendered)
    };
    let (count, open, _) = checked(&f);
    assert_eq!(count, 0, "ticked by hand, no records: {open:?}");
    assert!(
        open[0].contains("no backup of production recorded"),
        "{open:?}"
    );

    let old = now() - Duration::hours(30);
    f.record(
        Run::passed("backup", "production", Duration::hours(30)),
        backup_record(old),
    );
    let (count, open, _) = checked(&f);
    assert_eq!(count, 0);
    assert!(open[0].contains("30h00m old (needs under 26h)"), "{open:?}");

    let fresh = now() - Duration::hours(2);
    f.record(
        Run::passed("backup", "production", Duration::hours(2)),
        backup_record(fresh),
    );
    f.record(
        Run::passed("restore-drill", "production", Duration::hours(1)),
        drill_record(fresh),
    );
    let (count, open, rendered) = checked(&f);
    assert_eq!(count, 2, "{open:?}");
    assert!(
        rendered.markdown.contains("Newest backup: 2h00m old")
            && rendered.markdown.contains("RTO 12.3s, RPO 3h05m"),
        "{}",
        rendered.markdown
    );
    let status = Fixture::status_text(&rendered);
    assert!(
        status.contains("newest backup 2h00m old")
            && status.contains("last restore drill PASS 60m ago: RTO 12.3s, RPO 3h05m"),
        "{status}"
    );

    // A failed drill afterwards: restore is no longer proven.
    f.record(
        Run::failed("restore-drill", "production", Duration::minutes(30)),
        drill_record(fresh),
    );
    let (count, open, _) = checked(&f);
    assert_eq!(count, 1);
    assert!(open[0].contains("last restore drill FAIL"), "{open:?}");
}
