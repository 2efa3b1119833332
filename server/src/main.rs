//! `server`: serve the app (default) or run one maintenance task and exit.

use anyhow::Context;
use clap::{Parser, Subcommand};
use domain::slot::percent;
use server::audit::bucket::Bucket;
use server::audit::shipper::{Seal, Shipper};
use server::audit::{self, Actor};
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
    /// The audit trail: verify its hash chain, or ship segments now.
    Audit {
        #[command(subcommand)]
        command: AuditCommand,
    },
    /// The Mini App's slot.
    Slot {
        #[command(subcommand)]
        command: SlotCommand,
    },
}

#[derive(Subcommand)]
enum SlotCommand {
    /// Compute the slot's exact return by evaluating every stop combination,
    /// add the jackpot contributions its bets make, and compare the total
    /// with the definition's target (exit status 1 when outside it).
    Rtp {
        /// The jackpots' contribution rate in ppm, instead of reading the
        /// jackpots the slot feeds from the database.
        #[arg(long)]
        contribution_ppm: Option<u64>,
    },
}

#[derive(Subcommand)]
enum AuditCommand {
    /// Re-read the chain from PostgreSQL and, when a bucket is configured,
    /// from the WORM bucket (compared with the database record by record);
    /// name the first broken link and exit with status 1 if there is one.
    Verify {
        /// Read the database only, even with a bucket configured.
        #[arg(long)]
        database_only: bool,
    },
    /// Seal and ship every pending record now, the last segment even if it is
    /// neither full nor old enough yet.
    Ship,
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
            let report = reconciliation::run(&pool, reconciliation::Trigger::Cli, &Actor::system("cli"))
                .await
                .context("reconciling")?;
            println!("{}", serde_json::to_string_pretty(&report)?);
            if !report.mismatches.is_empty() {
                std::process::exit(1);
            }
            Ok(())
        }
        Command::Audit { command: AuditCommand::Verify { database_only } } => {
            let pool = db::pool(&settings.database)?;
            let mut intact = true;
            println!("verifying the audit chain in PostgreSQL…");
            let report = audit::verify::database(&pool).await.context("reading the audit records")?;
            println!("{}", report.summary());
            intact &= report.intact();
            match settings.audit.bucket.as_ref().filter(|_| !database_only) {
                Some(bucket) => {
                    let bucket = Bucket::new(bucket);
                    println!("verifying the segments in bucket {}…", bucket.name());
                    let report = audit::verify::bucket(&bucket, Some(&pool)).await?;
                    for note in &report.notes {
                        println!("  note: {note}");
                    }
                    println!("{}", report.summary());
                    intact &= report.intact();
                }
                None => println!("bucket: not configured (audit.bucket), not verified"),
            }
            if !intact {
                std::process::exit(1);
            }
            Ok(())
        }
        Command::Slot { command: SlotCommand::Rtp { contribution_ppm } } => {
            slot_rtp(&settings, contribution_ppm).await
        }
        Command::Audit { command: AuditCommand::Ship } => {
            let shipper = Shipper::new(db::pool(&settings.database)?, settings.audit.clone())?;
            shipper.ensure_bucket().await?;
            let shipped = shipper.ship(Seal::Now).await?;
            for segment in &shipped {
                println!(
                    "segment {} ({}..={}) → {}{}, locked until {}",
                    segment.number,
                    segment.first_seq,
                    segment.last_seq,
                    segment.key,
                    if segment.adopted { " (left by an interrupted run; recorded)" } else { "" },
                    segment.retain_until.format("%Y-%m-%d")
                );
            }
            println!("{} segment(s) shipped", shipped.len());
            Ok(())
        }
    }
}

async fn slot_rtp(settings: &Settings, contribution_ppm: Option<u64>) -> anyhow::Result<()> {
    let slot = server::game::definition(settings.slot.definition.as_deref())?;
    let lengths = slot.reel_lengths();
    println!(
        "slot {}: {} reels of {:?} stops, {} paylines",
        slot.game_id,
        lengths.len(),
        lengths,
        slot.lines()
    );
    let combinations: u64 = lengths.iter().map(|&l| l as u64).product();
    println!("evaluating all {combinations} stop combinations…");
    let started = std::time::Instant::now();
    let rtp = slot.enumerate();
    println!("  done in {:.1} s", started.elapsed().as_secs_f64());
    anyhow::ensure!(rtp.line_bets_won == slot.line_bets_won_by_counts(), "the two computations disagree");
    let contribution_ppm = match contribution_ppm {
        Some(ppm) => {
            println!("jackpot contributions: {ppm} ppm (given)");
            ppm
        }
        None => {
            let pool = db::pool(&settings.database)?;
            let currency = settings.money_currency().map_err(anyhow::Error::msg)?;
            let fed = server::db::jackpots::contribution_rates(&pool, &slot.game_id, currency.as_str())
                .await
                .context("reading the jackpots the slot feeds (or pass --contribution-ppm)")?;
            for (id, ppm, min_bet) in &fed {
                println!("  feeds {id}: {} of bets of at least {min_bet}", percent(*ppm * 1_000));
            }
            fed.iter().map(|(_, ppm, _)| ppm).sum()
        }
    };
    let base_ppb = rtp.base_ppb();
    let contribution_ppb = contribution_ppm * 1_000;
    let total_ppb = base_ppb + contribution_ppb;
    println!("base game RTP:                  {}", percent(base_ppb));
    println!("jackpot contribution RTP:       {}", percent(contribution_ppb));
    println!("total RTP:                      {}", percent(total_ppb));
    println!("hit frequency:                  {}", percent(rtp.hit_frequency_ppb()));
    println!(
        "exactly: {} line bets won over {} combinations × {} lines",
        rtp.line_bets_won, rtp.combinations, rtp.lines
    );
    let target = u64::from(slot.target_rtp_ppm) * 1_000;
    let tolerance = u64::from(slot.target_tolerance_ppm) * 1_000;
    let within = total_ppb.abs_diff(target) <= tolerance;
    println!(
        "target:                         {} ± {}: {}",
        percent(target),
        percent(tolerance),
        if within { "met" } else { "NOT MET" }
    );
    if !within {
        std::process::exit(1);
    }
    Ok(())
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
