//! The command line of `localfly`: flyctl's argv for the subset the tasks use, plus the
//! `local ...` admin commands. Anything else is rejected by clap, naming the command or flag.

use std::collections::BTreeMap;
use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};

use super::state::Fault;

/// A local stand-in for flyctl: apps, secrets, releases and machines that are real `cabanas`
/// processes behind a local proxy. State lives in `$LOCALFLY_DIR`. A test double only.
#[derive(Debug, Parser)]
#[command(name = "localfly", version)]
pub struct Cli {
    /// The command.
    #[command(subcommand)]
    pub command: FlyCommand,
}

/// `--app`, as flyctl spells it.
#[derive(Debug, Args)]
pub struct AppFlag {
    /// The Fly app.
    #[arg(short = 'a', long)]
    pub app: String,
}

/// The flags of a `list` of one app's things (`secrets list`, `machines list`).
#[derive(Debug, Args)]
pub struct AppListing {
    #[command(flatten)]
    pub app: AppFlag,
    /// JSON output.
    #[arg(long, short = 'j')]
    pub json: bool,
}

/// The flyctl subset, and `local`.
#[derive(Debug, Subcommand)]
pub enum FlyCommand {
    /// Print the version, as `flyctl version` does.
    Version,
    /// Authentication.
    Auth {
        /// The auth command.
        #[command(subcommand)]
        command: AuthCommand,
    },
    /// The app's status and machines.
    Status {
        #[command(flatten)]
        app: AppFlag,
        /// JSON output.
        #[arg(long, short = 'j')]
        json: bool,
    },
    /// Apps.
    #[command(alias = "app")]
    Apps {
        /// The apps command.
        #[command(subcommand)]
        command: AppsCommand,
    },
    /// Secrets.
    Secrets {
        /// The secrets command.
        #[command(subcommand)]
        command: SecretsCommand,
    },
    /// Deploy a build (a copy of `$LOCALFLY_CABANAS_BIN`) or an image.
    Deploy(DeployArgs),
    /// The app's releases, newest first.
    Releases {
        #[command(flatten)]
        app: AppFlag,
        /// JSON output.
        #[arg(long, short = 'j')]
        json: bool,
        /// Include each release's image ref.
        #[arg(long)]
        image: bool,
    },
    /// Machines.
    #[command(aliases = ["machine", "m"])]
    Machines {
        /// The machines command.
        #[command(subcommand)]
        command: MachinesCommand,
    },
    /// Machine counts per region, as `fly scale count`.
    Scale {
        /// The scale command.
        #[command(subcommand)]
        command: ScaleCommand,
    },
    /// The machines' output.
    Logs {
        #[command(flatten)]
        app: AppFlag,
        /// Print one page and exit; with nothing logged, wait for a line, as flyctl does
        /// (required: localfly does not follow logs).
        #[arg(long, short = 'n')]
        no_tail: bool,
    },
    /// Admin commands of the local Fly (not flyctl's).
    Local {
        /// The admin command.
        #[command(subcommand)]
        command: LocalCommand,
    },
}

/// `auth ...`.
#[derive(Debug, Subcommand)]
pub enum AuthCommand {
    /// Who flyctl is logged in as.
    Whoami,
}

/// `apps ...`.
#[derive(Debug, Subcommand)]
pub enum AppsCommand {
    /// Every app.
    #[command(alias = "ls")]
    List {
        /// JSON output.
        #[arg(long, short = 'j')]
        json: bool,
    },
}

/// `secrets ...`.
#[derive(Debug, Subcommand)]
pub enum SecretsCommand {
    /// Read NAME=VALUE lines from stdin (flyctl's import syntax).
    Import {
        #[command(flatten)]
        app: AppFlag,
        /// Store the values for the next deploy without restarting machines.
        #[arg(long)]
        stage: bool,
    },
    /// Names and digests of the secrets, never values.
    #[command(alias = "ls")]
    List(AppListing),
}

