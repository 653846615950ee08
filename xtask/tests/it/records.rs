//! `cargo xtask records`: result records travel through a real git remote (a bare repository
//! in a temporary directory). Round trip, concurrent pushes, secrets kept off the ref, a failed
//! push, and the same verdict on a fresh clone.

use std::path::PathBuf;
use std::process::Command;

use crate::support::{git, stdout_and_stderr};
use chrono::Utc;
use xtask::record::RunClock;
use xtask::records::git_ref::{self, LOCAL_COPY, Place};
use xtask::records::redact::SecretValues;
use xtask::repo::Repo;
use xtask::report::{self, Options};
use xtask::verdict::Verdict;

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

/// A checkout whose filled staging env file holds `values` (NAME=VALUE lines as written).
fn with_env_file(repo: &Repo, lines: &str) {
    std::fs::create_dir_all(repo.path("ops")).unwrap();
    std::fs::create_dir_all(repo.path("env")).unwrap();
    std::fs::write(
        repo.path("ops/deploy.toml"),
        "[environments.staging]\napp = \"app-staging\"\nurl = \"https://app-staging.fly.dev\"\n\
         env_file = \"env/.env.fly.staging\"\ntemplate = \"env/.env.fly.staging.template\"\n",
    )
    .unwrap();
    std::fs::write(repo.path("env/.env.fly.staging"), lines).unwrap();
}

/// Every object reachable from the remote's records ref holds none of `fragment`.
fn assert_ref_lacks(remote: &Remote, fragment: &str) {
    let objects = git(
        &remote.url(),
        &["rev-list", "--objects", "refs/heads/xtask-records"],
    );
    for object in objects.lines().filter_map(|l| l.split(' ').next()) {
        let content = git(&remote.url(), &["cat-file", "-p", object]);
        assert!(!content.contains(fragment), "{object}: {content}");
    }
}

#[test]
fn records_holding_a_secret_in_any_echoed_form_are_refused() {
    // A space, `$` and `"`: bash's printf %q and Go's %q both escape it.
    const CANARY: &str = r#"canary-5b1d do"not$share"#;
    let remote = Remote::new();
    let a = remote.clone("a");
    with_env_file(
        &a,
        &format!("DATABASE_URL=postgresql://app:pw-0x9@db/app\nJWT_SECRET='{CANARY}'\n"),
    );
    let every_char_u: String = CANARY
        .chars()
        .map(|c| format!("\\u{:04x}", c as u32))
        .collect();
    let echoes = [
        // bash: printf '%q' "$JWT_SECRET"
        r#"retry with canary-5b1d\ do\"not\$share"#.to_string(),
        // Go: fmt.Sprintf("%q", secret)
        r#"invalid value "canary-5b1d do\"not$share""#.to_string(),
        // JSON with every character as \uXXXX.
        format!("payload {{\"jwt\":\"{every_char_u}\"}}"),
        // The raw database URL.
        "connecting to postgresql://app:pw-0x9@db/app".to_string(),
    ];
    let leaky: Vec<String> = echoes
        .iter()
        .map(|echo| {
            record(
                &a,
                "secrets",
                "staging",
                serde_json::json!({ "problems": [echo] }),
            )
        })
        .collect();
    let clean = record(&a, "smoke", "staging", serde_json::json!({"n": 1}));

    let output = Command::new(env!("CARGO_BIN_EXE_xtask"))
        .args(["records", "push"])
        .current_dir(a.root())
        .output()
        .unwrap();
    let stderr = stdout_and_stderr(&output);
    assert_eq!(output.status.code(), Some(1), "{stderr}");
    for name in &leaky {
        assert!(
            stderr.contains(&format!("refused target/xtask/runs/{name}")),
            "{name} not named: {stderr}"
        );
    }
    assert!(
        stderr.contains("JWT_SECRET in env/.env.fly.staging"),
        "{stderr}"
    );
    assert!(
        stderr.contains("DATABASE_URL in env/.env.fly.staging"),
        "{stderr}"
    );
    assert!(
        !stderr.contains("canary-5b1d"),
        "no secret in the message: {stderr}"
    );
    assert_eq!(remote.shared(), vec![clean], "only the clean record left");
    assert_ref_lacks(&remote, "canary-5b1d");
    assert_ref_lacks(&remote, "\\u0063\\u0061\\u006e");
    assert_ref_lacks(&remote, "pw-0x9");

    // The library says the same, and the local copies are left as the tasks wrote them.
    let secrets = SecretValues::of_checkout(&a).unwrap();
    let pushed = git_ref::push(&a, &place(), &secrets).unwrap();
    let refused: Vec<&String> = pushed.refused.iter().map(|(f, _)| f).collect();
    let mut expected: Vec<&String> = leaky.iter().collect();
    expected.sort();
    assert_eq!(refused, expected);
    assert!(pushed.added.is_empty());
    for name in &leaky {
        assert!(a.runs_dir().join(name).exists());
    }
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
    // So does a change to ops/deploy.toml alone: the image does not contain it (the
    // Dockerfile copies the manifests, backend/src, the migrations and build.rs), so pointing
    // an environment at another URL, e.g. the local Fly's, rebuilds nothing.
    std::fs::create_dir_all(b.path("ops")).unwrap();
    std::fs::write(
        b.path("ops/deploy.toml"),
        "[environments.staging]\napp = \"app-staging\"\nurl = \"http://127.0.0.1:39001\"\n\
         env_file = \"env/.env.fly.staging\"\ntemplate = \"env/.env.fly.staging.template\"\n",
    )
    .unwrap();
    git(b.root(), &["add", "ops/deploy.toml"]);
    git(b.root(), &["commit", "-qm", "config"]);
    let config = report::context(&b, &options, now, b.git_state().as_ref()).unwrap();
    assert_eq!(
        config.smoke.provenance.as_ref().map(|p| p.stale),
        Some(false),
        "a deploy.toml change is not a deployable input"
    );
    std::fs::write(b.path("backend/src/lib.rs"), "// changed\n").unwrap();
    git(b.root(), &["commit", "-qam", "backend"]);
    let backend = report::context(&b, &options, now, b.git_state().as_ref()).unwrap();
    assert_eq!(
        backend.smoke.provenance.as_ref().map(|p| p.stale),
        Some(true)
    );
}

