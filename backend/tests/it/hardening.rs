//! Faults the service must survive: an answer that cannot be stored, tokens from the
//! future, hostile dates and text, transient database errors, cut-off requests.

use crate::common;

use common::{Backend, TestApp, monday, plus};
use reqwest::StatusCode;

on_both_backends!(
    idempotent_retry_survives_a_failed_answer_write,
    hostile_dates_and_text_are_422_naming_the_field,
    a_held_write_lock_is_503_and_shows_in_health,
);

/// Makes every write of a stored answer for `key` fail, the way a crash or a lost
/// connection between the reservation and its answer would.
async fn break_answer_writes(app: &TestApp, key: &str) {
    match &app.state.db {
        backend::Db::Sqlite(pool) => {
            // A first request writes its key and answer in one INSERT; a claimed key gets
            // its answer by UPDATE.
            for (name, event) in [
                ("fault_answer", "UPDATE OF response_status"),
                ("fault_answer_insert", "INSERT"),
            ] {
                let sql = format!(
                    "CREATE TRIGGER {name} BEFORE {event} ON idempotency_keys \
                     WHEN NEW.key = '{key}' AND NEW.response_status IS NOT NULL \
                     BEGIN SELECT RAISE(ABORT, 'injected fault'); END"
                );
                sqlx::query(sqlx::AssertSqlSafe(sql))
                    .execute(pool)
                    .await
                    .unwrap();
            }
        }
        backend::Db::Postgres(pg) => {
            let pool = pg.pool();
            let function = format!(
                "CREATE FUNCTION fault_answer() RETURNS trigger LANGUAGE plpgsql AS $$ \
                 BEGIN IF NEW.key = '{key}' AND NEW.response_status IS NOT NULL THEN \
                 RAISE EXCEPTION 'injected fault'; END IF; RETURN NEW; END $$"
            );
            sqlx::query(sqlx::AssertSqlSafe(function))
                .execute(pool)
                .await
                .unwrap();
            sqlx::query(
                // A first request writes its key and answer in one INSERT; a claimed key gets
                // its answer by UPDATE.
                "CREATE TRIGGER fault_answer BEFORE INSERT OR UPDATE ON idempotency_keys \
                 FOR EACH ROW EXECUTE FUNCTION fault_answer()",
            )
            .execute(pool)
            .await
            .unwrap();
        }
    }
}

async fn repair_answer_writes(app: &TestApp) {
    let drops: &[&str] = if matches!(app.state.db, backend::Db::Postgres(_)) {
        &["DROP TRIGGER fault_answer ON idempotency_keys"]
    } else {
        &[
            "DROP TRIGGER fault_answer",
            "DROP TRIGGER fault_answer_insert",
        ]
    };
    for sql in drops {
        backend::with_pool!(&app.state.db, pool => {
            sqlx::query(*sql).execute(pool).await.unwrap();
        });
    }
}

/// Issue #17 item 1: the reservation and its stored answer commit together, so when the
/// answer cannot be written the retry with the same key and body (after the lease of the
/// first request ran out) books the dates and answers 201, never 409 from its own hold.
async fn idempotent_retry_survives_a_failed_answer_write(backend: Backend) {
    let Some(app) = TestApp::spawn(backend, "idem_fault").await else {
        return;
    };
    let day = monday(12);
    let body = app.booking(day, plus(day, 2));
    let post = || {
        app.client
            .post(app.url("/api/v1/reservations/pre-reserve"))
            .header("Idempotency-Key", "fault-key")
            .json(&body)
            .send()
    };
    break_answer_writes(&app, "fault-key").await;
    let (status, first) = common::read(post().await.unwrap()).await;
    assert!(status.is_server_error(), "{status} {first}");

    // The first request's lease runs out (as after a crash), and the fault goes away.
    repair_answer_writes(&app).await;
    let long_ago = chrono::Utc::now() - chrono::Duration::hours(1);
    backend::with_pool!(&app.state.db, pool => {
        sqlx::query("UPDATE idempotency_keys SET created_at = $1 WHERE key = 'fault-key'")
            .bind(long_ago)
            .execute(pool)
            .await
            .unwrap();
    });

    let (status, retry) = common::read(post().await.unwrap()).await;
    assert_eq!(status, StatusCode::CREATED, "{retry}");
    let code = retry["code"].as_str().expect("code").to_owned();
    // The hold is the retry's own, and replays answer the same 201.
    let (status, replay) = common::read(post().await.unwrap()).await;
    assert_eq!(status, StatusCode::CREATED, "{replay}");
    assert_eq!(replay["code"], code.as_str());
    assert_eq!(app.bookings_on(day, plus(day, 2)).await, 1);
}

