//! `cargo xtask image`: a broken Dockerfile fails the build step, a service that cannot write
//! as its unprivileged user on a read-only root filesystem fails the start step and leaves no
//! container behind, and a machine without docker or podman exits 2 naming both.
//!
//! The first two build small fixture images FROM the stand-in `debian:bookworm-slim` of
//! `.ci/base-images` with Podman. Without them the tests say so loudly and skip; under `CI`
//! they fail instead, since CI runs `.ci/base-images` first.

use std::path::Path;
use std::process::{Command, Output};

/// Whether Podman and the stand-in base are here; panics under CI when they are not.
fn podman_ready(test: &str) -> bool {
    let ready = Command::new("podman")
        .args(["image", "exists", "debian:bookworm-slim"])
        .status()
        .is_ok_and(|s| s.success());
    if !ready {
        let why = "needs podman and the debian:bookworm-slim stand-in: run .ci/base-images";
        crate::support::skip_or_fail_in_ci(test, why);
    }
    ready
}

/// A git repository holding a workspace, a fly.toml naming `Dockerfile`, and `files`.
fn fixture(files: &[(&str, &str)]) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();
    std::fs::write(root.join("Cargo.toml"), "[workspace]\nmembers = []\n").unwrap();
    std::fs::write(
        root.join("fly.toml"),
        "[build]\ndockerfile = \"Dockerfile\"\n\n[deploy]\nrelease_command = \"cabanas migrate\"\n\n\
         [env]\nPORT = \"8080\"\nHOST = \"0.0.0.0\"\n",
    )
    .unwrap();
    for (path, text) in files {
        std::fs::write(root.join(path), text).unwrap();
    }
    for args in [
        &["init", "--quiet"][..],
        &["add", "--all"],
        &[
            "-c",
            "user.name=t",
            "-c",
            "user.email=t@example.com",
            "commit",
            "--quiet",
            "-m",
            "fixture",
        ],
    ] {
        assert!(
            Command::new("git")
                .args(args)
                .current_dir(root)
                .status()
                .unwrap()
                .success()
        );
    }
    dir
}

fn image(root: &Path, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_xtask"))
        .arg("image")
        .args(args)
        .current_dir(root)
        .env_remove("GITHUB_STEP_SUMMARY")
        .output()
        .unwrap()
}

fn text(output: &Output) -> String {
    String::from_utf8_lossy(&output.stdout).into_owned() + &String::from_utf8_lossy(&output.stderr)
}

/// The `failed_step` of the one record the run saved.
fn recorded_failed_step(root: &Path) -> serde_json::Value {
    let record = crate::support::only_record(root);
    assert_eq!(record["task"], "image");
    record["result"]["failed_step"].clone()
}

fn remove_image(tag: &str) {
    let _ = Command::new("podman")
        .args(["rmi", "--force", tag])
        .output();
}

#[test]
fn a_copy_of_a_missing_file_fails_the_build_step() {
    if !podman_ready("a_copy_of_a_missing_file_fails_the_build_step") {
        return;
    }
    let repo = fixture(&[(
        "Dockerfile",
        "FROM debian:bookworm-slim\nCOPY not-in-the-context.txt /x\n",
    )]);
    let output = image(
        repo.path(),
        &[
            "--engine",
            "podman",
            "--tag",
            "cabanas-image-test-build:1",
            "--check",
        ],
    );
    let said = text(&output);
    assert_eq!(output.status.code(), Some(1), "{said}");
    assert!(said.contains("failed step: build"), "{said}");
    assert!(
        said.contains("not-in-the-context.txt"),
        "the engine's error is shown: {said}"
    );
    assert_eq!(recorded_failed_step(repo.path()), "build");
}

/// The service writes its state under /var/lib/cabanas, which its user owns: fine on a
/// writable root filesystem, impossible on the read-only one Fly-like runs get.
const WRITES_OUTSIDE_DATA: &str = "#!/bin/sh\n\
case \"$1\" in\n\
  migrate) touch /data/cabanas.db ;;\n\
  serve) echo started > /var/lib/cabanas/state || exit 3; exec sleep 600 ;;\n\
esac\n";

#[test]
fn a_service_that_writes_to_its_read_only_root_fails_the_start_step_and_leaves_no_container() {
    let name = "a_service_that_writes_to_its_read_only_root_fails_the_start_step";
    if !podman_ready(name) {
        return;
    }
    let tag = "cabanas-image-test-readonly:1";
    let repo = fixture(&[
        (
            "Dockerfile",
            "FROM debian:bookworm-slim\nCOPY cabanas /usr/local/bin/cabanas\n\
             RUN chmod 0755 /usr/local/bin/cabanas && mkdir -p /var/lib/cabanas \
             && chown nobody /var/lib/cabanas\nUSER nobody\nCMD [\"cabanas\", \"serve\"]\n",
        ),
        ("cabanas", WRITES_OUTSIDE_DATA),
    ]);
    let output = image(
        repo.path(),
        &[
            "--engine",
            "podman",
            "--tag",
            tag,
            "--check",
            "--ready-timeout",
            "10s",
        ],
    );
    let said = text(&output);
    remove_image(tag);
    assert_eq!(output.status.code(), Some(1), "{said}");
    assert!(said.contains("failed step: start"), "{said}");
    assert!(
        said.contains("Read-only file system"),
        "the service's own error is shown: {said}"
    );
    assert_eq!(recorded_failed_step(repo.path()), "start");
    let left = Command::new("podman")
        .args(["ps", "--all", "--filter"])
        .arg(format!("label=org.sist-cabanas.image-check={tag}"))
        .args(["--format", "{{.Names}}"])
        .output()
        .unwrap();
    let left = String::from_utf8_lossy(&left.stdout);
    assert!(left.trim().is_empty(), "containers left behind: {left}");
}

#[test]
fn without_docker_or_podman_on_path_it_exits_2_naming_both() {
    let empty = tempfile::tempdir().unwrap();
    let output = Command::new(env!("CARGO_BIN_EXE_xtask"))
        .arg("image")
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .env("PATH", empty.path())
        .output()
        .unwrap();
    let said = text(&output);
    assert_eq!(output.status.code(), Some(2), "{said}");
    assert!(said.contains("docker") && said.contains("podman"), "{said}");
    assert!(
        said.contains("apt-get install podman"),
        "the fix is named: {said}"
    );
}
