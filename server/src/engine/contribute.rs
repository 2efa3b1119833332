//! Applying a batch of contributions in one transaction, in arrival order.

use std::collections::{BTreeMap, HashMap};

use domain::jackpot::{Applied, Pool, Status, Tier};
use domain::money::Amount;
use sqlx::PgConnection;

use super::cycle::{award_cycle, Books, Winner};
use super::{AwardReceipt, ContributionError, ContributionReceipt, ContributionRequest};
use crate::db::awards;
use crate::db::contributions::{self, NewContribution, StoredContribution};
use crate::db::jackpots::{self, CycleMeters, Jackpot, OpenCycle};
use crate::db::ledger::{self, AccountKind, TransferKind};

type Outcome = Result<ContributionReceipt, ContributionError>;

/// Applies `requests` in one transaction (the caller's) and answers one outcome
/// per request, in the same order. Each jackpot is locked for the transaction;
/// its requests are walked in arrival order, so the contribution that carries a
/// must-drop pool past its drop point is the one that wins it, and later
/// requests in the batch feed the next cycle. A request whose idempotency key
/// is already stored gets the stored receipt back.
///
/// The `Err` case is a storage failure: the caller rolls back and nothing of the
/// batch is written.
pub async fn apply_batch(
    conn: &mut PgConnection,
    requests: &[ContributionRequest],
) -> Result<Vec<Outcome>, sqlx::Error> {
    let mut ids: Vec<&str> = requests.iter().map(|r| r.jackpot_id.as_str()).collect();
    ids.sort_unstable();
    ids.dedup();
    let locked: HashMap<String, Jackpot> =
        jackpots::lock(conn, &ids).await?.into_iter().map(|j| (j.id.clone(), j)).collect();
    let games = jackpots::eligible_games(conn, &ids).await?;
    let mut cycles: HashMap<String, OpenCycle> =
        jackpots::open_cycles(conn, &ids).await?.into_iter().map(|c| (c.jackpot_id.clone(), c)).collect();
    let fingerprints: Vec<Vec<u8>> = requests.iter().map(ContributionRequest::fingerprint).collect();
    let stored = stored_receipts(conn, requests).await?;

    let mut results: Vec<Option<Outcome>> = vec![None; requests.len()];
    let mut first_with_key: HashMap<(&str, &str), usize> = HashMap::new();
    let mut repeats: Vec<(usize, usize)> = Vec::new();
    let mut runs: BTreeMap<&str, Vec<usize>> = BTreeMap::new();
    for (index, request) in requests.iter().enumerate() {
        let key = (request.jackpot_id.as_str(), request.idempotency_key.as_str());
        if let Some((hash, receipt)) = stored.get(&key) {
            results[index] = Some(if *hash == fingerprints[index] {
                Ok(receipt.clone())
            } else {
                Err(ContributionError::IdempotencyKeyReused)
            });
            continue;
        }
        if let Some(&first) = first_with_key.get(&key) {
            if fingerprints[first] == fingerprints[index] {
                repeats.push((index, first));
            } else {
                results[index] = Some(Err(ContributionError::IdempotencyKeyReused));
            }
            continue;
        }
        first_with_key.insert(key, index);
        match eligibility(request, locked.get(&request.jackpot_id), &games) {
            Ok(()) => runs.entry(request.jackpot_id.as_str()).or_default().push(index),
            Err(error) => results[index] = Some(Err(error)),
        }
    }

    let batch_id = contributions::next_batch_id(conn).await?;
    let mut transfers = Vec::new();
    for (jackpot_id, indexes) in runs {
        let jackpot = &locked[jackpot_id];
        let cycle = cycles.remove(jackpot_id).ok_or_else(|| no_open_cycle(jackpot_id))?;
        let books = Books::open(conn, jackpot).await?;
        let mut run =
            Run { batch_id, jackpot, requests, fingerprints: &fingerprints, results: &mut results, books };
        run.walk(conn, cycle, &indexes).await?;
        transfers.append(&mut run.books.transfers);
    }
    ledger::post(conn, &transfers).await?;
    for (index, first) in repeats {
        results[index] = results[first].clone();
    }
    Ok(results.into_iter().map(|r| r.expect("every request gets an outcome")).collect())
}

