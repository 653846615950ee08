//! The flags of `cargo xtask watch`, turned into [`crate::watch::Options`].

use std::time::Duration;

use super::duration::parse_duration;

/// Options of `cargo xtask watch`.
#[derive(Debug, Clone, clap::Args)]
pub struct Args {
    /// Environment from ops/deploy.toml to watch (its URL, thresholds, Fly app for logs).
    #[arg(long, value_name = "NAME", required_unless_present = "url")]
    pub env: Option<String>,
    /// Base URL to watch instead, e.g. http://127.0.0.1:8080 (recorded as `adhoc`; no logs).
    #[arg(long, value_name = "URL")]
    pub url: Option<String>,
    /// How long to watch, e.g. 10m; the run stops by itself then.
    #[arg(long = "for", value_name = "DURATION", value_parser = parse_duration)]
    pub duration: Duration,
    /// Time between samples, e.g. 30s (default: [watch] every_secs in ops/deploy.toml, 30s).
    #[arg(long, value_name = "INTERVAL", value_parser = parse_duration)]
    pub every: Option<Duration>,
    /// Print the result record as JSON on stdout (human text goes to stderr).
    #[arg(long)]
    pub json: bool,
}

impl From<Args> for crate::watch::Options {
    fn from(args: Args) -> Self {
        Self {
            env: args.env,
            url: args.url,
            duration: args.duration,
            every: args.every,
        }
    }
}
