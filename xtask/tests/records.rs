//! `cargo xtask records`: result records travel through a real git remote (a bare repository
//! in a temporary directory). Round trip, concurrent pushes, secrets kept off the ref, a failed
//! push, and the same verdict on a fresh clone.

use std::path::{Path, PathBuf};
use std::process::Command;

use chrono::Utc;
use xtask::record::RunClock;
use xtask::records::git_ref::{self, LOCAL_COPY, Place};
use xtask::records::redact::SecretValues;
use xtask::repo::Repo;
use xtask::report::{self, Options};
use xtask::verdict::Verdict;

/// Runs git in `dir` and returns its stdout; panics with its stderr on failure.
fn git(dir: &Path, args: &[&str]) -> String {
    let output = Command::new("git")
        .args(["-c", "user.name=t", "-c", "user.email=t@example.com"])
        .args(["-c", "init.defaultBranch=main"])
        .args(args)
        .current_dir(dir)
        .output()
        .unwrap();
    assert!(
        output.status.success(),
        "git {args:?} in {}: {}",
        dir.display(),
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8_lossy(&output.stdout).into_owned()
}

/// A bare remote and a way to make checkouts of one small workspace pointing at it.
struct Remote {
    dir: tempfile::TempDir,
}

impl Remote {
    /// A bare remote holding a `main` with a workspace, a backend file and a README.
    fn new() -> Remote {
        let dir = tempfile::tempdir().unwrap();
        git(dir.path(), &["init", "-q", "--bare", "remote.git"]);
        let seed = dir.path().join("seed");
        std::fs::create_dir_all(seed.join("backend/src")).unwrap();
        std::fs::write(seed.join("Cargo.toml"), "[workspace]\nmembers = []\n").unwrap();
        std::fs::write(seed.join("backend/src/lib.rs"), "// the service\n").unwrap();
        std::fs::write(seed.join("README.md"), "# readme\n").unwrap();
        std::fs::write(seed.join(".gitignore"), "/target\n/env/.env.*\n").unwrap();
        git(&seed, &["init", "-q"]);
        git(&seed, &["add", "-A"]);
        git(&seed, &["commit", "-qm", "seed"]);
        let url = dir.path().join("remote.git");
        git(
            &seed,
            &["push", "-q", url.to_str().unwrap(), "HEAD:refs/heads/main"],
        );
        Remote { dir }
    }

    fn url(&self) -> PathBuf {
        self.dir.path().join("remote.git")
    }

    /// A fresh clone named `name`.
    fn clone(&self, name: &str) -> Repo {
        let url = self.url();
        git(
            self.dir.path(),
            &["clone", "-q", url.to_str().unwrap(), name],
        );
        Repo::at(self.dir.path().join(name))
    }

    /// The record file names on the remote's records ref.
    fn shared(&self) -> Vec<String> {
        let listing = git(
            &self.url(),
            &[
                "ls-tree",
                "--name-only",
                "refs/heads/xtask-records",
                "runs/",
            ],
        );
        let mut names: Vec<String> = listing
            .lines()
            .map(|l| l.trim_start_matches("runs/").to_string())
            .collect();
        names.sort();
        names
    }
}

/// Saves one record of `task` and returns its file name.
fn record(repo: &Repo, task: &'static str, env: &str, result: serde_json::Value) -> String {
    let path = RunClock::start(task)
        .finish(repo, env, Verdict::Pass, result)
        .save(repo)
        .unwrap();
    path.file_name().unwrap().to_string_lossy().into_owned()
}

fn local_names(repo: &Repo) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(repo.runs_dir())
        .map(|d| {
            d.map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
                .collect()
        })
        .unwrap_or_default();
    names.sort();
    names
}

fn place() -> Place {
    Place::default()
}

