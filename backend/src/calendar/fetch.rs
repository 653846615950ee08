//! Fetching another channel's feed: the one place the service makes requests to a URL an
//! admin typed. The risks it exists for: a slow or endless feed (a whole-request timeout and
//! a byte cap read chunk by chunk, so a huge body is never held), and server-side request
//! forgery (an admin token, or a feed's redirect, pointing the service at its own network).
//! Unless `CALENDAR_ALLOW_PRIVATE_FEEDS` is on, only http(s) URLs whose host resolves to
//! public addresses are fetched: the check runs in the DNS resolver the client connects
//! through, so a name that resolves differently on the second lookup is checked again, and
//! on every redirect hop for IP literals.

use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;

use reqwest::StatusCode;
use reqwest::header::{ETAG, IF_MODIFIED_SINCE, IF_NONE_MATCH, LAST_MODIFIED};

use super::ics::FeedError;
use crate::config::CalendarConfig;

/// What a fetch brought.
#[derive(Debug)]
pub enum Fetched {
    /// 304: the feed has not changed since the validators were stored.
    NotModified,
    /// 200: the feed and its validators.
    Feed {
        /// The body, UTF-8 (invalid sequences replaced).
        text: String,
        /// `ETag`, to send back as `If-None-Match`.
        etag: Option<String>,
        /// `Last-Modified`, to send back as `If-Modified-Since`.
        last_modified: Option<String>,
    },
}

/// An HTTP client for feeds, with the limits of [`CalendarConfig`].
#[derive(Clone)]
pub struct FeedFetcher {
    client: reqwest::Client,
    max_bytes: usize,
    allow_private: bool,
}

impl FeedFetcher {
    /// A client honouring `config`'s timeout, size cap and private-address rule.
    pub fn new(config: &CalendarConfig) -> Self {
        // reqwest is built without a default TLS provider; the first one installed wins.
        let _ = rustls::crypto::ring::default_provider().install_default();
        let allow_private = config.allow_private_feeds;
        let redirects = reqwest::redirect::Policy::custom(move |attempt| {
            if attempt.previous().len() >= 5 {
                attempt.error("more than 5 redirects")
            } else if let Err(why) = check_url(attempt.url().as_str(), allow_private) {
                attempt.error(why)
            } else {
                attempt.follow()
            }
        });
        let mut builder = reqwest::Client::builder()
            .timeout(config.fetch_timeout)
            .connect_timeout(config.fetch_timeout.min(std::time::Duration::from_secs(10)))
            .redirect(redirects)
            .user_agent("sist-cabanas calendar sync")
            // A proxy would connect on the service's behalf, past the resolver's check.
            .no_proxy();
        if !allow_private {
            builder = builder.dns_resolver(Arc::new(PublicOnly));
        }
        Self {
            client: builder.build().unwrap_or_default(),
            max_bytes: config.max_feed_bytes,
            allow_private,
        }
    }

    /// GETs `url` with the stored validators; refuses non-2xx answers and bodies over the cap.
    pub async fn fetch(
        &self,
        url: &str,
        etag: Option<&str>,
        last_modified: Option<&str>,
    ) -> Result<Fetched, FeedError> {
        check_url(url, self.allow_private).map_err(|why| FeedError::new("refused_url", why))?;
        let mut request = self.client.get(url);
        if let Some(etag) = etag {
            request = request.header(IF_NONE_MATCH, etag);
        }
        if let Some(since) = last_modified {
            request = request.header(IF_MODIFIED_SINCE, since);
        }
        let mut response = request.send().await.map_err(|err| transport(&err))?;
        let status = response.status();
        if status == StatusCode::NOT_MODIFIED {
            return Ok(Fetched::NotModified);
        }
        if !status.is_success() {
            return Err(FeedError::new(
                "http_status",
                format!("the feed answered HTTP {status}"),
            ));
        }
        let too_big = || {
            FeedError::new(
                "too_large",
                format!(
                    "the feed is larger than {} bytes (CALENDAR_MAX_FEED_BYTES)",
                    self.max_bytes
                ),
            )
        };
        if response
            .content_length()
            .is_some_and(|len| len > self.max_bytes as u64)
        {
            return Err(too_big());
        }
        let header = |name| {
            response
                .headers()
                .get(name)
                .and_then(|v: &reqwest::header::HeaderValue| v.to_str().ok())
                .map(str::to_owned)
        };
        let (etag, last_modified) = (header(ETAG), header(LAST_MODIFIED));
        let mut body = Vec::new();
        while let Some(chunk) = response.chunk().await.map_err(|err| transport(&err))? {
            if body.len() + chunk.len() > self.max_bytes {
                return Err(too_big());
            }
            body.extend_from_slice(&chunk);
        }
        Ok(Fetched::Feed {
            text: String::from_utf8_lossy(&body).into_owned(),
            etag,
            last_modified,
        })
    }
}

