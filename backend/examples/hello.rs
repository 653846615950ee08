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
    let app = Router::new().route("/api/v1/healthz", get(healthz));
    eprintln!("hello listening on http://{addr}");
    if std::env::var("HELLO_SERVER").as_deref() == Ok("axum") {
        if let Err(err) = axum::serve(listener, app)
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
