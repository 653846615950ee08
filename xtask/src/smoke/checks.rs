//! Phase 1: the service answers its health, readiness, metrics and read-path routes as the
//! service contract says, and its webhooks refuse unsigned requests. Each check is data with its evidence; all run, then the verdict.

use std::time::{Duration, Instant};

use anyhow::bail;
use reqwest::Client;

use crate::check::CheckResult;
use crate::config::Target;
use crate::verdict::Verdict;

/// The health route.
pub const HEALTHZ_PATH: &str = "/api/v1/healthz";
/// The readiness route (Fly's checks point here).
pub const READYZ_PATH: &str = "/api/v1/readyz";
/// The Prometheus route.
pub const METRICS_PATH: &str = "/metrics";
/// The read path checked for a JSON array.
pub const ACCOMMODATIONS_PATH: &str = "/api/v1/reservations/accommodations";

/// The webhook routes: each must refuse a request without a signature (401).
pub const WEBHOOK_PATHS: [&str; 2] = ["/api/v1/webhooks/mercadopago", "/api/v1/webhooks/whatsapp"];

/// Metric families the service must expose on `/metrics`.
pub const EXPECTED_METRICS: &[&str] = &[
    "http_requests_total",
    "http_request_duration_seconds",
    "reservations_created_total",
    "reservations_date_overlap_total",
    "reservations_confirmed_total",
    "reservations_cancelled_total",
    "prereservations_expired_total",
    "outbox_pending",
    "outbox_sends_total",
];

/// The OpenAPI document the answers are checked against.
pub const OPENAPI_PATH: &str = "/api/v1/openapi.json";

/// What one GET returned, or why it did not.
#[derive(Clone)]
enum Fetched {
    Answer {
        status: u16,
        content_type: String,
        body: String,
    },
    Failed {
        reason: String,
        connect: bool,
    },
}

impl Fetched {
    /// No answer at all: the request timed out.
    fn timed_out(&self) -> bool {
        matches!(self, Fetched::Failed { reason, .. } if reason.starts_with("timed out"))
    }
}

async fn fetch(client: &Client, url: &str) -> Fetched {
    read_answer(client.get(url).send().await).await
}

/// POSTs a notification-shaped JSON body with no signature header.
async fn post_unsigned(client: &Client, url: &str) -> Fetched {
    let request = client
        .post(format!("{url}?data.id=smoke-check&type=payment"))
        .header(reqwest::header::CONTENT_TYPE, "application/json")
        .body(r#"{"type":"payment","data":{"id":"smoke-check"},"entry":[]}"#);
    read_answer(request.send().await).await
}

async fn read_answer(sent: Result<reqwest::Response, reqwest::Error>) -> Fetched {
    let response = match sent {
        Ok(response) => response,
        Err(error) => return failed(&error),
    };
    let status = response.status().as_u16();
    let content_type = response
        .headers()
        .get(reqwest::header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .to_string();
    match response.text().await {
        Ok(body) => Fetched::Answer {
            status,
            content_type,
            body,
        },
        Err(error) => failed(&error),
    }
}

fn failed(error: &reqwest::Error) -> Fetched {
    let kind = if error.is_timeout() {
        "timed out"
    } else if error.is_connect() {
        "could not connect"
    } else {
        "connection failed"
    };
    Fetched::Failed {
        reason: format!("{kind}: {}", error_chain(error)),
        connect: error.is_connect() && !error.is_timeout(),
    }
}

/// The checks' outcomes, and whether the target left every one of their requests unanswered.
pub struct CheckRun {
    /// One outcome per check, in the order they are shown.
    pub outcomes: Vec<CheckResult>,
    /// Every request the checks made timed out: the target accepts connections but does not
    /// answer, so a benchmark would only measure timeouts.
    pub silent: bool,
}

/// The error with its sources (`connection refused` lives several levels down).
fn error_chain(error: &dyn std::error::Error) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        let cause_text = cause.to_string();
        if !text.contains(&cause_text) {
            text.push_str(": ");
            text.push_str(&cause_text);
        }
        source = cause.source();
    }
    text
}

