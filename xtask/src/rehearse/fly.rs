//! The Fly half of the rehearsal, against the local Fly (a test double of flyctl whose
//! machines are real `cabanas` processes behind a round-robin proxy): secrets on stdin, a
//! deploy of HEAD proven to serve on both machines, smoke and the overlap race through the
//! proxy, and a rollback drill on an app with one machine stopped by auto-stop (fly.toml's
//! `auto_stop_machines = "stop"`, `min_machines_running = 1`, with a short idle limit): a
//! release whose checks never pass is rolled back and the previous commit serves again.
//! Nothing here is recorded (the records describe real environments); everything started is
//! stopped when the [`LocalFly`] guard drops.

use std::io::Write;
use std::path::Path;

use anyhow::Context;

use super::{PhaseOutcome, phase_line};
use crate::config::{DeployConfig, Environment, Target};
use crate::flyctl::{DeployCommand, Flyctl};
use crate::localfly::{Fault, LocalFly};
use crate::output::Output;
use crate::release::gates::Gates;
use crate::release::{RollbackPlan, failed_conditions};
use crate::release::{RollbackResult, read_serving, roll_back, rollback_target};
use crate::repo::Repo;
use crate::verdict::Verdict;
use crate::{overlap, smoke};

/// The environment name the Fly half runs under (never recorded).
const FLY_ENVIRONMENT: &str = "local-fly";

/// The app the rehearsal creates on the local Fly.
const APP: &str = "cabanas-rehearsal";

/// Machines of the app: enough for the proxy to spread requests and for a rolling deploy.
const MACHINES: usize = 2;
/// The region `create-app` puts the machines in (fly.toml's `primary_region`).
const PRIMARY_REGION: &str = "scl";
/// The second region the rehearsal clones a machine into, as production's `gru`.
const SECOND_REGION: &str = "gru";

/// flyctl's `--wait-timeout` for the good deploy, and the bound of the proofs.
const WAIT_SECS: u64 = 30;

/// The bound of one local `flyctl deploy`, build and rollout.
const DEPLOY_LIMIT_SECS: u64 = 120;

/// The drill's wait: how long the failing release's checks get before flyctl gives up. Its
/// checks can never pass (the image probes a path that cannot answer 200), so a longer wait
/// proves nothing more.
const DRILL_WAIT: std::time::Duration = std::time::Duration::from_millis(300);

/// How long a machine may go without a request before the local Fly's auto-stop stops it:
/// short, so the rehearsal sees a quiet app's stopped machine within seconds (Fly's proxy
/// takes minutes). Phases follow each other within a second, and a machine stopped between
/// them is started again by the proxy on the next request, as on Fly.
const IDLE_STOP: std::time::Duration = std::time::Duration::from_secs(1);

/// The longest pause between two looks for the stopped machine: the stop comes about
/// [`IDLE_STOP`] after the last request, and a pause doubling to half a second saw it up to
/// 0.4 s late.
const AUTO_STOP_POLL: std::time::Duration = std::time::Duration::from_millis(50);

/// How long the rehearsal waits for auto-stop to stop a machine before the drill.
const AUTO_STOP_BOUND: std::time::Duration = std::time::Duration::from_secs(30);

/// What the Fly half needs from the rehearsal.
pub struct FlySettings<'a> {
    /// The `cabanas` binary images are made from.
    pub binary: &'a Path,
    /// The `localfly` binary to use; built with cargo when `None`.
    pub localfly: Option<std::path::PathBuf>,
    /// The database every machine shares.
    pub database_url: String,
    /// The JWT secret (goes to the machines through `secrets import`, on stdin).
    pub jwt_secret: &'a str,
    /// The admin address the overlap cleanup signs for.
    pub admin_email: &'a str,
    /// Run the machines as containers of this image (`--image`), not as processes.
    pub image: Option<&'a str>,
}

/// Smoke through the local Fly's proxy, with the repository's plan; predeploy ran already.
struct ProxyGates<'a> {
    config: &'a DeployConfig,
    url: String,
    /// Run the latency benchmark too (the deploy's smoke); without it only the checks run
    /// (health, readiness, metrics, the read path: the drill's smoke after its rollback).
    bench: bool,
}

impl Gates for ProxyGates<'_> {
    fn predeploy(&self, _repo: &Repo, _env: &str, _record: bool) -> anyhow::Result<Verdict> {
        // The rehearsal ran predeploy as its first phase; a failure there is in the verdict.
        Ok(Verdict::Pass)
    }

    fn smoke(&self, _repo: &Repo, _env: &str) -> anyhow::Result<Verdict> {
        let target = Target::named(FLY_ENVIRONMENT, &self.url)?;
        let mut plan = smoke::SmokePlan::new(&self.config.smoke, &self.config.thresholds)?;
        if !self.bench {
            plan.bench = None;
        }
        let report = crate::http::runtime()?.block_on(smoke::measure(&target, &plan))?;
        Output::new(false).human(&smoke::render::human(&report));
        Ok(report.verdict)
    }
}

