//! `GET /api/v1/healthz`, `GET /api/v1/readyz`, `GET /metrics`.

use axum::Json;
use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::Serialize;
use serde_json::json;
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::AppState;
use crate::error::ApiError;
use crate::health_probe::UNHEALTHY_AFTER;
use crate::http::openapi::ErrorBody;

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
    tag = "health",
    responses(
        (status = 200, description = "Healthy or degraded", body = HealthReport),
        (status = 503, description = "Unhealthy: the database does not answer or writes are failing", body = HealthReport),
    )
)]
async fn healthz(State(state): State<AppState>) -> Response {
    let probe = state.health.check(&state.db).await;
    let (status, latency, error) = (probe.status, probe.latency, probe.error);
    let mut database = json!({
        "status": status,
        "latency_ms": latency.as_millis() as u64,
        "backend": state.db.backend_name(),
        "checked_ms_ago": probe.at.elapsed().as_millis() as u64,
    });
    if let Some(error) = error {
        database["error"] = json!(error);
    }
    let failing = state.writes.failing_for();
    let writes = match failing {
        Some(age) => json!({
            "status": "failing",
            "error": "the latest write failed on a transient database error",
            "failed_ms_ago": age.as_millis() as u64,
        }),
        None => json!({ "status": "ok" }),
    };
    let status = if failing.is_some() {
        "unhealthy"
    } else {
        status
    };
    let code = if status == "unhealthy" {
        StatusCode::SERVICE_UNAVAILABLE
    } else {
        StatusCode::OK
    };
    let body = json!({ "status": status, "checks": { "database": database, "writes": writes } });
    (code, Json(body)).into_response()
}

/// 200 only when the database answers, every migration is applied and writes are not
/// failing.
#[utoipa::path(
    get,
    path = "/api/v1/readyz",
    tag = "health",
    responses(
        (status = 200, description = "Ready to serve", body = Readiness),
        (status = 503, description = "The database does not answer, migrations are pending or writes are failing", body = ErrorBody),
    )
)]
async fn readyz(State(state): State<AppState>) -> Result<Json<serde_json::Value>, ApiError> {
    if state.writes.failing_for().is_some() {
        return Err(ApiError::Unavailable(
            "writes to the database are failing".into(),
        ));
    }
    let pending = tokio::time::timeout(UNHEALTHY_AFTER, state.db.pending_migrations())
        .await
        .map_err(|_| ApiError::Unavailable("the database did not answer in time".into()))?
        .map_err(|err| {
            tracing::warn!(error = %err, "readiness check: database error");
            ApiError::Unavailable("the database is not answering".into())
        })?;
    if !pending.is_empty() {
        return Err(ApiError::Unavailable(format!(
            "{} database migration(s) pending: run `cabanas migrate`",
            pending.len()
        )));
    }
    Ok(Json(json!({
        "status": "ready",
        "checks": { "database": "ok", "migrations": "ok", "writes": "ok" },
    })))
}

/// Prometheus text exposition.
#[utoipa::path(
    get,
    path = "/metrics",
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
