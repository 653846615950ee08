//! The flags of `cargo xtask restore`, turned into [`crate::restore::Options`].

use std::path::PathBuf;

/// Flags of `cargo xtask restore`.
#[derive(Debug, Clone, clap::Args)]
pub struct Args {
    /// Environment from ops/deploy.toml whose database (DATABASE_URL in its env file) to replace.
    #[arg(long, value_name = "NAME")]
    pub env: String,
    /// The backup: its `.manifest.json`, or the `.dump` beside it.
    #[arg(long, value_name = "BACKUP")]
    pub from: PathBuf,
    /// Confirm that the database's current content is replaced (it is backed up first).
    #[arg(long)]
    pub yes: bool,
    /// Directory for the backup of what the restore replaces.
    #[arg(long, value_name = "DIR", default_value = crate::restore::DEFAULT_KEEP_DIR)]
    pub keep: PathBuf,
    /// Print the result record as JSON on stdout (human text goes to stderr).
    #[arg(long)]
    pub json: bool,
}

impl From<Args> for crate::restore::Options {
    fn from(args: Args) -> Self {
        Self {
            env: args.env,
            from: args.from,
            yes: args.yes,
            keep: args.keep,
        }
    }
}
