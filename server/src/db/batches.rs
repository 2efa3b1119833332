//! A group commit's writes, sent to the database as one statement: the
//! contribution rows, the cycles' new values and meters, and the ledger
//! posting. The jackpots' locks are held from the batch's first statement to
//! its commit, so fewer round trips mean a shorter wait for the next batch.

use sqlx::PgConnection;

use super::contributions::{self, ContributionColumns, NewContribution};
use super::jackpots::{self, CycleColumns, CycleUpdate};
use super::ledger::{self, Posting, Transfer};

/// Writes everything; answers each row's id in the order given, `None` for a
/// row whose idempotency key was already stored (the caller then rolls back:
/// the cycles and the posting counted it).
pub async fn write(
    conn: &mut PgConnection,
    batch_id: i64,
    rows: &[NewContribution],
    cycles: &[CycleUpdate],
    transfers: &[Transfer],
) -> Result<Vec<Option<i64>>, sqlx::Error> {
    let transfers = ledger::consolidate(transfers);
    let (rows_at, cycles_at, posting_at) = (1, 14, 22);
    let sql = format!(
        "with {}, {}, {} {}",
        contributions::insert_ctes(rows_at),
        jackpots::update_cycles_cte(cycles_at),
        ledger::posting_ctes(posting_at),
        contributions::INSERTED_IDS,
    );
    let (rows, cycles, posting) =
        (ContributionColumns::of(batch_id, rows), CycleColumns::of(cycles), Posting::of(&transfers));
    let query = posting.bind_as(cycles.bind_as(rows.bind_as(sqlx::query_as::<_, (Option<i64>,)>(&sql))));
    let ids = query.fetch_all(conn).await?;
    Ok(ids.into_iter().map(|(id,)| id).collect())
}
