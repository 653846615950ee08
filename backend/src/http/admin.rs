//! The admin extractors: a handler taking [`Admin`] runs only for a valid admin token
//! (verified by [`crate::auth::AdminAuth`]); one taking [`Viewer`] runs for everyone and
//! learns whether the caller is an admin.

use axum::extract::FromRequestParts;
use axum::http::header::AUTHORIZATION;
use axum::http::request::Parts;

use crate::error::ApiError;
use crate::http::state::AppState;
use crate::store::accommodations::Audience;

/// An authenticated admin, extracted from the request.
#[derive(Debug)]
pub struct Admin {
    /// The admin's email (lowercased), for audit logs.
    pub email: String,
}

impl FromRequestParts<AppState> for Admin {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        let header = parts
            .headers
            .get(AUTHORIZATION)
            .and_then(|v| v.to_str().ok());
        let email = state.auth.verify(header)?;
        Ok(Self { email })
    }
}

/// Who is asking, for the routes open to everyone that show an admin more (test-fixture
/// accommodations): [`Audience::Admin`] for a valid admin token, else [`Audience::Guest`].
/// Never rejects: a missing or bad token is a guest, so a guest learns nothing from it.
#[derive(Debug, Clone, Copy)]
pub struct Viewer(pub Audience);

impl FromRequestParts<AppState> for Viewer {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &AppState,
    ) -> Result<Self, std::convert::Infallible> {
        let header = parts
            .headers
            .get(AUTHORIZATION)
            .and_then(|v| v.to_str().ok());
        let admin = header.is_some() && state.auth.verify(header).is_ok();
        Ok(Self(if admin {
            Audience::Admin
        } else {
            Audience::Guest
        }))
    }
}