/// `machines ...`.
#[derive(Debug, Subcommand)]
pub enum MachinesCommand {
    /// The app's machines, with their image and checks now.
    #[command(alias = "ls")]
    List(AppListing),
    /// Copy a machine, into another region with `--region` (flyctl `machine clone`).
    Clone {
        /// The machine to copy.
        machine_id: String,
        #[command(flatten)]
        app: AppFlag,
        /// The clone's region (default: the source's).
        #[arg(short = 'r', long)]
        region: Option<String>,
    },
}

/// `scale ...`.
#[derive(Debug, Subcommand)]
pub enum ScaleCommand {
    /// Make a region hold this many app machines (flyctl `scale count`).
    Count {
        /// How many machines.
        count: usize,
        #[command(flatten)]
        app: AppFlag,
        /// The region to act on (required here: localfly does not guess regions).
        #[arg(short = 'r', long)]
        region: String,
        /// Do not ask for confirmation (localfly never asks).
        #[arg(short = 'y', long)]
        yes: bool,
    },
}

/// `deploy` flags, as `xtask::flyctl::DeployCommand` emits them.
#[derive(Debug, Args)]
pub struct DeployArgs {
    #[command(flatten)]
    pub app: AppFlag,
    /// The fly.toml to read (release command, strategy, env, checks).
    #[arg(short = 'c', long)]
    pub config: PathBuf,
    /// Redeploy this known image instead of building.
    #[arg(short = 'i', long)]
    pub image: Option<String>,
    /// rolling, canary, bluegreen or immediate (default: fly.toml's, else rolling).
    #[arg(long)]
    pub strategy: Option<String>,
    /// How long to wait for each machine to pass its checks (Go duration or seconds).
    #[arg(long, default_value = "5m0s")]
    pub wait_timeout: String,
    /// KEY=VALUE build arguments; each becomes an environment variable of the machines.
    #[arg(long = "build-arg")]
    pub build_args: Vec<String>,
    /// The tag of the built image.
    #[arg(long)]
    pub image_label: Option<String>,
    /// Build "remotely" (accepted; a local build is a copy either way).
    #[arg(long)]
    pub remote_only: bool,
    /// Find (or build) the image and stop before any release, as flyctl's does.
    #[arg(long)]
    pub build_only: bool,
}

impl DeployArgs {
    /// The build args as a map; a pair without `=` is an error naming it.
    pub fn build_arg_map(&self) -> anyhow::Result<BTreeMap<String, String>> {
        self.build_args
            .iter()
            .map(|pair| match pair.split_once('=') {
                Some((k, v)) => Ok((k.to_string(), v.to_string())),
                None => anyhow::bail!("invalid build arg `{pair}`: expected KEY=VALUE"),
            })
            .collect()
    }
}

