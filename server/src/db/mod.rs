//! PostgreSQL access. Each aggregate has a module of small query functions that
//! take a connection or transaction, so the caller owns the transaction boundary.

pub mod awards;
pub mod batches;
pub mod contributions;
pub mod jackpots;
pub mod ledger;
pub mod params;
pub mod players;
pub mod reconciliation;
pub mod sessions;
pub mod spins;

use std::sync::{Arc, Mutex};
use std::time::Duration;

use domain::money::Total;
use secrecy::ExposeSecret;
use sqlx::postgres::{PgConnectOptions, PgPoolOptions, PgTypeInfo, PgValueRef};
use sqlx::{PgPool, Postgres};

use crate::config::DatabaseSettings;

pub static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("../migrations");

/// A meter ([`Total`]) read from a `numeric(38,0)` expression selected as
/// `::text`: sqlx decodes `numeric` only through a decimal crate, and the
/// meters are whole micro-units.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Meter(Total);

impl sqlx::Type<Postgres> for Meter {
    fn type_info() -> PgTypeInfo {
        <String as sqlx::Type<Postgres>>::type_info()
    }
}

impl<'r> sqlx::Decode<'r, Postgres> for Meter {
    fn decode(value: PgValueRef<'r>) -> Result<Self, sqlx::error::BoxDynError> {
        let text = <&str as sqlx::Decode<Postgres>>::decode(value)?;
        Ok(Meter(Total::from_micros(text.parse()?)))
    }
}

impl From<Meter> for Total {
    fn from(meter: Meter) -> Total {
        meter.0
    }
}

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

/// Ids from one of the database's sequences, taken a block at a time so a
/// batch does not spend a round trip (inside its transaction) on them. Gaps
/// are harmless: an id only has to be unique. Within one server ids come out
/// in increasing order.
#[derive(Clone)]
pub struct SequenceIds {
    db: PgPool,
    /// `nextval(...)` of the sequence.
    next_value: &'static str,
    /// Taken and not handed out yet, the smallest last.
    spare: Arc<Mutex<Vec<i64>>>,
}

/// How many ids one refill takes, at least.
const SEQUENCE_IDS_BLOCK: usize = 256;

impl SequenceIds {
    /// Contribution batch ids.
    pub fn batches(db: PgPool) -> SequenceIds {
        SequenceIds::new(db, "nextval('jackpot_contribution_batches')")
    }

    /// Spin ids (the `spins.id` identity's sequence): taken before the rows
    /// are written so that the ledger's references (`spin:<id>`) and the
    /// receipts can name them.
    pub fn spins(db: PgPool) -> SequenceIds {
        SequenceIds::new(db, "nextval(pg_get_serial_sequence('spins', 'id'))")
    }

    fn new(db: PgPool, next_value: &'static str) -> SequenceIds {
        SequenceIds { db, next_value, spare: Arc::default() }
    }

    pub async fn next(&self) -> Result<i64, sqlx::Error> {
        Ok(self.take(1).await?[0])
    }

    /// `count` ids, in increasing order.
    pub async fn take(&self, count: usize) -> Result<Vec<i64>, sqlx::Error> {
        loop {
            {
                let mut spare = self.spare.lock().expect("the id cache is never poisoned");
                if spare.len() >= count {
                    let at = spare.len() - count;
                    let mut ids = spare.split_off(at);
                    ids.reverse();
                    return Ok(ids);
                }
            }
            let mut block: Vec<i64> =
                sqlx::query_scalar(&format!("select {} from generate_series(1, $1)", self.next_value))
                    .bind(count.max(SEQUENCE_IDS_BLOCK) as i64)
                    .fetch_all(&self.db)
                    .await?;
            // Two refills may race: keep the spare ids sorted, largest first,
            // so they are still handed out in increasing order.
            let mut spare = self.spare.lock().expect("the id cache is never poisoned");
            spare.append(&mut block);
            spare.sort_unstable_by(|a, b| b.cmp(a));
        }
    }
}

/// A deadlock or serialization failure: the transaction did nothing and can be
/// run again as it was.
pub fn is_retryable(error: &sqlx::Error) -> bool {
    error.as_database_error().and_then(|e| e.code()).is_some_and(|code| code == "40P01" || code == "40001")
}

/// What is wrong, for production, with the role the server connected as: a
/// superuser, or a member of the role that owns the audit trail's tables,
/// could disable its append-only trigger (docs/SECURITY.md, item 6).
pub async fn role_problems(db: &PgPool) -> Result<Vec<String>, sqlx::Error> {
    let (role, superuser, owns): (String, bool, bool) = sqlx::query_as(
        "select current_user::text, r.rolsuper,
                pg_has_role(current_user, c.relowner, 'MEMBER') or pg_has_role(current_user, s.relowner, 'MEMBER')
           from pg_roles r, pg_class c, pg_class s
          where r.rolname = current_user and c.oid = 'audit_records'::regclass
            and s.oid = 'audit_segments'::regclass",
    )
    .fetch_one(db)
    .await?;
    let mut problems = Vec::new();
    if superuser {
        problems.push(format!(
            "the database role {role:?} is a superuser: run the server as the least-privilege role of \
             deploy/postgres/app-role.sql"
        ));
    } else if owns {
        problems.push(format!(
            "the database role {role:?} owns the audit tables and could disable their append-only trigger: run \
             the server as the least-privilege role of deploy/postgres/app-role.sql"
        ));
    }
    Ok(problems)
}
