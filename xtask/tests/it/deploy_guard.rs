//! The deploy workflow's guard: `.github/workflows/deploy.yml` holds FLY_API_TOKEN and a write
//! token, and `workflow_run` starts it after any CI run, including a fork's pull request whose
//! branch happens to be called `main`. `.ci/deploy-allowed` decides from the event payload;
//! these tests feed it payloads shaped like GitHub's (octokit/webhooks
//! payload-examples/api.github.com/workflow_run/completed.with-pull-requests.payload.json) and
//! check that deploy.yml only deploys through it.

use std::path::{Path, PathBuf};
use std::process::Command;

use serde_json::{Value, json};

const REPOSITORY: &str = "sist/cabanas";
const TESTED: &str = "3484a3fb816e0859fd6e1cea078d76385ff50625";

fn workspace() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .unwrap()
        .to_path_buf()
}

/// A `workflow_run` `completed` payload for a CI run of `head_repository` on `head_branch`.
fn workflow_run(event: &str, head_repository: &str, head_branch: &str, conclusion: &str) -> Value {
    let repo = |full_name: &str| {
        json!({
            "id": 300029405,
            "name": full_name.split('/').nth(1),
            "full_name": full_name,
            "fork": full_name != REPOSITORY,
            "html_url": format!("https://github.com/{full_name}"),
            "owner": { "login": full_name.split('/').next(), "type": "User" },
            "private": false,
        })
    };
    let pull_requests = if event == "pull_request" {
        json!([{ "number": 7, "head": { "ref": head_branch, "sha": TESTED } }])
    } else {
        json!([])
    };
    json!({
        "action": "completed",
        "workflow": { "id": 2823525, "name": "ci", "path": ".github/workflows/ci.yml" },
        "workflow_run": {
            "id": 289782451,
            "name": "ci",
            "event": event,
            "status": "completed",
            "conclusion": conclusion,
            "head_branch": head_branch,
            "head_sha": TESTED,
            "head_commit": { "id": TESTED, "message": "a change" },
            "head_repository": repo(head_repository),
            "repository": repo(REPOSITORY),
            "pull_requests": pull_requests,
            "run_attempt": 1,
        },
        "repository": repo(REPOSITORY),
        "sender": { "login": "someone", "type": "User" },
    })
}

/// What the guard decided: (allowed, sha, what it printed).
struct Decision {
    allowed: String,
    sha: String,
    said: String,
}

fn decide(event_name: &str, event: &Value, git_ref: &str) -> Decision {
    let dir = tempfile::tempdir().unwrap();
    let event_path = dir.path().join("event.json");
    std::fs::write(&event_path, serde_json::to_vec(event).unwrap()).unwrap();
    let output_path = dir.path().join("output");
    let output = Command::new("python3")
        .arg(workspace().join(".ci/deploy-allowed"))
        .env("GITHUB_EVENT_NAME", event_name)
        .env("GITHUB_EVENT_PATH", &event_path)
        .env("GITHUB_REPOSITORY", REPOSITORY)
        .env("GITHUB_REF", git_ref)
        .env("GITHUB_SHA", "0123456789abcdef0123456789abcdef01234567")
        .env("GITHUB_OUTPUT", &output_path)
        .output()
        .expect("python3 runs .ci/deploy-allowed (.ci/install needs python3 too)");
    let said = String::from_utf8_lossy(&output.stdout).into_owned()
        + &String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(0), "{said}");
    let written = std::fs::read_to_string(&output_path).unwrap_or_default();
    let field = |name: &str| {
        written
            .lines()
            .find_map(|l| l.strip_prefix(&format!("{name}=")))
            .unwrap_or_else(|| panic!("no {name}= in $GITHUB_OUTPUT: {written:?}\n{said}"))
            .to_string()
    };
    Decision {
        allowed: field("allowed"),
        sha: field("sha"),
        said,
    }
}

#[test]
fn a_forks_pull_request_from_a_branch_named_main_is_not_deployed() {
    let event = workflow_run("pull_request", "attacker/cabanas", "main", "success");
    let decision = decide("workflow_run", &event, "refs/heads/main");
    assert_eq!(decision.allowed, "false", "{}", decision.said);
    assert_eq!(decision.sha, "");
    assert!(decision.said.contains("no deploy"), "{}", decision.said);
}

#[test]
fn a_green_push_to_this_repositorys_main_deploys_the_commit_ci_tested() {
    let event = workflow_run("push", REPOSITORY, "main", "success");
    let decision = decide("workflow_run", &event, "refs/heads/main");
    assert_eq!(decision.allowed, "true", "{}", decision.said);
    assert_eq!(decision.sha, TESTED);
}

