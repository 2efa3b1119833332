//! Applying a batch of contributions in one transaction, in arrival order.

use std::collections::{BTreeMap, HashMap};

use domain::jackpot::{Applied, Pool, Status, Tier};
use domain::money::Amount;
use sqlx::PgConnection;

use super::cycle::{award_cycle, Books, Winner};
use super::dedupe::{answer, Dedupe, Repeats, Seen};
use super::{AwardReceipt, ContributionError, ContributionReceipt, ContributionRequest};
use crate::audit::{self, Entry};
use crate::db::awards;
use crate::db::batches::{self, PoolChange, Refused, Rider, Written};
use crate::db::contributions::{self, NewContribution, StoredContribution};
use crate::db::jackpots::{self, CycleMeters, CycleUpdate, Jackpot, LockedJackpot, OpenCycle};
use crate::db::ledger::{AccountKind, Accounts, Posting, Transfer, TransferKind};

type Outcome = Result<ContributionReceipt, ContributionError>;

/// What a stored contribution is found by: (jackpot, origin, idempotency key).
type StoredKey<'r> = (&'r str, &'r str, &'r str);

impl ContributionRequest {
    fn stored_key(&self) -> StoredKey<'_> {
        (self.jackpot_id.as_str(), self.origin.as_str(), self.idempotency_key.as_str())
    }
}

/// Why a batch stopped. Nothing of it is written (the caller rolls back).
#[derive(Debug)]
pub enum BatchAbort {
    /// A request's idempotency key turned out to be stored already; run the
    /// batch again, locked, with [`KeyCheck::LookUp`].
    KeysStored,
    /// A batch computed from [`Footing::Cached`] found a pool changed, or met
    /// what only the locked path answers (an unknown or paused jackpot, a
    /// refused bet, a drop): run it again, locked.
    NeedsLock,
    Storage(sqlx::Error),
}

impl From<sqlx::Error> for BatchAbort {
    fn from(error: sqlx::Error) -> BatchAbort {
        BatchAbort::Storage(error)
    }
}

impl From<Refused> for BatchAbort {
    fn from(refused: Refused) -> BatchAbort {
        match refused {
            Refused::PoolChanged => BatchAbort::NeedsLock,
            Refused::KeyStored => BatchAbort::KeysStored,
        }
    }
}

/// Whether to read the stored receipts of a batch's keys before applying it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KeyCheck {
    /// Assume the keys are new — the usual case — and let the write find out
    /// (it aborts with [`BatchAbort::KeysStored`]).
    AssumeNew,
    /// Read the stored receipts first, under the lock; replays get them back.
    LookUp,
}

/// What a batch is computed from.
#[derive(Debug, Clone, Copy)]
pub enum Footing<'a> {
    /// The jackpots locked and read in the caller's transaction.
    Locked(KeyCheck),
    /// The jackpots as the previous batch of this engine left them — no lock,
    /// no transaction: the write is one statement that checks every pool is
    /// still exactly as computed from, and writes nothing otherwise.
    Cached(&'a HashMap<String, LockedJackpot>),
}

/// A committed-to-be batch: an outcome per request, in order, and the jackpots
/// as the batch leaves them (for the next batch's [`Footing::Cached`]).
pub struct BatchDone {
    pub outcomes: Vec<Outcome>,
    pub jackpots: Vec<LockedJackpot>,
}

/// Applies `requests` and answers one outcome per request, in the same order.
/// Each jackpot's requests are walked in arrival order, so the contribution
/// that carries a must-drop pool past its drop point is the one that wins it,
/// and later requests in the batch feed the next cycle. A request whose
/// idempotency key is already stored gets the stored receipt back (after a
/// [`BatchAbort::KeysStored`] and [`KeyCheck::LookUp`]).
///
/// Statements, locked: one to lock and read the jackpots and one that writes
/// the contributions, the pools and the ledger — plus an award's few when a
/// pool drops. Cached: the write alone. On `Err` nothing of the batch is
/// written (the caller rolls its transaction back).
/// `extra` transfers (a spin batch's bets and wins) are posted with the
/// batch's own, in its write statement.
pub async fn apply_batch(
    conn: &mut PgConnection,
    accounts: &Accounts,
    batch_id: i64,
    requests: &[ContributionRequest],
    footing: Footing<'_>,
    extra: &[Transfer],
) -> Result<BatchDone, BatchAbort> {
    plan_batch(conn, accounts, batch_id, requests, footing).await?.write(conn, extra).await
}