fn no_open_cycle(jackpot_id: &str) -> sqlx::Error {
    sqlx::Error::Protocol(format!("jackpot {jackpot_id} has no open cycle"))
}

fn eligibility(
    request: &ContributionRequest,
    jackpot: Option<&Jackpot>,
    games: &HashMap<String, std::collections::HashSet<String>>,
) -> Result<(), ContributionError> {
    let jackpot = jackpot.ok_or(ContributionError::JackpotNotFound)?;
    if jackpot.status == Status::Paused {
        return Err(ContributionError::JackpotPaused);
    }
    if jackpot.currency != request.currency {
        return Err(ContributionError::CurrencyMismatch);
    }
    let eligible = jackpot.tier == Tier::Mega
        || games.get(&jackpot.id).is_some_and(|set| set.contains(&request.game_id));
    if !eligible {
        return Err(ContributionError::GameNotEligible);
    }
    Ok(())
}

/// Receipts of contributions already stored under the batch's keys, with the
/// request hash each was stored with.
async fn stored_receipts<'r>(
    conn: &mut PgConnection,
    requests: &'r [ContributionRequest],
) -> Result<HashMap<(&'r str, &'r str), (Vec<u8>, ContributionReceipt)>, sqlx::Error> {
    let jackpot_ids: Vec<&str> = requests.iter().map(|r| r.jackpot_id.as_str()).collect();
    let keys: Vec<&str> = requests.iter().map(|r| r.idempotency_key.as_str()).collect();
    let stored = contributions::find_by_keys(conn, &jackpot_ids, &keys).await?;
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
    for row in stored {
        let Some(request) = requests
            .iter()
            .find(|r| r.jackpot_id == row.jackpot_id && r.idempotency_key == row.idempotency_key)
        else {
            continue;
        };
        let award = won.remove(&row.id);
        let hash = row.request_hash.clone();
        receipts.insert(
            (request.jackpot_id.as_str(), request.idempotency_key.as_str()),
            (hash, stored_receipt(row, award)),
        );
    }
    Ok(receipts)
}

fn stored_receipt(row: StoredContribution, award: Option<AwardReceipt>) -> ContributionReceipt {
    ContributionReceipt {
        contribution_id: row.id,
        jackpot_id: row.jackpot_id,
        cycle: row.cycle_number,
        bet: Amount::from_micros(row.bet_amount_micros),
        contribution: Amount::from_micros(row.amount_micros),
        pool_share: Amount::from_micros(row.pool_share_micros - row.overflow_micros),
        reserve_share: Amount::from_micros(row.reserve_share_micros + row.overflow_micros),
        value: Amount::from_micros(row.value_after_micros),
        award,
    }
}

/// One jackpot's requests within a batch.
struct Run<'a> {
    batch_id: i64,
    jackpot: &'a Jackpot,
    requests: &'a [ContributionRequest],
    fingerprints: &'a [Vec<u8>],
    results: &'a mut Vec<Option<Outcome>>,
    books: Books,
}

/// Contributions applied in memory and not yet written.
#[derive(Default)]
struct Segment {
    indexes: Vec<usize>,
    rows: Vec<NewContribution>,
    meters: CycleMeters,
}