/// A signed admin token with extra time claims (`nbf`, `iat`) relative to now.
fn timed_token(claims: &[(&str, i64)]) -> String {
    let now = chrono::Utc::now().timestamp();
    let mut body = serde_json::json!({ "email": common::ADMIN_EMAIL, "exp": now + 3600 });
    for (name, offset) in claims {
        body[*name] = serde_json::json!(now + offset);
    }
    jsonwebtoken::encode(
        &jsonwebtoken::Header::new(jsonwebtoken::Algorithm::HS256),
        &body,
        &jsonwebtoken::EncodingKey::from_secret(common::JWT_SECRET.as_bytes()),
    )
    .expect("encode token")
}

/// Issue #17 item 2: a token not valid yet (`nbf` ahead) or issued in the future (`iat`
/// ahead) is refused, beyond the same 30 s leeway `exp` gets; within it, accepted.
#[tokio::test]
async fn tokens_from_the_future_are_refused() {
    let Some(app) = TestApp::spawn(Backend::Sqlite, "jwt_times").await else {
        return;
    };
    for (claims, expected) in [
        (vec![("nbf", 3600)], StatusCode::UNAUTHORIZED),
        (vec![("iat", 3600)], StatusCode::UNAUTHORIZED),
        (vec![("nbf", 120), ("iat", -10)], StatusCode::UNAUTHORIZED),
        (vec![("nbf", 10), ("iat", 10)], StatusCode::NOT_FOUND),
        (vec![("nbf", -60), ("iat", -60)], StatusCode::NOT_FOUND),
    ] {
        let token = timed_token(&claims);
        let (status, body) = app.admin("CB-NOSUCHONE", "confirm", Some(&token)).await;
        assert_eq!(status, expected, "{claims:?}: {body}");
    }
}

