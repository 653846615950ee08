//! Finding the repository a task works on, and what git says about it.

use std::path::{Path, PathBuf};

use anyhow::{Context, bail};
use serde::{Deserialize, Serialize};
use xshell::{Shell, cmd};

/// The checkout a task works on: the Cargo workspace that contains the current directory.
#[derive(Debug, Clone)]
pub struct Repo {
    root: PathBuf,
}

impl Repo {
    /// Finds the workspace containing the current directory, the way cargo does: the outermost
    /// `Cargo.toml` with a `[workspace]` table above it.
    pub fn discover() -> anyhow::Result<Repo> {
        let cwd = std::env::current_dir().context("reading the current directory")?;
        Repo::discover_from(&cwd)
    }

    /// Like [`Repo::discover`], starting from `start`.
    pub fn discover_from(start: &Path) -> anyhow::Result<Repo> {
        let mut found = None;
        for dir in start.ancestors() {
            let manifest = dir.join("Cargo.toml");
            if let Ok(text) = std::fs::read_to_string(&manifest)
                && text.lines().any(|line| line.trim() == "[workspace]")
            {
                found = Some(dir.to_path_buf());
            }
        }
        match found {
            Some(root) => Ok(Repo { root }),
            None => bail!(
                "no Cargo workspace above {}: run cargo xtask from inside the sist-cabanas checkout",
                start.display()
            ),
        }
    }

    /// A repository rooted at `root`, without searching (tests use temporary fixtures).
    pub fn at(root: impl Into<PathBuf>) -> Repo {
        Repo { root: root.into() }
    }

    /// The workspace root.
    pub fn root(&self) -> &Path {
        &self.root
    }

    /// A path relative to the root.
    pub fn path(&self, relative: impl AsRef<Path>) -> PathBuf {
        self.root.join(relative)
    }

    /// Where task results are saved.
    pub fn runs_dir(&self) -> PathBuf {
        self.root.join("target").join("xtask").join("runs")
    }

    /// The commit checked out and whether the tree has uncommitted changes. `None` outside git.
    pub fn git_state(&self) -> Option<GitState> {
        self.git_snapshot().map(|snapshot| GitState {
            dirty: !snapshot.changed.is_empty(),
            commit: snapshot.commit,
        })
    }

    /// HEAD and the paths with uncommitted changes. `None` outside git or before a commit.
    pub fn git_snapshot(&self) -> Option<GitSnapshot> {
        let sh = Shell::new().ok()?;
        sh.change_dir(&self.root);
        let commit = cmd!(sh, "git rev-parse HEAD")
            .quiet()
            .ignore_stderr()
            .read()
            .ok()?;
        let status = cmd!(sh, "git status --porcelain")
            .quiet()
            .ignore_stderr()
            .read()
            .ok()?;
        // Porcelain lines are `XY path`; the path starts at the fourth character.
        let changed = status
            .lines()
            .map(|line| line.get(3..).unwrap_or(line).to_string())
            .collect();
        Some(GitSnapshot { commit, changed })
    }
}

/// Variables `cargo run` and `cargo test` set for the program they start. A cargo started from
/// that program inherits them, and build scripts that watch `CARGO_MANIFEST_DIR` (ring's) then
/// rerun, rebuilding every crate above them, each time `cargo xtask` and a plain cargo alternate.
const CARGO_CHILD_ENV: &[&str] = &[
    "CARGO_MANIFEST_DIR",
    "CARGO_MANIFEST_PATH",
    "CARGO_PKG_AUTHORS",
    "CARGO_PKG_DESCRIPTION",
    "CARGO_PKG_HOMEPAGE",
    "CARGO_PKG_LICENSE",
    "CARGO_PKG_LICENSE_FILE",
    "CARGO_PKG_NAME",
    "CARGO_PKG_README",
    "CARGO_PKG_REPOSITORY",
    "CARGO_PKG_RUST_VERSION",
    "CARGO_PKG_VERSION",
    "CARGO_PKG_VERSION_MAJOR",
    "CARGO_PKG_VERSION_MINOR",
    "CARGO_PKG_VERSION_PATCH",
    "CARGO_PKG_VERSION_PRE",
    "CARGO_PRIMARY_PACKAGE",
    "CARGO_CRATE_NAME",
    "CARGO_BIN_NAME",
    "CARGO_TARGET_TMPDIR",
];

/// A `cargo` command in the repository root (`$CARGO` when set), without the variables of an
/// enclosing `cargo run`, so that nested builds reuse what the outer one built.
pub fn nested_cargo<'a>(sh: &'a Shell, repo: &Repo) -> xshell::Cmd<'a> {
    sh.change_dir(repo.root());
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".to_string());
    CARGO_CHILD_ENV
        .iter()
        .fold(cmd!(sh, "{cargo}"), |command, name| {
            command.env_remove(name)
        })
}

/// What git says about the working tree.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GitSnapshot {
    /// Full hash of HEAD.
    pub commit: String,
    /// Paths with uncommitted changes (modified, staged, untracked and not ignored).
    pub changed: Vec<String>,
}

/// The commit a result measured.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct GitState {
    /// Full hash of HEAD.
    pub commit: String,
    /// Whether the working tree had uncommitted changes.
    pub dirty: bool,
}

impl GitState {
    /// The short form shown in tables.
    pub fn short(&self) -> &str {
        let end = self
            .commit
            .char_indices()
            .nth(12)
            .map_or(self.commit.len(), |(at, _)| at);
        &self.commit[..end]
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_the_outermost_workspace() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("Cargo.toml"), "[workspace]\nmembers = []\n").unwrap();
        let member = dir.path().join("xtask/src");
        std::fs::create_dir_all(&member).unwrap();
        std::fs::write(
            dir.path().join("xtask/Cargo.toml"),
            "[package]\nname = \"x\"\n",
        )
        .unwrap();
        let repo = Repo::discover_from(&member).unwrap();
        assert_eq!(repo.root(), dir.path());
    }

    #[test]
    fn outside_a_workspace_says_where_it_looked() {
        let dir = tempfile::tempdir().unwrap();
        let error = Repo::discover_from(dir.path()).unwrap_err().to_string();
        assert!(error.contains("no Cargo workspace"), "{error}");
    }
}