/// Runs the Fly half; returns its phases. The local Fly is stopped on every path.
/// `while_idle` runs once the app is quiet, before the rollback drill waits for auto-stop
/// (not at all when the deploy was not proven).
pub fn rehearse(
    repo: &Repo,
    config: &DeployConfig,
    settings: &FlySettings,
    while_idle: &mut dyn FnMut() -> anyhow::Result<()>,
) -> anyhow::Result<Vec<PhaseOutcome>> {
    let program = match &settings.localfly {
        Some(path) if path.is_file() => path.clone(),
        Some(path) => anyhow::bail!("--localfly-bin {} is not a file", path.display()),
        None => {
            phase_line("fly", "building the local Fly (cargo build --bin localfly)");
            crate::localfly::build(repo)?
        }
    };
    let container = settings.image.map(super::image::require).transpose()?;
    let mut fly = LocalFly::new(program, settings.binary)?;
    if let Some(container) = &container {
        fly = fly.with_container_image(&container.tag);
    }
    // Ctrl-C skips destructors: `local down` then stops the machines and the proxy.
    let down = {
        let program = fly.program().to_path_buf();
        let env = fly.env();
        crate::interrupt::on_interrupt(move || {
            let _ = std::process::Command::new(program)
                .args(["local", "down"])
                .envs(env)
                .stdin(std::process::Stdio::null())
                .output();
        })
    };
    let url = fly.create_app_idle_stop(APP, MACHINES, IDLE_STOP)?;
    phase_line(
        "fly",
        &format!(
            "local Fly app {APP} with {MACHINES} machines behind {url}, auto-stop after {}s idle",
            IDLE_STOP.as_secs()
        ),
    );
    let flyctl = fly.flyctl().in_dir(repo.root());
    let environment = Environment {
        app: APP.to_string(),
        url: url.clone(),
        env_file: "env/.env.fly.local".into(),
        template: "env/.env.fly.staging.template".into(),
        fly_config: "fly.toml".into(),
        thresholds: Default::default(),
        machines: None,
    };
    let gates = ProxyGates {
        config,
        url: url.clone(),
        bench: true,
    };
    let drill_gates = ProxyGates {
        config,
        url: url.clone(),
        bench: false,
    };
    let mut out = std::io::stderr();
    let mut phases = Vec::new();

    seed(settings)?;
    if container.is_some() {
        super::image::share_database(&settings.database_url)?;
    }
    let secrets = stage_secrets(&flyctl, settings, &mut out)?;
    phases.push(PhaseOutcome {
        phase: "fly secrets",
        verdict: secrets,
    });

    let args = crate::deploy::Options {
        wait_timeout: std::time::Duration::from_secs(WAIT_SECS),
        deploy_timeout: std::time::Duration::from_secs(DEPLOY_LIMIT_SECS),
        // No log window after the local deploy: the rehearsal stays fast, and the read is
        // tested against the fake flyctl (xtask/tests/it/deploy_logs.rs).
        logs: std::time::Duration::ZERO,
        ..crate::deploy::Options::for_env(FLY_ENVIRONMENT)
    };
    let (deployed, result) = crate::deploy::execute(
        repo,
        &args,
        &environment,
        flyctl.clone(),
        &gates,
        false,
        &mut out,
    )?;
    let proven = result
        .rollout
        .verification
        .as_ref()
        .is_some_and(|v| v.verdict == Verdict::Pass);
    phase_line(
        "fly deploy",
        &format!(
            "{} (HEAD {} proven on {MACHINES} machines: {})",
            deployed.label(),
            result.image_label.as_deref().unwrap_or("?"),
            if proven { "yes" } else { "no" }
        ),
    );
    phases.push(PhaseOutcome {
        phase: "fly deploy",
        verdict: if proven { Verdict::Pass } else { Verdict::Fail },
    });
    phases.push(PhaseOutcome {
        phase: "fly smoke",
        verdict: result.rollout.smoke.unwrap_or(Verdict::Fail),
    });
    if !proven {
        return Ok(phases);
    }

    // A second region, as production runs (one machine in scl, one in gru): a started machine
    // cloned into gru (`fly machine clone --region`, what `cargo xtask scale` has flyctl do).
    // Its writes answer `fly-replay: region=scl` and the proxy replays them there.
    let source = fly
        .app(APP)?
        .machines
        .values()
        .find(|m| m.state == "started")
        .map(|m| m.id.clone())
        .context("no started machine to clone into a second region")?;
    let second = fly.clone_machine(APP, &source, SECOND_REGION)?;
    phase_line(
        "fly regions",
        &format!("machine {second} cloned from {source} into {SECOND_REGION}"),
    );

    let token = overlap::sign_admin_token(
        settings.jwt_secret,
        settings.admin_email,
        chrono::Utc::now(),
    )?;
    let mut plan = overlap::OverlapPlan::new(Some(token));
    plan.concurrency = 20;
    plan.rounds = 1;
    // The racers alternate regions: half the bookings are replayed from gru to scl.
    plan.regions = vec![PRIMARY_REGION.into(), SECOND_REGION.into()];
    let target = Target::named(FLY_ENVIRONMENT, &url)?;
    let report = crate::http::runtime()?.block_on(overlap::run_rounds(&target, &plan))?;
    Output::new(false).human(&overlap::render_text(&report));
    phase_line(
        "fly overlap",
        &format!(
            "{} (through the proxy, racers alternating {PRIMARY_REGION} and {SECOND_REGION})",
            report.verdict.label()
        ),
    );
    phases.push(PhaseOutcome {
        phase: "fly overlap",
        verdict: report.verdict,
    });

    // A quiet app with fly.toml's `auto_stop_machines = "stop"`: auto-stop stops one machine
    // (min_machines_running keeps the other), and the bad release and the rollback are proven
    // the way real Fly leaves such a machine (updated, not started). What runs meanwhile
    // sends the app nothing.
    while_idle()?;
    let Some(stopped) = wait_for_auto_stop(&flyctl)? else {
        phase_line(
            "fly rollback",
            &format!(
                "FAIL (auto-stop stopped no machine within {}s)",
                AUTO_STOP_BOUND.as_secs()
            ),
        );
        phases.push(PhaseOutcome {
            phase: "fly rollback",
            verdict: Verdict::Fail,
        });
        return Ok(phases);
    };
    let drill = rollback_drill(repo, &fly, &flyctl, &environment, &drill_gates, &mut out)?;
    phase_line(
        "fly rollback",
        &format!(
            "{} (machine {stopped} stopped first by auto-stop, as Fly's proxy leaves a quiet app)",
            drill.label()
        ),
    );
    phases.push(PhaseOutcome {
        phase: "fly rollback",
        verdict: drill,
    });
    let pids = fly.pids();
    drop(fly);
    drop(down);
    let alive: Vec<u32> = pids
        .iter()
        .copied()
        .filter(|pid| crate::interrupt::process_alive(*pid))
        .collect();
    let shown: Vec<String> = pids.iter().map(u32::to_string).collect();
    phase_line(
        "fly",
        &format!(
            "local Fly stopped (pids {}){}",
            shown.join(", "),
            if alive.is_empty() {
                String::new()
            } else {
                format!("; still running: {alive:?}")
            }
        ),
    );
    phases.push(PhaseOutcome {
        phase: "fly teardown",
        verdict: if alive.is_empty() {
            Verdict::Pass
        } else {
            Verdict::Fail
        },
    });
    if let Some(container) = &container {
        phases.push(super::image::containers_phase(container)?);
    }
    Ok(phases)
}