/// Walks the batch as [`apply_batch`] does and stops before its write: from
/// [`Footing::Cached`] nothing touches the database (but to learn an account's
/// id the first time). A drop's rows and award are written during the walk,
/// which only the locked footing takes that far.
pub async fn plan_batch<'r>(
    conn: &mut PgConnection,
    accounts: &Accounts,
    batch_id: i64,
    requests: &'r [ContributionRequest],
    footing: Footing<'_>,
) -> Result<Planned<'r>, BatchAbort> {
    let mut ids: Vec<&str> = requests.iter().map(|r| r.jackpot_id.as_str()).collect();
    ids.sort_unstable();
    ids.dedup();
    let (mut locked, keys): (HashMap<String, LockedJackpot>, _) = match footing {
        Footing::Locked(keys) => {
            let locked = jackpots::lock_with_cycles(conn, &ids).await?;
            (locked.into_iter().map(|l| (l.jackpot.id.clone(), l)).collect(), keys)
        }
        Footing::Cached(cache) => {
            let known: Option<HashMap<_, _>> =
                ids.iter().map(|id| cache.get(*id).map(|l| (id.to_string(), l.clone()))).collect();
            (known.ok_or(BatchAbort::NeedsLock)?, KeyCheck::AssumeNew)
        }
    };
    let cached = matches!(footing, Footing::Cached(_));
    let fingerprints: Vec<Vec<u8>> = requests.iter().map(ContributionRequest::fingerprint).collect();
    let stored = match keys {
        KeyCheck::LookUp => stored_receipts(conn, requests).await?,
        KeyCheck::AssumeNew => HashMap::new(),
    };

    let mut results: Vec<Option<Outcome>> = vec![None; requests.len()];
    let mut dedupe = Dedupe::new();
    let mut runs: BTreeMap<String, Vec<usize>> = BTreeMap::new();
    for (index, request) in requests.iter().enumerate() {
        let key = request.stored_key();
        match dedupe.see(index, key, &fingerprints[index], stored.get(&key)) {
            Seen::New => {}
            Seen::Stored(receipt) => {
                results[index] = Some(Ok(receipt.clone()));
                continue;
            }
            Seen::Reused => {
                results[index] = Some(Err(ContributionError::IdempotencyKeyReused));
                continue;
            }
            Seen::Repeat => continue,
        }
        match eligibility(request, locked.get(&request.jackpot_id)) {
            Ok(()) => runs.entry(request.jackpot_id.clone()).or_default().push(index),
            // A refusal read from a cache could be stale: only the locked path refuses.
            Err(_) if cached => return Err(BatchAbort::NeedsLock),
            Err(error) => results[index] = Some(Err(error)),
        }
    }
    let mut batch = Batch {
        id: batch_id,
        requests,
        fingerprints,
        cached,
        results,
        pending: Vec::new(),
        earlier: Written::default(),
        closed: Vec::new(),
        transfers: Vec::new(),
        cycle_updates: Vec::new(),
        audit: Vec::new(),
    };
    let mut left = Vec::with_capacity(locked.len());
    for (jackpot_id, indexes) in runs {
        let LockedJackpot { jackpot, cycle, games } =
            locked.remove(&jackpot_id).expect("eligible jackpots are read");
        let books = Books::open(conn, accounts, &jackpot).await?;
        let mut run = Run {
            jackpot: &jackpot,
            books,
            meters: CycleMeters::default(),
            stored_value: cycle.value_micros,
        };
        let cycle = run.walk(conn, &mut batch, cycle, &indexes).await?;
        batch.cycle_updates.push(CycleUpdate {
            jackpot_id,
            cycle_number: cycle.cycle_number,
            value: Amount::from_micros(cycle.value_micros),
            meters: run.meters,
            expected_value: Some(Amount::from_micros(run.stored_value)),
            expected_config_version: Some(cycle.config_version),
        });
        batch.transfers.append(&mut run.books.transfers);
        batch.audit.append(&mut run.books.audit);
        left.push(LockedJackpot { jackpot, cycle, games });
    }
    left.extend(locked.into_values());
    Ok(Planned { batch, repeats: dedupe.into_repeats(), jackpots: left })
}

