//! `GET /api/v1/healthz`, `GET /api/v1/readyz`, `GET /metrics`.

use axum::Json;
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
    (code, Json(body)).into_response()
}

/// What `healthz` writes: borrowed strings, serialised straight to the body.
#[derive(Serialize)]
struct HealthBody {
    status: &'static str,
    checks: HealthBodyChecks,
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
