//! The flags of `cargo xtask secrets`, turned into [`crate::secrets::Options`].

/// Options of `cargo xtask secrets`.
#[derive(Debug, Clone, clap::Args)]
pub struct Args {
    /// The environment from ops/deploy.toml whose env file is sent (e.g. staging).
    #[arg(long = "env", value_name = "NAME")]
    pub env: String,
    /// Print the flyctl commands (secrets as names only) without running any.
    #[arg(long)]
    pub dry_run: bool,
    /// Print the result record as JSON on stdout (human text goes to stderr).
    #[arg(long)]
    pub json: bool,
}

impl From<Args> for crate::secrets::Options {
    fn from(args: Args) -> Self {
        Self {
            env: args.env,
            dry_run: args.dry_run,
        }
    }
}
