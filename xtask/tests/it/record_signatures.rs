//! Signed records: what CI pushes is signed (`RECORDS_SIGNING_KEY`), `records pull` counts
//! what verifies, and production's gate (`promote`, `report --env production --check`) uses
//! only records CI signed. A record edited after signing is refused by promote and flagged by
//! every report.

// Shared with the report tests, which use all of it.
#[allow(dead_code)]
use crate::report_fixtures;

use std::path::Path;
use std::process::Command;

use crate::support::git;
use report_fixtures::{Scenario, staging};
use xtask::promote::StagingEvidence;
use xtask::record::RunClock;
use xtask::records::git_ref::{self, Place};
use xtask::records::redact::SecretValues;
use xtask::records::screen::Trust;
use xtask::records::signature::{self, SignedBy, Signer, SigningKey};
use xtask::repo::Repo;
use xtask::report::{self, Options, Overall};
use xtask::verdict::Verdict;

const KEY: &str = "ci-signing-key-for-tests-0123456789abcdef";

fn key() -> SigningKey {
    SigningKey::new(KEY).unwrap()
}

fn deploy_run() -> SignedBy {
    SignedBy {
        workflow: "deploy".into(),
        run_id: Some("4242".into()),
        run_attempt: Some("1".into()),
        repository: Some("sist/cabanas".into()),
        commit: None,
    }
}

/// Signs every record in the runs directory as CI's `records push` would have.
fn sign_all(repo: &Repo) {
    for entry in std::fs::read_dir(repo.runs_dir()).unwrap() {
        let path = entry.unwrap().path();
        let name = path.file_name().unwrap().to_string_lossy().into_owned();
        if !name.ends_with(".json") {
            continue;
        }
        let bytes = std::fs::read(&path).unwrap();
        let (sidecar, text) = signature::sign(&key(), &name, &bytes, deploy_run());
        std::fs::write(repo.runs_dir().join(sidecar), text).unwrap();
    }
}

/// The newest record file of `task` in the runs directory.
fn newest(repo: &Repo, task: &str) -> std::path::PathBuf {
    let mut found: Vec<_> = std::fs::read_dir(repo.runs_dir())
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| {
            let name = p.file_name().unwrap().to_string_lossy();
            name.contains(&format!("-{task}-")) && name.ends_with(".json")
        })
        .collect();
    found.sort();
    found.pop().expect("a record of the task")
}

fn file_name(path: &Path) -> String {
    path.file_name().unwrap().to_string_lossy().into_owned()
}

fn gate_evidence(repo: &Repo, trust: &Trust) -> (report::Rendered, StagingEvidence) {
    let rendered = report::render_trusting(
        repo,
        &Options {
            env: Some("staging".into()),
        },
        trust,
        report_fixtures::now(),
        Some(&report_fixtures::head()),
    )
    .unwrap();
    let evidence = StagingEvidence::from_report(&rendered);
    (rendered, evidence)
}

fn gate() -> Trust {
    Trust {
        key: Some(key()),
        signed_only: true,
    }
}

/// Staging GO with a complete checklist, every record signed by CI.
fn signed_go() -> report_fixtures::Fixture {
    let go = staging(Scenario::default());
    std::fs::write(
        go.repo.path("ops/PROD_READINESS_CHECKLIST.md"),
        "# Production readiness\n\n- [x] everything\n",
    )
    .unwrap();
    sign_all(&go.repo);
    go
}

#[test]
fn records_signed_by_ci_hold_the_production_gate() {
    let go = signed_go();
    let (rendered, evidence) = gate_evidence(&go.repo, &gate());
    assert_eq!(
        rendered.overall,
        Overall::Go,
        "{:?}",
        rendered.context.verdict
    );
    assert!(evidence.missing().is_empty(), "{:?}", evidence.missing());
    assert!(
        evidence.ignored_records.is_empty(),
        "{:?}",
        evidence.ignored_records
    );
    assert_eq!(rendered.context.provenance.failed, []);
    assert!(rendered.context.provenance.verified > 20);
}

