//! The comparisons `cargo xtask bench` runs: which clients, with which exact commands, and
//! which same-round ratios each one reports.

use std::ffi::OsString;
use std::path::{Path, PathBuf};
use std::time::Duration;

use super::client::{self, ClientRun};
use super::machine::Tools;
use super::results::{Comparison, Contestant, Metric, RatioSpec, RunOutcome};

mod prereserve;
use prereserve::{pinned, prereserve};

/// The comparisons `--only` accepts.
pub const NAMES: [&str; 6] = [
    "healthz",
    "open",
    "service",
    "layers",
    "prereserve",
    "pinned",
];

/// Connections of the closed-model and service comparisons.
pub const CONNECTIONS: u32 = 50;
/// The open model's low rate, where the generator's own pacing would show in the p50.
pub const LOW_RATE: f64 = 500.0;
/// Clients of the pre-reserve comparison (the pgbench ceiling and wrk against the service).
pub const PRERESERVE_CLIENTS: u32 = 32;

/// The targets the comparisons load.
#[derive(Debug, Clone)]
pub struct Targets {
    /// `cabanas serve`, e.g. `http://127.0.0.1:40123`.
    pub service: String,
    /// The bare `hello` example, when it was built.
    pub hello: Option<String>,
    /// The PostgreSQL URL the service uses (with `--postgres`).
    pub database: Option<String>,
}

/// What one comparison needs to run its clients.
#[derive(Debug, Clone)]
pub struct Inputs<'a> {
    /// The release `xtask` binary (smoke).
    pub xtask: PathBuf,
    /// The peer tools.
    pub tools: &'a Tools,
    /// The repository root (for `docs/bench/*`).
    pub root: &'a Path,
    /// Each client run's length.
    pub duration: Duration,
    /// The open model's high rate.
    pub high_rate: f64,
    /// Why the bare server is absent, when it is.
    pub hello_missing: Option<String>,
    /// The in-process stack measurement (`target/release/examples/stack`), or why it is
    /// absent.
    pub stack: Result<PathBuf, String>,
    /// CPUs this machine offers the benchmark.
    pub cpus: usize,
}

/// A comparison with how to run each of its clients.
pub struct Planned {
    /// The result, filled round by round.
    pub comparison: Comparison,
    /// One entry per contestant, same order.
    pub commands: Vec<Option<ClientCommand>>,
}

/// How to run one client.
pub struct ClientCommand {
    /// The executable.
    pub program: PathBuf,
    /// Its arguments.
    pub args: Vec<OsString>,
    /// Extra environment.
    pub env: Vec<(&'static str, String)>,
    /// Reads its figures from stdout.
    pub parse: fn(&str) -> anyhow::Result<ClientRun>,
    /// Empty the booking tables first (pre-reserve runs).
    pub reset_bookings: bool,
    /// The server whose CPU the run is charged with.
    pub server: Server,
    /// Where the run's processes run; `None`: anywhere.
    pub pin: Option<Pin>,
    /// Hold the client to the requests per second that this contestant (an index into the
    /// same comparison, run earlier in the round) measured in the same round, with pgbench's
    /// `-R`; `None`: as fast as it goes.
    pub rate_of: Option<usize>,
}

/// CPUs of a pinned run: PostgreSQL on one, the service and the client on another.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Pin {
    /// The CPU of every PostgreSQL process.
    pub database: usize,
    /// The CPU of the service and the client.
    pub rest: usize,
}

/// Which of the running servers a client talks to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Server {
    /// `cabanas serve`.
    Service,
    /// The bare `hello` example.
    Hello,
    /// None: the client talks to the database itself (pgbench).
    Database,
    /// None: the client is its own server (the in-process stack measurement).
    InProcess,
}