/// Runs the six checks. A connection failure on the first one means the target cannot be
/// reached: that is an error (exit 2) naming the URL and the reason, not a failed check.
pub async fn run_checks(client: &Client, target: &Target) -> anyhow::Result<CheckRun> {
    let healthz_url = target.endpoint(HEALTHZ_PATH);
    let healthz = fetch(client, &healthz_url).await;
    if let Fetched::Failed {
        reason,
        connect: true,
    } = &healthz
    {
        bail!(
            "cannot reach {healthz_url}: {reason}. Is the service running at {}?",
            target.url
        );
    }
    let readyz = fetch(client, &target.endpoint(READYZ_PATH)).await;
    let accommodations = fetch(client, &target.endpoint(ACCOMMODATIONS_PATH)).await;
    let mercadopago = post_unsigned(client, &target.endpoint(WEBHOOK_PATHS[0])).await;
    let whatsapp = post_unsigned(client, &target.endpoint(WEBHOOK_PATHS[1])).await;
    let document = fetch(client, &target.endpoint(OPENAPI_PATH)).await;
    let metrics = fetch(client, &target.endpoint(METRICS_PATH)).await;
    let silent = [
        &healthz,
        &readyz,
        &accommodations,
        &mercadopago,
        &whatsapp,
        &document,
        &metrics,
    ]
    .iter()
    .all(|fetched| fetched.timed_out());
    let contract = check_contract(
        document,
        &[
            ("GET", HEALTHZ_PATH, &healthz),
            ("GET", READYZ_PATH, &readyz),
            ("GET", ACCOMMODATIONS_PATH, &accommodations),
            ("POST", WEBHOOK_PATHS[0], &mercadopago),
            ("POST", WEBHOOK_PATHS[1], &whatsapp),
        ],
    );
    let outcomes = vec![
        check_healthz(healthz),
        check_readyz(readyz),
        check_metrics(metrics),
        check_accommodations(accommodations),
        check_webhooks(vec![
            (WEBHOOK_PATHS[0], mercadopago),
            (WEBHOOK_PATHS[1], whatsapp),
        ]),
        contract,
    ];
    Ok(CheckRun { outcomes, silent })
}

/// The statuses and JSON bodies of the other checks' answers match the service's own OpenAPI
/// document. Answers that could not be fetched are left to their own checks.
fn check_contract(document: Fetched, answers: &[(&str, &str, &Fetched)]) -> CheckResult {
    let verifies = format!(
        "the answers checked above have the statuses and bodies documented at {OPENAPI_PATH}"
    );
    let parsed = match document {
        Fetched::Failed { reason, .. } => Err(reason),
        Fetched::Answer {
            status: 200, body, ..
        } => serde_json::from_str::<serde_json::Value>(&body)
            .map_err(|e| format!("200 but not JSON ({e}): {}", excerpt(&body))),
        Fetched::Answer { status, body, .. } => Err(format!("{status}: {}", excerpt(&body))),
    };
    let document = parsed.and_then(|document| {
        if document["openapi"]
            .as_str()
            .is_some_and(|v| v.starts_with("3.1"))
        {
            Ok(document)
        } else {
            Err(format!(
                "not an OpenAPI 3.1 document (openapi: {})",
                document["openapi"]
            ))
        }
    });
    let document = match document {
        Ok(document) => document,
        Err(error) => {
            return outcome(
                "contract",
                verifies,
                Verdict::Fail,
                format!("GET {OPENAPI_PATH}: {error}"),
                Some("deploy a build that serves its OpenAPI 3.1 document"),
            );
        }
    };
    let mut problems = Vec::new();
    let mut checked = 0;
    for (method, path, fetched) in answers {
        let Fetched::Answer { status, body, .. } = fetched else {
            continue;
        };
        checked += 1;
        match super::contract::response_schema(&document, method, path, *status) {
            Err(problem) => problems.push(problem),
            Ok(None) => {}
            Ok(Some(schema)) => match serde_json::from_str::<serde_json::Value>(body) {
                Err(_) => problems.push(format!(
                    "{method} {path} {status}: the document promises JSON, got {}",
                    excerpt(body)
                )),
                Ok(value) => {
                    for problem in super::contract::validate(&document, schema, &value) {
                        problems.push(format!("{method} {path} {status}: {problem}"));
                    }
                }
            },
        }
    }
    let (verdict, evidence) = if problems.is_empty() {
        (
            Verdict::Pass,
            format!("{checked} answers match the document"),
        )
    } else {
        (Verdict::Fail, problems.join("; "))
    };
    outcome(
        "contract",
        verifies,
        verdict,
        evidence,
        Some(
            "the service answers differently from its own document: fix the handler or its #[utoipa::path]",
        ),
    )
}

