//! `predeploy` on fixture repositories: a minimal valid one passes, and every check is shown
//! able to fail, with the path:line it blames and the exit code of the binary.

use std::path::{Path, PathBuf};
use std::process::Command;

use xtask::predeploy::{
    ACTIONLINT_ENV, CheckResult, Options, PredeployReport, WorkflowLinters, ZIZMOR_ENV, evaluate,
};
use xtask::repo::Repo;
use xtask::verdict::Verdict;

/// A secret value that must never show up in any output.
const CANARY: &str = "canary-7f3b9c2e-JWT-k8q4w1z6x5v0n3m2";

const FILLED: &str = "# staging secrets\n\
DATABASE_URL=postgres://cabanas:pg-canary-pass-91@db.internal:5432/cabanas\n\
JWT_SECRET=canary-7f3b9c2e-JWT-k8q4w1z6x5v0n3m2\n\
ADMIN_ALLOWED_EMAILS=ana@example.org,bo@example.cl\n\
PRE_RESERVATION_TTL_MINUTES=30\n\
MERCADOPAGO_ACCESS_TOKEN=APP_USR-4821-k3J9xQ2mP8vL4nR7tY1wE6uI0oA5\n\
MERCADOPAGO_WEBHOOK_SECRET=9f2c7a1e5b3d8f0a6c4e2b9d7f1a3c5e\n\
WHATSAPP_ACCESS_TOKEN=EAAGm0PX4ZCpsBAk3J9xQ2mP8vL4nR7tY1wE6\n\
WHATSAPP_APP_SECRET=3b8e1f6a9c2d5e7f0a4b8c1d6e9f2a5b\n\
WHATSAPP_BUSINESS_ACCOUNT_ID=102290129340398\n\
WHATSAPP_PHONE_NUMBER_ID=106540352242922\n";

struct Fixture {
    dir: tempfile::TempDir,
    /// Workflow linters that find nothing (the `ci` check's own tests are in
    /// tests/it/workflow_lint.rs), outside the repository so they leave its tree clean.
    tools: tempfile::TempDir,
}

/// An executable shell script `name` in `dir`.
#[cfg(unix)]
fn fake_tool(dir: &Path, name: &str, script: &str) -> PathBuf {
    use std::os::unix::fs::PermissionsExt;
    let path = dir.join(name);
    std::fs::write(&path, format!("#!/bin/sh\n{script}\n")).unwrap();
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).unwrap();
    path
}

impl Fixture {
    /// A minimal repository that passes every check, committed.
    fn valid() -> Fixture {
        let fixture = Fixture {
            dir: tempfile::tempdir().unwrap(),
            tools: tempfile::tempdir().unwrap(),
        };
        fake_tool(fixture.tools.path(), "zizmor", "echo '[]'");
        fake_tool(fixture.tools.path(), "actionlint", "exit 0");
        let files: &[(&str, &str)] = &[
            ("Cargo.toml", "[workspace]\nmembers = []\n"),
            (".gitignore", include_str!("../../../.gitignore")),
            (".dockerignore", include_str!("../../../.dockerignore")),
            ("fly.toml", include_str!("../../../fly.toml")),
            (
                "fly.production.toml",
                include_str!("../../../fly.production.toml"),
            ),
            ("ops/deploy.toml", include_str!("../../../ops/deploy.toml")),
            (
                "backend/Dockerfile",
                include_str!("../../../backend/Dockerfile"),
            ),
            (
                "env/.env.fly.staging.template",
                include_str!("../../../env/.env.fly.staging.template"),
            ),
            (
                "env/.env.fly.production.template",
                include_str!("../../../env/.env.fly.production.template"),
            ),
            (
                "backend/migrations/postgres/0001_initial.sql",
                include_str!("../../../backend/migrations/postgres/0001_initial.sql"),
            ),
            (
                "backend/migrations/sqlite/0001_initial.sql",
                include_str!("../../../backend/migrations/sqlite/0001_initial.sql"),
            ),
            (
                "README.md",
                "# fixture\n\n```sh\ncargo xtask test\ncargo xtask predeploy --env staging --strict\n```\n",
            ),
            (
                ".github/workflows/ci.yml",
                "on: push\njobs:\n  test:\n    runs-on: ubuntu-latest\n    steps:\n      - run: cargo xtask test\n",
            ),
        ];
        for (path, text) in files {
            fixture.write(path, text);
        }
        fixture.write("env/.env.fly.staging", FILLED);
        fixture.chmod("env/.env.fly.staging", 0o600);
        fixture.git(&["init", "-q"]);
        fixture.git(&["config", "user.name", "Fixture"]);
        fixture.git(&["config", "user.email", "fixture@example.org"]);
        fixture.commit("fixture");
        fixture
    }

