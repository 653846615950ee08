//! Reservation routes: pre-reserve, look up, and the admin confirm and cancel.

use axum::extract::State;
use axum::routing::{get, post};
use axum::{Json, Router};
use chrono::{DateTime, NaiveDate, Utc};
use serde::Serialize;

use crate::AppState;
use crate::auth::Admin;
use crate::error::ApiError;
use crate::http::extract::ApiPath;
use crate::http::pre_reserve::pre_reserve;
use crate::pricing::format_cents;
use crate::store::now;
use crate::store::reservations::{self, Reservation};

/// The longest reservation code looked up; longer ones cannot exist.
const MAX_CODE_LEN: usize = 64;

/// Reservation routes.
pub fn router() -> Router<AppState> {
    Router::new()
        .route("/api/v1/reservations/pre-reserve", post(pre_reserve))
        .route("/api/v1/reservations/{code}", get(show))
        .route("/api/v1/reservations/{code}/confirm", post(confirm))
        .route("/api/v1/reservations/{code}/cancel", post(cancel))
}

/// A reservation as the API shows it: the 201 body of pre-reserve and the body of
/// look-up, confirm and cancel. Contact details are not echoed.
#[derive(Debug, Clone, Serialize)]
pub struct ReservationView {
    /// Public code.
    pub code: String,
    /// `pre_reserved`, `confirmed`, `cancelled` or `expired`.
    pub status: String,
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
    Ok(code)
}

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

async fn confirm(
    State(state): State<AppState>,
    admin: Admin,
    ApiPath(code): ApiPath<String>,
) -> Result<Json<ReservationView>, ApiError> {
    let code = checked_code(&code)?;
    let reservation = reservations::confirm(&state.db, code, now()).await?;
    metrics::counter!("reservations_confirmed_total").increment(1);
    tracing::info!(code, admin = %admin.email, "reservation confirmed");
    Ok(Json(reservation.into()))
}

async fn cancel(
    State(state): State<AppState>,
    admin: Admin,
    ApiPath(code): ApiPath<String>,
) -> Result<Json<ReservationView>, ApiError> {
    let code = checked_code(&code)?;
    let reservation = reservations::cancel(&state.db, code, now()).await?;
    metrics::counter!("reservations_cancelled_total").increment(1);
    tracing::info!(code, admin = %admin.email, "reservation cancelled");
    Ok(Json(reservation.into()))
}
