//! Opening cycles (seed funding, drop point, commitment) and paying one out.
//! Transfers are collected in a [`Books`] and posted once per transaction.

use domain::fairness::{commit, draw_drop_point, Salt};
use domain::jackpot::{fund_seed, Rules, TriggerMode};
use domain::money::Amount;
use sqlx::PgConnection;

use super::AwardReceipt;
use crate::audit::{Action, Actor, Entry};
use crate::db::awards::{self, NewAward};
use crate::db::jackpots::{self, CycleMeters, CycleUpdate, Jackpot, NewCycle, OpenCycle};
use crate::db::ledger::{self, AccountKind, Accounts, Transfer, TransferKind};

/// One jackpot's accounts, and the transfers and audit records a transaction
/// has decided on but not written yet. The reserve's balance is read only
/// when a seed needs it, and then includes the reserve shares this
/// transaction collected before.
pub(super) struct Books {
    pub accounts: Accounts,
    pub pool: i64,
    pub reserve: i64,
    reserve_stored: Option<Amount>,
    reserve_delta_micros: i64,
    pub transfers: Vec<Transfer>,
    /// Appended as the transaction's last statement (see [`crate::audit`]).
    pub audit: Vec<Entry>,
}

impl Books {
    pub async fn open(
        conn: &mut PgConnection,
        accounts: &Accounts,
        jackpot: &Jackpot,
    ) -> Result<Books, sqlx::Error> {
        let pool = accounts.id_in(conn, AccountKind::JackpotPool, &jackpot.id, jackpot.currency).await?;
        let reserve =
            accounts.id_in(conn, AccountKind::JackpotReserve, &jackpot.id, jackpot.currency).await?;
        Ok(Books {
            accounts: accounts.clone(),
            pool,
            reserve,
            reserve_stored: None,
            reserve_delta_micros: 0,
            transfers: Vec::new(),
            audit: Vec::new(),
        })
    }

    pub fn transfer(&mut self, debit: i64, credit: i64, amount: Amount, kind: TransferKind, reference: &str) {
        if debit == self.reserve {
            self.reserve_delta_micros -= amount.micros();
        }
        if credit == self.reserve {
            self.reserve_delta_micros += amount.micros();
        }
        self.transfers.push(Transfer { debit, credit, amount, kind, reference: reference.to_owned() });
    }

    async fn reserve_balance(&mut self, conn: &mut PgConnection) -> Result<Amount, sqlx::Error> {
        let stored = match self.reserve_stored {
            Some(stored) => stored,
            None => *self.reserve_stored.insert(ledger::balance(conn, self.reserve).await?),
        };
        Ok(Amount::from_micros(stored.micros() + self.reserve_delta_micros))
    }
}

/// Opens cycle 1 of a new jackpot, creating its pool and reserve accounts.
/// Answers the cycle and the jackpot's audit record, for the caller to append
/// last.
pub async fn open_first_cycle(
    conn: &mut PgConnection,
    accounts: &Accounts,
    jackpot: &Jackpot,
    actor: &Actor,
) -> Result<(OpenCycle, Entry), sqlx::Error> {
    let mut books = Books::open(conn, accounts, jackpot).await?;
    let cycle = open_cycle(conn, jackpot, 1, &mut books).await?;
    ledger::post(conn, &books.transfers).await?;
    let entry = Entry {
        actor: actor.clone(),
        action: Action::JackpotCreated,
        jackpot_id: Some(jackpot.id.clone()),
        before_micros: None,
        after_micros: Some(cycle.value_micros),
        detail: serde_json::json!({
            "name": jackpot.name,
            "tier": jackpot.tier,
            "currency": jackpot.currency.as_str(),
            "configuration": super::configure::configuration(jackpot),
        }),
    };
    Ok((cycle, entry))
}

/// Opens `cycle_number` at the seed: funded from the reserve first and the
/// house for any shortfall, both recorded; must-drop cycles get a fresh secret
/// drop point and publish only its commitment.
pub(super) async fn open_cycle(
    conn: &mut PgConnection,
    jackpot: &Jackpot,
    cycle_number: i64,
    books: &mut Books,
) -> Result<OpenCycle, sqlx::Error> {
    let house = books.accounts.id_in(conn, AccountKind::House, "", jackpot.currency).await?;
    // The jackpot's configuration as it is now becomes the new cycle's rules.
    let rules = jackpot.rules;
    let seed = rules.seed();
    let funding = fund_seed(seed, books.reserve_balance(conn).await?);
    let reference = format!("cycle:{}:{cycle_number}", jackpot.id);
    let (pool, reserve) = (books.pool, books.reserve);
    books.transfer(reserve, pool, funding.from_reserve, TransferKind::SeedFromReserve, &reference);
    books.transfer(house, pool, funding.from_house, TransferKind::SeedFromHouse, &reference);
    let fairness = draw_fairness(&rules);
    jackpots::insert_cycle(
        conn,
        &NewCycle {
            jackpot_id: &jackpot.id,
            cycle_number,
            rules: &rules,
            seed_from_reserve: funding.from_reserve,
            seed_from_house: funding.from_house,
            fairness: fairness.clone(),
        },
    )
    .await?;
    Ok(OpenCycle {
        jackpot_id: jackpot.id.clone(),
        cycle_number,
        value_micros: seed.micros(),
        drop_point_micros: fairness.map(|(point, _, _)| point.micros()),
        rules,
        config_version: 0,
    })
}

