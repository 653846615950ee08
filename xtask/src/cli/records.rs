//! The flags of `cargo xtask records`, turned into [`crate::records::Options`].

/// Options of `cargo xtask records`.
#[derive(Debug, Clone, clap::Args)]
#[command(
    after_help = "Exit codes: 0 = done; 1 = a push left a record here because it holds a \
    secret value; 2 = it could not run (remote unreachable, push \
    rejected after retries, unreadable records). A failed push keeps every local record."
)]
pub struct Args {
    #[command(subcommand)]
    pub action: Action,
    /// The git remote (name or URL) that holds the records ref.
    #[arg(long, global = true, default_value = crate::records::git_ref::DEFAULT_REMOTE, value_name = "REMOTE")]
    pub remote: String,
    /// The ref on the remote that holds the records (one JSON file per run, append-only); a
    /// bare name is a branch.
    #[arg(long = "ref", global = true, default_value = crate::records::git_ref::DEFAULT_REF, value_name = "REF")]
    pub git_ref: String,
    /// Print what was done as JSON on stdout.
    #[arg(long, global = true)]
    pub json: bool,
}

impl From<Args> for crate::records::Options {
    fn from(args: Args) -> Self {
        Self {
            action: args.action.into(),
            remote: args.remote,
            git_ref: args.git_ref,
        }
    }
}

/// What to do with the records.
#[derive(Debug, Clone, clap::Subcommand)]
pub enum Action {
    /// Add every local record the remote ref lacks, retrying when another push came first. A
    /// record holding a value of a filled env file (in any echoed form) stays here: exit 1.
    Push,
    /// Copy every record of the remote ref that is not local yet into target/xtask/runs/.
    Pull,
    /// List the local records, newest last, and whether each is on the ref (as last fetched).
    List,
}

impl From<Action> for crate::records::Action {
    fn from(action: Action) -> Self {
        match action {
            Action::Push => Self::Push,
            Action::Pull => Self::Pull,
            Action::List => Self::List,
        }
    }
}