    fn root(&self) -> &Path {
        self.dir.path()
    }

    fn write(&self, path: &str, text: &str) {
        let full = self.root().join(path);
        std::fs::create_dir_all(full.parent().unwrap()).unwrap();
        std::fs::write(full, text).unwrap();
    }

    fn edit(&self, path: &str, from: &str, to: &str) {
        let text = std::fs::read_to_string(self.root().join(path)).unwrap();
        assert!(text.contains(from), "{path} lacks {from:?}");
        self.write(path, &text.replacen(from, to, 1));
    }

    #[cfg(unix)]
    fn chmod(&self, path: &str, mode: u32) {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(
            self.root().join(path),
            std::fs::Permissions::from_mode(mode),
        )
        .unwrap();
    }

    #[cfg(not(unix))]
    fn chmod(&self, _path: &str, _mode: u32) {}

    fn git(&self, args: &[&str]) {
        let status = Command::new("git")
            .args(args)
            .current_dir(self.root())
            .status()
            .unwrap();
        assert!(status.success(), "git {args:?}");
    }

    fn commit(&self, message: &str) {
        self.git(&["add", "-A"]);
        self.git(&["commit", "-q", "--allow-empty", "-m", message]);
    }

    fn linters(&self) -> WorkflowLinters {
        WorkflowLinters {
            zizmor: Some(self.tools.path().join("zizmor")),
            actionlint: Some(self.tools.path().join("actionlint")),
            required: true,
        }
    }

    /// Evaluates every environment and asserts check `id` fails blaming `location`.
    fn fails_at(&self, id: &str, location: &str) -> CheckResult {
        assert_fails_at(&self.evaluate(&all()), id, location)
    }

    fn evaluate(&self, options: &Options) -> PredeployReport {
        let mut options = options.clone();
        options
            .workflow_linters
            .get_or_insert_with(|| self.linters());
        options
            .command_line
            .get_or_insert(xtask::cli::documented_command);
        evaluate(&Repo::at(self.root()), &options).unwrap()
    }

    /// Runs the built binary with `predeploy --json` and returns (exit code, stdout, stderr).
    fn run(&self, extra: &[&str]) -> (i32, String, String) {
        let output = Command::new(env!("CARGO_BIN_EXE_xtask"))
            .arg("predeploy")
            .arg("--json")
            .args(extra)
            .current_dir(self.root())
            .env_remove("GITHUB_STEP_SUMMARY")
            .env(ZIZMOR_ENV, self.tools.path().join("zizmor"))
            .env(ACTIONLINT_ENV, self.tools.path().join("actionlint"))
            .output()
            .unwrap();
        (
            output.status.code().unwrap_or(-1),
            String::from_utf8_lossy(&output.stdout).into_owned(),
            String::from_utf8_lossy(&output.stderr).into_owned(),
        )
    }

    fn records(&self) -> Vec<PathBuf> {
        std::fs::read_dir(self.root().join("target/xtask/runs"))
            .map(|d| d.filter_map(Result::ok).map(|e| e.path()).collect())
            .unwrap_or_default()
    }
}

fn all() -> Options {
    Options::default()
}

