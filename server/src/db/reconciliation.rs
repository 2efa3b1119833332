//! Reconciliation: recomputes every pool, reserve and balance from the rows
//! that moved money, and compares.

use serde::Serialize;
use sqlx::PgConnection;

/// One check that did not hold.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, sqlx::FromRow)]
#[serde(rename_all = "camelCase")]
pub struct Mismatch {
    pub check: String,
    pub subject: String,
    pub expected_micros: i64,
    pub actual_micros: i64,
}

/// Every check as (check, subject, expected, actual); the caller keeps the
/// ones that differ. Run it in one snapshot (repeatable read).
pub async fn checks(conn: &mut PgConnection) -> Result<Vec<Mismatch>, sqlx::Error> {
    sqlx::query_as(
        "-- a cycle's value is its seed plus what contributions put in the pool
         select 'cycle_value' as check, c.jackpot_id || '#' || c.cycle_number as subject,
                (c.seed_micros + coalesce(s.to_pool, 0))::bigint as expected_micros,
                c.value_micros as actual_micros
           from jackpot_cycles c
           left join (select jackpot_id, cycle_number, sum(pool_share_micros - overflow_micros) as to_pool
                        from jackpot_contributions group by jackpot_id, cycle_number) s
             on s.jackpot_id = c.jackpot_id and s.cycle_number = c.cycle_number
         union all
         -- an award locks in the value its cycle closed at
         select 'award_amount', a.jackpot_id || '#' || a.cycle_number, c.value_micros, a.awarded_amount_micros
           from jackpot_awards a
           join jackpot_cycles c on c.jackpot_id = a.jackpot_id and c.cycle_number = a.cycle_number
         union all
         -- the pool account holds seeds + pool shares - awards = the open cycle's value
         select 'pool_balance', j.id, coalesce(c.value_micros, 0), coalesce(acc.balance_micros, 0)
           from jackpots j
           left join jackpot_cycles c on c.jackpot_id = j.id and c.closed_at is null
           left join ledger_accounts acc on acc.kind = 'jackpot_pool' and acc.owner = j.id
         union all
         -- the reserve holds reserve shares (and overflow) less what funded seeds
         -- (and rolled-back awards, which return to it)
         select 'reserve_balance', j.id,
                (coalesce((select sum(reserve_share_micros + overflow_micros) from jackpot_contributions
                            where jackpot_id = j.id), 0)
                 - coalesce((select sum(seed_from_reserve_micros) from jackpot_cycles where jackpot_id = j.id), 0)
                 + coalesce((select sum(amount_micros) from jackpot_award_rollbacks where jackpot_id = j.id), 0))::bigint,
                coalesce(acc.balance_micros, 0)
           from jackpots j
           left join ledger_accounts acc on acc.kind = 'jackpot_reserve' and acc.owner = j.id
         union all
         -- every balance is its credits minus its debits
         select 'account_balance', acc.kind || ':' || acc.owner || ':' || acc.currency,
                (coalesce((select sum(amount_micros) from ledger_transfers where credit_account_id = acc.id), 0)
                 - coalesce((select sum(amount_micros) from ledger_transfers where debit_account_id = acc.id), 0))::bigint,
                acc.balance_micros
           from ledger_accounts acc
         union all
         -- and all balances together sum to zero
         select 'ledger_sum', 'ledger', 0, coalesce(sum(balance_micros), 0)::bigint from ledger_accounts",
    )
    .fetch_all(conn)
    .await
}

/// A finished run, as stored.
pub struct Run<'a> {
    pub trigger: &'a str,
    pub started_at: chrono::DateTime<chrono::Utc>,
    pub checks: i64,
    pub mismatches: &'a [Mismatch],
    pub mismatch_ratio_ppm: i64,
    pub ledger_sum_micros: i64,
}

/// Stores a finished run and returns its id.
pub async fn record(conn: &mut PgConnection, run: &Run<'_>) -> Result<i64, sqlx::Error> {
    sqlx::query_scalar(
        "insert into reconciliation_runs (started_at, finished_at, trigger, checks_count, mismatches,
                                          mismatch_ratio_ppm, ledger_sum_micros, report)
         values ($1, now(), $2, $3, $4, $5, $6, $7) returning id",
    )
    .bind(run.started_at)
    .bind(run.trigger)
    .bind(run.checks)
    .bind(run.mismatches.len() as i64)
    .bind(run.mismatch_ratio_ppm)
    .bind(run.ledger_sum_micros)
    .bind(sqlx::types::Json(run.mismatches))
    .fetch_one(conn)
    .await
}
