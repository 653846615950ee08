//! `POST /api/v1/reservations/pre-reserve`: validate, price, insert, with optional
//! `Idempotency-Key` replay.

pub mod replay;
pub mod validate;

pub use self::replay::MAX_IDEMPOTENCY_KEY_LEN;
pub use self::validate::{MAX_NIGHTS, PreReserveRequest, reject_control_characters, validate};

use std::time::Duration;

use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};

use self::replay::{
    created_body, idempotency_key, json_response, replay, stored_answer, view_body,
};
use crate::error::ApiError;
use crate::error::ErrorBody;
use crate::http::admin::Viewer;
use crate::http::extract::ApiJson;
use crate::http::reservations::ReservationView;
use crate::http::state::AppState;
use crate::pricing;
use crate::store::accommodations::Audience;
use crate::store::error::StoreError;
use crate::store::idempotency::{self, KeyedOutcome, KeyedRequest};
use crate::store::now;
use crate::store::reservations::{self, NewReservation, StoredAnswer};
use crate::telemetry::channel_label;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

/// The pre-reserve route.
pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(pre_reserve))
}

/// Validates, prices and inserts one pre-reservation.
/// With `answer`, the 201 is stored under its idempotency key in the reservation's own
/// transaction. `None` when `answer` was to claim its key and another request has it.
/// A test fixture is found only for `audience` [`Audience::Admin`]: a guest gets the 404 of
/// an id that does not exist.
async fn create(
    state: &AppState,
    audience: Audience,
    req: PreReserveRequest,
    answer: Option<&StoredAnswer>,
) -> Result<Option<ReservationView>, ApiError> {
    let now = now();
    let req = validate(req, now.date_naive(), state.horizon)?;
    let accommodation = state
        .accommodations
        .find_active(&state.db, req.accommodation_id, audience)
        .await?
        .ok_or_else(|| {
            ApiError::NotFound(format!(
                "no active accommodation has id {}",
                req.accommodation_id
            ))
        })?;
    if req.guests > accommodation.capacity {
        return Err(ApiError::validation(
            "guests",
            format!(
                "this accommodation takes at most {} guests",
                accommodation.capacity
            ),
        ));
    }
    let quote = pricing::quote(
        req.check_in,
        req.check_out,
        accommodation.base_price_cents,
        i64::from(accommodation.weekend_multiplier_bp),
    );
    let new = NewReservation {
        accommodation_id: accommodation.id,
        check_in: req.check_in,
        check_out: req.check_out,
        guests: req.guests,
        channel: req.channel,
        contact_name: req.contact_name,
        contact_phone: req.contact_phone,
        contact_email: req.contact_email,
        total_price_cents: quote.total_cents,
        deposit_cents: quote.deposit_cents,
        expires_at: now + state.pre_reservation_ttl,
    };
    match reservations::insert(&state.db, &new, &state.codes, now, answer).await {
        Ok(None) => Ok(None),
        Ok(Some(reservation)) => {
            metrics::counter!("reservations_created_total", "channel" => channel_label(&reservation.channel))
                .increment(1);
            tracing::info!(code = %reservation.code, accommodation_id = new.accommodation_id, "pre-reservation created");
            let payment_url = deposit_checkout(state, &reservation).await;
            let mut view = ReservationView::from(reservation);
            view.payment_url = payment_url;
            Ok(Some(view))
        }
        Err(StoreError::DateOverlap) => {
            metrics::counter!("reservations_date_overlap_total").increment(1);
            Err(ApiError::DateOverlap)
        }
        Err(err) => Err(err.into()),
    }
}

/// The MercadoPago checkout URL of a new reservation's deposit, when MercadoPago is
/// configured. A failure leaves the reservation without one (an admin can still confirm it)
/// rather than failing a booking whose dates are already held.
async fn deposit_checkout(
    state: &AppState,
    reservation: &reservations::Reservation,
) -> Option<String> {
    let client = state.integrations.mercadopago.as_ref()?;
    match client
        .create_deposit_preference(
            &reservation.code,
            reservation.deposit_cents,
            reservation.expires_at,
        )
        .await
    {
        Ok(preference) => {
            metrics::counter!("mercadopago_preferences_total", "outcome" => "created").increment(1);
            Some(preference.init_point)
        }
        Err(err) => {
            metrics::counter!("mercadopago_preferences_total", "outcome" => "failed").increment(1);
            tracing::warn!(code = %reservation.code, error = %err, "no deposit checkout for a pre-reservation");
            None
        }
    }
}

