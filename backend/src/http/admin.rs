//! The admin extractor: a handler taking [`Admin`] runs only for a valid admin token
//! (verified by [`crate::auth::AdminAuth`]).

use axum::extract::FromRequestParts;
use axum::http::header::AUTHORIZATION;
use axum::http::request::Parts;

use crate::error::ApiError;
use crate::http::state::AppState;

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
