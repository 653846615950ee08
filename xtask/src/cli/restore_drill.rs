//! The flags of `cargo xtask restore-drill`, turned into [`crate::restore_drill::Options`].

use std::path::PathBuf;

/// Flags of `cargo xtask restore-drill`.
#[derive(Debug, Clone, clap::Args)]
pub struct Args {
    /// The backup: its `.manifest.json`, or the `.dump` beside it.
    #[arg(long, value_name = "BACKUP")]
    pub from: PathBuf,
}

impl From<Args> for crate::restore_drill::Options {
    fn from(args: Args) -> Self {
        Self { from: args.from }
    }
}