/// Asserts the check failed and blames `location` (a `path:line` or `path` prefix).
fn assert_fails_at(report: &PredeployReport, id: &str, location: &str) -> CheckResult {
    let check = report
        .check(id)
        .unwrap_or_else(|| panic!("no check {id}"))
        .clone();
    assert_eq!(check.verdict, Verdict::Fail, "{check:#?}");
    assert_eq!(report.verdict, Verdict::Fail);
    assert!(
        check
            .evidence
            .iter()
            .any(|e| e.verdict == Verdict::Fail && e.location().starts_with(location)),
        "{id} does not blame {location}: {check:#?}"
    );
    assert!(check.fix.is_some(), "{check:#?}");
    check
}

/// Whether some evidence of `check` says `text`.
fn says(check: &CheckResult, text: &str) -> bool {
    check.evidence.iter().any(|e| e.message.contains(text))
}

/// Whether some evidence of `check` with `verdict` says `text`.
fn says_as(check: &CheckResult, verdict: Verdict, text: &str) -> bool {
    check
        .evidence
        .iter()
        .any(|e| e.verdict == verdict && e.message.contains(text))
}

/// The first evidence of `check` that failed.
fn first_failure(check: &CheckResult) -> &xtask::check::Evidence {
    check
        .evidence
        .iter()
        .find(|e| e.verdict == Verdict::Fail)
        .unwrap_or_else(|| panic!("no failure in {check:#?}"))
}

/// The default options narrowed to environment `env`.
fn for_env(env: &str) -> Options {
    Options {
        env: Some(env.into()),
        ..all()
    }
}

fn failures(report: &PredeployReport) -> Vec<&CheckResult> {
    report
        .checks
        .iter()
        .filter(|c| c.verdict == Verdict::Fail)
        .collect()
}

#[test]
fn the_valid_fixture_passes_every_check() {
    let fixture = Fixture::valid();
    let report = fixture.evaluate(&Options {
        env: Some("staging".into()),
        strict: true,
        workflow_linters: None,
        command_line: None,
    });
    assert!(failures(&report).is_empty(), "{report:#?}");
    assert_eq!(report.verdict, Verdict::Pass, "{report:#?}");
    let ids: Vec<&str> = report.checks.iter().map(|c| c.id.as_str()).collect();
    assert_eq!(
        ids,
        [
            "config",
            "fly_toml",
            "machines",
            "dockerfile",
            "migrations",
            "env",
            "secret_hygiene",
            "git",
            "docs_commands",
            "ci"
        ]
    );
}

#[test]
fn config_fails_on_an_incomplete_environment() {
    let fixture = Fixture::valid();
    fixture.edit(
        "ops/deploy.toml",
        "template = \"env/.env.fly.production.template\"",
        "template = \"env/missing.template\"",
    );
    fixture.fails_at("config", "ops/deploy.toml:61");
}

#[test]
fn config_fails_on_a_bad_environment_limit() {
    let fixture = Fixture::valid();
    fixture.edit(
        "ops/deploy.toml",
        "[environments.production.thresholds]\np99_ms = 5000.0",
        "[environments.production.thresholds]\np99_ms = -1.0",
    );
    let check = fixture.fails_at("config", "ops/deploy.toml:65");
    assert!(
        says(&check, "environments.production.thresholds.p99_ms"),
        "{check:#?}"
    );
}

#[test]
fn fly_toml_fails_without_a_release_command_or_readiness_check() {
    let fixture = Fixture::valid();
    fixture.edit("fly.toml", "release_command = \"cabanas migrate\"", "");
    fixture.edit(
        "fly.toml",
        "path = \"/api/v1/readyz\"",
        "path = \"/api/v1/healthz\"",
    );
    let check = fixture.fails_at("fly_toml", "fly.toml:");
    assert!(says(&check, "release_command"));
    assert!(says(&check, "readyz"));
}

