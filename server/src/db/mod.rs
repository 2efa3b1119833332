//! PostgreSQL access. Each aggregate has a module of small query functions that
//! take a connection or transaction, so the caller owns the transaction boundary.

pub mod awards;
pub mod batches;
pub mod contributions;
pub mod jackpots;
pub mod ledger;
pub mod players;
pub mod reconciliation;
pub mod spins;

use std::time::Duration;

use secrecy::ExposeSecret;
use sqlx::postgres::{PgConnectOptions, PgPoolOptions};
use sqlx::PgPool;

use crate::config::DatabaseSettings;

pub static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("../migrations");

/// How long start-up waits for PostgreSQL before giving up.
const STARTUP_WAIT: Duration = Duration::from_secs(60);

/// A pool that connects on demand: the server starts, and keeps answering
/// `/healthz`, while PostgreSQL is away, and recovers by itself when it returns.
pub fn pool(settings: &DatabaseSettings) -> anyhow::Result<PgPool> {
    let options: PgConnectOptions = settings
        .url
        .expose_secret()
        .parse()
        .map_err(|error| anyhow::anyhow!("DATABASE_URL is not a valid PostgreSQL URL: {error}"))?;
    Ok(PgPoolOptions::new()
        .max_connections(settings.max_connections)
        .acquire_timeout(settings.acquire_timeout())
        .connect_lazy_with(options))
}

/// Applies pending migrations, waiting (with a log line per attempt) while the
/// database is not reachable yet.
pub async fn migrate(pool: &PgPool) -> anyhow::Result<()> {
    let deadline = tokio::time::Instant::now() + STARTUP_WAIT;
    loop {
        match MIGRATOR.run(pool).await {
            Ok(()) => return Ok(()),
            Err(sqlx::migrate::MigrateError::Execute(error)) if is_unreachable(&error) => {
                if tokio::time::Instant::now() >= deadline {
                    return Err(anyhow::anyhow!("PostgreSQL did not become reachable: {error}"));
                }
                tracing::warn!(%error, "waiting for PostgreSQL");
                tokio::time::sleep(Duration::from_secs(1)).await;
            }
            Err(error) => return Err(anyhow::Error::new(error).context("applying migrations")),
        }
    }
}

/// The database could not be reached (or no connection was free in time): a
/// client may retry later, as opposed to an error in what was asked.
pub fn is_unreachable(error: &sqlx::Error) -> bool {
    matches!(error, sqlx::Error::Io(_) | sqlx::Error::PoolTimedOut | sqlx::Error::PoolClosed)
}

/// A deadlock or serialization failure: the transaction did nothing and can be
/// run again as it was.
pub fn is_retryable(error: &sqlx::Error) -> bool {
    error.as_database_error().and_then(|e| e.code()).is_some_and(|code| code == "40P01" || code == "40001")
}
