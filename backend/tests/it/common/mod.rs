//! Test harness: starts the real app on 127.0.0.1:0 over a fresh database (a temp SQLite
//! file, or a new database on the PostgreSQL server at `TEST_DATABASE_URL`) and talks HTTP.
#![allow(dead_code)]

pub mod smtp;
pub mod webhooks;

use std::time::{SystemTime, UNIX_EPOCH};

use backend::config::DatabaseUrl;
use backend::store::accommodations::{NewAccommodation, insert_or_get};
use backend::{AppState, Config, Db};
use chrono::{Datelike, NaiveDate, Utc, Weekday};
use reqwest::{Client, Response, StatusCode};
use serde_json::{Value, json};
use sqlx::Connection;

/// The HS256 secret the test apps use.
pub const JWT_SECRET: &str = "test-secret-0123456789-0123456789-abcdef";
/// The one admin the test apps allow.
pub const ADMIN_EMAIL: &str = "admin@example.com";

/// Which database a scenario runs on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    /// A temp SQLite file.
    Sqlite,
    /// A fresh database on `TEST_DATABASE_URL`.
    Postgres,
}

/// Runs a scenario `async fn(Backend)` as two tests, `sqlite` and `postgres`.
#[macro_export]
macro_rules! on_both_backends {
    ($($name:ident),+ $(,)?) => {$(
        mod $name {
            #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
            async fn sqlite() {
                super::$name($crate::common::Backend::Sqlite).await
            }
            #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
            async fn postgres() {
                super::$name($crate::common::Backend::Postgres).await
            }
        }
    )+};
}

/// A running app and what a test needs to talk to it.
pub struct TestApp {
    /// `http://127.0.0.1:<port>`.
    pub base: String,
    /// A shared HTTP client.
    pub client: Client,
    /// The app's state (its pool), to call library functions or break the database.
    pub state: AppState,
    /// An active accommodation: capacity 4, 100.00 a night, weekend 1.20x.
    pub cabin_id: i64,
    /// An inactive accommodation.
    pub inactive_id: i64,
    /// The database's URL, to start another service on it (a restart).
    pub database_url: String,
    server: tokio::task::JoinHandle<()>,
    _tempdir: Option<tempfile::TempDir>,
}

impl Drop for TestApp {
    fn drop(&mut self) {
        self.server.abort();
    }
}

impl TestApp {
    /// Starts an app with the test defaults; `None` when PostgreSQL is not available.
    pub async fn spawn(backend: Backend, test: &str) -> Option<Self> {
        Self::spawn_with(backend, test, |_| {}).await
    }

    /// Starts an app after letting the test adjust its configuration.
    pub async fn spawn_with(
        backend: Backend,
        test: &str,
        adjust: impl FnOnce(&mut Config),
    ) -> Option<Self> {
        Self::spawn_with_state(backend, test, adjust, |_| {}).await
    }

    /// Starts an app after adjusting its configuration and then its state.
    pub async fn spawn_with_state(
        backend: Backend,
        test: &str,
        adjust: impl FnOnce(&mut Config),
        adjust_state: impl FnOnce(&mut AppState),
    ) -> Option<Self> {
        let (url, tempdir) = match backend {
            Backend::Sqlite => {
                let dir = tempfile::tempdir().expect("temp dir");
                let path = dir.path().join("test.db");
                (format!("sqlite:{}?mode=rwc", path.display()), Some(dir))
            }
            Backend::Postgres => (fresh_postgres_database(test).await?, None),
        };
        let database_url = url.clone();
        let mut config = Config::for_database(DatabaseUrl::parse(&url).expect("test URL"));
        config.jwt_secret = Some(backend::config::Secret::new(JWT_SECRET));
        config.admin_emails = vec![ADMIN_EMAIL.to_owned()];
        adjust(&mut config);

        // PostgreSQL is migrated the way production is (a separate step); build_state
        // then refuses to start if anything is pending.
        let db = Db::connect(&config).await.expect("connect");
        db.migrate().await.expect("migrate");
        db.close().await;
        let mut state = backend::build_state(&config).await.expect("build state");
        adjust_state(&mut state);

        let cabin_id = insert_or_get(&state.db, &cabin("test-cabin", true))
            .await
            .expect("seed cabin");
        let inactive_id = insert_or_get(&state.db, &cabin("closed-cabin", false))
            .await
            .expect("seed inactive cabin");

        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let addr = listener.local_addr().expect("local addr");
        let app = backend::app(state.clone());
        let server = tokio::spawn(async move {
            let service =
                axum::ServiceExt::into_make_service_with_connect_info::<std::net::SocketAddr>(app);
            axum::serve(listener, service).await.expect("server");
        });
        Some(Self {
            base: format!("http://{addr}"),
            client: client(),
            state,
            cabin_id,
            inactive_id,
            database_url,
            server,
            _tempdir: tempdir,
        })
    }

