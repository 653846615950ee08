//! The HTTP client every network task uses.

use std::sync::Once;
use std::time::Duration;

use anyhow::Context;

static PROVIDER: Once = Once::new();

/// A client with the given per-request timeout. Installs the TLS crypto provider (ring) once:
/// reqwest is built without a default provider to keep the build small.
pub fn client(timeout: Duration) -> anyhow::Result<reqwest::Client> {
    client_builder(timeout)
        .build()
        .context("building the HTTP client")
}

/// The builder behind [`client`], for tasks that tune the connection pool (the `smoke` load
/// generator). Installs the TLS crypto provider like [`client`].
pub fn client_builder(timeout: Duration) -> reqwest::ClientBuilder {
    PROVIDER.call_once(|| {
        // Fails only when another provider is installed already, which is just as good.
        let _ = rustls::crypto::ring::default_provider().install_default();
    });
    reqwest::Client::builder()
        .timeout(timeout)
        .connect_timeout(timeout.min(Duration::from_secs(5)))
        .user_agent(concat!("cabanas-xtask/", env!("CARGO_PKG_VERSION")))
}

/// A multi-threaded tokio runtime for a task's network work.
pub fn runtime() -> anyhow::Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("starting the async runtime")
}
