//! The admin token cleanup cancels with: given (`--admin-token` / `CABANAS_ADMIN_TOKEN`), or
//! signed here, HS256 with the env file's `JWT_SECRET`, for the first address in its
//! `ADMIN_ALLOWED_EMAILS`, valid for a short while. Neither the secret nor the token is ever
//! printed: [`AdminToken`] shows `****`.

use std::path::Path;

use anyhow::{Context, bail};
use serde::Serialize;

use crate::predeploy::envfile::parse_env_file;

/// How long a token signed here stays valid. Long enough for many rounds at N=1000.
pub const TOKEN_LIFETIME_SECS: i64 = 30 * 60;

/// A bearer token. `Debug` and `Display` print `****`.
#[derive(Clone)]
pub struct AdminToken(String);

impl AdminToken {
    /// Wraps a token.
    pub fn new(token: impl Into<String>) -> AdminToken {
        AdminToken(token.into().trim().to_string())
    }

    /// The token itself, for the `Authorization` header only.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Debug for AdminToken {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("AdminToken(****)")
    }
}

impl std::fmt::Display for AdminToken {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("****")
    }
}

#[derive(Serialize)]
struct Claims<'a> {
    email: &'a str,
    sub: &'a str,
    iat: i64,
    exp: i64,
}

/// Signs a short-lived admin token for `email` with `secret` (HS256), valid for
/// [`TOKEN_LIFETIME_SECS`].
pub fn sign(
    secret: &str,
    email: &str,
    now: chrono::DateTime<chrono::Utc>,
) -> anyhow::Result<AdminToken> {
    sign_for(secret, email, now, TOKEN_LIFETIME_SECS)
}

/// Signs an admin token for `email` with `secret` (HS256), valid for `lifetime_secs`.
pub fn sign_for(
    secret: &str,
    email: &str,
    now: chrono::DateTime<chrono::Utc>,
    lifetime_secs: i64,
) -> anyhow::Result<AdminToken> {
    let iat = now.timestamp();
    let claims = Claims {
        email,
        sub: email,
        iat,
        exp: iat + lifetime_secs,
    };
    let key = jsonwebtoken::EncodingKey::from_secret(secret.as_bytes());
    let token = jsonwebtoken::encode(&jsonwebtoken::Header::default(), &claims, &key)
        .context("signing the admin token")?;
    Ok(AdminToken(token))
}

/// What signing needs from an env file: `JWT_SECRET` and the `ADMIN_ALLOWED_EMAILS` list.
pub struct AdminSettings {
    /// `JWT_SECRET` (shown nowhere; [`AdminToken`] wraps it to keep it out of `Debug`).
    pub jwt_secret: AdminToken,
    /// `ADMIN_ALLOWED_EMAILS`, trimmed, in file order.
    pub emails: Vec<String>,
}

/// Reads `JWT_SECRET` and `ADMIN_ALLOWED_EMAILS` from an env file. `remedy` ends each error
/// with what the caller can do instead. Errors name the file and the variable, never a value.
pub fn admin_settings(path: &Path, remedy: &str) -> anyhow::Result<AdminSettings> {
    let text =
        crate::files::read_text_capped(path, crate::files::CONFIG_LIMIT).with_context(|| {
            format!(
                "reading {} for JWT_SECRET: fill it from its template, {remedy}",
                path.display()
            )
        })?;
    let entries = parse_env_file(&text).map_err(|problems| {
        let lines: Vec<String> = problems
            .iter()
            .map(|p| format!("line {}: {}", p.line, p.message))
            .collect();
        anyhow::anyhow!("{} cannot be read: {}", path.display(), lines.join("; "))
    })?;
    // Later lines win, as they do when the file is imported.
    let value = |key: &str| {
        entries
            .iter()
            .rev()
            .find(|entry| entry.key == key)
            .map(|entry| entry.value.expose().trim().to_string())
            .filter(|value| !value.is_empty())
    };
    let Some(secret) = value("JWT_SECRET") else {
        bail!(
            "{} has no JWT_SECRET: fill it (at least 32 random characters), {remedy}",
            path.display()
        );
    };
    let emails: Vec<String> = value("ADMIN_ALLOWED_EMAILS")
        .map(|list| {
            list.split(',')
                .map(str::trim)
                .filter(|e| e.contains('@'))
                .map(str::to_string)
                .collect()
        })
        .unwrap_or_default();
    if emails.is_empty() {
        bail!(
            "{} has no address in ADMIN_ALLOWED_EMAILS: add the admin's email, {remedy}",
            path.display()
        );
    }
    Ok(AdminSettings {
        jwt_secret: AdminToken(secret),
        emails,
    })
}

/// Signs a token from an env file's `JWT_SECRET` and first `ADMIN_ALLOWED_EMAILS` address.
pub fn token_from_env_file(path: &Path) -> anyhow::Result<AdminToken> {
    let settings = admin_settings(
        path,
        "or pass --admin-token, or --no-cleanup to leave the bookings behind",
    )?;
    sign(
        settings.jwt_secret.expose(),
        &settings.emails[0],
        chrono::Utc::now(),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    const SECRET: &str = "test-secret-that-is-at-least-32-characters";

    #[test]
    fn signs_a_verifiable_token_for_the_first_admin() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join(".env.test");
        std::fs::write(
            &path,
            format!(
                "# comment\nJWT_SECRET={SECRET}\nADMIN_ALLOWED_EMAILS=ana@example.com, bo@x.org\n"
            ),
        )
        .unwrap();
        let token = token_from_env_file(&path).unwrap();
        let mut validation = jsonwebtoken::Validation::new(jsonwebtoken::Algorithm::HS256);
        validation.set_required_spec_claims(&["exp"]);
        let decoded = jsonwebtoken::decode::<serde_json::Value>(
            token.expose(),
            &jsonwebtoken::DecodingKey::from_secret(SECRET.as_bytes()),
            &validation,
        )
        .unwrap();
        assert_eq!(decoded.claims["email"], "ana@example.com");
        assert_eq!(format!("{token} {token:?}"), "**** AdminToken(****)");
    }

    #[test]
    fn missing_secret_is_named_without_values() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join(".env.test");
        std::fs::write(&path, "ADMIN_ALLOWED_EMAILS=ana@example.com\n").unwrap();
        let error = format!("{:#}", token_from_env_file(&path).unwrap_err());
        assert!(error.contains("JWT_SECRET"), "{error}");
        std::fs::write(&path, format!("JWT_SECRET={SECRET}\n")).unwrap();
        let error = format!("{:#}", token_from_env_file(&path).unwrap_err());
        assert!(
            error.contains("ADMIN_ALLOWED_EMAILS") && !error.contains(SECRET),
            "{error}"
        );
        let error = format!(
            "{:#}",
            token_from_env_file(&dir.path().join("absent")).unwrap_err()
        );
        assert!(error.contains("--no-cleanup"), "{error}");
    }
}