    /// `base + path`.
    pub fn url(&self, path: &str) -> String {
        format!("{}{}", self.base, path)
    }

    /// GET and return status and JSON body (Null when the body is not JSON).
    pub async fn get(&self, path: &str) -> (StatusCode, Value) {
        let response = self.client.get(self.url(path)).send().await.expect("GET");
        read(response).await
    }

    /// How many bookings of the test cabin the availability route shows in `[from, to)`.
    pub async fn bookings_on(&self, from: NaiveDate, to: NaiveDate) -> usize {
        let path = format!(
            "/api/v1/accommodations/{}/availability?from={from}&to={to}",
            self.cabin_id
        );
        let (status, body) = self.get(&path).await;
        assert_eq!(status, StatusCode::OK, "{path}: {body}");
        body["bookings"].as_array().map_or(0, Vec::len)
    }

    /// POST JSON to pre-reserve.
    pub async fn pre_reserve(&self, body: &Value) -> (StatusCode, Value) {
        let response = self
            .client
            .post(self.url("/api/v1/reservations/pre-reserve"))
            .json(body)
            .send()
            .await
            .expect("POST");
        read(response).await
    }

    /// POST to `/api/v1/reservations/{code}/{action}` with an optional bearer token.
    pub async fn admin(
        &self,
        code: &str,
        action: &str,
        token: Option<&str>,
    ) -> (StatusCode, Value) {
        let mut request = self
            .client
            .post(self.url(&format!("/api/v1/reservations/{code}/{action}")));
        if let Some(token) = token {
            request = request.bearer_auth(token);
        }
        read(request.send().await.expect("POST")).await
    }

    /// A valid pre-reserve body for the test cabin.
    pub fn booking(&self, check_in: NaiveDate, check_out: NaiveDate) -> Value {
        booking(self.cabin_id, check_in, check_out)
    }
}

/// An HTTP client. reqwest is built without a TLS provider choice, so one must be
/// installed even though the tests speak plain HTTP.
pub fn client() -> Client {
    let _ = rustls::crypto::ring::default_provider().install_default();
    Client::new()
}

/// A valid pre-reserve body.
pub fn booking(accommodation_id: i64, check_in: NaiveDate, check_out: NaiveDate) -> Value {
    json!({
        "accommodation_id": accommodation_id,
        "check_in": check_in.to_string(),
        "check_out": check_out.to_string(),
        "guests": 2,
        "channel": "web",
        "contact_name": "Ana Pérez",
        "contact_phone": "+54 9 11 5555-0000",
        "contact_email": "ana@example.com",
    })
}

/// Serves `router` (a fake of an outside API) on 127.0.0.1 in the background; returns its
/// base URL, `http://127.0.0.1:<port>`.
pub async fn serve_on_loopback(router: axum::Router) -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, router).await.unwrap() });
    format!("http://{addr}")
}

/// The body of a plain `GET` of `url` as text (metrics, an iCalendar export).
pub async fn get_text(client: &Client, url: impl reqwest::IntoUrl) -> String {
    client
        .get(url)
        .send()
        .await
        .expect("GET")
        .text()
        .await
        .expect("body")
}

/// Status and JSON body of a response.
pub async fn read(response: Response) -> (StatusCode, Value) {
    let status = response.status();
    let text = response.text().await.expect("body");
    (status, serde_json::from_str(&text).unwrap_or(Value::Null))
}

fn cabin(slug: &str, active: bool) -> NewAccommodation {
    NewAccommodation {
        slug: slug.into(),
        name: format!("Cabin {slug}"),
        capacity: 4,
        base_price_cents: 10_000,
        weekend_multiplier_bp: 12_000,
        active,
    }
}

