//! `secrets` against the recording fake flyctl, and flyctl missing, through the real binary so
//! that stdout and stderr are checked for secrets too.

use crate::deploy_support;

use std::process::Command;

use deploy_support::*;
use xtask::verdict::Verdict;

const IMPORT_ARGV: &str = "secrets import --app cabanas-test --stage";
const LIST_ARGV: &str = "secrets list --app cabanas-test --json";
const SENT: [&str; 5] = [
    "DATABASE_URL",
    "JWT_SECRET",
    "TLS_CERT",
    "QUOTED_NOTE",
    "TTL",
];

/// The three shapes `flyctl secrets list --json` has had, each listing `keys`.
fn list_shapes(keys: &[&str]) -> [String; 3] {
    let shape = |f: &dyn Fn(&str) -> serde_json::Value| {
        serde_json::to_string(&keys.iter().map(|k| f(k)).collect::<Vec<_>>()).unwrap()
    };
    [
        shape(
            &|k| serde_json::json!({"Name": k, "Digest": format!("d-{k}"), "CreatedAt": "2023-01-01T00:00:00Z"}),
        ),
        shape(
            &|k| serde_json::json!({"name": k, "digest": format!("d-{k}"), "updated_at": "2024-01-01T00:00:00Z", "created_at": "2024-01-01T00:00:00Z"}),
        ),
        shape(&|k| serde_json::json!({"name": k, "digest": format!("d-{k}"), "status": "Staged"})),
    ]
}

/// Runs the task; the text returned is its stdout, stderr and CI step summary together.
fn xtask(fixture: &Fixture, args: &[&str], flyctl: &str) -> (i32, String) {
    let summary = fixture.fake_dir.join("step-summary.md");
    let _ = std::fs::remove_file(&summary);
    let output = Command::new(env!("CARGO_BIN_EXE_xtask"))
        .args(args)
        .current_dir(fixture.root())
        .env("GITHUB_STEP_SUMMARY", &summary)
        .env("FLYCTL", flyctl)
        .env("FAKE_FLYCTL_DIR", &fixture.fake_dir)
        .env("FLY_API_TOKEN", "FlyV1 tok-must-stay-secret")
        .output()
        .unwrap();
    let text = format!(
        "{}{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr),
        std::fs::read_to_string(&summary).unwrap_or_default()
    );
    (output.status.code().unwrap_or(-1), text)
}

#[test]
fn secrets_are_staged_on_stdin_and_read_back_exactly() {
    let fixture = Fixture::new("http://127.0.0.1:9");
    fixture.respond(
        "secrets-import",
        None,
        "Secrets are staged for the next deploy\n",
        "",
        0,
    );
    fixture.respond("secrets-list", None, &list_shapes(&SENT)[2], "", 0);
    let (code, out) = xtask(
        &fixture,
        &["secrets", "--env", "staging"],
        env!("CARGO_BIN_EXE_fake-flyctl"),
    );
    assert_eq!(code, 0, "{out}");
    assert_eq!(fixture.argvs(), [IMPORT_ARGV, LIST_ARGV]);

    // Under fly's rules the payload is exactly the env file's values, template keys only.
    let calls = fixture.calls();
    let payload = calls[0]["stdin"].as_str().unwrap();
    let decoded: Vec<(String, String)> = xtask::secrets::decode_fly_import(payload)
        .unwrap()
        .into_iter()
        .map(|e| (e.name, e.value))
        .collect();
    let expected: Vec<(String, String)> = xtask::predeploy::envfile::parse_env_file(ENV_FILE)
        .unwrap()
        .into_iter()
        .filter(|e| SENT.contains(&e.key.as_str()))
        .map(|e| (e.key, e.value.expose().to_string()))
        .collect();
    assert_eq!(decoded, expected);
    assert!(
        decoded
            .iter()
            .any(|(k, v)| k == "TLS_CERT" && v.contains("\n\n-----END")),
        "multi-line kept"
    );
    assert!(
        decoded
            .iter()
            .any(|(k, v)| k == "QUOTED_NOTE" && v.starts_with("\"quoted\"")),
        "quotes kept"
    );
    assert!(
        !payload.contains("REDIS_URL"),
        "empty optional keys are not sent"
    );
    assert_eq!(calls[0]["env"]["FLY_API_TOKEN"], true);

    assert!(
        out.contains("JWT_SECRET") && out.contains("present") && out.contains("Staged"),
        "names and whether each arrived shown: {out}"
    );
    assert!(
        out.contains("### secrets staging") && out.contains("| JWT_SECRET | present (Staged) |"),
        "the CI step summary lists the keys: {out}"
    );
    // Fly's per-value digest (short, unkeyed: a low-entropy value is found by hashing
    // guesses) is neither printed nor recorded.
    assert!(
        !out.contains("d-JWT_SECRET"),
        "a value's digest printed: {out}"
    );
    let record: xtask::record::RunRecord<xtask::secrets::SecretsResult> =
        xtask::record::latest(&fixture.repo(), "secrets", "staging")
            .unwrap()
            .unwrap();
    assert!(record.result.keys.iter().all(|k| k.present));
    for entry in std::fs::read_dir(fixture.repo().runs_dir()).unwrap() {
        let text = std::fs::read_to_string(entry.unwrap().path()).unwrap();
        assert!(
            !text.contains("d-JWT_SECRET"),
            "a value's digest recorded: {text}"
        );
    }
    fixture.assert_no_secret(&out);
}