#[test]
fn a_record_edited_after_signing_is_refused_by_promote_and_flagged_by_the_report() {
    let go = signed_go();
    let smoke = newest(&go.repo, "smoke");
    let text = std::fs::read_to_string(&smoke).unwrap();
    // Someone with push access lowers the measured duration: valid JSON, new bytes.
    let edited = text.replacen("\"duration_ms\": 1234", "\"duration_ms\": 1000", 1);
    assert_ne!(edited, text);
    std::fs::write(&smoke, edited).unwrap();
    let file = file_name(&smoke);

    let (rendered, evidence) = gate_evidence(&go.repo, &gate());
    assert_eq!(rendered.overall, Overall::NoGo);
    let refused = evidence.missing().join("\n");
    assert!(
        refused.contains(&file) && refused.contains("signature fails"),
        "{refused}"
    );
    assert!(
        evidence.ignored_records.iter().any(|w| w.contains(&file)),
        "{evidence:?}"
    );

    // Any report, gate or not: a WARN names it and its numbers are not used.
    let (rendered, _) = evidence_default(&go.repo);
    let warnings = rendered.context.verdict.warnings.join("\n");
    assert!(
        warnings.contains(&format!("{file}: its signature fails")),
        "{warnings}"
    );
    assert!(
        rendered.markdown.contains(&file),
        "the report shows the WARN"
    );
    assert_eq!(rendered.context.provenance.failed.len(), 1);
}

fn evidence_default(repo: &Repo) -> (report::Rendered, StagingEvidence) {
    gate_evidence(
        repo,
        &Trust {
            key: Some(key()),
            signed_only: false,
        },
    )
}

#[test]
fn local_runs_count_locally_and_are_named_but_ignored_by_the_production_gate() {
    let go = staging(Scenario::default());
    // Unsigned (a developer's machine): the ordinary report uses them...
    let (rendered, _) = evidence_default(&go.repo);
    assert_eq!(
        rendered.overall,
        Overall::Go,
        "{:?}",
        rendered.context.verdict
    );
    assert!(rendered.context.provenance.local > 20);
    // ...production's gate does not, and says which it ignored.
    let (rendered, evidence) = gate_evidence(&go.repo, &gate());
    assert_ne!(rendered.overall, Overall::Go);
    assert!(!evidence.missing().is_empty());
    let smoke = file_name(&newest(&go.repo, "smoke"));
    let ignored = evidence.ignored_records.join("\n");
    assert!(
        ignored.contains("record(s) not signed by CI are not used here"),
        "{ignored}"
    );
    assert!(
        rendered.context.provenance.unsigned.contains(&smoke),
        "{ignored}"
    );
    // Without the key nothing can be verified: refused, saying why.
    let signed = signed_go();
    let (rendered, evidence) = gate_evidence(
        &signed.repo,
        &Trust {
            key: None,
            signed_only: true,
        },
    );
    assert_eq!(rendered.overall, Overall::NoGo);
    assert!(
        evidence.missing().join(" ").contains(signature::KEY_ENV),
        "{:?}",
        evidence.missing()
    );
}

/// `report --env production --check` reads the key from the environment and names the record
/// whose signature fails.
#[test]
fn the_report_binary_names_a_tampered_record() {
    let go = signed_go();
    let overlap = newest(&go.repo, "overlap");
    let text = std::fs::read_to_string(&overlap).unwrap();
    std::fs::write(
        &overlap,
        text.replacen("\"duration_ms\": 1234", "\"duration_ms\": 99", 1),
    )
    .unwrap();
    let run = |args: &[&str]| {
        let output = Command::new(env!("CARGO_BIN_EXE_xtask"))
            .arg("report")
            .args(args)
            .current_dir(go.repo.root())
            .env(signature::KEY_ENV, KEY)
            .env_remove("GITHUB_STEP_SUMMARY")
            .output()
            .unwrap();
        let said = String::from_utf8_lossy(&output.stdout).into_owned()
            + &String::from_utf8_lossy(&output.stderr);
        (output.status.code(), said)
    };
    let file = file_name(&overlap);
    let (code, said) = run(&["--env", "production", "--check"]);
    assert_eq!(code, Some(1), "{said}");
    assert!(
        said.contains(&format!("WARN: {file}: its signature fails")),
        "{said}"
    );
    assert!(
        said.contains("signature fails (edited after CI signed them?)"),
        "{said}"
    );
    let (code, said) = run(&["--env", "staging"]);
    assert_eq!(code, Some(0), "{said}");
    assert!(
        said.contains(&format!("WARN: {file}: its signature fails")),
        "{said}"
    );
}

