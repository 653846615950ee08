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
            if let Ok(text) = crate::files::read_text_capped(&manifest, crate::files::CONFIG_LIMIT)
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
        let snapshot = self.git_snapshot()?;
        let dirty = !snapshot.changed.is_empty();
        Some(GitState {
            inputs: crate::records::inputs::inputs_tree(&self.root),
            tree: if dirty {
                self.working_tree_hash()
            } else {
                None
            },
            dirty,
            commit: snapshot.commit,
        })
    }

    /// The git tree hash of the working tree as it is (tracked and untracked files, ignored
    /// ones left out), written through a throwaway index so nothing of the user's changes.
    /// Two identical dirty trees give the same hash, so a result measured on uncommitted
    /// changes can be matched against the tree a report is made from.
    fn working_tree_hash(&self) -> Option<String> {
        crate::records::inputs::tree_hash(&self.root, None)
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

/// How [`GitState::identity`] marks an identity made of the deployable inputs' tree.
pub const INPUTS_PREFIX: &str = "inputs:";

/// The commit a result measured.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct GitState {
    /// Full hash of HEAD.
    pub commit: String,
    /// Whether the working tree had uncommitted changes.
    pub dirty: bool,
    /// With uncommitted changes: the git tree hash of the working tree, which tells one dirty
    /// state from another.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tree: Option<String>,
    /// The git tree hash of the deployable inputs (see `records::inputs`): what a local or
    /// ad-hoc result measured. Absent in records written before it was tracked.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub inputs: Option<String>,
}

impl GitState {
    /// What a result measured: the tree of the deployable inputs (`inputs:<tree>`) when it
    /// was recorded; else the commit, and with uncommitted changes the exact tree too
    /// (`<commit>+<tree>`; `+unknown` when that could not be read, which matches nothing).
    pub fn identity(&self) -> String {
        if let Some(inputs) = &self.inputs {
            format!("{INPUTS_PREFIX}{inputs}")
        } else if self.dirty {
            format!(
                "{}+{}",
                self.commit,
                self.tree.as_deref().unwrap_or("unknown")
            )
        } else {
            self.commit.clone()
        }
    }

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

    fn git_in(dir: &Path) -> impl Fn(&[&str]) + '_ {
        move |args: &[&str]| {
            let status = std::process::Command::new("git")
                .args(["-c", "user.name=t", "-c", "user.email=t@example.com"])
                .args(args)
                .current_dir(dir)
                .status()
                .unwrap();
            assert!(status.success(), "git {args:?}");
        }
    }

    #[test]
    fn a_result_is_identified_by_the_deployable_inputs_only() {
        let dir = tempfile::tempdir().unwrap();
        let git = git_in(dir.path());
        git(&["init", "-q"]);
        std::fs::create_dir_all(dir.path().join("backend/src")).unwrap();
        std::fs::write(dir.path().join("backend/src/lib.rs"), "// one\n").unwrap();
        std::fs::write(dir.path().join("README.md"), "one\n").unwrap();
        git(&["add", "-A"]);
        git(&["commit", "-qm", "first"]);
        let repo = Repo::at(dir.path());
        let first = repo.git_state().unwrap();
        assert!(first.inputs.is_some());

        // A docs-only change, uncommitted and then committed: same inputs, same identity.
        std::fs::write(dir.path().join("README.md"), "two\n").unwrap();
        let docs_dirty = repo.git_state().unwrap();
        assert!(docs_dirty.dirty);
        assert_eq!(docs_dirty.identity(), first.identity());
        git(&["commit", "-qam", "docs"]);
        let docs = repo.git_state().unwrap();
        assert_ne!(docs.commit, first.commit);
        assert_eq!(docs.identity(), first.identity());

        // A backend change stales it, committed or not, and the same content gives the same id.
        std::fs::write(dir.path().join("backend/src/lib.rs"), "// two\n").unwrap();
        let backend_dirty = repo.git_state().unwrap();
        assert_ne!(backend_dirty.identity(), first.identity());
        git(&["commit", "-qam", "backend"]);
        assert_eq!(
            repo.git_state().unwrap().identity(),
            backend_dirty.identity()
        );

        // Each listed input counts, even one created later.
        std::fs::write(dir.path().join("fly.toml"), "app = \"x\"\n").unwrap();
        assert_ne!(
            repo.git_state().unwrap().identity(),
            backend_dirty.identity()
        );
        // The user's own index is untouched.
        let staged = std::process::Command::new("git")
            .args(["diff", "--cached", "--name-only"])
            .current_dir(dir.path())
            .output()
            .unwrap();
        assert!(staged.stdout.is_empty());
    }

    #[test]
    fn without_inputs_a_dirty_tree_is_identified_by_its_content() {
        let dirty = |tree: &str| GitState {
            commit: "abc".into(),
            dirty: true,
            tree: Some(tree.into()),
            inputs: None,
        };
        assert_eq!(dirty("t1").identity(), "abc+t1");
        assert_ne!(dirty("t1").identity(), dirty("t2").identity());
        let with_inputs = GitState {
            inputs: Some("i1".into()),
            ..dirty("t1")
        };
        assert_eq!(with_inputs.identity(), "inputs:i1");
    }

    #[test]
    fn outside_a_workspace_says_where_it_looked() {
        let dir = tempfile::tempdir().unwrap();
        let error = Repo::discover_from(dir.path()).unwrap_err().to_string();
        assert!(error.contains("no Cargo workspace"), "{error}");
    }
}
