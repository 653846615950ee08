//! `cargo xtask overlap` (being built; see its issue).

use clap::Args as ClapArgs;

use crate::verdict::Verdict;

/// Options of `cargo xtask overlap`.
#[derive(Debug, ClapArgs)]
pub struct Args {}

/// Entry point.
pub fn run(_args: Args) -> anyhow::Result<Verdict> {
    anyhow::bail!("`cargo xtask overlap` is not built yet")
}
