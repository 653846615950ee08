//! The deployable inputs: the files whose content decides what a build of the service is and
//! how it is deployed. A local or ad-hoc result stays fresh while their tree is unchanged, so
//! a commit touching only docs, README, report templates or CI files keeps it fresh.
//!
//! `ops/deploy.toml` is not one: the image does not contain it (`backend/Dockerfile` copies
//! the manifests, `backend/src`, the migrations and `build.rs`), and what it names (URLs,
//! thresholds) is read by the tasks, not by the service. Pointing an environment at another
//! URL, such as the local Fly's, must not stale what was measured.

use std::path::Path;

use xshell::{Shell, cmd};

/// The one list of deployable inputs, relative to the repository root (directories whole).
pub const DEPLOYABLE_INPUTS: &[&str] = &[
    "backend",
    "Cargo.toml",
    "Cargo.lock",
    "backend/Dockerfile",
    "fly.toml",
];

/// `backend/, Cargo.toml, ...` for messages.
pub fn listed() -> String {
    DEPLOYABLE_INPUTS
        .iter()
        .map(|p| {
            if *p == "backend" {
                "backend/".to_string()
            } else {
                p.to_string()
            }
        })
        .collect::<Vec<_>>()
        .join(", ")
}

/// The git tree hash of the deployable inputs as they are in the working tree (committed or
/// not; git-ignored files left out), written through a throwaway index so the user's index
/// and work tree are untouched. `None` outside git.
pub fn inputs_tree(root: &Path) -> Option<String> {
    // An absent input is simply empty.
    let present: Vec<&str> = DEPLOYABLE_INPUTS
        .iter()
        .copied()
        .filter(|p| root.join(p).exists())
        .collect();
    tree_hash(root, Some(&present))
}

/// The git tree hash of the files below `root` as they are on disk (committed or not;
/// git-ignored ones left out), written through a throwaway index so the user's index and
/// work tree are untouched: all of them, or `only` these paths (none of them present: the
/// empty tree). `None` outside git.
pub fn tree_hash(root: &Path, only: Option<&[&str]>) -> Option<String> {
    let sh = Shell::new().ok()?;
    sh.change_dir(root);
    let scratch = tempfile::tempdir().ok()?;
    let _index = sh.push_env("GIT_INDEX_FILE", scratch.path().join("index"));
    let add = match only {
        None => Some(cmd!(sh, "git add --all")),
        // `git add` refuses a pathspec that matches nothing.
        Some([]) => None,
        Some(paths) => Some(cmd!(sh, "git add --all -- {paths...}")),
    };
    if let Some(add) = add {
        add.quiet().ignore_stderr().run().ok()?;
    }
    cmd!(sh, "git write-tree")
        .quiet()
        .ignore_stderr()
        .read()
        .ok()
}
