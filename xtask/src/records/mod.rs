//! The record store: the local runs directory, the git ref records travel on
//! (`cargo xtask records push|pull|list`), what a result was measured against (the
//! deployable inputs or the serving release), which run is newer, and which records CI
//! signed.

pub mod git_ref;
pub mod inputs;
pub mod order;
pub mod redact;
pub mod screen;
pub mod seen;
pub mod signature;
pub mod task;

pub use task::{Action, Options, run};
