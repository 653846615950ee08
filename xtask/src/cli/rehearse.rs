//! The flags of `cargo xtask rehearse`, turned into [`crate::rehearse::Options`].

use std::path::PathBuf;

/// Options of `cargo xtask rehearse`.
///
/// Exit code: the report's verdict: 0 for GO, 1 for NO-GO or INCOMPLETE, 2 when the pipeline
/// could not run (the service did not build or start).
#[derive(Debug, clap::Args)]
pub struct Args {
    /// Run the service on a throwaway PostgreSQL cluster instead of embedded SQLite.
    #[arg(long)]
    pub postgres: bool,
    /// Leave the service running after the report, until Ctrl-C.
    #[arg(long)]
    pub keep_running: bool,
    /// Concurrent bookings per overlap round.
    #[arg(long, default_value_t = crate::rehearse::DEFAULT_OVERLAP_CONCURRENCY, value_name = "N")]
    pub overlap_concurrency: usize,
    /// Overlap rounds, each on fresh dates.
    #[arg(long, default_value_t = crate::rehearse::DEFAULT_OVERLAP_ROUNDS, value_name = "K")]
    pub overlap_rounds: u32,
    /// Use this `cabanas` binary instead of building one.
    #[arg(long, value_name = "PATH")]
    pub service_bin: Option<PathBuf>,
    /// Use this `localfly` binary (the local Fly) instead of building one.
    #[arg(long, value_name = "PATH")]
    pub localfly_bin: Option<PathBuf>,
    /// Skip the Fly half (secrets, deploy, smoke, overlap and a rollback drill against the
    /// local Fly on 2 machines).
    #[arg(long)]
    pub no_fly: bool,
    /// Run the local Fly's machines and release command as podman containers of this image
    /// (default: sist-cabanas:local, what `cargo xtask image` builds) instead of as processes.
    #[arg(long, value_name = "TAG", num_args = 0..=1,
          default_missing_value = crate::image::DEFAULT_TAG, conflicts_with = "no_fly")]
    pub image: Option<String>,
}

impl From<Args> for crate::rehearse::Options {
    fn from(args: Args) -> Self {
        Self {
            postgres: args.postgres,
            keep_running: args.keep_running,
            overlap_concurrency: args.overlap_concurrency,
            overlap_rounds: args.overlap_rounds,
            service_bin: args.service_bin,
            localfly_bin: args.localfly_bin,
            no_fly: args.no_fly,
            image: args.image,
            command_line: Some(super::documented_command),
        }
    }
}
