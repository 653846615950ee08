//! The app's public address: a small round-robin HTTP proxy (a background `localfly local
//! proxy` process) in front of the app's started machines whose checks passed. Like Fly's
//! proxy it honours the `fly-force-instance-id` request header, sending the request to that
//! machine only (healthy or not, so a deploy can ask a failing machine what it runs).
//!
//! Built on axum (already compiled for the service, so it costs no build time) with reqwest
//! forwarding: a catch-all handler re-reads the app's state on each request, so deploys that
//! replace machines are seen at once without any signalling.
//!
//! It also stops idle machines and starts stopped ones as Fly's proxy does, when the last
//! deploy's fly.toml asks for it ([`super::autostop`]).

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

use super::autostop::{self, Idle};
use super::machine;
use super::state::StateDir;

/// The header that pins a request to one machine.
pub const FORCE_INSTANCE: &str = "fly-force-instance-id";

struct Proxy {
    dir: StateDir,
    app: String,
    next: AtomicUsize,
    client: reqwest::Client,
    idle: std::sync::Mutex<Idle>,
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
        idle: std::sync::Mutex::new(Idle::default()),
    });
    let runtime = crate::http::runtime()?;
    let stopper = Arc::clone(&proxy);
    std::thread::spawn(move || stop_idle_machines(&stopper));
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

/// Auto-stop's loop, on a thread of its own: every tick, stop what idled too long.
fn stop_idle_machines(proxy: &Proxy) {
    loop {
        let tick = proxy
            .dir
            .load(&proxy.app)
            .map_or(std::time::Duration::from_secs(1), |app| {
                autostop::tick(&app)
            });
        std::thread::sleep(tick);
        let mut idle = proxy.idle.lock().unwrap_or_else(|p| p.into_inner());
        for id in autostop::stop_idle(&proxy.dir, &proxy.app, &mut idle) {
            eprintln!("auto-stop: machine {id} of {} stopped (idle)", proxy.app);
        }
    }
}

/// Auto-start: starts `wanted` (or any stopped machine) on a thread of its own, since it
/// waits for the machine's checks.
async fn auto_start(proxy: &Arc<Proxy>, wanted: Option<String>) -> Result<String, String> {
    let (tell, answer) = tokio::sync::oneshot::channel();
    let (dir, app) = (proxy.dir.clone(), proxy.app.clone());
    std::thread::spawn(move || {
        let _ = tell.send(autostop::start_stopped(&dir, &app, wanted.as_deref()));
    });
    let started = answer
        .await
        .unwrap_or_else(|_| Err("the auto-start thread ended".into()));
    if let Ok(id) = &started {
        eprintln!("auto-start: machine {id} of {} started", proxy.app);
    }
    started
}

fn unavailable(detail: String) -> Response {
    let body = json!({ "error": "unavailable", "detail": detail });
    (StatusCode::SERVICE_UNAVAILABLE, axum::Json(body)).into_response()
}

async fn forward(State(proxy): State<Arc<Proxy>>, request: Request) -> Response {
    let forced = request
        .headers()
        .get(FORCE_INSTANCE)
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned);
    let mut target = match pick(&proxy, forced.as_deref(), request.headers()) {
        Ok(target) => target,
        Err(detail) => return unavailable(detail),
    };
    if target.is_none() {
        match auto_start(&proxy, forced.clone()).await {
            Ok(_) => {
                target = pick(&proxy, forced.as_deref(), request.headers())
                    .ok()
                    .flatten()
            }
            Err(detail) => return unavailable(detail),
        }
    }
    let Some((id, port)) = target else {
        let what = forced.map_or("no healthy machine".into(), |id| format!("machine {id}"));
        return unavailable(format!("{what} of {} is serving", proxy.app));
    };
    proxy
        .idle
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .touch(&id);
    relay(&proxy, request, &id, port).await
}

/// The machine a request goes to, `(id, port)`: the forced one if it runs, else the next
/// healthy one round-robin. `Ok(None)`: none serves, but auto-start may start one; `Err`:
/// none serves and none will.
fn pick(
    proxy: &Proxy,
    forced: Option<&str>,
    headers: &axum::http::HeaderMap,
) -> Result<Option<(String, u16)>, String> {
    let app = proxy.dir.load(&proxy.app).map_err(|e| format!("{e:#}"))?;
    let running: Vec<_> = app
        .machines
        .values()
        .filter(|m| m.state == "started" && machine::alive(m))
        .collect();
    let healthy: Vec<_> = running.iter().copied().filter(|m| m.healthy).collect();
    let healthy = super::replay::preferred(&app, healthy, headers);
    let chosen = match forced {
        Some(id) => running.iter().find(|m| m.id == id).copied(),
        None if healthy.is_empty() => None,
        None => Some(healthy[proxy.next.fetch_add(1, Ordering::Relaxed) % healthy.len()]),
    };
    if let Some(m) = chosen {
        return Ok(Some((m.id.clone(), m.port)));
    }
    let startable = app.auto_stop.start
        && app.machines.values().any(|m| {
            m.managed()
                && forced.is_none_or(|id| m.id == id)
                && !running.iter().any(|r| r.id == m.id)
        });
    match forced {
        _ if startable => Ok(None),
        Some(id) => Err(format!("machine {id} of {} is not serving", app.name)),
        None => Err(format!("no healthy machine of {} is serving", app.name)),
    }
}

/// Sends the request to the machine on `port` and relays its answer.
async fn relay(proxy: &Proxy, request: Request, id: &str, port: u16) -> Response {
    let (parts, body) = request.into_parts();
    let path = parts.uri.path_and_query().map_or("/", |p| p.as_str());
    let url = format!("http://127.0.0.1:{port}{path}");
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
            let detail = format!("machine {id}: {}", error.without_url());
            return (
                StatusCode::BAD_GATEWAY,
                axum::Json(json!({ "error": "bad_gateway", "detail": detail })),
            )
                .into_response();
        }
    };
    // A `fly-replay` answer is followed as Fly's proxy does, to a machine of the named region.
    let app = match proxy.dir.load(&proxy.app) {
        Ok(app) => app,
        Err(error) => return unavailable(format!("{error:#}")),
    };
    let Some(target) = app.machines.get(id) else {
        return unavailable(format!("machine {id} of {} is gone", proxy.app));
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
