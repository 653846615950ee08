//! Bookings on PostgreSQL hand their connection to the next booking without the pool's
//! release ping (`backend/src/db/warm.rs`): what stays warm, what goes back to the pool, and
//! that the other queries always keep connections of their own.

use crate::common;

use std::time::{Duration, Instant};

use backend::db::Pg;
use backend::db::warm::Warm;
use common::{Backend, TestApp, monday, plus};
use reqwest::StatusCode;

fn pg(app: &TestApp) -> &Pg {
    let backend::Db::Postgres(pg) = &app.state.db else {
        unreachable!("the app was started on PostgreSQL")
    };
    pg
}

async fn postgres_app(test: &str, max_connections: u32) -> Option<TestApp> {
    TestApp::spawn_with(Backend::Postgres, test, |c| {
        c.database_max_connections = Some(max_connections);
        // No limiter in the way of a burst from one client.
        c.edge.rate_limit_per_minute = 0;
    })
    .await
}

/// An app on PostgreSQL with one booking made: its connection is now warm.
async fn after_one_booking(test: &str) -> Option<TestApp> {
    let app = postgres_app(test, 10).await?;
    let (status, body) = app
        .pre_reserve(&app.booking(monday(1), plus(monday(1), 1)))
        .await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    assert_eq!(pg(&app).warm().parked(), 1);
    Some(app)
}

/// Waits until `done` holds, for at most `limit`.
async fn eventually(limit: Duration, mut done: impl FnMut() -> bool) -> bool {
    let start = Instant::now();
    while start.elapsed() < limit {
        if done() {
            return true;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    done()
}

#[tokio::test]
async fn a_completed_or_refused_booking_keeps_its_connection_warm() {
    let Some(app) = postgres_app("warm_kept", 10).await else {
        return;
    };
    assert_eq!(pg(&app).warm().parked(), 0);
    for week in 1..=5 {
        let (status, body) = app
            .pre_reserve(&app.booking(monday(week), plus(monday(week), 2)))
            .await;
        assert_eq!(status, StatusCode::CREATED, "{body}");
        // One after another, the bookings take turns on one warm connection.
        assert_eq!(pg(&app).warm().parked(), 1, "after booking {week}");
    }
    // Refused by the overlap constraint: the statement ended in a database error, the
    // session is fine, and the connection stays warm.
    let (status, body) = app
        .pre_reserve(&app.booking(monday(1), plus(monday(1), 1)))
        .await;
    assert_eq!(status, StatusCode::CONFLICT, "{body}");
    assert_eq!(pg(&app).warm().parked(), 1);
}

#[tokio::test]
async fn a_warm_connection_the_server_dropped_is_replaced_after_a_ping() {
    let Some(app) = after_one_booking("warm_dropped").await else {
        return;
    };

    // Every session of the service ends, the way a database restart or a proxy's idle
    // timeout ends them.
    let killed: Vec<bool> = sqlx::query_scalar(
        "SELECT pg_terminate_backend(pid) FROM pg_stat_activity \
         WHERE datname = current_database() AND pid <> pg_backend_pid()",
    )
    .fetch_all(&mut *pg(&app).pool().acquire().await.unwrap())
    .await
    .unwrap();
    assert!(!killed.is_empty());

    // Idle long enough to be pinged before use: the dead connection is found out and
    // replaced, and the booking goes through.
    tokio::time::sleep(Duration::from_millis(1_100)).await;
    let (status, body) = app
        .pre_reserve(&app.booking(monday(2), plus(monday(2), 1)))
        .await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
}

#[tokio::test]
async fn idle_warm_connections_go_back_to_the_pool() {
    let Some(app) = after_one_booking("warm_idle").await else {
        return;
    };
    assert!(
        eventually(Duration::from_secs(5), || pg(&app).warm().parked() == 0).await,
        "a warm connection idle for seconds was not handed back"
    );
}

#[tokio::test]
async fn bookings_leave_connections_for_the_other_queries() {
    let max = 4;
    let Some(app) = postgres_app("warm_budget", max).await else {
        return;
    };
    let budget = backend::db::warm::budget(max);
    assert!(budget >= 1 && budget < max as usize);

    let mut burst = tokio::task::JoinSet::new();
    for i in 0..24 {
        let day = plus(monday(1), i * 2);
        let request = app
            .client
            .post(app.url("/api/v1/reservations/pre-reserve"))
            .json(&app.booking(day, plus(day, 1)))
            .send();
        burst.spawn(async move { request.await.map(|r| r.status()) });
    }
    while let Some(status) = burst.join_next().await {
        assert_eq!(status.unwrap().unwrap(), StatusCode::CREATED);
    }
    let parked = pg(&app).warm().parked();
    assert!(
        (1..=budget).contains(&parked),
        "{parked} warm connections, budget {budget}"
    );
    // With the bookings' connections all warm, another query still gets one at once.
    let mut held = Vec::new();
    for _ in 0..(max as usize - parked) {
        let conn = tokio::time::timeout(Duration::from_secs(2), pg(&app).pool().acquire())
            .await
            .expect("a connection outside the bookings' budget")
            .unwrap();
        held.push(conn);
    }
}

#[tokio::test]
async fn closing_the_database_does_not_wait_for_warm_connections() {
    let Some(app) = after_one_booking("warm_close").await else {
        return;
    };
    // A closing pool waits for every connection it lent out; a warm one is lent out.
    tokio::time::timeout(Duration::from_secs(10), app.state.db.close())
        .await
        .expect("closing the pool waited on a warm connection");
    assert_eq!(pg(&app).warm().parked(), 0);
}

/// The backend process behind a leased connection.
async fn backend_pid(warm: &std::sync::Arc<Warm>) -> i32 {
    let mut lease = warm.lease().await.unwrap();
    let outcome = sqlx::query_scalar::<_, i32>("SELECT pg_backend_pid()")
        .fetch_one(lease.conn())
        .await;
    lease.finish(&outcome);
    outcome.unwrap()
}

#[tokio::test]
async fn the_next_statement_runs_on_the_warm_connection_until_it_is_due_back() {
    let Some(url) = common::fresh_postgres_database("warm_rotation").await else {
        return;
    };
    let pool = || async {
        sqlx::postgres::PgPoolOptions::new()
            .max_connections(4)
            .connect(&url)
            .await
            .unwrap()
    };
    let warm = Warm::new(pool().await, 3, Duration::from_secs(3600));
    let first = backend_pid(&warm).await;
    for _ in 0..5 {
        assert_eq!(
            backend_pid(&warm).await,
            first,
            "the same session, kept warm"
        );
    }
    assert_eq!(warm.parked(), 1);

    // Due back at once: every statement still runs, and its connection goes back through
    // the pool instead of staying warm.
    let rotating = Warm::new(pool().await, 3, Duration::ZERO);
    backend_pid(&rotating).await;
    backend_pid(&rotating).await;
    assert_eq!(rotating.parked(), 0);

    // A statement that failed on the connection itself does not keep it warm either.
    let lease = warm.lease().await.unwrap();
    let broken: Result<i32, sqlx::Error> = Err(sqlx::Error::Io(std::io::Error::other("cut")));
    lease.finish(&broken);
    assert_eq!(warm.parked(), 0);
}
