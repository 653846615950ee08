//! The rules a filled env file's values obey, as the templates name them
//! (`[required, RULE]`), and the typo suggestion for unknown keys. Errors describe what is
//! wrong without repeating the value.

/// What a value must look like.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Rule {
    /// `postgres://` or `postgresql://` with a host and a database.
    PostgresUrl,
    /// `redis://` or `rediss://` with a host.
    RedisUrl,
    /// `https://` with a host.
    HttpsUrl,
    /// `smtp://` or `smtps://` with a host; a secret (it carries the password).
    SmtpUrl,
    /// At least 32 characters, not a repeated pattern.
    Secret32,
    /// Comma-separated email addresses.
    Emails,
    /// A whole number.
    Integer,
    /// Comma-separated browser origins, `https://host[:port]` without a path.
    Origins,
    /// Any text.
    Text,
}

impl Rule {
    pub(crate) fn parse(name: &str) -> Option<Rule> {
        Some(match name {
            "postgres-url" => Rule::PostgresUrl,
            "redis-url" => Rule::RedisUrl,
            "https-url" => Rule::HttpsUrl,
            "smtp-url" => Rule::SmtpUrl,
            "secret-32" => Rule::Secret32,
            "emails" => Rule::Emails,
            "integer" => Rule::Integer,
            "origins" => Rule::Origins,
            "text" => Rule::Text,
            _ => return None,
        })
    }

    /// Whether values under this rule are secrets (scanned for in tracked files).
    pub(crate) fn is_secret(self) -> bool {
        matches!(
            self,
            Rule::PostgresUrl | Rule::RedisUrl | Rule::SmtpUrl | Rule::Secret32
        )
    }
}

/// Placeholders left from a template: `<...>`, `changeme`, `your_...`.
pub(crate) fn is_placeholder(value: &str) -> bool {
    let lower = value.trim().to_ascii_lowercase();
    (lower.starts_with('<') && lower.ends_with('>'))
        || lower.contains("changeme")
        || lower.contains("change_me")
        || lower.starts_with("your_")
        || lower.starts_with("your-")
}

/// Checks a value against its rule; the error says what is wrong without the value.
pub(crate) fn validate(rule: Rule, value: &str) -> Result<(), String> {
    match rule {
        Rule::PostgresUrl => check_url(value, &["postgres", "postgresql"], true),
        Rule::RedisUrl => check_url(value, &["redis", "rediss"], false),
        Rule::HttpsUrl => check_url(value, &["https"], false),
        Rule::SmtpUrl => check_url(value, &["smtp", "smtps"], false),
        Rule::Secret32 => {
            if value.chars().count() < 32 {
                Err("is shorter than 32 characters: use e.g. `openssl rand -base64 48`".into())
            } else if is_repeated(value) {
                Err("is a repeated pattern or has too few distinct characters: use random characters".into())
            } else {
                Ok(())
            }
        }
        Rule::Emails => {
            let bad: Vec<usize> = value
                .split(',')
                .enumerate()
                .filter(|(_, e)| !is_email(e.trim()))
                .map(|(i, _)| i + 1)
                .collect();
            if bad.is_empty() {
                Ok(())
            } else {
                Err(format!(
                    "entry {} is not an email address",
                    bad.iter()
                        .map(usize::to_string)
                        .collect::<Vec<_>>()
                        .join(", ")
                ))
            }
        }
        Rule::Integer => value
            .trim()
            .parse::<u64>()
            .map(drop)
            .map_err(|_| "is not a whole number".into()),
        Rule::Text => Ok(()),
        Rule::Origins => {
            let bad: Vec<String> = value
                .split(',')
                .map(str::trim)
                .enumerate()
                .filter(|(_, origin)| !is_origin(origin))
                .map(|(i, _)| (i + 1).to_string())
                .collect();
            if bad.is_empty() {
                Ok(())
            } else {
                Err(format!(
                    "entry {} is not an origin like https://book.example.com (no path)",
                    bad.join(", ")
                ))
            }
        }
    }
}

/// `https://host[:port]`, optionally with a trailing `/`, and nothing after the host.
fn is_origin(text: &str) -> bool {
    reqwest::Url::parse(text).is_ok_and(|url| {
        url.scheme() == "https"
            && url.host_str().is_some_and(|h| !h.is_empty())
            && url.path() == "/"
            && url.query().is_none()
            && url.username().is_empty()
            && !text.trim_end_matches('/').ends_with(':')
            && text.matches('/').count() <= 3
    })
}

fn check_url(value: &str, schemes: &[&str], needs_database: bool) -> Result<(), String> {
    let expected = schemes
        .iter()
        .map(|s| format!("{s}://"))
        .collect::<Vec<_>>()
        .join(" or ");
    let url =
        reqwest::Url::parse(value).map_err(|_| format!("is not a URL: expected {expected}"))?;
    if !schemes.contains(&url.scheme()) {
        return Err(format!("must start with {expected}"));
    }
    if url.host_str().is_none_or(str::is_empty) {
        return Err("has no host".into());
    }
    if needs_database && url.path().trim_matches('/').is_empty() {
        return Err("names no database (…/DATABASE)".into());
    }
    Ok(())
}

