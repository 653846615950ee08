//! Calendar routes: the public iCal export of a cabin
//! (`GET /api/v1/accommodations/{id}/calendar.ics?token=`), and the admin side of the sync
//! (`GET /api/v1/admin/accommodations/{id}/calendar`, adding a feed, syncing every feed now).
//!
//! A wrong or missing export token answers 404, the same as an unknown cabin, so the URL
//! reveals nothing to someone without it; the token is compared in constant time.

use axum::Json;
use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::calendar::ics::{self, BusyRange, ExportEvent};
use crate::calendar::{SyncSummary, new_export_token, token_matches};
use crate::error::{ApiError, ErrorBody};
use crate::http::admin::Admin;
use crate::http::extract::{ApiJson, ApiPath, ApiQuery};
use crate::http::state::AppState;
use crate::store::accommodations::Audience;
use crate::store::calendar::{self as store, CalendarImport};

/// The longest feed URL accepted.
const MAX_URL_LEN: usize = 2048;

/// Calendar routes.
pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(export))
        .routes(routes!(show))
        .routes(routes!(add_import))
        .routes(routes!(delete_import))
        .routes(routes!(sync_now))
}

/// `?token=`: the cabin's export secret.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
struct ExportQuery {
    /// The secret from the admin API's `export_url`.
    token: Option<String>,
}

/// The busy dates of one cabin as an iCalendar feed (RFC 5545).
#[utoipa::path(
    get,
    path = "/api/v1/accommodations/{id}/calendar.ics",
    operation_id = "export_calendar",
    tag = "reservations",
    params(("id" = i64, Path, description = "Accommodation id"), ExportQuery),
    responses(
        (status = 200, description = "Pre-reserved and confirmed stays as all-day events, no guest data", content_type = "text/calendar", body = String),
        (status = 400, description = "A path or query parameter is not well formed", body = ErrorBody),
        (status = 404, description = "No active accommodation has this id, or the token is wrong or missing", body = ErrorBody),
        (status = 503, description = "The database is not available", body = ErrorBody),
    )
)]
async fn export(
    State(state): State<AppState>,
    ApiPath(id): ApiPath<i64>,
    ApiQuery(query): ApiQuery<ExportQuery>,
) -> Result<Response, ApiError> {
    let not_found = || ApiError::NotFound(format!("no calendar for accommodation {id}"));
    let expected = store::stored_token(&state.db, id)
        .await?
        .ok_or_else(not_found)?;
    if !token_matches(&expected, query.token.as_deref().unwrap_or_default()) {
        return Err(not_found());
    }
    let cabin = state
        .accommodations
        .find_active(&state.db, id, Audience::Guest)
        .await?
        .ok_or_else(not_found)?;
    let now = crate::store::now();
    let events: Vec<ExportEvent> = store::busy_stays(&state.db, id, now.date_naive())
        .await?
        .into_iter()
        .map(|stay| ExportEvent {
            uid: format!("stay-{}@cabanas", stay.id),
            range: BusyRange {
                start: stay.check_in,
                end: stay.check_out,
            },
        })
        .collect();
    let body = ics::render(&cabin.name, &events, now);
    Ok((
        [
            (header::CONTENT_TYPE, "text/calendar; charset=utf-8"),
            (header::CACHE_CONTROL, "no-store"),
        ],
        body,
    )
        .into_response())
}

/// One imported feed as the admin API shows it.
#[derive(Debug, Serialize, ToSchema)]
pub struct ImportView {
    id: i64,
    url: String,
    /// When a sync last tried this feed.
    last_attempt_at: Option<DateTime<Utc>>,
    /// When a sync last succeeded.
    last_success_at: Option<DateTime<Utc>>,
    /// Why the last attempt failed (the previous blocks were kept); null after a success.
    last_error: Option<String>,
    /// Blocks the feed holds now.
    blocks: i64,
    /// Events of the last accepted feed whose dates were already taken here.
    skipped_events: i32,
    created_at: DateTime<Utc>,
}

impl From<CalendarImport> for ImportView {
    fn from(i: CalendarImport) -> Self {
        Self {
            id: i.id,
            url: i.url,
            last_attempt_at: i.last_attempt_at,
            last_success_at: i.last_success_at,
            last_error: i.last_error,
            blocks: i.blocks,
            skipped_events: i.skipped_events,
            created_at: i.created_at,
        }
    }
}

/// A cabin's calendar: where its export lives and the feeds it imports.
#[derive(Debug, Serialize, ToSchema)]
struct CalendarView {
    accommodation_id: i64,
    /// The export feed with its secret: give it to other channels, keep it from anyone else.
    export_url: String,
    /// Whether feeds are fetched at all (`CALENDAR_IMPORT`).
    import_enabled: bool,
    imports: Vec<ImportView>,
}