fn outcome(
    name: &str,
    verifies: String,
    verdict: Verdict,
    evidence: String,
    fix: Option<&str>,
) -> CheckResult {
    let fix = if verdict == Verdict::Pass {
        None
    } else {
        fix.map(String::from)
    };
    CheckResult::observed(name, verifies, verdict, evidence, fix)
}

fn excerpt(body: &str) -> String {
    let flat: String = body.split_whitespace().collect::<Vec<_>>().join(" ");
    match flat.char_indices().nth(120) {
        Some((cut, _)) => format!("{}...", &flat[..cut]),
        None => flat,
    }
}

fn check_healthz(fetched: Fetched) -> CheckResult {
    let verifies = format!("GET {HEALTHZ_PATH} answers 200 with status healthy");
    let fix =
        Some("read the service logs (fly logs); healthz reports each dependency under `checks`");
    let (verdict, evidence) = match fetched {
        Fetched::Failed { reason, .. } => (Verdict::Fail, reason),
        Fetched::Answer { status, body, .. } => {
            let parsed: Option<serde_json::Value> = serde_json::from_str(&body).ok();
            let health = parsed
                .as_ref()
                .and_then(|v| v.get("status"))
                .and_then(|s| s.as_str());
            match (status, health) {
                (200, Some("healthy")) => (
                    Verdict::Pass,
                    format!("200, status healthy: {}", excerpt(&body)),
                ),
                (200, Some("degraded")) => (
                    Verdict::Warn,
                    format!("200, status degraded: {}", excerpt(&body)),
                ),
                (status, Some(health)) => (
                    Verdict::Fail,
                    format!("{status}, status {health}: {}", excerpt(&body)),
                ),
                (status, None) => (
                    Verdict::Fail,
                    format!("{status}, no JSON `status` field: {}", excerpt(&body)),
                ),
            }
        }
    };
    outcome("healthz", verifies, verdict, evidence, fix)
}

fn check_readyz(fetched: Fetched) -> CheckResult {
    let verifies = format!("GET {READYZ_PATH} answers 200");
    let (verdict, evidence) = match fetched {
        Fetched::Failed { reason, .. } => (Verdict::Fail, reason),
        Fetched::Answer {
            status: 200, body, ..
        } => (Verdict::Pass, format!("200: {}", excerpt(&body))),
        Fetched::Answer { status, body, .. } => {
            (Verdict::Fail, format!("{status}: {}", excerpt(&body)))
        }
    };
    let fix = Some(
        "readyz needs the database and applied migrations; pass --wait 60s right after a deploy",
    );
    outcome("readyz", verifies, verdict, evidence, fix)
}

fn check_metrics(fetched: Fetched) -> CheckResult {
    let verifies =
        format!("GET {METRICS_PATH} answers 200 with Prometheus text naming the service's metrics");
    let fix = Some(
        "the service must register every metric at start-up, so each is exported even at zero",
    );
    let (verdict, evidence) = match fetched {
        Fetched::Failed { reason, .. } => (Verdict::Fail, reason),
        Fetched::Answer { status, body, .. } if status != 200 => {
            (Verdict::Fail, format!("{status}: {}", excerpt(&body)))
        }
        Fetched::Answer {
            content_type, body, ..
        } => {
            let missing = missing_metrics(&body, EXPECTED_METRICS);
            if !is_prometheus_text(&content_type, &body) {
                (
                    Verdict::Fail,
                    format!(
                        "200 but not Prometheus text (content-type `{content_type}`): {}",
                        excerpt(&body)
                    ),
                )
            } else if !missing.is_empty() {
                (
                    Verdict::Fail,
                    format!(
                        "200, missing {} of {}: {}",
                        missing.len(),
                        EXPECTED_METRICS.len(),
                        missing.join(", ")
                    ),
                )
            } else {
                (
                    Verdict::Pass,
                    format!(
                        "200, {content_type}, all {} expected metrics present",
                        EXPECTED_METRICS.len()
                    ),
                )
            }
        }
    };
    outcome("metrics", verifies, verdict, evidence, fix)
}

