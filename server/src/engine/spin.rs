//! Spins of the Mini App's slot, group-committed like contributions: the
//! spins that arrive together are written in one transaction, which for each
//! spin, in arrival order, checks the player's limits and balance, debits the
//! bet, draws the outcome from the player's seeds, credits the win, makes the
//! bet's contributions through the engine's batch path (which pays a must-drop
//! jackpot the spin carried past its drop point), and records the spin. Each
//! player is locked for the transaction, so one player's spins are decided one
//! after another however many arrive at once.
//! How batches reach the jackpots without queueing on their locks: see
//! [`Chain`].

use std::collections::HashMap;

use chrono::{DateTime, Utc};
use domain::money::Amount;
use domain::play::{self, PlayRefusal, SpinRules, Standing, SteadyPace, Velocity};
use domain::seeds;
use sqlx::PgPool;

use super::batcher::{BatchLimits, Batcher, Retries, Write};
use super::contribute::{plan_batch, BatchAbort, Footing, KeyCheck, Planned};
use super::dedupe::{answer, Dedupe, Repeats, Seen};
use super::receipt::{PaidLine, PlayedSpin, SpinAwarded, SpinContributed, SpinSeed, StoredReceipt};
use super::{fingerprint, ContributionReceipt, ContributionRequest, EngineFailure, Origin};
use crate::audit::{Action, Actor, Entry};
use crate::config::PlayerSettings;
use crate::db::contributions::NewContribution;
use crate::db::jackpots::LockedJackpot;
use crate::db::ledger::{self, AccountKind, Accounts, Transfer, TransferKind};
use crate::db::spins::{
    self, Day, DayColumns, NewSpin, PlayerMoves, PlayerState, PlayerUpdate, Seed, SpinBatchRows, SpinColumns,
};
use crate::db::SequenceIds;
use crate::game::Game;

/// One spin, as the player asked for it.
#[derive(Debug, Clone)]
pub struct SpinRequest {
    pub player_id: i64,
    pub bet: Amount,
    pub idempotency_key: String,
    pub request_id: Option<String>,
}

impl SpinRequest {
    fn fingerprint(&self) -> Vec<u8> {
        fingerprint(&["spin", &self.player_id.to_string(), &self.bet.micros().to_string()])
    }
}

/// Why a spin was refused. Nothing of it was written.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SpinRefusal {
    #[error("this idempotency key was used for a different spin")]
    IdempotencyKeyReused,
    #[error("no such player")]
    UnknownPlayer,
    /// The rules of play refuse it.
    #[error(transparent)]
    Play(#[from] PlayRefusal),
    /// The player has `players.spins_in_flight_max` spins queued already.
    #[error("your previous spins are still being played; wait for their results")]
    InFlight,
}

pub type SpinOutcome = Result<PlayedSpin, SpinRefusal>;

/// Spins, through their own batcher.
#[derive(Clone)]
pub struct Spins {
    batcher: Batcher<SpinWriter>,
    game: Game,
    door: std::sync::Arc<Door>,
}

/// Admission to the spin queue, per player and per instance, checked before
/// a spin is queued (the batch checks the rules of play again, against the
/// database, for every instance): at most `in_flight_max` of a player's spins
/// at once, and none sooner than the minimum interval after the last one
/// admitted — except a retry of that one, which gets its first answer.
struct Door {
    in_flight_max: u32,
    interval: std::time::Duration,
    players: std::sync::Mutex<HashMap<i64, Admitted>>,
}

struct Admitted {
    in_flight: u32,
    last_at: std::time::Instant,
    last_key: String,
}

/// A spin's place through the door, given back when it is written or refused.
struct Pass {
    door: std::sync::Arc<Door>,
    player_id: i64,
}

impl Drop for Pass {
    fn drop(&mut self) {
        let mut players = self.door.players.lock().expect("the door's lock is never poisoned");
        if let Some(admitted) = players.get_mut(&self.player_id) {
            admitted.in_flight = admitted.in_flight.saturating_sub(1);
        }
    }
}

impl Door {
    /// The players the door remembers at most before it forgets idle ones.
    const REMEMBERED_MAX: usize = 4_096;

