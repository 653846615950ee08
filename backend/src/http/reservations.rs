//! Reservation routes: pre-reserve, look up, and the admin confirm and cancel.

use std::borrow::Cow;
use std::collections::BTreeMap;

use axum::Json;
use axum::extract::State;
use chrono::{DateTime, NaiveDate, Utc};
use serde::Serialize;
use utoipa::openapi::{Content, Ref, RefOr, Response, ResponseBuilder};
use utoipa::{IntoResponses, ToSchema};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::error::ApiError;
use crate::error::ErrorBody;
use crate::http::admin::Admin;
use crate::http::extract::ApiPath;
use crate::http::pre_reserve::validate::reject_control_characters;
use crate::http::state::AppState;
use crate::pricing::format_cents;
use crate::store::now;
use crate::store::reservations::{self, Reservation};
use crate::store::status::ReservationStatus;

/// The longest reservation code looked up; longer ones cannot exist.
const MAX_CODE_LEN: usize = 64;

/// Reservation routes.
pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(show))
        .routes(routes!(confirm))
        .routes(routes!(cancel))
}

/// A reservation as the API shows it: the 201 body of pre-reserve and the body of
/// look-up, confirm and cancel. Contact details are not echoed.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct ReservationView {
    /// Public code.
    pub code: String,
    /// `pre_reserved`, `confirmed`, `cancelled` or `expired`.
    #[schema(value_type = String)]
    pub status: ReservationStatus,
    /// The booked accommodation.
    pub accommodation_id: i64,
    /// First night.
    pub check_in: NaiveDate,
    /// Departure day.
    pub check_out: NaiveDate,
    /// Number of nights.
    pub nights: i64,
    /// Number of guests.
    pub guests: i32,
    /// Booking channel.
    pub channel: String,
    /// Total as a decimal string, e.g. `"1234.50"`.
    pub total_price: String,
    /// Deposit (30 % of the total, rounded half up) as a decimal string.
    pub deposit_amount: String,
    /// When a pre-reservation stops holding the dates (RFC 3339, UTC).
    pub expires_at: DateTime<Utc>,
    /// Creation time.
    pub created_at: DateTime<Utc>,
    /// Where the guest pays the deposit (MercadoPago checkout); only in the 201 body of
    /// pre-reserve, and only when MercadoPago is configured and answered.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub payment_url: Option<String>,
}

impl From<Reservation> for ReservationView {
    fn from(r: Reservation) -> Self {
        Self {
            nights: (r.check_out - r.check_in).num_days(),
            total_price: format_cents(r.total_price_cents),
            deposit_amount: format_cents(r.deposit_cents),
            code: r.code,
            status: r.status,
            accommodation_id: r.accommodation_id,
            check_in: r.check_in,
            check_out: r.check_out,
            guests: r.guests,
            channel: r.channel,
            expires_at: r.expires_at,
            created_at: r.created_at,
            payment_url: None,
        }
    }
}

fn checked_code(code: &str) -> Result<&str, ApiError> {
    if code.is_empty() || code.len() > MAX_CODE_LEN {
        return Err(ApiError::NotFound(
            "no reservation has this code".to_owned(),
        ));
    }
    reject_control_characters("code", code)?;
    Ok(code)
}

/// A reservation by its code.
#[utoipa::path(
    get,
    path = "/api/v1/reservations/{code}",
    operation_id = "get_reservation",
    tag = "reservations",
    params(("code" = String, Path, description = "Reservation code, e.g. CB-7K2M9QXA")),
    responses(
        (status = 200, description = "The reservation", body = ReservationView),
        (status = 400, description = "The path is not well formed", body = ErrorBody),
        (status = 404, description = "No reservation has this code", body = ErrorBody),
        (status = 422, description = "The code holds control characters (`validation_failed`, field `code`)", body = ErrorBody),
        (status = 503, description = "The database is not available", body = ErrorBody),
    )
)]
async fn show(
    State(state): State<AppState>,
    ApiPath(code): ApiPath<String>,
) -> Result<Json<ReservationView>, ApiError> {
    let code = checked_code(&code)?;
    let reservation = reservations::find_by_code(&state.db, code)
        .await?
        .ok_or_else(|| ApiError::NotFound(format!("no reservation has the code {code}")))?;
    Ok(Json(reservation.into()))
}