/// Each condition on its own refuses: none of them is redundant with another.
#[test]
fn every_condition_of_the_guard_refuses_on_its_own() {
    let cases = [
        (
            "failed CI",
            workflow_run("push", REPOSITORY, "main", "failure"),
        ),
        (
            "a pull request of this repository",
            workflow_run("pull_request", REPOSITORY, "main", "success"),
        ),
        (
            "a fork's push",
            workflow_run("push", "attacker/cabanas", "main", "success"),
        ),
        (
            "another branch",
            workflow_run("push", REPOSITORY, "feature", "success"),
        ),
    ];
    for (what, event) in cases {
        let decision = decide("workflow_run", &event, "refs/heads/main");
        assert_eq!(decision.allowed, "false", "{what}: {}", decision.said);
    }
    let mut no_repository = workflow_run("push", REPOSITORY, "main", "success");
    no_repository["workflow_run"]["head_repository"] = Value::Null;
    assert_eq!(
        decide("workflow_run", &no_repository, "refs/heads/main").allowed,
        "false"
    );
    let mut bad_sha = workflow_run("push", REPOSITORY, "main", "success");
    bad_sha["workflow_run"]["head_sha"] = json!("main; curl evil");
    assert_eq!(
        decide("workflow_run", &bad_sha, "refs/heads/main").allowed,
        "false"
    );
}

#[test]
fn a_manual_deploy_runs_from_main_only() {
    let dispatch = json!({ "inputs": {}, "ref": "refs/heads/main", "repository": { "full_name": REPOSITORY } });
    let main = decide("workflow_dispatch", &dispatch, "refs/heads/main");
    assert_eq!(main.allowed, "true", "{}", main.said);
    assert_eq!(main.sha, "0123456789abcdef0123456789abcdef01234567");
    let branch = decide("workflow_dispatch", &dispatch, "refs/heads/experiment");
    assert_eq!(branch.allowed, "false", "{}", branch.said);
    let other = decide("push", &dispatch, "refs/heads/main");
    assert_eq!(other.allowed, "false", "{}", other.said);
}

/// The jobs of a workflow as (name, lines): the keys two spaces in under `jobs:`.
fn jobs(text: &str) -> Vec<(String, Vec<String>)> {
    let mut jobs: Vec<(String, Vec<String>)> = Vec::new();
    let mut in_jobs = false;
    for line in text.lines() {
        if !line.starts_with(' ') && !line.trim().is_empty() {
            in_jobs = line.trim_end() == "jobs:";
            continue;
        }
        if !in_jobs {
            continue;
        }
        let is_key =
            line.starts_with("  ") && !line.starts_with("   ") && line.trim_end().ends_with(':');
        if is_key && !line.trim_start().starts_with('#') {
            jobs.push((line.trim().trim_end_matches(':').to_string(), Vec::new()));
        } else if let Some((_, lines)) = jobs.last_mut() {
            lines.push(line.trim().to_string());
        }
    }
    jobs
}

#[test]
fn deploy_yml_runs_secrets_only_behind_the_guard_on_the_commit_it_allowed() {
    let text = std::fs::read_to_string(workspace().join(".github/workflows/deploy.yml")).unwrap();
    let jobs = jobs(&text);
    let (_, guard) = jobs
        .iter()
        .find(|(name, _)| name == "guard")
        .expect("deploy.yml has a `guard` job");
    assert!(
        guard.iter().any(|l| l == "run: python3 .ci/deploy-allowed"),
        "{guard:?}"
    );
    assert!(
        !guard.iter().any(|l| l.contains("secrets.")),
        "the guard needs no secret"
    );
    assert!(
        !guard.iter().any(|l| l.starts_with("ref:")),
        "the guard runs main's copy of itself, never the triggering run's"
    );
    let privileged: Vec<&(String, Vec<String>)> = jobs
        .iter()
        .filter(|(_, lines)| lines.iter().any(|l| l.contains("secrets.")))
        .collect();
    assert!(
        !privileged.is_empty(),
        "deploy.yml uses the deploy token somewhere"
    );
    for (name, lines) in privileged {
        assert!(
            lines.iter().any(|l| l == "needs: guard"),
            "{name} must need the guard"
        );
        assert!(
            lines
                .iter()
                .any(|l| l == "if: needs.guard.outputs.allowed == 'true'"),
            "{name} must run only when the guard allows"
        );
        let refs: Vec<&String> = lines.iter().filter(|l| l.starts_with("ref:")).collect();
        let checkouts = lines
            .iter()
            .filter(|l| l.contains("actions/checkout@"))
            .count();
        assert_eq!(
            refs.len(),
            checkouts,
            "{name}: every checkout names its commit"
        );
        for r in refs {
            assert_eq!(r, "ref: ${{ needs.guard.outputs.sha }}", "{name}");
        }
    }
}