fn check_accommodations(fetched: Fetched) -> CheckResult {
    let verifies = format!("GET {ACCOMMODATIONS_PATH} answers 200 with a JSON array");
    let (verdict, evidence) = match fetched {
        Fetched::Failed { reason, .. } => (Verdict::Fail, reason),
        Fetched::Answer { status, body, .. } => {
            match (status, serde_json::from_str::<serde_json::Value>(&body)) {
                (200, Ok(serde_json::Value::Array(items))) => (
                    Verdict::Pass,
                    format!("200, JSON array of {} items", items.len()),
                ),
                (200, _) => (
                    Verdict::Fail,
                    format!("200 but not a JSON array: {}", excerpt(&body)),
                ),
                (status, _) => (Verdict::Fail, format!("{status}: {}", excerpt(&body))),
            }
        }
    };
    let fix = Some("check the base URL and the database (are the accommodations seeded?)");
    outcome("accommodations", verifies, verdict, evidence, fix)
}

/// Each webhook must answer 401 to an unsigned POST. A 2xx means anyone can forge payment
/// confirmations or messages; anything else means the route is missing or broken.
fn check_webhooks(answers: Vec<(&str, Fetched)>) -> CheckResult {
    let verifies = format!(
        "POST {} without a signature answers 401",
        WEBHOOK_PATHS.join(" and ")
    );
    let mut verdict = Verdict::Pass;
    let mut evidence = Vec::new();
    let mut fix = "deploy a build that serves the webhooks (issue #15) and check the route";
    for (path, fetched) in answers {
        match fetched {
            Fetched::Failed { reason, .. } => {
                verdict = Verdict::Fail;
                evidence.push(format!("{path}: {reason}"));
            }
            Fetched::Answer { status: 401, .. } => evidence.push(format!("{path}: 401")),
            Fetched::Answer { status, body, .. } if (200..300).contains(&status) => {
                verdict = Verdict::Fail;
                fix = "signature checking is off: the service must refuse unsigned webhooks \
                       (check MERCADOPAGO_WEBHOOK_SECRET / WHATSAPP_APP_SECRET handling)";
                evidence.push(format!(
                    "{path}: {status} to an unsigned request, signature checking is off: {}",
                    excerpt(&body)
                ));
            }
            Fetched::Answer { status, body, .. } => {
                verdict = Verdict::Fail;
                evidence.push(format!(
                    "{path}: {status}, expected 401: {}",
                    excerpt(&body)
                ));
            }
        }
    }
    outcome(
        "webhooks",
        verifies,
        verdict,
        evidence.join("; "),
        Some(fix),
    )
}

/// Whether a body looks like Prometheus text exposition: a text content type, and every sample
/// line ends in a number.
pub fn is_prometheus_text(content_type: &str, body: &str) -> bool {
    let text_type = content_type.starts_with("text/plain")
        || content_type.starts_with("application/openmetrics-text");
    let samples_ok = body
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .all(|line| {
            let after_labels = line.rfind('}').map_or(line, |i| &line[i + 1..]);
            let mut fields = after_labels.split_whitespace();
            if !line.contains('}') {
                fields.next(); // the metric name
            }
            fields.next().is_some_and(|v| v.parse::<f64>().is_ok())
        });
    text_type && samples_ok
}

/// The expected metric families that no sample or `# TYPE` line of `body` names.
pub fn missing_metrics<'a>(body: &str, expected: &[&'a str]) -> Vec<&'a str> {
    expected
        .iter()
        .copied()
        .filter(|name| {
            !body.lines().any(|line| {
                let line = line.trim();
                let sample = line.strip_prefix(name).is_some_and(|rest| {
                    rest.starts_with(['{', ' '])
                        || ["_bucket", "_sum", "_count"]
                            .iter()
                            .any(|s| rest.starts_with(s))
                });
                let declared = line
                    .strip_prefix("# TYPE ")
                    .and_then(|r| r.strip_prefix(name))
                    .is_some_and(|r| r.starts_with(' '));
                sample || declared
            })
        })
        .collect()
}