    fn admit(self: &std::sync::Arc<Door>, request: &SpinRequest) -> Result<Pass, SpinRefusal> {
        let now = std::time::Instant::now();
        let mut players = self.players.lock().expect("the door's lock is never poisoned");
        if players.len() >= Door::REMEMBERED_MAX {
            players.retain(|_, a| a.in_flight > 0 || now.duration_since(a.last_at) < self.interval);
        }
        let admitted = players.entry(request.player_id).or_insert(Admitted {
            in_flight: 0,
            last_at: now.checked_sub(self.interval).unwrap_or(now),
            last_key: String::new(),
        });
        if admitted.in_flight >= self.in_flight_max {
            return Err(SpinRefusal::InFlight);
        }
        let since = now.duration_since(admitted.last_at);
        if since < self.interval && admitted.last_key != request.idempotency_key {
            let retry_after_ms = (self.interval - since).as_millis() as i64;
            return Err(SpinRefusal::Play(PlayRefusal::TooSoon { retry_after_ms }));
        }
        admitted.in_flight += 1;
        admitted.last_at = now;
        admitted.last_key.clone_from(&request.idempotency_key);
        Ok(Pass { door: self.clone(), player_id: request.player_id })
    }
}

impl Spins {
    pub fn start(
        db: PgPool,
        accounts: Accounts,
        game: Game,
        players: PlayerSettings,
        limits: BatchLimits,
    ) -> Spins {
        let rules = SpinRules {
            interval_ms: game.spin_interval.as_millis() as i64,
            velocity: Velocity {
                steady_spins: players.velocity_steady_spins,
                tolerance_ms: players.velocity_tolerance_ms,
            },
        };
        let writer = SpinWriter {
            batch_ids: SequenceIds::batches(db.clone()),
            spin_ids: SequenceIds::spins(db.clone()),
            db,
            accounts,
            game: game.clone(),
            rules,
            fed: Default::default(),
            chain: Default::default(),
        };
        let door = Door {
            in_flight_max: players.spins_in_flight_max,
            interval: game.spin_interval,
            players: Default::default(),
        };
        Spins { batcher: Batcher::start(writer, limits), game, door: std::sync::Arc::new(door) }
    }

    pub fn game(&self) -> &Game {
        &self.game
    }

    /// Answers after the spin's transaction has committed; refuses at the
    /// door (see [`Door`]) what must not reach the queue.
    pub async fn spin(&self, request: SpinRequest) -> Result<SpinOutcome, EngineFailure> {
        let pass = match self.door.admit(&request) {
            Ok(pass) => pass,
            Err(refusal) => {
                metrics::counter!("cekpot_spins_total", "outcome" => "refused_at_door").increment(1);
                return Ok(Err(refusal));
            }
        };
        // The pass lives as long as the spin is queued or written: if its
        // caller goes away before its batch starts, the spin is dropped
        // unwritten and the pass with it; once written, it counts until the
        // write is done.
        let outcome = self.batcher.submit_holding(request, Some(Box::new(pass))).await?;
        let counted = match &outcome {
            Ok(spin) if spin.is_win() => "win",
            Ok(_) => "no_win",
            Err(_) => "refused",
        };
        metrics::counter!("cekpot_spins_total", "outcome" => counted).increment(1);
        Ok(outcome)
    }
}

#[derive(Clone)]
pub struct SpinWriter {
    db: PgPool,
    accounts: Accounts,
    batch_ids: SequenceIds,
    spin_ids: SequenceIds,
    game: Game,
    rules: SpinRules,
    /// The jackpots the slot feeds, and when they were read.
    fed: std::sync::Arc<std::sync::Mutex<Option<Fed>>>,
    chain: std::sync::Arc<tokio::sync::Mutex<Chain>>,
}

/// Spin batches are computed from the jackpots as the batch planned before
/// them leaves them, without locking the jackpots first: each batch locks its
/// players, plans its contributions from the chain's jackpots, and writes
/// everything but the pools; then, in planning order and just before its
/// commit, one statement moves the pools (and the slot's clearing account),
/// checking each is at the value the batch was computed from. That statement
/// waits for the batch before to commit; the jackpots' rows are held only
/// from there to the commit, while the batches behind do their other work. A
/// batch whose pools turn out otherwise (a provider's contributions, an
/// award, a configuration change, a batch before it that failed) or that
/// needs what only the locked path does (a drop, a refusal) runs again,
/// locking the jackpots first; so does a batch with nothing to plan from.
#[derive(Default)]
struct Chain {
    /// The jackpots as the last batch planned leaves them; empty after a
    /// batch that planned failed.
    known: HashMap<String, LockedJackpot>,
    /// Closed (its sender dropped) once the last batch planned has moved its
    /// pools or failed.
    last: Option<tokio::sync::oneshot::Receiver<()>>,
}

