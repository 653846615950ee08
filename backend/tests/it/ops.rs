//! Health, readiness, metrics, availability and the concurrency guarantee through HTTP,
//! on SQLite and PostgreSQL.

use crate::common;

use std::sync::Arc;

use backend::Config;
use backend::config::DatabaseUrl;
use common::{Backend, TestApp, monday, plus};
use reqwest::StatusCode;
use tokio::sync::Barrier;

on_both_backends!(
    health_reports_the_database,
    readyz_fails_when_the_database_is_gone,
    metrics_use_route_templates,
    availability_shows_dates_not_people,
    concurrent_pre_reserves_have_one_winner,
    migrate_accepts_a_newer_release_migration,
    health_probes_are_shared_while_fresh,
    abandoned_idempotency_claims_are_taken_over,
    version_names_the_build_and_the_machine,
);

async fn health_reports_the_database(backend: Backend) {
    let Some(app) = TestApp::spawn(backend, "health").await else {
        return;
    };
    let (status, body) = app.get("/api/v1/healthz").await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["status"], "healthy");
    assert_eq!(body["checks"]["database"]["status"], "healthy");
    assert!(body["checks"]["database"]["latency_ms"].is_u64());
    let (status, body) = app.get("/api/v1/readyz").await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["status"], "ready");

    let response = app
        .client
        .get(app.url("/api/v1/healthz"))
        .send()
        .await
        .unwrap();
    assert!(response.headers().contains_key("x-request-id"));
    let response = app
        .client
        .get(app.url("/api/v1/healthz"))
        .header("x-request-id", "trace-me-42")
        .send()
        .await
        .unwrap();
    assert_eq!(response.headers()["x-request-id"], "trace-me-42");
}

async fn readyz_fails_when_the_database_is_gone(backend: Backend) {
    let Some(app) = TestApp::spawn(backend, "readyz_down").await else {
        return;
    };
    app.state.db.close().await;
    let (status, body) = app.get("/api/v1/readyz").await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE, "{body}");
    assert_eq!(body["error"], "unavailable");
    let (status, body) = app.get("/api/v1/healthz").await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE, "{body}");
    assert_eq!(body["status"], "unhealthy");
    // Requests needing the database answer 503 with the error body, not 500.
    let (status, body) = app.get("/api/v1/reservations/accommodations").await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE, "{body}");
}

