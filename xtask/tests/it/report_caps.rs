//! A report copies at most a bounded amount of text from any record (issue #17 item 11).

#[allow(dead_code)]
use crate::report_fixtures;

use report_fixtures::*;

#[test]
fn a_huge_record_text_is_cut_in_the_report_with_a_note() {
    let fixture = staging(Scenario::default());
    fixture.save_failed_smoke("staging", |check| {
        check.evidence[0].message = format!("503 {}", "x".repeat(2_000_000));
    });
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
