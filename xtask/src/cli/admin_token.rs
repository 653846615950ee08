//! The flags of `cargo xtask admin-token`, turned into [`crate::admin_token::Options`].

use std::time::Duration;

use super::duration::parse_duration;

/// Flags of `cargo xtask admin-token`.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// Environment from ops/deploy.toml whose env file holds JWT_SECRET and
    /// ADMIN_ALLOWED_EMAILS.
    #[arg(long, value_name = "NAME")]
    pub env: String,
    /// Admin email to sign for; must be in ADMIN_ALLOWED_EMAILS. Default: the first listed.
    #[arg(long, value_name = "EMAIL")]
    pub email: Option<String>,
    /// How long the token stays valid, e.g. 15m or 1h; at most 24h.
    #[arg(long, default_value = "15m", value_parser = parse_duration)]
    pub ttl: Duration,
}

impl From<Args> for crate::admin_token::Options {
    fn from(args: Args) -> Self {
        Self {
            env: args.env,
            email: args.email,
            ttl: args.ttl,
        }
    }
}
