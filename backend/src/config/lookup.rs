//! Reading one variable: every section of the configuration parses numbers the same way.

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
