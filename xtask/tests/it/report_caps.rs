//! A report copies at most a bounded amount of text from any record (issue #17 item 11).

#[allow(dead_code)]
use crate::report_fixtures;

use chrono::Duration;
use report_fixtures::*;
use xtask::verdict::Verdict;

#[test]
fn a_huge_record_text_is_cut_in_the_report_with_a_note() {
    let fixture = staging(Scenario::default());
    let (_, mut smoke) = smoke_report(false);
    smoke.checks[0].verdict = Verdict::Fail;
    smoke.checks[0].evidence[0].message = format!("503 {}", "x".repeat(2_000_000));
    smoke.verdict = Verdict::Fail;
    fixture.save(
        "smoke",
        "staging",
        HEAD,
        Duration::minutes(1),
        Verdict::Fail,
        smoke,
    );
    let rendered = fixture.render("staging");
    assert!(
        rendered.markdown.len() < 200_000,
        "the report copied {} bytes",
        rendered.markdown.len()
    );
    assert!(
        rendered.markdown.contains("[cut: "),
        "no note says the text was cut"
    );
}
