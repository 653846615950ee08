//! The flags of `cargo xtask image`, turned into [`crate::image::Options`].

use std::time::Duration;

use super::duration::parse_duration;
use crate::image::EngineKind;

/// Flags of `cargo xtask image`.
#[derive(Debug, Clone, clap::Args)]
pub struct Args {
    /// Container engine; default: podman, else docker (the first on PATH that runs).
    #[arg(long, value_enum)]
    pub engine: Option<EngineKind>,
    /// Tag of the built image.
    #[arg(long, value_name = "TAG", default_value = crate::image::DEFAULT_TAG)]
    pub tag: String,
    /// Then run it as Fly would: release command, serve (unprivileged, read-only root
    /// filesystem, fly.toml's [env]), readiness, version, smoke; remove every container.
    #[arg(long)]
    pub check: bool,
    /// How long the service may take to answer readyz with --check, e.g. 60s.
    #[arg(long, value_name = "DURATION", default_value = "60s", value_parser = parse_duration)]
    pub ready_timeout: Duration,
    /// Print the result record as JSON on stdout (human text goes to stderr).
    #[arg(long)]
    pub json: bool,
}

impl From<Args> for crate::image::Options {
    fn from(args: Args) -> Self {
        Self {
            engine: args.engine,
            tag: args.tag,
            check: args.check,
            ready_timeout: args.ready_timeout,
        }
    }
}
