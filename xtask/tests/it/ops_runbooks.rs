//! Every alert leads to a runbook section that exists: each rule of `ops/alerts/*.yml` carries
//! a `runbook_url` annotation (a repository path with a `#anchor`), the file exists and has a
//! heading with that GitHub anchor. The runbooks' own relative links are held to the same
//! rule, and each scenario the decision map and the alerts name has its section.

use std::collections::BTreeSet;

use crate::support::workspace as repo;
use pulldown_cmark::{Event, HeadingLevel, Parser, Tag, TagEnd};

/// The anchor GitHub gives a heading: lower case, every character that is not a letter, a
/// digit, a space, `-` or `_` dropped, spaces turned into `-`.
fn github_anchor(heading: &str) -> String {
    heading
        .trim()
        .to_lowercase()
        .chars()
        .filter(|c| c.is_alphanumeric() || matches!(c, ' ' | '-' | '_'))
        .map(|c| if c == ' ' { '-' } else { c })
        .collect()
}

/// The anchors of a Markdown text's headings; a repeated heading gets `-1`, `-2`, ... as on
/// GitHub.
fn anchors(markdown: &str) -> BTreeSet<String> {
    let mut found = BTreeSet::new();
    let mut heading: Option<String> = None;
    for event in Parser::new(markdown) {
        match event {
            Event::Start(Tag::Heading { .. }) => heading = Some(String::new()),
            Event::Text(text) | Event::Code(text) => {
                if let Some(h) = heading.as_mut() {
                    h.push_str(&text);
                }
            }
            Event::End(TagEnd::Heading(_)) => {
                let base = github_anchor(&heading.take().unwrap_or_default());
                let mut anchor = base.clone();
                let mut n = 0;
                while found.contains(&anchor) {
                    n += 1;
                    anchor = format!("{base}-{n}");
                }
                found.insert(anchor);
            }
            _ => {}
        }
    }
    found
}

/// The second-level headings of a Markdown text (the runbooks' scenarios).
fn sections(markdown: &str) -> Vec<String> {
    let mut found = Vec::new();
    let mut current: Option<String> = None;
    for event in Parser::new(markdown) {
        match event {
            Event::Start(Tag::Heading {
                level: HeadingLevel::H2,
                ..
            }) => current = Some(String::new()),
            Event::Text(text) => {
                if let Some(c) = current.as_mut() {
                    c.push_str(&text);
                }
            }
            Event::End(TagEnd::Heading(HeadingLevel::H2)) => found.extend(current.take()),
            _ => {}
        }
    }
    found
}

/// `(alert, runbook_url)` for every rule of a rules file, `None` when a rule has none.
fn rule_runbooks(rules: &str) -> Vec<(String, Option<String>)> {
    let mut found: Vec<(String, Option<String>)> = Vec::new();
    for line in rules.lines() {
        let trimmed = line.trim_start().trim_start_matches("- ");
        if let Some(name) = trimmed.strip_prefix("alert:") {
            found.push((name.trim().to_string(), None));
        } else if let Some(url) = trimmed.strip_prefix("runbook_url:")
            && let Some(last) = found.last_mut()
        {
            last.1 = Some(url.trim().trim_matches(['"', '\'']).to_string());
        }
    }
    found
}

/// What is wrong with a link `target` (`path#anchor`) written in the file `from` (`""`: a
/// path from the repository root), reading files through `read`.
fn link_problem(from: &str, target: &str, read: &dyn Fn(&str) -> Option<String>) -> Option<String> {
    let Some((path, anchor)) = target.split_once('#') else {
        return Some(format!("`{target}` has no #anchor naming the section"));
    };
    let path = match (path, from.rsplit_once('/')) {
        ("", _) => from.to_string(),
        (path, Some((dir, _))) => format!("{dir}/{path}"),
        (path, None) => path.to_string(),
    };
    let Some(text) = read(&path) else {
        return Some(format!("`{target}`: {path} does not exist"));
    };
    if anchors(&text).contains(anchor) {
        None
    } else {
        Some(format!(
            "`{target}`: {path} has no heading with anchor #{anchor}"
        ))
    }
}

/// Problems of every rule in `rules`: a missing `runbook_url`, or one that leads nowhere.
fn rule_problems(rules: &str, read: &dyn Fn(&str) -> Option<String>) -> Vec<String> {
    let mut problems = Vec::new();
    for (alert, url) in rule_runbooks(rules) {
        match url {
            None => problems.push(format!(
                "{alert} has no runbook_url annotation: add one leading to its section in ops/runbooks/"
            )),
            Some(url) => {
                if let Some(problem) = link_problem("", &url, read) {
                    problems.push(format!("{alert}: {problem}"));
                }
            }
        }
    }
    problems
}

fn read_repo(path: &str) -> Option<String> {
    std::fs::read_to_string(repo().path(path)).ok()
}