/// Polls readiness until it answers 200 or `wait` runs out, saying on stderr what it waits for.
pub async fn wait_ready(client: &Client, target: &Target, wait: Duration) -> CheckResult {
    let url = target.endpoint(READYZ_PATH);
    let verifies = format!(
        "GET {READYZ_PATH} answers 200 within {}",
        human_duration(wait)
    );
    let started = Instant::now();
    let deadline = started + wait;
    let mut attempts = 0u32;
    loop {
        attempts += 1;
        let last = match fetch(client, &url).await {
            Fetched::Answer { status: 200, .. } => {
                let evidence = format!(
                    "ready after {} ({attempts} attempts)",
                    human_duration(started.elapsed())
                );
                return outcome("wait", verifies, Verdict::Pass, evidence, None);
            }
            Fetched::Answer { status, body, .. } => format!("{status}: {}", excerpt(&body)),
            Fetched::Failed { reason, .. } => reason,
        };
        let now = Instant::now();
        if now >= deadline {
            let evidence = format!(
                "not ready after {} ({attempts} attempts); last: {last}",
                human_duration(wait)
            );
            let fix = Some(
                "look at the deploy (fly status, fly logs); readyz needs the database and migrations",
            );
            return outcome("wait", verifies, Verdict::Fail, evidence, fix);
        }
        eprintln!(
            "waiting for {url} to be ready ({} left); last: {last}",
            human_duration(deadline - now)
        );
        tokio::time::sleep((deadline - now).min(Duration::from_secs(1))).await;
    }
}

/// `1.5s`, `250ms`, `2m5s`.
pub fn human_duration(d: Duration) -> String {
    let ms = d.as_millis();
    if ms < 1000 {
        format!("{ms}ms")
    } else if ms < 60_000 {
        format!("{:.1}s", d.as_secs_f64())
    } else {
        format!("{}m{}s", ms / 60_000, (ms % 60_000) / 1000)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const METRICS: &str = "# TYPE http_requests_total counter\nhttp_requests_total{path=\"/x\",status=\"200\"} 3\n\
        http_request_duration_seconds_bucket{le=\"+Inf\"} 3\nreservations_created_total 0\n";

    #[test]
    fn metric_names_are_matched_as_whole_families() {
        let missing = missing_metrics(METRICS, EXPECTED_METRICS);
        assert!(!missing.contains(&"http_requests_total"));
        assert!(!missing.contains(&"http_request_duration_seconds"));
        assert!(!missing.contains(&"reservations_created_total"));
        assert!(missing.contains(&"reservations_cancelled_total"));
        assert_eq!(
            missing_metrics("http_requests_total_extra 1\n", &["http_requests_total"]),
            ["http_requests_total"]
        );
    }

    #[test]
    fn prometheus_text_is_recognised() {
        assert!(is_prometheus_text("text/plain; version=0.0.4", METRICS));
        assert!(!is_prometheus_text("application/json", METRICS));
        assert!(!is_prometheus_text("text/plain", "<html>not found</html>"));
    }

    #[test]
    fn healthz_degraded_warns_and_unhealthy_fails() {
        let answer = |status, body: &str| Fetched::Answer {
            status,
            content_type: String::new(),
            body: body.into(),
        };
        assert_eq!(
            check_healthz(answer(200, r#"{"status":"healthy"}"#)).verdict,
            Verdict::Pass
        );
        assert_eq!(
            check_healthz(answer(200, r#"{"status":"degraded"}"#)).verdict,
            Verdict::Warn
        );
        assert_eq!(
            check_healthz(answer(503, r#"{"status":"unhealthy"}"#)).verdict,
            Verdict::Fail
        );
        assert_eq!(check_healthz(answer(200, "ok")).verdict, Verdict::Fail);
    }
}
