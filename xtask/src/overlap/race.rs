//! The race: N identical pre-reserves released at one instant.
//!
//! Each racer has its own client and opens its keep-alive connection first (a GET of
//! `/api/v1/healthz`), then waits. When every racer is connected, the release instant is
//! published and all POSTs go out at once, so the server sees N requests in flight together
//! rather than a trickle that the first winner has already finished by. With regions given,
//! the racers enter through them in turn (Fly's `fly-prefer-region`), so on a two-region app
//! half the bookings arrive in the replica region and are replayed to the primary.

use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use tokio::sync::{mpsc, watch};

use super::admin::AdminToken;
use super::api::{self, HEALTHZ_PATH, PreReserve, Stay};
use super::judge::{Outcome, RequestOutcome};
use super::ledger::{Ledger, Recorder};
use super::plan::OverlapPlan;
use crate::config::Target;

/// File descriptors kept in reserve beyond one socket per racer.
const SPARE_FDS: u64 = 128;

/// What a race measured.
#[derive(Debug, Clone)]
pub struct RaceResult {
    /// Every request's outcome, by request number.
    pub outcomes: Vec<RequestOutcome>,
    /// How long opening the connections took, in milliseconds.
    pub connect_ms: f64,
    /// From the release to the last answer, in milliseconds.
    pub race_ms: f64,
}

/// The race of one round of `plan`: its `concurrency` pre-reserves of `stay` in
/// `accommodation_id`, tagged with its run, through its regions, every code noted in
/// `ledger`.
pub async fn race_round(
    target: &Target,
    plan: &OverlapPlan,
    accommodation_id: i64,
    stay: Stay,
    ledger: &Ledger,
) -> anyhow::Result<RaceResult> {
    let body = PreReserve::new(accommodation_id, stay, &plan.run_id);
    race(
        target,
        &body,
        plan.concurrency,
        plan.timeout,
        &ledger.recorder(),
        plan.admin_token.as_ref(),
        &plan.regions,
    )
    .await
}

/// Sends `concurrency` copies of `body`, each with its own `Idempotency-Key` (and the admin
/// token, when there is one, so the rate limit does not apply), released
/// together once every connection is open. Every code handed out goes to `recorder` at once.
pub async fn race(
    target: &Target,
    body: &PreReserve,
    concurrency: usize,
    timeout: Duration,
    recorder: &Recorder,
    token: Option<&AdminToken>,
    regions: &[String],
) -> anyhow::Result<RaceResult> {
    if concurrency == 0 {
        bail!("--concurrency must be at least 1");
    }
    // Installs the TLS provider once, before the racers build their own clients.
    crate::http::client(timeout)?;
    let connect_started = Instant::now();
    let (ready_tx, mut ready_rx) = mpsc::unbounded_channel::<()>();
    let (release_tx, release_rx) = watch::channel::<Option<Instant>>(None);
    let tls = tls_config()?;
    let mut racers = Vec::with_capacity(concurrency);
    for request in 0..concurrency {
        let client = racer_client(timeout, &tls)?;
        let target = target.clone();
        let body = body.clone();
        let ready = ready_tx.clone();
        let mut release = release_rx.clone();
        let recorder = recorder.clone();
        let token = token.cloned();
        // Racer i enters through region i mod the regions given, so both regions race.
        let region = (!regions.is_empty()).then(|| regions[request % regions.len()].clone());
        racers.push(tokio::spawn(async move {
            // A failed warm-up is not fatal: the POST opens its own connection and its
            // outcome (likely the same transport error) is what gets judged.
            let warmup = client.get(target.endpoint(HEALTHZ_PATH)).send().await;
            if let Ok(response) = warmup {
                let _ = response.bytes().await;
            }
            let _ = ready.send(());
            drop(ready);
            let released_at = match release.wait_for(Option::is_some).await {
                Ok(instant) => instant.unwrap_or_else(Instant::now),
                Err(_) => Instant::now(),
            };
            let Some(flight) = recorder.in_flight() else {
                return RequestOutcome {
                    request,
                    latency_ms: 0.0,
                    outcome: Outcome::transport("not sent: the run was interrupted"),
                };
            };
            let outcome = api::pre_reserve(
                &client,
                &target,
                &body,
                token.as_ref().map(AdminToken::expose),
                region.as_deref(),
            )
            .await;
            if let Outcome::Created { code } = &outcome {
                recorder.record(code);
            }
            drop(flight);
            RequestOutcome {
                request,
                latency_ms: released_at.elapsed().as_secs_f64() * 1000.0,
                outcome,
            }
        }));
    }
    drop(ready_tx);
    let mut connected = 0;
    while connected < concurrency && ready_rx.recv().await.is_some() {
        connected += 1;
    }
    let connect_ms = connect_started.elapsed().as_secs_f64() * 1000.0;
    let released_at = Instant::now();
    // Receivers live inside the racers; a send error means they all ended already.
    let _ = release_tx.send(Some(released_at));
    let mut outcomes = Vec::with_capacity(concurrency);
    for (request, racer) in racers.into_iter().enumerate() {
        outcomes.push(match racer.await {
            Ok(outcome) => outcome,
            Err(error) => RequestOutcome {
                request,
                latency_ms: released_at.elapsed().as_secs_f64() * 1000.0,
                outcome: Outcome::transport(&format!("the request task failed: {error}")),
            },
        });
    }
    Ok(RaceResult {
        outcomes,
        connect_ms,
        race_ms: released_at.elapsed().as_secs_f64() * 1000.0,
    })
}

