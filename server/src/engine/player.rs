//! A Mini App player's own transactions besides spins: the welcome of a new
//! player (their first seed and any demo credit), deposits, provably-fair
//! seeds and their rotation, and responsible-gaming limits. The rules they
//! follow are `domain::play`'s; this module holds the transaction around them
//! and the audit record each one appends.

use chrono::{DateTime, Utc};
use domain::money::{Amount, Currency};
use domain::play::{self, DepositRefused, LimitChange, LimitSchedule, Limits};
use domain::seeds;
use serde_json::{json, Value};
use sqlx::{PgConnection, PgPool};

use crate::audit::{self, Action, Actor, Entry};
use crate::db::ledger::{self, AccountKind, Accounts, Transfer, TransferKind};
use crate::db::players::{self, Player};
use crate::db::spins::{self, DayColumns, PlayerState, Seed};

/// Creates the player's first provably-fair seed and, when `demo_credit` is
/// positive, credits their new wallet from the house (a `demo_credit`
/// transfer referenced `player:<id>`). Called once, when the player is
/// created, in the transaction that created them.
pub async fn welcome(
    conn: &mut PgConnection,
    accounts: &Accounts,
    player: &Player,
    currency: Currency,
    demo_credit: Amount,
    actor: &Actor,
) -> Result<(), sqlx::Error> {
    new_seed(conn, player.id, None).await?;
    if demo_credit.micros() > 0 {
        let house = accounts.id_in(conn, AccountKind::House, "", currency).await?;
        let wallet =
            accounts.id_in(conn, AccountKind::PlayerWallet, &player.id.to_string(), currency).await?;
        let credit = Transfer {
            debit: house,
            credit: wallet,
            amount: demo_credit,
            kind: TransferKind::DemoCredit,
            reference: format!("player:{}", player.id),
        };
        ledger::post(conn, std::slice::from_ref(&credit)).await?;
        let record = Entry {
            actor: actor.clone(),
            action: Action::DemoCredit,
            jackpot_id: None,
            before_micros: Some(0),
            after_micros: Some(demo_credit.micros()),
            detail: serde_json::json!({
                "playerId": player.id,
                "walletAccountId": wallet,
                "currency": currency.as_str(),
                "transfers": ledger::audit_list(&[credit]),
            }),
        };
        audit::append(conn, &[record]).await?;
    }
    Ok(())
}

/// A fresh server seed from the operating system's CSPRNG.
fn draw_server_seed() -> String {
    let mut bytes = [0u8; 32];
    getrandom::fill(&mut bytes).expect("the operating system's random source is available");
    seeds::server_seed_from_bytes(bytes)
}

/// The hash of the player's next server seed, committed before they pick the
/// client seed it will be paired with: drawn now if none is. The caller holds
/// the player's lock.
async fn next_seed_hash(conn: &mut PgConnection, player_id: i64) -> Result<String, sqlx::Error> {
    match spins::next_seed_hash(conn, player_id).await? {
        Some(hash) => Ok(hash),
        None => spins::commit_next_seed(conn, player_id, &draw_server_seed()).await,
    }
}

/// A seed started by [`new_seed`], and the commitment to the one after it.
#[derive(Debug, Clone)]
pub(super) struct NewSeed {
    pub seed: Seed,
    pub next_server_seed_hash: String,
}

/// Starts a player's next seed: the server seed committed before (its hash
/// shown as `nextServerSeedHash` before the client seed was known; drawn now
/// only for a player who never had one shown) with the client seed given, or
/// a random one; then commits the one after it. The caller holds the
/// player's lock and has revealed the seed before, if any.
pub(super) async fn new_seed(
    conn: &mut PgConnection,
    player_id: i64,
    client_seed: Option<&str>,
) -> Result<NewSeed, sqlx::Error> {
    let server_seed = match spins::take_next_seed(conn, player_id).await? {
        Some(committed) => committed,
        None => draw_server_seed(),
    };
    let client_seed = match client_seed {
        Some(seed) => seed.to_owned(),
        None => {
            let mut bytes = [0u8; 8];
            getrandom::fill(&mut bytes).expect("the operating system's random source is available");
            hex::encode(bytes)
        }
    };
    let seed = spins::insert_seed(conn, player_id, &server_seed, &client_seed).await?;
    let next_server_seed_hash = spins::commit_next_seed(conn, player_id, &draw_server_seed()).await?;
    Ok(NewSeed { seed, next_server_seed_hash })
}

/// A deposit asked for.
#[derive(Debug, Clone)]
pub struct DepositRequest {
    pub player_id: i64,
    /// The player, and the request's id.
    pub actor: Actor,
    pub amount: Amount,
    pub idempotency_key: String,
    /// The largest single deposit.
    pub max: Amount,
}

/// A deposit made (or made before, under the same key).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Deposited {
    pub transfer_id: i64,
    pub amount: Amount,
    pub currency: Currency,
    pub balance: Amount,
    pub deposited_today: Amount,
}

