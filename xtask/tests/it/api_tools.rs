//! The API tools against real counterparts: `admin-token` against the running service, and
//! `fuzz` against Schemathesis (missing: exit 2; a server that breaks its own document: exit 1).

use std::process::Command;
use std::time::Duration;

use crate::support::{json_of, service_binary};
use serde_json::{Value, json};
use xtask::local_service::{LocalService, ServiceSettings};
use xtask::verdict::Verdict;

const JWT_SECRET: &str = "admin-token-test-secret-0123456789-abcdef";
const ADMIN: &str = "ops@example.com";

#[test]
fn a_minted_admin_token_confirms_and_cancels_on_the_service() {
    let dir = tempfile::tempdir().unwrap();
    let settings = ServiceSettings {
        binary: service_binary(),
        database_url: format!("sqlite:{}?mode=rwc", dir.path().join("t.db").display()),
        jwt_secret: JWT_SECRET.into(),
        admin_email: ADMIN.into(),
        log_file: dir.path().join("service.log"),
    };
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let _context = runtime.enter();
    let service = LocalService::start(&settings, Duration::from_secs(60)).expect("service");
    let env_file = dir.path().join(".env.fly.test");
    std::fs::write(
        &env_file,
        format!("JWT_SECRET={JWT_SECRET}\nADMIN_ALLOWED_EMAILS=someone@example.com,{ADMIN}\n"),
    )
    .unwrap();
    let token = xtask::admin_token::mint(
        &env_file,
        Some(ADMIN),
        Duration::from_secs(900),
        chrono::Utc::now(),
    )
    .unwrap();

    runtime.block_on(async {
        let client = reqwest::Client::new();
        let url = |path: &str| format!("{}{path}", service.url());
        let cabins: Value = json_of(client.get(url("/api/v1/reservations/accommodations"))).await;
        let cabin = cabins[0]["id"].as_i64().expect("a demo cabin");
        let check_in = chrono::Utc::now().date_naive() + chrono::Days::new(200);
        let mut codes = Vec::new();
        for offset in [0, 10] {
            let day = check_in + chrono::Days::new(offset);
            let created: Value = json_of(
                client
                    .post(url("/api/v1/reservations/pre-reserve"))
                    .json(&json!({
                        "accommodation_id": cabin, "check_in": day,
                        "check_out": day + chrono::Days::new(2), "guests": 2, "channel": "web",
                        "contact_name": "Ana", "contact_phone": "+54 9 11 5555 0000",
                    })),
            )
            .await;
            codes.push(created["code"].as_str().expect("a code").to_owned());
        }
        let act = |code: &str, action: &str, token: &str| {
            client
                .post(url(&format!("/api/v1/reservations/{code}/{action}")))
                .bearer_auth(token)
                .send()
        };
        let confirmed = act(&codes[0], "confirm", token.expose()).await.unwrap();
        assert_eq!(confirmed.status(), 200);
        assert_eq!(
            confirmed.json::<Value>().await.unwrap()["status"],
            "confirmed"
        );
        let cancelled = act(&codes[1], "cancel", token.expose()).await.unwrap();
        assert_eq!(cancelled.status(), 200);
        assert_eq!(
            cancelled.json::<Value>().await.unwrap()["status"],
            "cancelled"
        );

        // A token signed with another secret is refused.
        let wrong = xtask::overlap::sign_admin_token(
            "another-secret-0123456789-0123456789-xyz",
            ADMIN,
            chrono::Utc::now(),
        )
        .unwrap();
        let refused = act(&codes[0], "cancel", wrong.expose()).await.unwrap();
        assert_eq!(refused.status(), 401);
    });

    let refused = xtask::admin_token::mint(
        &env_file,
        Some("eve@example.com"),
        Duration::from_secs(60),
        chrono::Utc::now(),
    );
    assert!(refused.is_err());
}

#[test]
fn admin_token_refuses_a_ttl_over_a_day_and_prints_nothing() {
    let output = Command::new(env!("CARGO_BIN_EXE_xtask"))
        .args(["admin-token", "--env", "staging", "--ttl", "25h"])
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(2));
    assert!(output.stdout.is_empty());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("longer than a day"), "{stderr}");
}

#[test]
fn fuzz_without_schemathesis_exits_2_and_says_how_to_install_it() {
    let output = Command::new(env!("CARGO_BIN_EXE_xtask"))
        .args(["fuzz", "--url", "http://127.0.0.1:9"])
        .env("SCHEMATHESIS", "/nonexistent/schemathesis")
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("pip install schemathesis"), "{stderr}");
}

/// A server whose answers contradict its document: `/count` promises an integer and answers
/// a string. Schemathesis must report it, and fuzz must turn that into a failure.
#[test]
fn fuzz_fails_on_a_contract_violation() {
    let schemathesis = match xtask::fuzz::find_schemathesis() {
        Ok(path) => path,
        Err(error) => {
            let why = format!("{error:#}");
            crate::support::skip_or_fail_in_ci("fuzz_fails_on_a_contract_violation", &why);
            return;
        }
    };
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let base = runtime.block_on(async {
        let document = json!({
            "openapi": "3.1.0",
            "info": { "title": "broken", "version": "1" },
            "paths": { "/count": { "get": { "responses": { "200": {
                "description": "a count",
                "content": { "application/json": { "schema": { "type": "integer" } } }
            } } } } }
        });
        let app = axum::Router::new()
            .route(
                xtask::fuzz::OPENAPI_PATH,
                axum::routing::get(move || async move { axum::Json(document.clone()) }),
            )
            .route(
                "/count",
                axum::routing::get(|| async { axum::Json("many") }),
            );
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let base = format!("http://{}", listener.local_addr().unwrap());
        tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
        base
    });
    let dir = tempfile::tempdir().unwrap();
    let args = xtask::fuzz::Options {
        url: Some(base.clone()),
        max_examples: 2,
        seed: 1,
        service_bin: None,
    };
    let (verdict, result) =
        xtask::fuzz::run_schemathesis(&schemathesis, &base, None, &args, dir.path()).unwrap();
    assert_eq!(verdict, Verdict::Fail);
    let count = result
        .checks
        .iter()
        .find(|c| c.id == "GET /count")
        .unwrap_or_else(|| panic!("one check per operation: {:?}", result.checks));
    assert_eq!(count.verdict, Verdict::Fail, "{count:?}");
    assert!(
        count.fix.as_deref().unwrap().contains("--seed 1"),
        "{count:?}"
    );
}
