//! Calendar sync through HTTP on both databases: the iCal export read by a real RFC 5545
//! parser (the `icalendar` crate), imported feeds served from a loopback server becoming
//! blocks under the overlap guarantee, and bad feeds refused with their reason while the
//! blocks they had stay.

use crate::common;

use std::sync::{Arc, Mutex};

use axum::http::{HeaderMap, StatusCode as AxumStatus, header};
use axum::response::IntoResponse;
use chrono::NaiveDate;
use common::{Backend, TestApp, admin_token, metric, monday, plus};
use icalendar::{Component, DatePerhapsTime};
use reqwest::StatusCode;
use serde_json::{Value, json};

/// What the loopback feed answers: a body (with an ETag), or a status.
#[derive(Clone)]
enum FeedAnswer {
    Body(String),
    Status(u16),
}

/// A feed on 127.0.0.1 whose answer the test changes; it honours If-None-Match.
struct FeedServer {
    url: String,
    answer: Arc<Mutex<FeedAnswer>>,
    not_modified: Arc<Mutex<u32>>,
}

impl FeedServer {
    async fn start(answer: FeedAnswer) -> Self {
        let answer = Arc::new(Mutex::new(answer));
        let not_modified = Arc::new(Mutex::new(0));
        let (a, n) = (answer.clone(), not_modified.clone());
        let app = axum::Router::new().route(
            "/feed.ics",
            axum::routing::get(move |headers: HeaderMap| {
                let (a, n) = (a.clone(), n.clone());
                async move {
                    match a.lock().unwrap().clone() {
                        FeedAnswer::Status(code) => {
                            AxumStatus::from_u16(code).unwrap().into_response()
                        }
                        FeedAnswer::Body(body) => {
                            let etag = format!("\"{}\"", body.len());
                            if headers
                                .get(header::IF_NONE_MATCH)
                                .and_then(|v| v.to_str().ok())
                                == Some(etag.as_str())
                            {
                                *n.lock().unwrap() += 1;
                                return AxumStatus::NOT_MODIFIED.into_response();
                            }
                            ([(header::ETAG, etag)], body).into_response()
                        }
                    }
                }
            }),
        );
        let base = common::serve_on_loopback(app).await;
        Self {
            url: format!("{base}/feed.ics?s=channel-secret"),
            answer,
            not_modified,
        }
    }

    fn answer(&self, answer: FeedAnswer) {
        *self.answer.lock().unwrap() = answer;
    }
}

/// A feed with one all-day event `[start, end)`, as Airbnb-style exports write it.
fn feed_with(start: NaiveDate, end: NaiveDate) -> String {
    format!(
        "BEGIN:VCALENDAR\r\nVERSION:2.0\r\nPRODID:-//other channel//EN\r\nBEGIN:VEVENT\r\n\
         UID:abc@other\r\nDTSTAMP:20260101T000000Z\r\nDTSTART;VALUE=DATE:{}\r\n\
         DTEND;VALUE=DATE:{}\r\nSUMMARY:Reserved\r\nEND:VEVENT\r\nEND:VCALENDAR\r\n",
        start.format("%Y%m%d"),
        end.format("%Y%m%d")
    )
}

async fn spawn(backend: Backend, test: &str) -> Option<TestApp> {
    TestApp::spawn_with(backend, test, |c| c.calendar.allow_private_feeds = true).await
}

async fn admin(
    app: &TestApp,
    method: reqwest::Method,
    path: &str,
    body: Option<Value>,
) -> (StatusCode, Value) {
    let mut request = app
        .client
        .request(method, app.url(path))
        .bearer_auth(admin_token());
    if let Some(body) = body {
        request = request.json(&body);
    }
    common::read(request.send().await.expect("admin request")).await
}

async fn calendar(app: &TestApp) -> Value {
    let path = format!("/api/v1/admin/accommodations/{}/calendar", app.cabin_id);
    let (status, body) = admin(app, reqwest::Method::GET, &path, None).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    body
}

