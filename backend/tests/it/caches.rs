//! What the service serves from memory, and for how long: the `readyz` check shared between
//! requests, and the active accommodations. On SQLite and PostgreSQL.

use crate::common;

use std::time::Duration;

use backend::store::accommodations::NewAccommodation;
use common::{Backend, TestApp, monday, plus};
use reqwest::StatusCode;

on_both_backends!(
    readyz_shares_one_database_check,
    readyz_shows_pending_migrations_and_a_lost_database,
    failing_writes_show_in_readyz_at_once,
    a_dropped_overlap_guarantee_shows_in_readyz_and_stops_a_start,
    accommodations_are_served_from_memory_while_fresh,
    a_change_made_in_the_database_shows_after_the_age,
    availability_is_never_served_from_memory,
    a_fixture_another_instance_created_is_bookable_by_an_admin_at_once,
);

/// An app that reuses its `readyz` database check for `age`.
async fn with_health_cache(backend: Backend, test: &str, age: Duration) -> Option<TestApp> {
    TestApp::spawn_with(backend, test, |c| c.health_cache = age).await
}

/// An app that serves the active accommodations from memory for `age`.
async fn with_catalog_cache(backend: Backend, test: &str, age: Duration) -> Option<TestApp> {
    TestApp::spawn_with(backend, test, |c| c.accommodations_cache = age).await
}

/// Runs raw SQL on the app's database, as another instance or an operator would.
async fn execute(app: &TestApp, sql: &'static str) {
    backend::with_pool!(&app.state.db, pool => {
        sqlx::query(sql).execute(pool).await.expect(sql);
    });
}

/// Many concurrent and back-to-back `readyz` requests cost one database check while the
/// result is fresh.
async fn readyz_shares_one_database_check(backend: Backend) {
    let Some(app) = with_health_cache(backend, "readyz_shared", Duration::from_secs(60)).await
    else {
        return;
    };
    let mut concurrent = tokio::task::JoinSet::new();
    for _ in 0..40 {
        let request = app.client.get(app.url("/api/v1/readyz")).send();
        concurrent.spawn(async move { request.await.map(|r| r.status()) });
    }
    while let Some(status) = concurrent.join_next().await {
        assert_eq!(status.unwrap().unwrap(), StatusCode::OK);
    }
    for _ in 0..20 {
        let (status, body) = app.get("/api/v1/readyz").await;
        assert_eq!(status, StatusCode::OK, "{body}");
        assert_eq!(body["checks"]["migrations"], "ok");
    }
    let (_, readiness_checks) = app.state.health.database_checks();
    assert_eq!(readiness_checks, 1, "60 readyz requests within the age");
}

/// With no reuse (age zero) every request checks, and a pending migration or a lost database
/// turns `readyz` 503 on the next request.
async fn readyz_shows_pending_migrations_and_a_lost_database(backend: Backend) {
    let Some(app) = with_health_cache(backend, "readyz_fresh", Duration::ZERO).await else {
        return;
    };
    let (status, body) = app.get("/api/v1/readyz").await;
    assert_eq!(status, StatusCode::OK, "{body}");
    // The newest migration is no longer recorded as applied: this binary sees it pending.
    execute(
        &app,
        "DELETE FROM _sqlx_migrations WHERE version = (SELECT max(version) FROM _sqlx_migrations)",
    )
    .await;
    let (status, body) = app.get("/api/v1/readyz").await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE, "{body}");
    assert_eq!(body["error"], "unavailable");
    assert!(
        body["detail"].as_str().unwrap_or("").contains("pending"),
        "{body}"
    );
    app.state.db.close().await;
    let (status, body) = app.get("/api/v1/readyz").await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE, "{body}");
    assert!(
        body["detail"]
            .as_str()
            .unwrap_or("")
            .contains("not answering"),
        "{body}"
    );
    let (_, readiness_checks) = app.state.health.database_checks();
    assert_eq!(readiness_checks, 3, "with age zero every request checks");
}