async fn metrics_use_route_templates(backend: Backend) {
    let Some(app) = TestApp::spawn(backend, "metrics").await else {
        return;
    };
    let response = app.client.get(app.url("/metrics")).send().await.unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    let text = response.text().await.unwrap();
    for name in backend::telemetry::METRIC_NAMES {
        assert!(text.contains(name), "{name} missing from /metrics:\n{text}");
    }

    let (status, _) = app.get("/api/v1/reservations/CB-NOTHERE").await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    let text = common::get_text(&app.client, app.url("/metrics")).await;
    let line = text
        .lines()
        .find(|l| {
            l.starts_with("http_requests_total{")
                && l.contains(r#"route="/api/v1/reservations/{code}""#)
                && l.contains(r#"status="404""#)
        })
        .unwrap_or_else(|| panic!("no templated route label in:\n{text}"));
    assert!(line.contains(r#"method="GET""#), "{line}");
    assert!(
        !text.contains("CB-NOTHERE"),
        "raw paths must not become labels"
    );
    assert!(
        text.contains("http_request_duration_seconds_bucket{route=\"/api/v1/reservations/{code}\"")
    );
}

async fn availability_shows_dates_not_people(backend: Backend) {
    let Some(app) = TestApp::spawn(backend, "availability").await else {
        return;
    };
    let day = monday(8);
    let (status, _) = app.pre_reserve(&app.booking(day, plus(day, 2))).await;
    assert_eq!(status, StatusCode::CREATED);
    let (status, _) = app
        .pre_reserve(&app.booking(plus(day, 10), plus(day, 12)))
        .await;
    assert_eq!(status, StatusCode::CREATED);

    let path = |from, to| {
        format!(
            "/api/v1/accommodations/{}/availability?from={}&to={}",
            app.cabin_id,
            plus(day, from),
            plus(day, to)
        )
    };
    // [day+1, day+10) meets the first stay only (the second starts on `to`).
    let (status, body) = app.get(&path(1, 10)).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["accommodation_id"], app.cabin_id);
    let bookings = body["bookings"].as_array().unwrap();
    assert_eq!(bookings.len(), 1, "{body}");
    assert_eq!(bookings[0]["check_in"], day.to_string());
    assert_eq!(bookings[0]["check_out"], plus(day, 2).to_string());
    assert_eq!(bookings[0]["status"], "pre_reserved");
    let text = body.to_string();
    for private in ["Ana", "5555", "example.com", "code"] {
        assert!(!text.contains(private), "{private} leaked: {text}");
    }
    let (_, body) = app.get(&path(-5, 20)).await;
    assert_eq!(body["bookings"].as_array().unwrap().len(), 2);

    let (status, body) = app.get(&path(3, 3)).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(body["field"], "to");
    let (status, body) = app
        .get(&format!(
            "/api/v1/accommodations/{}/availability?from={}&to={}",
            app.inactive_id,
            monday(4),
            plus(monday(4), 4)
        ))
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND, "{body}");
    let (status, body) = app
        .get(&format!(
            "/api/v1/accommodations/{}/availability?from=soon",
            app.cabin_id
        ))
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(body["error"], "bad_request");

    let (status, list) = app.get("/api/v1/reservations/accommodations").await;
    assert_eq!(status, StatusCode::OK);
    let list = list.as_array().unwrap();
    assert_eq!(list.len(), 1, "only the active cabin is listed");
    assert_eq!(list[0]["id"], app.cabin_id);
    assert_eq!(list[0]["base_price"], "100.00");
    assert_eq!(list[0]["weekend_multiplier"], "1.20");
    assert_eq!(list[0]["capacity"], 4);
}

/// The guarantee under real concurrency: 200 requests for the same dates, released
/// together, give exactly one 201 and 199 × 409 `date_overlap`, never a 5xx (nor a 429).
async fn concurrent_pre_reserves_have_one_winner(backend: Backend) {
    const N: usize = 200;
    let Some(app) = TestApp::spawn(backend, "race").await else {
        return;
    };
    let day = monday(30);
    let body = Arc::new(app.booking(day, plus(day, 3)));
    let url = Arc::new(app.url("/api/v1/reservations/pre-reserve"));
    let barrier = Arc::new(Barrier::new(N));
    let mut tasks = Vec::with_capacity(N);
    for _ in 0..N {
        let (body, url, barrier) = (body.clone(), url.clone(), barrier.clone());
        let client = common::client();
        tasks.push(tokio::spawn(async move {
            barrier.wait().await;
            // The admin token exempts the race from the per-client rate limit, as overlap's
            // does: the race is judged on 201/409 alone.
            let request = client.post(url.as_str()).bearer_auth(common::admin_token());
            common::read(request.json(&*body).send().await.unwrap()).await
        }));
    }
    let mut created = 0;
    let mut overlaps = 0;
    for task in tasks {
        let (status, answer) = task.await.unwrap();
        match status {
            StatusCode::CREATED => created += 1,
            StatusCode::CONFLICT if answer["error"] == "date_overlap" => overlaps += 1,
            other => panic!("unexpected {other}: {answer}"),
        }
    }
    assert_eq!((created, overlaps), (1, N - 1));

    assert_eq!(app.bookings_on(day, plus(day, 3)).await, 1);
}

/// `serve` on PostgreSQL refuses to start while migrations are pending.
#[tokio::test]
async fn postgres_with_pending_migrations_does_not_start() {
    let Some(url) = common::fresh_postgres_database("pending_migrations").await else {
        return;
    };
    let config = Config::for_database(DatabaseUrl::parse(&url).unwrap());
    let err = match backend::build_state(&config).await {
        Ok(_) => panic!("started with pending migrations"),
        Err(err) => format!("{err:#}"),
    };
    assert!(err.contains("cabanas migrate"), "{err}");
    assert!(!err.contains(&url), "the URL must not be echoed: {err}");

    let db = backend::Db::connect(&config).await.unwrap();
    assert!(!db.pending_migrations().await.unwrap().is_empty());
    db.migrate().await.unwrap();
    assert!(db.pending_migrations().await.unwrap().is_empty());
    assert!(backend::build_state(&config).await.is_ok());
}

/// A rollback runs the previous image's `cabanas migrate` against a database that a newer
/// release already migrated: that must succeed and leave the service ready.
async fn migrate_accepts_a_newer_release_migration(backend: Backend) {
    let Some(app) = TestApp::spawn(backend, "migrate_newer").await else {
        return;
    };
    const NEWER: &str = "INSERT INTO _sqlx_migrations \
                         (version, description, success, checksum, execution_time) \
                         VALUES (99990101000000, 'from a newer release', TRUE, $1, 1)";
    match &app.state.db {
        backend::db::Db::Postgres(pg) => sqlx::query(NEWER)
            .bind(vec![0u8])
            .execute(pg.pool())
            .await
            .map(drop),
        backend::db::Db::Sqlite(pool) => sqlx::query(NEWER)
            .bind(vec![0u8])
            .execute(pool)
            .await
            .map(drop),
    }
    .expect("recording a newer migration");
    app.state
        .db
        .migrate()
        .await
        .expect("an older binary migrates after a newer one");
    let (status, body) = app.get("/api/v1/readyz").await;
    assert_eq!(status, StatusCode::OK, "{body}");
}

/// `healthz` shares one database probe between requests while it is fresh, and probes again
/// once it is older than the configured age.
async fn health_probes_are_shared_while_fresh(backend: Backend) {
    let Some(app) = TestApp::spawn(backend, "health_probe").await else {
        return;
    };
    let shared = backend::health_probe::HealthProbe::new(std::time::Duration::from_secs(60));
    let first = shared.check(&app.state.db).await;
    let second = shared.check(&app.state.db).await;
    assert_eq!(first, second, "a fresh result is reused");

    let uncached = backend::health_probe::HealthProbe::new(std::time::Duration::ZERO);
    let first = uncached.check(&app.state.db).await;
    let second = uncached.check(&app.state.db).await;
    assert_ne!(first.at, second.at, "with no cache every check probes");

    // Through HTTP with the default age: a lost database shows within that age.
    app.state.db.close().await;
    tokio::time::sleep(app.state.health.max_age() + std::time::Duration::from_millis(50)).await;
    let (status, body) = app.get("/api/v1/healthz").await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE, "{body}");
    assert_eq!(body["status"], "unhealthy");
}

/// A request cut off between claiming its idempotency key and storing the answer leaves a
/// claim without a response; once older than the lease a retry takes it over instead of
/// hearing "in progress" forever, and keys past retention are forgotten.
async fn abandoned_idempotency_claims_are_taken_over(backend: Backend) {
    use backend::store::idempotency::{Claim, claim, forget_old};
    let Some(app) = TestApp::spawn(backend, "idem_takeover").await else {
        return;
    };
    let db = &app.state.db;
    // The same request body under one key, claimed at `now` by a request that takes over
    // claims made before `abandoned_before`.
    let claim_body = |now, abandoned_before| claim(db, "key-1", "{body}", now, abandoned_before);
    let long_ago = chrono::Utc::now() - chrono::Duration::hours(1);
    let first = claim_body(long_ago, long_ago - chrono::Duration::minutes(1))
        .await
        .unwrap();
    assert_eq!(first, Claim::Acquired);

    // Still within the lease: the first request may be running, so the retry waits.
    let now = chrono::Utc::now();
    let waiting = claim_body(now, long_ago - chrono::Duration::minutes(1))
        .await
        .unwrap();
    assert!(
        matches!(waiting, Claim::Existing { response: None, .. }),
        "{waiting:?}"
    );
    // Another body under the same key is never taken over.
    let other = claim(db, "key-1", "{other}", now, now).await.unwrap();
    assert!(matches!(other, Claim::Existing { .. }), "{other:?}");
    // Past the lease: taken over, once.
    assert_eq!(claim_body(now, now).await.unwrap(), Claim::Acquired);
    let again = claim_body(now, now - chrono::Duration::seconds(1))
        .await
        .unwrap();
    assert!(matches!(again, Claim::Existing { .. }), "{again:?}");

    let later = now + backend::store::idempotency::RETENTION + chrono::Duration::minutes(1);
    assert_eq!(forget_old(db, later).await.unwrap(), 1);
}

async fn version_names_the_build_and_the_machine(backend: Backend) {
    use backend::http::version::{BUILD_COMMIT, ServiceIdentity};
    let fly = [
        ("GIT_COMMIT", "0123abcd"),
        ("FLY_IMAGE_REF", "registry.fly.io/cabanas:deployment-01"),
        ("FLY_MACHINE_ID", "e784079b449483"),
        ("FLY_REGION", "scl"),
    ];
    let lookup = move |name: &str| {
        fly.iter()
            .find(|(key, _)| *key == name)
            .map(|(_, value)| (*value).to_owned())
    };
    let Some(app) = TestApp::spawn_with_state(
        backend,
        "version",
        |_| {},
        |state| {
            state.identity = Arc::new(ServiceIdentity::from_lookup(lookup, chrono::Utc::now()));
        },
    )
    .await
    else {
        return;
    };
    let (status, body) = app.get("/api/v1/version").await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["version"], env!("CARGO_PKG_VERSION"));
    assert_eq!(body["commit"], "0123abcd");
    assert_eq!(body["image"], "registry.fly.io/cabanas:deployment-01");
    assert_eq!(body["machine"], "e784079b449483");
    assert_eq!(body["region"], "scl");
    let started = body["started_at"].as_str().expect("started_at is a string");
    chrono::DateTime::parse_from_rfc3339(started).expect("started_at is RFC 3339");
    let keys: Vec<&str> = body
        .as_object()
        .unwrap()
        .keys()
        .map(String::as_str)
        .collect();
    assert_eq!(
        keys.len(),
        6,
        "version, commit, image, machine, region, started_at: {keys:?}"
    );

    // Off Fly: the baked commit and nulls.
    let Some(app) = TestApp::spawn_with_state(
        backend,
        "version_off_fly",
        |_| {},
        |state| {
            state.identity = Arc::new(ServiceIdentity::from_lookup(|_| None, chrono::Utc::now()));
        },
    )
    .await
    else {
        return;
    };
    let (_, body) = app.get("/api/v1/version").await;
    assert_eq!(body["commit"], BUILD_COMMIT);
    assert!(body["image"].is_null() && body["machine"].is_null() && body["region"].is_null());
}
