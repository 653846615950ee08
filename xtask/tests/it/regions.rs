//! Two regions on the local Fly, on PostgreSQL with a streaming replica: a machine in `scl`
//! (the primary region, on the primary) and one cloned into `gru`, whose reads may use the
//! replica. A write sent to `gru` is answered with `fly-replay` and lands once, through the
//! `scl` machine; a read in `gru` is served by the replica; with replay paused past the
//! staleness bound, `gru` reads from the primary; concurrent bookings of the same dates
//! through both regions have exactly one winner.

use crate::localfly_support;

use std::process::Command;
use std::time::{Duration, Instant};

use localfly_support::{JWT, cabanas, harness_on};
use serde_json::{Value, json};
use xtask::localfly::FORCE_INSTANCE;
use xtask::pgcluster::{PgBinaries, PgCluster};

const APP: &str = "lf-regions";
/// The admin the overlap run cancels its bookings as (`ADMIN_ALLOWED_EMAILS`).
const ADMIN: &str = "ops@example.org";
/// The replica's staleness bound in these tests (`DATABASE_READ_MAX_LAG_MS`).
const MAX_LAG_MS: u64 = 1000;

/// A single value from `psql` on `url`.
fn scalar(url: &str, sql: &str) -> String {
    let out = Command::new("psql")
        .args([url, "-XAtqc", sql])
        .output()
        .expect("running psql");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}

/// The sum of the `/metrics` samples of machine `machine` named `name` whose labels hold
/// every one of `labels`.
fn metric(base: &str, machine: &str, name: &str, labels: &[&str]) -> f64 {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let client = xtask::http::client(Duration::from_secs(10)).unwrap();
    let text = runtime.block_on(async {
        let response = client
            .get(format!("{base}/metrics"))
            .header(FORCE_INSTANCE, machine)
            .send()
            .await
            .expect("the proxy answers");
        response.text().await.unwrap()
    });
    text.lines()
        .filter(|line| line.starts_with(&format!("{name}{{")))
        .filter(|line| labels.iter().all(|label| line.contains(label)))
        .filter_map(|line| line.rsplit_once(' ')?.1.parse::<f64>().ok())
        .sum()
}

fn booking(cabin: i64, days_ahead: u64, name: &str) -> Value {
    let check_in = chrono::Utc::now().date_naive() + chrono::Days::new(days_ahead);
    let check_out = check_in + chrono::Days::new(2);
    json!({
        "accommodation_id": cabin, "check_in": check_in.to_string(),
        "check_out": check_out.to_string(), "guests": 2, "channel": "web",
        "contact_name": name, "contact_phone": "+54 9 11 5555-0000",
    })
}

fn bookings_seen(h: &localfly_support::Harness, machine: &str, b: &Value) -> usize {
    let path = format!(
        "/api/v1/accommodations/{}/availability?from={}&to={}",
        b["accommodation_id"],
        b["check_in"].as_str().unwrap(),
        b["check_out"].as_str().unwrap()
    );
    let (status, body) = h.call(machine, "GET", &path, None);
    assert_eq!(status, 200, "{body}");
    body["bookings"].as_array().map_or(0, Vec::len)
}