/// A batch walked, its outcomes decided and its final write not sent yet.
pub struct Planned<'r> {
    batch: Batch<'r>,
    repeats: Repeats,
    jackpots: Vec<LockedJackpot>,
}

/// What is left to write of a batch whose rows are written (see
/// [`Planned::write_rows`]): nothing, when no request reached a pool.
pub struct PoolsWrite(Option<PoolsLeft>);

/// The second statement of a batch written in two, and the award records
/// that follow it.
struct PoolsLeft {
    part: batches::PoolsPart,
    audit: Vec<Entry>,
    closing: Option<Entry>,
}

impl<'r> Planned<'r> {
    /// The row each request will write, in order, for a batch planned from
    /// [`Footing::Cached`]: its receipt will say what the row says (the
    /// insert assigns the ids). `None` when a request has no row of its own —
    /// a repeated key, or a batch planned locked, which may have refused
    /// requests or paid an award.
    pub fn rows_ahead(&self) -> Option<Vec<&NewContribution>> {
        if !self.batch.cached || !self.repeats.is_empty() {
            return None;
        }
        let mut rows = vec![None; self.batch.requests.len()];
        for (index, row) in &self.batch.pending {
            rows[*index] = Some(row);
        }
        rows.into_iter().collect()
    }

    /// The jackpots as the batch leaves them: the footing of the next batch.
    pub fn jackpots(&self) -> &[LockedJackpot] {
        &self.jackpots
    }

    /// Writes the batch in one statement (and its awards' audit records).
    pub async fn write(self, conn: &mut PgConnection, extra: &[Transfer]) -> Result<BatchDone, BatchAbort> {
        let Planned { mut batch, repeats, jackpots } = self;
        if batch.cycle_updates.is_empty() {
            // No request reached a pool.
            crate::db::ledger::post(conn, extra).await?;
            return Ok(BatchDone { outcomes: answer(batch.results, repeats), jackpots });
        }
        let (indexes, rows): (Vec<usize>, Vec<NewContribution>) = batch.pending.drain(..).unzip();
        let pools = batch.pool_changes();
        batch.transfers.extend_from_slice(extra);
        let ids = batches::write(
            conn,
            batch.id,
            &rows,
            &batch.cycle_updates,
            &batch.transfers,
            &batch.earlier,
            &pools,
        )
        .await??;
        batch.record(indexes, &rows, ids.into_iter().map(Some).collect())?;
        // The awards' records follow the batch's: the statement above locked the
        // chain's head last, and nothing else is locked after it.
        audit::append(conn, &batch.audit).await?;
        Ok(BatchDone { outcomes: answer(batch.results, repeats), jackpots })
    }

