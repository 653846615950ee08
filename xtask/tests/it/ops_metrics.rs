//! Metrics and alerts as code: every metric the alert rules (`ops/alerts/*.yml`) and the
//! dashboard (`ops/grafana/*.json`) use is exported by the real service (started here and
//! scraped), and `promtool check rules` accepts the rules. promtool comes from Debian's
//! `prometheus` package (`.ci/run` installs it); without it the check is a loud skip
//! locally and a failure under `CI`.

use std::collections::BTreeSet;
use std::path::PathBuf;
use std::time::Duration;

use crate::support::service_binary;
use crate::support::workspace as repo;
use xtask::local_service::{LocalService, ServiceSettings};

fn files(dir: &str, extension: &str) -> Vec<PathBuf> {
    let mut found: Vec<PathBuf> = std::fs::read_dir(repo().path(dir))
        .unwrap_or_else(|e| panic!("reading {dir}: {e}"))
        .map(|entry| entry.unwrap().path())
        .filter(|path| path.extension().is_some_and(|e| e == extension))
        .collect();
    found.sort();
    assert!(!found.is_empty(), "no *.{extension} in {dir}");
    found
}

/// The `expr:` of every rule: inline, or a `|` block of deeper-indented lines.
fn rule_exprs(text: &str) -> Vec<String> {
    let lines: Vec<&str> = text.lines().collect();
    let mut exprs = Vec::new();
    for (i, line) in lines.iter().enumerate() {
        let trimmed = line.trim_start();
        let Some(value) = trimmed.strip_prefix("expr:") else {
            continue;
        };
        let value = value.trim();
        if value != "|" && value != ">" {
            exprs.push(value.trim_matches(['"', '\'']).to_string());
            continue;
        }
        let indent = line.len() - trimmed.len();
        let block: Vec<&str> = lines[i + 1..]
            .iter()
            .take_while(|l| l.trim().is_empty() || l.len() - l.trim_start().len() > indent)
            .copied()
            .collect();
        exprs.push(block.join("\n"));
    }
    exprs
}

/// Every `expr` string anywhere in a dashboard.
fn dashboard_exprs(value: &serde_json::Value, out: &mut Vec<String>) {
    match value {
        serde_json::Value::Object(map) => {
            for (key, value) in map {
                match (key.as_str(), value) {
                    ("expr", serde_json::Value::String(expr)) => out.push(expr.clone()),
                    _ => dashboard_exprs(value, out),
                }
            }
        }
        serde_json::Value::Array(items) => items.iter().for_each(|v| dashboard_exprs(v, out)),
        _ => {}
    }
}

/// Words of PromQL that are not metric names: binary operators and modifiers, and the
/// aggregation operators (which may be followed by `by (...)` rather than `(`).
const KEYWORDS: &[&str] = &[
    "and",
    "or",
    "unless",
    "bool",
    "offset",
    "by",
    "without",
    "on",
    "ignoring",
    "group_left",
    "group_right",
    "inf",
    "nan",
    "sum",
    "avg",
    "min",
    "max",
    "count",
    "group",
    "stddev",
    "stdvar",
    "topk",
    "bottomk",
    "quantile",
    "count_values",
];

/// The metric names a PromQL expression selects: identifiers outside label matchers,
/// strings, ranges and grouping clauses that are not functions, keywords or numbers.
fn metric_names(expr: &str) -> BTreeSet<String> {
    let chars: Vec<char> = expr.chars().collect();
    let mut names = BTreeSet::new();
    let mut i = 0;
    let mut skip_group = false;
    while i < chars.len() {
        let c = chars[i];
        let close = match c {
            '{' => Some('}'),
            '[' => Some(']'),
            '"' => Some('"'),
            '(' if skip_group => Some(')'),
            _ => None,
        };
        if let Some(close) = close {
            skip_group = false;
            i += 1;
            while i < chars.len() && chars[i] != close {
                i += 1;
            }
            i += 1;
            continue;
        }
        if c.is_ascii_digit() || (c == '.' && chars.get(i + 1).is_some_and(char::is_ascii_digit)) {
            while i < chars.len()
                && (chars[i].is_ascii_alphanumeric()
                    || chars[i] == '.'
                    || (matches!(chars[i], '+' | '-') && matches!(chars[i - 1], 'e' | 'E')))
            {
                i += 1;
            }
            continue;
        }
        if c.is_ascii_alphabetic() || c == '_' || c == ':' {
            let start = i;
            while i < chars.len()
                && (chars[i].is_ascii_alphanumeric() || matches!(chars[i], '_' | ':'))
            {
                i += 1;
            }
            let word: String = chars[start..i].iter().collect();
            let next = chars[i..].iter().find(|c| !c.is_whitespace());
            let lower = word.to_ascii_lowercase();
            if matches!(
                lower.as_str(),
                "by" | "without" | "on" | "ignoring" | "group_left" | "group_right"
            ) {
                skip_group = true;
            } else if next != Some(&'(') && !KEYWORDS.contains(&lower.as_str()) {
                names.insert(word);
            }
            continue;
        }
        i += 1;
    }
    names
}

