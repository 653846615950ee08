//! predeploy's `ci` check audits `.github/workflows` with zizmor and actionlint: findings fail
//! with the `path:line` the linter blames, a missing linter is a loud warning locally and a
//! failure under `CI`. The linters here are fakes that print what the real ones print
//! (zizmor's JSON, actionlint's `path:line:col: message [kind]`); the real ones run over this
//! repository's workflows in `predeploy::the_project_repository_passes` under CI.

use std::path::{Path, PathBuf};
use std::process::Command;

use xtask::check::CheckResult;
use xtask::predeploy::{ACTIONLINT_ENV, Options, WorkflowLinters, ZIZMOR_ENV, evaluate};
use xtask::repo::Repo;
use xtask::verdict::Verdict;

const CI_YML: &str = "on: push\npermissions: {}\njobs:\n  test:\n    runs-on: ubuntu-latest\n    \
                      steps:\n      - uses: actions/checkout@v4\n      - run: cargo xtask test\n";

/// zizmor's JSON (v1) for one unpinned action at line 7 (row 6, 0-based).
const ZIZMOR_FINDING: &str = r#"[{"ident":"unpinned-uses","desc":"unpinned action reference","url":"https://docs.zizmor.sh/audits/#unpinned-uses","determinations":{"confidence":"High","severity":"High","persona":"Regular"},"locations":[{"symbolic":{"key":{"Local":{"verbatim_path":".github/workflows/ci.yml"}},"annotation":"action is not pinned to a hash","route":{"route":[]},"feature_kind":"Normal","kind":"Primary"},"concrete":{"location":{"start_point":{"row":6,"column":14},"end_point":{"row":6,"column":33}},"feature":"uses: actions/checkout@v4","comments":[]}}],"ignored":false,"fixes":[]}]"#;

struct Stand {
    repo: tempfile::TempDir,
    tools: tempfile::TempDir,
}

fn stand() -> Stand {
    let workspace = Path::new(env!("CARGO_MANIFEST_DIR")).parent().unwrap();
    let stand = Stand {
        repo: tempfile::tempdir().unwrap(),
        tools: tempfile::tempdir().unwrap(),
    };
    let write = |path: &str, text: &str| {
        let full = stand.repo.path().join(path);
        std::fs::create_dir_all(full.parent().unwrap()).unwrap();
        std::fs::write(full, text).unwrap();
    };
    write(
        "ops/deploy.toml",
        &std::fs::read_to_string(workspace.join("ops/deploy.toml")).unwrap(),
    );
    write(".github/workflows/ci.yml", CI_YML);
    write("Cargo.toml", "[workspace]\nmembers = []\n");
    stand
}

impl Stand {
    /// An executable shell script in the tools directory.
    fn tool(&self, name: &str, script: &str) -> PathBuf {
        use std::os::unix::fs::PermissionsExt;
        let path = self.tools.path().join(name);
        std::fs::write(&path, format!("#!/bin/sh\n{script}\n")).unwrap();
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).unwrap();
        path
    }

    fn clean_zizmor(&self) -> PathBuf {
        self.tool("zizmor", "echo '[]'")
    }

    fn clean_actionlint(&self) -> PathBuf {
        self.tool("actionlint", "echo 'Checking 1 workflow file(s)...'")
    }

    fn ci_check(&self, linters: WorkflowLinters) -> CheckResult {
        let options = Options {
            workflow_linters: Some(linters),
            ..Options::default()
        };
        let report = evaluate(&Repo::at(self.repo.path()), &options).unwrap();
        report.check("ci").unwrap().clone()
    }
}

fn failures(check: &CheckResult) -> Vec<String> {
    check
        .evidence
        .iter()
        .filter(|e| e.verdict == Verdict::Fail)
        .map(|e| e.located())
        .collect()
}

#[test]
fn clean_linters_pass() {
    let stand = stand();
    let check = stand.ci_check(WorkflowLinters {
        zizmor: Some(stand.clean_zizmor()),
        actionlint: Some(stand.clean_actionlint()),
        required: true,
    });
    assert_eq!(check.verdict, Verdict::Pass, "{check:#?}");
    let said: Vec<&str> = check.evidence.iter().map(|e| e.message.as_str()).collect();
    assert!(said.contains(&"zizmor: no findings"), "{said:?}");
    assert!(said.contains(&"actionlint: no findings"), "{said:?}");
}

#[test]
fn a_zizmor_finding_fails_at_its_line() {
    let stand = stand();
    let zizmor = stand.tool("zizmor", &format!("cat <<'EOF'\n{ZIZMOR_FINDING}\nEOF"));
    let check = stand.ci_check(WorkflowLinters {
        zizmor: Some(zizmor),
        actionlint: Some(stand.clean_actionlint()),
        required: false,
    });
    assert_eq!(check.verdict, Verdict::Fail);
    assert_eq!(
        failures(&check),
        [
            ".github/workflows/ci.yml:7: zizmor unpinned-uses (High): unpinned action reference: \
          action is not pinned to a hash"
        ]
    );
}

