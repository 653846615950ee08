//! The one readiness poll: `GET <base>/api/v1/readyz` until it answers 2xx, the target is
//! gone, or the time runs out. Smoke's `--wait`, the release gates after a deploy, the image
//! check and every locally started service wait through it, so they agree on the path (the
//! service contract's) and on the pacing: a back-off from 10 ms doubling to 1 s, so a service
//! that is ready in 50 ms is seen in 50 ms, and one that takes a minute is not hammered.

use std::time::{Duration, Instant};

use cabanas_contract::routes::READYZ;

/// How a poll ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Readiness {
    /// Readiness answered 2xx after `after`, on attempt number `attempts`.
    Ready { after: Duration, attempts: u32 },
    /// The target went away while polling (a process or container that exited), as said by
    /// the caller's check.
    Gone(String),
    /// `within` passed; `last` is the last answer or error.
    TimedOut { last: String, attempts: u32 },
}

/// The readiness URL of a service at `base_url`.
pub fn url(base_url: &str) -> String {
    format!("{}{READYZ}", base_url.trim_end_matches('/'))
}

/// Polls [`url`]`(base_url)` for at most `within`. After each attempt that was not ready,
/// `between(last)` runs: it may report progress, and returns `Some(why)` when the target is
/// gone (the poll then ends at once).
pub async fn poll(
    client: &reqwest::Client,
    base_url: &str,
    within: Duration,
    mut between: impl FnMut(&str) -> Option<String>,
) -> Readiness {
    let url = url(base_url);
    let started = Instant::now();
    let deadline = started + within;
    let mut pause = Duration::from_millis(10);
    let mut attempts = 0u32;
    loop {
        attempts += 1;
        let last = match client.get(&url).send().await {
            Ok(response) if response.status().is_success() => {
                return Readiness::Ready {
                    after: started.elapsed(),
                    attempts,
                };
            }
            Ok(response) => answer(response).await,
            Err(error) => error.without_url().to_string(),
        };
        if let Some(why) = between(&last) {
            return Readiness::Gone(why);
        }
        let now = Instant::now();
        if now >= deadline {
            return Readiness::TimedOut { last, attempts };
        }
        tokio::time::sleep(pause.min(deadline - now)).await;
        pause = (pause * 2).min(Duration::from_secs(1));
    }
}

/// A not-ready answer as `503: <the first line of its body>`, reading at most 512 bytes of
/// it: the body usually says why (`migrations pending`).
async fn answer(mut response: reqwest::Response) -> String {
    let status = response.status().as_u16();
    let mut body = Vec::new();
    while body.len() < 512 {
        match response.chunk().await {
            Ok(Some(chunk)) => body.extend_from_slice(&chunk),
            _ => break,
        }
    }
    let text = String::from_utf8_lossy(&body[..body.len().min(512)]).into_owned();
    let first = text.lines().next().unwrap_or("").trim();
    if first.is_empty() {
        status.to_string()
    } else {
        format!("{status}: {}", first.chars().take(200).collect::<String>())
    }
}

/// [`poll`] from synchronous code, with its own client (a 2 s timeout per attempt, shorter
/// when `within` is).
pub fn poll_blocking(
    base_url: &str,
    within: Duration,
    between: impl FnMut(&str) -> Option<String>,
) -> anyhow::Result<Readiness> {
    let client =
        crate::http::client(Duration::from_secs(2).min(within.max(Duration::from_millis(100))))?;
    let runtime = crate::http::runtime()?;
    Ok(runtime.block_on(poll(&client, base_url, within, between)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_unreachable_service_times_out_with_the_last_error() {
        let outcome =
            poll_blocking("http://127.0.0.1:9", Duration::from_millis(300), |_| None).unwrap();
        let Readiness::TimedOut { last, attempts } = outcome else {
            panic!("{outcome:?}");
        };
        assert!(attempts > 1, "it retried: {attempts}");
        assert!(!last.is_empty());
    }

    #[test]
    fn a_gone_target_ends_the_poll_at_once() {
        let mut calls = 0;
        let outcome = poll_blocking("http://127.0.0.1:9", Duration::from_secs(60), |_| {
            calls += 1;
            Some("exited with 1".to_string())
        })
        .unwrap();
        assert_eq!(outcome, Readiness::Gone("exited with 1".into()));
        assert_eq!(calls, 1);
    }

    #[test]
    fn urls_join_without_a_double_slash() {
        assert_eq!(url("http://h:1/"), "http://h:1/api/v1/readyz");
    }
}