/// Why a deposit was refused. Nothing of it was written.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DepositRefusal {
    #[error("no such player")]
    UnknownPlayer,
    #[error("this key was used for another deposit")]
    IdempotencyKeyReused,
    #[error(transparent)]
    Refused(#[from] DepositRefused),
}

/// A deposit: `deposits_clearing` → wallet, within the player's daily deposit
/// limit, refused while self-excluded. Idempotent per player and key: a retry
/// answers the first deposit.
pub async fn deposit(
    db: &PgPool,
    accounts: &Accounts,
    currency: Currency,
    request: &DepositRequest,
) -> Result<Result<Deposited, DepositRefusal>, sqlx::Error> {
    let player = request.player_id;
    if let Err(refused) = play::check_deposit_amount(request.amount, request.max) {
        return Ok(Err(refused.into()));
    }
    // The accounts, created (once) before the transaction holds a connection.
    let wallet = accounts.id(AccountKind::PlayerWallet, &player.to_string(), currency).await?;
    let clearing = accounts.id(AccountKind::DepositsClearing, "", currency).await?;
    let mut tx = db.begin().await?;
    let now = spins::now(&mut tx).await?;
    let Some(state) = players::settle_limits(&mut tx, player, now).await? else {
        return Ok(Err(DepositRefusal::UnknownPlayer));
    };
    let reference = format!("deposit:{player}:{}", request.idempotency_key);
    let day = today(&mut tx, player, now).await?;
    let done = |transfer_id: i64, balance: Amount, deposited_micros: i64| Deposited {
        transfer_id,
        amount: request.amount,
        currency,
        balance,
        deposited_today: Amount::from_micros(deposited_micros),
    };
    if let Some((id, amount)) = players::transfer_by_reference(&mut tx, &reference).await? {
        if amount != request.amount {
            return Ok(Err(DepositRefusal::IdempotencyKeyReused));
        }
        let balance = ledger::balance(&mut tx, wallet).await?;
        return Ok(Ok(done(id, balance, day.deposits_micros)));
    }
    if let Err(refused) = play::check_deposit(&state.limits(), &day, request.amount, request.max, now) {
        return Ok(Err(refused.into()));
    }
    let transfer = Transfer {
        debit: clearing,
        credit: wallet,
        amount: request.amount,
        kind: TransferKind::Deposit,
        reference: reference.clone(),
    };
    ledger::post(&mut tx, std::slice::from_ref(&transfer)).await?;
    let added = play::Day::of_deposit(request.amount);
    spins::add_to_days(&mut tx, &DayColumns::of(now.date_naive(), &[(player, added)])).await?;
    let (id, _) =
        players::transfer_by_reference(&mut tx, &reference).await?.ok_or(sqlx::Error::RowNotFound)?;
    let balance = ledger::balance(&mut tx, wallet).await?;
    let record = Entry {
        actor: request.actor.clone(),
        action: Action::Deposit,
        jackpot_id: None,
        before_micros: Some(balance.micros() - request.amount.micros()),
        after_micros: Some(balance.micros()),
        detail: serde_json::json!({
            "playerId": player,
            "transferId": id,
            "walletAccountId": wallet,
            "currency": currency.as_str(),
            "idempotencyKey": request.idempotency_key,
            "transfers": ledger::audit_list(&[transfer]),
        }),
    };
    audit::append(&mut tx, &[record]).await?;
    tx.commit().await?;
    Ok(Ok(done(id, balance, day.deposits_micros + request.amount.micros())))
}

/// A player's seed in use, the commitment to the next one, and — after a
/// rotation — the seed it revealed.
#[derive(Debug, Clone)]
pub struct Fairness {
    pub seed: Seed,
    pub next_server_seed_hash: String,
    pub revealed: Option<Seed>,
}

/// The player's seed in use (started now for a player who has none) and the
/// commitment to the next; `None`: no such player.
pub async fn fairness(db: &PgPool, player: i64) -> Result<Option<Fairness>, sqlx::Error> {
    let mut tx = db.begin().await?;
    if spins::lock_player(&mut tx, player).await?.is_none() {
        return Ok(None);
    }
    let seed = match spins::active_seeds(&mut tx, &[player]).await?.pop() {
        Some(seed) => seed,
        None => new_seed(&mut tx, player, None).await?.seed,
    };
    let next_server_seed_hash = next_seed_hash(&mut tx, player).await?;
    tx.commit().await?;
    Ok(Some(Fairness { seed, next_server_seed_hash, revealed: None }))
}