fn is_repeated(value: &str) -> bool {
    let chars: Vec<char> = value.chars().collect();
    let distinct: std::collections::BTreeSet<&char> = chars.iter().collect();
    if distinct.len() < 8 {
        return true;
    }
    (1..=chars.len() / 2)
        .any(|n| chars.len().is_multiple_of(n) && chars.chunks(n).all(|c| c == &chars[..n]))
}

fn is_email(text: &str) -> bool {
    let Some((local, domain)) = text.split_once('@') else {
        return false;
    };
    !local.is_empty()
        && !domain.contains('@')
        && domain.contains('.')
        && !domain.starts_with('.')
        && !domain.ends_with('.')
        && !text
            .chars()
            .any(|c| c.is_whitespace() || c == '<' || c == '>')
}

/// The template key closest to `key`, when one is close enough to be a likely typo.
pub(crate) fn nearest<'a>(key: &str, candidates: impl Iterator<Item = &'a str>) -> Option<&'a str> {
    candidates
        .map(|c| (distance(key, c), c))
        .filter(|(d, c)| {
            *d <= (key.len().max(c.len()) / 3).max(2) || key.starts_with(c) || c.starts_with(key)
        })
        .min()
        .map(|(_, c)| c)
}

fn distance(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut row: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut previous = row[0];
        row[0] = i + 1;
        for (j, cb) in b.iter().enumerate() {
            let old = row[j + 1];
            row[j + 1] = (row[j + 1] + 1)
                .min(row[j] + 1)
                .min(previous + usize::from(ca != *cb));
            previous = old;
        }
    }
    row[b.len()]
}

#[cfg(test)]
mod tests {
    #[test]
    fn origins_are_https_hosts_without_paths() {
        use super::{Rule, validate};
        assert!(validate(Rule::Origins, "https://book.example.com").is_ok());
        assert!(validate(Rule::Origins, "https://a.example, https://b.example:8443/").is_ok());
        let error = validate(Rule::Origins, "https://a.example,http://b.example").unwrap_err();
        assert!(error.contains("entry 2"), "{error}");
        assert!(validate(Rule::Origins, "https://a.example/app").is_err());
        assert!(validate(Rule::Origins, "a.example").is_err());
    }

    use super::*;

    #[test]
    fn rules() {
        assert!(validate(Rule::PostgresUrl, "postgres://u:p@db.internal:5432/cabanas").is_ok());
        assert!(validate(Rule::PostgresUrl, "postgresql://u@h/d").is_ok());
        assert!(validate(Rule::PostgresUrl, "postgres://u:p@h").is_err());
        assert!(validate(Rule::PostgresUrl, "mysql://u:p@h/d").is_err());
        assert!(validate(Rule::RedisUrl, "rediss://default:x@fly-x.upstash.io:6379").is_ok());
        assert!(validate(Rule::RedisUrl, "http://h").is_err());
        assert!(validate(Rule::HttpsUrl, "https://api.mercadopago.com").is_ok());
        assert!(validate(Rule::HttpsUrl, "http://api.mercadopago.com").is_err());
        assert!(validate(Rule::SmtpUrl, "smtp://u:p@smtp.example.com:587").is_ok());
        assert!(validate(Rule::SmtpUrl, "smtps://u:p@smtp.example.com").is_ok());
        let err = validate(Rule::SmtpUrl, "https://u:hunter2@smtp.example.com").unwrap_err();
        assert!(!err.contains("hunter2"), "{err}");
        assert!(validate(Rule::Secret32, "k3J9xQ2mP8vL4nR7tY1wE6uI0oA5sD2f").is_ok());
        assert!(validate(Rule::Secret32, &"ab".repeat(20)).is_err());
        assert!(validate(Rule::Secret32, "short").is_err());
        assert!(validate(Rule::Emails, "ana@example.org, bo@x.cl").is_ok());
        assert!(
            validate(Rule::Emails, "ana@example.org, bo")
                .unwrap_err()
                .contains("entry 2")
        );
        assert!(validate(Rule::Integer, "30").is_ok());
        assert!(validate(Rule::Integer, "thirty").is_err());
    }

    #[test]
    fn typos_get_a_suggestion() {
        let keys = ["JWT_SECRET", "DATABASE_URL", "REDIS_URL"];
        assert_eq!(
            nearest("JWT_SECRET_KEY", keys.into_iter()),
            Some("JWT_SECRET")
        );
        assert_eq!(
            nearest("DATABSE_URL", keys.into_iter()),
            Some("DATABASE_URL")
        );
        assert_eq!(nearest("SENTRY_DSN", keys.into_iter()), None);
    }
}
