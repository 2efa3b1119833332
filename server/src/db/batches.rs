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
//!
//! A spin batch, whose transaction holds its players' rows already, writes the
//! same in two statements instead ([`write_rows`], then [`write_pools`] last),
//! so that the rows every batch shares are locked only at the end.

use sqlx::PgConnection;

// The ids come back as an array without `None`s: a statement that skipped a
// stored key aborts itself (its verdict) before answering.
use super::contributions::{ContributionColumns, NewContribution, INSERTED_IDS};
use super::jackpots::{CycleColumns, CycleUpdate};
use super::ledger::{self, Posting, Transfer};
use super::params::Params;
use crate::audit::Entry;

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
/// contribution id with its key id and request id — `earlier` holds the
/// batch's rows an earlier statement of the transaction inserted (those up to
/// a drop) — and each pool's value before and after (see [`audit_cte`]).
pub async fn write(
    conn: &mut PgConnection,
    batch_id: i64,
    rows: &[NewContribution],
    cycles: &[CycleUpdate],
    transfers: &[Transfer],
    earlier: &Written,
    pools: &[PoolChange],
) -> Result<Result<Vec<i64>, Refused>, sqlx::Error> {
    let transfers = ledger::consolidate(transfers);
    let mut params = Params::new();
    let rows = ContributionColumns::of(batch_id, rows).ctes(&mut params);
    let cycles_cte = CycleColumns::of(cycles).cte(&mut params);
    let posting = Posting::of(&transfers).ctes(&mut params);
    let count = params.bind(cycles.len() as i64);
    let audited = audit_cte(&mut params, batch_id, pools, earlier, (0, 0), true);
    let sql = format!(
        "with {rows}, {cycles_cte}, {posting},
         verdict as (
             select case
                 when (select count(*) from cycles) <> {count}
                     then cekpot_abort('CK001', 'a pool changed since the batch read it')
                 when (select count(*) from inserted) <> (select count(*) from input)
                     then cekpot_abort('CK002', 'an idempotency key of the batch is stored already')
                 else 0 end as ok),
         {audited}
         select (select ok from verdict), array({INSERTED_IDS}), (select count(*) from audited)"
    );
    let query = sqlx::query_as_with::<_, (i64, Vec<i64>, i64), _>(&sql, params.finish()?);
    match refusal(query.fetch_one(conn).await)? {
        Ok((_, ids, audited)) => {
            expect_audited(audited, !ids.is_empty() || !earlier.ids.is_empty())?;
            Ok(Ok(ids))
        }
        Err(refused) => Ok(Err(refused)),
    }
}

/// Contribution rows a batch wrote before its last statement, for that
/// statement's audit record: their ids, key ids and request ids, in order.
#[derive(Debug, Clone, Default)]
pub struct Written {
    pub ids: Vec<i64>,
    pub key_ids: Vec<Option<String>>,
    pub request_ids: Vec<Option<String>>,
}

impl Written {
    /// Adds `rows`, inserted with `ids`.
    pub fn add(&mut self, ids: &[i64], rows: &[NewContribution]) {
        self.ids.extend_from_slice(ids);
        self.key_ids.extend(rows.iter().map(|r| r.key_id.clone()));
        self.request_ids.extend(rows.iter().map(|r| r.request_id.clone()));
    }
}

/// The caller's own writes, sent in [`write_rows`]'s statement: one round
/// trip fewer for a transaction that has rows of its own to write (a spin
/// batch's players and spins).
pub trait Rider {
    /// Common table expressions, each `name as (…)` followed by a comma,
    /// their values bound to `params`.
    fn ctes(&self, params: &mut Params) -> String;
}

/// What [`write_rows`] wrote, for [`write_pools`] to record.
pub struct RowsWritten {
    /// The contribution rows' ids, in the order given.
    pub ids: Vec<i64>,
    pub transfers: i64,
    pub accounts: i64,
}