/// Reveals the player's seed in use and starts the one committed before (see
/// [`new_seed`]) with `client_seed`, or a random one; audited. Serialised
/// with the player's spins by their row lock, so no spin straddles the
/// change. `None`: no such player. The client seed is checked by the caller
/// (`domain::seeds::check_client_seed`).
pub async fn rotate_seed(
    db: &PgPool,
    player: i64,
    client_seed: Option<&str>,
    actor: &Actor,
) -> Result<Option<Fairness>, sqlx::Error> {
    let mut tx = db.begin().await?;
    if spins::lock_player(&mut tx, player).await?.is_none() {
        return Ok(None);
    }
    let revealed = spins::reveal_seed(&mut tx, player).await?;
    let NewSeed { seed, next_server_seed_hash } = new_seed(&mut tx, player, client_seed).await?;
    let detail = json!({
        "playerId": player,
        "started": { "seedId": seed.id, "serverSeedHash": seed.server_seed_hash, "clientSeed": seed.client_seed },
        "revealed": revealed.as_ref().map(|old| json!({
            "seedId": old.id,
            "serverSeed": old.server_seed,
            "serverSeedHash": old.server_seed_hash,
            "clientSeed": old.client_seed,
            "spins": old.next_nonce,
        })),
        "nextServerSeedHash": next_server_seed_hash,
    });
    audit::append(&mut tx, &[Entry::of(actor.clone(), Action::SeedRotated, detail)]).await?;
    tx.commit().await?;
    Ok(Some(Fairness { seed, next_server_seed_hash, revealed }))
}

/// A player's limits as they stand at `now`, and the day's totals they
/// are checked against.
#[derive(Debug, Clone)]
pub struct LimitsNow {
    pub schedule: LimitSchedule,
    pub day: play::Day,
    pub now: DateTime<Utc>,
}

impl LimitsNow {
    async fn read(
        conn: &mut PgConnection,
        state: PlayerState,
        now: DateTime<Utc>,
    ) -> Result<Self, sqlx::Error> {
        let day = today(conn, state.id, now).await?;
        Ok(LimitsNow { schedule: state.limits(), day, now })
    }

    /// As the audit trail keeps it: micro-units, `null` for no limit.
    fn audit(&self) -> Value {
        let limits = |l: &Limits| json!({ "dailyLossMicros": l.daily_loss_micros, "dailyDepositMicros": l.daily_deposit_micros });
        json!({
            "current": limits(&self.schedule.current),
            "pending": self.schedule.pending.as_ref().map(|p| json!({ "limits": limits(&p.limits), "from": p.from })),
            "selfExcludedUntil": self.schedule.excluded_until(self.now),
            "lostTodayMicros": self.day.lost_micros(),
            "depositedTodayMicros": self.day.deposits_micros,
        })
    }
}

/// The player's limits now, pending changes that came due applied; `None`:
/// no such player.
pub async fn limits(db: &PgPool, player: i64) -> Result<Option<LimitsNow>, sqlx::Error> {
    let mut tx = db.begin().await?;
    let now = spins::now(&mut tx).await?;
    let Some(settled) = players::settle_limits(&mut tx, player, now).await? else {
        return Ok(None);
    };
    let limits = LimitsNow::read(&mut tx, settled, now).await?;
    tx.commit().await?;
    Ok(Some(limits))
}

/// Applies a checked change of limits ([`LimitSchedule::changed`]: lower
/// limits and exclusions at once, higher or removed ones after
/// `cooling_off`); audited with the limits before and after. `None`: no
/// such player.
pub async fn change_limits(
    db: &PgPool,
    player: i64,
    change: &LimitChange,
    cooling_off: chrono::Duration,
    actor: &Actor,
) -> Result<Option<LimitsNow>, sqlx::Error> {
    let mut tx = db.begin().await?;
    let now = spins::now(&mut tx).await?;
    let Some(settled) = players::settle_limits(&mut tx, player, now).await? else {
        return Ok(None);
    };
    let before = LimitsNow::read(&mut tx, settled.clone(), now).await?;
    let schedule = settled.limits().changed(change, now, cooling_off);
    let stored = players::store_limits(&mut tx, player, &schedule).await?;
    // A change of limits moves no money: the day's totals are the ones just read.
    let after = LimitsNow { schedule: stored.limits(), ..before.clone() };
    let asked = |l: Option<Option<Amount>>| l.map(|l| l.map(Amount::micros));
    let detail = json!({
        "playerId": player,
        "asked": {
            "dailyLossMicros": asked(change.daily_loss),
            "dailyDepositMicros": asked(change.daily_deposit),
            "selfExcludeDays": change.self_exclude_days,
        },
        "before": before.audit(),
        "after": after.audit(),
    });
    audit::append(&mut tx, &[Entry::of(actor.clone(), Action::LimitsChanged, detail)]).await?;
    tx.commit().await?;
    Ok(Some(after))
}

/// The player's totals of the UTC day `now` falls on.
pub async fn today(
    conn: &mut PgConnection,
    player: i64,
    now: DateTime<Utc>,
) -> Result<play::Day, sqlx::Error> {
    Ok(spins::days(conn, &[player], now.date_naive()).await?.pop().map(|(_, d)| d).unwrap_or_default())
}
