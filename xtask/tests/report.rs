//! `cargo xtask report` and `status` on fixed result sets: snapshots of the rendered report,
//! the verdict and decision-map logic end to end, HTML output, template overrides, and that no
//! secret value from an env file ever reaches a report.
//!
//! The fixtures (`report_fixtures/`) are built from every task's own public result type, so a
//! change to what a task saves that the report's views cannot read fails here.

mod report_fixtures;

use std::path::Path;

use chrono::Duration;
use report_fixtures::*;
use xtask::report::{self, Options, Overall, State};
use xtask::verdict::Verdict;

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
fn an_unknown_environment_is_an_error_listing_the_known_ones() {
    let f = staging(Scenario::default());
    let options = Options {
        env: Some("prod".into()),
    };
    let error = format!(
        "{:#}",
        report::render(&f.repo, &options, now(), Some(&head())).unwrap_err()
    );
    assert!(error.contains("no environment `prod`"), "{error}");
    assert!(error.contains("production, staging"), "{error}");
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

#[test]
fn markup_from_a_measured_service_is_shown_not_executed() {
    let f = staging(Scenario::default());
    let (_, mut smoke) = smoke_report(false);
    smoke.checks[0].verdict = Verdict::Fail;
    smoke.checks[0].evidence = "500 <script>alert(1)</script> | <img src=x>".into();
    f.save(
        "smoke",
        "staging",
        HEAD,
        Duration::minutes(1),
        Verdict::Fail,
        smoke,
    );
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

/// The 24-hour gate on a release deployed 20 h ago and watched for its first 10 hours, with
/// a panic in hour 3: the breach fails the gate and is listed; the hours since are gaps and
/// the rest is still ahead. The HTML page draws the same hours as an SVG.
#[test]
fn stability_timeline_shows_breaches_gaps_and_hours_ahead() {
    let f = staging(Scenario {
        unwatched: true,
        ..Default::default()
    });
    f.save(
        "deploy",
        "staging",
        HEAD,
        Duration::hours(20),
        Verdict::Pass,
        deploy_result(),
    );
    for hour in 0..10 {
        let ago = Duration::hours(20) - Duration::minutes(10) - Duration::hours(hour);
        let panic = (hour == 3).then_some(5);
        let (v, r) = watch_result(now() - ago, panic);
        f.save("watch", "staging", HEAD, ago, v, r);
    }
    let rendered = f.render("staging");
    let step = rendered
        .context
        .map
        .steps
        .iter()
        .find(|s| s.id == "stability_24h")
        .unwrap();
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
