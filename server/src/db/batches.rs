//! A group commit's writes, sent to the database as one statement: the
//! contribution rows, the cycles' new values and meters, and the ledger
//! posting. Fewer round trips mean a shorter batch, and the next one starts
//! sooner.
//!
//! The statement checks what it was computed from and aborts itself — every
//! row it wrote rolls back — when that no longer holds: a cycle that is not
//! open or not at its expected value (see [`CycleUpdate::expected_value`]), or
//! an idempotency key stored already. So it can also run on its own, outside
//! any transaction and without the jackpots' locks, as one atomic statement.

use sqlx::PgConnection;

use super::contributions::{self, ContributionColumns, NewContribution};
use super::jackpots::{self, CycleColumns, CycleUpdate};
use super::ledger::{self, Posting, Transfer};

/// Why the statement aborted itself. Nothing of it was written.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refused {
    /// A cycle changed since it was read (SQLSTATE `CK001`).
    PoolChanged,
    /// A row's idempotency key is stored already (SQLSTATE `CK002`).
    KeyStored,
}

/// Writes everything, or nothing; answers each row's id in the order given.
pub async fn write(
    conn: &mut PgConnection,
    batch_id: i64,
    rows: &[NewContribution],
    cycles: &[CycleUpdate],
    transfers: &[Transfer],
) -> Result<Result<Vec<i64>, Refused>, sqlx::Error> {
    let transfers = ledger::consolidate(transfers);
    let (rows_at, cycles_at, posting_at, count_at) = (1, 14, 24, 29);
    let sql = format!(
        "with {}, {}, {},
         verdict as (
             select case
                 when (select count(*) from cycles) <> ${count_at}
                     then cekpot_abort('CK001', 'a pool changed since the batch read it')
                 when (select count(*) from inserted) <> (select count(*) from input)
                     then cekpot_abort('CK002', 'an idempotency key of the batch is stored already')
                 else 0 end as ok)
         select (select ok from verdict),
                array(select i.id from input
                        join inserted i on i.jackpot_id = input.jackpot_id
                                       and i.idempotency_key = input.idempotency_key
                       order by input.position)",
        contributions::insert_ctes(rows_at),
        jackpots::update_cycles_cte(cycles_at),
        ledger::posting_ctes(posting_at),
    );
    let (rows, cycle_columns, posting) =
        (ContributionColumns::of(batch_id, rows), CycleColumns::of(cycles), Posting::of(&transfers));
    let query = sqlx::query_as::<_, (i64, Vec<i64>)>(&sql);
    let query = posting.bind_as(cycle_columns.bind_as(rows.bind_as(query))).bind(cycles.len() as i64);
    match query.fetch_one(conn).await {
        Ok((_, ids)) => Ok(Ok(ids)),
        Err(error) => match error.as_database_error().and_then(|e| e.code()).as_deref() {
            Some("CK001") => Ok(Err(Refused::PoolChanged)),
            Some("CK002") => Ok(Err(Refused::KeyStored)),
            _ => Err(error),
        },
    }
}