#[test]
fn records_round_trip_through_a_bare_remote_without_touching_the_checkout() {
    let remote = Remote::new();
    let a = remote.clone("a");
    let first = record(&a, "smoke", "local", serde_json::json!({"n": 1}));
    let second = record(&a, "overlap", "local", serde_json::json!({"n": 2}));
    let status_before = git(a.root(), &["status", "--porcelain"]);
    // git push also notes the pushed ref under refs/remotes/origin/, as for any push; the
    // branches are what must not move.
    let branches_before = git(a.root(), &["for-each-ref", "refs/heads"]);
    let head_before = git(a.root(), &["rev-parse", "HEAD"]);

    // A half-written file is not a record: it stays local.
    std::fs::write(a.runs_dir().join("broken.json"), "{").unwrap();
    let pushed = git_ref::push(&a, &place(), &SecretValues::default()).unwrap();
    assert_eq!(pushed.added, vec![first.clone(), second.clone()]);
    assert_eq!(pushed.skipped, vec!["broken.json".to_string()]);
    std::fs::remove_file(a.runs_dir().join("broken.json")).unwrap();
    assert_eq!(remote.shared(), vec![first.clone(), second.clone()]);
    // The checkout is as it was: no staged file, no branch, HEAD where it was.
    assert_eq!(git(a.root(), &["status", "--porcelain"]), status_before);
    assert_eq!(
        git(a.root(), &["for-each-ref", "refs/heads"]),
        branches_before
    );
    assert_eq!(git(a.root(), &["rev-parse", "HEAD"]), head_before);

    // Pushing again adds nothing.
    let again = git_ref::push(&a, &place(), &SecretValues::default()).unwrap();
    assert!(again.added.is_empty());
    assert_eq!(again.already_shared, 2);

    // A fresh clone pulls them, byte for byte, and merges with its own.
    let b = remote.clone("b");
    let own = record(&b, "predeploy", "all", serde_json::json!({"n": 3}));
    let pulled = git_ref::pull(&b, &place()).unwrap();
    assert_eq!(pulled.added, vec![first.clone(), second.clone()]);
    assert_eq!(local_names(&b), {
        let mut all = vec![first.clone(), second.clone(), own.clone()];
        all.sort();
        all
    });
    for name in [&first, &second] {
        assert_eq!(
            std::fs::read(a.runs_dir().join(name)).unwrap(),
            std::fs::read(b.runs_dir().join(name)).unwrap()
        );
    }
    assert_eq!(git_ref::pull(&b, &place()).unwrap().already_local, 2);

    // B pushes its own; A pulls it; list shows what is shared.
    git_ref::push(&b, &place(), &SecretValues::default()).unwrap();
    assert_eq!(
        git_ref::pull(&a, &place()).unwrap().added,
        vec![own.clone()]
    );
    let listed = xtask::records::task::list(&a, &place()).unwrap();
    assert_eq!(listed.len(), 3);
    assert!(listed.iter().all(|l| l.shared == Some(true)), "{listed:?}");
    // The fetched copy lives outside refs/heads.
    assert!(!git(a.root(), &["rev-parse", LOCAL_COPY]).trim().is_empty());
}

#[test]
fn two_concurrent_pushes_lose_nothing() {
    let remote = Remote::new();
    let a = remote.clone("a");
    let b = remote.clone("b");
    let barrier = std::sync::Barrier::new(2);
    let mut expected = Vec::new();
    std::thread::scope(|scope| {
        let jobs: Vec<_> = [&a, &b]
            .into_iter()
            .map(|repo| {
                let barrier = &barrier;
                scope.spawn(move || {
                    let mut names = Vec::new();
                    let mut attempts = 0;
                    for round in 0..4 {
                        names.push(record(
                            repo,
                            "smoke",
                            "local",
                            serde_json::json!({ "round": round }),
                        ));
                        barrier.wait();
                        let pushed =
                            git_ref::push(repo, &place(), &SecretValues::default()).unwrap();
                        attempts += pushed.attempts;
                    }
                    (names, attempts)
                })
            })
            .collect();
        for job in jobs {
            let (names, attempts) = job.join().unwrap();
            eprintln!("push attempts over 4 rounds: {attempts}");
            expected.extend(names);
        }
    });
    expected.sort();
    assert_eq!(expected.len(), 8);
    assert_eq!(
        remote.shared(),
        expected,
        "every record of both jobs is on the ref"
    );
    let c = remote.clone("c");
    git_ref::pull(&c, &place()).unwrap();
    assert_eq!(local_names(&c), expected);
}

