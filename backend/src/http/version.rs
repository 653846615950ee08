//! `GET /api/v1/version`: which build this process is and where it runs, so a deploy can
//! prove the new build serves on every machine (Fly routes a request to one machine when it
//! carries `fly-force-instance-id`).

use axum::Json;
use axum::extract::State;
use chrono::{DateTime, SecondsFormat, Utc};
use serde::Serialize;
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::AppState;

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

/// The version route.
pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(version))
}

/// Which build answers and where it runs: crate version, commit, image, machine, region.
#[utoipa::path(
    get,
    path = "/api/v1/version",
    operation_id = "get_version",
    tag = "health",
    responses((status = 200, description = "The build and the machine that answered", body = ServiceIdentity))
)]
async fn version(State(state): State<AppState>) -> Json<ServiceIdentity> {
    Json(state.identity.as_ref().clone())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn runtime_commit_wins_and_unset_fields_are_none() {
        let started = DateTime::parse_from_rfc3339("2026-01-02T03:04:05Z")
            .unwrap()
            .with_timezone(&Utc);
        let vars = [
            ("GIT_COMMIT", "abc123"),
            ("FLY_REGION", "scl"),
            ("FLY_MACHINE_ID", " "),
        ];
        let lookup = |name: &str| {
            vars.iter()
                .find(|(key, _)| *key == name)
                .map(|(_, value)| (*value).to_owned())
        };
        let identity = ServiceIdentity::from_lookup(lookup, started);
        assert_eq!(identity.commit, "abc123");
        assert_eq!(identity.region.as_deref(), Some("scl"));
        assert_eq!(identity.machine, None, "a blank value is unset");
        assert_eq!(identity.image, None);
        assert_eq!(identity.started_at, "2026-01-02T03:04:05Z");

        let baked = ServiceIdentity::from_lookup(|_| None, started);
        assert_eq!(baked.commit, BUILD_COMMIT);
        assert!(!BUILD_COMMIT.is_empty());
    }
}
