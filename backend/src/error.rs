//! The one error type of the HTTP API.
//!
//! Every error answers `{"error": "<code>", "detail": "<sentence>"}` (plus `field` for
//! validation errors) with a real HTTP status. Internal errors are logged and answered
//! with a generic 500 body that reveals nothing.

use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::Serialize;
use serde_json::{Value, json};
use utoipa::ToSchema;

use crate::store::error::StoreError;

/// The error body every non-2xx JSON answer carries, as the OpenAPI document describes it
/// ([`ApiError::body`] writes it).
#[derive(Debug, Serialize, ToSchema)]
pub struct ErrorBody {
    /// A stable machine-readable code, e.g. `date_overlap` or `validation_failed`.
    pub error: String,
    /// A sentence for humans.
    pub detail: String,
    /// The request field at fault (validation errors only).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub field: Option<String>,
}

/// An error the API answers with.
#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    /// 422 `validation_failed`: a field broke a rule.
    #[error("{detail}")]
    Validation {
        /// The request field at fault, e.g. `check_out`.
        field: &'static str,
        /// What rule it broke.
        detail: String,
    },
    /// 422 `invalid_body`: well-formed JSON of the wrong shape (types, missing or unknown fields).
    #[error("{0}")]
    InvalidBody(String),
    /// 400 `malformed_json`: the body is not JSON.
    #[error("{0}")]
    MalformedJson(String),
    /// 400 `bad_request`: a bad path or query parameter.
    #[error("{0}")]
    BadRequest(String),
    /// 415 `unsupported_media_type`: the body is not declared as `application/json`.
    #[error("expected a request with Content-Type: application/json")]
    UnsupportedMediaType,
    /// 413 `payload_too_large`.
    #[error("the request body is too large")]
    PayloadTooLarge,
    /// 404 `not_found`.
    #[error("{0}")]
    NotFound(String),
    /// 405 `method_not_allowed`.
    #[error("this method is not allowed on this route")]
    MethodNotAllowed,
    /// 409 `date_overlap`: the dates collide with an active reservation.
    #[error("the accommodation is already booked for some of these dates")]
    DateOverlap,
    /// 409 `expired`: the pre-reservation outlived its time to live.
    #[error("the pre-reservation has expired")]
    Expired,
    /// 409 `invalid_state`: the reservation's status (or the resource's state) does not
    /// allow this action.
    #[error("{0}")]
    InvalidState(String),
    /// 409 `idempotency_in_progress`: a request with this key is still being processed.
    #[error("a request with this Idempotency-Key is still being processed; retry later")]
    IdempotencyInProgress,
    /// 422 `idempotency_key_reused`: the key was used with another body.
    #[error("this Idempotency-Key was already used with a different request body")]
    IdempotencyKeyReused,
    /// 401 `unauthorized`: no token, or a bad one.
    #[error("{0}")]
    Unauthorized(String),
    /// 403 `forbidden`: a valid token whose email is not an admin.
    #[error("this account is not allowed to manage reservations")]
    Forbidden,
    /// 429 `rate_limited`: this client made too many requests this minute.
    #[error("too many requests from this client; retry after the time in Retry-After")]
    TooManyRequests,
    /// 503 `timeout`: the request took longer than the server allows.
    #[error("the request took too long to process")]
    Timeout,
    /// 503 `unavailable`: a dependency (the database) is not answering.
    #[error("{0}")]
    Unavailable(String),
    /// 503 `unavailable`: the database failed transiently (connection lost, lock or
    /// statement timeout, disk full); retrying later may succeed.
    #[error("the database is temporarily unavailable; retry shortly")]
    DatabaseUnavailable,
    /// 500 `internal`: logged, never shown.
    #[error(transparent)]
    Internal(#[from] anyhow::Error),
}

impl ApiError {
    /// A validation error on `field`.
    pub fn validation(field: &'static str, detail: impl Into<String>) -> Self {
        Self::Validation {
            field,
            detail: detail.into(),
        }
    }

