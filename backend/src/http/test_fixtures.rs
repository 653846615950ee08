//! `PUT /api/v1/admin/test-fixtures/{slug}`: the cabin the deploy checks book on a deployed
//! environment.
//!
//! `cargo xtask overlap` races pre-reserves on a live service; on a fresh app with an empty
//! database there is no cabin to race on, and on a live one it must not block a real guest's
//! dates. So it books a test fixture of its own, found or created here by a fixed slug: never
//! listed, its availability shown only to an admin, bookable only with an admin token
//! (`crate::store::accommodations::Audience`), and every booking cancelled by the check.

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::{Json, extract::State};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::error::{ApiError, ErrorBody};
use crate::http::accommodations::AccommodationView;
use crate::http::admin::Admin;
use crate::http::extract::ApiPath;
use crate::http::state::AppState;
use crate::store::accommodations::Fixture;

/// The longest fixture slug.
pub const MAX_SLUG_LEN: usize = 64;

/// The test-fixture route.
pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(put_fixture))
}

/// Lowercase letters, digits and dashes: a slug, never a path trick or a name.
fn checked_slug(slug: &str) -> Result<&str, ApiError> {
    let well_formed = !slug.is_empty()
        && slug.len() <= MAX_SLUG_LEN
        && slug
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-');
    if well_formed {
        Ok(slug)
    } else {
        Err(ApiError::validation(
            "slug",
            format!("a slug is 1-{MAX_SLUG_LEN} lowercase letters, digits or dashes"),
        ))
    }
}

/// Finds or creates the test-fixture accommodation `slug` (admin). Idempotent: the first call
/// creates it (201), later ones return the same cabin (200).
#[utoipa::path(
    put,
    path = "/api/v1/admin/test-fixtures/{slug}",
    operation_id = "put_test_fixture",
    tag = "admin",
    params(("slug" = String, Path, description = "The fixture's slug, e.g. overlap-check")),
    security(("admin_bearer" = [])),
    responses(
        (status = 200, description = "The fixture existed already", body = AccommodationView),
        (status = 201, description = "The fixture was created", body = AccommodationView),
        (status = 400, description = "The path is not well formed", body = ErrorBody),
        (status = 401, description = "No bearer token, or an invalid or expired one", body = ErrorBody),
        (status = 403, description = "The token's email is not an admin", body = ErrorBody),
        (status = 409, description = "A real accommodation has this slug (`invalid_state`); it is left untouched", body = ErrorBody),
        (status = 422, description = "The slug is not 1-64 lowercase letters, digits or dashes (`validation_failed`, field `slug`)", body = ErrorBody),
        (status = 503, description = "The database is not available", body = ErrorBody),
    )
)]
async fn put_fixture(
    State(state): State<AppState>,
    admin: Admin,
    ApiPath(slug): ApiPath<String>,
) -> Result<Response, ApiError> {
    let slug = checked_slug(&slug)?;
    let (status, fixture) = match state
        .accommodations
        .find_or_create_fixture(&state.db, slug)
        .await?
    {
        Fixture::Created(fixture) => {
            tracing::info!(slug, admin = %admin.email, id = fixture.id, "test fixture created");
            (StatusCode::CREATED, fixture)
        }
        Fixture::Existing(fixture) => (StatusCode::OK, fixture),
        Fixture::SlugTaken => {
            return Err(ApiError::InvalidState(format!(
                "the slug {slug} belongs to a real accommodation, not a test fixture: pick \
                 another slug"
            )));
        }
    };
    Ok((status, Json(AccommodationView::from(fixture))).into_response())
}

#[cfg(test)]
mod tests {
    use super::checked_slug;

    #[test]
    fn slugs_are_lowercase_words_with_dashes() {
        assert!(checked_slug("overlap-check").is_ok());
        for bad in ["", "Overlap", "a/b", "a b", "..", &"a".repeat(65)] {
            assert!(checked_slug(bad).is_err(), "{bad:?}");
        }
    }
}
