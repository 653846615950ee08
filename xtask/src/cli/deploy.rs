//! The flags of `cargo xtask deploy`, turned into [`crate::deploy::Options`].

use std::time::Duration;

use super::duration::{parse_duration, parse_wait};

/// Options of `cargo xtask deploy`.
#[derive(Debug, Clone, clap::Args)]
pub struct Args {
    /// The environment from ops/deploy.toml to deploy (e.g. staging).
    #[arg(long = "env", value_name = "NAME")]
    pub env: String,
    /// Print the flyctl commands without running any, and save no record (predeploy still
    /// checks, unrecorded).
    #[arg(long)]
    pub dry_run: bool,
    /// Fly's deploy strategy.
    #[arg(long, value_name = "S", default_value = crate::deploy::DEFAULT_STRATEGY,
          value_parser = ["rolling", "immediate", "canary", "bluegreen"])]
    pub strategy: String,
    /// On any failure once flyctl has started (flyctl fails or times out, the new build is not
    /// proven to serve, readiness or smoke fails or cannot run), deploy the image that served
    /// before again and prove it serves.
    #[arg(long)]
    pub rollback_on_failure: bool,
    /// How long flyctl, the proof that the build serves and the readiness poll may each wait
    /// (e.g. 300, 90s, 5m).
    #[arg(long, value_name = "DURATION", default_value = "5m", value_parser = parse_wait)]
    pub wait_timeout: u64,
    /// How long one `flyctl deploy` may run in all (build and rollout) before it is stopped
    /// and counted as a failure (e.g. 30m).
    #[arg(long, value_name = "DURATION", default_value = "30m", value_parser = parse_wait)]
    pub deploy_timeout: u64,
    /// Also prove machines Fly stopped for idleness: ask each for its version, which starts it
    /// (without it a stopped machine counts as updated when its config names the new image).
    #[arg(long)]
    pub wake: bool,
    /// Print the result record as JSON on stdout (human text goes to stderr).
    #[arg(long)]
    pub json: bool,
    /// Production only: deploy an app that has no machine yet without staging's evidence
    /// (once, so that `promote` has machines to replace).
    #[arg(long)]
    pub first_deploy: bool,
    /// Once the deploy is proven, read the app's logs this long (`flyctl logs --no-tail`):
    /// error lines make the deploy WARN, a panic FAIL; 0s skips it.
    #[arg(long, value_name = "DURATION", default_value = "30s", value_parser = parse_duration)]
    pub logs: Duration,
    /// Prove the release at this base URL instead of the environment's, e.g. the local Fly's
    /// http://127.0.0.1:PORT (the app, env file and fly.toml stay the environment's).
    #[arg(long, value_name = "URL")]
    pub url: Option<String>,
}

impl From<Args> for crate::deploy::Options {
    fn from(args: Args) -> Self {
        Self {
            env: args.env,
            dry_run: args.dry_run,
            strategy: args.strategy,
            rollback_on_failure: args.rollback_on_failure,
            wait_timeout: Duration::from_secs(args.wait_timeout),
            deploy_timeout: Duration::from_secs(args.deploy_timeout),
            wake: args.wake,
            first_deploy: args.first_deploy,
            logs: args.logs,
            url: args.url,
        }
    }
}