    /// Writes the batch in two statements (see [`batches::write_rows`]) and
    /// sends the first: the rows, the transfers and the balances of the
    /// accounts `own` picks — those the caller's transaction has locked
    /// already — with the `rider`'s writes, and answers the outcomes, in
    /// order, as the commit will make them. The second statement goes with
    /// [`PoolsWrite::write`], last. The `closing` audit record (the caller's
    /// own, such as a spin batch's) goes into whichever statement is last.
    pub async fn write_rows(
        self,
        conn: &mut PgConnection,
        extra: &[Transfer],
        own: impl Fn(i64) -> bool,
        rider: &impl Rider,
        closing: Option<Entry>,
    ) -> Result<(Vec<Outcome>, PoolsWrite), BatchAbort> {
        let Planned { mut batch, repeats, jackpots: _ } = self;
        batch.transfers.extend_from_slice(extra);
        let transfers = crate::db::ledger::consolidate(&batch.transfers);
        if batch.cycle_updates.is_empty() {
            // No request reached a pool: one statement posts it all.
            let posting = Posting::of(&transfers);
            batches::write_rows(conn, batch.id, &[], &posting, rider, closing.as_ref()).await??;
            return Ok((answer(batch.results, repeats), PoolsWrite(None)));
        }
        let (indexes, rows): (Vec<usize>, Vec<NewContribution>) = batch.pending.drain(..).unzip();
        let (first, second) = Posting::split(&transfers, own);
        let posted = batches::write_rows(conn, batch.id, &rows, &first, rider, None).await??;
        batch.record(indexes, &rows, posted.ids.iter().copied().map(Some).collect())?;
        // After any rows a drop had the walk insert, as in one statement.
        let mut written = std::mem::take(&mut batch.earlier);
        written.add(&posted.ids, &rows);
        let pools = PoolsLeft {
            part: batches::PoolsPart {
                batch_id: batch.id,
                pools: batch.pool_changes(),
                cycles: std::mem::take(&mut batch.cycle_updates),
                posting: second,
                written,
                posted,
            },
            audit: std::mem::take(&mut batch.audit),
            closing,
        };
        Ok((answer(batch.results, repeats), PoolsWrite(Some(pools))))
    }
}

impl PoolsWrite {
    /// The second statement: the cycles (checked to be as the batch was
    /// computed from: [`BatchAbort::NeedsLock`] otherwise), the other
    /// balances and the batch's audit record; then any award's records.
    pub async fn write(self, conn: &mut PgConnection) -> Result<(), BatchAbort> {
        let Some(left) = self.0 else { return Ok(()) };
        batches::write_pools(conn, &left.part, left.closing.as_ref()).await??;
        audit::append(conn, &left.audit).await?;
        Ok(())
    }
}

fn eligibility(
    request: &ContributionRequest,
    locked: Option<&LockedJackpot>,
) -> Result<(), ContributionError> {
    let locked = locked.ok_or(ContributionError::JackpotNotFound)?;
    let jackpot = &locked.jackpot;
    if jackpot.status == Status::Paused {
        return Err(ContributionError::JackpotPaused);
    }
    if jackpot.currency != request.currency {
        return Err(ContributionError::CurrencyMismatch);
    }
    if jackpot.tier != Tier::Mega && !locked.games.contains(&request.game_id) {
        return Err(ContributionError::GameNotEligible);
    }
    Ok(())
}

/// Receipts of contributions already stored under the batch's keys, with the
/// request hash each was stored with.
async fn stored_receipts<'r>(
    conn: &mut PgConnection,
    requests: &'r [ContributionRequest],
) -> Result<HashMap<StoredKey<'r>, (Vec<u8>, ContributionReceipt)>, sqlx::Error> {
    let jackpot_ids: Vec<&str> = requests.iter().map(|r| r.jackpot_id.as_str()).collect();
    let origins: Vec<&str> = requests.iter().map(|r| r.origin.as_str()).collect();
    let keys: Vec<&str> = requests.iter().map(|r| r.idempotency_key.as_str()).collect();
    let stored = contributions::find_by_keys(conn, &jackpot_ids, &origins, &keys).await?;
    if stored.is_empty() {
        return Ok(HashMap::new());
    }
    let ids: Vec<i64> = stored.iter().map(|s| s.id).collect();
    let mut won: HashMap<i64, AwardReceipt> = HashMap::new();
    for record in awards::for_contributions(conn, &ids).await? {
        let receipt = AwardReceipt::try_from(record)?;
        won.insert(receipt.contribution_id.unwrap_or_default(), receipt);
    }
    let mut receipts = HashMap::new();
    for StoredContribution { id, row } in stored {
        let Some(request) = requests.iter().find(|r| {
            r.jackpot_id == row.jackpot_id
                && r.origin.as_str() == row.origin
                && r.idempotency_key == row.idempotency_key
        }) else {
            continue;
        };
        let award = won.remove(&id);
        receipts.insert(request.stored_key(), (row.request_hash.clone(), stored_receipt(id, &row, award)));
    }
    Ok(receipts)
}