/// A Monday at least `weeks_ahead` weeks from today, so weekday-dependent prices are known.
pub fn monday(weeks_ahead: i64) -> NaiveDate {
    let mut day = Utc::now().date_naive() + chrono::Duration::weeks(weeks_ahead);
    while day.weekday() != Weekday::Mon {
        day = day.succ_opt().expect("date in range");
    }
    day
}

/// `date + n` days.
pub fn plus(date: NaiveDate, days: i64) -> NaiveDate {
    date + chrono::Duration::days(days)
}

/// A signed admin token for `email`, expiring `expires_in_secs` from now (negative: past).
pub fn token(email: &str, expires_in_secs: i64, secret: &str) -> String {
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .expect("clock")
        .as_secs() as i64;
    jsonwebtoken::encode(
        &jsonwebtoken::Header::new(jsonwebtoken::Algorithm::HS256),
        &json!({ "email": email, "exp": now + expires_in_secs }),
        &jsonwebtoken::EncodingKey::from_secret(secret.as_bytes()),
    )
    .expect("encode token")
}

/// A valid admin token.
pub fn admin_token() -> String {
    token(ADMIN_EMAIL, 3600, JWT_SECRET)
}

/// The value of one Prometheus sample line on the app's `/metrics`, e.g.
/// `name{outcome="confirmed"}`.
pub async fn metric(app: &TestApp, sample: &str) -> f64 {
    let text = get_text(&app.client, app.url("/metrics")).await;
    text.lines()
        .find_map(|line| line.strip_prefix(sample)?.trim().parse().ok())
        .unwrap_or_else(|| panic!("no sample {sample} in /metrics"))
}

/// A test that cannot run here (`why`: a tool or a server it needs is missing) says so
/// loudly and returns; under `CI`, where everything must run, it fails instead.
pub fn skip_or_fail_in_ci(test: &str, why: &str) {
    if std::env::var_os("CI").is_some() {
        panic!("{test} cannot run in CI: {why}");
    }
    // Written to the stderr handle directly: the test harness captures `eprintln!`, and a
    // skip must be visible.
    use std::io::Write;
    let _ = writeln!(std::io::stderr(), "SKIPPED {test}: {why}");
}

/// Creates `test_<uuid>` on the `TEST_DATABASE_URL` server and returns its URL, or `None`
/// (after saying so loudly) when the variable is unset. With `CI` set, unset is a failure.
pub async fn fresh_postgres_database(test: &str) -> Option<String> {
    let Ok(admin_url) = std::env::var("TEST_DATABASE_URL") else {
        skip_or_fail_in_ci(
            &format!("the PostgreSQL test {test}"),
            "TEST_DATABASE_URL is unset",
        );
        return None;
    };
    let name = format!("test_{}", uuid::Uuid::new_v4().simple());
    let mut conn = sqlx::PgConnection::connect(&admin_url)
        .await
        .expect("connect to TEST_DATABASE_URL");
    // The name is generated above from a UUID, never from input.
    sqlx::query(sqlx::AssertSqlSafe(format!("CREATE DATABASE {name}")))
        .execute(&mut conn)
        .await
        .expect("create test database");
    conn.close().await.ok();
    let mut url = reqwest::Url::parse(&admin_url).expect("TEST_DATABASE_URL is a URL");
    url.set_path(&format!("/{name}"));
    Some(url.to_string())
}