#[test]
fn promql_names_are_found_outside_matchers_and_clauses() {
    let names = metric_names(
        "histogram_quantile(0.95, sum by (le) (rate(a_bucket{route=\"/x\",le=\"1\"}[5m]))) \
         / clamp_min(sum without (instance) (b_total offset 5m), 1e-9) > 0.01 and on (job) c",
    );
    let expected: BTreeSet<String> = ["a_bucket", "b_total", "c"].map(String::from).into();
    assert_eq!(names, expected);
}

/// Every metric name used by the rules and the dashboard.
fn used_metrics() -> BTreeSet<String> {
    let mut exprs = Vec::new();
    for path in files("ops/alerts", "yml") {
        exprs.extend(rule_exprs(&std::fs::read_to_string(&path).unwrap()));
    }
    for path in files("ops/grafana", "json") {
        let text = std::fs::read_to_string(&path).unwrap();
        let value: serde_json::Value = serde_json::from_str(&text)
            .unwrap_or_else(|e| panic!("{} is not JSON: {e}", path.display()));
        dashboard_exprs(&value, &mut exprs);
    }
    exprs.iter().flat_map(|e| metric_names(e)).collect()
}

/// Series Prometheus itself writes for each scrape, not the service: the service-down rules
/// use them.
const SCRAPE_SERIES: &[&str] = &["up"];

/// Gauges the service writes per imported calendar feed (label `feed`), so a fresh service
/// with no feed has none; `backend/tests/it/calendar.rs` shows them after a sync.
const PER_FEED_SERIES: &[&str] = &["calendar_feed_last_success_timestamp_seconds"];

#[test]
fn every_metric_in_the_rules_and_dashboard_is_exported_by_the_service() {
    let used = used_metrics();
    for expected in [
        "http_requests_total",
        "http_request_duration_seconds_bucket",
        "reservations_date_overlap_total",
        "prereservations_expired_total",
    ] {
        assert!(
            used.contains(expected),
            "{expected} not found in the rules: {used:?}"
        );
    }

    let dir = tempfile::tempdir().unwrap();
    let settings = ServiceSettings {
        binary: service_binary(),
        database_url: format!(
            "sqlite:{}?mode=rwc",
            dir.path().join("cabanas.db").display()
        ),
        jwt_secret: "ops-metrics-test-secret-0123456789-abcdef".to_string(),
        admin_email: "ops@example.com".to_string(),
        log_file: dir.path().join("service.log"),
    };
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let service = {
        let _context = runtime.enter();
        LocalService::start(&settings, Duration::from_secs(60)).expect("service starts")
    };
    let url = format!("{}/metrics", service.url());
    let scrape = runtime
        .block_on(async { reqwest::get(&url).await?.text().await })
        .expect("scraping /metrics");
    service.stop();
    let exported: BTreeSet<&str> = scrape
        .lines()
        .filter(|line| !line.starts_with('#') && !line.trim().is_empty())
        .filter_map(|line| line.split(['{', ' ']).next())
        .collect();
    let missing: Vec<&String> = used
        .iter()
        .filter(|n| {
            !exported.contains(n.as_str())
                && !SCRAPE_SERIES.contains(&n.as_str())
                && !PER_FEED_SERIES.contains(&n.as_str())
        })
        .collect();
    assert!(
        missing.is_empty(),
        "used in ops/alerts or ops/grafana but not exported by the service: {missing:?}\n\
         exported: {exported:?}"
    );
}

#[test]
fn promtool_accepts_the_alert_rules() {
    let Ok(promtool) = which("promtool") else {
        let message = "promtool not found: install Debian's `prometheus` package \
                       (apt-get install prometheus) to check ops/alerts/*.yml";
        crate::support::skip_or_fail_in_ci("promtool_accepts_the_alert_rules", message);
        return;
    };
    let output = std::process::Command::new(promtool)
        .arg("check")
        .arg("rules")
        .args(files("ops/alerts", "yml"))
        .output()
        .expect("running promtool");
    assert!(
        output.status.success(),
        "promtool check rules failed:\n{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
}

fn which(program: &str) -> Result<PathBuf, ()> {
    std::env::var_os("PATH")
        .iter()
        .flat_map(std::env::split_paths)
        .map(|dir| dir.join(program))
        .find(|path| path.is_file())
        .ok_or(())
}
