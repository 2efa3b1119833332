//! `server`: serve the app (default) or run one maintenance task and exit.

use anyhow::Context;
use clap::{Parser, Subcommand};
use server::config::Settings;
use server::startup::{shutdown_signal, Application, Drain};
use server::{db, reconciliation, telemetry};

#[derive(Parser)]
#[command(name = "server", version, about = "Cekpot: Telegram casino with progressive jackpots")]
struct Cli {
    #[command(subcommand)]
    command: Option<Command>,
}

#[derive(Subcommand)]
enum Command {
    /// Serve the Mini App and the API (the default).
    Serve,
    /// Apply pending database migrations and exit.
    Migrate,
    /// Reconcile pools, reserves and the ledger now; print the report and exit
    /// with status 1 if any check fails.
    Reconcile,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    let settings = Settings::load().context("reading the configuration")?;
    telemetry::init(&settings.log).context("setting up logging")?;
    match cli.command.unwrap_or(Command::Serve) {
        Command::Serve => serve(settings).await,
        Command::Migrate => {
            let pool = db::pool(&settings.database)?;
            db::migrate(&pool).await?;
            tracing::info!("migrations applied");
            Ok(())
        }
        Command::Reconcile => {
            let pool = db::pool(&settings.database)?;
            let report =
                reconciliation::run(&pool, reconciliation::Trigger::Cli).await.context("reconciling")?;
            println!("{}", serde_json::to_string_pretty(&report)?);
            if !report.mismatches.is_empty() {
                std::process::exit(1);
            }
            Ok(())
        }
    }
}

async fn serve(settings: Settings) -> anyhow::Result<()> {
    let application = Application::build(settings).await?;
    tracing::info!(addr = %application.local_addr(), "listening on http://{}", application.local_addr());
    match application.run_until(shutdown_signal()).await.context("serving HTTP")? {
        Drain::Complete => tracing::info!("stopped cleanly"),
        Drain::GraceExpired => tracing::warn!("stopped with requests still in flight"),
    }
    Ok(())
}
