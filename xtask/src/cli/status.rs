//! The flags of `cargo xtask status`, turned into [`crate::status::Options`].

/// Options of `cargo xtask status`; see [`crate::status::EXIT_CODES`].
#[derive(Debug, Clone, Default, clap::Args)]
#[command(after_help = crate::status::EXIT_CODES)]
pub struct Args {
    /// The environment [default: the environment of the newest saved result].
    #[arg(long, value_name = "NAME")]
    pub env: Option<String>,
    /// Print the map, the verdict and the next command as JSON on stdout.
    #[arg(long)]
    pub json: bool,
}

impl From<Args> for crate::status::Options {
    fn from(args: Args) -> Self {
        Self { env: args.env }
    }
}