async fn add_feed(app: &TestApp, url: &str) -> (StatusCode, Value) {
    let path = format!(
        "/api/v1/admin/accommodations/{}/calendar/imports",
        app.cabin_id
    );
    admin(
        app,
        reqwest::Method::POST,
        &path,
        Some(json!({ "url": url })),
    )
    .await
}

async fn sync(app: &TestApp) -> Value {
    let (status, body) = admin(
        app,
        reqwest::Method::POST,
        "/api/v1/admin/calendar/sync",
        None,
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    body
}

async fn export_feed_parses_with_a_real_parser(backend: Backend) {
    let Some(app) = spawn(backend, "calendar_export").await else {
        return;
    };
    let (check_in, check_out) = (monday(6), plus(monday(6), 3));
    let (status, body) = app.pre_reserve(&app.booking(check_in, check_out)).await;
    assert_eq!(status, StatusCode::CREATED, "{body}");

    let export_url = calendar(&app).await["export_url"]
        .as_str()
        .unwrap()
        .to_owned();
    assert!(export_url.contains("token="), "{export_url}");
    let response = app.client.get(app.url(&export_url)).send().await.unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    let content_type = response.headers()[header::CONTENT_TYPE.as_str()]
        .to_str()
        .unwrap()
        .to_owned();
    assert!(content_type.starts_with("text/calendar"), "{content_type}");
    let text = response.text().await.unwrap();

    assert!(
        text.ends_with("\r\n") && !text.replace("\r\n", "").contains('\n'),
        "lines end in CRLF"
    );
    for line in text.split("\r\n") {
        assert!(line.len() <= 75, "{line:?} is longer than 75 octets");
    }
    assert!(
        !text.contains("Ana") && !text.contains("5555"),
        "no guest data:\n{text}"
    );
    let parsed: icalendar::Calendar = text.parse().expect("RFC 5545 parser accepts the export");
    let events: Vec<_> = parsed.events().collect();
    assert_eq!(events.len(), 1, "{text}");
    let event = events[0];
    assert!(event.get_uid().is_some_and(|uid| !uid.is_empty()));
    assert!(event.get_timestamp().is_some(), "DTSTAMP");
    assert_eq!(event.get_start(), Some(DatePerhapsTime::Date(check_in)));
    assert_eq!(
        event.get_end(),
        Some(DatePerhapsTime::Date(check_out)),
        "DTEND is exclusive"
    );

    let path = format!("/api/v1/accommodations/{}/calendar.ics", app.cabin_id);
    for wrong in [
        path.clone(),
        format!("{path}?token=wrong"),
        format!("{path}?token="),
    ] {
        let (status, body) = app.get(&wrong).await;
        assert_eq!(status, StatusCode::NOT_FOUND, "{wrong}: {body}");
    }
}

async fn an_imported_block_makes_an_overlapping_pre_reserve_409(backend: Backend) {
    let Some(app) = spawn(backend, "calendar_block").await else {
        return;
    };
    let (start, end) = (monday(8), plus(monday(8), 4));
    let feed = FeedServer::start(FeedAnswer::Body(feed_with(start, end))).await;
    let (status, body) = add_feed(&app, &feed.url).await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    let summary = sync(&app).await;
    assert_eq!(
        (summary["synced"].as_u64(), summary["failed"].as_u64()),
        (Some(1), Some(0)),
        "{summary}"
    );
    let feed_id = body["id"].as_i64().unwrap();
    let gauge = format!("calendar_feed_last_success_timestamp_seconds{{feed=\"{feed_id}\"}}");
    assert!(
        metric(&app, &gauge).await > 1.7e9,
        "the gauge holds the sync time"
    );

    let (status, body) = app
        .pre_reserve(&app.booking(plus(start, 1), plus(start, 2)))
        .await;
    assert_eq!(status, StatusCode::CONFLICT, "{body}");
    assert_eq!(body["error"], "date_overlap");
    let (status, body) = app.pre_reserve(&app.booking(end, plus(end, 2))).await;
    assert_eq!(
        status,
        StatusCode::CREATED,
        "a stay from the block's end is free: {body}"
    );
    assert_eq!(
        app.bookings_on(start, end).await,
        1,
        "availability shows the block"
    );

    // Unchanged feed: the stored ETag earns a 304 and the block stands.
    let summary = sync(&app).await;
    assert_eq!(summary["synced"], 1, "{summary}");
    assert_eq!(
        *feed.not_modified.lock().unwrap(),
        1,
        "If-None-Match was sent"
    );
    let import = calendar(&app).await["imports"][0].clone();
    assert_eq!(
        (import["blocks"].as_i64(), &import["last_error"]),
        (Some(1), &Value::Null),
        "{import}"
    );
    let (status, _) = app.pre_reserve(&app.booking(start, plus(start, 1))).await;
    assert_eq!(status, StatusCode::CONFLICT);

    // Removing the feed removes its block: the dates are free again.
    let id = import["id"].as_i64().unwrap();
    let path = format!(
        "/api/v1/admin/accommodations/{}/calendar/imports/{id}",
        app.cabin_id
    );
    let (status, _) = admin(&app, reqwest::Method::DELETE, &path, None).await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    assert_eq!(app.bookings_on(start, end).await, 0);
    let (status, _) = admin(&app, reqwest::Method::DELETE, &path, None).await;
    assert_eq!(status, StatusCode::NOT_FOUND);

    // The export carries the cabin's own stay, not the imported block.
    let export_url = calendar(&app).await["export_url"]
        .as_str()
        .unwrap()
        .to_owned();
    let text = common::get_text(&app.client, app.url(&export_url)).await;
    let parsed: icalendar::Calendar = text.parse().unwrap();
    assert_eq!(parsed.events().count(), 1, "{text}");
}

async fn a_bad_feed_is_refused_and_the_blocks_stay(backend: Backend) {
    let Some(app) = spawn(backend, "calendar_bad_feed").await else {
        return;
    };
    let (start, end) = (monday(9), plus(monday(9), 2));
    let feed = FeedServer::start(FeedAnswer::Body(feed_with(start, end))).await;
    assert_eq!(add_feed(&app, &feed.url).await.0, StatusCode::CREATED);
    sync(&app).await;

    let malformed_before = metric(&app, "calendar_sync_failures_total{reason=\"malformed\"}").await;
    feed.answer(FeedAnswer::Body("<html>maintenance</html>".into()));
    let summary = sync(&app).await;
    assert_eq!(summary["failed"], 1, "{summary}");
    let import = calendar(&app).await["imports"][0].clone();
    let error = import["last_error"].as_str().unwrap_or_default();
    assert!(error.contains("BEGIN:VCALENDAR"), "{import}");
    assert!(
        !error.contains("channel-secret"),
        "the URL is never in the error"
    );
    assert_eq!(import["blocks"], 1, "the block stays: {import}");
    let malformed_after = metric(&app, "calendar_sync_failures_total{reason=\"malformed\"}").await;
    assert!(malformed_after > malformed_before);

    // 2 MiB: over the 1 MiB cap, refused without being read whole.
    feed.answer(FeedAnswer::Body("X".repeat(2 * 1024 * 1024)));
    sync(&app).await;
    let import = calendar(&app).await["imports"][0].clone();
    assert!(
        import["last_error"]
            .as_str()
            .unwrap_or_default()
            .contains("larger than"),
        "{import}"
    );
    assert_eq!(import["blocks"], 1, "{import}");

    feed.answer(FeedAnswer::Status(500));
    sync(&app).await;
    let import = calendar(&app).await["imports"][0].clone();
    assert!(
        import["last_error"]
            .as_str()
            .unwrap_or_default()
            .contains("500"),
        "{import}"
    );
    let (status, _) = app.pre_reserve(&app.booking(start, end)).await;
    assert_eq!(
        status,
        StatusCode::CONFLICT,
        "the kept block still guards its dates"
    );
}

async fn private_feed_urls_are_refused_by_default(backend: Backend) {
    let Some(app) = TestApp::spawn(backend, "calendar_private").await else {
        return;
    };
    for url in [
        "http://127.0.0.1:9/feed.ics",
        "http://169.254.169.254/latest",
        "file:///etc/passwd",
    ] {
        let (status, body) = add_feed(&app, url).await;
        assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{url}: {body}");
    }
    let path = format!("/api/v1/admin/accommodations/{}/calendar", app.cabin_id);
    let (status, _) = app.get(&path).await;
    assert_eq!(
        status,
        StatusCode::UNAUTHORIZED,
        "the admin calendar needs a token"
    );
}

async fn with_import_off_no_feed_is_fetched(backend: Backend) {
    let Some(app) = TestApp::spawn_with(backend, "calendar_off", |c| {
        c.calendar.allow_private_feeds = true;
        c.calendar.import_enabled = false;
    })
    .await
    else {
        return;
    };
    let (start, end) = (monday(7), plus(monday(7), 2));
    let feed = FeedServer::start(FeedAnswer::Body(feed_with(start, end))).await;
    assert_eq!(add_feed(&app, &feed.url).await.0, StatusCode::CREATED);
    let summary = sync(&app).await;
    assert_eq!(summary["import_enabled"], false, "{summary}");
    assert_eq!(calendar(&app).await["imports"][0]["blocks"], 0);
    let (status, body) = app.pre_reserve(&app.booking(start, end)).await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
}

/// A guard put back as migration 0001 wrote it (stays only) lets bookings take blocked
/// dates: the service counts it as missing, so readiness and a start refuse it.
async fn a_guard_without_blocks_counts_as_missing(backend: Backend) {
    let Some(app) = spawn(backend, "calendar_guard").await else {
        return;
    };
    assert!(
        app.state
            .db
            .missing_overlap_guard()
            .await
            .unwrap()
            .is_empty()
    );
    let old_guard = match backend {
        Backend::Postgres => {
            "ALTER TABLE reservations DROP CONSTRAINT reservations_no_overlap; \
             ALTER TABLE reservations ADD CONSTRAINT reservations_no_overlap EXCLUDE USING gist \
             (accommodation_id WITH =, period WITH &&) \
             WHERE (status IN ('pre_reserved', 'confirmed'))"
        }
        Backend::Sqlite => {
            "DROP TRIGGER reservations_no_overlap_insert; \
             CREATE TRIGGER reservations_no_overlap_insert BEFORE INSERT ON reservations \
             WHEN NEW.status IN ('pre_reserved', 'confirmed') BEGIN \
             SELECT RAISE(ABORT, 'date_overlap') WHERE EXISTS (SELECT 1 FROM reservations AS r \
             WHERE r.accommodation_id = NEW.accommodation_id \
             AND r.status IN ('pre_reserved', 'confirmed') \
             AND r.check_in < NEW.check_out AND NEW.check_in < r.check_out); END;"
        }
    };
    match &app.state.db {
        backend::Db::Postgres(pg) => sqlx::raw_sql(old_guard).execute(pg.pool()).await.map(drop),
        backend::Db::Sqlite(pool) => sqlx::raw_sql(old_guard).execute(pool).await.map(drop),
    }
    .expect("putting the old guard back");
    let missing = app.state.db.missing_overlap_guard().await.unwrap();
    assert_eq!(missing.len(), 1, "{missing:?}");
    assert!(missing[0].contains("blocked"), "{missing:?}");
}

on_both_backends!(
    a_guard_without_blocks_counts_as_missing,
    export_feed_parses_with_a_real_parser,
    an_imported_block_makes_an_overlapping_pre_reserve_409,
    a_bad_feed_is_refused_and_the_blocks_stay,
    private_feed_urls_are_refused_by_default,
    with_import_off_no_feed_is_fetched,
);
