//! `deploy` and `rollback` announce to the alert channel (`ALERT_WEBHOOK_URL` of the env file,
//! a Slack-compatible webhook), here a receiver on loopback: "Going live at ..." before flyctl
//! deploys, the result after, "rolled back to ..."; a failing webhook is a warning that never
//! fails the task and never shows the URL.

use crate::deploy_support;
use crate::webhook_support;

use std::net::TcpListener;

use deploy_support::*;
use webhook_support::{HOOK_SECRET, receiver, texts};
use xtask::verdict::Verdict;

const IMG2: &str = "registry.fly.io/cabanas-test:deployment-02";
const IMG3: &str = "registry.fly.io/cabanas-test:deployment-03";

fn healthy(webhook: &str) -> (App, Fixture) {
    healthy_deploy(&format!("ALERT_WEBHOOK_URL={webhook}\n"))
}

fn deploy(fixture: &Fixture) -> (Verdict, String) {
    let gates = FakeGates::new(Verdict::Pass, &[Verdict::Pass]);
    let (verdict, _, out) = deploy_staging(fixture, &gates, &["--logs", "0s"]);
    (verdict, out)
}

#[test]
fn a_deploy_announces_going_live_and_its_result() {
    let (url, bodies) = receiver(200);
    let (app, fixture) = healthy(&url);
    let (verdict, out) = deploy(&fixture);
    assert_eq!(verdict, Verdict::Pass, "{out}");
    let head = fixture.head();
    let said = texts(&bodies);
    assert_eq!(
        said,
        [
            format!(
                "Going live at {} (staging): deploying commit {} to cabanas-test",
                app.url,
                &head[..12]
            ),
            format!("staging: the deploy of commit {} PASS", &head[..12]),
        ],
        "{out}"
    );
    assert!(!out.contains(HOOK_SECRET), "{out}");
    // Announced before flyctl deployed: the first post precedes the deploy's argv in the output.
    assert!(out.contains("announced: Going live at"), "{out}");
}

#[test]
fn a_failing_webhook_is_a_warning_that_neither_fails_the_deploy_nor_shows_the_url() {
    let (url, bodies) = receiver(500);
    let (_app, fixture) = healthy(&url);
    let (verdict, out) = deploy(&fixture);
    assert_eq!(verdict, Verdict::Pass, "{out}");
    assert_eq!(texts(&bodies).len(), 2);
    assert!(
        out.contains("WARN: could not announce to the channel (ALERT_WEBHOOK_URL in env/.env.fly.staging): the webhook answered HTTP 500"),
        "{out}"
    );
    // Nobody listening at all: the connection error names no URL either.
    let closed = {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        format!(
            "http://{}/services/{HOOK_SECRET}",
            listener.local_addr().unwrap()
        )
    };
    let (_app, fixture) = healthy(&closed);
    let (verdict, out) = deploy(&fixture);
    assert_eq!(verdict, Verdict::Pass, "{out}");
    assert!(out.contains("WARN: could not announce"), "{out}");
    assert!(!out.contains(HOOK_SECRET), "{out}");
    fixture.assert_no_secret(&out);
}

#[test]
fn a_rollback_announces_where_it_goes_back_to() {
    let (url, bodies) = receiver(200);
    let (_app, fixture) = healthy(&url);
    let before = releases_json(&[(3, "complete", IMG3), (2, "complete", IMG2)]);
    let after = releases_json(&[
        (4, "complete", IMG2),
        (3, "complete", IMG3),
        (2, "complete", IMG2),
    ]);
    fixture.respond("releases", Some(1), &before, "", 0);
    fixture.respond("releases", None, &after, "", 0);
    fixture.machines_on(Some(1), IMG3);
    fixture.machines_on(None, IMG2);
    let gates = FakeGates::new(Verdict::Pass, &[Verdict::Pass]);
    let (verdict, _, out) = rollback_staging(&fixture, &gates, &[]);
    let said = texts(&bodies);
    assert_eq!(said.len(), 2, "{out}");
    assert!(
        said[0].starts_with("Going live at") && said[0].contains(&format!("back to {IMG2}")),
        "{said:?}"
    );
    assert_eq!(verdict, Verdict::Pass, "{out}");
    assert_eq!(said[1], format!("staging: rolled back to {IMG2}"), "{out}");
}