/// Polls `machines list`, with a back-off from a few milliseconds to [`AUTO_STOP_POLL`], until
/// auto-stop has stopped a machine; returns its id (`None` when none stopped within
/// [`AUTO_STOP_BOUND`]).
fn wait_for_auto_stop(flyctl: &Flyctl) -> anyhow::Result<Option<String>> {
    let deadline = std::time::Instant::now() + AUTO_STOP_BOUND;
    let mut pause = std::time::Duration::from_millis(5);
    loop {
        let machines = flyctl
            .machines(APP, &mut std::io::sink())?
            .unwrap_or_default();
        if let Some(stopped) = machines.iter().find(|m| m.managed && m.is_stopped()) {
            return Ok(Some(stopped.id.clone()));
        }
        if std::time::Instant::now() >= deadline {
            return Ok(None);
        }
        std::thread::sleep(pause);
        pause = (pause * 2).min(AUTO_STOP_POLL);
    }
}

/// Migrates the Fly app's database and seeds the demo accommodations the overlap race books
/// (the deploy's release command migrates too; seeding is the operator's job on Fly).
fn seed(settings: &FlySettings) -> anyhow::Result<()> {
    for step in ["migrate", "seed-demo"] {
        let output = std::process::Command::new(settings.binary)
            .arg(step)
            .env("DATABASE_URL", &settings.database_url)
            .env("JWT_SECRET", settings.jwt_secret)
            .env("ADMIN_ALLOWED_EMAILS", settings.admin_email)
            .stdin(std::process::Stdio::null())
            .output()
            .with_context(|| format!("running {} {step}", settings.binary.display()))?;
        if !output.status.success() {
            anyhow::bail!(
                "`{} {step}` on the local Fly's database failed: {}",
                settings.binary.display(),
                crate::flyctl::tail(&String::from_utf8_lossy(&output.stderr), 5)
            );
        }
    }
    phase_line(
        "fly database",
        "migrated and seeded with the demo accommodations",
    );
    Ok(())
}

