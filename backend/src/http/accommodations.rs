//! `GET /api/v1/reservations/accommodations` and
//! `GET /api/v1/accommodations/{id}/availability?from=&to=`.

use axum::Json;
use axum::extract::State;
use axum::http::header;
use axum::response::{IntoResponse, Response};
use chrono::NaiveDate;
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::error::ApiError;
use crate::error::ErrorBody;
use crate::http::admin::Viewer;
use crate::http::extract::{ApiPath, ApiQuery};
use crate::http::state::AppState;
use crate::pricing::{BASIS_POINTS, format_cents, weekend_night_cents};
use crate::store::accommodations::Accommodation;
use crate::store::reservations::{self, Booking};

/// The longest window availability answers for, in days.
pub const MAX_AVAILABILITY_DAYS: i64 = 366;

/// Accommodation routes.
pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(list))
        .routes(routes!(availability))
}

/// An accommodation as the API shows it. Money is a decimal string.
#[derive(Debug, Serialize, ToSchema)]
pub struct AccommodationView {
    id: i64,
    slug: String,
    name: String,
    capacity: i32,
    base_price: String,
    weekend_price: String,
    weekend_multiplier: String,
    weekend_multiplier_bp: i32,
}

impl From<Accommodation> for AccommodationView {
    fn from(a: Accommodation) -> Self {
        let bp = i64::from(a.weekend_multiplier_bp);
        Self {
            id: a.id,
            base_price: format_cents(a.base_price_cents),
            weekend_price: format_cents(weekend_night_cents(a.base_price_cents, bp)),
            weekend_multiplier: format_multiplier(bp),
            weekend_multiplier_bp: a.weekend_multiplier_bp,
            slug: a.slug,
            name: a.name,
            capacity: a.capacity,
        }
    }
}

/// `12000` → `"1.20"`, `12345` → `"1.2345"`.
fn format_multiplier(bp: i64) -> String {
    let mut s = format!("{}.{:04}", bp / BASIS_POINTS, bp % BASIS_POINTS);
    while s.ends_with('0') && s.len() > s.find('.').map_or(0, |dot| dot + 3) {
        s.pop();
    }
    s
}

/// The active accommodations guests can book (test fixtures are never listed).
#[utoipa::path(
    get,
    path = "/api/v1/reservations/accommodations",
    operation_id = "list_accommodations",
    tag = "reservations",
    responses(
        (status = 200, description = "Active accommodations", body = Vec<AccommodationView>),
        (status = 503, description = "The database is not available", body = ErrorBody),
    )
)]
async fn list(State(state): State<AppState>) -> Result<Response, ApiError> {
    let snapshot = state.accommodations.snapshot(state.reads().await).await?;
    let body = snapshot.rendered(|active| {
        let views: Vec<AccommodationView> = active.iter().map(|a| (*a).clone().into()).collect();
        // Serialising plain strings and numbers cannot fail.
        serde_json::to_vec(&views).unwrap_or_default().into()
    });
    Ok(([(header::CONTENT_TYPE, "application/json")], body).into_response())
}

/// `?from=YYYY-MM-DD&to=YYYY-MM-DD`, a half-open window.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
struct Window {
    /// First day of the window, `YYYY-MM-DD`.
    from: NaiveDate,
    /// Day after the window, `YYYY-MM-DD`; after `from`, at most 366 days later.
    to: NaiveDate,
}

/// Active bookings intersecting the window: dates and status only, no personal data.
#[derive(Debug, Serialize, ToSchema)]
struct Availability {
    accommodation_id: i64,
    from: NaiveDate,
    to: NaiveDate,
    bookings: Vec<Booking>,
}

/// The active bookings of one accommodation within a window. A test fixture answers 404
/// unless the request carries an admin token, so no public availability shows it.
#[utoipa::path(
    get,
    path = "/api/v1/accommodations/{id}/availability",
    operation_id = "get_availability",
    tag = "reservations",
    params(("id" = i64, Path, description = "Accommodation id"), Window),
    responses(
        (status = 200, description = "Bookings within the window", body = Availability),
        (status = 400, description = "A path or query parameter is not well formed", body = ErrorBody),
        (status = 404, description = "No active accommodation has this id", body = ErrorBody),
        (status = 422, description = "The window is empty or too long", body = ErrorBody),
        (status = 503, description = "The database is not available", body = ErrorBody),
    )
)]
async fn availability(
    State(state): State<AppState>,
    Viewer(audience): Viewer,
    ApiPath(id): ApiPath<i64>,
    ApiQuery(window): ApiQuery<Window>,
) -> Result<Json<Availability>, ApiError> {
    let today = crate::store::now().date_naive();
    if window.from < state.horizon.earliest(today) {
        return Err(ApiError::validation(
            "from",
            format!(
                "from may be at most {} days before today",
                state.horizon.past_days
            ),
        ));
    }
    if window.to > state.horizon.latest(today) {
        return Err(ApiError::validation(
            "to",
            format!(
                "to may be at most {} days after today",
                state.horizon.future_days
            ),
        ));
    }
    if window.to <= window.from {
        return Err(ApiError::validation("to", "to must be after from"));
    }
    if (window.to - window.from).num_days() > MAX_AVAILABILITY_DAYS {
        return Err(ApiError::validation(
            "to",
            format!("the window may span at most {MAX_AVAILABILITY_DAYS} days"),
        ));
    }
    let reads = state.reads().await;
    state
        .accommodations
        .find_active(reads, id, audience)
        .await?
        .ok_or_else(|| ApiError::NotFound(format!("no active accommodation has id {id}")))?;
    let bookings = reservations::bookings_between(reads, id, window.from, window.to).await?;
    Ok(Json(Availability {
        accommodation_id: id,
        from: window.from,
        to: window.to,
        bookings,
    }))
}

#[cfg(test)]
mod tests {
    use super::format_multiplier;

    #[test]
    fn multipliers_keep_two_decimals_at_least() {
        assert_eq!(format_multiplier(12_000), "1.20");
        assert_eq!(format_multiplier(10_000), "1.00");
        assert_eq!(format_multiplier(12_345), "1.2345");
        assert_eq!(format_multiplier(15_500), "1.55");
    }
}
