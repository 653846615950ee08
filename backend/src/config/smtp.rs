//! `SMTP_URL`, checked and rewritten into the URL lettre reads.
//!
//! lettre's `from_url` (https://docs.rs/lettre/latest/lettre/transport/smtp/struct.AsyncSmtpTransport.html)
//! takes `smtp://` as no TLS at all, `smtp://…?tls=required` as STARTTLS or nothing, and
//! `smtps://` as TLS from the first byte. Here a bare `smtp://` means STARTTLS, required
//! unless the host is loopback (a relay on the same machine), where it is used when offered.

use std::fmt;

use super::secret::Secret;

/// A checked `SMTP_URL`, rewritten into the URL lettre reads (see the module doc).
pub struct SmtpUrl(Secret);

impl SmtpUrl {
    /// `None` unless `url` is `smtp://…` or `smtps://…` with a host and no query.
    pub fn parse(url: &str) -> Option<Self> {
        let (scheme, rest) = url.split_once("://")?;
        if !matches!(scheme, "smtp" | "smtps") || rest.contains('?') || rest.contains('#') {
            return None;
        }
        let authority = rest.split('/').next().unwrap_or_default();
        let host_port = authority.rsplit_once('@').map_or(authority, |(_, h)| h);
        let host = if let Some(bracketed) = host_port.strip_prefix('[') {
            bracketed.split(']').next().unwrap_or_default()
        } else {
            host_port.split(':').next().unwrap_or_default()
        };
        if host.is_empty() {
            return None;
        }
        let lettre_url = match scheme {
            "smtps" => url.to_owned(),
            _ if is_loopback(host) => format!("{url}?tls=opportunistic"),
            _ => format!("{url}?tls=required"),
        };
        Some(Self(Secret::new(lettre_url)))
    }

    /// The URL as lettre's `from_url` reads it (with the password: a secret).
    pub fn lettre_url(&self) -> &Secret {
        &self.0
    }
}

impl fmt::Debug for SmtpUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("SmtpUrl(****)")
    }
}

fn is_loopback(host: &str) -> bool {
    host.eq_ignore_ascii_case("localhost")
        || host
            .parse::<std::net::IpAddr>()
            .is_ok_and(|ip| ip.is_loopback())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lettre_url(url: &str) -> Option<String> {
        SmtpUrl::parse(url).map(|u| u.0.expose().to_owned())
    }

    #[test]
    fn starttls_is_required_except_on_loopback() {
        assert_eq!(
            lettre_url("smtp://u:p@smtp.example.com:587").as_deref(),
            Some("smtp://u:p@smtp.example.com:587?tls=required")
        );
        for local in [
            "smtp://127.0.0.1:2525",
            "smtp://u:p@localhost",
            "smtp://[::1]:25",
        ] {
            assert!(
                lettre_url(local).unwrap().ends_with("?tls=opportunistic"),
                "{local}"
            );
        }
        assert_eq!(
            lettre_url("smtps://u:p@smtp.example.com").as_deref(),
            Some("smtps://u:p@smtp.example.com")
        );
        for bad in [
            "smtp://",
            "smtp://u:p@",
            "smtp://h?tls=none",
            "http://h",
            "h:25",
        ] {
            assert!(lettre_url(bad).is_none(), "{bad}");
        }
        assert_eq!(
            format!("{:?}", SmtpUrl::parse("smtp://u:secret@h").unwrap()),
            "SmtpUrl(****)"
        );
    }
}