/// Puts `files` (name, bytes) under `runs/` on the remote's records ref, as a hostile or
/// broken pusher could, without going through `records push`.
fn put_on_ref(remote: &Remote, files: &[(&str, Vec<u8>)]) {
    let scratch = remote.dir.path().join("hostile");
    std::fs::create_dir_all(scratch.join("runs")).unwrap();
    for (name, bytes) in files {
        std::fs::write(scratch.join("runs").join(name), bytes).unwrap();
    }
    git(&scratch, &["init", "-q"]);
    git(&scratch, &["add", "-A"]);
    git(&scratch, &["commit", "-qm", "records"]);
    let url = remote.url();
    git(
        &scratch,
        &[
            "push",
            "-q",
            url.to_str().unwrap(),
            "HEAD:refs/heads/xtask-records",
        ],
    );
}

/// A record over the read cap, or not a record at all, is skipped and named by pull, so
/// `report` and `status` keep working after it.
#[test]
fn pull_skips_and_names_oversize_and_malformed_records() {
    let remote = Remote::new();
    let a = remote.clone("a");
    let good_name = record(&a, "smoke", "local", serde_json::json!({"n": 1}));
    let good = std::fs::read(a.runs_dir().join(&good_name)).unwrap();
    // A valid record padded past the cap (it compresses to almost nothing in git).
    let mut big: serde_json::Value = serde_json::from_slice(&good).unwrap();
    big["result"]["padding"] = "x".repeat(xtask::files::RECORD_LIMIT as usize).into();
    let big = serde_json::to_vec(&big).unwrap();
    let wrong_schema = br#"{"schema_version": 2, "task": "smoke"}"#.to_vec();
    put_on_ref(
        &remote,
        &[
            (good_name.as_str(), good),
            ("20300101T000000.000Z-smoke-local-big.json", big),
            ("20300101T000000.000Z-smoke-local-schema.json", wrong_schema),
            (
                "20300101T000000.000Z-smoke-local-text.json",
                b"not json".to_vec(),
            ),
        ],
    );
    let b = remote.clone("b");
    let pulled = git_ref::pull(&b, &place()).unwrap();
    assert_eq!(pulled.added, vec![good_name.clone()]);
    assert_eq!(
        pulled.oversize,
        vec!["20300101T000000.000Z-smoke-local-big.json".to_string()]
    );
    assert_eq!(
        pulled.skipped,
        vec![
            "20300101T000000.000Z-smoke-local-schema.json".to_string(),
            "20300101T000000.000Z-smoke-local-text.json".to_string(),
        ]
    );
    assert_eq!(pulled.skipped_count(), 3);
    assert_eq!(local_names(&b), vec![good_name]);
    xtask::record::load_all(&b).expect("status and report can read every pulled record");

    // The command says how many and which.
    std::fs::remove_dir_all(b.runs_dir()).unwrap();
    let output = Command::new(env!("CARGO_BIN_EXE_xtask"))
        .args(["records", "pull"])
        .current_dir(b.root())
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert_eq!(output.status.code(), Some(0), "{stdout}");
    assert!(stdout.contains("skipped 3"), "{stdout}");
    assert!(stdout.contains("larger than the 16 MiB"), "{stdout}");
    assert!(stdout.contains("smoke-local-big.json"), "{stdout}");
    assert!(stdout.contains("smoke-local-text.json"), "{stdout}");
}