/// A chained batch's place in line for moving the pools.
struct Turn {
    before: Option<tokio::sync::oneshot::Receiver<()>>,
    /// Dropped when this batch's pools are moved (or it failed).
    _done: tokio::sync::oneshot::Sender<()>,
}

impl Turn {
    /// Waits until the batch planned before this one has moved its pools.
    async fn come(&mut self) {
        if let Some(before) = self.before.take() {
            // An error is the sender dropped: the turn has come all the same.
            let _ = before.await;
        }
    }
}

/// How a spin batch reaches the jackpots.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Path {
    /// From the chain (see [`Chain`]).
    Chained,
    /// Locking the jackpots first; reading the batch's stored contribution
    /// keys first too after one was met.
    Locked(KeyCheck),
}

/// When the jackpots the slot feeds were read, and their ids.
type Fed = (std::time::Instant, Vec<String>);

impl Write for SpinWriter {
    type Request = SpinRequest;
    type Outcome = SpinOutcome;
    const KIND: &'static str = "spin";
    const SIZE_METRIC: &'static str = "cekpot_spin_batch_size";
    const SECONDS_METRIC: &'static str = "cekpot_spin_batch_seconds";
    const FAILURES_METRIC: &'static str = "cekpot_spin_batch_failures_total";
    const DROPPED_METRIC: &'static str = "cekpot_spins_dropped_total";

    async fn write(&self, requests: &[SpinRequest]) -> Result<Vec<SpinOutcome>, sqlx::Error> {
        let currency = self.game.currency;
        // Accounts first, outside the transaction (see `Accounts`).
        let clearing = self.accounts.id(AccountKind::GameClearing, &self.game.slot.game_id, currency).await?;
        let mut wallets = HashMap::new();
        for request in requests {
            let owner = request.player_id.to_string();
            let id = self.accounts.id(AccountKind::PlayerWallet, &owner, currency).await?;
            wallets.insert(request.player_id, id);
        }
        let batch_id = self.batch_ids.next().await?;
        let spin_ids = self.spin_ids.take(requests.len()).await?;
        let batch = Batch { batch_id, spin_ids: &spin_ids, requests, wallets: &wallets, clearing };
        let mut path = Path::Chained;
        let mut retries = Retries::new("spin");
        loop {
            // Whether the batch left its jackpots in the chain, for the
            // batches behind to be computed from.
            let mut predicted = false;
            let result = async {
                let mut tx = self.db.begin().await?;
                let outcomes = self.apply(&mut tx, &batch, path, &mut predicted).await?;
                tx.commit().await?;
                Ok::<_, BatchAbort>(outcomes)
            }
            .await;
            let abort = match result {
                Ok(outcomes) => {
                    let label = if path == Path::Chained { "chained" } else { "locked" };
                    metrics::counter!("cekpot_spin_batches_total", "path" => label).increment(1);
                    return Ok(outcomes);
                }
                Err(abort) => abort,
            };
            if predicted {
                // What the batches behind were computed from will not be:
                // they run again, locked, and the chain starts anew from the
                // first of them.
                self.chain.lock().await.known.clear();
            }
            match abort {
                BatchAbort::NeedsLock if path == Path::Chained => {
                    metrics::counter!("cekpot_spin_batches_relocked_total").increment(1);
                    path = Path::Locked(KeyCheck::AssumeNew);
                }
                // A contribution key stored already: only a spin's own could
                // be (`@house` is no caller's namespace), yet the batch is not
                // failed for it: it runs again with its keys looked up, and
                // such a contribution answers as refused (its spin shows no
                // share).
                BatchAbort::KeysStored if path != Path::Locked(KeyCheck::LookUp) => {
                    tracing::warn!(batch_id, "a spin batch met a stored contribution key");
                    path = Path::Locked(KeyCheck::LookUp);
                }
                abort => retries.again(abort)?,
            }
        }
    }
}

/// A batch of spins and what was fixed for it before its transaction.
struct Batch<'a> {
    batch_id: i64,
    /// One per request, whether accepted or not.
    spin_ids: &'a [i64],
    requests: &'a [SpinRequest],
    /// Each player's wallet.
    wallets: &'a HashMap<i64, i64>,
    /// The slot's game clearing account.
    clearing: i64,
}

