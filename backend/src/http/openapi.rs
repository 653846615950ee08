//! `GET /api/v1/openapi.json`: the OpenAPI 3.1 document of the service.
//!
//! Every route is registered through utoipa-axum's `routes!`, which takes the path, method,
//! parameters, bodies and statuses from the handler's `#[utoipa::path]` annotation and adds
//! the same handler to the router. The router and the document therefore come from one list
//! and cannot drift; `tests/it/openapi.rs` checks that nothing bypasses it.

use std::sync::OnceLock;

use axum::Json;
use utoipa::openapi::security::{Http, HttpAuthScheme, SecurityScheme};
use utoipa::{Modify, OpenApi};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::http::state::AppState;

/// Where the document is served.
pub const PATH: &str = cabanas_contract::routes::OPENAPI;

/// The name of the admin bearer security scheme in the document.
pub const ADMIN_SCHEME: &str = "admin_bearer";

pub use crate::error::ErrorBody;

#[derive(OpenApi)]
#[openapi(
    info(
        title = "sist-cabanas",
        description = "Cabin reservations: pre-reserve dates, confirm or cancel as an admin, \
                       with no two active reservations of one cabin overlapping."
    ),
    components(schemas(ErrorBody)),
    modifiers(&AdminBearer),
    tags(
        (name = "health", description = "Liveness, readiness and metrics"),
        (name = "reservations", description = "Accommodations, availability and reservations"),
        (name = "admin", description = "Admin actions (bearer token, HS256)"),
        (name = "webhooks", description = "Signed notifications from MercadoPago and WhatsApp"),
    )
)]
struct ApiDoc;

/// Declares the admin bearer scheme that confirm and cancel require.
struct AdminBearer;

impl Modify for AdminBearer {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        let mut scheme = Http::new(HttpAuthScheme::Bearer);
        scheme.bearer_format = Some("JWT".into());
        scheme.description = Some(
            "An HS256 token signed with JWT_SECRET whose `sub` (or `email`) is listed in \
             ADMIN_ALLOWED_EMAILS; `cargo xtask admin-token` mints one."
                .into(),
        );
        components.add_security_scheme(ADMIN_SCHEME, SecurityScheme::Http(scheme));
    }
}

/// Every route of the service with its documentation, starting from the document's header.
pub fn documented_routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::with_openapi(ApiDoc::openapi())
        .merge(crate::http::health::router())
        .merge(crate::http::accommodations::router())
        .merge(crate::http::calendar::router())
        .merge(crate::http::pre_reserve::router())
        .merge(crate::http::reservations::router())
        .merge(crate::http::test_fixtures::router())
        .merge(crate::http::webhooks::router())
        .merge(crate::http::version::router())
        .routes(routes!(document))
}

/// The document alone (for tests and tools).
pub fn document_value() -> utoipa::openapi::OpenApi {
    documented_routes().split_for_parts().1
}

/// The OpenAPI 3.1 document describing every route of this service.
#[utoipa::path(
    get,
    path = "/api/v1/openapi.json",
    operation_id = "openapi_document",
    tag = "health",
    responses((status = 200, description = "The OpenAPI 3.1 document", content_type = "application/json", body = Object))
)]
async fn document() -> Json<serde_json::Value> {
    static DOCUMENT: OnceLock<serde_json::Value> = OnceLock::new();
    let document = DOCUMENT.get_or_init(|| {
        serde_json::to_value(document_value()).expect("an OpenAPI document serialises to JSON")
    });
    Json(document.clone())
}
