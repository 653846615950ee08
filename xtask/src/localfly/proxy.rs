//! The app's public address: a small round-robin HTTP proxy (a background `localfly local
//! proxy` process) in front of the app's started machines whose checks passed. Like Fly's
//! proxy it honours the `fly-force-instance-id` request header, sending the request to that
//! machine only (healthy or not, so a deploy can ask a failing machine what it runs).
//!
//! Built on axum (already compiled for the service, so it costs no build time) with reqwest
//! forwarding: a catch-all handler re-reads the app's state on each request, so deploys that
//! replace machines are seen at once without any signalling.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use anyhow::Context;
use axum::Router;
use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::{HeaderName, StatusCode};
use axum::response::{IntoResponse, Response};
use serde_json::json;

use super::machine;
use super::state::StateDir;

/// The header that pins a request to one machine.
pub const FORCE_INSTANCE: &str = "fly-force-instance-id";

struct Proxy {
    dir: StateDir,
    app: String,
    next: AtomicUsize,
    client: reqwest::Client,
}

/// Serves the proxy of `app` on `127.0.0.1:port` until the process is killed.
pub fn serve(dir: StateDir, app: &str, port: u16) -> anyhow::Result<()> {
    let proxy = Arc::new(Proxy {
        dir,
        app: app.into(),
        next: AtomicUsize::new(0),
        client: crate::http::client_builder(Duration::from_secs(60))
            .redirect(reqwest::redirect::Policy::none())
            .build()?,
    });
    let runtime = crate::http::runtime()?;
    runtime.block_on(async move {
        let listener = tokio::net::TcpListener::bind(("127.0.0.1", port))
            .await
            .with_context(|| format!("binding the proxy of {app} to 127.0.0.1:{port}"))?;
        let router = Router::new().fallback(forward).with_state(proxy);
        axum::serve(listener, router)
            .await
            .context("serving the proxy")
    })
}

fn unavailable(detail: String) -> Response {
    let body = json!({ "error": "unavailable", "detail": detail });
    (StatusCode::SERVICE_UNAVAILABLE, axum::Json(body)).into_response()
}

async fn forward(State(proxy): State<Arc<Proxy>>, request: Request) -> Response {
    let app = match proxy.dir.load(&proxy.app) {
        Ok(app) => app,
        Err(error) => return unavailable(format!("{error:#}")),
    };
    let running: Vec<_> = app
        .machines
        .values()
        .filter(|m| m.state == "started" && machine::alive(m))
        .collect();
    let healthy: Vec<_> = running.iter().copied().filter(|m| m.healthy).collect();
    let healthy = super::replay::preferred(&app, healthy, request.headers());
    let forced = request
        .headers()
        .get(FORCE_INSTANCE)
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned);
    let target = match &forced {
        Some(id) => match running.iter().find(|m| &m.id == id) {
            Some(m) => *m,
            None => return unavailable(format!("machine {id} of {} is not serving", app.name)),
        },
        None if healthy.is_empty() => {
            return unavailable(format!("no healthy machine of {} is serving", app.name));
        }
        None => healthy[proxy.next.fetch_add(1, Ordering::Relaxed) % healthy.len()],
    };

    let (parts, body) = request.into_parts();
    let path = parts.uri.path_and_query().map_or("/", |p| p.as_str());
    let url = format!("http://127.0.0.1:{}{path}", target.port);
    let Ok(body) = axum::body::to_bytes(body, 16 * 1024 * 1024).await else {
        return (StatusCode::PAYLOAD_TOO_LARGE, "request body too large").into_response();
    };
    let mut upstream = proxy
        .client
        .request(parts.method.clone(), &url)
        .body(body.clone());
    for (name, value) in &parts.headers {
        if !hop_by_hop(name) {
            upstream = upstream.header(name, value);
        }
    }
    let answer = match upstream.send().await {
        Ok(answer) => answer,
        Err(error) => {
            let detail = format!("machine {}: {}", target.id, error.without_url());
            return (
                StatusCode::BAD_GATEWAY,
                axum::Json(json!({ "error": "bad_gateway", "detail": detail })),
            )
                .into_response();
        }
    };
    let answer = match super::replay::follow(
        &proxy.client,
        &app,
        target,
        &parts,
        &body,
        answer,
        hop_by_hop,
    )
    .await
    {
        Ok(answer) => answer,
        Err(refused) => return refused,
    };
    let mut response = Response::builder().status(answer.status());
    for (name, value) in answer.headers() {
        if !hop_by_hop(name) {
            response = response.header(name, value);
        }
    }
    let body = answer.bytes().await.unwrap_or_default();
    response
        .body(Body::from(body))
        .unwrap_or_else(|_| StatusCode::BAD_GATEWAY.into_response())
}

fn hop_by_hop(name: &HeaderName) -> bool {
    matches!(
        name.as_str(),
        "host"
            | "connection"
            | "keep-alive"
            | "transfer-encoding"
            | "te"
            | "trailer"
            | "upgrade"
            | "proxy-connection"
            | "content-length"
    )
}
