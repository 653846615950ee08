//! `GET /api/v1/healthz`, `GET /api/v1/readyz`, `GET /metrics`.

use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::Serialize;
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::error::ApiError;
use crate::error::ErrorBody;
use crate::http::state::AppState;

/// Health, readiness and metrics routes.
pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(healthz))
        .routes(routes!(readyz))
        .routes(routes!(metrics))
}

/// The body of `healthz` (documentation only; the handler builds it as JSON).
#[derive(Serialize, ToSchema)]
struct HealthReport {
    /// `healthy`, `degraded` (slow database) or `unhealthy`.
    #[schema(pattern = "^(healthy|degraded|unhealthy)$")]
    status: String,
    checks: HealthChecks,
}

#[derive(Serialize, ToSchema)]
struct HealthChecks {
    database: DatabaseCheck,
}

#[derive(Serialize, ToSchema)]
struct DatabaseCheck {
    /// `healthy`, `degraded` or `unhealthy`.
    status: String,
    /// How long the probe took.
    latency_ms: u64,
    /// `postgres` or `sqlite`.
    backend: String,
    /// The age of the shared probe result.
    checked_ms_ago: u64,
    /// Why the database is unhealthy.
    #[serde(skip_serializing_if = "Option::is_none")]
    error: Option<String>,
}

/// The body of `readyz`.
#[derive(Serialize, ToSchema)]
struct Readiness {
    /// Always `ready`.
    status: String,
    checks: ReadinessChecks,
}

#[derive(Serialize, ToSchema)]
struct ReadinessChecks {
    database: String,
    migrations: String,
}

/// `{status: healthy|degraded|unhealthy, checks: {database: {status, latency_ms},
/// writes: {status: ok|failing}}}`; 503 when unhealthy, which failing writes make it.
#[utoipa::path(
    get,
    path = "/api/v1/healthz",
    operation_id = "healthz",
    tag = "health",
    responses(
        (status = 200, description = "Healthy or degraded", body = HealthReport),
        (status = 503, description = "Unhealthy: the database does not answer or writes are failing", body = HealthReport),
    )
)]
async fn healthz(State(state): State<AppState>) -> Response {
    let probe = state.health.check(&state.db).await;
    let failing = state.writes.failing_for();
    let status = if failing.is_some() {
        "unhealthy"
    } else {
        probe.status
    };
    let code = if status == "unhealthy" {
        StatusCode::SERVICE_UNAVAILABLE
    } else {
        StatusCode::OK
    };
    let body = HealthBody {
        status,
        checks: HealthBodyChecks {
            database: DatabaseBody {
                status: probe.status,
                latency_ms: probe.latency.as_millis() as u64,
                backend: state.db.backend_name(),
                checked_ms_ago: probe.at.elapsed().as_millis() as u64,
                error: probe.error,
            },
            writes: match failing {
                Some(age) => WritesBody {
                    status: "failing",
                    error: Some("the latest write failed on a transient database error"),
                    failed_ms_ago: Some(age.as_millis() as u64),
                },
                None => WritesBody {
                    status: "ok",
                    error: None,
                    failed_ms_ago: None,
                },
            },
        },
    };
    (
        code,
        [(header::CONTENT_TYPE, "application/json")],
        body.to_json(),
    )
        .into_response()
}

/// What `healthz` writes: borrowed strings, serialised straight to the body.
#[derive(Serialize)]
struct HealthBody {
    status: &'static str,
    checks: HealthBodyChecks,
}

