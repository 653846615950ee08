//! The flags of `cargo xtask rollback`, turned into [`crate::rollback::Options`].

use std::time::Duration;

use super::duration::parse_wait;

/// Options of `cargo xtask rollback`.
#[derive(Debug, Clone, clap::Args)]
pub struct Args {
    /// The environment from ops/deploy.toml to roll back (e.g. staging).
    #[arg(long = "env", value_name = "NAME")]
    pub env: String,
    /// Deploy this image instead of the last good release's (as `flyctl releases --image` shows it).
    #[arg(long = "to", value_name = "IMAGE_REF", conflicts_with = "to_version")]
    pub to: Option<String>,
    /// Deploy the image of this release number instead of the last good release's.
    #[arg(long = "to-version", value_name = "N")]
    pub to_version: Option<u64>,
    /// Make only the read-only calls (releases, machines, the version endpoint) and print the
    /// image and commit it would deploy; deploy nothing.
    #[arg(long)]
    pub dry_run: bool,
    /// How long flyctl, the proof that the image serves and the readiness poll may each wait
    /// (e.g. 300, 90s, 5m).
    #[arg(long, value_name = "DURATION", default_value = "5m", value_parser = parse_wait)]
    pub wait_timeout: u64,
    /// How long one `flyctl deploy` may run in all (build and rollout) before it is stopped
    /// and counted as a failure (e.g. 30m).
    #[arg(long, value_name = "DURATION", default_value = "30m", value_parser = parse_wait)]
    pub deploy_timeout: u64,
    /// Print the result record as JSON on stdout (human text goes to stderr).
    #[arg(long)]
    pub json: bool,
}

impl From<Args> for crate::rollback::Options {
    fn from(args: Args) -> Self {
        Self {
            env: args.env,
            to: args.to,
            to_version: args.to_version,
            dry_run: args.dry_run,
            wait_timeout: Duration::from_secs(args.wait_timeout),
            deploy_timeout: Duration::from_secs(args.deploy_timeout),
        }
    }
}
