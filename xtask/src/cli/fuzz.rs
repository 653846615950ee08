//! The flags of `cargo xtask fuzz`, turned into [`crate::fuzz::Options`].

use std::path::PathBuf;

/// Flags of `cargo xtask fuzz`.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// Fuzz the service at this base URL instead of starting a local one.
    #[arg(long, value_name = "URL")]
    pub url: Option<String>,
    /// Generated requests per operation and phase.
    #[arg(long, default_value_t = crate::fuzz::DEFAULT_MAX_EXAMPLES, value_name = "N")]
    pub max_examples: u32,
    /// Seed for the generated data, to reproduce a run.
    #[arg(long, default_value_t = crate::fuzz::DEFAULT_SEED, value_name = "SEED")]
    pub seed: u64,
    /// Use a `cabanas` binary already built instead of building it (local service only).
    #[arg(long, value_name = "PATH")]
    pub service_bin: Option<PathBuf>,
    /// Print the result record as JSON on stdout (human text goes to stderr).
    #[arg(long)]
    pub json: bool,
}

impl From<Args> for crate::fuzz::Options {
    fn from(args: Args) -> Self {
        Self {
            url: args.url,
            max_examples: args.max_examples,
            seed: args.seed,
            service_bin: args.service_bin,
        }
    }
}
