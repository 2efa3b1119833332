//! Opening cycles (seed funding, drop point, commitment) and paying one out.
//! Transfers are collected in a [`Books`] and posted once per transaction.

use domain::fairness::{commit, draw_drop_point, Salt};
use domain::jackpot::{fund_seed, Rules, TriggerMode};
use domain::money::Amount;
use sqlx::PgConnection;

use super::AwardReceipt;
use crate::db::awards::{self, NewAward};
use crate::db::jackpots::{self, CycleMeters, Jackpot, NewCycle, OpenCycle};
use crate::db::ledger::{self, AccountKind, Transfer, TransferKind};

/// One jackpot's accounts and the transfers a transaction has decided on but
/// not posted yet. The reserve's balance is tracked here so seeds funded later
/// in the same transaction see the reserve shares collected before them.
pub(super) struct Books {
    pub pool: i64,
    pub reserve: i64,
    pub reserve_balance: Amount,
    pub transfers: Vec<Transfer>,
}

impl Books {
    pub async fn open(conn: &mut PgConnection, jackpot: &Jackpot) -> Result<Books, sqlx::Error> {
        let pool = ledger::account(conn, AccountKind::JackpotPool, &jackpot.id, jackpot.currency).await?;
        let reserve =
            ledger::account(conn, AccountKind::JackpotReserve, &jackpot.id, jackpot.currency).await?;
        let reserve_balance = ledger::balance(conn, reserve).await?;
        Ok(Books { pool, reserve, reserve_balance, transfers: Vec::new() })
    }

    pub fn transfer(&mut self, debit: i64, credit: i64, amount: Amount, kind: TransferKind, reference: &str) {
        if debit == self.reserve {
            self.reserve_balance = Amount::from_micros(self.reserve_balance.micros() - amount.micros());
        }
        if credit == self.reserve {
            self.reserve_balance = Amount::from_micros(self.reserve_balance.micros() + amount.micros());
        }
        self.transfers.push(Transfer { debit, credit, amount, kind, reference: reference.to_owned() });
    }
}

/// Opens cycle 1 of a new jackpot, creating its pool and reserve accounts.
pub async fn open_first_cycle(conn: &mut PgConnection, jackpot: &Jackpot) -> Result<OpenCycle, sqlx::Error> {
    let mut books = Books::open(conn, jackpot).await?;
    let cycle = open_cycle(conn, jackpot, 1, &mut books).await?;
    ledger::post(conn, &books.transfers).await?;
    Ok(cycle)
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
    let house = ledger::account(conn, AccountKind::House, "", jackpot.currency).await?;
    let seed = jackpot.rules.seed();
    let funding = fund_seed(seed, books.reserve_balance);
    let reference = format!("cycle:{}:{cycle_number}", jackpot.id);
    let (pool, reserve) = (books.pool, books.reserve);
    books.transfer(reserve, pool, funding.from_reserve, TransferKind::SeedFromReserve, &reference);
    books.transfer(house, pool, funding.from_house, TransferKind::SeedFromHouse, &reference);
    let fairness = draw_fairness(&jackpot.rules);
    jackpots::insert_cycle(
        conn,
        &NewCycle {
            jackpot_id: &jackpot.id,
            cycle_number,
            seed,
            seed_from_reserve: funding.from_reserve,
            seed_from_house: funding.from_house,
            fairness: fairness.clone(),
        },
    )
    .await?;
    Ok(OpenCycle {
        jackpot_id: jackpot.id.clone(),
        cycle_number,
        seed_micros: seed.micros(),
        value_micros: seed.micros(),
        drop_point_micros: fairness.map(|(point, _, _)| point.micros()),
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
    let award_id = awards::insert(
        conn,
        &NewAward {
            jackpot_id: &jackpot.id,
            cycle_number: cycle.cycle_number,
            player_id: winner.player_id,
            session_id: winner.session_id,
            awarded_amount,
            trigger_mode: jackpot.rules.trigger_mode().as_str(),
            contribution_id: winner.contribution_id,
        },
    )
    .await?;
    jackpots::update_cycle(conn, &jackpot.id, cycle.cycle_number, awarded_amount, meters, true).await?;
    let wallet = ledger::account(conn, AccountKind::PlayerWallet, winner.player_id, jackpot.currency).await?;
    let pool = books.pool;
    books.transfer(pool, wallet, awarded_amount, TransferKind::Award, &format!("award:{award_id}"));
    let next = open_cycle(conn, jackpot, cycle.cycle_number + 1, books).await?;
    let receipt = AwardReceipt::try_from(awards::get(conn, award_id).await?)?;
    Ok((receipt, next))
}
