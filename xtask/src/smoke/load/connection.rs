//! One load connection: it sends a GET, reads the answer to its last byte, and says how the
//! request ended.
//!
//! `http://` targets are driven with hyper's HTTP/1.1 client connection directly: one TCP
//! connection, the request built from a prepared path and `Host` header, the answer's body
//! drained frame by frame and dropped, and the connection's I/O polled in the same task as the
//! request (no channel hop to a separate connection task). A broken, timed-out or closing
//! connection is replaced before the next request. `https://` targets (real deploys behind
//! TLS) go through reqwest, one client with one HTTP/1.1 connection per load connection.

use std::future::poll_fn;
use std::pin::Pin;
use std::time::Duration;

use anyhow::Context;
use hyper::body::{Body, Incoming};
use hyper::client::conn::http1;
use hyper::header::{CONNECTION, HOST, HeaderValue, USER_AGENT};
use hyper::{Request, Uri};
use hyper_util::rt::TokioIo;
use reqwest::Url;
use tokio::net::TcpStream;

/// How one request ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// An HTTP answer with this status, read to its end.
    Status(u16),
    /// The connection could not be opened.
    Connect,
    /// No complete answer within the per-request timeout.
    Timeout,
    /// The connection broke mid-request, or the answer was malformed.
    Transport,
}

/// What every connection of one endpoint sends: resolved once, shared read-only.
#[derive(Debug, Clone)]
pub struct Destination {
    kind: Kind,
    timeout: Duration,
}

#[derive(Debug, Clone)]
enum Kind {
    /// Plain HTTP, driven with hyper: where to connect, and the request's path and `Host`.
    Plain {
        /// `host:port` as written in the URL, resolved by each connection when it connects.
        authority: String,
        path: Uri,
        host: HeaderValue,
    },
    /// HTTPS through reqwest.
    Tls { url: Url },
}

const AGENT: &str = concat!("cabanas-xtask/", env!("CARGO_PKG_VERSION"));

impl Destination {
    /// Prepares the requests to `url` with the given per-request timeout.
    pub fn new(url: &Url, timeout: Duration) -> anyhow::Result<Destination> {
        let kind = match url.scheme() {
            "http" => {
                let host = url
                    .host_str()
                    .with_context(|| format!("`{url}` has no host"))?;
                let port = url.port_or_known_default().unwrap_or(80);
                let authority = format!("{host}:{port}");
                let header = match url.port() {
                    Some(port) => format!("{host}:{port}"),
                    None => host.to_string(),
                };
                let path = match url.query() {
                    Some(query) => format!("{}?{query}", url.path()),
                    None => url.path().to_string(),
                };
                Kind::Plain {
                    path: path
                        .parse()
                        .with_context(|| format!("`{path}` is not a request path"))?,
                    host: HeaderValue::from_str(&header)
                        .with_context(|| format!("`{header}` is not a valid Host header"))?,
                    authority,
                }
            }
            "https" => Kind::Tls { url: url.clone() },
            other => {
                anyhow::bail!("`{url}`: the load generator speaks http and https, not {other}")
            }
        };
        Ok(Destination { kind, timeout })
    }

    /// A connection to this destination (opened lazily by the first request).
    pub fn connection(&self) -> anyhow::Result<Connection> {
        let tls = match &self.kind {
            Kind::Plain { .. } => None,
            Kind::Tls { .. } => Some(
                crate::http::client_builder(self.timeout)
                    .http1_only()
                    .tcp_nodelay(true)
                    .pool_max_idle_per_host(1)
                    .build()
                    .context("building the HTTPS client for the benchmark")?,
            ),
        };
        Ok(Connection {
            destination: self.clone(),
            live: None,
            tls,
        })
    }
}

/// One load connection (plain: one TCP connection at a time; TLS: one reqwest client).
pub struct Connection {
    destination: Destination,
    live: Option<Live>,
    tls: Option<reqwest::Client>,
}

/// An open HTTP/1.1 connection: the request side and the connection's I/O future.
struct Live {
    sender: http1::SendRequest<String>,
    io: Pin<Box<http1::Connection<TokioIo<TcpStream>, String>>>,
    /// The server said it closes the connection, or the connection ended: open a new one.
    spent: bool,
}