/// The batch's players as its transaction locked and read them.
struct Locked {
    state: LockedState,
    /// Each wallet's balance before the batch.
    balances: HashMap<i64, i64>,
    /// The wallets the batch holds, in id order.
    wallet_ids: Vec<i64>,
}

/// What the spins of a batch are decided from, by player.
struct LockedState {
    now: DateTime<Utc>,
    players: HashMap<i64, PlayerState>,
    seeds: HashMap<i64, Seed>,
    /// Each player's balance, day and pace, moved by each spin decided.
    standings: HashMap<i64, Standing>,
    /// Spins stored already under a (player, key) of the batch: their
    /// request hash and receipt.
    stored: HashMap<(i64, String), (Vec<u8>, serde_json::Value)>,
}

/// What a batch decided, before any of it is written.
struct Decided {
    results: Vec<Option<SpinOutcome>>,
    /// Requests that repeat an earlier one of the batch.
    repeats: Repeats,
    accepted: Vec<Accepted>,
    contributions: Vec<ContributionRequest>,
    transfers: Vec<Transfer>,
    /// What the accepted spins add to each player's day.
    added: HashMap<i64, Day>,
    moves: PlayerMoves,
}

impl Decided {
    fn new(requests: usize) -> Decided {
        Decided {
            results: vec![None; requests],
            repeats: Repeats::default(),
            accepted: Vec::new(),
            contributions: Vec::new(),
            transfers: Vec::new(),
            added: HashMap::new(),
            moves: PlayerMoves::of(&[], &[], Vec::new()),
        }
    }

    /// Posts an accepted spin's bet (wallet → the game's clearing) and win (back).
    fn post(&mut self, batch: &Batch<'_>, request: &SpinRequest, spin_id: i64, win: Amount) {
        let wallet = batch.wallets[&request.player_id];
        let reference = format!("spin:{spin_id}");
        self.transfers.push(Transfer {
            debit: wallet,
            credit: batch.clearing,
            amount: request.bet,
            kind: TransferKind::Bet,
            reference: reference.clone(),
        });
        self.transfers.push(Transfer {
            debit: batch.clearing,
            credit: wallet,
            amount: win,
            kind: TransferKind::Win,
            reference,
        });
    }
}

/// A spin the batch accepted, before its contributions are made.
struct Accepted {
    index: usize,
    spin_id: i64,
    seed: Seed,
    nonce: i64,
    outcome: domain::slot::Outcome,
    win: Amount,
    /// Its requests' positions in the batch's contributions.
    contributions: std::ops::Range<usize>,
}

/// What a batch's receipts are computed from besides its spins.
struct Basis<'a> {
    requests: &'a [SpinRequest],
    wallets: &'a HashMap<i64, i64>,
    /// Each wallet's balance before the batch.
    locked_balances: HashMap<i64, i64>,
    now: DateTime<Utc>,
}

/// What one contribution of a spin made, as its receipt shows it.
struct ContributionView {
    contribution: SpinContributed,
    award: Option<SpinAwarded>,
}

impl ContributionView {
    fn of_receipt(receipt: &ContributionReceipt) -> ContributionView {
        ContributionView {
            contribution: SpinContributed {
                jackpot_id: receipt.jackpot_id.clone(),
                amount: receipt.contribution,
                value: receipt.value,
            },
            award: receipt.award.as_ref().map(|award| SpinAwarded {
                award_id: award.award_id,
                jackpot_id: award.jackpot_id.clone(),
                cycle: award.cycle,
                amount: award.awarded_amount,
            }),
        }
    }

    /// A contribution planned from the chain, which never pays an award.
    fn of_row(row: &NewContribution) -> ContributionView {
        ContributionView {
            contribution: SpinContributed {
                jackpot_id: row.jackpot_id.clone(),
                amount: Amount::from_micros(row.amount_micros),
                value: Amount::from_micros(row.value_after_micros),
            },
            award: None,
        }
    }
}

/// How long the list of jackpots the slot feeds is reused before it is read
/// again: a new jackpot starts taking the slot's contributions within this.
const FED_JACKPOTS_TTL: std::time::Duration = std::time::Duration::from_secs(1);

