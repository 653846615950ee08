//! The flags of `cargo xtask logs`, turned into [`crate::logs::Options`].

use std::time::Duration;

use super::duration::parse_duration;
use crate::logs::DEFAULT_LINES;

/// Flags of `cargo xtask logs`.
#[derive(Debug, Clone, clap::Args)]
pub struct Args {
    /// Environment from ops/deploy.toml whose Fly app's logs to print.
    #[arg(long, value_name = "NAME")]
    pub env: String,
    /// Print at most this many of the newest lines.
    #[arg(long, value_name = "N", default_value_t = DEFAULT_LINES)]
    pub lines: usize,
    /// Only lines from this long ago on, e.g. 10m or 2h.
    #[arg(long, value_name = "DURATION", value_parser = parse_duration)]
    pub since: Option<Duration>,
}

impl From<Args> for crate::logs::Options {
    fn from(args: Args) -> Self {
        Self {
            env: args.env,
            lines: args.lines,
            since: args.since,
        }
    }
}
