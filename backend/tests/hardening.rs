//! Faults the service must survive: an answer that cannot be stored, tokens from the
//! future, hostile dates and text, transient database errors, cut-off requests.

mod common;

use common::{Backend, TestApp, monday, plus};
use reqwest::StatusCode;

on_both_backends!(idempotent_retry_survives_a_failed_answer_write);

/// Makes every write of a stored answer for `key` fail, the way a crash or a lost
/// connection between the reservation and its answer would.
async fn break_answer_writes(app: &TestApp, key: &str) {
    match &app.state.db {
        backend::Db::Sqlite(pool) => {
            let sql = format!(
                "CREATE TRIGGER fault_answer BEFORE UPDATE OF response_status ON idempotency_keys \
                 WHEN NEW.key = '{key}' AND NEW.response_status IS NOT NULL \
                 BEGIN SELECT RAISE(ABORT, 'injected fault'); END"
            );
            sqlx::query(sqlx::AssertSqlSafe(sql))
                .execute(pool)
                .await
                .unwrap();
        }
        backend::Db::Postgres(pool) => {
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
                "CREATE TRIGGER fault_answer BEFORE UPDATE ON idempotency_keys \
                 FOR EACH ROW EXECUTE FUNCTION fault_answer()",
            )
            .execute(pool)
            .await
            .unwrap();
        }
    }
}

async fn repair_answer_writes(app: &TestApp) {
    let sql = "DROP TRIGGER fault_answer";
    backend::with_pool!(&app.state.db, pool => {
        let sql = if matches!(app.state.db, backend::Db::Postgres(_)) {
            "DROP TRIGGER fault_answer ON idempotency_keys"
        } else {
            sql
        };
        sqlx::query(sql).execute(pool).await.unwrap();
    });
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
    let (_, days) = app
        .get(&format!(
            "/api/v1/accommodations/{}/availability?from={}&to={}",
            app.cabin_id,
            day,
            plus(day, 2)
        ))
        .await;
    assert_eq!(days["bookings"].as_array().map(Vec::len), Some(1), "{days}");
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