impl Run<'_> {
    async fn walk(
        &mut self,
        conn: &mut PgConnection,
        mut cycle: OpenCycle,
        indexes: &[usize],
    ) -> Result<(), sqlx::Error> {
        let mut pool = pool_of(&cycle);
        let mut segment = Segment::default();
        for &index in indexes {
            let request = &self.requests[index];
            let applied = match pool.contribute(&self.jackpot.rules, request.bet) {
                Ok(applied) => applied,
                Err(rejected) => {
                    self.results[index] = Some(Err(ContributionError::Rejected(rejected)));
                    continue;
                }
            };
            segment.push(index, request, &self.fingerprints[index], cycle.cycle_number, &applied);
            if applied.drops {
                let ids = self.write(conn, &mut segment).await?;
                cycle.value_micros = pool.value.micros();
                let winner = Winner {
                    player_id: &request.player_id,
                    session_id: None,
                    contribution_id: ids.last().copied(),
                };
                let (award, next) =
                    award_cycle(conn, self.jackpot, &cycle, winner, &segment.meters, &mut self.books).await?;
                if let Some(Some(Ok(receipt))) = self.results.get_mut(index) {
                    receipt.award = Some(award);
                }
                cycle = next;
                pool = pool_of(&cycle);
                segment = Segment::default();
            }
        }
        if !segment.indexes.is_empty() {
            self.write(conn, &mut segment).await?;
            jackpots::update_cycle(
                conn,
                &self.jackpot.id,
                cycle.cycle_number,
                pool.value,
                &segment.meters,
                false,
            )
            .await?;
        }
        Ok(())
    }

    /// Inserts the segment's contributions, books their transfers (per game:
    /// game clearing → pool and → reserve) and records their receipts.
    async fn write(
        &mut self,
        conn: &mut PgConnection,
        segment: &mut Segment,
    ) -> Result<Vec<i64>, sqlx::Error> {
        let ids = contributions::insert_many(conn, self.batch_id, &segment.rows).await?;
        let mut per_game: BTreeMap<&str, (i64, i64)> = BTreeMap::new();
        for row in &segment.rows {
            let sums = per_game.entry(row.game_id.as_str()).or_default();
            sums.0 += row.pool_share_micros - row.overflow_micros;
            sums.1 += row.reserve_share_micros + row.overflow_micros;
        }
        let reference = format!("batch:{}", self.batch_id);
        let (pool, reserve) = (self.books.pool, self.books.reserve);
        for (game, (to_pool, to_reserve)) in per_game {
            let clearing =
                ledger::account(conn, AccountKind::GameClearing, game, self.jackpot.currency).await?;
            let books = &mut self.books;
            books.transfer(
                clearing,
                pool,
                Amount::from_micros(to_pool),
                TransferKind::ContributionPool,
                &reference,
            );
            books.transfer(
                clearing,
                reserve,
                Amount::from_micros(to_reserve),
                TransferKind::ContributionReserve,
                &reference,
            );
        }
        for ((&index, row), &id) in segment.indexes.iter().zip(&segment.rows).zip(&ids) {
            self.results[index] = Some(Ok(stored_receipt(stored_of(row, id), None)));
        }
        Ok(ids)
    }
}

fn pool_of(cycle: &OpenCycle) -> Pool {
    Pool {
        value: Amount::from_micros(cycle.value_micros),
        drop_point: cycle.drop_point_micros.map(Amount::from_micros),
    }
}

fn stored_of(row: &NewContribution, id: i64) -> StoredContribution {
    StoredContribution {
        id,
        jackpot_id: row.jackpot_id.clone(),
        cycle_number: row.cycle_number,
        idempotency_key: row.idempotency_key.clone(),
        request_hash: row.request_hash.clone(),
        bet_amount_micros: row.bet_amount_micros,
        amount_micros: row.amount_micros,
        pool_share_micros: row.pool_share_micros,
        reserve_share_micros: row.reserve_share_micros,
        overflow_micros: row.overflow_micros,
        value_after_micros: row.value_after_micros,
    }
}

impl Segment {
    fn push(
        &mut self,
        index: usize,
        request: &ContributionRequest,
        fingerprint: &[u8],
        cycle: i64,
        applied: &Applied,
    ) {
        let split = applied.split;
        self.indexes.push(index);
        self.rows.push(NewContribution {
            jackpot_id: request.jackpot_id.clone(),
            cycle_number: cycle,
            game_id: request.game_id.clone(),
            player_id: request.player_id.clone(),
            idempotency_key: request.idempotency_key.clone(),
            request_hash: fingerprint.to_vec(),
            bet_amount_micros: request.bet.micros(),
            amount_micros: split.contribution.micros(),
            pool_share_micros: split.pool_share.micros(),
            reserve_share_micros: split.reserve_share.micros(),
            overflow_micros: applied.overflow_to_reserve.micros(),
            value_after_micros: applied.value_after.micros(),
        });
        self.meters.bets_count += 1;
        self.meters.bets_micros += request.bet.micros();
        self.meters.contributions_micros += split.contribution.micros();
        self.meters.pool_shares_micros += applied.to_pool.micros();
        self.meters.reserve_shares_micros += applied.to_reserve().micros();
    }
}
