//! The flags of `cargo xtask staging`, turned into [`crate::staging::Options`].

/// Options of `cargo xtask staging`.
#[derive(Debug, Clone, Default, clap::Args)]
#[command(
    after_help = "Steps: predeploy, fly_login, secrets_loaded, deploy, health, \
    smoke_thresholds, overlap (the decision map's ids). Exit codes: 0 every step passed or was \
    fresh; 1 a step failed (run again to resume there); 2 could not run, or a mutating step \
    needed an answer: without a terminal pass --yes."
)]
pub struct Args {
    /// Answer yes before each mutating step (secrets, deploy, overlap), e.g. in CI.
    #[arg(long)]
    pub yes: bool,
    /// Start at this step of the map (e.g. `deploy`), running it even when it is fresh.
    #[arg(long, value_name = "STEP")]
    pub from: Option<String>,
    /// Print which steps would run and which are skipped (and why), calling nothing.
    #[arg(long)]
    pub dry_run: bool,
    /// Walk staging at this base URL instead of ops/deploy.toml's, e.g. the local Fly's
    /// http://127.0.0.1:PORT: deploy proves the release there, smoke and overlap measure it
    /// (recorded as staging; the app, env file and fly.toml stay staging's).
    #[arg(long, value_name = "URL")]
    pub url: Option<String>,
}

impl From<Args> for crate::staging::Options {
    fn from(args: Args) -> Self {
        Self {
            yes: args.yes,
            from: args.from,
            dry_run: args.dry_run,
            url: args.url,
            command_line: Some(super::documented_command),
        }
    }
}