#[test]
fn an_actionlint_finding_fails_at_its_line() {
    let stand = stand();
    let actionlint = stand.tool(
        "actionlint",
        "echo '.github/workflows/ci.yml:8:14: shellcheck reported issue SC2086 [shellcheck]'\n\
         echo '   |'\necho '8 |       - run: cargo xtask test'\nexit 1",
    );
    let check = stand.ci_check(WorkflowLinters {
        zizmor: Some(stand.clean_zizmor()),
        actionlint: Some(actionlint),
        required: false,
    });
    assert_eq!(
        failures(&check),
        [".github/workflows/ci.yml:8: actionlint: shellcheck reported issue SC2086 [shellcheck]"]
    );
}

#[test]
fn a_linter_that_cannot_run_fails() {
    let stand = stand();
    let broken = stand.tool("zizmor", "echo 'fatal: cannot parse' >&2; exit 2");
    let check = stand.ci_check(WorkflowLinters {
        zizmor: Some(broken),
        actionlint: Some(stand.clean_actionlint()),
        required: false,
    });
    let failures = failures(&check);
    assert_eq!(failures.len(), 1, "{failures:?}");
    assert!(
        failures[0].contains("could not audit") && failures[0].contains("cannot parse"),
        "{failures:?}"
    );
}

#[test]
fn a_missing_linter_is_a_loud_skip_locally_and_fails_under_ci() {
    let stand = stand();
    let local = stand.ci_check(WorkflowLinters {
        zizmor: None,
        actionlint: Some(stand.clean_actionlint()),
        required: false,
    });
    // A fresh clone without the linters is not in a state worth a warning: PASS, with the
    // skip named in the evidence.
    assert_eq!(local.verdict, Verdict::Pass, "{local:#?}");
    assert!(
        local
            .evidence
            .iter()
            .any(|e| e.verdict == Verdict::Skip && e.message.contains("SKIPPED: zizmor")),
        "{local:#?}"
    );
    assert!(
        local.summary().contains("SKIPPED: zizmor is not installed"),
        "{}",
        local.summary()
    );
    let ci = stand.ci_check(WorkflowLinters {
        zizmor: Some(stand.clean_zizmor()),
        actionlint: None,
        required: true,
    });
    assert_eq!(ci.verdict, Verdict::Fail);
    assert!(
        failures(&ci)[0].contains("actionlint is not installed"),
        "{ci:#?}"
    );
}

/// The binary finds the linters through $ZIZMOR / $ACTIONLINT and reads `CI` from the
/// environment, as the workflows and `.ci/run` set them.
#[test]
fn the_binary_fails_under_ci_when_a_linter_is_missing() {
    let stand = stand();
    let run = |zizmor: &Path, ci: Option<&str>| {
        let mut command = Command::new(env!("CARGO_BIN_EXE_xtask"));
        command
            .args(["predeploy", "--json"])
            .current_dir(stand.repo.path())
            .env_remove("GITHUB_STEP_SUMMARY")
            .env(ZIZMOR_ENV, zizmor)
            .env(ACTIONLINT_ENV, stand.clean_actionlint());
        match ci {
            Some(value) => command.env("CI", value),
            None => command.env_remove("CI"),
        };
        let output = command.output().unwrap();
        let record: serde_json::Value = serde_json::from_slice(&output.stdout)
            .unwrap_or_else(|e| panic!("{e}: {}", String::from_utf8_lossy(&output.stderr)));
        let ci_check = record["result"]["checks"]
            .as_array()
            .unwrap()
            .iter()
            .find(|c| c["id"] == "ci")
            .unwrap()
            .clone();
        (
            output.status.code(),
            ci_check["verdict"].as_str().unwrap().to_string(),
        )
    };
    let missing = stand.tools.path().join("no-zizmor-here");
    assert_eq!(run(&missing, Some("true")), (Some(1), "fail".into()));
    assert_eq!(run(&missing, None).1, "pass", "a loud skip locally");
    assert_eq!(run(&stand.clean_zizmor(), Some("true")).1, "pass");
}

/// Every action of this repository's workflows is pinned to a full commit, with the tag it was
/// read from beside it (zizmor's `unpinned-uses` also holds them to it, under CI).
#[test]
fn every_action_in_this_repository_is_pinned_by_commit() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../.github/workflows");
    let mut seen = 0;
    for entry in std::fs::read_dir(&dir).unwrap() {
        let path = entry.unwrap().path();
        let text = std::fs::read_to_string(&path).unwrap();
        for (index, line) in text.lines().enumerate() {
            let Some(uses) = line
                .trim_start()
                .trim_start_matches("- ")
                .strip_prefix("uses: ")
            else {
                continue;
            };
            seen += 1;
            let (reference, comment) = uses.split_once(" # ").unwrap_or((uses, ""));
            let commit = reference.rsplit_once('@').map_or("", |(_, c)| c);
            assert!(
                commit.len() == 40
                    && commit.chars().all(|c| c.is_ascii_hexdigit())
                    && !comment.trim().is_empty(),
                "{}:{}: `{uses}` is not `owner/repo@<40-hex commit> # <tag>`",
                path.display(),
                index + 1
            );
        }
    }
    assert!(seen > 0, "no `uses:` found in {}", dir.display());
}
