//! The HTTP side of `Idempotency-Key` (the protocol itself is
//! `crate::store::idempotency::book_once`): reading the header, what an answer stores, and
//! answering with a stored answer.

use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};

use crate::error::ApiError;
use crate::http::reservations::ReservationView;
use crate::store::reservations::Reservation;

/// The longest `Idempotency-Key` accepted.
pub const MAX_IDEMPOTENCY_KEY_LEN: usize = 255;

/// What a refusal stores under its key: its status and body, unless it is a server error,
/// which a retry should try again.
pub(super) fn stored_answer(err: &ApiError) -> Option<(u16, String)> {
    let status = err.status();
    (!status.is_server_error()).then(|| (status.as_u16(), err.body().to_string()))
}

/// The 201 body of a created reservation, as stored for replay.
pub(super) fn created_body(reservation: &Reservation) -> String {
    view_body(&ReservationView::from(reservation.clone()))
}

pub(super) fn view_body(view: &ReservationView) -> String {
    serde_json::json!(view).to_string()
}

pub(super) fn idempotency_key(headers: &HeaderMap) -> Result<Option<String>, ApiError> {
    let Some(value) = headers.get("idempotency-key") else {
        return Ok(None);
    };
    let key = value
        .to_str()
        .ok()
        .map(str::trim)
        .filter(|k| !k.is_empty() && k.len() <= MAX_IDEMPOTENCY_KEY_LEN)
        .ok_or_else(|| {
            ApiError::validation(
                "Idempotency-Key",
                format!(
                    "Idempotency-Key must be 1-{MAX_IDEMPOTENCY_KEY_LEN} visible ASCII characters"
                ),
            )
        })?;
    Ok(Some(key.to_owned()))
}

pub(super) fn json_response(status: StatusCode, body: String) -> Response {
    (
        status,
        [(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/json"),
        )],
        body,
    )
        .into_response()
}

pub(super) fn replay(status: u16, body: String) -> Response {
    let status = StatusCode::from_u16(status).unwrap_or(StatusCode::OK);
    let mut response = json_response(status, body);
    response
        .headers_mut()
        .insert("idempotent-replayed", HeaderValue::from_static("true"));
    response
}