/// One racer's client: HTTP/1.1 and a single pooled connection, so the warm-up connection
/// is the one the POST reuses. The TLS config is built once and shared: reqwest's default
/// loads the system roots for every client, about 30 ms each, which at N=1000 is longer
/// than the race.
fn racer_client(timeout: Duration, tls: &rustls::ClientConfig) -> anyhow::Result<reqwest::Client> {
    reqwest::Client::builder()
        .tls_backend_preconfigured(tls.clone())
        .http1_only()
        .pool_max_idle_per_host(1)
        .pool_idle_timeout(None)
        .timeout(timeout)
        .connect_timeout(timeout.min(Duration::from_secs(10)))
        .user_agent(concat!("cabanas-xtask-overlap/", env!("CARGO_PKG_VERSION")))
        .build()
        .context("building an HTTP client for the race")
}

/// Where distributions keep the system CA bundle; `SSL_CERT_FILE` comes first.
const CA_BUNDLES: [&str; 4] = [
    "/etc/ssl/certs/ca-certificates.crt",
    "/etc/pki/tls/certs/ca-bundle.crt",
    "/etc/ssl/cert.pem",
    "/usr/local/etc/openssl/cert.pem",
];

/// A rustls config verifying servers against the system CA bundle (as reqwest's platform
/// verifier does on Linux), speaking HTTP/1.1.
fn tls_config() -> anyhow::Result<rustls::ClientConfig> {
    use rustls::pki_types::{CertificateDer, pem::PemObject};
    let mut roots = rustls::RootCertStore::empty();
    let from_env = std::env::var("SSL_CERT_FILE")
        .ok()
        .filter(|p| !p.is_empty());
    for path in from_env.iter().map(String::as_str).chain(CA_BUNDLES) {
        if let Ok(certs) = CertificateDer::pem_file_iter(path) {
            roots.add_parsable_certificates(certs.flatten());
            if !roots.is_empty() {
                break;
            }
        }
    }
    // Without roots, plain-HTTP targets still work; HTTPS ones fail per request, visibly.
    let provider = std::sync::Arc::new(rustls::crypto::ring::default_provider());
    let mut config = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .context("configuring TLS")?
        .with_root_certificates(roots)
        .with_no_client_auth();
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(config)
}

/// Makes sure this process may open a socket per racer: reads the soft limit on open files
/// and, when it is too low, raises it up to the hard limit with `prlimit` (util-linux; there
/// is no call for it in std). Returns a note when it changed something.
pub fn ensure_open_files(concurrency: usize) -> anyhow::Result<Option<String>> {
    let needed = concurrency as u64 + SPARE_FDS;
    let Some((soft, hard)) = open_files_limit() else {
        return Ok(None); // Not Linux, or no /proc: let the OS speak if it must.
    };
    if soft >= needed {
        return Ok(None);
    }
    let fix = format!("raise it (`ulimit -n {needed}`) or lower --concurrency");
    if hard < needed {
        bail!(
            "--concurrency {concurrency} needs {needed} open files but the hard limit is {hard}: {fix}"
        );
    }
    let pid = std::process::id().to_string();
    let limit = format!("--nofile={needed}:{hard}");
    let raised = xshell::Shell::new()
        .ok()
        .and_then(|sh| {
            xshell::cmd!(sh, "prlimit --pid {pid} {limit}")
                .quiet()
                .ignore_stderr()
                .run()
                .ok()
        })
        .is_some();
    match open_files_limit() {
        Some((now, _)) if raised && now >= needed => Ok(Some(format!(
            "raised the open-files limit from {soft} to {now} for {concurrency} connections"
        ))),
        _ => bail!(
            "--concurrency {concurrency} needs {needed} open files but the limit is {soft}: {fix}"
        ),
    }
}

/// The soft and hard limits on open files, from `/proc/self/limits`.
fn open_files_limit() -> Option<(u64, u64)> {
    let text = std::fs::read_to_string("/proc/self/limits").ok()?;
    parse_open_files(&text)
}

fn parse_open_files(limits: &str) -> Option<(u64, u64)> {
    let line = limits.lines().find(|l| l.starts_with("Max open files"))?;
    let mut numbers = line["Max open files".len()..].split_whitespace().map(|v| {
        if v == "unlimited" {
            Some(u64::MAX)
        } else {
            v.parse().ok()
        }
    });
    Some((numbers.next()??, numbers.next()??))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_the_open_files_line() {
        let text = "Limit                     Soft Limit           Hard Limit           Units     \n\
                    Max open files            1024                 524288               files     \n";
        assert_eq!(parse_open_files(text), Some((1024, 524288)));
        let text = "Max open files            unlimited            unlimited            files";
        assert_eq!(parse_open_files(text), Some((u64::MAX, u64::MAX)));
        assert_eq!(parse_open_files("nothing"), None);
    }
}
