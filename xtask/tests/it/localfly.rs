//! The local Fly itself, driven through the product's flyctl layer and JSON parsers: deploys
//! serve the image's commit on every machine through the proxy, each fault fails the way
//! flyctl does (see `localfly_faults.rs`), nothing survives `local down`, and secret values
//! travel on stdin only.

use crate::localfly_support;

use std::collections::BTreeSet;
use std::process::Command;

use localfly_support::{JWT, cabanas, harness, harness_on, psql};
use xtask::flyctl::{parse_machines, parse_releases, parse_secrets_list, same_image};
use xtask::interrupt::process_alive;
use xtask::localfly::LocalFly;

#[test]
fn a_deploy_serves_the_images_commit_on_every_machine() {
    let h = harness("lf-serve", 2);
    h.deploy("c0ffee1", None, 60).unwrap();

    let machines = h.machines();
    assert_eq!(machines.len(), 2);
    let releases = h.releases();
    assert_eq!(releases[0].version, 1);
    assert!(releases[0].is_good(), "{:?}", releases[0]);
    let image = releases[0].image_ref.clone().unwrap();
    assert_eq!(image, "registry.fly.io/lf-serve:c0ffee1");
    for machine in &machines {
        assert_eq!(machine.state, "started");
        // The machine's image comes with the digest Fly reports; the tag is the release's.
        let running = machine.image.as_deref().unwrap();
        assert!(
            running.starts_with(&format!("{image}@sha256:")) && same_image(running, &image),
            "{running}"
        );
        assert!(
            machine.checks.iter().all(|c| c.status == "passing"),
            "{machine:?}"
        );
        assert!(!machine.checks.is_empty());
    }
    let commits = h.commits();
    assert_eq!(commits.len(), 2);
    assert!(
        commits.iter().all(|(_, commit)| commit == "c0ffee1"),
        "{commits:?}"
    );

    // Round robin reaches both machines without forcing.
    let seen: BTreeSet<String> = (0..4)
        .map(|_| h.version(None).1["machine"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(seen.len(), 2, "{seen:?}");
    let (status, _) = h.version(Some("00000000000000"));
    assert_eq!(
        status, 503,
        "an unknown forced instance is not served by another"
    );

    // A rolling update keeps the machines and changes what they run; an image redeploy goes
    // back; bluegreen replaces the machines; immediate too, in place.
    h.deploy("beef002", Some("rolling"), 60).unwrap();
    let ids: BTreeSet<String> = machines.iter().map(|m| m.id.clone()).collect();
    let after: BTreeSet<String> = h
        .commits()
        .into_iter()
        .map(|(id, c)| {
            assert_eq!(c, "beef002");
            id
        })
        .collect();
    assert_eq!(after, ids);
    h.deploy_image(&image).unwrap();
    assert!(h.commits().iter().all(|(_, c)| c == "c0ffee1"));
    h.deploy("cafe003", Some("bluegreen"), 60).unwrap();
    let green = h.commits();
    assert_eq!(green.len(), 2);
    assert!(
        green
            .iter()
            .all(|(id, c)| c == "cafe003" && !ids.contains(id)),
        "{green:?}"
    );
    h.deploy("dead004", Some("immediate"), 60).unwrap();
    assert_eq!(h.releases()[0].version, 5);
    h.deploy("feed005", Some("canary"), 60).unwrap();
    let commits = h.commits();
    assert_eq!(commits.len(), 2, "the canary is gone: {commits:?}");
    assert!(commits.iter().all(|(_, c)| c == "feed005"), "{commits:?}");

    let logs = h
        .fly
        .command()
        .args(["logs", "--app", "lf-serve", "--no-tail"])
        .output()
        .unwrap();
    assert!(logs.status.success());
    assert!(String::from_utf8_lossy(&logs.stdout).contains("listening"));
}

#[test]
fn local_down_and_the_guard_leave_no_process() {
    let h = harness("lf-down", 2);
    h.deploy("900d001", None, 60).unwrap();
    let pids = h.fly.pids();
    assert_eq!(pids.len(), 3, "two machines and the proxy: {pids:?}");
    assert!(pids.iter().all(|pid| process_alive(*pid)));
    h.fly.down().unwrap();
    let alive: Vec<_> = pids.iter().filter(|pid| process_alive(**pid)).collect();
    assert!(alive.is_empty(), "still running: {alive:?}");

    // Dropping the guard does the same.
    let h = harness("lf-drop", 1);
    h.deploy("900d001", None, 60).unwrap();
    let pids = h.fly.pids();
    assert_eq!(pids.len(), 2);
    drop(h);
    let alive: Vec<_> = pids.iter().filter(|pid| process_alive(**pid)).collect();
    assert!(alive.is_empty(), "still running: {alive:?}");
}

#[test]
fn secret_values_travel_on_stdin_only_and_list_shows_digests() {
    let h = harness("lf-secrets", 1);
    h.deploy("900d001", None, 60).unwrap();
    let database = format!("{}", h.db_dir.path().join("app.db").display());
    let calls = h.fly.calls().unwrap();
    assert!(
        calls.iter().any(|c| c.stdin.contains(JWT)),
        "the import read the values"
    );
    for call in &calls {
        let argv = call.argv.join(" ");
        assert!(
            !argv.contains(JWT) && !argv.contains(&database),
            "secret in argv: {argv}"
        );
    }
    let list = h
        .flyctl
        .secrets_list("lf-secrets", &mut Vec::new())
        .unwrap()
        .unwrap();
    let names: Vec<&str> = list.iter().map(|s| s.name.as_str()).collect();
    assert_eq!(names, ["DATABASE_URL", "JWT_SECRET"]);
    assert!(
        list.iter()
            .all(|s| s.digest.is_some() && s.status.as_deref() == Some("Deployed"))
    );
    let raw = h
        .fly
        .command()
        .args(["secrets", "list", "--app", "lf-secrets", "--json"])
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&raw.stdout);
    assert!(!text.contains(JWT) && !text.contains(&database), "{text}");
    assert_eq!(parse_secrets_list(&text).unwrap(), list);

    // Without --stage, like flyctl: a new release of the same image, machines restarted.
    let pids = h.fly.pids();
    let mut import = h.fly.command();
    import
        .args(["secrets", "import", "--app", "lf-secrets"])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::null());
    let mut child = import.spawn().unwrap();
    use std::io::Write as _;
    child
        .stdin
        .take()
        .unwrap()
        .write_all(b"RUST_LOG=\"debug\"\n")
        .unwrap();
    assert!(child.wait().unwrap().success());
    let releases = h.releases();
    assert_eq!(releases[0].version, 2);
    assert!(releases[0].is_good());
    assert_eq!(releases[0].image_ref, releases[1].image_ref);
    assert_ne!(h.fly.pids(), pids, "the machine was restarted");
    assert_eq!(h.commits()[0].1, "900d001");
}

