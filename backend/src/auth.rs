//! Admin authentication: `Authorization: Bearer <JWT>`, HS256 with `JWT_SECRET`, an
//! `email` claim listed in `ADMIN_ALLOWED_EMAILS`, `exp` required and checked, and `nbf`
//! (not before) and `iat` (issued at), when present, not in the future; all three with the
//! same leeway for clock skew.
//!
//! Without `JWT_SECRET` the admin routes are disabled and answer 401 to every request.

use jsonwebtoken::{Algorithm, DecodingKey, Validation, decode};
use serde::Deserialize;

use crate::config::Secret;
use crate::error::ApiError;

/// Verifies admin tokens.
#[derive(Clone)]
pub struct AdminAuth {
    key: Option<DecodingKey>,
    allowed_emails: Vec<String>,
    validation: Validation,
}

/// Clock skew tolerated on `exp`, `nbf` and `iat`, in seconds.
const LEEWAY_SECS: u64 = 30;

#[derive(Debug, Deserialize)]
struct Claims {
    email: String,
    /// Issued at (seconds since the epoch); a token from the future is refused.
    #[serde(default)]
    iat: Option<i64>,
}

impl AdminAuth {
    /// `secret` from `JWT_SECRET` (None disables admin routes); `allowed_emails` lowercased.
    pub fn new(secret: Option<&Secret>, allowed_emails: Vec<String>) -> Self {
        let mut validation = Validation::new(Algorithm::HS256);
        validation.set_required_spec_claims(&["exp"]);
        validation.validate_nbf = true;
        validation.leeway = LEEWAY_SECS;
        Self {
            key: secret.map(|s| DecodingKey::from_secret(s.expose().as_bytes())),
            allowed_emails,
            validation,
        }
    }

    /// Whether admin routes can succeed at all.
    pub fn enabled(&self) -> bool {
        self.key.is_some()
    }

    /// Checks an `Authorization` header value; returns the admin's email.
    pub fn verify(&self, authorization: Option<&str>) -> Result<String, ApiError> {
        let Some(key) = &self.key else {
            return Err(ApiError::Unauthorized(
                "admin routes are disabled: the server has no JWT_SECRET".into(),
            ));
        };
        let token = authorization
            .and_then(|h| {
                h.strip_prefix("Bearer ")
                    .or_else(|| h.strip_prefix("bearer "))
            })
            .map(str::trim)
            .filter(|t| !t.is_empty())
            .ok_or_else(|| ApiError::Unauthorized("a Bearer token is required".into()))?;
        let claims = decode::<Claims>(token, key, &self.validation)
            .map_err(|err| {
                use jsonwebtoken::errors::ErrorKind;
                let why = match err.kind() {
                    ErrorKind::ExpiredSignature => "the token has expired",
                    ErrorKind::InvalidSignature => "the token signature is invalid",
                    ErrorKind::ImmatureSignature => "the token is not valid yet (nbf)",
                    _ => "the token is invalid",
                };
                ApiError::Unauthorized(why.into())
            })?
            .claims;
        let now = chrono::Utc::now().timestamp();
        if claims
            .iat
            .is_some_and(|iat| iat > now.saturating_add(LEEWAY_SECS as i64))
        {
            return Err(ApiError::Unauthorized(
                "the token was issued in the future (iat)".into(),
            ));
        }
        let email = claims.email.trim().to_ascii_lowercase();
        if self.allowed_emails.contains(&email) {
            Ok(email)
        } else {
            Err(ApiError::Forbidden)
        }
    }
}