fn stored_receipt(id: i64, row: &NewContribution, award: Option<AwardReceipt>) -> ContributionReceipt {
    ContributionReceipt {
        contribution_id: id,
        jackpot_id: row.jackpot_id.clone(),
        cycle: row.cycle_number,
        bet: Amount::from_micros(row.bet_amount_micros),
        contribution: Amount::from_micros(row.amount_micros),
        pool_share: Amount::from_micros(row.pool_share_micros - row.overflow_micros),
        reserve_share: Amount::from_micros(row.reserve_share_micros + row.overflow_micros),
        value: Amount::from_micros(row.value_after_micros),
        award,
    }
}

/// A batch being applied: what it has decided and not written yet.
struct Batch<'a> {
    id: i64,
    requests: &'a [ContributionRequest],
    fingerprints: Vec<Vec<u8>>,
    /// Computed from [`Footing::Cached`]: refusals and drops need the lock.
    cached: bool,
    results: Vec<Option<Outcome>>,
    /// Accepted contributions not inserted yet, with their request's index.
    pending: Vec<(usize, NewContribution)>,
    /// The contributions inserted before the final write (up to a drop).
    earlier: Written,
    /// Cycles the batch closed by a drop: from their value before the batch
    /// to the awarded amount.
    closed: Vec<PoolChange>,
    transfers: Vec<Transfer>,
    cycle_updates: Vec<CycleUpdate>,
    /// Award records, appended after the batch's own.
    audit: Vec<Entry>,
}

impl Batch<'_> {
    /// Each pool the batch moved: the cycles it closed and those it leaves open.
    fn pool_changes(&self) -> Vec<PoolChange> {
        let mut pools = self.closed.clone();
        pools.extend(self.cycle_updates.iter().map(|c| PoolChange {
            jackpot_id: c.jackpot_id.clone(),
            cycle: c.cycle_number,
            before_micros: c.expected_value.map(Amount::micros),
            after_micros: c.value.micros(),
            closed: false,
        }));
        pools
    }

    /// Inserts the pending contributions and records their receipts.
    async fn write_pending(&mut self, conn: &mut PgConnection) -> Result<Vec<i64>, BatchAbort> {
        let (indexes, rows): (Vec<usize>, Vec<NewContribution>) = self.pending.drain(..).unzip();
        let ids = contributions::insert_many(conn, self.id, &rows).await?;
        let ids = self.record(indexes, &rows, ids)?;
        self.earlier.add(&ids, &rows);
        Ok(ids)
    }

    /// Records the receipts of rows just inserted and answers their ids, or
    /// aborts when any of them was skipped for a stored key.
    fn record(
        &mut self,
        indexes: Vec<usize>,
        rows: &[NewContribution],
        ids: Vec<Option<i64>>,
    ) -> Result<Vec<i64>, BatchAbort> {
        let ids: Vec<i64> = ids.into_iter().collect::<Option<_>>().ok_or(BatchAbort::KeysStored)?;
        for ((index, row), &id) in indexes.into_iter().zip(rows).zip(&ids) {
            self.results[index] = Some(Ok(stored_receipt(id, row, None)));
        }
        Ok(ids)
    }
}

/// One jackpot's requests within a batch.
struct Run<'a> {
    jackpot: &'a Jackpot,
    books: Books,
    /// What the open cycle's rows not yet written add to it.
    meters: CycleMeters,
    /// The open cycle's value as the database holds it before the batch's
    /// write (the write checks it is still so).
    stored_value: i64,
}