impl ClientCommand {
    fn shown(&self) -> String {
        let env: Vec<String> = self
            .env
            .iter()
            .map(|(key, value)| format!("{key}={value} "))
            .collect();
        let args: Vec<String> = self
            .args
            .iter()
            .map(|a| a.to_string_lossy().into_owned())
            .collect();
        let program = self.program.file_name().map_or_else(
            || self.program.display().to_string(),
            |n| n.to_string_lossy().into_owned(),
        );
        let program = match program.as_str() {
            "xtask" => "target/release/xtask".to_string(),
            "stack" => "target/release/examples/stack".to_string(),
            _ => program,
        };
        // A pinned client is shown as `taskset` would run it; the servers' pinning is said in
        // the comparison's text and its affinity lines.
        let pinned = self
            .pin
            .map_or(String::new(), |pin| format!("taskset -c {} ", pin.rest));
        let rate = match self.rate_of {
            Some(_) => "-R $RATE ",
            None => "",
        };
        format!("{}{pinned}{program} {rate}{}", env.concat(), args.join(" "))
    }

    /// The arguments of this round's run: [`ClientCommand::rate_of`]'s rate put in front
    /// (`-R <req/s>`, whole requests per second, at least 1) from the same round's run of that
    /// contestant. An error when that run failed or has not run.
    pub fn args_for_round(
        &self,
        contestants: &[Contestant],
        round: u32,
    ) -> Result<Vec<OsString>, String> {
        let Some(index) = self.rate_of else {
            return Ok(self.args.clone());
        };
        let Some(source) = contestants.get(index) else {
            return Err(format!("no contestant {index} to take the rate from"));
        };
        let this_round = usize::try_from(round).ok().and_then(|r| r.checked_sub(1));
        match this_round.and_then(|r| source.runs.get(r)) {
            Some(RunOutcome::Measured(run)) if run.rps.is_finite() && run.rps >= 1.0 => {
                let rate = format!("{:.0}", run.rps);
                Ok([vec!["-R".into(), rate.into()], self.args.clone()].concat())
            }
            Some(RunOutcome::Measured(run)) => Err(format!(
                "{} measured {} req/s in round {round}: no rate to hold to",
                source.label, run.rps
            )),
            Some(RunOutcome::Failed { .. }) => Err(format!(
                "{} failed in round {round}: no rate to hold to",
                source.label
            )),
            None => Err(format!(
                "{} has not run in round {round}: no rate to hold to",
                source.label
            )),
        }
    }
}

fn words(text: &str) -> Vec<OsString> {
    text.split_whitespace().map(OsString::from).collect()
}

fn secs(duration: Duration) -> u64 {
    duration.as_secs_f64().ceil().max(1.0) as u64
}

/// One contestant: its row and its command, or the reason it cannot run.
fn entry(
    label: &str,
    tool: &Result<PathBuf, String>,
    build: impl FnOnce(PathBuf) -> ClientCommand,
) -> (Contestant, Option<ClientCommand>) {
    match tool {
        Ok(path) => {
            let command = build(path.clone());
            (
                Contestant {
                    label: label.into(),
                    command: command.shown(),
                    missing: None,
                    runs: Vec::new(),
                },
                Some(command),
            )
        }
        Err(missing) => (
            Contestant {
                label: label.into(),
                command: String::new(),
                missing: Some(missing.clone()),
                runs: Vec::new(),
            },
            None,
        ),
    }
}

fn smoke(xtask: &Path, url: &str, extra: &str, d: Duration) -> ClientCommand {
    let mut args = words(&format!(
        "smoke --url {url} --skip-checks --endpoint /api/v1/healthz --concurrency {CONNECTIONS} --duration {}s",
        secs(d)
    ));
    args.extend(words(extra));
    args.push("--json".into());
    ClientCommand {
        program: xtask.to_path_buf(),
        args,
        env: Vec::new(),
        parse: client::parse_smoke,
        reset_bookings: false,
        server: Server::Service,
        pin: None,
        rate_of: None,
    }
}

fn oha(program: PathBuf, url: &str, extra: &str, d: Duration) -> ClientCommand {
    let mut args = words(&format!(
        "-z {}s -c {CONNECTIONS} --no-tui --output-format json",
        secs(d)
    ));
    args.extend(words(extra));
    args.push(format!("{url}/api/v1/healthz").into());
    ClientCommand {
        program,
        args,
        env: Vec::new(),
        parse: client::parse_oha,
        reset_bookings: false,
        server: Server::Service,
        pin: None,
        rate_of: None,
    }
}

