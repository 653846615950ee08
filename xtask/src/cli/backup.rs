//! The flags of `cargo xtask backup`, turned into [`crate::backup::Options`].

use std::path::PathBuf;

/// Flags of `cargo xtask backup`.
#[derive(Debug, Clone, clap::Args)]
pub struct Args {
    /// Environment from ops/deploy.toml whose database (DATABASE_URL in its env file) to dump.
    #[arg(long, value_name = "NAME")]
    pub env: String,
    /// Directory to write the dump and its manifest into (created when missing).
    #[arg(long, value_name = "DIR")]
    pub to: PathBuf,
}

impl From<Args> for crate::backup::Options {
    fn from(args: Args) -> Self {
        Self {
            env: args.env,
            to: args.to,
        }
    }
}
