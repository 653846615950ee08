//! The flags of `cargo xtask scale`, turned into [`crate::scale::Options`].

/// Options of `cargo xtask scale`.
#[derive(Debug, Clone, clap::Args)]
pub struct Args {
    /// The environment from ops/deploy.toml whose declared machines to create (e.g.
    /// production).
    #[arg(long = "env", value_name = "NAME")]
    pub env: String,
    /// Read the machines and print the flyctl calls it would make; change nothing.
    #[arg(long)]
    pub dry_run: bool,
}

impl From<Args> for crate::scale::Options {
    fn from(args: Args) -> Self {
        Self {
            env: args.env,
            dry_run: args.dry_run,
        }
    }
}
