//! The flags of `cargo xtask report`, turned into [`crate::report::RunOptions`].

use std::path::PathBuf;

/// Options of `cargo xtask report`.
///
/// Exit codes: 0 when the report was written (whatever its verdict, which is printed);
/// with `--check`, 0 only for GO and 1 for NO-GO or INCOMPLETE; 2 when it could not run
/// (no results at all, a corrupt record, a broken template).
#[derive(Debug, Clone, Default, clap::Args)]
#[command(
    after_help = "Exit codes: 0 = the report was written (its verdict is printed); with \
    --check, 0 = GO and 1 = NO-GO or INCOMPLETE; 2 = it could not run (no results, a corrupt \
    record, a broken template)."
)]
pub struct Args {
    /// The environment to report on [default: the environment of the newest saved result].
    #[arg(long, value_name = "NAME")]
    pub env: Option<String>,
    /// Write under DIR (DIR/backend/docs/...) instead of the repository root.
    #[arg(long, value_name = "DIR")]
    pub out: Option<PathBuf>,
    /// Also write each report as a standalone HTML page beside the Markdown.
    #[arg(long)]
    pub html: bool,
    /// Exit with the verdict: 0 for GO, 1 for NO-GO or INCOMPLETE (for CI gates).
    #[arg(long)]
    pub check: bool,
}

impl From<Args> for crate::report::RunOptions {
    fn from(args: Args) -> Self {
        Self {
            env: args.env,
            out: args.out,
            html: args.html,
            check: args.check,
        }
    }
}
