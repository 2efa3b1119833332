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

/// A pool the batch moved, for its audit record: the cycle, its value before
/// the batch and after it (for a cycle the batch closed by a drop, the
/// awarded amount).
#[derive(Debug, Clone, serde::Serialize)]
#[serde(rename_all = "camelCase")]
pub struct PoolChange {
    pub jackpot_id: String,
    pub cycle: i64,
    pub before_micros: Option<i64>,
    pub after_micros: i64,
    pub closed: bool,
}

/// Writes everything, or nothing; answers each row's id in the order given.
/// The statement ends by appending the batch's audit record: every
/// contribution id with its key id and request id — `earlier` names the
/// batch's rows an earlier statement of the transaction inserted (those up to
/// a drop) — and each pool's value before and after (see [`audit_cte`]).
pub async fn write(
    conn: &mut PgConnection,
    batch_id: i64,
    rows: &[NewContribution],
    cycles: &[CycleUpdate],
    transfers: &[Transfer],
    earlier: &[i64],
    pools: &[PoolChange],
) -> Result<Result<Vec<i64>, Refused>, sqlx::Error> {
    let transfers = ledger::consolidate(transfers);
    let (rows_at, cycles_at, posting_at, count_at, audit_at) = (1, 16, 26, 31, 32);
    let sql = format!(
        "with {}, {}, {},
         verdict as (
             select case
                 when (select count(*) from cycles) <> ${count_at}
                     then cekpot_abort('CK001', 'a pool changed since the batch read it')
                 when (select count(*) from inserted) <> (select count(*) from input)
                     then cekpot_abort('CK002', 'an idempotency key of the batch is stored already')
                 else 0 end as ok),
         {}
         select (select ok from verdict),
                array(select i.id from input
                        join inserted i on i.jackpot_id = input.jackpot_id
                                       and i.idempotency_key = input.idempotency_key
                       order by input.position),
                (select count(*) from audited)",
        contributions::insert_ctes(rows_at),
        jackpots::update_cycles_cte(cycles_at),
        ledger::posting_ctes(posting_at),
        audit_cte(audit_at, rows_at + 14),
    );
    let (rows, cycle_columns, posting) =
        (ContributionColumns::of(batch_id, rows), CycleColumns::of(cycles), Posting::of(&transfers));
    let query = sqlx::query_as::<_, (i64, Vec<i64>, i64)>(&sql);
    let query = posting
        .bind_as(cycle_columns.bind_as(rows.bind_as(query)))
        .bind(cycles.len() as i64)
        .bind(sqlx::types::Json(pools))
        .bind(earlier);
    match query.fetch_one(conn).await {
        Ok((_, ids, audited)) => {
            let expected = i64::from(!ids.is_empty() || !earlier.is_empty());
            if audited != expected {
                return Err(sqlx::Error::Protocol(format!(
                    "{audited} audit records for a batch, not {expected}"
                )));
            }
            Ok(Ok(ids))
        }
        Err(error) => match error.as_database_error().and_then(|e| e.code()).as_deref() {
            Some("CK001") => Ok(Err(Refused::PoolChanged)),
            Some("CK002") => Ok(Err(Refused::KeyStored)),
            _ => Err(error),
        },
    }
}

/// The CTE `audited`, which appends the batch's audit record once everything
/// else of the statement has run — its arguments read every other CTE, so the
/// chain's head is the statement's last lock. Parameters: `$first` the pools
/// (JSON), `$first + 1` the ids of the rows earlier statements inserted,
/// `$batch` the batch id. Nothing is appended for a batch that wrote no
/// contribution. The earlier rows are read only when there are some (a
/// batch with a drop): the `cardinality` test is a one-time filter, so the
/// usual batch never scans the contributions table, whatever plan the
/// statement was given while that table was small.
fn audit_cte(first: usize, batch: usize) -> String {
    let [pools, earlier] = [first, first + 1];
    format!(
        "written as (
             select 0 as part, id as ord, id, key_id, request_id
               from jackpot_contributions
              where cardinality(${earlier}::bigint[]) > 0 and id = any(${earlier}::bigint[])
             union all
             select 1, id, id, key_id, request_id from inserted),
         audited as (
             select cekpot_audit_append(
                        (select string_agg(distinct coalesce(key_id, '-'), ',' order by coalesce(key_id, '-')) from written),
                        'contribution_batch', null, null, null, null,
                        jsonb_build_object(
                            'batchId', ${batch},
                            'contributions', (select jsonb_build_object(
                                                  'ids', jsonb_agg(id order by part, ord),
                                                  'keyIds', jsonb_agg(key_id order by part, ord),
                                                  'requestIds', jsonb_agg(request_id order by part, ord))
                                                from written),
                            'pools', ${pools}::jsonb,
                            'cyclesUpdated', (select count(*) from cycles),
                            'accountsMoved', (select count(*) from balances),
                            'transfers', (select count(*) from posted)))
              where exists (select 1 from written))"
    )
}
