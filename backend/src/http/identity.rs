//! Which build this process is and where it runs (what `GET /api/v1/version` answers),
//! read once at start and kept in the app state.

use chrono::{DateTime, SecondsFormat, Utc};
use serde::Serialize;
use utoipa::ToSchema;

/// The commit baked in at build time by `build.rs` (`GIT_COMMIT` or `git rev-parse HEAD`,
/// `unknown` when neither is available).
pub const BUILD_COMMIT: &str = env!("CABANAS_GIT_COMMIT");

/// What `GET /api/v1/version` answers. Fields that are not known are `null`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, ToSchema)]
pub struct ServiceIdentity {
    /// The crate version.
    pub version: String,
    /// The git commit of the build: `GIT_COMMIT` at run time when set (the image's
    /// `ENV GIT_COMMIT`), else [`BUILD_COMMIT`].
    pub commit: String,
    /// `FLY_IMAGE_REF`: the image the machine runs.
    pub image: Option<String>,
    /// `FLY_MACHINE_ID`.
    pub machine: Option<String>,
    /// `FLY_REGION`.
    pub region: Option<String>,
    /// When this process started serving, RFC 3339 in UTC.
    pub started_at: String,
}

impl ServiceIdentity {
    /// The identity from the process environment, started now.
    pub fn from_env() -> Self {
        Self::from_lookup(|name| std::env::var(name).ok(), Utc::now())
    }

    /// The identity from a variable lookup; empty values count as unset.
    pub fn from_lookup(get: impl Fn(&str) -> Option<String>, started: DateTime<Utc>) -> Self {
        let get = |name: &str| get(name).filter(|value| !value.trim().is_empty());
        Self {
            version: env!("CARGO_PKG_VERSION").to_owned(),
            commit: get("GIT_COMMIT").unwrap_or_else(|| BUILD_COMMIT.to_owned()),
            image: get("FLY_IMAGE_REF"),
            machine: get("FLY_MACHINE_ID"),
            region: get("FLY_REGION"),
            started_at: started.to_rfc3339_opts(SecondsFormat::Secs, true),
        }
    }
}
