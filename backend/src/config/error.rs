//! The one error of reading the configuration.

/// A configuration problem, naming the variable and the rule, never the value.
#[derive(Debug, thiserror::Error)]
#[error("{var} {reason}")]
pub struct ConfigError {
    /// The environment variable at fault.
    pub var: &'static str,
    /// What is wrong with it.
    pub reason: String,
}

impl ConfigError {
    /// A problem with `var`: `reason` says the rule it broke.
    pub fn invalid(var: &'static str, reason: impl Into<String>) -> Self {
        Self {
            var,
            reason: reason.into(),
        }
    }
}