#[test]
fn machines_fail_a_production_config_that_can_run_a_single_machine() {
    let fixture = Fixture::valid();
    let production = Options {
        env: Some("production".into()),
        ..all()
    };
    let report = fixture.evaluate(&production);
    assert_eq!(
        report.check("machines").unwrap().verdict,
        Verdict::Pass,
        "{report:#?}"
    );
    // Auto-stop on: min_machines_running counts the primary region only, which has one.
    fixture.edit(
        "fly.production.toml",
        "auto_stop_machines = \"off\"",
        "auto_stop_machines = \"stop\"",
    );
    let check = assert_fails_at(
        &fixture.evaluate(&production),
        "machines",
        "fly.production.toml:",
    );
    assert!(
        check
            .fix
            .as_deref()
            .unwrap()
            .contains("auto_stop_machines = \"off\"")
    );
    // Staging declares no machines: auto-stop is its to keep.
    let staging = fixture.evaluate(&for_env("staging"));
    assert_eq!(staging.check("machines").unwrap().verdict, Verdict::Pass);
}

#[test]
fn machines_fail_when_the_declared_regions_cannot_hold_min_running() {
    let fixture = Fixture::valid();
    fixture.edit(
        "ops/deploy.toml",
        "regions = { scl = 1, gru = 1 }",
        "regions = { gru = 1 }",
    );
    let report = fixture.evaluate(&for_env("production"));
    let check = assert_fails_at(&report, "machines", "ops/deploy.toml");
    assert!(says(&check, "primary_region scl"), "{check:#?}");
}

#[test]
fn fly_toml_reports_malformed_toml_with_its_line() {
    let fixture = Fixture::valid();
    fixture.edit(
        "fly.toml",
        "primary_region = \"scl\"",
        "primary_region = = \"scl\"",
    );
    let check = fixture.fails_at("fly_toml", "fly.toml:6");
    assert!(says_as(&check, Verdict::Fail, "column"), "{check:#?}");
}

#[test]
fn dockerfile_fails_when_running_as_root_or_exposing_another_port() {
    let fixture = Fixture::valid();
    fixture.edit("backend/Dockerfile", "USER cabanas", "USER root");
    fixture.edit("backend/Dockerfile", "EXPOSE 8080", "EXPOSE 3000");
    let check = fixture.fails_at("dockerfile", "backend/Dockerfile:");
    assert!(says_as(&check, Verdict::Fail, "root"));
    assert!(says_as(&check, Verdict::Fail, "3000"));
}

#[test]
fn dockerfile_fails_when_dockerignore_lets_env_files_in() {
    let fixture = Fixture::valid();
    fixture.edit(".dockerignore", "env/\n", "");
    fixture.fails_at("dockerfile", ".dockerignore");
}

#[test]
fn dockerfile_fails_when_dockerignore_excludes_what_it_copies() {
    let fixture = Fixture::valid();
    fixture.write(
        ".dockerignore",
        &format!(
            "{}backend/migrations\n",
            include_str!("../../../.dockerignore")
        ),
    );
    let check = fixture.fails_at("dockerfile", "backend/Dockerfile:");
    let failure = first_failure(&check);
    assert!(
        failure.message.contains("`backend/migrations`")
            && failure.message.contains(".dockerignore"),
        "{check:#?}"
    );
    assert!(
        check.fix.as_deref().unwrap().contains("backend/migrations"),
        "{check:#?}"
    );
}

#[test]
fn dockerfile_fails_when_the_dependency_layer_forgets_a_workspace_member() {
    let fixture = Fixture::valid();
    fixture.edit(
        "Cargo.toml",
        "members = []",
        "members = [\"backend\", \"xtask\"]",
    );
    let report = fixture.evaluate(&all());
    assert_eq!(
        report.check("dockerfile").unwrap().verdict,
        Verdict::Pass,
        "the real Dockerfile stubs both members: {report:#?}"
    );
    fixture.edit("Cargo.toml", "\"xtask\"]", "\"xtask\", \"tools/seed\"]");
    let check = fixture.fails_at("dockerfile", "backend/Dockerfile:");
    let failure = first_failure(&check);
    assert!(failure.message.contains("`tools/seed`"), "{check:#?}");
    let fix = check.fix.as_deref().unwrap();
    assert!(
        fix.contains("COPY tools/seed/Cargo.toml") && fix.contains("tools/seed/src"),
        "{fix}"
    );
}