/// A batch's write in two statements, for a transaction that holds other
/// rows' locks already (a spin batch's players and wallets): first this one,
/// the contribution rows and the posting's first part (the transfers, and
/// the balances of accounts no other transaction moves meanwhile — see
/// [`Posting::split`]); last, just before the commit, [`write_pools`]. The
/// rows shared with every other batch are so locked only for the second
/// statement and the commit. The `rider`'s writes go in the same statement.
/// Refuses [`Refused::KeyStored`] as [`write`] does.
pub async fn write_rows(
    conn: &mut PgConnection,
    batch_id: i64,
    rows: &[NewContribution],
    posting: &Posting,
    rider: &impl Rider,
    closing: Option<&Entry>,
) -> Result<Result<RowsWritten, Refused>, sqlx::Error> {
    let closing_given = closing.is_some();
    let mut params = Params::new();
    let rows = ContributionColumns::of(batch_id, rows).ctes(&mut params);
    let posting = posting.ctes(&mut params);
    let rider = rider.ctes(&mut params);
    let (closing, closed) = closing_cte(&mut params, closing, None);
    let sql = format!(
        "with {rows}, {posting}, {rider}
         verdict as (
             select case
                 when (select count(*) from inserted) <> (select count(*) from input)
                     then cekpot_abort('CK002', 'an idempotency key of the batch is stored already')
                 else 0 end as ok){closing}
         select (select ok from verdict), array({INSERTED_IDS}), (select count(*) from posted),
                (select count(*) from balances), {closed}"
    );
    let query = sqlx::query_as_with::<_, (i64, Vec<i64>, i64, i64, i64), _>(&sql, params.finish()?);
    match refusal(query.fetch_one(conn).await)? {
        Ok((_, ids, transfers, accounts, appended)) => {
            expect_closed(appended, closing_given)?;
            Ok(Ok(RowsWritten { ids, transfers, accounts }))
        }
        Err(refused) => Ok(Err(refused)),
    }
}

/// What the second statement of a batch written in two writes (see
/// [`write_pools`]).
pub struct PoolsPart {
    pub batch_id: i64,
    pub cycles: Vec<CycleUpdate>,
    /// The posting's second part.
    pub posting: Posting,
    /// Every contribution row the batch wrote, for its audit record.
    pub written: Written,
    pub posted: RowsWritten,
    pub pools: Vec<PoolChange>,
}

/// The second statement of a batch written in two (see [`write_rows`]): the
/// cycles' new values and meters, the posting's second part, and the batch's
/// audit record, which names the rows `written` holds. Refuses
/// [`Refused::PoolChanged`] as [`write`] does.
pub async fn write_pools(
    conn: &mut PgConnection,
    part: &PoolsPart,
    closing: Option<&Entry>,
) -> Result<Result<(), Refused>, sqlx::Error> {
    let PoolsPart { batch_id, cycles, posting, written, posted, pools } = part;
    let batch_id = *batch_id;
    // The open cycles' locks first, in a statement of their own. It waits
    // for the transactions moving them now, and the statement below, whose
    // snapshot is taken when it starts, then reads the cycles as the last of
    // those left them: a row a statement's snapshot shows at another value
    // than the one it checks for is skipped, not waited for.
    let jackpot_ids: Vec<&str> = cycles.iter().map(|c| c.jackpot_id.as_str()).collect();
    sqlx::query(
        "select 1 from jackpot_cycles where jackpot_id = any($1) and closed_at is null
          order by jackpot_id for no key update",
    )
    .bind(&jackpot_ids)
    .execute(&mut *conn)
    .await?;
    let mut params = Params::new();
    let cycles_cte = CycleColumns::of(cycles).cte(&mut params);
    let posting = posting.ctes(&mut params);
    let count = params.bind(cycles.len() as i64);
    let audited =
        audit_cte(&mut params, batch_id, pools, written, (posted.transfers, posted.accounts), false);
    let closing_given = closing.is_some();
    let (closing, closed) = closing_cte(&mut params, closing, Some("audited"));
    let sql = format!(
        "with {cycles_cte}, {posting},
         verdict as (
             select case
                 when (select count(*) from cycles) <> {count}
                     then cekpot_abort('CK001', 'a pool changed since the batch read it')
                 else 0 end as ok),
         {audited}{closing}
         select (select ok from verdict), (select count(*) from audited), {closed}"
    );
    let query = sqlx::query_as_with::<_, (i64, i64, i64), _>(&sql, params.finish()?);
    match refusal(query.fetch_one(conn).await)? {
        Ok((_, audited, appended)) => {
            expect_audited(audited, !written.ids.is_empty())?;
            expect_closed(appended, closing_given).map(Ok)
        }
        Err(refused) => Ok(Err(refused)),
    }
}