/// A database that lost the overlap guarantee (PostgreSQL's exclusion constraint, one of
/// SQLite's triggers) is not ready: once the cached check has aged, `readyz` answers 503
/// naming it, and the service refuses to start on it.
async fn a_dropped_overlap_guarantee_shows_in_readyz_and_stops_a_start(backend: Backend) {
    const AGE: Duration = Duration::from_millis(200);
    let mut config = None;
    let Some(app) = TestApp::spawn_with(backend, "readyz_overlap_guard", |c| {
        c.health_cache = AGE;
        config = Some(c.clone());
    })
    .await
    else {
        return;
    };
    let (status, body) = app.get("/api/v1/readyz").await;
    assert_eq!(status, StatusCode::OK, "{body}");
    execute(
        &app,
        match backend {
            Backend::Postgres => "ALTER TABLE reservations DROP CONSTRAINT reservations_no_overlap",
            Backend::Sqlite => "DROP TRIGGER reservations_no_overlap_update",
        },
    )
    .await;
    // The check is reused for AGE: poll, bounded well past it.
    let deadline = std::time::Instant::now() + AGE + Duration::from_secs(10);
    let (status, body) = loop {
        let (status, body) = app.get("/api/v1/readyz").await;
        if status != StatusCode::OK || std::time::Instant::now() > deadline {
            break (status, body);
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE, "{body}");
    assert_eq!(body["error"], "unavailable", "{body}");
    let detail = body["detail"].as_str().unwrap_or("");
    assert!(
        detail.contains("reservations_no_overlap is missing"),
        "{body}"
    );
    if backend == Backend::Sqlite {
        assert!(detail.contains("reservations_no_overlap_update"), "{body}");
        assert!(!detail.contains("reservations_no_overlap_insert"), "{body}");
    }
    let error = match backend::build_state(&config.expect("the test config")).await {
        Ok(_) => panic!("the service started without the overlap guarantee"),
        Err(error) => format!("{error:#}"),
    };
    assert!(
        error.contains("reservations_no_overlap is missing"),
        "{error}"
    );
}

/// A write failing on the database shows in `readyz` and `healthz` at once, even while their
/// database checks are reused.
async fn failing_writes_show_in_readyz_at_once(backend: Backend) {
    let Some(app) = with_health_cache(backend, "readyz_writes", Duration::from_secs(60)).await
    else {
        return;
    };
    assert_eq!(app.get("/api/v1/readyz").await.0, StatusCode::OK);
    assert_eq!(app.get("/api/v1/healthz").await.0, StatusCode::OK);
    app.state.writes.failed();
    let (status, body) = app.get("/api/v1/readyz").await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE, "{body}");
    assert!(
        body["detail"].as_str().unwrap_or("").contains("writes"),
        "{body}"
    );
    let (status, body) = app.get("/api/v1/healthz").await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE, "{body}");
    assert_eq!(body["checks"]["writes"]["status"], "failing", "{body}");
    app.state.writes.succeeded();
    assert_eq!(app.get("/api/v1/readyz").await.0, StatusCode::OK);
    assert_eq!(app.state.health.database_checks(), (1, 1));
}

fn cabin(slug: &str) -> NewAccommodation {
    NewAccommodation {
        slug: slug.into(),
        name: format!("Cabin {slug}"),
        capacity: 2,
        base_price_cents: 5_000,
        weekend_multiplier_bp: 10_000,
        active: true,
    }
}

fn names(list: &serde_json::Value) -> Vec<String> {
    list.as_array()
        .expect("a list")
        .iter()
        .map(|a| a["name"].as_str().expect("a name").to_owned())
        .collect()
}

/// Within the age, the list and pre-reserve's lookup come from memory (a change made behind
/// the service's back does not show, and the database is asked once); a change made through
/// this instance shows at once.
async fn accommodations_are_served_from_memory_while_fresh(backend: Backend) {
    let Some(app) = with_catalog_cache(backend, "catalog_memory", Duration::from_secs(60)).await
    else {
        return;
    };
    let (status, list) = app.get("/api/v1/reservations/accommodations").await;
    assert_eq!(status, StatusCode::OK, "{list}");
    assert_eq!(names(&list), ["Cabin test-cabin"]);

    execute(
        &app,
        "UPDATE accommodations SET name = 'Renamed' WHERE slug = 'test-cabin'",
    )
    .await;
    for _ in 0..5 {
        let (_, list) = app.get("/api/v1/reservations/accommodations").await;
        assert_eq!(names(&list), ["Cabin test-cabin"], "served from memory");
    }
    let day = monday(20);
    let (status, body) = app.pre_reserve(&app.booking(day, plus(day, 1))).await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    assert_eq!(app.state.accommodations.loads(), 1);

    // A write through this instance: the next read sees it (and the rename with it).
    app.state
        .accommodations
        .insert_or_get(&app.state.db, &cabin("new-cabin"))
        .await
        .unwrap();
    let (_, list) = app.get("/api/v1/reservations/accommodations").await;
    assert_eq!(names(&list), ["Renamed", "Cabin new-cabin"]);
    assert_eq!(app.state.accommodations.loads(), 2);
}