fn wrk(program: PathBuf, url: &str, server: Server, d: Duration) -> ClientCommand {
    ClientCommand {
        program,
        args: words(&format!(
            "-t2 -c{CONNECTIONS} -d{}s --latency {url}",
            secs(d)
        )),
        env: Vec::new(),
        parse: client::parse_wrk,
        reset_bookings: false,
        server,
        pin: None,
        rate_of: None,
    }
}

/// The comparisons named in `only` (all when empty) that can run with these targets.
pub fn comparisons(only: &[String], targets: &Targets, inputs: &Inputs) -> Vec<Planned> {
    let wanted = |name: &str| only.is_empty() || only.iter().any(|o| o == name);
    let mut planned = Vec::new();
    let (d, url, tools) = (inputs.duration, targets.service.as_str(), inputs.tools);
    let ours = Ok(inputs.xtask.clone());
    if wanted("healthz") {
        let rows = vec![
            entry("xtask smoke", &ours, |p| smoke(&p, url, "", d)),
            entry("oha", &tools.oha, |p| oha(p, url, "", d)),
            entry("wrk", &tools.wrk, |p| {
                wrk(p, &format!("{url}/api/v1/healthz"), Server::Service, d)
            }),
        ];
        planned.push(plan(
            "healthz",
            "Closed model: 50 connections on healthz",
            "Each client keeps 50 connections busy against `cabanas serve`'s healthz. On a \
             machine with few cores the client shares the CPU with the service, so a leaner \
             client leaves more for the service.",
            rows,
            vec![
                ratio("smoke / oha", 0, 1, Metric::Rps),
                ratio("smoke / wrk", 0, 2, Metric::Rps),
                ratio("smoke / oha", 0, 1, Metric::CpuPer100k),
                ratio("smoke / wrk", 0, 2, Metric::CpuPer100k),
            ],
        ));
    }
    if wanted("open") {
        let (low, high) = (LOW_RATE, inputs.high_rate);
        let rows = vec![
            entry(&format!("xtask smoke, {low} req/s"), &ours, |p| {
                smoke(&p, url, &format!("--rate {low}"), d)
            }),
            entry(&format!("oha, {low} req/s"), &tools.oha, |p| {
                oha(p, url, &format!("-q {low} --latency-correction"), d)
            }),
            entry(&format!("xtask smoke, {high} req/s"), &ours, |p| {
                smoke(&p, url, &format!("--rate {high}"), d)
            }),
            entry(&format!("oha, {high} req/s"), &tools.oha, |p| {
                oha(p, url, &format!("-q {high} --latency-correction"), d)
            }),
        ];
        let mut added = ratio("smoke - oha at the low rate", 0, 1, Metric::P50);
        added.difference = true;
        planned.push(plan(
            "open",
            "Open model: healthz at a fixed rate",
            "Requests are due at fixed times and latency counts from the intended time, so a \
             generator that sends late inflates every figure. At the low rate the p50 shows the \
             pacing's own delay; at the high rate, late sends and the achieved rate show whether \
             the generator kept up (smoke exits 2 when more than 1 % is late). oha's \
             `--latency-correction` counts from when its ticker woke, not from the intended \
             time, so it leaves its own pacing's lateness out; the last ratio holds it against \
             smoke's latency counted the same way, from when smoke released each request to \
             a load thread.",
            rows,
            vec![
                added,
                ratio("smoke / oha at the high rate", 2, 3, Metric::Rps),
                ratio("smoke / oha at the high rate", 2, 3, Metric::CpuPer100k),
                ratio("smoke / oha at the high rate", 2, 3, Metric::P99),
                ratio("smoke / oha at the high rate", 2, 3, Metric::P99FromRelease),
            ],
        ));
    }
    if wanted("service") {
        let hello = match (&targets.hello, &inputs.hello_missing) {
            (Some(hello), _) => tools.wrk.clone().map(|p| (p, hello.clone())),
            (None, missing) => Err(missing.clone().unwrap_or_else(|| "not built".into())),
        };
        let rows = vec![
            entry("cabanas healthz", &tools.wrk, |p| {
                wrk(p, &format!("{url}/api/v1/healthz"), Server::Service, d)
            }),
            entry(
                "bare axum hello healthz",
                &hello.as_ref().map(|(p, _)| p.clone()).map_err(Clone::clone),
                |p| {
                    let base = hello.as_ref().map(|(_, u)| u.as_str()).unwrap_or_default();
                    wrk(p, &format!("{base}/api/v1/healthz"), Server::Hello, d)
                },
            ),
            entry("cabanas readyz", &tools.wrk, |p| {
                wrk(p, &format!("{url}/api/v1/readyz"), Server::Service, d)
            }),
            entry("cabanas accommodations", &tools.wrk, |p| {
                wrk(
                    p,
                    &format!("{url}/api/v1/reservations/accommodations"),
                    Server::Service,
                    d,
                )
            }),
        ];
        planned.push(plan(
            "service",
            "The service: routes against a bare server (wrk, 50 connections)",
            "`target/release/examples/hello` is a bare axum server built with the same crates: \
             healthz / bare is what the middleware stack and the handler cost. readyz and the \
             accommodations list are compared with healthz.",
            rows,
            vec![
                ratio("healthz / bare", 0, 1, Metric::Rps),
                ratio("healthz / bare", 0, 1, Metric::ServerCpuPer100k),
                ratio("readyz / healthz", 2, 0, Metric::Rps),
                ratio("accommodations / healthz", 3, 0, Metric::Rps),
            ],
        ));
    }
    if wanted("layers") {
        planned.push(layers(inputs));
    }
    if let Some(database) = &targets.database {
        if wanted("prereserve") {
            planned.push(prereserve(url, database, inputs));
        }
        if wanted("pinned") {
            planned.push(pinned(url, database, inputs));
        }
    }
    for p in &mut planned {
        for k in &mut p.comparison.contestants {
            k.command = placeholders(&k.command, targets, inputs.root);
        }
    }
    planned
}

