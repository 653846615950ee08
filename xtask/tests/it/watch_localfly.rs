//! `watch` against the local Fly, whose `logs --no-tail` behaves as flyctl's does: on an app
//! that has logged nothing it does not return (flyctl `logs/polling.go` polls until a page has
//! entries). The watch still takes every sample in its window, and each says the logs could
//! not be read, which is not a breach.

use crate::localfly_support;

use localfly_support::{harness, repo};
use xtask::flyctl::DeployCommand;

#[test]
fn a_watch_on_an_app_whose_logs_block_takes_every_sample_and_says_the_logs_were_not_read() {
    let h = harness("lf-watch-quiet", 1);
    // The workspace's fly.toml with the service's logging off: the log buffer stays empty.
    let config = tempfile::tempdir().unwrap();
    let fly_toml = std::fs::read_to_string(repo().path("fly.toml")).unwrap();
    assert!(fly_toml.contains("[env]\n"), "fly.toml has an [env] table");
    std::fs::write(
        config.path().join("fly.toml"),
        fly_toml.replace("[env]\n", "[env]\nRUST_LOG = \"off\"\n"),
    )
    .unwrap();
    let deploy = DeployCommand {
        app: h.app.clone(),
        config: "fly.toml".into(),
        image: None,
        strategy: None,
        wait_timeout: std::time::Duration::from_secs(60),
        build_args: vec![("GIT_COMMIT".into(), "9a1e7000".into())],
        image_label: Some("9a1e7000".into()),
        time_limit: None,
    };
    h.fly
        .flyctl()
        .in_dir(config.path())
        .deploy(&deploy, &mut std::io::sink())
        .unwrap();
    let app = h.fly.app(&h.app).unwrap();
    for machine in app.machines.values() {
        let logged = std::fs::read_to_string(&machine.log).unwrap_or_default();
        assert_eq!(logged, "", "machine {} logged", machine.id);
    }

    let workspace = tempfile::tempdir().unwrap();
    let root = workspace.path();
    std::fs::write(root.join("Cargo.toml"), "[workspace]\nmembers = []\n").unwrap();
    std::fs::create_dir_all(root.join("ops")).unwrap();
    std::fs::write(
        root.join("ops/deploy.toml"),
        format!(
            "[environments.staging]\napp = \"{}\"\nurl = \"{}\"\n\
             env_file = \"env/.env.fly.staging\"\ntemplate = \"env/.env.fly.staging.template\"\n",
            h.app, h.url
        ),
    )
    .unwrap();
    // `--every` at least the log wait (3 s), so each sample's wait fits its interval.
    let output = std::process::Command::new(env!("CARGO_BIN_EXE_xtask"))
        .args([
            "watch", "--env", "staging", "--for", "10s", "--every", "5s", "--json",
        ])
        .current_dir(root)
        .envs(h.fly.env())
        .env_remove("GITHUB_STEP_SUMMARY")
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(0), "{stdout}\n{stderr}");
    let record: serde_json::Value = serde_json::from_str(&stdout).unwrap();
    let result = &record["result"];
    let samples = result["samples"].as_array().unwrap();
    assert_eq!(
        samples.len() as u64,
        result["planned_samples"].as_u64().unwrap(),
        "every planned sample was taken: {stderr}"
    );
    for sample in samples {
        let error = sample["logs_error"].as_str().unwrap_or_default();
        assert!(error.contains("still running"), "{sample:#}");
    }
    let breaches = result["stats"]["breaches"].as_array().unwrap();
    assert!(breaches.is_empty(), "{breaches:#?}");
}
