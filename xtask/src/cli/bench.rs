//! The flags of `cargo xtask bench`, turned into [`crate::bench::Options`].

use std::path::PathBuf;
use std::time::Duration;

use super::duration::parse_duration;

/// Flags of `cargo xtask bench`.
#[derive(Debug, Clone, clap::Args)]
pub struct Args {
    /// Rounds: every client runs once per round, round after round.
    #[arg(long, default_value_t = crate::bench::DEFAULT_RUNS, value_name = "N")]
    pub runs: u32,
    /// How long each client run lasts, e.g. 10s (whole seconds for wrk and pgbench).
    #[arg(long, default_value = "10s", value_name = "DURATION", value_parser = parse_duration)]
    pub duration: Duration,
    /// Serve from a throwaway PostgreSQL cluster (fsync on) and add the pre-reserve
    /// comparison against the pgbench ceiling.
    #[arg(long)]
    pub postgres: bool,
    /// Run only this comparison (repeatable): healthz, open, service, layers, prereserve,
    /// pinned.
    #[arg(long, value_name = "NAME", value_parser = crate::bench::plan::NAMES)]
    pub only: Vec<String>,
    /// The open model's high rate, in requests per second.
    #[arg(long, default_value_t = crate::bench::DEFAULT_HIGH_RATE, value_name = "R")]
    pub high_rate: f64,
    /// Also write the tables into this Markdown file, between its `<!-- bench:begin -->` and
    /// `<!-- bench:end -->` lines, e.g. docs/benchmarks.md.
    #[arg(long, value_name = "PATH")]
    pub write: Option<PathBuf>,
    /// Use the release binaries already built instead of building them first.
    #[arg(long)]
    pub no_build: bool,
}

impl From<Args> for crate::bench::Options {
    fn from(args: Args) -> Self {
        Self {
            runs: args.runs,
            duration: args.duration,
            postgres: args.postgres,
            only: args.only,
            high_rate: args.high_rate,
            write: args.write,
            no_build: args.no_build,
        }
    }
}