/// A statement's answer, or how it refused itself.
fn refusal<T>(answer: Result<T, sqlx::Error>) -> Result<Result<T, Refused>, sqlx::Error> {
    match answer {
        Ok(answer) => Ok(Ok(answer)),
        Err(error) => match error.as_database_error().and_then(|e| e.code()).as_deref() {
            Some("CK001") => Ok(Err(Refused::PoolChanged)),
            Some("CK002") => Ok(Err(Refused::KeyStored)),
            _ => Err(error),
        },
    }
}

/// The caller's closing record (see [`crate::audit::append_cte`]) as a CTE
/// to follow the statement's others (`, closing as (…)`) and the select
/// expression that runs it and counts what it appended; nothing and `0`
/// without one.
fn closing_cte(params: &mut Params, closing: Option<&Entry>, after: Option<&str>) -> (String, &'static str) {
    match closing {
        Some(entry) => (
            format!(",\n         {}", crate::audit::append_cte(params, entry, after)),
            "(select count(*) from closing)",
        ),
        None => (String::new(), "0::bigint"),
    }
}

/// A statement appended `appended` records of a kind (`what`) where it
/// should have appended one when `expected`, else none.
fn expect_appended(what: &str, appended: i64, expected: bool) -> Result<(), sqlx::Error> {
    if appended != i64::from(expected) {
        return Err(sqlx::Error::Protocol(format!("{appended} {what} records, not {}", i64::from(expected))));
    }
    Ok(())
}

fn expect_closed(appended: i64, given: bool) -> Result<(), sqlx::Error> {
    expect_appended("closing audit", appended, given)
}

fn expect_audited(audited: i64, expected: bool) -> Result<(), sqlx::Error> {
    expect_appended("batch audit", audited, expected)
}

/// The CTE `audited`, which appends the batch's audit record once everything
/// else of the statement has run — its arguments read every other CTE, so the
/// chain's head is the statement's last lock. Its values, bound to `params`:
/// the pools, the rows earlier statements of the transaction inserted
/// (`earlier`: ids, key ids, request ids), and the transfers and the
/// accounts' balances earlier statements of the batch posted; the rows the
/// statement itself inserted are read from its CTE `inserted` when
/// `inserted_here`. Nothing is appended for a batch that wrote no
/// contribution. The earlier rows come as parameters, never read back from
/// the contributions table: a plan made while that table was small could
/// scan all of it.
fn audit_cte(
    params: &mut Params,
    batch_id: i64,
    pools: &[PoolChange],
    earlier: &Written,
    (transfers_earlier, accounts_earlier): (i64, i64),
    inserted_here: bool,
) -> String {
    let pools = params.bind(sqlx::types::Json(pools));
    let ids = params.bind(&earlier.ids);
    let key_ids = params.bind(&earlier.key_ids);
    let request_ids = params.bind(&earlier.request_ids);
    let transfers_earlier = params.bind(transfers_earlier);
    let accounts_earlier = params.bind(accounts_earlier);
    let batch = params.bind(batch_id);
    let inserted = if inserted_here {
        "union all
             select 1, id, id, key_id, request_id from inserted"
    } else {
        ""
    };
    format!(
        "written as (
             select 0 as part, ord, id, key_id, request_id
               from unnest({ids}::bigint[], {key_ids}::text[], {request_ids}::text[]) with ordinality
                    as e(id, key_id, request_id, ord)
             {inserted}),
         audited as (
             select cekpot_audit_append(
                        (select string_agg(distinct coalesce(key_id, '-'), ',' order by coalesce(key_id, '-')) from written),
                        'contribution_batch', null, null, null, null,
                        jsonb_build_object(
                            'batchId', {batch},
                            'contributions', (select jsonb_build_object(
                                                  'ids', jsonb_agg(id order by part, ord),
                                                  'keyIds', jsonb_agg(key_id order by part, ord),
                                                  'requestIds', jsonb_agg(request_id order by part, ord))
                                                from written),
                            'pools', {pools}::jsonb,
                            'cyclesUpdated', (select count(*) from cycles),
                            'accountsMoved', (select count(*) from balances) + {accounts_earlier},
                            'transfers', (select count(*) from posted) + {transfers_earlier}))
              where exists (select 1 from written))"
    )
}