/// `secrets import --stage` on stdin, then `secrets list` must name every key.
fn stage_secrets(
    flyctl: &Flyctl,
    settings: &FlySettings,
    out: &mut dyn Write,
) -> anyhow::Result<Verdict> {
    let values = [
        ("DATABASE_URL", settings.database_url.as_str()),
        ("JWT_SECRET", settings.jwt_secret),
        ("ADMIN_ALLOWED_EMAILS", settings.admin_email),
    ];
    let payload = crate::secrets::fly_import::encode_for_fly_import(values.iter().copied())
        .context("encoding the rehearsal's secrets for flyctl secrets import")?;
    let keys: Vec<String> = values.iter().map(|(k, _)| k.to_string()).collect();
    let mut flyctl = flyctl.clone();
    flyctl.hide_values(values.iter().map(|(_, v)| *v));
    flyctl.secrets_import(APP, payload, keys.clone(), out)?;
    let listed = flyctl.secrets_list(APP, out)?.unwrap_or_default();
    let missing: Vec<&String> = keys
        .iter()
        .filter(|k| !listed.iter().any(|s| &s.name == *k))
        .collect();
    let verdict = if missing.is_empty() {
        Verdict::Pass
    } else {
        Verdict::Fail
    };
    phase_line(
        "fly secrets",
        &format!(
            "{} ({} staged on stdin{})",
            verdict.label(),
            keys.join(", "),
            if missing.is_empty() {
                String::new()
            } else {
                format!("; missing after import: {missing:?}")
            }
        ),
    );
    Ok(verdict)
}

/// Records what serves, deploys a release whose checks never pass, and rolls back to the
/// recorded image: passes when flyctl fails the bad release and the rollback is proven to
/// serve the previous commit on every machine.
fn rollback_drill(
    repo: &Repo,
    fly: &LocalFly,
    flyctl: &Flyctl,
    environment: &Environment,
    gates: &dyn Gates,
    out: &mut dyn Write,
) -> anyhow::Result<Verdict> {
    let serving = match read_serving(flyctl, APP, &environment.url, out)? {
        Ok(Some(serving)) => serving,
        Ok(None) => anyhow::bail!("the local Fly listed nothing"),
        Err(problem) => {
            writeln!(out, "rollback drill: {problem}")?;
            return Ok(Verdict::Fail);
        }
    };
    let Some(target) = rollback_target(repo, &serving) else {
        writeln!(out, "rollback drill: nothing serves to roll back to")?;
        return Ok(Verdict::Fail);
    };
    fly.fault(APP, Fault::ChecksNeverPass)?;
    let commit = target.commit.clone().unwrap_or_else(|| "unknown".into());
    let bad = DeployCommand {
        app: APP.to_string(),
        config: environment.fly_config.clone(),
        image: None,
        strategy: Some("rolling".into()),
        wait_timeout: DRILL_WAIT,
        build_args: vec![("GIT_COMMIT".into(), format!("drill-{commit}"))],
        image_label: Some("rollback-drill".into()),
        time_limit: Some(std::time::Duration::from_secs(DEPLOY_LIMIT_SECS)),
    };
    writeln!(
        out,
        "rollback drill: deploying a release whose checks never pass"
    )?;
    if flyctl.deploy(&bad, out).is_ok() {
        writeln!(
            out,
            "rollback drill: flyctl accepted a release whose checks never pass"
        )?;
        return Ok(Verdict::Fail);
    }
    let newer_than = match flyctl.releases(APP, &mut std::io::sink())? {
        Some(releases) => releases.first().map(|r| r.version),
        None => None,
    };
    let mut result = RollbackResult::new(APP);
    let plan = RollbackPlan {
        env_name: FLY_ENVIRONMENT,
        environment,
        image: &target.image,
        commit: target.commit.as_deref(),
        newer_than,
        wait_timeout: WAIT_SECS,
        deploy_timeout: DEPLOY_LIMIT_SECS,
    };
    roll_back(repo, flyctl, gates, &plan, &mut result, out)?;
    let proven = result
        .rollout
        .verification
        .as_ref()
        .is_some_and(|v| v.verdict == Verdict::Pass);
    if let Some(verification) = result.rollout.verification.as_ref().filter(|_| !proven) {
        writeln!(out, "rollback drill: {}", failed_conditions(verification))?;
    }
    for problem in &result.problems {
        writeln!(out, "rollback drill: {problem}")?;
    }
    Ok(if proven && result.problems.is_empty() {
        Verdict::Pass
    } else {
        Verdict::Fail
    })
}