/// Polls `condition` every 100 ms for up to `bound`.
fn eventually(bound: Duration, mut condition: impl FnMut() -> bool) -> bool {
    let deadline = Instant::now() + bound;
    loop {
        if condition() {
            return true;
        }
        if Instant::now() >= deadline {
            return false;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}

#[test]
fn writes_replay_to_the_primary_region_and_reads_use_a_fresh_replica() {
    let Some(binaries) = PgBinaries::find() else {
        crate::support::skip_or_fail_in_ci(
            "writes_replay_to_the_primary_region_and_reads_use_a_fresh_replica",
            "no PostgreSQL server binaries (apt-get install postgresql)",
        );
        return;
    };
    let primary = PgCluster::start(&binaries).unwrap();
    let replica = primary.start_replica(&binaries).unwrap();
    assert_eq!(scalar(replica.url(), "SELECT pg_is_in_recovery()"), "t");

    let h = harness_on(APP, 1, Some(primary.url()));
    let region_env = h
        .fly
        .command()
        .args(["local", "region-env", "--app", APP, "--region", "gru"])
        .arg(format!("DATABASE_READ_URL={}", replica.url()))
        .arg(format!("DATABASE_READ_MAX_LAG_MS={MAX_LAG_MS}"))
        .output()
        .unwrap();
    assert!(region_env.status.success(), "{region_env:?}");
    for region in ["scl", "gru"] {
        let admins = h
            .fly
            .command()
            .args(["local", "region-env", "--app", APP, "--region", region])
            .arg(format!("ADMIN_ALLOWED_EMAILS={ADMIN}"))
            .output()
            .unwrap();
        assert!(admins.status.success(), "{admins:?}");
    }
    h.deploy("2e610a1", None, 60).unwrap();
    let seeded = Command::new(cabanas())
        .arg("seed-demo")
        .env("DATABASE_URL", primary.url())
        .output()
        .unwrap();
    assert!(seeded.status.success(), "{seeded:?}");
    // The seed is setup, not the subject: reads from the replica may be up to 1.25 x the
    // bound stale by design, so wait until it has replayed the seed before reading there.
    let deadline = Instant::now() + Duration::from_secs(30);
    while scalar(replica.url(), "SELECT count(*) FROM accommodations") == "0" {
        assert!(
            Instant::now() < deadline,
            "the replica never replayed the seed"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    let scl = h.machines()[0].id.clone();
    let cloned = h
        .fly
        .command()
        .args(["machine", "clone", &scl, "--app", APP, "--region", "gru"])
        .output()
        .unwrap();
    assert!(cloned.status.success(), "{cloned:?}");
    let machines = h.machines();
    let gru = machines.iter().find(|m| m.id != scl).unwrap().id.clone();
    let (_, version) = h.call(&gru, "GET", "/api/v1/version", None);
    assert_eq!(version["region"], "gru", "{version}");

    // A write sent to gru is replayed to scl and lands there, once.
    let (_, cabins) = h.call(&gru, "GET", "/api/v1/reservations/accommodations", None);
    let cabin = cabins[0]["id"]
        .as_i64()
        .unwrap_or_else(|| panic!("a seeded cabin, not {cabins}"));
    let first = booking(cabin, 60, "Ana");
    let (status, made) = h.call(
        &gru,
        "POST",
        "/api/v1/reservations/pre-reserve",
        Some(&first),
    );
    assert_eq!(status, 201, "{made}");
    let route = r#"route="/api/v1/reservations/pre-reserve""#;
    let total = "http_requests_total";
    // gru answered before routing (so before its request metrics): it handled none.
    assert_eq!(metric(&h.url, &gru, total, &[route]), 0.0);
    assert_eq!(
        metric(&h.url, &scl, total, &[route, r#"status="201""#]),
        1.0
    );
    assert_eq!(
        scalar(primary.url(), "SELECT count(*) FROM reservations"),
        "1"
    );

    // A read in gru is served by the replica, once it has the booking.
    let from_replica = |h: &localfly_support::Harness| {
        metric(&h.url, &gru, "db_reads_total", &[r#"pool="replica""#])
    };
    let before = from_replica(&h);
    assert!(
        eventually(Duration::from_secs(10), || bookings_seen(&h, &gru, &first)
            == 1),
        "the replica never showed the booking"
    );
    assert!(from_replica(&h) > before, "gru read from its replica");

    // Replay paused: once the replica is older than the bound, gru reads from the primary.
    scalar(replica.url(), "SELECT pg_wal_replay_pause()");
    let second = booking(cabin, 90, "Bea");
    let (status, made) = h.call(
        &gru,
        "POST",
        "/api/v1/reservations/pre-reserve",
        Some(&second),
    );
    assert_eq!(status, 201, "{made}");
    assert!(
        eventually(Duration::from_secs(15), || bookings_seen(&h, &gru, &second)
            == 1),
        "gru kept reading the paused replica"
    );
    assert_eq!(
        scalar(replica.url(), "SELECT count(*) FROM reservations"),
        "1",
        "the paused replica lacks the second booking, so that read came from the primary"
    );
    let before = from_replica(&h);
    bookings_seen(&h, &gru, &second);
    assert_eq!(from_replica(&h), before, "no read from the stale replica");
    scalar(replica.url(), "SELECT pg_wal_replay_resume()");

    // The same dates booked concurrently through both regions: exactly one winner.
    let contested = booking(cabin, 120, "Cata");
    let outcomes: Vec<(u16, Value)> = std::thread::scope(|scope| {
        let handles: Vec<_> = (0..8)
            .map(|i| {
                let machine = if i % 2 == 0 { &scl } else { &gru };
                let (h, contested) = (&h, &contested);
                scope.spawn(move || {
                    h.call(
                        machine,
                        "POST",
                        "/api/v1/reservations/pre-reserve",
                        Some(contested),
                    )
                })
            })
            .collect();
        handles.into_iter().map(|t| t.join().unwrap()).collect()
    });
    let winners = outcomes.iter().filter(|(status, _)| *status == 201).count();
    let refused = outcomes
        .iter()
        .filter(|(status, body)| *status == 409 && body["error"] == "date_overlap")
        .count();
    assert_eq!((winners, refused), (1, 7), "{outcomes:?}");

    // The overlap task in its multi-region mode: racers alternate scl and gru.
    let token = xtask::overlap::sign_admin_token(JWT, ADMIN, chrono::Utc::now()).unwrap();
    let mut plan = xtask::overlap::OverlapPlan::new(Some(token));
    plan.concurrency = 8;
    plan.rounds = 2;
    plan.regions = vec!["scl".into(), "gru".into()];
    let target = xtask::config::Target::adhoc(&h.url).unwrap();
    let report = xtask::http::runtime()
        .unwrap()
        .block_on(xtask::overlap::run_rounds(&target, &plan))
        .expect("overlap runs");
    assert_eq!(
        report.verdict,
        xtask::verdict::Verdict::Pass,
        "{}",
        xtask::overlap::render_text(&report)
    );
}

/// `scale` brings a one-machine app to the declared scl + gru through `fly scale count`,
/// a second run changes nothing, and a dry run only reads.
#[test]
fn scale_creates_the_declared_machines_once() {
    let h = localfly_support::harness("lf-scale", 1);
    h.deploy("5ca1e01", None, 60).unwrap();
    let repo_dir = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(repo_dir.path().join("ops")).unwrap();
    std::fs::write(
        repo_dir.path().join("ops/deploy.toml"),
        format!(
            "[environments.production]\napp = \"lf-scale\"\nurl = \"{}\"\n\
             env_file = \"env/.env.fly.production\"\ntemplate = \"env/t\"\n\n\
             [environments.production.machines]\nmin_running = 2\nregions = {{ scl = 1, gru = 1 }}\n",
            h.url
        ),
    )
    .unwrap();
    let repo = xtask::repo::Repo::at(repo_dir.path());
    let scale = |dry_run: bool| {
        let options = xtask::scale::Options {
            env: "production".into(),
            dry_run,
        };
        let mut out = Vec::new();
        let verdict = xtask::scale::run_with(&repo, &options, h.fly.flyctl(), &mut out).unwrap();
        (verdict, String::from_utf8(out).unwrap())
    };
    let regions = || {
        let mut regions: Vec<String> = h.machines().into_iter().filter_map(|m| m.region).collect();
        regions.sort();
        regions
    };
    assert_eq!(regions(), ["scl"]);

    let (verdict, out) = scale(true);
    assert_eq!(verdict, xtask::verdict::Verdict::Pass, "{out}");
    assert!(
        out.contains("would run: ") && out.contains("scale count 1 --region gru"),
        "{out}"
    );
    assert_eq!(regions(), ["scl"], "a dry run changes nothing");

    let (verdict, out) = scale(false);
    assert_eq!(verdict, xtask::verdict::Verdict::Pass, "{out}");
    assert_eq!(regions(), ["gru", "scl"]);
    let (_, version) = h.call(
        &h.machines()
            .iter()
            .find(|m| m.region.as_deref() == Some("gru"))
            .unwrap()
            .id,
        "GET",
        "/api/v1/version",
        None,
    );
    assert_eq!(version["region"], "gru");

    let (verdict, out) = scale(false);
    assert_eq!(verdict, xtask::verdict::Verdict::Pass, "{out}");
    assert!(out.contains("nothing to do"), "{out}");
    let scales = h
        .fly
        .calls()
        .unwrap()
        .into_iter()
        .filter(|c| c.argv.first().map(String::as_str) == Some("scale"))
        .count();
    assert_eq!(scales, 1, "one flyctl scale call in all");
}