    /// The HTTP status this error answers with.
    pub fn status(&self) -> StatusCode {
        match self {
            Self::Validation { .. } | Self::InvalidBody(_) | Self::IdempotencyKeyReused => {
                StatusCode::UNPROCESSABLE_ENTITY
            }
            Self::MalformedJson(_) | Self::BadRequest(_) => StatusCode::BAD_REQUEST,
            Self::UnsupportedMediaType => StatusCode::UNSUPPORTED_MEDIA_TYPE,
            Self::PayloadTooLarge => StatusCode::PAYLOAD_TOO_LARGE,
            Self::NotFound(_) => StatusCode::NOT_FOUND,
            Self::MethodNotAllowed => StatusCode::METHOD_NOT_ALLOWED,
            Self::DateOverlap
            | Self::Expired
            | Self::InvalidState(_)
            | Self::IdempotencyInProgress => StatusCode::CONFLICT,
            Self::Unauthorized(_) => StatusCode::UNAUTHORIZED,
            Self::Forbidden => StatusCode::FORBIDDEN,
            Self::TooManyRequests => StatusCode::TOO_MANY_REQUESTS,
            Self::Timeout | Self::Unavailable(_) | Self::DatabaseUnavailable => {
                StatusCode::SERVICE_UNAVAILABLE
            }
            Self::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    /// The stable machine-readable code in the `error` field.
    pub fn code(&self) -> &'static str {
        match self {
            Self::Validation { .. } => "validation_failed",
            Self::InvalidBody(_) => "invalid_body",
            Self::MalformedJson(_) => "malformed_json",
            Self::BadRequest(_) => "bad_request",
            Self::UnsupportedMediaType => "unsupported_media_type",
            Self::PayloadTooLarge => "payload_too_large",
            Self::NotFound(_) => "not_found",
            Self::MethodNotAllowed => "method_not_allowed",
            Self::DateOverlap => "date_overlap",
            Self::Expired => "expired",
            Self::InvalidState(_) => "invalid_state",
            Self::IdempotencyInProgress => "idempotency_in_progress",
            Self::IdempotencyKeyReused => "idempotency_key_reused",
            Self::Unauthorized(_) => "unauthorized",
            Self::Forbidden => "forbidden",
            Self::TooManyRequests => "rate_limited",
            Self::Timeout => "timeout",
            Self::Unavailable(_) | Self::DatabaseUnavailable => "unavailable",
            Self::Internal(_) => "internal",
        }
    }

    /// The JSON body. Internal errors get a generic sentence.
    pub fn body(&self) -> Value {
        match self {
            Self::Internal(_) => json!({
                "error": self.code(),
                "detail": "an internal error occurred; it has been logged",
            }),
            Self::Validation { field, detail } => json!({
                "error": self.code(),
                "detail": detail,
                "field": field,
            }),
            other => json!({ "error": other.code(), "detail": other.to_string() }),
        }
    }
}

/// Seconds a client is told to wait before retrying a 503.
pub const RETRY_AFTER_SECS: u64 = 2;

/// Marks a response whose request failed on transient database trouble, so the write-path
/// health ([`crate::write_health`]) can see it.
#[derive(Debug, Clone, Copy)]
pub struct DatabaseTrouble;

impl From<sqlx::Error> for ApiError {
    fn from(err: sqlx::Error) -> Self {
        use crate::db::{WriteFailure, classify};
        match classify(&err) {
            WriteFailure::Unavailable | WriteFailure::Transient => {
                tracing::warn!(error = %err, "transient database error");
                Self::DatabaseUnavailable
            }
            _ => Self::Internal(anyhow::Error::new(err).context("database query failed")),
        }
    }
}

/// The one place a store refusal becomes an answer.
impl From<StoreError> for ApiError {
    fn from(err: StoreError) -> Self {
        match err {
            StoreError::DateOverlap => Self::DateOverlap,
            StoreError::NotFound(_) => Self::NotFound(err.to_string()),
            StoreError::InvalidState { .. } => Self::InvalidState(err.to_string()),
            StoreError::Expired => Self::Expired,
            StoreError::IdempotencyInProgress => Self::IdempotencyInProgress,
            StoreError::IdempotencyKeyReused => Self::IdempotencyKeyReused,
            StoreError::Inconsistent(what) => Self::Internal(anyhow::anyhow!(what)),
            StoreError::Database(err) => err.into(),
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        match &self {
            Self::Internal(err) => tracing::error!(error = format!("{err:#}"), "internal error"),
            Self::Unavailable(detail) => tracing::warn!(detail, "service unavailable"),
            _ => {}
        }
        let mut response = (self.status(), axum::Json(self.body())).into_response();
        if matches!(self, Self::Unauthorized(_)) {
            response
                .headers_mut()
                .insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
        }
        if self.status() == StatusCode::SERVICE_UNAVAILABLE {
            response
                .headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from(RETRY_AFTER_SECS));
        }
        if matches!(self, Self::DatabaseUnavailable) {
            response.extensions_mut().insert(DatabaseTrouble);
        }
        response
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn store_refusals_keep_their_status_code_and_sentence() {
        let cases = [
            (StoreError::DateOverlap, 409, "date_overlap", None),
            (
                StoreError::NotFound("CB-7K2M9QXA".into()),
                404,
                "not_found",
                Some("no reservation has the code CB-7K2M9QXA"),
            ),
            (StoreError::Expired, 409, "expired", None),
            (
                StoreError::InvalidState {
                    status: crate::store::status::ReservationStatus::Cancelled,
                    action: "confirmed",
                },
                409,
                "invalid_state",
                Some("a reservation in status cancelled cannot be confirmed"),
            ),
            (
                StoreError::IdempotencyInProgress,
                409,
                "idempotency_in_progress",
                None,
            ),
            (
                StoreError::IdempotencyKeyReused,
                422,
                "idempotency_key_reused",
                None,
            ),
            (StoreError::Inconsistent("never"), 500, "internal", None),
            (
                StoreError::Database(sqlx::Error::PoolTimedOut),
                503,
                "unavailable",
                None,
            ),
            (
                StoreError::Database(sqlx::Error::RowNotFound),
                500,
                "internal",
                None,
            ),
        ];
        for (store, status, code, detail) in cases {
            let shown = format!("{store:?}");
            let api = ApiError::from(store);
            assert_eq!(api.status().as_u16(), status, "{shown}");
            assert_eq!(api.code(), code, "{shown}");
            if let Some(detail) = detail {
                assert_eq!(api.body()["detail"], detail, "{shown}");
            }
        }
    }
}