/// The key CI signs records with is a secret like the Fly token: a record that echoes it is
/// refused, and nothing of it reaches the shared ref.
#[test]
fn a_record_holding_the_signing_key_is_refused() {
    const KEY: &str = "records-signing-key-0f3c9a7e5b1d2468ace0";
    let remote = Remote::new();
    let a = remote.clone("a");
    let leaky = record(
        &a,
        "smoke",
        "staging",
        serde_json::json!({ "problems": [format!("signed with {KEY}")] }),
    );
    let output = Command::new(env!("CARGO_BIN_EXE_xtask"))
        .args(["records", "push"])
        .current_dir(a.root())
        .env("RECORDS_SIGNING_KEY", KEY)
        .output()
        .unwrap();
    let text = stdout_and_stderr(&output);
    assert_eq!(output.status.code(), Some(1), "{text}");
    assert!(
        text.contains(&format!("refused target/xtask/runs/{leaky}"))
            && text.contains("RECORDS_SIGNING_KEY in the environment"),
        "{text}"
    );
    assert!(!text.contains(KEY), "the key was printed: {text}");
}

/// A deploy record as saved before the rollout was one embedded type: every rollout field
/// at the top level, the rollback's too, and no `after`/`verification` (older still).
const FLAT_RECORD: &str = r#"{
    "app": "a", "strategy": "rolling", "predeploy": "pass", "fly_user": null,
    "release": {"version": 7, "image_ref": "registry.fly.io/a:bbbbbbb", "status": "complete"},
    "readiness": "pass", "smoke": "fail", "rollback_target": null,
    "rollback_command": "cargo xtask rollback --env staging --to registry.fly.io/a:aaaaaaa",
    "rolled_back": {"app": "a", "from": null, "to_image": "registry.fly.io/a:aaaaaaa",
                    "to_version": 5, "readiness": "pass", "smoke": "pass", "problems": []},
    "problems": ["smoke fails against the new release"]
}"#;

#[test]
fn records_keep_the_rollout_fields_at_the_top_level() {
    let result: xtask::deploy::DeployResult = serde_json::from_str(FLAT_RECORD).unwrap();
    assert_eq!(result.rollout.release.as_ref().map(|r| r.version), Some(7));
    assert_eq!(result.rollout.smoke, Some(xtask::verdict::Verdict::Fail));
    assert!(result.rollout.rollback_command.is_some());
    let rolled = result.rollout.rolled_back.as_ref().unwrap();
    assert_eq!(
        rolled.rollout.readiness,
        Some(xtask::verdict::Verdict::Pass)
    );
    assert_eq!(rolled.to_version, Some(5));

    let written = serde_json::to_value(&result).unwrap();
    for key in [
        "release",
        "readiness",
        "smoke",
        "rollback_command",
        "rolled_back",
        "after",
        "verification",
        "problems",
    ] {
        assert!(written.get(key).is_some(), "{key} missing in {written}");
    }
    assert!(written.get("rollout").is_none(), "{written}");
    assert_eq!(written["rolled_back"]["smoke"], "pass", "{written}");
}