#[test]
fn migrations_fail_on_concurrently_inside_a_transaction() {
    let fixture = Fixture::valid();
    fixture.write(
        "backend/migrations/postgres/0002_index.sql",
        "-- an index\nCREATE INDEX CONCURRENTLY reservations_code_idx ON reservations (code);\n",
    );
    fixture.fails_at("migrations", "backend/migrations/postgres/0002_index.sql:2");
    // The same statement in a no-transaction migration is fine.
    fixture.edit(
        "backend/migrations/postgres/0002_index.sql",
        "-- an index",
        "-- no-transaction",
    );
    assert_eq!(
        fixture
            .evaluate(&all())
            .check("migrations")
            .unwrap()
            .verdict,
        Verdict::Pass
    );
}

#[test]
fn migrations_fail_without_the_exclusion_constraint() {
    let fixture = Fixture::valid();
    fixture.edit(
        "backend/migrations/postgres/0001_initial.sql",
        "EXCLUDE USING gist",
        "CHECK",
    );
    fixture.fails_at("migrations", "backend/migrations/postgres/0001_initial.sql");
}

#[test]
fn env_fails_on_a_short_secret_and_suggests_the_nearest_key() {
    let fixture = Fixture::valid();
    fixture.write(
        "env/.env.fly.staging",
        &format!("{FILLED}JWT_SECRET_KEY=x\n").replace(CANARY, "too-short"),
    );
    let report = fixture.evaluate(&all());
    let check = assert_fails_at(&report, "env", "env/.env.fly.staging:3");
    assert!(says(&check, "did you mean JWT_SECRET?"), "{check:#?}");
}

#[test]
fn env_fails_on_placeholders_export_and_missing_keys() {
    let fixture = Fixture::valid();
    fixture.write(
        "env/.env.fly.staging",
        &FILLED.replacen("DATABASE_URL", "export DATABASE_URL", 1),
    );
    let check = fixture.fails_at("env", "env/.env.fly.staging:2");
    assert!(says(&check, "remove `export`"), "{check:#?}");
    fixture.write(
        "env/.env.fly.staging",
        &FILLED.replace("ana@example.org,bo@example.cl", "<admin@example.org>"),
    );
    fixture.fails_at("env", "env/.env.fly.staging:4");
    fixture.write("env/.env.fly.staging", "JWT_SECRET\n");
    fixture.fails_at("env", "env/.env.fly.staging:1");
}

#[test]
fn env_requires_the_selected_environment_file() {
    let fixture = Fixture::valid();
    let report = fixture.evaluate(&Options {
        env: Some("production".into()),
        strict: false,
        workflow_linters: None,
        command_line: None,
    });
    assert_fails_at(&report, "env", "env/.env.fly.production");
    assert!(
        evaluate(
            &Repo::at(fixture.root()),
            &Options {
                env: Some("nope".into()),
                strict: false,
                workflow_linters: None,
                command_line: None,
            }
        )
        .is_err()
    );
}

#[test]
fn secret_hygiene_fails_on_a_committed_secret_and_an_open_mode() {
    let fixture = Fixture::valid();
    fixture.write("docs/notes.md", &format!("# notes\n\ntoken: {CANARY}\n"));
    fixture.commit("leak");
    fixture.chmod("env/.env.fly.staging", 0o644);
    let check = fixture.fails_at("secret_hygiene", "docs/notes.md:3");
    assert!(says(&check, "JWT_SECRET"));
    #[cfg(unix)]
    assert!(
        check
            .evidence
            .iter()
            .any(|e| e.fix.as_deref() == Some("chmod 600 env/.env.fly.staging"))
    );
}

