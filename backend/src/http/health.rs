//! `GET /api/v1/healthz`, `GET /api/v1/readyz`, `GET /metrics`.

use std::time::{Duration, Instant};

use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use serde_json::json;

use crate::AppState;
use crate::error::ApiError;

/// A database answering slower than this makes the service `degraded`.
const DEGRADED_AFTER: Duration = Duration::from_secs(1);
/// A database not answering within this makes the service `unhealthy`.
const UNHEALTHY_AFTER: Duration = Duration::from_secs(3);

/// Health, readiness and metrics routes.
pub fn router() -> Router<AppState> {
    Router::new()
        .route("/api/v1/healthz", get(healthz))
        .route("/api/v1/readyz", get(readyz))
        .route("/metrics", get(metrics))
}

/// `{status: healthy|degraded|unhealthy, checks: {database: {status, latency_ms}}}`;
/// 503 when unhealthy.
async fn healthz(State(state): State<AppState>) -> Response {
    let started = Instant::now();
    let outcome = tokio::time::timeout(UNHEALTHY_AFTER, state.db.ping()).await;
    let latency = started.elapsed();
    let (status, error) = match outcome {
        Ok(Ok(())) if latency > DEGRADED_AFTER => ("degraded", None),
        Ok(Ok(())) => ("healthy", None),
        Ok(Err(err)) => {
            tracing::warn!(error = %err, "health check: database error");
            ("unhealthy", Some("the database returned an error"))
        }
        Err(_) => ("unhealthy", Some("the database did not answer in time")),
    };
    let mut database = json!({
        "status": status,
        "latency_ms": latency.as_millis() as u64,
        "backend": state.db.backend_name(),
    });
    if let Some(error) = error {
        database["error"] = json!(error);
    }
    let code = if status == "unhealthy" {
        StatusCode::SERVICE_UNAVAILABLE
    } else {
        StatusCode::OK
    };
    let body = json!({ "status": status, "checks": { "database": database } });
    (code, Json(body)).into_response()
}

/// 200 only when the database answers and every migration is applied.
async fn readyz(State(state): State<AppState>) -> Result<Json<serde_json::Value>, ApiError> {
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
        "checks": { "database": "ok", "migrations": "ok" },
    })))
}

/// Prometheus text exposition.
async fn metrics(State(state): State<AppState>) -> impl IntoResponse {
    (
        [(
            header::CONTENT_TYPE,
            "text/plain; version=0.0.4; charset=utf-8",
        )],
        state.metrics.render(),
    )
}