impl Connection {
    /// Sends one GET and reads the whole answer, within the per-request timeout.
    pub async fn send(&mut self) -> Outcome {
        if let (Some(client), Kind::Tls { url }) = (&self.tls, &self.destination.kind) {
            return send_tls(client, url).await;
        }
        match tokio::time::timeout(self.destination.timeout, self.send_plain()).await {
            Ok(outcome) => outcome,
            Err(_) => {
                // The request may still be in flight on that connection: never reuse it.
                self.live = None;
                Outcome::Timeout
            }
        }
    }

    async fn send_plain(&mut self) -> Outcome {
        let Kind::Plain {
            authority,
            path,
            host,
        } = &self.destination.kind
        else {
            return Outcome::Transport;
        };
        if self.live.as_ref().is_none_or(|live| live.spent) {
            self.live = None;
            match connect(authority).await {
                Ok(live) => self.live = Some(live),
                Err(outcome) => return outcome,
            }
        }
        let Some(live) = self.live.as_mut() else {
            return Outcome::Connect;
        };
        let mut request = Request::new(String::new());
        *request.uri_mut() = path.clone();
        let headers = request.headers_mut();
        headers.insert(HOST, host.clone());
        headers.insert(USER_AGENT, HeaderValue::from_static(AGENT));
        match live.exchange(request).await {
            Ok(status) => Outcome::Status(status),
            Err(()) => {
                self.live = None;
                Outcome::Transport
            }
        }
    }
}

async fn connect(authority: &str) -> Result<Live, Outcome> {
    let stream = TcpStream::connect(authority)
        .await
        .map_err(|_| Outcome::Connect)?;
    // Requests are small and answered one at a time: never wait to coalesce them.
    let _ = stream.set_nodelay(true);
    let (sender, io) = http1::handshake(TokioIo::new(stream))
        .await
        .map_err(|_| Outcome::Connect)?;
    Ok(Live {
        sender,
        io: Box::pin(io),
        spent: false,
    })
}

impl Live {
    /// One request on this connection: the answer's status once its body is read, or `Err`
    /// when the connection broke first.
    async fn exchange(&mut self, request: Request<String>) -> Result<u16, ()> {
        let Live { sender, io, spent } = self;
        let answer = async {
            let response = sender.send_request(request).await.map_err(drop)?;
            let status = response.status().as_u16();
            let closes = response
                .headers()
                .get(CONNECTION)
                .is_some_and(|v| v.as_bytes().eq_ignore_ascii_case(b"close"));
            drain(response.into_body()).await?;
            Ok::<_, ()>((status, closes))
        };
        let mut answer = std::pin::pin!(answer);
        let result = tokio::select! {
            biased;
            result = &mut answer => result,
            _ = io.as_mut() => {
                // The connection ended. hyper hands an unfinished request its error before
                // the connection future resolves, so the answer resolves now either way.
                *spent = true;
                answer.await
            }
        };
        let (status, closes) = result?;
        *spent |= closes;
        Ok(status)
    }
}

/// Reads a body to its end, dropping the bytes.
async fn drain(mut body: Incoming) -> Result<(), ()> {
    loop {
        match poll_fn(|cx| Pin::new(&mut body).poll_frame(cx)).await {
            None => return Ok(()),
            Some(Ok(_)) => {}
            Some(Err(_)) => return Err(()),
        }
    }
}

/// One GET over reqwest, body read to the end.
async fn send_tls(client: &reqwest::Client, url: &Url) -> Outcome {
    let mut response = match client.get(url.clone()).send().await {
        Ok(response) => response,
        Err(error) => return classify(&error),
    };
    let status = response.status().as_u16();
    loop {
        match response.chunk().await {
            Ok(Some(_)) => {}
            Ok(None) => return Outcome::Status(status),
            Err(error) => return classify(&error),
        }
    }
}

fn classify(error: &reqwest::Error) -> Outcome {
    if error.is_timeout() {
        Outcome::Timeout
    } else if error.is_connect() {
        Outcome::Connect
    } else {
        Outcome::Transport
    }
}