/// A transport failure in words that never include the URL (it may hold a token).
fn transport(err: &reqwest::Error) -> FeedError {
    let what = if err.is_timeout() {
        "the feed did not answer within CALENDAR_FETCH_TIMEOUT_SECONDS"
    } else if err.is_redirect() {
        "the feed redirected somewhere it may not (too many hops, or a private address)"
    } else if err.is_connect() {
        "cannot connect to the feed's host (refused, unresolvable, or a private address)"
    } else {
        "the feed could not be read"
    };
    FeedError::new("unreachable", what)
}

/// Whether `url` may be fetched: http or https, a host, and (unless `allow_private`) not an
/// IP literal of a private network. Names are checked when resolved ([`PublicOnly`]).
pub fn check_url(url: &str, allow_private: bool) -> Result<(), String> {
    let parsed = reqwest::Url::parse(url.trim())
        .map_err(|_| "the feed URL is not a valid absolute URL".to_owned())?;
    if !matches!(parsed.scheme(), "http" | "https") {
        return Err("the feed URL must start with http:// or https://".to_owned());
    }
    let host = parsed
        .host_str()
        .ok_or_else(|| "the feed URL has no host".to_owned())?;
    let bare = host.trim_start_matches('[').trim_end_matches(']');
    let private_literal = match bare.parse::<IpAddr>() {
        Ok(ip) => !is_public(ip),
        Err(_) => bare.eq_ignore_ascii_case("localhost"),
    };
    if private_literal && !allow_private {
        return Err(
            "the feed URL points at a private or loopback address, which is refused \
             (set CALENDAR_ALLOW_PRIVATE_FEEDS=on only for local testing)"
                .to_owned(),
        );
    }
    Ok(())
}

/// An address on the public internet: not loopback, private, link-local, shared (CGNAT),
/// unspecified, multicast, documentation or unique-local.
pub fn is_public(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(v4) => {
            let [a, b, ..] = v4.octets();
            !(v4.is_loopback()
                || v4.is_private()
                || v4.is_link_local()
                || v4.is_unspecified()
                || v4.is_broadcast()
                || v4.is_multicast()
                || v4.is_documentation()
                || a == 0
                || (a == 100 && (64..128).contains(&b)))
        }
        IpAddr::V6(v6) => {
            if let Some(v4) = v6.to_ipv4_mapped() {
                return is_public(IpAddr::V4(v4));
            }
            let first = v6.segments()[0];
            !(v6.is_loopback()
                || v6.is_unspecified()
                || v6.is_multicast()
                || (first & 0xfe00) == 0xfc00
                || (first & 0xffc0) == 0xfe80)
        }
    }
}

/// A resolver that answers only public addresses, so no name can lead the client inside.
struct PublicOnly;

impl reqwest::dns::Resolve for PublicOnly {
    fn resolve(&self, name: reqwest::dns::Name) -> reqwest::dns::Resolving {
        let host = name.as_str().to_owned();
        Box::pin(async move {
            let addrs: Vec<SocketAddr> = tokio::net::lookup_host((host.as_str(), 0))
                .await?
                .filter(|addr| is_public(addr.ip()))
                .collect();
            if addrs.is_empty() {
                return Err("the feed's host has no public address".into());
            }
            Ok(Box::new(addrs.into_iter()) as reqwest::dns::Addrs)
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn private_and_odd_urls_are_refused_unless_allowed() {
        for url in [
            "http://127.0.0.1:8080/feed.ics",
            "http://10.1.2.3/x",
            "http://[::1]/x",
            "http://169.254.169.254/latest/meta-data",
            "http://localhost/x",
        ] {
            assert!(check_url(url, false).is_err(), "{url}");
            assert!(check_url(url, true).is_ok(), "{url}");
        }
        for url in ["file:///etc/passwd", "ftp://example.com/x", "not a url"] {
            assert!(check_url(url, true).is_err(), "{url}");
        }
        assert!(check_url("https://www.airbnb.com/calendar/ical/1.ics?s=abc", false).is_ok());
    }
}
