//! What each layer of the service's middleware stack costs, measured in process: requests
//! go straight to the tower service (no socket, no kernel, no scheduler), one at a time on
//! one thread, with the one header wrk sends (`host`), for `--duration` seconds, and the
//! request rate is printed.
//!
//! ```text
//! cargo build --release -p backend --example stack
//! target/release/examples/stack --layers none --duration 10       # hello's handler, bare
//! target/release/examples/stack --layers per-route,cors --duration 10
//! target/release/examples/stack --service --duration 10           # the service's healthz
//! ```
//!
//! `--layers` takes the names of `backend::http::Layers` (`per-route`, `cors`, `trace`,
//! `request-id`, or `all`), put around the bare `hello` example's handler; `none` is that
//! handler on a plain axum router, as `hello` serves it. `--service` is the whole service
//! (`backend::app`: every layer, its router and its healthz handler). The service's state
//! lives on a throwaway SQLite database. `cargo xtask bench --only layers` runs each in turn
//! and reports the differences.

use std::process::ExitCode;
use std::time::{Duration, Instant};

use axum::Router;
use axum::body::Body;
use axum::http::{Request, header};
use axum::response::IntoResponse;
use axum::routing::get;
use tower::ServiceExt;

/// The bare `hello` example's handler.
async fn healthz() -> impl IntoResponse {
    (
        [(header::CONTENT_TYPE, "application/json")],
        r#"{"status":"healthy"}"#,
    )
}

const USAGE: &str = "usage: stack (--layers LIST | --service) [--duration SECONDS]
  --layers LIST   per-route, cors, trace, request-id (comma-separated), all, or none
  --service       the whole service's healthz
  --duration N    seconds to measure (default 5)";

enum Target {
    Bare,
    Layers(backend::http::Layers),
    Service,
}

fn parse(args: &[String]) -> Result<(Target, Duration), String> {
    let mut target = None;
    let mut duration = Duration::from_secs(5);
    let mut args = args.iter();
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "--layers" => {
                let list = args.next().ok_or("--layers needs a list")?;
                target = Some(if list == "none" {
                    Target::Bare
                } else {
                    Target::Layers(backend::http::Layers::parse(list)?)
                });
            }
            "--service" => target = Some(Target::Service),
            "--duration" => {
                let seconds = args.next().ok_or("--duration needs a number of seconds")?;
                let seconds: f64 = seconds
                    .parse()
                    .ok()
                    .filter(|s: &f64| s.is_finite() && *s > 0.0)
                    .ok_or_else(|| format!("--duration {seconds}: expected seconds, e.g. 10"))?;
                duration = Duration::from_secs_f64(seconds);
            }
            "-h" | "--help" => return Err(String::new()),
            other => return Err(format!("unknown argument {other}")),
        }
    }
    let target = target.ok_or("say what to measure: --layers LIST or --service")?;
    Ok((target, duration))
}

#[tokio::main(flavor = "current_thread")]
async fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let (target, duration) = match parse(&args) {
        Ok(parsed) => parsed,
        Err(err) if err.is_empty() => {
            println!("{USAGE}");
            return ExitCode::SUCCESS;
        }
        Err(err) => {
            eprintln!("error: {err}\n{USAGE}");
            return ExitCode::from(2);
        }
    };
    // The service's logging, so the access log costs what it costs in the service.
    backend::telemetry::init_tracing();
    let (requests, elapsed) = match target {
        Target::Bare => {
            let app = Router::new().route("/api/v1/healthz", get(healthz));
            measure(app, duration).await
        }
        Target::Layers(_) | Target::Service => {
            let dir = match tempfile::tempdir() {
                Ok(dir) => dir,
                Err(err) => {
                    eprintln!("error: cannot create a temporary directory: {err}");
                    return ExitCode::from(2);
                }
            };
            let url = format!("sqlite:{}?mode=rwc", dir.path().join("stack.db").display());
            let state = match backend::config::DatabaseUrl::parse(&url) {
                Ok(url) => backend::build_state(&backend::Config::for_database(url)).await,
                Err(err) => Err(anyhow::anyhow!("{err}")),
            };
            let state = match state {
                Ok(state) => state,
                Err(err) => {
                    eprintln!("error: cannot build the service's state: {err:#}");
                    return ExitCode::from(2);
                }
            };
            match target {
                Target::Layers(layers) => {
                    let routes = Router::new().route("/api/v1/healthz", get(healthz));
                    let app = backend::http::with_layers(routes, state, layers);
                    measure(app, duration).await
                }
                _ => measure(backend::app(state), duration).await,
            }
        }
    };
    let Some((requests, elapsed)) = requests.zip(elapsed) else {
        eprintln!("error: a request to /api/v1/healthz did not answer 200");
        return ExitCode::FAILURE;
    };
    println!("requests: {requests}");
    println!("elapsed_s: {:.6}", elapsed.as_secs_f64());
    println!(
        "ns_per_request: {:.1}",
        elapsed.as_nanos() as f64 / requests as f64
    );
    ExitCode::SUCCESS
}

/// Sends `GET /api/v1/healthz` to `app`, one request at a time, reading each body, for
/// `duration`: how many answered and how long they took (`None` if one was not a 200).
async fn measure<S: backend::http::server::HttpService>(
    app: S,
    duration: Duration,
) -> (Option<u64>, Option<Duration>) {
    // Warm up: the first requests register metrics, fill caches and probe the database.
    for _ in 0..1_000 {
        if !answer(&app).await {
            return (None, None);
        }
    }
    let started = Instant::now();
    let mut requests = 0_u64;
    loop {
        for _ in 0..1_000 {
            if !answer(&app).await {
                return (None, None);
            }
        }
        requests += 1_000;
        let elapsed = started.elapsed();
        if elapsed >= duration {
            return (Some(requests), Some(elapsed));
        }
    }
}

async fn answer<S: backend::http::server::HttpService>(app: &S) -> bool {
    // With the one header wrk sends, so the request's header map is allocated as on the wire.
    let Ok(request) = Request::get("/api/v1/healthz")
        .header(header::HOST, "127.0.0.1")
        .body(Body::empty())
    else {
        return false;
    };
    let Ok(response) = app.clone().oneshot(request).await;
    let ok = response.status().is_success();
    let body = axum::body::to_bytes(response.into_body(), 1 << 16).await;
    ok && body.is_ok_and(|b| !b.is_empty())
}