#[test]
fn releases_and_machines_json_parse_with_the_products_parsers() {
    let fly = LocalFly::new(env!("CARGO_BIN_EXE_localfly"), "/nonexistent/cabanas").unwrap();
    fly.create_app("lf-json", 1).unwrap();
    let run = |args: &[&str]| {
        let output = fly.command().args(args).output().unwrap();
        (
            output.status.code(),
            String::from_utf8_lossy(&output.stdout).into_owned(),
            String::from_utf8_lossy(&output.stderr).into_owned(),
        )
    };
    let (code, out, _) = run(&["releases", "--app", "lf-json", "--image", "--json"]);
    assert_eq!(code, Some(0));
    assert!(parse_releases(&out).unwrap().is_empty());
    let (code, out, _) = run(&["machines", "list", "--app", "lf-json", "--json"]);
    assert_eq!(code, Some(0));
    assert!(parse_machines(&out).unwrap().is_empty());

    // A build without a binary to pack fails and says which variable to set.
    let (code, _, err) = run(&["deploy", "--app", "lf-json", "--config", "../fly.toml"]);
    assert_eq!(code, Some(1));
    assert!(err.contains("/nonexistent/cabanas is not a file"), "{err}");
    // Unknown commands and flags fail, naming them.
    let (code, _, err) = run(&["frobnicate"]);
    assert_ne!(code, Some(0));
    assert!(err.contains("frobnicate"), "{err}");
    let (code, _, err) = run(&[
        "deploy", "--app", "lf-json", "--config", "fly.toml", "--detach",
    ]);
    assert_ne!(code, Some(0));
    assert!(err.contains("--detach"), "{err}");
    let (code, _, err) = run(&["releases", "--app", "nope", "--json"]);
    assert_eq!(code, Some(1));
    assert!(err.contains("Could not find App \"nope\""), "{err}");
}