/// The states of the other sessions on the current database, once none is running a
/// statement or inside a transaction (work the service still finishes after a request was
/// cut off takes milliseconds), or after 10 s (a leaked transaction stays open for the
/// 30 s of `idle_in_transaction_session_timeout`).
pub async fn quiet_session_states(observer: &mut sqlx::PgConnection) -> Vec<Option<String>> {
    const STATES: &str = "SELECT state FROM pg_stat_activity \
                          WHERE datname = current_database() AND pid <> pg_backend_pid()";
    let mut states: Vec<Option<String>> = Vec::new();
    for _ in 0..200 {
        states = sqlx::query_scalar(STATES)
            .fetch_all(&mut *observer)
            .await
            .unwrap();
        if states.iter().all(|s| s.as_deref() == Some("idle")) {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    states
}

/// After round `round` of cut-off requests: once the sessions are quiet, none of the
/// service's is left idle inside a transaction (a leaked transaction holds its locks).
pub async fn assert_no_session_idle_in_transaction(
    observer: &mut sqlx::PgConnection,
    round: impl std::fmt::Display,
) {
    let states = quiet_session_states(observer).await;
    assert!(
        !states.iter().any(|s| s
            .as_deref()
            .is_some_and(|s| s.starts_with("idle in transaction"))),
        "round {round}: a session of the service is idle in transaction: {states:?}"
    );
}

/// The `TEST_DATABASE_URL` server behind a [`slow_proxy`]: the proxy's port on 127.0.0.1, or
/// `None` without a server (said loudly; a failure under CI).
pub async fn slow_database(test: &str) -> Option<u16> {
    let Ok(server) = std::env::var("TEST_DATABASE_URL") else {
        skip_or_fail_in_ci(test, "TEST_DATABASE_URL is not set");
        return None;
    };
    let server = reqwest::Url::parse(&server).expect("TEST_DATABASE_URL is a URL");
    let upstream = format!(
        "{}:{}",
        server.host_str().expect("host"),
        server.port().unwrap_or(5432)
    );
    Some(slow_proxy(upstream).await)
}

/// Points `config`'s database (a fresh one on the `TEST_DATABASE_URL` server) through the
/// [`slow_database`] proxy on `port`: a slow database widens every window in which a request
/// can be cut off.
pub fn through_slow_proxy(config: &mut Config, port: u16) {
    let mut url = reqwest::Url::parse(config.database_url.expose()).unwrap();
    url.set_host(Some("127.0.0.1")).unwrap();
    url.set_port(Some(port)).unwrap();
    config.database_url = DatabaseUrl::parse(url.as_str()).unwrap();
}

/// A TCP proxy to `upstream` that delays every chunk the server sends by 10 ms: a database
/// under load. Returns its port on 127.0.0.1.
pub async fn slow_proxy(upstream: String) -> u16 {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    tokio::spawn(async move {
        while let Ok((client, _)) = listener.accept().await {
            let upstream = upstream.clone();
            tokio::spawn(async move {
                let Ok(server) = tokio::net::TcpStream::connect(&upstream).await else {
                    return;
                };
                let (mut client_read, mut client_write) = client.into_split();
                let (mut server_read, mut server_write) = server.into_split();
                tokio::spawn(async move {
                    let _ = tokio::io::copy(&mut client_read, &mut server_write).await;
                    let _ = server_write.shutdown().await;
                });
                let mut buffer = vec![0_u8; 64 * 1024];
                loop {
                    let n = match server_read.read(&mut buffer).await {
                        Ok(0) | Err(_) => break,
                        Ok(n) => n,
                    };
                    tokio::time::sleep(std::time::Duration::from_millis(10)).await;
                    if client_write.write_all(&buffer[..n]).await.is_err() {
                        break;
                    }
                }
            });
        }
    });
    port
}

/// Everything the service logs in this test binary, as JSON lines with the current span.
/// The first call installs the one global subscriber (a second `set_global_default` in the
/// same binary would fail), so every test that reads logs calls this before it starts an app.
pub fn capture_logs() -> &'static std::sync::Arc<std::sync::Mutex<Vec<u8>>> {
    use std::sync::{Arc, Mutex, OnceLock};
    static LOGS: OnceLock<Arc<Mutex<Vec<u8>>>> = OnceLock::new();
    LOGS.get_or_init(|| {
        let buffer = Arc::new(Mutex::new(Vec::new()));
        let sink = buffer.clone();
        let subscriber = tracing_subscriber::fmt()
            .with_max_level(tracing::Level::TRACE)
            .json()
            .with_current_span(true)
            .with_writer(move || SharedBuffer(sink.clone()))
            .finish();
        tracing::subscriber::set_global_default(subscriber).expect("first subscriber");
        buffer
    })
}

/// What [`capture_logs`] has captured so far.
pub fn captured_logs() -> String {
    String::from_utf8_lossy(&capture_logs().lock().unwrap()).into_owned()
}

struct SharedBuffer(std::sync::Arc<std::sync::Mutex<Vec<u8>>>);

impl std::io::Write for SharedBuffer {
    fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(bytes);
        Ok(bytes.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}
