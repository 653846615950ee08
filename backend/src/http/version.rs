//! `GET /api/v1/version`: which build this process is and where it runs, so a deploy can
//! prove the new build serves on every machine (Fly routes a request to one machine when it
//! carries `fly-force-instance-id`).

use axum::Json;
use axum::extract::State;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::http::state::AppState;

pub use super::identity::{BUILD_COMMIT, ServiceIdentity};

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
    use chrono::{DateTime, Utc};

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