fn alert_files() -> Vec<String> {
    let mut files: Vec<String> = std::fs::read_dir(repo().path("ops/alerts"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "yml"))
        .map(|p| format!("ops/alerts/{}", p.file_name().unwrap().to_string_lossy()))
        .collect();
    files.sort();
    assert!(!files.is_empty(), "no ops/alerts/*.yml");
    files
}

#[test]
fn github_anchors_drop_punctuation_and_number_repeats() {
    assert_eq!(github_anchor("Service down"), "service-down");
    assert_eq!(
        github_anchor("Connection left in a transaction"),
        "connection-left-in-a-transaction"
    );
    assert_eq!(github_anchor("What's new? (v2.1)"), "whats-new-v21");
    assert_eq!(github_anchor("`up` == 0"), "up--0");
    let found = anchors("# A\n\n## Service down\n\n## Service down\n\n## `logs`, masked\n");
    let expected: BTreeSet<String> = ["a", "service-down", "service-down-1", "logs-masked"]
        .map(String::from)
        .into();
    assert_eq!(found, expected);
}

#[test]
fn a_rule_without_runbook_or_with_a_dead_anchor_is_a_problem() {
    let runbook = "# Runbook\n\n## Service down\n";
    let read = |path: &str| (path == "ops/runbooks/R.md").then(|| runbook.to_string());
    let rules = "groups:\n  - name: g\n    rules:\n      - alert: Good\n        annotations:\n          \
                 runbook_url: \"ops/runbooks/R.md#service-down\"\n      - alert: Missing\n        \
                 annotations:\n          summary: x\n      - alert: DeadAnchor\n        \
                 annotations:\n          runbook_url: ops/runbooks/R.md#servce-down\n      \
                 - alert: NoFile\n        annotations:\n          runbook_url: ops/runbooks/X.md#a\n      \
                 - alert: NoAnchor\n        annotations:\n          runbook_url: ops/runbooks/R.md\n";
    let problems = rule_problems(rules, &read);
    assert_eq!(problems.len(), 4, "{problems:#?}");
    for (problem, alert) in problems
        .iter()
        .zip(["Missing", "DeadAnchor", "NoFile", "NoAnchor"])
    {
        assert!(problem.starts_with(alert), "{problem}");
    }
}

#[test]
fn every_alert_rule_leads_to_a_runbook_section() {
    let mut problems = Vec::new();
    let mut rules = 0;
    for file in alert_files() {
        let text = read_repo(&file).unwrap();
        rules += rule_runbooks(&text).len();
        problems.extend(
            rule_problems(&text, &read_repo)
                .into_iter()
                .map(|p| format!("{file}: {p}")),
        );
    }
    assert!(rules > 0, "no alert rules found");
    assert!(problems.is_empty(), "{}", problems.join("\n"));
}

#[test]
fn the_runbooks_links_lead_to_sections_that_exist() {
    let mut problems = Vec::new();
    for file in [
        "ops/runbooks/INCIDENT_RESPONSE.md",
        "ops/runbooks/DISASTER_RECOVERY.md",
    ] {
        let text = read_repo(file).unwrap_or_else(|| panic!("{file} is missing"));
        for event in Parser::new(&text) {
            if let Event::Start(Tag::Link { dest_url, .. }) = event
                && !dest_url.contains("://")
                && dest_url.contains('#')
                && let Some(problem) = link_problem(file, &dest_url, &read_repo)
            {
                problems.push(format!("{file}: {problem}"));
            }
        }
    }
    assert!(problems.is_empty(), "{}", problems.join("\n"));
}

#[test]
fn every_named_scenario_has_its_section() {
    let incident = sections(&read_repo("ops/runbooks/INCIDENT_RESPONSE.md").unwrap());
    let disaster = sections(&read_repo("ops/runbooks/DISASTER_RECOVERY.md").unwrap());
    let expected = [
        (&incident, "Service down"),
        (&incident, "Error rate"),
        (&incident, "Latency"),
        (&incident, "Failed deploy"),
        (&incident, "Stuck deploy"),
        (&incident, "Database unreachable"),
        (&incident, "Payment webhooks failing"),
        (&incident, "Connection left in a transaction"),
        (&incident, "Deposit reversed after confirm"),
        (&disaster, "Database corrupt or lost"),
        (&disaster, "Secret leaked"),
    ];
    let missing: Vec<&str> = expected
        .iter()
        .filter(|(found, name)| !found.iter().any(|s| s == name))
        .map(|(_, name)| *name)
        .collect();
    assert!(missing.is_empty(), "runbook sections missing: {missing:?}");
    let map = read_repo("ops/DEPLOYMENT_DECISION_MAP.md").unwrap();
    for runbook in [
        "runbooks/INCIDENT_RESPONSE.md",
        "runbooks/DISASTER_RECOVERY.md",
    ] {
        assert!(
            map.contains(runbook),
            "the decision map does not link {runbook}"
        );
    }
}
