//! `localfly`: the local Fly, a stand-in for flyctl in tests. See `xtask::localfly`.

fn main() -> std::process::ExitCode {
    xtask::localfly::commands::main()
}