/// Machines of one app share its database: a booking made through one machine is read, and
/// its dates refused, through the other.
fn machines_share_the_apps_database(database: Option<&str>) {
    let h = harness_on("lf-shared", 2, database);
    h.deploy("900d001", None, 60).unwrap();
    let url = database.map(String::from).unwrap_or_else(|| {
        format!(
            "sqlite:{}?mode=rwc",
            h.db_dir.path().join("app.db").display()
        )
    });
    let seeded = Command::new(cabanas())
        .arg("seed-demo")
        .env("DATABASE_URL", &url)
        .output()
        .unwrap();
    assert!(
        seeded.status.success(),
        "{}",
        String::from_utf8_lossy(&seeded.stderr)
    );
    let ids: Vec<String> = h.machines().into_iter().map(|m| m.id).collect();
    let (a, b) = (&ids[0], &ids[1]);

    let (status, cabins) = h.call(a, "GET", "/api/v1/reservations/accommodations", None);
    assert_eq!(status, 200, "{cabins}");
    let cabin = cabins[0]["id"].as_i64().expect("a seeded cabin");
    // Within the service's booking horizon, whatever today is.
    let check_in = chrono::Utc::now().date_naive() + chrono::Days::new(60);
    let check_out = check_in + chrono::Days::new(2);
    let booking = serde_json::json!({
        "accommodation_id": cabin, "check_in": check_in.to_string(), "check_out": check_out.to_string(),
        "guests": 2, "channel": "web", "contact_name": "Ana", "contact_phone": "+54 9 11 5555-0000",
    });
    let (status, made) = h.call(
        a,
        "POST",
        "/api/v1/reservations/pre-reserve",
        Some(&booking),
    );
    assert_eq!(status, 201, "{made}");
    let code = made["code"].as_str().unwrap();
    let (status, read) = h.call(b, "GET", &format!("/api/v1/reservations/{code}"), None);
    assert_eq!(status, 200, "machine {b} reads what {a} wrote: {read}");
    let (status, refused) = h.call(
        b,
        "POST",
        "/api/v1/reservations/pre-reserve",
        Some(&booking),
    );
    assert_eq!(
        (status, refused["error"].as_str()),
        (409, Some("date_overlap")),
        "{refused}"
    );
}

#[test]
fn machines_share_a_sqlite_database() {
    machines_share_the_apps_database(None);
}

#[test]
fn machines_share_a_postgresql_database() {
    let Some(server) = crate::support::postgres_server("machines_share_a_postgresql_database")
    else {
        return;
    };
    let name = format!("localfly_{}", uuid::Uuid::new_v4().simple());
    let mut url = reqwest::Url::parse(&server).expect("TEST_DATABASE_URL is a URL");
    url.set_path(&format!("/{name}"));
    psql(&server, &format!("CREATE DATABASE {name}"));
    let outcome = std::panic::catch_unwind(|| machines_share_the_apps_database(Some(url.as_str())));
    psql(
        &server,
        &format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"),
    );
    if let Err(panic) = outcome {
        std::panic::resume_unwind(panic);
    }
}
