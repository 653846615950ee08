//! `cargo xtask`: parses the command line and hands it to the task it names.

use clap::Parser;

fn main() -> std::process::ExitCode {
    xtask::dispatch(xtask::cli::Cli::parse())
}
