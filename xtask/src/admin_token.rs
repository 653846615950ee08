//! `cargo xtask admin-token`: mints a short-lived admin token (HS256) from an environment's
//! filled env file, for confirming or cancelling a reservation by hand. It prints only the
//! token, so it can be captured into a variable or piped; it never prints the secret.

use std::time::Duration;

use anyhow::bail;

use crate::config::DeployConfig;
use crate::overlap::admin::{AdminToken, admin_settings, sign_for};
use crate::repo::Repo;
use crate::verdict::Verdict;

/// The longest lifetime a token may be given.
pub const MAX_TTL: Duration = Duration::from_secs(24 * 3600);

/// How long a token is valid without `--ttl`.
pub const DEFAULT_TTL: Duration = Duration::from_secs(15 * 60);

/// Options of `cargo xtask admin-token`.
#[derive(Debug)]
pub struct Options {
    /// Environment from ops/deploy.toml whose env file holds JWT_SECRET and
    /// ADMIN_ALLOWED_EMAILS.
    pub env: String,
    /// Admin email to sign for; must be in ADMIN_ALLOWED_EMAILS. Default: the first listed.
    pub email: Option<String>,
    /// How long the token stays valid, e.g. 15m or 1h; at most 24h.
    pub ttl: Duration,
}

/// Prints the token on stdout.
pub fn run(args: Options) -> anyhow::Result<Verdict> {
    check_ttl(args.ttl)?;
    let repo = Repo::discover()?;
    let config = DeployConfig::load(&repo)?;
    let env_file = repo.path(&config.environment(&args.env)?.env_file);
    let token = mint(
        &env_file,
        args.email.as_deref(),
        args.ttl,
        chrono::Utc::now(),
    )?;
    println!("{}", token.expose());
    Ok(Verdict::Pass)
}

/// Signs a token for `email` (default: the first allowed) valid for `ttl` from `now`,
/// refusing an email that is not allowed and a lifetime over [`MAX_TTL`].
pub fn mint(
    env_file: &std::path::Path,
    email: Option<&str>,
    ttl: Duration,
    now: chrono::DateTime<chrono::Utc>,
) -> anyhow::Result<AdminToken> {
    check_ttl(ttl)?;
    let settings = admin_settings(env_file, "then run admin-token again")?;
    let email = match email {
        None => settings.emails[0].clone(),
        Some(email) => {
            let wanted = email.trim().to_ascii_lowercase();
            let Some(allowed) = settings
                .emails
                .iter()
                .find(|e| e.to_ascii_lowercase() == wanted)
            else {
                bail!(
                    "{email} is not in ADMIN_ALLOWED_EMAILS of {}: the service would answer 403; \
                     add it there (and to the app's secrets) or pick a listed address",
                    env_file.display()
                );
            };
            allowed.clone()
        }
    };
    let lifetime = i64::try_from(ttl.as_secs()).unwrap_or(i64::MAX);
    sign_for(settings.jwt_secret.expose(), &email, now, lifetime)
}

fn check_ttl(ttl: Duration) -> anyhow::Result<()> {
    if ttl > MAX_TTL {
        bail!("--ttl is longer than a day: admin tokens are short-lived; mint another later");
    }
    if ttl < Duration::from_secs(1) {
        bail!("--ttl must be at least 1s");
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    const SECRET: &str = "admin-token-test-secret-0123456789-abcdef";

    fn env_file(dir: &tempfile::TempDir) -> std::path::PathBuf {
        let path = dir.path().join(".env.fly.staging");
        std::fs::write(
            &path,
            format!("JWT_SECRET={SECRET}\nADMIN_ALLOWED_EMAILS=ana@example.com, Bo@Example.org\n"),
        )
        .unwrap();
        path
    }

    fn claims(token: &AdminToken) -> serde_json::Value {
        let mut validation = jsonwebtoken::Validation::new(jsonwebtoken::Algorithm::HS256);
        validation.set_required_spec_claims(&["exp"]);
        jsonwebtoken::decode::<serde_json::Value>(
            token.expose(),
            &jsonwebtoken::DecodingKey::from_secret(SECRET.as_bytes()),
            &validation,
        )
        .unwrap()
        .claims
    }

    #[test]
    fn mints_for_an_allowed_email_with_the_ttl() {
        let dir = tempfile::tempdir().unwrap();
        let path = env_file(&dir);
        let now = chrono::Utc::now();
        let token = mint(&path, None, Duration::from_secs(900), now).unwrap();
        let c = claims(&token);
        assert_eq!(c["email"], "ana@example.com");
        assert_eq!(c["exp"].as_i64().unwrap() - now.timestamp(), 900);
        let token = mint(&path, Some("bo@example.org"), Duration::from_secs(60), now).unwrap();
        assert_eq!(claims(&token)["email"], "Bo@Example.org");
    }

    #[test]
    fn refuses_other_emails_and_long_ttls_without_printing_the_secret() {
        let dir = tempfile::tempdir().unwrap();
        let path = env_file(&dir);
        let now = chrono::Utc::now();
        let error = format!(
            "{:#}",
            mint(&path, Some("eve@example.com"), Duration::from_secs(60), now).unwrap_err()
        );
        assert!(
            error.contains("ADMIN_ALLOWED_EMAILS") && !error.contains(SECRET),
            "{error}"
        );
        let error = format!(
            "{:#}",
            mint(&path, None, MAX_TTL + Duration::from_secs(1), now).unwrap_err()
        );
        assert!(error.contains("longer than a day"), "{error}");
        assert!(mint(&path, None, MAX_TTL, now).is_ok());
    }
}