fn save(repo: &Repo, task: &'static str) -> String {
    let path = RunClock::start(task)
        .finish(repo, "staging", Verdict::Pass, serde_json::json!({"n": 1}))
        .save(repo)
        .unwrap();
    file_name(&path)
}

#[test]
fn records_pull_reports_verified_unsigned_and_failed_counts() {
    let dir = tempfile::tempdir().unwrap();
    let seed = dir.path().join("seed");
    std::fs::create_dir_all(&seed).unwrap();
    std::fs::write(seed.join("Cargo.toml"), "[workspace]\nmembers = []\n").unwrap();
    std::fs::write(seed.join(".gitignore"), "/target\n").unwrap();
    git(dir.path(), &["init", "-q", "--bare", "remote.git"]);
    git(&seed, &["init", "-q"]);
    git(&seed, &["add", "-A"]);
    git(&seed, &["commit", "-qm", "seed"]);
    git(
        &seed,
        &["push", "-q", "../remote.git", "HEAD:refs/heads/main"],
    );
    git(dir.path(), &["clone", "-q", "remote.git", "ci"]);
    git(dir.path(), &["clone", "-q", "remote.git", "reviewer"]);
    let ci = Repo::at(dir.path().join("ci"));
    let place = Place::default();
    let none = SecretValues::default();
    let signer = |key: SigningKey| Signer {
        key,
        by: deploy_run(),
    };

    let signed = save(&ci, "deploy");
    let pushed = git_ref::push_signed(&ci, &place, &none, Some(&signer(key()))).unwrap();
    assert_eq!((pushed.added.len(), pushed.signed), (1, 1));
    let local = save(&ci, "smoke");
    git_ref::push(&ci, &place, &none).unwrap();
    // Signed with a key that is not the repository's (an old one): not verified.
    let other_key = save(&ci, "watch");
    let old = SigningKey::new("the-key-before-the-rotation-0123456789ab").unwrap();
    git_ref::push_signed(&ci, &place, &none, Some(&signer(old))).unwrap();
    // Signed by CI, then edited on the records branch by someone with push access.
    let forged = save(&ci, "overlap");
    git_ref::push_signed(&ci, &place, &none, Some(&signer(key()))).unwrap();
    git(
        dir.path(),
        &[
            "clone",
            "-q",
            "--branch",
            "xtask-records",
            "remote.git",
            "attacker",
        ],
    );
    let attacker = dir.path().join("attacker");
    let path = attacker.join("runs").join(&forged);
    let text = std::fs::read_to_string(&path).unwrap();
    std::fs::write(&path, text.replacen("\"n\": 1", "\"n\": 2", 1)).unwrap();
    git(&attacker, &["commit", "-qam", "better numbers"]);
    git(&attacker, &["push", "-q", "origin", "xtask-records"]);

    let output = Command::new(env!("CARGO_BIN_EXE_xtask"))
        .args(["records", "pull", "--json"])
        .current_dir(dir.path().join("reviewer"))
        .env(signature::KEY_ENV, KEY)
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(0), "{stderr}");
    let summary: serde_json::Value = serde_json::from_slice(&output.stdout).unwrap();
    let signatures = &summary["signatures"];
    assert_eq!(signatures["verified"], 1, "{summary}");
    assert_eq!(signatures["unsigned"], 1, "{summary}");
    assert_eq!(signatures["unverified"], 1, "{summary}");
    assert_eq!(signatures["failed"][0][0], forged.as_str(), "{summary}");
    assert!(
        stderr.contains("1 verified, 1 unsigned (local runs), 1 failed, 1 signed with another key"),
        "{stderr}"
    );
    assert!(stderr.contains(&format!("WARN: {forged}")), "{stderr}");

    // The pulled files keep their provenance on the reviewer's machine.
    let reviewer = Repo::at(dir.path().join("reviewer"));
    let provenance =
        |name: &str| signature::provenance(Some(&key()), &reviewer.runs_dir().join(name));
    assert_eq!(
        provenance(&signed),
        signature::Provenance::Verified(deploy_run())
    );
    assert_eq!(provenance(&local), signature::Provenance::Local);
    assert!(matches!(
        provenance(&forged),
        signature::Provenance::Failed(_)
    ));
    assert!(matches!(
        provenance(&other_key),
        signature::Provenance::Unverifiable(_)
    ));
}
