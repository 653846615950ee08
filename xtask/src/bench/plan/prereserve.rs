//! The comparisons on PostgreSQL: pre-reserve through the service against pgbench running the
//! same statements (the database's ceiling), on shared cores and with PostgreSQL pinned to a
//! CPU of its own.

use std::path::PathBuf;

use super::super::client;
use super::super::results::Metric;
use super::{
    ClientCommand, Inputs, PRERESERVE_CLIENTS, Pin, Planned, Server, entry, plan, ratio, secs,
    words,
};

/// pgbench running one booking's statements straight against the database.
fn pgbench_ceiling(
    program: PathBuf,
    cabins: u32,
    database: &str,
    inputs: &Inputs,
) -> ClientCommand {
    let script = inputs.root.join("docs/bench/prereserve.pgbench");
    ClientCommand {
        program,
        args: [
            words(&format!(
                "-n -M prepared -c {PRERESERVE_CLIENTS} -j 2 -T {} -D cabins={cabins} -f",
                secs(inputs.duration)
            )),
            vec![script.into(), database.into()],
        ]
        .concat(),
        env: Vec::new(),
        parse: client::parse_pgbench,
        reset_bookings: true,
        server: Server::Database,
        pin: None,
        rate_of: None,
    }
}

/// wrk booking through the service, one non-conflicting booking per request.
fn service_prereserve(program: PathBuf, cabins: u32, url: &str, inputs: &Inputs) -> ClientCommand {
    let script = inputs.root.join("docs/bench/prereserve.lua");
    ClientCommand {
        program,
        args: [
            words(&format!(
                "-t2 -c{PRERESERVE_CLIENTS} -d{}s --latency -s",
                secs(inputs.duration)
            )),
            vec![script.into(), url.into()],
        ]
        .concat(),
        env: vec![("CABINS", cabins.to_string())],
        parse: client::parse_wrk,
        reset_bookings: true,
        server: Server::Service,
        pin: None,
        rate_of: None,
    }
}

pub(super) fn prereserve(url: &str, database: &str, inputs: &Inputs) -> Planned {
    let tools = inputs.tools;
    let mut rows = Vec::new();
    for cabins in [3, 30] {
        rows.push(entry(
            &format!("pgbench ceiling, {cabins} cabins"),
            &tools.pgbench,
            |program| pgbench_ceiling(program, cabins, database, inputs),
        ));
        rows.push(entry(
            &format!("service pre-reserve, {cabins} cabins"),
            &tools.wrk,
            |program| service_prereserve(program, cabins, url, inputs),
        ));
    }
    // The database's CPU per booking depends on the rate it books at (fewer commits share
    // each WAL flush, and its processes sleep and wake more per booking when it has idle
    // time), so the service's share is also held against pgbench booking at the service's
    // rate: the row after the service's run.
    let service_30 = rows.len() - 1;
    rows.push(entry(
        "pgbench at the service's rate, 30 cabins",
        &tools.pgbench,
        |program| ClientCommand {
            rate_of: Some(service_30),
            ..pgbench_ceiling(program, 30, database, inputs)
        },
    ));
    plan(
        "prereserve",
        "Pre-reserve on PostgreSQL (fsync on) against the pgbench ceiling",
        "pgbench runs the statements the service runs per booking (docs/bench/prereserve.pgbench) \
         straight against the database with 32 clients; wrk books through the service with 32 \
         connections (docs/bench/prereserve.lua). The booking tables are emptied before each run. \
         Client, service and database share the machine's cores: where the database has no idle \
         time left, the req/s ratio follows the inverse of the CPU-per-booking ratio of all \
         processes, the service's hop (HTTP in, a second client of the database) included. \
         The last pgbench run is held with `-R` (Poisson arrivals) to the req/s the service's \
         30-cabin run measured in the same round: the database's CPU per booking grows as its \
         rate falls (fewer commits share each WAL flush, more sleeping and waking per booking), \
         so the service's path is compared with the same statements at the same rate.",
        rows,
        vec![
            ratio("service / pgbench, 3 cabins", 1, 0, Metric::Rps),
            ratio("service / pgbench, 30 cabins", 3, 2, Metric::Rps),
            ratio("service / pgbench, 30 cabins", 3, 2, Metric::AllCpuPer100k),
            ratio(
                "service / pgbench, 30 cabins",
                3,
                2,
                Metric::DatabaseCpuPer100k,
            ),
            ratio(
                "service / pgbench at the service's rate, 30 cabins",
                3,
                4,
                Metric::DatabaseCpuPer100k,
            ),
        ],
    )
}

/// The pre-reserve comparison at 30 cabins with PostgreSQL on a CPU of its own (CPU 0) and
/// the service and the client on another (CPU 1), as on Fly where the database has its own
/// machine. Needs at least 2 CPUs.
pub(super) fn pinned(url: &str, database: &str, inputs: &Inputs) -> Planned {
    let pin = Pin {
        database: 0,
        rest: 1,
    };
    let cabins = 30;
    let two_cpus = |tool: &Result<PathBuf, String>| match inputs.cpus {
        n if n >= 2 => tool.clone(),
        n => Err(format!(
            "needs at least 2 CPUs to give PostgreSQL one of its own; this machine offers {n}"
        )),
    };
    let pinned = |mut command: ClientCommand| {
        command.pin = Some(pin);
        command
    };
    let rows = vec![
        entry(
            &format!("pgbench ceiling, {cabins} cabins, pinned"),
            &two_cpus(&inputs.tools.pgbench),
            |program| pinned(pgbench_ceiling(program, cabins, database, inputs)),
        ),
        entry(
            &format!("service pre-reserve, {cabins} cabins, pinned"),
            &two_cpus(&inputs.tools.wrk),
            |program| pinned(service_prereserve(program, cabins, url, inputs)),
        ),
    ];
    plan(
        "pinned",
        "Pre-reserve with PostgreSQL on a CPU of its own",
        "The 30-cabin pre-reserve runs again with every PostgreSQL process (the postmaster and \
         the backends it forks) on CPU 0 and the service and the client on CPU 1, as on Fly \
         where the database runs on a machine of its own: the service's HTTP hop no longer takes \
         CPU from the database. The affinity below each run is what `/proc/<pid>/status` \
         reported while it ran.",
        rows,
        vec![
            ratio("service / pgbench, pinned", 1, 0, Metric::Rps),
            ratio(
                "service / pgbench, pinned",
                1,
                0,
                Metric::DatabaseCpuPer100k,
            ),
        ],
    )
}