/// Issue #17 item 4: dates the calendar accepts but the business does not, and control
/// characters in text, are 422 naming the field, the same body on both databases.
async fn hostile_dates_and_text_are_422_naming_the_field(backend: Backend) {
    let Some(app) = TestApp::spawn(backend, "hostile_input").await else {
        return;
    };
    let day = monday(4);
    let horizon = app.state.horizon;
    let today = chrono::Utc::now().date_naive();
    let beyond = plus(today, i64::from(horizon.future_days) + 1);
    let mut cases: Vec<(serde_json::Value, &str)> = Vec::new();
    for (key, value) in [
        ("contact_name", "Ana\u{0}"),
        ("contact_name", "Ana\u{7}Pérez"),
        ("contact_name", "Ana\nPérez"),
        ("contact_phone", "+54 9 11 5555-0000\u{0}"),
        ("contact_email", "ana@exam\u{0}ple.com"),
        ("channel", "web\u{0}"),
    ] {
        let mut body = app.booking(day, plus(day, 2));
        body[key] = serde_json::json!(value);
        cases.push((body, key));
    }
    for (check_in, check_out) in [
        ("9999-12-28", "+10000-01-02"),
        ("+200000-01-01", "+200000-01-03"),
    ] {
        let mut body = app.booking(day, plus(day, 2));
        body["check_in"] = serde_json::json!(check_in);
        body["check_out"] = serde_json::json!(check_out);
        cases.push((body, "check_out"));
    }
    cases.push((app.booking(plus(beyond, -2), beyond), "check_out"));
    for (body, field) in cases {
        let (status, answer) = app.pre_reserve(&body).await;
        assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{body}: {answer}");
        assert_eq!(answer["error"], "validation_failed", "{body}");
        assert_eq!(answer["field"], field, "{body}: {answer}");
    }
    // The last night within the horizon is still bookable.
    let last = plus(today, i64::from(horizon.future_days));
    let (status, answer) = app.pre_reserve(&app.booking(plus(last, -2), last)).await;
    assert_eq!(status, StatusCode::CREATED, "{answer}");

    let availability = |from: &str, to: &str| {
        format!(
            "/api/v1/accommodations/{}/availability?from={from}&to={to}",
            app.cabin_id
        )
    };
    let too_old = plus(today, -i64::from(horizon.past_days) - 1);
    for (from, to, field) in [
        ("-4714-01-01".to_owned(), "-4714-01-10".to_owned(), "from"),
        (too_old.to_string(), plus(too_old, 3).to_string(), "from"),
        ("9999-12-28".to_owned(), "%2B10000-01-02".to_owned(), "to"),
        (plus(beyond, -3).to_string(), beyond.to_string(), "to"),
    ] {
        let (status, answer) = app.get(&availability(&from, &to)).await;
        assert_eq!(
            status,
            StatusCode::UNPROCESSABLE_ENTITY,
            "{from}..{to}: {answer}"
        );
        assert_eq!(answer["field"], field, "{from}..{to}: {answer}");
    }
    let (status, _) = app
        .get(&availability(
            &plus(last, -3).to_string(),
            &last.to_string(),
        ))
        .await;
    assert_eq!(status, StatusCode::OK);

    // A control character in a reservation code is refused before the database sees it.
    for path in [
        "/api/v1/reservations/CB-%00ABC",
        "/api/v1/reservations/CB-%07ABC",
    ] {
        let (status, answer) = app.get(path).await;
        assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{path}: {answer}");
        assert_eq!(answer["field"], "code", "{path}: {answer}");
    }
    let token = common::admin_token();
    let (status, answer) = app.admin("CB-%00ABC", "cancel", Some(&token)).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{answer}");
    assert_eq!(answer["field"], "code");
}