impl Run<'_> {
    /// Applies the run's requests in order and answers the cycle left open.
    async fn walk(
        &mut self,
        conn: &mut PgConnection,
        batch: &mut Batch<'_>,
        mut cycle: OpenCycle,
        indexes: &[usize],
    ) -> Result<OpenCycle, BatchAbort> {
        let mut pool = pool_of(&cycle);
        for &index in indexes {
            let request = &batch.requests[index];
            let applied = match pool.contribute(&cycle.rules, request.bet) {
                Ok(applied) if applied.drops && batch.cached => return Err(BatchAbort::NeedsLock),
                Ok(applied) => applied,
                Err(_) if batch.cached => return Err(BatchAbort::NeedsLock),
                Err(rejected) => {
                    batch.results[index] = Some(Err(ContributionError::Rejected(rejected)));
                    continue;
                }
            };
            let row = new_row(request, &batch.fingerprints[index], cycle.cycle_number, &applied);
            self.book(conn, batch.id, &row).await?;
            self.count(request, &applied);
            batch.pending.push((index, row));
            if applied.drops {
                // The award names the winning contribution: write the rows so far.
                let ids = batch.write_pending(conn).await?;
                cycle.value_micros = pool.value.micros();
                let winner = Winner {
                    actor: &request.actor,
                    origin: &request.origin,
                    player_id: &request.player_id,
                    session_id: None,
                    contribution_id: ids.last().copied(),
                };
                let meters = std::mem::take(&mut self.meters);
                let (award, next) =
                    award_cycle(conn, self.jackpot, &cycle, winner, &meters, &mut self.books).await?;
                batch.closed.push(PoolChange {
                    jackpot_id: self.jackpot.id.clone(),
                    cycle: cycle.cycle_number,
                    before_micros: Some(self.stored_value),
                    after_micros: cycle.value_micros,
                    closed: true,
                });
                if let Some(Some(Ok(receipt))) = batch.results.get_mut(index) {
                    receipt.award = Some(award);
                }
                cycle = next;
                pool = pool_of(&cycle);
                self.stored_value = cycle.value_micros;
            }
        }
        cycle.value_micros = pool.value.micros();
        Ok(cycle)
    }

    /// Books the contribution's transfers: game clearing → pool and → reserve.
    async fn book(
        &mut self,
        conn: &mut PgConnection,
        batch_id: i64,
        row: &NewContribution,
    ) -> Result<(), sqlx::Error> {
        let currency = self.jackpot.currency;
        let clearing =
            self.books.accounts.id_in(conn, AccountKind::GameClearing, &row.game_id, currency).await?;
        let reference = format!("batch:{batch_id}");
        let (pool, reserve) = (self.books.pool, self.books.reserve);
        let to_pool = Amount::from_micros(row.pool_share_micros - row.overflow_micros);
        let to_reserve = Amount::from_micros(row.reserve_share_micros + row.overflow_micros);
        self.books.transfer(clearing, pool, to_pool, TransferKind::ContributionPool, &reference);
        self.books.transfer(clearing, reserve, to_reserve, TransferKind::ContributionReserve, &reference);
        Ok(())
    }

    fn count(&mut self, request: &ContributionRequest, applied: &Applied) {
        self.meters.bets_count += 1;
        self.meters.bets_micros += request.bet.micros();
        self.meters.contributions_micros += applied.split.contribution.micros();
        self.meters.pool_shares_micros += applied.to_pool.micros();
        self.meters.reserve_shares_micros += applied.to_reserve().micros();
    }
}

fn pool_of(cycle: &OpenCycle) -> Pool {
    Pool {
        value: Amount::from_micros(cycle.value_micros),
        drop_point: cycle.drop_point_micros.map(Amount::from_micros),
    }
}

fn new_row(
    request: &ContributionRequest,
    fingerprint: &[u8],
    cycle: i64,
    applied: &Applied,
) -> NewContribution {
    let split = applied.split;
    NewContribution {
        jackpot_id: request.jackpot_id.clone(),
        cycle_number: cycle,
        game_id: request.game_id.clone(),
        player_id: request.player_id.clone(),
        origin: request.origin.as_str().to_owned(),
        idempotency_key: request.idempotency_key.clone(),
        request_hash: fingerprint.to_vec(),
        bet_amount_micros: request.bet.micros(),
        amount_micros: split.contribution.micros(),
        pool_share_micros: split.pool_share.micros(),
        reserve_share_micros: split.reserve_share.micros(),
        overflow_micros: applied.overflow_to_reserve.micros(),
        value_after_micros: applied.value_after.micros(),
        key_id: Some(request.actor.key_id.clone()),
        request_id: request.actor.request_id.clone(),
    }
}
