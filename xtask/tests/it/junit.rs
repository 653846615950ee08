//! `--junit PATH`: the XML is parsed back with a real XML parser and must say, case by case,
//! what the task's own result says.

#[allow(dead_code)]
use crate::report_fixtures;

use std::process::Command;

use report_fixtures::{overlap_report, predeploy, smoke_report};

/// `(classname, name, failure message, skipped)` of every case, and the suite's counters.
struct Parsed {
    tests: usize,
    failures: usize,
    skipped: usize,
    cases: Vec<(String, String, Option<String>, bool)>,
}

fn parse(xml: &str) -> Parsed {
    let doc = roxmltree::Document::parse(xml).expect("well-formed XML");
    let suite = doc
        .descendants()
        .find(|n| n.has_tag_name("testsuite"))
        .expect("a testsuite");
    let number = |name: &str| suite.attribute(name).unwrap().parse::<usize>().unwrap();
    let cases = suite
        .children()
        .filter(|n| n.has_tag_name("testcase"))
        .map(|case| {
            let failure = case
                .children()
                .find(|n| n.has_tag_name("failure"))
                .map(|f| f.attribute("message").unwrap().to_string());
            let skipped = case.children().any(|n| n.has_tag_name("skipped"));
            (
                case.attribute("classname").unwrap().to_string(),
                case.attribute("name").unwrap().to_string(),
                failure,
                skipped,
            )
        })
        .collect();
    Parsed {
        tests: number("tests"),
        failures: number("failures"),
        skipped: number("skipped"),
        cases,
    }
}

#[test]
fn smoke_thresholds_are_cases_and_a_breach_is_a_failure_with_its_evidence() {
    let (_, passing) = smoke_report(false);
    let parsed = parse(&xtask::smoke::junit_suite("staging", &passing).to_xml());
    // 2 checks, 2 endpoints with 2 thresholds each.
    assert_eq!(parsed.tests, 6);
    assert_eq!(parsed.cases.len(), 6);
    assert_eq!(parsed.failures, 0);

    let (_, breached) = smoke_report(true);
    let parsed = parse(&xtask::smoke::junit_suite("staging", &breached).to_xml());
    assert_eq!(parsed.failures, 1);
    let failed: Vec<_> = parsed.cases.iter().filter(|c| c.2.is_some()).collect();
    assert_eq!(failed.len(), 1);
    let (class, name, message, _) = failed[0];
    assert_eq!(class, "smoke.thresholds");
    assert!(name.starts_with("accommodations "), "{name}");
    assert!(message.as_deref().unwrap().contains("4200"), "{message:?}");

    let mut unbenchmarked = passing.clone();
    unbenchmarked.benchmark = None;
    let parsed = parse(&xtask::smoke::junit_suite("staging", &unbenchmarked).to_xml());
    assert_eq!(parsed.skipped, 1);
}

#[test]
fn predeploy_checks_are_cases_with_their_findings_and_fix() {
    let (_, failing) = predeploy(false);
    let parsed = parse(&xtask::predeploy::junit_suite(&failing).to_xml());
    assert_eq!(parsed.tests, failing.checks.len());
    let failed: Vec<_> = failing
        .checks
        .iter()
        .filter(|c| c.verdict == xtask::verdict::Verdict::Fail)
        .collect();
    assert!(!failed.is_empty());
    assert_eq!(parsed.failures, failed.len());
    for check in failed {
        let case = parsed
            .cases
            .iter()
            .find(|c| c.1.starts_with(&format!("{}:", check.id)))
            .unwrap();
        let message = case.2.as_deref().unwrap();
        if let Some(fix) = &check.fix {
            assert!(message.contains(fix.as_str()), "{message}");
        }
    }
}

#[test]
fn an_overlap_violation_fails_its_round_with_the_problems() {
    let (_, violated) = overlap_report(true);
    let parsed = parse(&xtask::overlap::junit_suite("staging", &violated).to_xml());
    let failed: Vec<_> = parsed.cases.iter().filter(|c| c.2.is_some()).collect();
    assert!(
        failed.iter().all(|c| c.0 == "overlap.round2"),
        "{:?}",
        parsed.cases
    );
    let race = failed
        .iter()
        .find(|c| c.1.contains("exactly one of 20"))
        .expect("the race of round 2 failed");
    assert!(
        race.2.as_deref().unwrap().contains("double bookings"),
        "{:?}",
        race.2
    );
    assert_eq!(parsed.failures, failed.len());
    let (_, passing) = overlap_report(false);
    assert_eq!(
        parse(&xtask::overlap::junit_suite("staging", &passing).to_xml()).failures,
        0
    );
}

#[test]
fn markup_in_evidence_stays_text() {
    let (_, mut report) = smoke_report(false);
    report.checks[0].verdict = xtask::verdict::Verdict::Fail;
    report.checks[0].evidence[0].verdict = xtask::verdict::Verdict::Fail;
    report.checks[0].evidence[0].message = "500 <html>&\"'\u{1}</html>\nline two".into();
    let parsed = parse(&xtask::smoke::junit_suite("staging", &report).to_xml());
    let message = parsed.cases[0].2.as_deref().unwrap();
    assert!(
        message.starts_with("500 <html>&\"'</html>\nline two"),
        "{message}"
    );
}

#[test]
fn predeploy_writes_junit_where_asked() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("Cargo.toml"), "[workspace]\nmembers = []\n").unwrap();
    std::fs::create_dir_all(dir.path().join("ops")).unwrap();
    std::fs::write(
        dir.path().join("ops/deploy.toml"),
        "[environments.staging]\napp = \"app-staging\"\nurl = \"https://app-staging.fly.dev\"\n\
         env_file = \"env/.env.fly.staging\"\ntemplate = \"env/.env.fly.staging.template\"\n",
    )
    .unwrap();
    let path = dir.path().join("reports/predeploy.xml");
    let output = Command::new(env!("CARGO_BIN_EXE_xtask"))
        .args(["predeploy", "--junit"])
        .arg(&path)
        .current_dir(dir.path())
        .output()
        .unwrap();
    // An empty workspace fails predeploy: exit 1, and every failure is in the XML.
    assert_eq!(
        output.status.code(),
        Some(1),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let parsed = parse(&std::fs::read_to_string(&path).unwrap());
    assert!(parsed.failures > 0);
    assert_eq!(parsed.tests, parsed.cases.len());
    assert!(
        parsed.cases.iter().any(|c| c.1.starts_with("config")),
        "{:?}",
        parsed.cases
    );
}
