//! The flags of `cargo xtask overlap`, turned into [`crate::overlap::Options`].

use std::path::PathBuf;
use std::time::Duration;

use chrono::NaiveDate;

use super::duration::{parse_duration, warn_old_spelling};

/// Options of `cargo xtask overlap`.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// Environment from ops/deploy.toml to run against (its URL and env file).
    #[arg(long, value_name = "NAME")]
    pub env: Option<String>,
    /// Base URL to run against instead of (or overriding) the environment's.
    #[arg(long, value_name = "URL")]
    pub url: Option<String>,
    /// Allow creating reservations on the target (required; or set RUN_MUTATING=1).
    #[arg(long)]
    pub mutating: bool,
    /// N: identical pre-reserves released together per round.
    #[arg(long, default_value_t = crate::overlap::DEFAULT_CONCURRENCY, value_name = "N")]
    pub concurrency: usize,
    /// How many rounds, each on a fresh window: a race can pass by luck once.
    #[arg(long, default_value_t = crate::overlap::DEFAULT_ROUNDS, value_name = "K")]
    pub rounds: u32,
    /// Accommodation to book; default: overlap's own test-fixture cabin (created through the
    /// admin API, never listed or bookable by a guest); with --no-cleanup, the first listed.
    #[arg(long, value_name = "ID")]
    pub accommodation_id: Option<i64>,
    /// First night (YYYY-MM-DD); with --check-out. Default: a free window 180+ days ahead.
    #[arg(long, value_name = "DATE", requires = "check_out")]
    pub check_in: Option<NaiveDate>,
    /// Departure day (YYYY-MM-DD); with --check-in.
    #[arg(long, value_name = "DATE", requires = "check_in")]
    pub check_out: Option<NaiveDate>,
    /// Nights of the random window (1-30); default: 2-4 at random.
    #[arg(long, value_name = "NIGHTS", conflicts_with = "check_in")]
    pub nights: Option<u32>,
    /// Admin bearer token used to cancel what the run created. Default: one signed with the
    /// env file's JWT_SECRET. Prefer the environment variable to the flag.
    #[arg(
        long,
        env = "CABANAS_ADMIN_TOKEN",
        hide_env_values = true,
        value_name = "TOKEN"
    )]
    pub admin_token: Option<String>,
    /// Env file holding JWT_SECRET and ADMIN_ALLOWED_EMAILS; default: the environment's.
    #[arg(long, value_name = "PATH")]
    pub env_file: Option<PathBuf>,
    /// Leave the created reservations active (the verdict is then at best WARN).
    #[arg(long)]
    pub no_cleanup: bool,
    /// Also race N bookings against another channel's block: serve an iCal feed on this
    /// machine's loopback, import it through the admin API, and expect zero winners (the
    /// service must run here with CALENDAR_ALLOW_PRIVATE_FEEDS=on).
    #[arg(long)]
    pub cross_channel: bool,
    /// Send the N bookings through these regions in turn (e.g. scl,gru), with Fly's
    /// fly-prefer-region header: on a two-region app exactly one must still win.
    #[arg(long, value_name = "REGIONS", value_delimiter = ',')]
    pub regions: Vec<String>,
    /// Per-request timeout (e.g. 30s, 2m).
    #[arg(long, value_name = "DURATION", default_value = "30s",
          value_parser = parse_duration)]
    pub timeout: Duration,
    /// Old spelling of --timeout in whole seconds: accepted with a warning for one release.
    #[arg(long, value_name = "SECS", hide = true, conflicts_with = "timeout")]
    pub timeout_secs: Option<u64>,
    /// Also write the outcome as JUnit XML to PATH (one test case per race and probe of each round), for CI test
    /// reporters.
    #[arg(long, value_name = "PATH")]
    pub junit: Option<std::path::PathBuf>,
    /// Print the result record as JSON on stdout (human text goes to stderr).
    #[arg(long)]
    pub json: bool,
}

impl From<Args> for crate::overlap::Options {
    fn from(args: Args) -> Self {
        Self {
            env: args.env,
            url: args.url,
            mutating: args.mutating,
            concurrency: args.concurrency,
            rounds: args.rounds,
            accommodation_id: args.accommodation_id,
            check_in: args.check_in,
            check_out: args.check_out,
            nights: args.nights,
            admin_token: args.admin_token,
            env_file: args.env_file,
            no_cleanup: args.no_cleanup,
            cross_channel: args.cross_channel,
            regions: args.regions,
            timeout: match args.timeout_secs {
                Some(secs) => {
                    warn_old_spelling(&format!(
                        "warning: --timeout-secs is the old spelling and will go away: write \
                         --timeout {secs}s"
                    ));
                    Duration::from_secs(secs.max(1))
                }
                None => args.timeout,
            },
        }
    }
}
