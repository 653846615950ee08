//! The HTTP/1.1 server: hyper connections with the limits `axum::serve` does not offer.
//!
//! - A client must finish its request headers within `header_read_timeout`.
//! - A connection with no request in flight for `idle_timeout` is closed.
//! - At most `max_connections` are open. When a new connection arrives at the limit, the
//!   connection that has waited longest without a request in flight (an idle keep-alive,
//!   or a client still dribbling its headers) is closed to make room, so slow or idle
//!   clients can never crowd out health checks; only when every connection is busy with a
//!   request is the new one refused.

use std::collections::HashMap;
use std::future::Future;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use std::convert::Infallible;

use hyper::server::conn::http1;
use hyper_util::rt::{TokioIo, TokioTimer};
use tokio::net::TcpListener;
use tokio::sync::{Notify, watch};
use tower::ServiceExt;

pub use crate::config::limits::ConnectionLimits;

/// What the server serves: the service ([`crate::http::App`]) or a plain axum router.
pub trait HttpService:
    tower::Service<
        axum::extract::Request,
        Response = axum::response::Response,
        Error = Infallible,
        Future: Send + 'static,
    > + Clone
    + Send
    + 'static
{
}

impl<S> HttpService for S where
    S: tower::Service<
            axum::extract::Request,
            Response = axum::response::Response,
            Error = Infallible,
            Future: Send + 'static,
        > + Clone
        + Send
        + 'static
{
}

/// One open connection, as the accept loop and the idle reaper see it.
#[derive(Debug)]
struct Tracked {
    in_flight: AtomicUsize,
    idle_since: Mutex<Instant>,
    close: Notify,
}

impl Tracked {
    fn idle_for(&self) -> Option<Duration> {
        (self.in_flight.load(Ordering::SeqCst) == 0).then(|| {
            self.idle_since
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .elapsed()
        })
    }
}

/// Counts a request in flight on its connection until dropped.
struct InFlight(Arc<Tracked>);

impl InFlight {
    fn enter(tracked: &Arc<Tracked>) -> Self {
        tracked.in_flight.fetch_add(1, Ordering::SeqCst);
        Self(tracked.clone())
    }
}

impl Drop for InFlight {
    fn drop(&mut self) {
        *self.0.idle_since.lock().unwrap_or_else(|p| p.into_inner()) = Instant::now();
        self.0.in_flight.fetch_sub(1, Ordering::SeqCst);
    }
}

type Registry = Arc<Mutex<HashMap<u64, Arc<Tracked>>>>;

/// Serves `app` on `listener` until `shutdown` completes, then lets requests in flight
/// finish (at most `drain` long) and returns.
pub async fn serve<S: HttpService>(
    listener: TcpListener,
    app: S,
    limits: ConnectionLimits,
    shutdown: impl Future<Output = ()>,
    drain: Duration,
) {
    let registry: Registry = Arc::default();
    let next_id = AtomicU64::new(0);
    let (stopping, stop) = watch::channel(false);
    let reaper = tokio::spawn(reap_idle(registry.clone(), limits.idle_timeout));
    tokio::pin!(shutdown);
    loop {
        let stream = tokio::select! {
            () = &mut shutdown => break,
            accepted = listener.accept() => match accepted {
                Ok((stream, _)) => stream,
                Err(err) => {
                    // Out of file descriptors and the like: back off instead of spinning.
                    tracing::warn!(error = %err, "accepting a connection failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
        };
        let tracked = Arc::new(Tracked {
            in_flight: AtomicUsize::new(0),
            idle_since: Mutex::new(Instant::now()),
            close: Notify::new(),
        });
        let id = next_id.fetch_add(1, Ordering::Relaxed);
        if !admit(&registry, id, &tracked, limits.max_connections) {
            tracing::warn!(
                max = limits.max_connections,
                "connection refused: every connection has a request in flight"
            );
            continue;
        }
        tokio::spawn(connection(
            stream,
            app.clone(),
            limits,
            tracked,
            id,
            registry.clone(),
            stop.clone(),
        ));
    }
    reaper.abort();
    let _ = stopping.send(true);
    let deadline = Instant::now() + drain;
    while !lock(&registry).is_empty() && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

fn lock(registry: &Registry) -> std::sync::MutexGuard<'_, HashMap<u64, Arc<Tracked>>> {
    registry.lock().unwrap_or_else(|p| p.into_inner())
}

/// Registers a new connection, closing the longest-idle one when at the limit; false when
/// every open connection has a request in flight.
fn admit(registry: &Registry, id: u64, tracked: &Arc<Tracked>, max: usize) -> bool {
    let mut open = lock(registry);
    if open.len() >= max {
        let longest_idle = open
            .iter()
            .filter_map(|(id, c)| c.idle_for().map(|idle| (idle, *id)))
            .max();
        let Some((_, victim)) = longest_idle else {
            return false;
        };
        if let Some(victim) = open.remove(&victim) {
            victim.close.notify_one();
        }
    }
    open.insert(id, tracked.clone());
    true
}

/// Closes connections idle for longer than `idle_timeout`.
async fn reap_idle(registry: Registry, idle_timeout: Duration) {
    let mut ticker = tokio::time::interval((idle_timeout / 4).max(Duration::from_millis(100)));
    loop {
        ticker.tick().await;
        lock(&registry).retain(|_, c| {
            let expired = c.idle_for().is_some_and(|idle| idle >= idle_timeout);
            if expired {
                c.close.notify_one();
            }
            !expired
        });
    }
}

async fn connection<S: HttpService>(
    stream: tokio::net::TcpStream,
    app: S,
    limits: ConnectionLimits,
    tracked: Arc<Tracked>,
    id: u64,
    registry: Registry,
    mut stop: watch::Receiver<bool>,
) {
    let counted = tracked.clone();
    // The rate limiter keys on the peer address when no `Fly-Client-IP` names the client.
    let peer = stream.peer_addr().ok();
    let service = hyper::service::service_fn(move |request: hyper::Request<_>| {
        let in_flight = InFlight::enter(&counted);
        let app = app.clone();
        let mut request = request.map(axum::body::Body::new);
        if let Some(peer) = peer {
            request
                .extensions_mut()
                .insert(axum::extract::ConnectInfo(peer));
        }
        async move {
            let response = app.oneshot(request).await;
            drop(in_flight);
            response
        }
    });
    let conn = http1::Builder::new()
        .timer(TokioTimer::new())
        .header_read_timeout(limits.header_read_timeout)
        .serve_connection(TokioIo::new(stream), service);
    tokio::pin!(conn);
    let mut draining = false;
    loop {
        tokio::select! {
            _ = conn.as_mut() => break,
            () = tracked.close.notified() => {
                if tracked.in_flight.load(Ordering::SeqCst) == 0 {
                    break;
                }
            }
            changed = stop.changed(), if !draining => {
                draining = true;
                if changed.is_ok() {
                    conn.as_mut().graceful_shutdown();
                }
            }
        }
    }
    lock(&registry).remove(&id);
}