/// `local ...`: the local Fly's own administration.
#[derive(Debug, Subcommand)]
pub enum LocalCommand {
    /// Create an app and start its proxy; prints the app's URL.
    CreateApp {
        #[command(flatten)]
        app: AppFlag,
        /// How many machines a deploy runs.
        #[arg(long, default_value_t = 1)]
        machines: usize,
        /// The proxy's loopback port (0 picks a free one).
        #[arg(long, default_value_t = 0)]
        port: u16,
        /// The region machines report in `FLY_REGION`.
        #[arg(long, default_value = "scl")]
        region: String,
        /// How long a started machine may go without a proxied request before auto-stop
        /// stops it, when fly.toml says `auto_stop_machines` (Go duration; default 5m0s).
        #[arg(long)]
        idle_stop_after: Option<String>,
    },
    /// Scope the app's deploy token: a deploy of the app may pull images only of itself and
    /// the apps named (as `fly tokens create deploy` for one app). Without it, the token is
    /// an org token that reads every app's images.
    TokenScope {
        #[command(flatten)]
        app: AppFlag,
        /// Other apps whose images the token may read.
        #[arg(long = "reads")]
        reads: Vec<String>,
    },
    /// Make the next deploy of the app suffer a fault.
    Fault {
        #[command(flatten)]
        app: AppFlag,
        /// The fault.
        #[arg(value_enum)]
        fault: Fault,
    },
    /// Stop a started machine as Fly's auto-stop does when it sits idle: its process ends,
    /// it stays in the app as `stopped`, and the next deploy updates it without starting it.
    StopMachine {
        #[command(flatten)]
        app: AppFlag,
        /// The machine (default: the first started one, by id).
        #[arg(long)]
        machine: Option<String>,
    },
    /// Add a stopped machine: one deploy does not manage (a leftover release-command machine,
    /// a console, a `fly machine run`), or an app machine left on another image.
    AddMachine {
        #[command(flatten)]
        app: AppFlag,
        /// What kind of machine (`app`: one deploy manages, as a half-finished rollout
        /// leaves behind).
        #[arg(long, value_enum)]
        kind: super::state::MachineKind,
        /// Its image (default: the image the app serves now).
        #[arg(long)]
        image: Option<String>,
    },
    /// Variables for the machines of one region started from now on (its read replica's
    /// `DATABASE_READ_URL`, say).
    RegionEnv {
        #[command(flatten)]
        app: AppFlag,
        /// The region.
        #[arg(long)]
        region: String,
        /// KEY=VALUE pairs.
        #[arg(required = true)]
        vars: Vec<String>,
    },
    /// Stop every process the local Fly started (machines and proxies).
    Down {
        /// Only this app.
        #[arg(short = 'a', long)]
        app: Option<String>,
    },
    /// Run an app's proxy in the foreground (create-app starts it in the background).
    #[command(hide = true)]
    Proxy {
        #[command(flatten)]
        app: AppFlag,
        /// The port to listen on.
        #[arg(long)]
        port: u16,
    },
}

#[cfg(test)]
mod tests {
    use clap::Parser;

    use super::*;
    use crate::flyctl::DeployCommand;

    fn parses(args: &[String]) -> Result<Cli, clap::Error> {
        Cli::try_parse_from(std::iter::once("localfly".to_string()).chain(args.iter().cloned()))
    }

    #[test]
    fn every_deploy_argv_the_tasks_emit_is_understood() {
        let mut deploy = DeployCommand {
            app: "cabanas".into(),
            config: "fly.toml".into(),
            image: None,
            strategy: Some("bluegreen".into()),
            wait_timeout: std::time::Duration::from_secs(120),
            build_args: vec![("GIT_COMMIT".into(), "0123abc".into())],
            image_label: Some("0123abc".into()),
            time_limit: None,
        };
        let Ok(Cli {
            command: FlyCommand::Deploy(args),
        }) = parses(&deploy.args())
        else {
            panic!("not a deploy: {:?}", deploy.args());
        };
        assert_eq!(args.build_arg_map().unwrap()["GIT_COMMIT"], "0123abc");
        assert_eq!(args.wait_timeout, "120s");
        assert!(args.remote_only);
        deploy.image = Some("registry.fly.io/cabanas:0123abc".into());
        assert!(parses(&deploy.args()).is_ok(), "{:?}", deploy.args());
    }

    #[test]
    fn the_read_calls_and_secrets_import_are_understood_and_unknown_flags_are_not() {
        for line in [
            "auth whoami",
            "releases --app a --image --json",
            "machines list --app a --json",
            "secrets list --app a --json",
            "secrets import --app a --stage",
            "status --app a --json",
            "logs --app a --no-tail",
        ] {
            let args: Vec<String> = line.split(' ').map(String::from).collect();
            assert!(parses(&args).is_ok(), "{line}");
        }
        let detach: Vec<String> = "deploy --app a --config fly.toml --detach"
            .split(' ')
            .map(String::from)
            .collect();
        let error = parses(&detach).unwrap_err().to_string();
        assert!(error.contains("--detach"), "{error}");
    }
}