#[test]
fn canary_secrets_never_reach_the_ref() {
    const CANARY: &str = "canary-5b1d-do-not-share-this";
    let remote = Remote::new();
    let a = remote.clone("a");
    std::fs::create_dir_all(a.path("ops")).unwrap();
    std::fs::create_dir_all(a.path("env")).unwrap();
    std::fs::write(
        a.path("ops/deploy.toml"),
        "[environments.staging]\napp = \"app-staging\"\nurl = \"https://app-staging.fly.dev\"\n\
         env_file = \"env/.env.fly.staging\"\ntemplate = \"env/.env.fly.staging.template\"\n",
    )
    .unwrap();
    std::fs::write(
        a.path("env/.env.fly.staging"),
        format!("DATABASE_URL=postgresql://app:{CANARY}@db/app\nJWT_SECRET=\"{CANARY}\\\"q\"\n"),
    )
    .unwrap();
    // A record that echoes the secrets, raw and JSON-escaped (a quote inside the value).
    let leaky = record(
        &a,
        "secrets",
        "staging",
        serde_json::json!({
            "problems": [
                format!("flyctl said: postgresql://app:{CANARY}@db/app"),
                format!("payload {CANARY}\"q"),
            ]
        }),
    );
    let clean = record(&a, "smoke", "staging", serde_json::json!({"n": 1}));
    let secrets = SecretValues::of_checkout(&a).unwrap();
    let pushed = git_ref::push(&a, &place(), &secrets).unwrap();
    assert_eq!(pushed.masked, vec![leaky.clone()]);
    assert_eq!(remote.shared(), {
        let mut names = vec![leaky.clone(), clean];
        names.sort();
        names
    });
    // Every object reachable from the ref: no canary anywhere.
    let objects = git(
        &remote.url(),
        &["rev-list", "--objects", "refs/heads/xtask-records"],
    );
    for object in objects.lines().filter_map(|l| l.split(' ').next()) {
        let content = git(&remote.url(), &["cat-file", "-p", object]);
        assert!(!content.contains("canary-5b1d"), "{object}: {content}");
    }
    // What was pushed is still a record, with the secrets masked.
    let shared = git(
        &remote.url(),
        &["show", &format!("refs/heads/xtask-records:runs/{leaky}")],
    );
    let value: serde_json::Value = serde_json::from_str(&shared).unwrap();
    assert_eq!(
        value["result"]["problems"][0].as_str(),
        Some("flyctl said: ****")
    );
    // The local copy is left as the task wrote it.
    assert!(
        std::fs::read_to_string(a.runs_dir().join(&leaky))
            .unwrap()
            .contains(CANARY)
    );
}

#[test]
fn a_failed_push_exits_2_and_keeps_the_local_records() {
    let remote = Remote::new();
    let a = remote.clone("a");
    let name = record(&a, "smoke", "local", serde_json::json!({"n": 1}));
    let missing = remote.dir.path().join("gone.git");
    let output = Command::new(env!("CARGO_BIN_EXE_xtask"))
        .args(["records", "push", "--remote", missing.to_str().unwrap()])
        .current_dir(a.root())
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(2), "{stderr}");
    assert!(stderr.contains("cannot reach the git remote"), "{stderr}");
    assert!(stderr.contains("gone.git"), "{stderr}");
    assert_eq!(local_names(&a), vec![name]);
}

#[test]
fn a_fresh_clone_after_pull_reaches_the_same_verdict() {
    let remote = Remote::new();
    let a = remote.clone("a");
    for task in ["predeploy", "smoke", "overlap"] {
        record(&a, task, "local", serde_json::json!({}));
    }
    let now = Utc::now();
    let options = Options {
        env: Some("local".into()),
    };
    let here = report::context(&a, &options, now, a.git_state().as_ref()).unwrap();
    git_ref::push(&a, &place(), &SecretValues::default()).unwrap();

    let b = remote.clone("b");
    assert!(report::context(&b, &options, now, b.git_state().as_ref()).is_err());
    git_ref::pull(&b, &place()).unwrap();
    let there = report::context(&b, &options, now, b.git_state().as_ref()).unwrap();
    assert_eq!(there.verdict.label, here.verdict.label);
    assert_eq!(there.verdict.reasons, here.verdict.reasons);
    assert_eq!(
        there.smoke.provenance.as_ref().map(|p| p.stale),
        Some(false),
        "measured on the same inputs"
    );
    // A docs-only commit on the clone keeps them fresh; a backend change does not.
    std::fs::write(b.path("README.md"), "# readme, edited\n").unwrap();
    git(b.root(), &["commit", "-qam", "docs"]);
    let docs = report::context(&b, &options, now, b.git_state().as_ref()).unwrap();
    assert_eq!(docs.smoke.provenance.as_ref().map(|p| p.stale), Some(false));
    std::fs::write(b.path("backend/src/lib.rs"), "// changed\n").unwrap();
    git(b.root(), &["commit", "-qam", "backend"]);
    let backend = report::context(&b, &options, now, b.git_state().as_ref()).unwrap();
    assert_eq!(
        backend.smoke.provenance.as_ref().map(|p| p.stale),
        Some(true)
    );
}