/// A change made directly in the database (as by another instance) shows once the snapshot
/// is older than the age: here a cabin closed by SQL stops being listed and bookable.
async fn a_change_made_in_the_database_shows_after_the_age(backend: Backend) {
    let age = Duration::from_millis(20);
    let Some(app) = with_catalog_cache(backend, "catalog_age", age).await else {
        return;
    };
    let (_, list) = app.get("/api/v1/reservations/accommodations").await;
    assert_eq!(names(&list), ["Cabin test-cabin"]);
    execute(
        &app,
        "UPDATE accommodations SET active = FALSE WHERE slug = 'test-cabin'",
    )
    .await;
    tokio::time::sleep(age).await;
    let (status, list) = app.get("/api/v1/reservations/accommodations").await;
    assert_eq!(status, StatusCode::OK, "{list}");
    assert_eq!(
        names(&list),
        Vec::<String>::new(),
        "the closed cabin is gone"
    );
    let day = monday(21);
    let (status, body) = app.pre_reserve(&app.booking(day, plus(day, 1))).await;
    assert_eq!(status, StatusCode::NOT_FOUND, "{body}");
}

/// Availability depends on reservations, which are never cached: a booking shows in the next
/// availability answer whatever the accommodations' age.
async fn availability_is_never_served_from_memory(backend: Backend) {
    let Some(app) =
        with_catalog_cache(backend, "catalog_availability", Duration::from_secs(60)).await
    else {
        return;
    };
    let day = monday(22);
    let path = format!(
        "/api/v1/accommodations/{}/availability?from={}&to={}",
        app.cabin_id,
        day,
        plus(day, 7)
    );
    let (status, before) = app.get(&path).await;
    assert_eq!(status, StatusCode::OK, "{before}");
    assert_eq!(before["bookings"].as_array().map(Vec::len), Some(0));
    let (status, body) = app.pre_reserve(&app.booking(day, plus(day, 2))).await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    let (_, after) = app.get(&path).await;
    assert_eq!(
        after["bookings"].as_array().map(Vec::len),
        Some(1),
        "{after}"
    );
    let (status, body) = app.pre_reserve(&app.booking(day, plus(day, 2))).await;
    assert_eq!(status, StatusCode::CONFLICT, "{body}");
}

/// Another instance creates the overlap check's fixture (here: straight in the database)
/// while this one's snapshot is fresh: an admin books it at once, a guest still cannot.
async fn a_fixture_another_instance_created_is_bookable_by_an_admin_at_once(backend: Backend) {
    let Some(app) = with_catalog_cache(backend, "catalog_fixture", Duration::from_secs(600)).await
    else {
        return;
    };
    let (_, list) = app.get("/api/v1/reservations/accommodations").await;
    assert_eq!(names(&list), ["Cabin test-cabin"], "the snapshot is taken");
    let fixture = match backend::store::accommodations::find_or_create_fixture(
        &app.state.db,
        "overlap-check",
    )
    .await
    .unwrap()
    {
        backend::store::accommodations::Fixture::Created(fixture) => fixture.id,
        other => panic!("{other:?}"),
    };
    let day = monday(22);
    let stay = common::booking(fixture, day, plus(day, 2));
    let (status, body) = app.pre_reserve(&stay).await;
    assert_eq!(status, StatusCode::NOT_FOUND, "a guest: {body}");
    let response = app
        .client
        .post(app.url("/api/v1/reservations/pre-reserve"))
        .bearer_auth(common::admin_token())
        .json(&stay)
        .send()
        .await
        .unwrap();
    let (status, body) = common::read(response).await;
    assert_eq!(status, StatusCode::CREATED, "an admin: {body}");
}