/// Runs the `lock` statements on `conn`, says so on `locked`, and rolls back once `stopped`
/// fires (or its sender is dropped).
async fn lock_until<C>(
    mut conn: C,
    lock: &[&'static str],
    locked: tokio::sync::oneshot::Sender<()>,
    stopped: tokio::sync::oneshot::Receiver<()>,
) where
    C: sqlx::Connection,
    for<'c> &'c mut C: sqlx::Executor<'c, Database = C::Database>,
{
    for statement in lock {
        sqlx::raw_sql(*statement).execute(&mut conn).await.unwrap();
    }
    locked.send(()).unwrap();
    let _ = stopped.await;
    sqlx::raw_sql("ROLLBACK").execute(&mut conn).await.unwrap();
}

/// Holds the database's write lock (SQLite) or an exclusive lock on `reservations`
/// (PostgreSQL) from another connection until the returned guard's task is told to stop.
async fn hold_write_lock(app: &TestApp) -> tokio::sync::oneshot::Sender<()> {
    use sqlx::Connection;
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let (locked, is_locked) = tokio::sync::oneshot::channel::<()>();
    match &app.state.db {
        backend::Db::Sqlite(pool) => {
            let conn = sqlx::SqliteConnection::connect_with(&pool.connect_options())
                .await
                .unwrap();
            tokio::spawn(lock_until(conn, &["BEGIN IMMEDIATE"], locked, stopped));
        }
        backend::Db::Postgres(pg) => {
            let conn = sqlx::PgConnection::connect_with(&pg.pool().connect_options())
                .await
                .unwrap();
            const LOCK: [&str; 2] = [
                "BEGIN",
                "LOCK TABLE reservations, idempotency_keys IN ACCESS EXCLUSIVE MODE",
            ];
            tokio::spawn(lock_until(conn, &LOCK, locked, stopped));
        }
    }
    is_locked.await.unwrap();
    stop
}

/// Issue #17 item 5: a write that cannot get its lock in time is a transient failure:
/// 503 `unavailable` with `Retry-After`, never 500; health reports the failing write path
/// (503) until a write succeeds again.
async fn a_held_write_lock_is_503_and_shows_in_health(backend: Backend) {
    let Some(app) = TestApp::spawn_with(backend, "write_lock", |config| {
        config.database_lock_timeout = std::time::Duration::from_millis(300);
    })
    .await
    else {
        return;
    };
    let day = monday(20);
    let (status, body) = app.get("/api/v1/healthz").await;
    assert_eq!(status, StatusCode::OK, "{body}");

    let stop = hold_write_lock(&app).await;
    let response = app
        .client
        .post(app.url("/api/v1/reservations/pre-reserve"))
        .json(&app.booking(day, plus(day, 2)))
        .send()
        .await
        .unwrap();
    let retry_after = response.headers().get("retry-after").cloned();
    let (status, body) = common::read(response).await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE, "{body}");
    assert_eq!(body["error"], "unavailable", "{body}");
    assert!(retry_after.is_some(), "a 503 says when to retry");
    let (status, health) = app.get("/api/v1/healthz").await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE, "{health}");
    assert_eq!(health["checks"]["writes"]["status"], "failing", "{health}");
    let (status, ready) = app.get("/api/v1/readyz").await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE, "{ready}");

    stop.send(()).unwrap();
    // The lock holder rolls back; the next write succeeds and health recovers.
    let mut created = StatusCode::SERVICE_UNAVAILABLE;
    for _ in 0..50 {
        let (status, _) = app.pre_reserve(&app.booking(day, plus(day, 2))).await;
        created = status;
        if status == StatusCode::CREATED {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    assert_eq!(created, StatusCode::CREATED);
    let (status, health) = app.get("/api/v1/healthz").await;
    assert_eq!(status, StatusCode::OK, "{health}");
    assert_eq!(health["checks"]["writes"]["status"], "ok", "{health}");
}

/// Issue #17 item 6: requests dropped at random points under load (as when clients go away
/// or time out), against a slow database, never leave a pooled PostgreSQL session inside a
/// transaction, and the expiry sweep's work is visible to another connection afterwards.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn cancelled_requests_leak_no_transaction() {
    use rand::Rng;
    use sqlx::Connection;
    use tower::ServiceExt;
    let Some(proxy) = common::slow_database("cancelled").await else {
        return;
    };
    let Some(app) = TestApp::spawn_with(Backend::Postgres, "cancelled", |config| {
        common::through_slow_proxy(config, proxy);
        config.database_max_connections = Some(3);
        // Every hold is past its time at once, so the sweep has work to do.
        config.pre_reservation_ttl_minutes = 0;
    })
    .await
    else {
        return;
    };
    let backend::Db::Postgres(pg) = app.state.db.clone() else {
        unreachable!()
    };
    let pool = pg.pool();
    // One hold committed before the storm, past its time at once: the sweep must expire it.
    let (status, _) = app
        .pre_reserve(&app.booking(monday(1), plus(monday(1), 1)))
        .await;
    assert_eq!(status, StatusCode::CREATED);

    let router = backend::app(app.state.clone());
    let options = (*pool.connect_options()).clone();
    let mut observer = sqlx::PgConnection::connect_with(&options).await.unwrap();
    // Rounds of concurrent requests, each dropped after a random time: some before the
    // database, some inside a transaction, some after it. After each round, once the
    // service's sessions are quiet, none may be left inside a transaction.
    for round in 0..15_i64 {
        let mut tasks = Vec::new();
        for i in 0..20_i64 {
            let router = router.clone();
            let day = plus(monday(2), (round * 20 + i) * 2 % 600);
            let body = app.booking(day, plus(day, 1)).to_string();
            let key = (i % 2 == 0).then(|| format!("cut-{round}-{i}"));
            let cut_after = std::time::Duration::from_micros(rand::rng().random_range(0..150_000));
            tasks.push(tokio::spawn(async move {
                let mut request = axum::http::Request::post("/api/v1/reservations/pre-reserve")
                    .header("content-type", "application/json");
                if let Some(key) = key {
                    request = request.header("idempotency-key", key);
                }
                let request = request.body(axum::body::Body::from(body)).unwrap();
                // Dropping the future is what a gone client or a request timeout does.
                let _ = tokio::time::timeout(cut_after, router.oneshot(request)).await;
            }));
        }
        for task in tasks {
            task.await.unwrap();
        }
        common::assert_no_session_idle_in_transaction(&mut observer, round).await;
    }

    // The sweep, on whichever pooled connections it gets, commits its own work.
    for _ in 0..6 {
        backend::expire_stale(&app.state.db).await.unwrap();
    }
    let (expired, pending): (i64, i64) = sqlx::query_as(
        "SELECT count(*) FILTER (WHERE status = 'expired'), \
                count(*) FILTER (WHERE status = 'pre_reserved') FROM reservations",
    )
    .fetch_one(&mut observer)
    .await
    .unwrap();
    assert!(
        expired >= 1,
        "the sweep's expiries are visible to another connection"
    );
    assert_eq!(
        pending, 0,
        "expired holds are visible to another connection"
    );
}