impl SpinWriter {
    async fn jackpots_fed(&self, conn: &mut sqlx::PgConnection) -> Result<Vec<String>, sqlx::Error> {
        if let Some((read, ids)) = self.fed.lock().expect("never poisoned").as_ref() {
            if read.elapsed() < FED_JACKPOTS_TTL {
                return Ok(ids.clone());
            }
        }
        let ids = spins::jackpots_fed_by(conn, &self.game.slot.game_id, self.game.currency.as_str()).await?;
        *self.fed.lock().expect("never poisoned") = Some((std::time::Instant::now(), ids.clone()));
        Ok(ids)
    }

    /// Plans a batch and takes the next turn: chained, from the chain's
    /// jackpots; locked, once the batch before has moved its pools, from the
    /// jackpots locked (which waits for that batch's commit). Either way the
    /// batch leaves its jackpots in the chain.
    async fn plan<'r>(
        &self,
        conn: &mut sqlx::PgConnection,
        batch_id: i64,
        contributions: &'r [ContributionRequest],
        path: Path,
        predicted: &mut bool,
    ) -> Result<(Planned<'r>, Turn), BatchAbort> {
        let mut chain = self.chain.lock().await;
        let (done, next) = tokio::sync::oneshot::channel();
        let planned = match path {
            Path::Chained if chain.known.is_empty() => return Err(BatchAbort::NeedsLock),
            Path::Chained => {
                let footing = Footing::Cached(&chain.known);
                let planned = plan_batch(conn, &self.accounts, batch_id, contributions, footing).await?;
                let before = chain.last.replace(next);
                (planned, Turn { before, _done: done })
            }
            Path::Locked(keys) => {
                let mut turn = Turn { before: chain.last.replace(next), _done: done };
                turn.come().await;
                let footing = Footing::Locked(keys);
                (plan_batch(conn, &self.accounts, batch_id, contributions, footing).await?, turn)
            }
        };
        for jackpot in planned.0.jackpots() {
            chain.known.insert(jackpot.jackpot.id.clone(), jackpot.clone());
        }
        *predicted = true;
        Ok(planned)
    }

    /// Decides the batch's spins and writes them, on the batch's path.
    async fn apply(
        &self,
        conn: &mut sqlx::PgConnection,
        batch: &Batch<'_>,
        path: Path,
        predicted: &mut bool,
    ) -> Result<Vec<SpinOutcome>, BatchAbort> {
        let locked = self.lock(conn, batch).await?;
        let jackpots = self.jackpots_fed(conn).await?;
        let now = locked.state.now;
        let decided = self.decide(batch, locked.state, &jackpots)?;
        let Decided { mut results, repeats, accepted, contributions, transfers, added, moves } = decided;
        let today = now.date_naive();
        let added: Vec<(i64, Day)> = added.into_iter().collect();
        let basis =
            Basis { requests: batch.requests, wallets: batch.wallets, locked_balances: locked.balances, now };
        if matches!(path, Path::Locked(_)) || contributions.is_empty() {
            // The players first, before the jackpots' locks are taken, so
            // none of this lengthens the time those are held; the spins last,
            // their receipts carrying any award the contributions paid.
            spins::advance_players(conn, &moves, &DayColumns::of(today, &added)).await?;
            let views: Vec<Option<ContributionView>> = if contributions.is_empty() {
                // No spin reaches a pool: all refused or replayed, or the
                // slot feeds no jackpot.
                ledger::post(conn, &transfers).await?;
                Vec::new()
            } else {
                // The jackpots are locked: the contributions in one statement.
                let (planned, turn) =
                    self.plan(conn, batch.batch_id, &contributions, path, predicted).await?;
                let done = planned.write(conn, &transfers).await?;
                drop(turn);
                done.outcomes.iter().map(|o| o.as_ref().ok().map(ContributionView::of_receipt)).collect()
            };
            let (new_spins, jackpot_wins) = self.receipts(accepted, &views, &basis, &mut results);
            let closing = self.batch_record(batch, &new_spins, &transfers);
            let spun = SpinColumns::of(new_spins);
            spins::record(conn, &spun, &DayColumns::of(today, &jackpot_wins), closing.as_ref()).await?;
        } else {
            // Planned from the chain, the receipts are known before anything
            // is written: the players, the contributions, the bets and wins
            // and the spins go in one statement; the pools, in their turn,
            // in the last. That one also moves the slot's clearing account,
            // which every spin moves: only the wallets this batch holds
            // already (`own`) move in the first, so the rows every batch
            // shares are locked only from the last statement to the commit.
            let (planned, mut turn) =
                self.plan(conn, batch.batch_id, &contributions, path, predicted).await?;
            let views: Vec<Option<ContributionView>> = planned
                .rows_ahead()
                .ok_or(BatchAbort::NeedsLock)?
                .into_iter()
                .map(|row| Some(ContributionView::of_row(row)))
                .collect();
            let (new_spins, jackpot_wins) = self.receipts(accepted, &views, &basis, &mut results);
            debug_assert!(jackpot_wins.is_empty(), "a batch planned from the chain pays no award");
            let closing = self.batch_record(batch, &new_spins, &transfers);
            let rows = SpinBatchRows {
                moves,
                spins: SpinColumns::of(new_spins),
                days: DayColumns::of(today, &added),
            };
            let own = |account| locked.wallet_ids.binary_search(&account).is_ok();
            let (_, pools) = planned.write_rows(conn, &transfers, own, &rows, closing).await?;
            turn.come().await;
            pools.write(conn).await?;
        }
        Ok(answer(results, repeats))
    }

    /// Locks the batch's players (in id order), then reads their seeds, day
    /// totals, wallets (locked) and stored spins in a statement after the
    /// lock (see `spins::read_locked`); gives a player without a seed one.
    async fn lock(&self, conn: &mut sqlx::PgConnection, batch: &Batch<'_>) -> Result<Locked, sqlx::Error> {
        let requests = batch.requests;
        let mut player_ids: Vec<i64> = requests.iter().map(|r| r.player_id).collect();
        player_ids.sort_unstable();
        player_ids.dedup();
        let (players, now) = spins::lock_players(conn, &player_ids).await?;
        let asked: Vec<(i64, &str, i64)> = requests
            .iter()
            .map(|r| (r.player_id, r.idempotency_key.as_str(), batch.wallets[&r.player_id]))
            .collect();
        let mut state = LockedState {
            now,
            players: players.into_iter().map(|p| (p.id, p)).collect(),
            seeds: HashMap::new(),
            standings: HashMap::new(),
            stored: HashMap::new(),
        };
        let mut balances: HashMap<i64, i64> = HashMap::new();
        for mut read in spins::read_locked(conn, &asked, now.date_naive()).await? {
            let balance = read
                .balance_micros
                .ok_or_else(|| sqlx::Error::Protocol(format!("wallet {} is missing", read.wallet_id)))?;
            balances.insert(read.wallet_id, balance);
            if let Some(seed) = read.seed() {
                state.seeds.insert(read.player_id, seed);
            }
            if let Some(player) = state.players.get(&read.player_id) {
                let standing = Standing { balance_micros: balance, day: read.day(), pace: player.pace() };
                state.standings.insert(read.player_id, standing);
            }
            if let Some(spin) = read.stored() {
                state.stored.insert((read.player_id, read.idempotency_key), spin);
            }
        }
        for id in state.players.keys() {
            if !state.seeds.contains_key(id) {
                let seed = super::player::new_seed(conn, *id, None).await?.seed;
                state.seeds.insert(*id, seed);
            }
        }
        let mut wallet_ids: Vec<i64> = balances.keys().copied().collect();
        wallet_ids.sort_unstable();
        Ok(Locked { state, balances, wallet_ids })
    }

    /// Walks the batch's spins in arrival order: a replay answers its stored
    /// (or first) receipt, the rules of play (`domain::play`) accept or refuse
    /// each of the others, and an accepted spin is drawn from the player's
    /// seed, its bet and win posted and its contributions asked for.
    fn decide(
        &self,
        batch: &Batch<'_>,
        mut state: LockedState,
        jackpots: &[String],
    ) -> Result<Decided, sqlx::Error> {
        let slot = &self.game.slot;
        let requests = batch.requests;
        let now = state.now;
        let mut decided = Decided::new(requests.len());
        let mut dedupe = Dedupe::new();
        let mut flags = Vec::new();
        for (index, request) in requests.iter().enumerate() {
            let key = (request.player_id, request.idempotency_key.as_str());
            let stored = state.stored.get(&(key.0, key.1.to_owned()));
            match dedupe.see(index, key, &request.fingerprint(), stored) {
                Seen::New => {}
                Seen::Stored(receipt) => {
                    let spin =
                        StoredReceipt::read(receipt.clone()).map_err(|e| sqlx::Error::Decode(Box::new(e)))?;
                    decided.results[index] = Some(Ok(spin));
                    continue;
                }
                Seen::Reused => {
                    decided.results[index] = Some(Err(SpinRefusal::IdempotencyKeyReused));
                    continue;
                }
                Seen::Repeat => continue,
            }
            let (Some(player), Some(standing)) =
                (state.players.get(&request.player_id), state.standings.get_mut(&request.player_id))
            else {
                decided.results[index] = Some(Err(SpinRefusal::UnknownPlayer));
                continue;
            };
            if let Err(refusal) = play::check_spin(&self.rules, &player.limits(), standing, request.bet, now)
            {
                decided.results[index] = Some(Err(SpinRefusal::Play(refusal)));
                continue;
            }
            let seed = state.seeds.get_mut(&request.player_id).expect("every locked player has a seed");
            let nonce = seed.next_nonce;
            seed.next_nonce += 1;
            let stops = seeds::stops(&seed.server_seed, &seed.client_seed, nonce as u64, slot.reel_lengths());
            let outcome = slot.outcome(stops);
            let win = slot.win(request.bet, &outcome);
            let (next, flag) = play::after_spin(&self.rules, standing, request.bet, win, now);
            *standing = next;
            if let Some(flag) = flag {
                metrics::counter!("cekpot_player_flags_total", "reason" => "steady_intervals").increment(1);
                flags.push((request.player_id, steady_pace_detail(&flag)));
            }
            decided.added.entry(request.player_id).or_default().add(&Day::of_spin(request.bet, win));
            let spin_id = batch.spin_ids[index];
            decided.post(batch, request, spin_id, win);
            let first = decided.contributions.len();
            let actor = Actor::new(format!("player:{}", request.player_id), request.request_id.clone());
            for jackpot_id in jackpots {
                decided.contributions.push(ContributionRequest {
                    actor: actor.clone(),
                    origin: Origin::House,
                    jackpot_id: jackpot_id.clone(),
                    game_id: slot.game_id.clone(),
                    player_id: request.player_id.to_string(),
                    bet: request.bet,
                    currency: self.game.currency,
                    idempotency_key: format!("spin:{spin_id}"),
                });
            }
            decided.accepted.push(Accepted {
                index,
                spin_id,
                seed: seed.clone(),
                nonce,
                outcome,
                win,
                contributions: first..decided.contributions.len(),
            });
        }
        let nonces: Vec<(i64, i64)> = state.seeds.values().map(|s| (s.id, s.next_nonce)).collect();
        let updates: Vec<PlayerUpdate> = decided
            .added
            .keys()
            .map(|id| {
                let pace = state.standings[id].pace;
                PlayerUpdate {
                    id: *id,
                    last_spin_at: pace.last_spin_at.unwrap_or(now),
                    last_spin_interval_ms: pace.last_interval_ms,
                    steady_spins: pace.steady_spins,
                }
            })
            .collect();
        decided.moves = PlayerMoves::of(&updates, &nonces, flags);
        decided.repeats = dedupe.into_repeats();
        Ok(decided)
    }

    /// The batch's audit record (`spin_batch`, docs/AUDIT.md): every accepted
    /// spin with its player, request id and wallet balance after it, and the
    /// bets and wins it posted (`transfers`, as the ledger has them); none
    /// for a batch that accepted no spin and so moved no money.
    fn batch_record(&self, batch: &Batch<'_>, spun: &[NewSpin], transfers: &[Transfer]) -> Option<Entry> {
        if spun.is_empty() {
            return None;
        }
        let request_ids: HashMap<i64, Option<&str>> = batch
            .spin_ids
            .iter()
            .zip(batch.requests)
            .map(|(id, request)| (*id, request.request_id.as_deref()))
            .collect();
        let column = |f: fn(&NewSpin) -> i64| spun.iter().map(f).collect::<Vec<i64>>();
        Some(Entry::of(
            Actor::system("spins"),
            Action::SpinBatch,
            serde_json::json!({
                "batchId": batch.batch_id,
                "gameId": self.game.slot.game_id,
                "currency": self.game.currency.as_str(),
                "clearingAccountId": batch.clearing,
                "spins": {
                    "ids": column(|s| s.id),
                    "playerIds": column(|s| s.player_id),
                    "requestIds": spun.iter().map(|s| request_ids.get(&s.id).copied().flatten()).collect::<Vec<_>>(),
                    "betMicros": column(|s| s.bet_micros),
                    "winMicros": column(|s| s.win_micros),
                    "jackpotWinMicros": column(|s| s.jackpot_win_micros),
                    "balanceAfterMicros": column(|s| s.balance_after_micros),
                },
                "transfers": ledger::audit_list(transfers),
            }),
        ))
    }

    /// The receipts of the accepted spins, in arrival order, into `results`,
    /// and the spins to insert and the jackpot wins to add to the players'
    /// day totals. `contributed` holds what each contribution request made,
    /// by its position in the batch's (none if refused). Each wallet's
    /// balance after each spin is its locked balance moved by the spins
    /// before and this one: bets, wins and the jackpots they won.
    fn receipts(
        &self,
        accepted: Vec<Accepted>,
        contributed: &[Option<ContributionView>],
        basis: &Basis,
        results: &mut [Option<SpinOutcome>],
    ) -> (Vec<NewSpin>, Vec<(i64, Day)>) {
        let slot = &self.game.slot;
        let currency = self.game.currency;
        let mut running = basis.locked_balances.clone();
        let mut new_spins = Vec::with_capacity(accepted.len());
        let mut jackpot_wins: HashMap<i64, Day> = HashMap::new();
        for spin in accepted {
            let request = &basis.requests[spin.index];
            let mut receipt_contributions = Vec::new();
            let mut awards = Vec::new();
            for view in contributed[spin.contributions.clone()].iter().flatten() {
                receipt_contributions.push(view.contribution.clone());
                awards.extend(view.award.clone());
            }
            let jackpot_win: i64 = awards.iter().map(|a| a.amount.micros()).sum();
            let net = spin.win.micros() + jackpot_win - request.bet.micros();
            let balance = running.entry(basis.wallets[&request.player_id]).or_default();
            *balance += net;
            let after = *balance;
            if jackpot_win > 0 {
                let day = Day::of_jackpot_win(Amount::from_micros(jackpot_win));
                jackpot_wins.entry(request.player_id).or_default().add(&day);
            }
            let receipt = PlayedSpin {
                spin_id: spin.spin_id,
                bet_amount: request.bet,
                win: spin.win,
                jackpot_win: Amount::from_micros(jackpot_win),
                reels: spin
                    .outcome
                    .window
                    .iter()
                    .map(|reel| reel.iter().map(|&s| slot.symbols[s as usize].id.clone()).collect())
                    .collect(),
                line_wins: spin
                    .outcome
                    .line_wins
                    .iter()
                    .map(|w| PaidLine {
                        line: w.line,
                        symbol: slot.symbols[w.symbol as usize].id.clone(),
                        count: w.count,
                        amount: Amount::from_micros(
                            request.bet.micros() / slot.lines() as i64 * i64::from(w.multiplier),
                        ),
                    })
                    .collect(),
                balance: Amount::from_micros(after),
                currency,
                contributions: receipt_contributions,
                jackpot_awards: awards,
                fairness: SpinSeed {
                    seed_id: spin.seed.id,
                    server_seed_hash: spin.seed.server_seed_hash.clone(),
                    client_seed: spin.seed.client_seed.clone(),
                    nonce: spin.nonce,
                    stops: spin.outcome.stops.to_vec(),
                },
                at: basis.now,
            };
            new_spins.push(NewSpin {
                id: spin.spin_id,
                player_id: request.player_id,
                idempotency_key: request.idempotency_key.clone(),
                request_hash: request.fingerprint(),
                game_id: slot.game_id.clone(),
                currency: currency.as_str().to_owned(),
                bet_micros: request.bet.micros(),
                win_micros: spin.win.micros(),
                jackpot_win_micros: jackpot_win,
                seed_id: spin.seed.id,
                nonce: spin.nonce,
                stops: spin.outcome.stops.iter().map(|&s| s as i32).collect(),
                balance_after_micros: after,
                receipt: StoredReceipt::store(&receipt),
            });
            results[spin.index] = Some(Ok(receipt));
        }
        (new_spins, jackpot_wins.into_iter().collect())
    }
}

/// A flag's detail, as `player_flags` keeps it.
fn steady_pace_detail(flag: &SteadyPace) -> serde_json::Value {
    serde_json::json!({
        "intervalMs": flag.interval_ms,
        "steadySpins": flag.steady_spins,
        "toleranceMs": flag.tolerance_ms,
    })
}