/// (drop point, salt hex, commitment hex) for must-drop rules, from the OS CSPRNG.
fn draw_fairness(rules: &Rules) -> Option<(Amount, String, String)> {
    if rules.trigger_mode() != TriggerMode::MustDrop {
        return None;
    }
    let mut salt = [0u8; 32];
    getrandom::fill(&mut salt).expect("the operating system's random source is available");
    let salt = Salt::from_bytes(salt);
    let point = draw_drop_point(rules.seed(), rules.max_value(), || {
        let mut bytes = [0u8; 8];
        getrandom::fill(&mut bytes).expect("the operating system's random source is available");
        u64::from_le_bytes(bytes)
    });
    let commitment = commit(point, &salt);
    Some((point, salt.to_hex(), commitment.to_hex()))
}

/// The winner of a cycle and what led to it.
pub(super) struct Winner<'a> {
    pub actor: &'a Actor,
    /// The namespace of `player_id`, and so of the wallet paid.
    pub origin: &'a super::Origin,
    pub player_id: &'a str,
    pub session_id: Option<&'a str>,
    pub contribution_id: Option<i64>,
}

/// Pays `cycle` out: locks in its value as the awarded amount, records the
/// award (at most one per cycle: a unique constraint), moves the pool to the
/// winner's wallet, closes the cycle and opens the next. The caller holds the
/// jackpot's lock and has already written `meters` worth of contributions.
pub(super) async fn award_cycle(
    conn: &mut PgConnection,
    jackpot: &Jackpot,
    cycle: &OpenCycle,
    winner: Winner<'_>,
    meters: &CycleMeters,
    books: &mut Books,
) -> Result<(AwardReceipt, OpenCycle), sqlx::Error> {
    let awarded_amount = Amount::from_micros(cycle.value_micros);
    let (kind, owner) = winner.origin.wallet(winner.player_id);
    let wallet = books.accounts.id_in(conn, kind, &owner, jackpot.currency).await?;
    let award_id = awards::insert(
        conn,
        &NewAward {
            jackpot_id: &jackpot.id,
            cycle_number: cycle.cycle_number,
            origin: winner.origin.as_str(),
            player_id: winner.player_id,
            winner_account_id: wallet,
            session_id: winner.session_id,
            awarded_amount,
            trigger_mode: cycle.rules.trigger_mode().as_str(),
            contribution_id: winner.contribution_id,
        },
    )
    .await?;
    let update = CycleUpdate {
        jackpot_id: jackpot.id.clone(),
        cycle_number: cycle.cycle_number,
        value: awarded_amount,
        meters: *meters,
        expected_value: None,
        expected_config_version: None,
    };
    jackpots::update_cycles(conn, &[update]).await?;
    jackpots::close_cycle(conn, &jackpot.id, cycle.cycle_number).await?;
    let pool = books.pool;
    books.transfer(pool, wallet, awarded_amount, TransferKind::Award, &format!("award:{award_id}"));
    let paid = ledger::audit_list(std::slice::from_ref(books.transfers.last().expect("just pushed")));
    let next = open_cycle(conn, jackpot, cycle.cycle_number + 1, books).await?;
    let receipt = AwardReceipt::try_from(awards::get(conn, award_id).await?)?;
    books.audit.push(Entry {
        actor: winner.actor.clone(),
        action: Action::Award,
        jackpot_id: Some(jackpot.id.clone()),
        before_micros: Some(awarded_amount.micros()),
        after_micros: Some(next.value_micros),
        detail: serde_json::json!({
            "awardId": award_id,
            "cycle": cycle.cycle_number,
            "origin": winner.origin.as_str(),
            "playerId": winner.player_id,
            "walletAccountId": wallet,
            "sessionId": winner.session_id,
            "contributionId": winner.contribution_id,
            "triggerMode": cycle.rules.trigger_mode(),
            "awardedMicros": awarded_amount.micros(),
            "dropPointMicros": receipt.drop_point.map(Amount::micros),
            "salt": receipt.salt,
            "nextCycle": next.cycle_number,
            "transfers": paid,
        }),
    });
    Ok((receipt, next))
}