/// What confirm and cancel answer: the two admin actions share their guard, their path
/// checks and the store's refusals, so they document one set of responses.
struct AdminActionResponses;

impl IntoResponses for AdminActionResponses {
    fn responses() -> BTreeMap<String, RefOr<Response>> {
        /// Every refusal carries an [`ErrorBody`].
        const REFUSALS: [(u16, &str); 7] = [
            (400, "The path is not well formed"),
            (401, "No bearer token, or an invalid or expired one"),
            (403, "The token's email is not an admin"),
            (404, "No reservation has this code"),
            (
                409,
                "The reservation's status does not allow this (`invalid_state`, `expired`)",
            ),
            (
                422,
                "The code holds control characters (`validation_failed`, field `code`)",
            ),
            (503, "The database is not available"),
        ];
        let answer = |status: u16, description: &str, body: Cow<'static, str>| {
            let content = Content::new(Some(Ref::from_schema_name(body)));
            let response = ResponseBuilder::new()
                .description(description)
                .content("application/json", content)
                .build();
            (status.to_string(), RefOr::T(response))
        };
        let done = answer(
            200,
            "The reservation after the action",
            ReservationView::name(),
        );
        let refusals = REFUSALS
            .iter()
            .map(|&(status, description)| answer(status, description, ErrorBody::name()));
        std::iter::once(done).chain(refusals).collect()
    }
}

/// An admin action on a reservation.
#[derive(Debug, Clone, Copy)]
enum AdminAction {
    Confirm,
    Cancel,
}

/// Applies `action` to the reservation `code` for `admin`, counts it and logs who did it.
async fn act(
    state: AppState,
    admin: Admin,
    code: String,
    action: AdminAction,
) -> Result<Json<ReservationView>, ApiError> {
    let code = checked_code(&code)?;
    let (reservation, counter, done) = match action {
        AdminAction::Confirm => (
            reservations::confirm(&state.db, code, now()).await?,
            "reservations_confirmed_total",
            "confirmed",
        ),
        AdminAction::Cancel => (
            reservations::cancel(&state.db, code, now()).await?,
            "reservations_cancelled_total",
            "cancelled",
        ),
    };
    metrics::counter!(counter).increment(1);
    tracing::info!(code, admin = %admin.email, "reservation {done}");
    Ok(Json(reservation.into()))
}

/// Confirms a pre-reservation (admin).
#[utoipa::path(
    post,
    path = "/api/v1/reservations/{code}/confirm",
    operation_id = "confirm_reservation",
    tag = "admin",
    params(("code" = String, Path, description = "Reservation code")),
    security(("admin_bearer" = [])),
    responses(AdminActionResponses)
)]
async fn confirm(
    State(state): State<AppState>,
    admin: Admin,
    ApiPath(code): ApiPath<String>,
) -> Result<Json<ReservationView>, ApiError> {
    act(state, admin, code, AdminAction::Confirm).await
}

/// Cancels a pre-reserved or confirmed reservation (admin).
#[utoipa::path(
    post,
    path = "/api/v1/reservations/{code}/cancel",
    operation_id = "cancel_reservation",
    tag = "admin",
    params(("code" = String, Path, description = "Reservation code")),
    security(("admin_bearer" = [])),
    responses(AdminActionResponses)
)]
async fn cancel(
    State(state): State<AppState>,
    admin: Admin,
    ApiPath(code): ApiPath<String>,
) -> Result<Json<ReservationView>, ApiError> {
    act(state, admin, code, AdminAction::Cancel).await
}