/// Reads until the server closes the connection; false if it is still open after `guard`
/// (a guard against hanging, not a measure of speed).
async fn closed_by_server(stream: &mut tokio::net::TcpStream, guard: std::time::Duration) -> bool {
    use tokio::io::AsyncReadExt;
    let mut buffer = [0_u8; 4096];
    let until_closed = async {
        loop {
            match stream.read(&mut buffer).await {
                Ok(0) | Err(_) => return,
                Ok(_) => {}
            }
        }
    };
    tokio::time::timeout(guard, until_closed).await.is_ok()
}

/// Issue #17 item 3: clients that never finish their headers, or sit idle, are closed, and
/// with more of them than the connection limit, health and readiness still answer.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn slow_and_idle_clients_cannot_starve_health() {
    use tokio::io::AsyncWriteExt;
    let Some(app) = TestApp::spawn(Backend::Sqlite, "slow_clients").await else {
        return;
    };
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let limits = backend::http::server::ConnectionLimits {
        header_read_timeout: std::time::Duration::from_secs(1),
        idle_timeout: std::time::Duration::from_secs(2),
        max_connections: 16,
    };
    tokio::spawn(backend::http::server::serve(
        listener,
        backend::app(app.state.clone()),
        limits,
        std::future::pending(),
        std::time::Duration::from_secs(1),
    ));
    let guard = std::time::Duration::from_secs(30);

    // Far more half-sent requests than the server takes connections.
    let mut slow = Vec::new();
    for _ in 0..48 {
        let mut stream = tokio::net::TcpStream::connect(addr).await.unwrap();
        stream
            .write_all(b"GET /api/v1/healthz HTTP/1.1\r\nHost: cabanas\r\n")
            .await
            .unwrap();
        slow.push(stream);
    }
    let client = common::client();
    for path in ["/api/v1/healthz", "/api/v1/readyz"] {
        let response = client
            .get(format!("http://{addr}{path}"))
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), StatusCode::OK, "{path}");
    }
    for (i, stream) in slow.iter_mut().enumerate() {
        assert!(
            closed_by_server(stream, guard).await,
            "half-sent request {i} is still open"
        );
    }

    // A keep-alive connection left idle after its request is closed too.
    let mut idle = tokio::net::TcpStream::connect(addr).await.unwrap();
    idle.write_all(b"GET /api/v1/healthz HTTP/1.1\r\nHost: cabanas\r\n\r\n")
        .await
        .unwrap();
    assert!(
        closed_by_server(&mut idle, guard).await,
        "idle keep-alive is still open"
    );
}
