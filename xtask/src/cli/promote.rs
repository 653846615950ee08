//! The flags of `cargo xtask promote`, turned into [`crate::promote::Options`].

use std::time::Duration;

use super::duration::parse_wait;

/// Options of `cargo xtask promote`.
#[derive(Debug, Clone, clap::Args)]
pub struct Args {
    /// Check every precondition and print the flyctl command without running it.
    #[arg(long)]
    pub dry_run: bool,
    /// Fly's deploy strategy for production (blue-green: the new machines serve only once
    /// all pass their checks).
    #[arg(long, value_name = "S", default_value = crate::promote::DEFAULT_STRATEGY,
          value_parser = ["bluegreen", "rolling", "canary"])]
    pub strategy: String,
    /// How long flyctl, the proof that the image serves and the readiness poll may each wait.
    #[arg(long, value_name = "DURATION", default_value = "5m", value_parser = parse_wait)]
    pub wait_timeout: u64,
    /// How long one `flyctl deploy` may run in all before it is stopped and counted a failure.
    #[arg(long, value_name = "DURATION", default_value = "30m", value_parser = parse_wait)]
    pub deploy_timeout: u64,
    /// Promote even when the image was first released before the one production runs (a
    /// deliberate step back; `cargo xtask rollback` is the usual way back).
    #[arg(long)]
    pub allow_older: bool,
    /// Print the result record as JSON on stdout (human text goes to stderr).
    #[arg(long)]
    pub json: bool,
}

impl From<Args> for crate::promote::Options {
    fn from(args: Args) -> Self {
        Self {
            dry_run: args.dry_run,
            strategy: args.strategy,
            wait_timeout: Duration::from_secs(args.wait_timeout),
            deploy_timeout: Duration::from_secs(args.deploy_timeout),
            allow_older: args.allow_older,
        }
    }
}
