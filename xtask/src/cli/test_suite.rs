//! The flags of `cargo xtask test-suite`, turned into [`crate::test_suite::Options`].

/// Options of `cargo xtask test`.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// Skip the PostgreSQL cluster and its tests (never allowed when `CI` is set).
    #[arg(long)]
    pub no_postgres: bool,
    /// Extra arguments for `cargo test` (for example a test name filter), after `--`.
    #[arg(last = true)]
    pub cargo_args: Vec<String>,
}

impl From<Args> for crate::test_suite::Options {
    fn from(args: Args) -> Self {
        Self {
            no_postgres: args.no_postgres,
            cargo_args: args.cargo_args,
        }
    }
}
