//! `cabanas`: the reservation service binary. Parses the command and dispatches.

use std::process::ExitCode;

use clap::{Parser, Subcommand};

/// sist-cabanas reservation service. Configured from the environment:
/// DATABASE_URL, HOST, PORT, JWT_SECRET, ADMIN_ALLOWED_EMAILS, PRE_RESERVATION_TTL_MINUTES,
/// MERCADOPAGO_ACCESS_TOKEN, MERCADOPAGO_WEBHOOK_SECRET, MERCADOPAGO_API_URL,
/// WEBHOOK_TOLERANCE_SECONDS, WHATSAPP_APP_SECRET, WHATSAPP_VERIFY_TOKEN.
#[derive(Debug, Parser)]
#[command(name = "cabanas", version)]
struct Cli {
    #[command(subcommand)]
    command: Option<Command>,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Serve the HTTP API (the default).
    Serve,
    /// Apply pending database migrations and exit (the Fly release command).
    Migrate,
    /// Insert the demo accommodations; running it twice changes nothing.
    SeedDemo,
}

#[tokio::main]
async fn main() -> ExitCode {
    let cli = Cli::parse();
    backend::telemetry::init_tracing();
    let config = match backend::Config::from_env() {
        Ok(config) => config,
        Err(err) => {
            tracing::error!(variable = err.var, "invalid configuration: {err}");
            eprintln!("error: invalid configuration: {err}");
            return ExitCode::from(2);
        }
    };
    let result = match cli.command.unwrap_or(Command::Serve) {
        Command::Serve => backend::serve(config).await,
        Command::Migrate => backend::migrate(config).await,
        Command::SeedDemo => backend::seed_demo(config).await,
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            tracing::error!("{err:#}");
            eprintln!("error: {err:#}");
            ExitCode::FAILURE
        }
    }
}