/// The cabin's export URL and imported feeds, each with its last sync and error.
#[utoipa::path(
    get,
    path = "/api/v1/admin/accommodations/{id}/calendar",
    operation_id = "get_calendar",
    tag = "admin",
    params(("id" = i64, Path, description = "Accommodation id")),
    security(("admin_bearer" = [])),
    responses(
        (status = 200, description = "The export URL and the imported feeds", body = CalendarView),
        (status = 400, description = "The path is not well formed", body = ErrorBody),
        (status = 401, description = "No bearer token, or an invalid or expired one", body = ErrorBody),
        (status = 403, description = "The token's email is not an admin", body = ErrorBody),
        (status = 404, description = "No active accommodation has this id", body = ErrorBody),
        (status = 503, description = "The database is not available", body = ErrorBody),
    )
)]
async fn show(
    State(state): State<AppState>,
    _admin: Admin,
    ApiPath(id): ApiPath<i64>,
) -> Result<Json<CalendarView>, ApiError> {
    let token = store::export_token(&state.db, id, &new_export_token())
        .await?
        .ok_or_else(|| ApiError::NotFound(format!("no active accommodation has id {id}")))?;
    let config = state.calendar.config();
    let path = format!("/api/v1/accommodations/{id}/calendar.ics?token={token}");
    let imports = store::imports(&state.db, Some(id)).await?;
    Ok(Json(CalendarView {
        accommodation_id: id,
        export_url: format!("{}{path}", config.public_url.as_deref().unwrap_or("")),
        import_enabled: config.import_enabled,
        imports: imports.into_iter().map(Into::into).collect(),
    }))
}

/// `{"url": "https://..."}`: a feed to import.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
struct NewImport {
    /// The other channel's iCal export URL (http or https).
    url: String,
}

/// Adds a feed to the cabin (adding it again returns the existing one); the next sync reads it.
#[utoipa::path(
    post,
    path = "/api/v1/admin/accommodations/{id}/calendar/imports",
    operation_id = "add_calendar_import",
    tag = "admin",
    params(("id" = i64, Path, description = "Accommodation id")),
    request_body = NewImport,
    security(("admin_bearer" = [])),
    responses(
        (status = 201, description = "The feed", body = ImportView),
        (status = 400, description = "The path is not well formed, or the body is not JSON", body = ErrorBody),
        (status = 401, description = "No bearer token, or an invalid or expired one", body = ErrorBody),
        (status = 403, description = "The token's email is not an admin", body = ErrorBody),
        (status = 404, description = "No active accommodation has this id", body = ErrorBody),
        (status = 413, description = "The body is larger than 64 KiB", body = ErrorBody),
        (status = 415, description = "The body is not declared as application/json", body = ErrorBody),
        (status = 422, description = "The URL is not http(s), too long, or points at a private address", body = ErrorBody),
        (status = 503, description = "The database is not available", body = ErrorBody),
    )
)]
async fn add_import(
    State(state): State<AppState>,
    _admin: Admin,
    ApiPath(id): ApiPath<i64>,
    ApiJson(new): ApiJson<NewImport>,
) -> Result<Response, ApiError> {
    let url = new.url.trim();
    if url.len() > MAX_URL_LEN || url.chars().any(char::is_control) {
        return Err(ApiError::validation(
            "url",
            format!("the URL must be at most {MAX_URL_LEN} characters, without control characters"),
        ));
    }
    state
        .calendar
        .check_url(url)
        .map_err(|why| ApiError::validation("url", why))?;
    state
        .accommodations
        .find_active(&state.db, id, Audience::Admin)
        .await?
        .ok_or_else(|| ApiError::NotFound(format!("no active accommodation has id {id}")))?;
    let import = store::add_import(&state.db, id, url, crate::store::now()).await?;
    Ok((StatusCode::CREATED, Json(ImportView::from(import))).into_response())
}

/// Removes a feed and the blocks it holds: their dates become free at once.
#[utoipa::path(
    delete,
    path = "/api/v1/admin/accommodations/{id}/calendar/imports/{import_id}",
    operation_id = "delete_calendar_import",
    tag = "admin",
    params(
        ("id" = i64, Path, description = "Accommodation id"),
        ("import_id" = i64, Path, description = "Feed id, from the cabin's calendar"),
    ),
    security(("admin_bearer" = [])),
    responses(
        (status = 204, description = "The feed and its blocks are gone"),
        (status = 400, description = "The path is not well formed", body = ErrorBody),
        (status = 401, description = "No bearer token, or an invalid or expired one", body = ErrorBody),
        (status = 403, description = "The token's email is not an admin", body = ErrorBody),
        (status = 404, description = "The cabin has no feed with this id", body = ErrorBody),
        (status = 503, description = "The database is not available", body = ErrorBody),
    )
)]
async fn delete_import(
    State(state): State<AppState>,
    _admin: Admin,
    ApiPath((id, import_id)): ApiPath<(i64, i64)>,
) -> Result<StatusCode, ApiError> {
    if store::delete_import(&state.db, id, import_id).await? {
        Ok(StatusCode::NO_CONTENT)
    } else {
        Err(ApiError::NotFound(format!(
            "accommodation {id} has no calendar feed {import_id}"
        )))
    }
}

/// Syncs every feed of every cabin now, one after the other; a failing feed keeps its blocks.
#[utoipa::path(
    post,
    path = "/api/v1/admin/calendar/sync",
    operation_id = "sync_calendars",
    tag = "admin",
    security(("admin_bearer" = [])),
    responses(
        (status = 200, description = "How many feeds synced and failed (details in each cabin's calendar)", body = SyncSummary),
        (status = 401, description = "No bearer token, or an invalid or expired one", body = ErrorBody),
        (status = 403, description = "The token's email is not an admin", body = ErrorBody),
        (status = 503, description = "The database is not available, or the sync outlasted the request timeout", body = ErrorBody),
    )
)]
async fn sync_now(
    State(state): State<AppState>,
    _admin: Admin,
) -> Result<Json<SyncSummary>, ApiError> {
    Ok(Json(state.calendar.sync_all(&state.db).await?))
}