impl HealthBody {
    /// The body as its `Serialize` derive writes it (a test holds them equal), written by hand:
    /// healthz is what every load balancer and monitor polls, and the generic serializer
    /// costs it about a tenth of its time (scanning each string for escapes, growing the
    /// buffer).
    fn to_json(&self) -> Vec<u8> {
        use std::io::Write;
        let HealthBodyChecks { database, writes } = &self.checks;
        // Sized for the longest body (unhealthy, with both errors): no reallocation.
        let mut json = Vec::with_capacity(320);
        // Writing to a Vec cannot fail.
        let _ = write!(
            json,
            r#"{{"status":{},"checks":{{"database":{{"status":{},"latency_ms":{},"backend":{},"checked_ms_ago":{}"#,
            Quoted(self.status),
            Quoted(database.status),
            database.latency_ms,
            Quoted(database.backend),
            database.checked_ms_ago,
        );
        if let Some(error) = database.error {
            let _ = write!(json, r#","error":{}"#, Quoted(error));
        }
        let _ = write!(json, r#"}},"writes":{{"status":{}"#, Quoted(writes.status));
        if let Some(error) = writes.error {
            let _ = write!(json, r#","error":{}"#, Quoted(error));
        }
        if let Some(ago) = writes.failed_ms_ago {
            let _ = write!(json, r#","failed_ms_ago":{ago}"#);
        }
        json.extend_from_slice(b"}}}");
        json
    }
}

/// A JSON string: the fixed words of healthz as they are, anything else escaped.
struct Quoted(&'static str);

impl std::fmt::Display for Quoted {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let plain = self.0.bytes().all(|b| b >= 0x20 && b != b'"' && b != b'\\');
        if plain {
            write!(f, "\"{}\"", self.0)
        } else {
            match serde_json::to_string(self.0) {
                Ok(quoted) => f.write_str(&quoted),
                Err(_) => Err(std::fmt::Error),
            }
        }
    }
}

#[derive(Serialize)]
struct HealthBodyChecks {
    database: DatabaseBody,
    writes: WritesBody,
}

#[derive(Serialize)]
struct DatabaseBody {
    status: &'static str,
    latency_ms: u64,
    backend: &'static str,
    checked_ms_ago: u64,
    #[serde(skip_serializing_if = "Option::is_none")]
    error: Option<&'static str>,
}

#[derive(Serialize)]
struct WritesBody {
    status: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    error: Option<&'static str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    failed_ms_ago: Option<u64>,
}

/// 200 only when the database answers, every migration is applied, the overlap guarantee
/// (`reservations_no_overlap`) is in place and writes are not failing.
#[utoipa::path(
    get,
    path = "/api/v1/readyz",
    operation_id = "readyz",
    tag = "health",
    responses(
        (status = 200, description = "Ready to serve", body = Readiness),
        (status = 503, description = "The database does not answer, migrations are pending, the overlap guarantee is missing or writes are failing", body = ErrorBody),
    )
)]
async fn readyz(State(state): State<AppState>) -> Result<Response, ApiError> {
    // Not cached: a failing write shows at once.
    if state.writes.failing_for().is_some() {
        return Err(ApiError::Unavailable(
            "writes to the database are failing".into(),
        ));
    }
    if let Some(problem) = state.health.readiness(&state.db).await.problem {
        return Err(ApiError::Unavailable(problem));
    }
    const READY: &str =
        r#"{"status":"ready","checks":{"database":"ok","migrations":"ok","writes":"ok"}}"#;
    Ok(([(header::CONTENT_TYPE, "application/json")], READY).into_response())
}

/// Prometheus text exposition.
#[utoipa::path(
    get,
    path = "/metrics",
    operation_id = "prometheus_metrics",
    tag = "health",
    responses(
        (status = 200, description = "Prometheus text exposition format 0.0.4", content_type = "text/plain", body = String),
    )
)]
async fn metrics(State(state): State<AppState>) -> impl IntoResponse {
    (
        [(
            header::CONTENT_TYPE,
            "text/plain; version=0.0.4; charset=utf-8",
        )],
        state.metrics.render(),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn body(status: &'static str, error: Option<&'static str>, failed: Option<u64>) -> HealthBody {
        HealthBody {
            status,
            checks: HealthBodyChecks {
                database: DatabaseBody {
                    status,
                    latency_ms: 12,
                    backend: "postgres",
                    checked_ms_ago: 345,
                    error,
                },
                writes: WritesBody {
                    status: if failed.is_some() { "failing" } else { "ok" },
                    error: failed.map(|_| "the latest write failed on a transient database error"),
                    failed_ms_ago: failed,
                },
            },
        }
    }

    #[test]
    fn the_written_body_is_what_serde_writes() {
        let bodies = [
            body("healthy", None, None),
            body("degraded", None, None),
            body(
                "unhealthy",
                Some("the database did not answer in time"),
                None,
            ),
            body("unhealthy", None, Some(1500)),
            body("unhealthy", Some("a \"quoted\" \\ path\n"), Some(0)),
        ];
        for body in bodies {
            let text = String::from_utf8(body.to_json()).expect("UTF-8");
            let expected = serde_json::to_string(&body).expect("serializes");
            // Byte for byte, field order included.
            assert_eq!(text, expected);
        }
    }
}