/// The shared middleware layers added one at a time around the bare `hello` handler, then
/// the whole service's healthz, each measured in process by `examples/stack`.
fn layers(inputs: &Inputs) -> Planned {
    let d = secs(inputs.duration);
    let stack = |label: &str, what: &str| {
        entry(label, &inputs.stack, |program| ClientCommand {
            program,
            args: words(&format!("{what} --duration {d}")),
            env: vec![("RUST_LOG", "warn".into())],
            parse: client::parse_stack,
            reset_bookings: false,
            server: Server::InProcess,
            pin: None,
            rate_of: None,
        })
    };
    let rows = vec![
        stack("bare axum route (hello's handler)", "--layers none"),
        stack("+ per-route", "--layers per-route"),
        stack("+ CORS", "--layers per-route,cors"),
        stack("+ access log", "--layers per-route,cors,trace"),
        stack("+ request id (every layer)", "--layers all"),
        stack("the service's healthz", "--service"),
    ];
    let added = |label: &str, numerator: usize| {
        let mut spec = ratio(label, numerator, numerator - 1, Metric::NsPerRequest);
        spec.difference = true;
        spec
    };
    let mut whole = ratio("the service's healthz - bare", 5, 0, Metric::NsPerRequest);
    whole.difference = true;
    plan(
        "layers",
        "The middleware stack, layer by layer (in process)",
        "What each shared layer costs a request, without the network: `examples/stack` sends \
         healthz straight to the tower service, one request at a time on one thread, and \
         times them. The layers are added in the order they wrap the routes, innermost first: \
         per-route (metrics by route template, the rate limit, write health, the timeout, \
         panics as 500s, the body limit), CORS, the access log (its span is off for a probe at \
         the default `RUST_LOG`), the request id. The last row adds the service's own router \
         and healthz handler (the health probe's cached result, its JSON body). A time per \
         request is 1 / the rate; each difference is one row minus the row above.",
        rows,
        vec![
            added("per-route - bare", 1),
            added("CORS - per-route", 2),
            added("access log - CORS", 3),
            added("request id - access log", 4),
            added("healthz handler and router - every layer", 5),
            whole,
            ratio("the service's healthz / bare", 5, 0, Metric::NsPerRequest),
        ],
    )
}