#[test]
fn secret_hygiene_still_scans_an_env_file_with_a_malformed_line() {
    let fixture = Fixture::valid();
    let env = std::fs::read_to_string(fixture.root().join("env/.env.fly.staging")).unwrap();
    fixture.write(
        "env/.env.fly.staging",
        &format!("{env}this line has no equals sign\n"),
    );
    fixture.chmod("env/.env.fly.staging", 0o600);
    fixture.write("docs/notes.md", &format!("# notes\n\ntoken: {CANARY}\n"));
    fixture.commit("leak");
    fixture.fails_at("secret_hygiene", "docs/notes.md:3");
}

#[test]
fn secret_hygiene_fails_on_a_private_key_block() {
    let fixture = Fixture::valid();
    let block = format!(
        "-----{} RSA PRIVATE KEY-----\nMIIB\n-----END RSA PRIVATE KEY-----\n",
        "BEGIN"
    );
    fixture.write("ops/key.pem", &format!("\n{block}"));
    fixture.commit("key");
    fixture.fails_at("secret_hygiene", "ops/key.pem:2");
}

/// An env file copied from its template and not filled yet holds placeholders, which the
/// committed template holds too: the `env` check fails them, but they are no secret.
#[test]
fn secret_hygiene_ignores_the_templates_placeholders() {
    let fixture = Fixture::valid();
    // A secret key whose template value is an example, not the `<...>` form.
    let example = "# [optional, redis-url] cache\nREDIS_URL=redis://cache.example:6379/0\n";
    let template = include_str!("../../../env/.env.fly.staging.template");
    fixture.write(
        "env/.env.fly.staging.template",
        &format!("{template}\n{example}"),
    );
    fixture.commit("a redis example");
    fixture.write("env/.env.fly.staging", &format!("{template}\n{example}"));
    fixture.chmod("env/.env.fly.staging", 0o600);
    let report = fixture.evaluate(&all());
    let hygiene = report.check("secret_hygiene").unwrap();
    assert_eq!(hygiene.verdict, Verdict::Pass, "{hygiene:#?}");
    assert_fails_at(&report, "env", "env/.env.fly.staging");

    // A real value is still found wherever it is committed.
    fixture.write(
        "docs/notes.md",
        "redis://cache.example:6379/0 and <postgres-url>\n",
    );
    fixture.edit(
        "env/.env.fly.staging.template",
        "REDIS_URL=redis://cache.example:6379/0",
        "REDIS_URL=",
    );
    fixture.commit("a leak");
    let check = fixture.fails_at("secret_hygiene", "docs/notes.md:1");
    let found: Vec<&str> = check
        .evidence
        .iter()
        .filter(|e| e.verdict == Verdict::Fail)
        .map(|e| e.message.as_str())
        .collect();
    assert_eq!(
        found,
        ["holds the value of REDIS_URL from env/.env.fly.staging"]
    );
}

#[test]
fn git_warns_on_a_dirty_tree_and_fails_with_strict() {
    let fixture = Fixture::valid();
    fixture.write("scratch.txt", "work in progress\n");
    let report = fixture.evaluate(&all());
    assert_eq!(report.check("git").unwrap().verdict, Verdict::Warn);
    assert_eq!(report.verdict, Verdict::Warn);
    let strict = fixture.evaluate(&Options {
        env: None,
        strict: true,
        workflow_linters: None,
        command_line: None,
    });
    let check = strict.check("git").unwrap();
    assert_eq!(check.verdict, Verdict::Fail);
    assert!(check.evidence[0].message.contains("scratch.txt"));
}

