//! The bare peer `healthz` is measured against: the same axum, hyper and tokio as
//! `cabanas serve`, one route, no middleware, no database.
//!
//! ```text
//! cargo build --release -p backend --example hello
//! HOST=127.0.0.1 PORT=18081 target/release/examples/hello
//! wrk -t2 -c50 -d10s http://127.0.0.1:18081/api/v1/healthz
//! ```
//!
//! By default it serves through the service's own accept loop
//! ([`backend::http::server::serve`]: hyper HTTP/1.1, header-read and idle timeouts,
//! connection limit), so an A/B against `cabanas serve` measures the middleware stack and the
//! handler, not the server. `HELLO_SERVER=axum` serves through `axum::serve` instead.
//!
//! `HELLO_LAYERS=per-route,cors` (any of `per-route`, `cors`, `trace`, `request-id`, or `all`)
//! puts those layers of the service's own stack ([`backend::http::with_layers`]) around the
//! same handler, with the service's logging (`RUST_LOG`), over a throwaway SQLite database: `cargo xtask bench --only layers` adds
//! them one at a time to say what each costs.

use std::net::{IpAddr, SocketAddr};
use std::time::Duration;

use axum::Router;
use axum::http::header;
use axum::response::IntoResponse;
use axum::routing::get;

async fn healthz() -> impl IntoResponse {
    (
        [(header::CONTENT_TYPE, "application/json")],
        r#"{"status":"healthy"}"#,
    )
}

/// The handler behind the chosen layers of the service's stack, with the service's state
/// (its metrics, rate limiter and timeouts) over a fresh SQLite database in a temporary
/// directory.
async fn layered(
    layers: backend::http::Layers,
) -> anyhow::Result<(backend::http::App, tempfile::TempDir)> {
    // The service's logging, so the trace layer costs what it costs in the service.
    backend::telemetry::init_tracing();
    let dir = tempfile::tempdir()?;
    let url = format!("sqlite:{}?mode=rwc", dir.path().join("hello.db").display());
    let url = backend::config::DatabaseUrl::parse(&url).map_err(anyhow::Error::msg)?;
    let config = backend::Config::for_database(url);
    let state = backend::build_state(&config).await?;
    let routes = Router::new().route("/api/v1/healthz", get(healthz));
    Ok((backend::http::with_layers(routes, state, layers), dir))
}

fn env_or<T: std::str::FromStr>(name: &str, default: T) -> Result<T, String> {
    match std::env::var(name) {
        Ok(value) => value
            .trim()
            .parse()
            .map_err(|_| format!("{name} is not valid (expected e.g. {name}=18081)")),
        Err(_) => Ok(default),
    }
}

#[tokio::main]
async fn main() -> std::process::ExitCode {
    let parsed = env_or::<IpAddr>("HOST", IpAddr::from([127, 0, 0, 1]))
        .and_then(|host| Ok(SocketAddr::new(host, env_or::<u16>("PORT", 18081)?)));
    let addr = match parsed {
        Ok(addr) => addr,
        Err(err) => {
            eprintln!("error: {err}");
            return std::process::ExitCode::from(2);
        }
    };
    let listener = match tokio::net::TcpListener::bind(addr).await {
        Ok(listener) => listener,
        Err(err) => {
            eprintln!("error: cannot listen on {addr}: {err} (check HOST and PORT)");
            return std::process::ExitCode::from(2);
        }
    };
    let layers = match std::env::var("HELLO_LAYERS") {
        Ok(list) => match backend::http::Layers::parse(&list) {
            Ok(layers) => Some(layers),
            Err(err) => {
                eprintln!("error: HELLO_LAYERS: {err}");
                return std::process::ExitCode::from(2);
            }
        },
        Err(_) => None,
    };
    let Some(layers) = layers else {
        let app = Router::new().route("/api/v1/healthz", get(healthz));
        return serve(listener, addr, app).await;
    };
    match layered(layers).await {
        // The directory lives until the server stops: the state's database is in it.
        Ok((app, _database_dir)) => serve(listener, addr, app).await,
        Err(err) => {
            eprintln!("error: cannot build the service's state for HELLO_LAYERS: {err:#}");
            std::process::ExitCode::from(2)
        }
    }
}

/// Serves `app` until SIGTERM or Ctrl-C, through the service's accept loop or, with
/// `HELLO_SERVER=axum`, through `axum::serve`.
async fn serve(
    listener: tokio::net::TcpListener,
    addr: SocketAddr,
    app: impl backend::http::server::HttpService,
) -> std::process::ExitCode {
    eprintln!("hello listening on http://{addr}");
    if std::env::var("HELLO_SERVER").as_deref() == Ok("axum") {
        if let Err(err) = axum::serve(listener, axum::ServiceExt::into_make_service(app))
            .with_graceful_shutdown(backend::http::shutdown_signal())
            .await
        {
            eprintln!("error: serving failed: {err}");
            return std::process::ExitCode::FAILURE;
        }
    } else {
        let limits = backend::http::server::ConnectionLimits {
            header_read_timeout: Duration::from_secs(10),
            idle_timeout: Duration::from_secs(60),
            max_connections: 1024,
        };
        backend::http::server::serve(
            listener,
            app,
            limits,
            backend::http::shutdown_signal(),
            Duration::from_secs(1),
        )
        .await;
    }
    std::process::ExitCode::SUCCESS
}