#[test]
fn every_historical_list_shape_confirms_the_keys() {
    for (index, shape) in list_shapes(&SENT).iter().enumerate() {
        let fixture = Fixture::new("http://127.0.0.1:9");
        fixture.respond("secrets-import", None, "", "", 0);
        fixture.respond("secrets-list", None, shape, "", 0);
        let args = xtask::secrets::Options {
            env: "staging".into(),
            dry_run: false,
        };
        let mut out = Vec::new();
        let (verdict, result) =
            xtask::secrets::run_with(&fixture.repo(), &args, fixture.flyctl(false), &mut out)
                .unwrap();
        assert_eq!(
            verdict,
            Verdict::Pass,
            "shape {index}: {}",
            String::from_utf8_lossy(&out)
        );
        assert!(result.keys[1].present, "shape {index}");
        assert!(
            !String::from_utf8_lossy(&out).contains("d-JWT_SECRET"),
            "shape {index}"
        );
    }
}

#[test]
fn a_key_fly_does_not_list_fails_the_task() {
    let fixture = Fixture::new("http://127.0.0.1:9");
    fixture.respond("secrets-import", None, "", "", 0);
    fixture.respond("secrets-list", None, &list_shapes(&SENT[..4])[1], "", 0);
    let (code, out) = xtask(
        &fixture,
        &["secrets", "--env", "staging"],
        env!("CARGO_BIN_EXE_fake-flyctl"),
    );
    assert_eq!(code, 1, "{out}");
    assert!(out.contains("does not show TTL"), "{out}");
}

#[test]
fn a_failing_import_exits_1_with_its_masked_stderr() {
    let fixture = Fixture::new("http://127.0.0.1:9");
    // A parser error that echoes a line of input, as fly's does: the value must be masked.
    let echo = format!(
        "Error: Secrets must be provided as NAME=VALUE pairs ({} is invalid)\n",
        SECRETS[1]
    );
    fixture.respond("secrets-import", None, "", &echo, 1);
    let (code, out) = xtask(
        &fixture,
        &["secrets", "--env", "staging"],
        env!("CARGO_BIN_EXE_fake-flyctl"),
    );
    assert_eq!(code, 1, "{out}");
    assert!(
        out.contains(IMPORT_ARGV) && out.contains("(values hidden)"),
        "{out}"
    );
    assert!(out.contains("NAME=VALUE pairs (**** is invalid)"), "{out}");
    assert_eq!(fixture.argvs(), [IMPORT_ARGV]);
    fixture.assert_no_secret(&out);
}

#[test]
fn a_value_fly_cannot_carry_is_refused_by_name_before_any_call() {
    let fixture = Fixture::new("http://127.0.0.1:9");
    let env = ENV_FILE.replace("MIIB#x=y+cert-body", "MIIB\"\"\"x+cert-body");
    std::fs::write(fixture.root().join("env/.env.fly.staging"), env).unwrap();
    let (code, out) = xtask(
        &fixture,
        &["secrets", "--env", "staging"],
        env!("CARGO_BIN_EXE_fake-flyctl"),
    );
    assert_eq!(code, 1, "{out}");
    assert!(out.contains("TLS_CERT"), "{out}");
    assert!(fixture.calls().is_empty());
}

#[test]
fn a_dry_run_shows_key_names_only_and_calls_nothing() {
    let fixture = Fixture::new("http://127.0.0.1:9");
    let (code, out) = xtask(
        &fixture,
        &["secrets", "--env", "staging", "--dry-run"],
        env!("CARGO_BIN_EXE_fake-flyctl"),
    );
    assert_eq!(code, 0, "{out}");
    assert!(fixture.calls().is_empty());
    assert!(
        out.contains(&format!(
            "{IMPORT_ARGV} <stdin: {} (values hidden)>",
            SENT.join(", ")
        )),
        "{out}"
    );
    assert!(out.contains(LIST_ARGV), "{out}");
    fixture.assert_no_secret(&out);
}

#[test]
fn flyctl_missing_exits_2_with_how_to_install() {
    let fixture = Fixture::new("http://127.0.0.1:9");
    for task in ["secrets", "deploy", "rollback"] {
        let (code, out) = xtask(&fixture, &[task, "--env", "staging"], "/nonexistent/flyctl");
        assert_eq!(code, 2, "{task}: {out}");
        assert!(out.contains("https://fly.io/install.sh"), "{task}: {out}");
    }
    assert!(fixture.calls().is_empty());
}