/// Books `req` once under the idempotency `key`: the first call creates, later calls with
/// the same key and request get the first answer back (`Replayed`). Shared by the route and
/// by WhatsApp bookings (keyed by the message id, so a redelivered message books nothing).
pub async fn book_keyed(
    state: &AppState,
    audience: Audience,
    req: PreReserveRequest,
    key: String,
) -> Result<KeyedOutcome<ReservationView>, ApiError> {
    let request_body = serde_json::to_string(&req)
        .map_err(|e| ApiError::Internal(anyhow::Error::new(e).context("serialising request")))?;
    let keyed = KeyedRequest {
        key,
        request_body,
        created_status: StatusCode::CREATED.as_u16(),
        render: created_body,
        // A first request still unanswered after the request timeout was cut off.
        abandoned_after: chrono::Duration::from_std(state.request_timeout + Duration::from_secs(5))
            .unwrap_or(chrono::Duration::minutes(1)),
    };
    let book = |answer: StoredAnswer| {
        let req = req.clone();
        async move { create(state, audience, req, Some(&answer)).await }
    };
    idempotency::book_once(&state.db, &keyed, book, stored_answer).await
}

/// The handler. Only a request with an admin token can book a test fixture (the overlap
/// check's cabin); for anyone else it does not exist. Without `Idempotency-Key` it just
/// creates; with one, the first request
/// claims the key in the database and stores its answer, and retries with the same body
/// get that answer back (marked `idempotent-replayed: true`).
#[utoipa::path(
    post,
    path = "/api/v1/reservations/pre-reserve",
    operation_id = "pre_reserve",
    tag = "reservations",
    params(
        ("Idempotency-Key" = Option<String>, Header, description = "Makes retries safe: a retry with the same key and body gets the first answer back (1-255 visible ASCII characters)"),
    ),
    request_body = PreReserveRequest,
    responses(
        (status = 201, description = "Pre-reserved: the dates are held until `expires_at`", body = ReservationView),
        (status = 400, description = "The body is not JSON", body = ErrorBody),
        (status = 404, description = "No active accommodation has this id", body = ErrorBody),
        (status = 409, description = "`date_overlap`: the dates collide with an active reservation; `idempotency_in_progress`", body = ErrorBody),
        (status = 413, description = "The body is larger than 64 KiB", body = ErrorBody),
        (status = 415, description = "The body is not declared as application/json", body = ErrorBody),
        (status = 422, description = "A field breaks a rule, the body has the wrong shape, or the Idempotency-Key is malformed or was used with another body", body = ErrorBody),
        (status = 429, description = "Too many requests from this client; see Retry-After", body = ErrorBody,
            headers(("Retry-After" = u64, description = "Seconds until a request is accepted again"))),
        (status = 503, description = "The database is not available", body = ErrorBody),
    )
)]
pub async fn pre_reserve(
    State(state): State<AppState>,
    Viewer(audience): Viewer,
    headers: HeaderMap,
    ApiJson(req): ApiJson<PreReserveRequest>,
) -> Result<Response, ApiError> {
    let Some(key) = idempotency_key(&headers)? else {
        let view = create(&state, audience, req, None).await?.ok_or_else(|| {
            ApiError::Internal(anyhow::anyhow!(
                "a booking without a key found its key taken"
            ))
        })?;
        return Ok((StatusCode::CREATED, axum::Json(view)).into_response());
    };
    match book_keyed(&state, audience, req, key).await? {
        KeyedOutcome::Created(view) => Ok(json_response(StatusCode::CREATED, view_body(&view))),
        KeyedOutcome::Replayed(status, body) => Ok(replay(status, body)),
    }
}
