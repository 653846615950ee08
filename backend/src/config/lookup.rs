//! Reading one variable: every section of the configuration parses numbers the same way.

use std::time::Duration;

use super::error::ConfigError;

/// `var` parsed as a `T`, or `default` when unset; `rule` says what was expected.
pub fn parse_number<T: std::str::FromStr>(
    get: &impl Fn(&str) -> Option<String>,
    var: &'static str,
    default: T,
    rule: &str,
) -> Result<T, ConfigError> {
    match get(var) {
        Some(v) => v
            .trim()
            .parse()
            .map_err(|_| ConfigError::invalid(var, rule)),
        None => Ok(default),
    }
}

/// `var` as a whole number of seconds from 1 to a day (86 400), or `default` seconds when
/// unset: the range every timeout and interval of the service accepts.
pub fn parse_seconds(
    get: &impl Fn(&str) -> Option<String>,
    var: &'static str,
    default: u64,
) -> Result<Duration, ConfigError> {
    match parse_number::<u64>(get, var, default, "must be a whole number of seconds")? {
        secs @ 1..=86_400 => Ok(Duration::from_secs(secs)),
        _ => Err(ConfigError::invalid(var, "must be 1 to 86400 seconds")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lookup(value: Option<&'static str>) -> impl Fn(&str) -> Option<String> {
        move |_| value.map(str::to_owned)
    }

    #[test]
    fn seconds_are_one_to_a_day_with_a_default_when_unset() {
        let read = |value| parse_seconds(&lookup(value), "SOME_TIMEOUT_SECONDS", 15);
        assert_eq!(read(None).unwrap(), Duration::from_secs(15));
        assert_eq!(read(Some(" 1 ")).unwrap(), Duration::from_secs(1));
        assert_eq!(read(Some("86400")).unwrap(), Duration::from_secs(86_400));
        for bad in ["0", "86401", "-3", "1.5", "ten"] {
            let error = read(Some(bad)).unwrap_err();
            assert_eq!(error.var, "SOME_TIMEOUT_SECONDS", "{bad}");
        }
        assert_eq!(
            read(Some("0")).unwrap_err().reason,
            "must be 1 to 86400 seconds"
        );
        assert_eq!(
            read(Some("ten")).unwrap_err().reason,
            "must be a whole number of seconds"
        );
    }
}