/// A command as the docs show it: the run's ports and paths replaced by names a reader sets.
fn placeholders(command: &str, targets: &Targets, root: &Path) -> String {
    let mut shown = command.replace(&format!("{}/", root.display()), "");
    if let Some(database) = &targets.database {
        shown = shown.replace(database.as_str(), "$DATABASE_URL");
    }
    if let Some(hello) = &targets.hello {
        shown = shown.replace(hello.as_str(), "$HELLO");
    }
    shown.replace(targets.service.as_str(), "$SERVICE")
}

fn ratio(label: &str, numerator: usize, denominator: usize, metric: Metric) -> RatioSpec {
    RatioSpec {
        label: label.into(),
        numerator,
        denominator,
        metric,
        difference: false,
    }
}

fn plan(
    id: &str,
    title: &str,
    about: &str,
    rows: Vec<(Contestant, Option<ClientCommand>)>,
    ratios: Vec<RatioSpec>,
) -> Planned {
    let (contestants, commands) = rows.into_iter().unzip();
    Planned {
        comparison: Comparison {
            id: id.into(),
            title: title.into(),
            about: about.into(),
            contestants,
            ratios,
        },
        commands,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tools(oha: Result<PathBuf, String>) -> Tools {
        Tools {
            oha,
            wrk: Ok("/usr/bin/wrk".into()),
            pgbench: Err("pgbench not installed: `apt-get install postgresql-client`".into()),
            psql: Err("psql not installed".into()),
        }
    }

    fn inputs<'a>(tools: &'a Tools, root: &'a Path) -> Inputs<'a> {
        Inputs {
            xtask: root.join("target/release/xtask"),
            tools,
            root,
            duration: Duration::from_millis(2500),
            high_rate: 15_000.0,
            hello_missing: Some("backend/examples/hello.rs is missing".into()),
            stack: Ok(root.join("target/release/examples/stack")),
            cpus: 2,
        }
    }

    fn targets() -> Targets {
        Targets {
            service: "http://127.0.0.1:40123".into(),
            hello: None,
            database: None,
        }
    }

    #[test]
    fn a_missing_peer_is_named_with_its_install_command_and_not_run() {
        let missing = "oha not installed: `cargo install oha --locked`".to_string();
        let tools = tools(Err(missing.clone()));
        let root = Path::new("/repo");
        let planned = comparisons(&["healthz".into()], &targets(), &inputs(&tools, root));
        assert_eq!(planned.len(), 1);
        let healthz = &planned[0];
        let labels: Vec<&str> = healthz
            .comparison
            .contestants
            .iter()
            .map(|c| c.label.as_str())
            .collect();
        assert_eq!(labels, ["xtask smoke", "oha", "wrk"]);
        assert_eq!(healthz.comparison.contestants[1].missing, Some(missing));
        assert!(healthz.commands[1].is_none());
        assert!(healthz.commands[0].is_some() && healthz.commands[2].is_some());
    }

    #[test]
    fn commands_are_shown_with_placeholders_and_whole_seconds() {
        let tools = tools(Ok("/root/.cargo/bin/oha".into()));
        let root = Path::new("/repo");
        let planned = comparisons(&[], &targets(), &inputs(&tools, root));
        let ids: Vec<&str> = planned.iter().map(|p| p.comparison.id.as_str()).collect();
        assert_eq!(
            ids,
            ["healthz", "open", "service", "layers"],
            "prereserve needs --postgres"
        );
        let shown: Vec<&str> = planned[0]
            .comparison
            .contestants
            .iter()
            .map(|c| c.command.as_str())
            .collect();
        assert_eq!(
            shown,
            [
                "target/release/xtask smoke --url $SERVICE --skip-checks --endpoint /api/v1/healthz --concurrency 50 --duration 3s --json",
                "oha -z 3s -c 50 --no-tui --output-format json $SERVICE/api/v1/healthz",
                "wrk -t2 -c50 -d3s --latency $SERVICE/api/v1/healthz",
            ]
        );
        let service = &planned[2].comparison;
        assert_eq!(
            service.contestants[1].missing.as_deref(),
            Some("backend/examples/hello.rs is missing")
        );
    }

    #[test]
    fn the_layers_are_added_one_at_a_time_and_each_difference_is_one_row_minus_the_one_above() {
        let tools = tools(Ok("/root/.cargo/bin/oha".into()));
        let root = Path::new("/repo");
        let planned = comparisons(&["layers".into()], &targets(), &inputs(&tools, root));
        let layers = &planned[0];
        assert_eq!(
            shown(layers),
            [
                "RUST_LOG=warn target/release/examples/stack --layers none --duration 3",
                "RUST_LOG=warn target/release/examples/stack --layers per-route --duration 3",
                "RUST_LOG=warn target/release/examples/stack --layers per-route,cors --duration 3",
                "RUST_LOG=warn target/release/examples/stack --layers per-route,cors,trace --duration 3",
                "RUST_LOG=warn target/release/examples/stack --layers all --duration 3",
                "RUST_LOG=warn target/release/examples/stack --service --duration 3",
            ]
        );
        let steps: Vec<(usize, usize, bool)> = layers
            .comparison
            .ratios
            .iter()
            .map(|r| (r.numerator, r.denominator, r.difference))
            .collect();
        assert_eq!(
            steps,
            [
                (1, 0, true),
                (2, 1, true),
                (3, 2, true),
                (4, 3, true),
                (5, 4, true),
                (5, 0, true),
                (5, 0, false)
            ]
        );
        assert!(
            layers
                .commands
                .iter()
                .flatten()
                .all(|c| c.server == Server::InProcess)
        );

        // Not built: every row says how to build it, and nothing runs.
        let mut unbuilt = inputs(&tools, root);
        unbuilt.stack =
            Err("stack is not built: `cargo build --release -p backend --example stack`".into());
        let planned = comparisons(&["layers".into()], &targets(), &unbuilt);
        assert!(planned[0].commands.iter().all(Option::is_none));
        assert!(planned[0].comparison.contestants.iter().all(|c| {
            c.missing
                .as_deref()
                .is_some_and(|m| m.contains("--example stack"))
        }));
    }

    /// Every peer installed, and a PostgreSQL target.
    fn on_postgres() -> (Tools, Targets) {
        let mut tools = tools(Ok("/root/.cargo/bin/oha".into()));
        tools.pgbench = Ok("/usr/bin/pgbench".into());
        let targets = Targets {
            database: Some("postgres://postgres@127.0.0.1:5999/postgres".into()),
            ..targets()
        };
        (tools, targets)
    }

    fn shown(planned: &Planned) -> Vec<&str> {
        planned
            .comparison
            .contestants
            .iter()
            .map(|c| c.command.as_str())
            .collect()
    }

    #[test]
    fn prereserve_runs_the_contract_commands_and_empties_the_tables_first() {
        let (tools, targets) = on_postgres();
        let root = Path::new("/repo");
        let planned = comparisons(&["prereserve".into()], &targets, &inputs(&tools, root));
        let shown = shown(&planned[0]);
        assert_eq!(
            shown[..2],
            [
                "pgbench -n -M prepared -c 32 -j 2 -T 3 -D cabins=3 -f docs/bench/prereserve.pgbench $DATABASE_URL",
                "CABINS=3 wrk -t2 -c32 -d3s --latency -s docs/bench/prereserve.lua $SERVICE",
            ]
        );
        assert!(
            planned[0]
                .commands
                .iter()
                .all(|c| c.as_ref().is_some_and(|c| c.reset_bookings))
        );
        // The last pgbench run books at the rate the service's 30-cabin run measured.
        assert_eq!(
            shown[2..],
            [
                "pgbench -n -M prepared -c 32 -j 2 -T 3 -D cabins=30 -f docs/bench/prereserve.pgbench $DATABASE_URL",
                "CABINS=30 wrk -t2 -c32 -d3s --latency -s docs/bench/prereserve.lua $SERVICE",
                "pgbench -R $RATE -n -M prepared -c 32 -j 2 -T 3 -D cabins=30 -f docs/bench/prereserve.pgbench $DATABASE_URL",
            ]
        );
        let rates: Vec<Option<usize>> = planned[0]
            .commands
            .iter()
            .map(|c| c.as_ref().and_then(|c| c.rate_of))
            .collect();
        assert_eq!(rates, [None, None, None, None, Some(3)]);
    }

    #[test]
    fn a_held_run_takes_the_rate_its_source_measured_in_the_same_round() {
        let (tools, targets) = on_postgres();
        let planned = comparisons(
            &["prereserve".into()],
            &targets,
            &inputs(&tools, Path::new("/repo")),
        );
        let held = planned[0].commands[4].as_ref().unwrap();
        let mut contestants = planned[0].comparison.contestants.clone();
        let measured = |rps: f64| {
            RunOutcome::Measured(Box::new(ClientRun {
                rps,
                ..ClientRun::default()
            }))
        };
        let error = held.args_for_round(&contestants, 1).unwrap_err();
        assert!(error.contains("has not run in round 1"), "{error}");

        contestants[3].runs.push(measured(5_401.6));
        contestants[3].runs.push(RunOutcome::Failed {
            reason: "wrk exited 1".into(),
        });
        contestants[3].runs.push(measured(0.2));
        let args = held.args_for_round(&contestants, 1).unwrap();
        let args: Vec<&str> = args.iter().map(|a| a.to_str().unwrap()).collect();
        assert_eq!(args[..3], ["-R", "5402", "-n"]);
        assert_eq!(
            args.last(),
            Some(&"postgres://postgres@127.0.0.1:5999/postgres")
        );
        let error = held.args_for_round(&contestants, 2).unwrap_err();
        assert!(error.contains("failed in round 2"), "{error}");
        let error = held.args_for_round(&contestants, 3).unwrap_err();
        assert!(error.contains("no rate to hold to"), "{error}");
        // A run that holds no rate keeps its arguments whatever the others did.
        let free = planned[0].commands[2].as_ref().unwrap();
        assert_eq!(free.args_for_round(&contestants, 2).unwrap(), free.args);
    }

    #[test]
    fn the_pinned_comparison_pins_postgres_apart_and_needs_two_cpus() {
        let (tools, targets) = on_postgres();
        let root = Path::new("/repo");
        let planned = comparisons(&["pinned".into()], &targets, &inputs(&tools, root));
        assert_eq!(planned.len(), 1);
        assert_eq!(
            shown(&planned[0]),
            [
                "taskset -c 1 pgbench -n -M prepared -c 32 -j 2 -T 3 -D cabins=30 -f docs/bench/prereserve.pgbench $DATABASE_URL",
                "CABINS=30 taskset -c 1 wrk -t2 -c32 -d3s --latency -s docs/bench/prereserve.lua $SERVICE",
            ]
        );
        let pins: Vec<Option<Pin>> = planned[0]
            .commands
            .iter()
            .map(|c| c.as_ref().and_then(|c| c.pin))
            .collect();
        let apart = Some(Pin {
            database: 0,
            rest: 1,
        });
        assert_eq!(pins, [apart, apart]);

        let one_cpu = Inputs {
            cpus: 1,
            ..inputs(&tools, root)
        };
        let planned = comparisons(&["pinned".into()], &targets, &one_cpu);
        for k in &planned[0].comparison.contestants {
            let missing = k.missing.as_deref().unwrap_or_default();
            assert!(missing.contains("at least 2 CPUs"), "{missing}");
        }
        assert!(planned[0].commands.iter().all(Option::is_none));
        // Without PostgreSQL there is nothing to pin.
        let sqlite = comparisons(
            &["pinned".into()],
            &super::tests::targets(),
            &inputs(&tools, root),
        );
        assert!(sqlite.is_empty());
    }
}