/// A code fence left open swaps code and prose from there on: the docs check names the
/// fence's line, in a copy of the real task reference.
#[test]
fn docs_commands_fail_on_a_fence_left_open_in_the_task_reference() {
    let tasks = include_str!("../../../docs/tasks.md");
    let opener_line = |text: &str, command: &str| {
        let at = text.find(command).unwrap();
        text[..at].lines().count() - 1
    };
    let fixture = Fixture::valid();
    fixture.write("docs/tasks.md", tasks);
    fixture.commit("the task reference");
    let report = fixture.evaluate(&all());
    assert_eq!(
        report.check("docs_commands").unwrap().verdict,
        Verdict::Pass,
        "{report:#?}"
    );

    // The closing fence of one section dropped: the block runs into the next section's.
    let admin = "cargo xtask admin-token --env production --email ops@example.org --ttl 5m\n";
    let open = tasks.replacen(&format!("{admin}```\n"), admin, 1);
    assert_ne!(open, tasks, "docs/tasks.md has no admin-token example");
    fixture.write("docs/tasks.md", &open);
    let line = opener_line(&open, admin);
    let check = fixture.fails_at("docs_commands", &format!("docs/tasks.md:{line}"));
    assert!(says(&check, "not closed"), "{check:#?}");

    // The last closing fence dropped: the block runs to the end of the document.
    let trimmed = tasks.trim_end().strip_suffix("```").unwrap();
    fixture.write("docs/tasks.md", trimmed);
    let last = trimmed.rfind("```").unwrap();
    let line = trimmed[..last].lines().count() + 1;
    let check = fixture.fails_at("docs_commands", &format!("docs/tasks.md:{line}"));
    assert!(says(&check, "end of the document"), "{check:#?}");
}

#[test]
fn docs_commands_fail_on_a_command_that_does_not_exist() {
    let fixture = Fixture::valid();
    fixture.write("docs/tasks.md", "# tasks\n\nRun `cargo xtask predeploy --env <NAME>`.\n\n```sh\ncargo xtask predeploy --everything\n```\n");
    fixture.fails_at("docs_commands", "docs/tasks.md:6");
}

/// The runbooks live a directory below `ops/`; their commands are held to the CLI too.
#[test]
fn docs_commands_read_the_runbooks() {
    let fixture = Fixture::valid();
    fixture.write(
        "ops/runbooks/INCIDENT_RESPONSE.md",
        "# Incidents\n\n## Service down\n\n```sh\ncargo xtask restart --env production\n```\n",
    );
    fixture.fails_at("docs_commands", "ops/runbooks/INCIDENT_RESPONSE.md:6");
}

#[test]
fn ci_warns_without_a_workflow_and_fails_when_none_runs_the_tests() {
    let fixture = Fixture::valid();
    fixture.write(
        ".github/workflows/ci.yml",
        "on: push\njobs:\n  lint:\n    steps:\n      - run: cargo fmt --check\n",
    );
    fixture.fails_at("ci", ".github/workflows/ci.yml");
    std::fs::remove_dir_all(fixture.root().join(".github")).unwrap();
    assert_eq!(
        fixture.evaluate(&all()).check("ci").unwrap().verdict,
        Verdict::Warn
    );
}

#[test]
fn the_binary_exits_0_1_2_and_never_prints_the_canary() {
    let fixture = Fixture::valid();
    let (code, stdout, stderr) = fixture.run(&["--env", "staging"]);
    assert_eq!(code, 0, "{stdout}\n{stderr}");
    let record: serde_json::Value = serde_json::from_str(&stdout).unwrap();
    assert_eq!(record["task"], "predeploy");
    assert_eq!(record["environment"], "staging");
    assert_eq!(record["result"]["verdict"], "pass");

    // A malformed line holding the canary: exit 1, the line named, the value nowhere.
    fixture.write(
        "env/.env.fly.staging",
        &FILLED.replace("JWT_SECRET=", "JWT_SECRET "),
    );
    let (code, stdout, stderr) = fixture.run(&[]);
    assert_eq!(code, 1, "{stdout}\n{stderr}");
    assert!(stderr.contains("env/.env.fly.staging:3"), "{stderr}");
    for text in [&stdout, &stderr] {
        assert!(
            !text.contains(CANARY) && !text.contains("pg-canary-pass"),
            "secret printed:\n{text}"
        );
    }
    for record in fixture.records() {
        let text = std::fs::read_to_string(&record).unwrap();
        assert!(
            !text.contains(CANARY) && !text.contains("pg-canary-pass"),
            "secret in {}",
            record.display()
        );
    }

    fixture.edit(
        "ops/deploy.toml",
        "[thresholds]",
        "[thresholds]\np42_ms = 1.0",
    );
    let (code, _, stderr) = fixture.run(&[]);
    assert_eq!(code, 2, "{stderr}");
    assert!(
        stderr.contains("ops/deploy.toml:10") && stderr.contains("p42_ms"),
        "{stderr}"
    );
}

