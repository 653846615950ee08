//! The HTTP plumbing under smoke's checks: one GET or unsigned POST, its answer read whole or
//! its failure classified (timeout, refused connection), and the short excerpts evidence
//! quotes. The checks themselves, and what they conclude, are in `checks.rs`.

use reqwest::Client;

/// What one GET returned, or why it did not.
#[derive(Clone)]
pub(super) enum Fetched {
    Answer {
        status: u16,
        content_type: String,
        body: String,
    },
    Failed {
        reason: String,
        connect: bool,
    },
}

impl Fetched {
    /// No answer at all: the request timed out.
    pub(super) fn timed_out(&self) -> bool {
        matches!(self, Fetched::Failed { reason, .. } if reason.starts_with("timed out"))
    }
}

pub(super) async fn fetch(client: &Client, url: &str) -> Fetched {
    read_answer(client.get(url).send().await).await
}

/// POSTs a notification-shaped JSON body with no signature header.
pub(super) async fn post_unsigned(client: &Client, url: &str) -> Fetched {
    let request = client
        .post(format!("{url}?data.id=smoke-check&type=payment"))
        .header(reqwest::header::CONTENT_TYPE, "application/json")
        .body(r#"{"type":"payment","data":{"id":"smoke-check"},"entry":[]}"#);
    read_answer(request.send().await).await
}

pub(super) async fn read_answer(sent: Result<reqwest::Response, reqwest::Error>) -> Fetched {
    let response = match sent {
        Ok(response) => response,
        Err(error) => return failed(&error),
    };
    let status = response.status().as_u16();
    let content_type = response
        .headers()
        .get(reqwest::header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .to_string();
    match response.text().await {
        Ok(body) => Fetched::Answer {
            status,
            content_type,
            body,
        },
        Err(error) => failed(&error),
    }
}

pub(super) fn failed(error: &reqwest::Error) -> Fetched {
    let kind = if error.is_timeout() {
        "timed out"
    } else if error.is_connect() {
        "could not connect"
    } else {
        "connection failed"
    };
    Fetched::Failed {
        reason: format!("{kind}: {}", error_chain(error)),
        connect: error.is_connect() && !error.is_timeout(),
    }
}

/// The error with its sources (`connection refused` lives several levels down).
pub(super) fn error_chain(error: &dyn std::error::Error) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        let cause_text = cause.to_string();
        if !text.contains(&cause_text) {
            text.push_str(": ");
            text.push_str(&cause_text);
        }
        source = cause.source();
    }
    text
}

pub(super) fn excerpt(body: &str) -> String {
    let flat: String = body.split_whitespace().collect::<Vec<_>>().join(" ");
    match flat.char_indices().nth(120) {
        Some((cut, _)) => format!("{}...", &flat[..cut]),
        None => flat,
    }
}