#[test]
fn the_project_repository_passes() {
    let repo = Repo::discover_from(Path::new(env!("CARGO_MANIFEST_DIR"))).unwrap();
    let options = Options {
        command_line: Some(xtask::cli::documented_command),
        ..Options::default()
    };
    let report = evaluate(&repo, &options).unwrap();
    assert!(failures(&report).is_empty(), "{:#?}", failures(&report));
}

/// A clean checkout (the repository's files as committed, no filled env file yet) passes
/// without a warning: a WARN must mean something can go wrong.
#[test]
fn a_clean_checkout_passes_without_a_warning() {
    let fixture = Fixture::valid();
    std::fs::remove_file(fixture.root().join("env/.env.fly.staging")).unwrap();
    let report = fixture.evaluate(&all());
    // The env files are not filled yet: that check has nothing to look at (SKIP).
    let warned: Vec<&CheckResult> = report
        .checks
        .iter()
        .filter(|c| !matches!(c.verdict, Verdict::Pass | Verdict::Skip))
        .collect();
    assert!(warned.is_empty(), "{warned:#?}");
    assert_eq!(report.verdict, Verdict::Pass);
}

/// fly.toml's app is what a bare `fly` command uses (the tasks pass --app): it warns when
/// that lands on production or on an app no environment names.
#[test]
fn fly_toml_warns_when_a_bare_fly_command_lands_on_production_or_nowhere() {
    let fixture = Fixture::valid();
    let app_warning = |fixture: &Fixture| {
        let report = fixture.evaluate(&all());
        let check = report.check("fly_toml").unwrap().clone();
        assert_eq!(check.verdict, Verdict::Warn, "{check:#?}");
        check
            .evidence
            .iter()
            .find(|e| e.verdict == Verdict::Warn && e.location() == "fly.toml:5")
            .unwrap_or_else(|| panic!("{check:#?}"))
            .message
            .clone()
    };
    fixture.edit(
        "fly.toml",
        "app = \"sist-cabanas-staging\"",
        "app = \"sist-cabanas\"",
    );
    assert!(app_warning(&fixture).contains("production"));
    fixture.edit(
        "fly.toml",
        "app = \"sist-cabanas\"",
        "app = \"sist-cabanas-stagign\"",
    );
    assert!(app_warning(&fixture).contains("no app of ops/deploy.toml"));
}

#[test]
fn fly_toml_fails_on_a_volume_for_blue_green_production_and_warns_without_metrics() {
    let fixture = Fixture::valid();
    let report = fixture.evaluate(&all());
    let check = report.check("fly_toml").unwrap();
    assert!(says_as(check, Verdict::Pass, "[metrics]"), "{check:#?}");
    fixture.edit("fly.toml", "path = \"/metrics\"", "");
    fixture.edit(
        "fly.production.toml",
        "[http_service]\n",
        "[mounts]\nsource = \"data\"\ndestination = \"/data\"\n\n[http_service]\n",
    );
    let check = fixture.fails_at("fly_toml", "fly.production.toml:");
    assert!(says_as(&check, Verdict::Fail, "blue-green"), "{check:#?}");
    assert!(
        says_as(&check, Verdict::Warn, "does not scrape"),
        "{check:#?}"
    );
}
