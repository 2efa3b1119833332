//! The double-entry ledger: accounts with balances, and transfers between them.
//! A transfer debits one account and credits another by the same positive
//! amount; balances are credits minus debits, so all balances sum to zero.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use domain::money::{Amount, Currency};
use sqlx::{PgConnection, PgPool};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum AccountKind {
    PlayerWallet,
    JackpotPool,
    JackpotReserve,
    House,
    DepositsClearing,
    /// What a game (an outside provider's or ours) owes the jackpots it feeds.
    GameClearing,
}

impl AccountKind {
    pub const fn as_str(self) -> &'static str {
        match self {
            AccountKind::PlayerWallet => "player_wallet",
            AccountKind::JackpotPool => "jackpot_pool",
            AccountKind::JackpotReserve => "jackpot_reserve",
            AccountKind::House => "house",
            AccountKind::DepositsClearing => "deposits_clearing",
            AccountKind::GameClearing => "game_clearing",
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TransferKind {
    ContributionPool,
    ContributionReserve,
    Award,
    SeedFromReserve,
    SeedFromHouse,
}

impl TransferKind {
    pub const fn as_str(self) -> &'static str {
        match self {
            TransferKind::ContributionPool => "contribution_pool",
            TransferKind::ContributionReserve => "contribution_reserve",
            TransferKind::Award => "award",
            TransferKind::SeedFromReserve => "seed_from_reserve",
            TransferKind::SeedFromHouse => "seed_from_house",
        }
    }
}

/// One movement, by account id.
#[derive(Debug, Clone)]
pub struct Transfer {
    pub debit: i64,
    pub credit: i64,
    pub amount: Amount,
    pub kind: TransferKind,
    pub reference: String,
}

/// Account ids by (kind, owner, currency), for one database. An account's id
/// never changes and every batch needs the same few, so they are remembered.
///
/// Missing accounts are created in their own short transaction, outside the
/// caller's: every remembered id is then committed, so no transaction can pick
/// up an id that another transaction created and later rolled back. An account
/// created for a batch that then fails simply stays at balance zero.
#[derive(Clone)]
pub struct Accounts {
    db: PgPool,
    known: Arc<Mutex<HashMap<AccountKey, i64>>>,
}

/// (kind, owner, currency): what names an account.
type AccountKey = (AccountKind, String, Currency);

impl Accounts {
    pub fn new(db: PgPool) -> Accounts {
        Accounts { db, known: Arc::default() }
    }

    /// The account's id, creating the account if needed. For use outside a
    /// transaction: it takes one connection of its own, briefly.
    pub async fn id(&self, kind: AccountKind, owner: &str, currency: Currency) -> Result<i64, sqlx::Error> {
        if let Some(id) = self.remembered(kind, owner, currency) {
            return Ok(id);
        }
        let id = account(&mut *self.db.acquire().await?, kind, owner, currency).await?;
        self.remember(kind, owner, currency, id);
        Ok(id)
    }

    /// The account's id, read through `conn` (a transaction's connection).
    /// Only a missing account needs another connection, to create it; callers
    /// create the accounts they can foresee beforehand with [`Accounts::id`],
    /// so a transaction rarely holds one connection while waiting for another.
    pub async fn id_in(
        &self,
        conn: &mut PgConnection,
        kind: AccountKind,
        owner: &str,
        currency: Currency,
    ) -> Result<i64, sqlx::Error> {
        if let Some(id) = self.remembered(kind, owner, currency) {
            return Ok(id);
        }
        let existing: Option<i64> = sqlx::query_scalar(
            "select id from ledger_accounts where kind = $1 and owner = $2 and currency = $3",
        )
        .bind(kind.as_str())
        .bind(owner)
        .bind(currency.as_str())
        .fetch_optional(conn)
        .await?;
        let id = match existing {
            // Accounts are only ever created in their own transactions, so a
            // row this read finds is committed.
            Some(id) => id,
            None => account(&mut *self.db.acquire().await?, kind, owner, currency).await?,
        };
        self.remember(kind, owner, currency, id);
        Ok(id)
    }

    fn remembered(&self, kind: AccountKind, owner: &str, currency: Currency) -> Option<i64> {
        let known = self.known.lock().expect("the account cache is never poisoned");
        known.get(&(kind, owner.to_owned(), currency)).copied()
    }

    fn remember(&self, kind: AccountKind, owner: &str, currency: Currency, id: i64) {
        let mut known = self.known.lock().expect("the account cache is never poisoned");
        known.insert((kind, owner.to_owned(), currency), id);
    }
}

/// The account's id, creating it (at balance zero) when it does not exist.
pub async fn account(
    conn: &mut PgConnection,
    kind: AccountKind,
    owner: &str,
    currency: Currency,
) -> Result<i64, sqlx::Error> {
    let created: Option<i64> = sqlx::query_scalar(
        "insert into ledger_accounts (kind, owner, currency) values ($1, $2, $3)
         on conflict (kind, owner, currency) do nothing returning id",
    )
    .bind(kind.as_str())
    .bind(owner)
    .bind(currency.as_str())
    .fetch_optional(&mut *conn)
    .await?;
    if let Some(id) = created {
        return Ok(id);
    }
    // A separate statement: under read committed it sees an account another
    // transaction created (and committed) while this insert waited on it.
    sqlx::query_scalar("select id from ledger_accounts where kind = $1 and owner = $2 and currency = $3")
        .bind(kind.as_str())
        .bind(owner)
        .bind(currency.as_str())
        .fetch_one(conn)
        .await
}

pub async fn balance(conn: &mut PgConnection, account_id: i64) -> Result<Amount, sqlx::Error> {
    let micros: i64 = sqlx::query_scalar("select balance_micros from ledger_accounts where id = $1")
        .bind(account_id)
        .fetch_one(conn)
        .await?;
    Ok(Amount::from_micros(micros))
}

/// Records the transfers and moves the balances. Zero amounts are skipped (a
/// transfer is a positive movement). Balances move by one net delta per
/// account, so the order of transfers inside the call does not matter — and a
/// caller posts all of a transaction's transfers in one call, so the accounts
/// are locked once, in id order, before anything else touches them (a
/// transfer's foreign keys take share locks that would otherwise deadlock
/// against another poster's update).
pub async fn post(conn: &mut PgConnection, transfers: &[Transfer]) -> Result<(), sqlx::Error> {
    let transfers: Vec<&Transfer> = transfers.iter().filter(|t| t.amount.micros() > 0).collect();
    if transfers.is_empty() {
        return Ok(());
    }
    let debits: Vec<i64> = transfers.iter().map(|t| t.debit).collect();
    let credits: Vec<i64> = transfers.iter().map(|t| t.credit).collect();
    let amounts: Vec<i64> = transfers.iter().map(|t| t.amount.micros()).collect();
    let kinds: Vec<&str> = transfers.iter().map(|t| t.kind.as_str()).collect();
    let references: Vec<&str> = transfers.iter().map(|t| t.reference.as_str()).collect();
    let mut touched: Vec<i64> = debits.iter().chain(&credits).copied().collect();
    touched.sort_unstable();
    touched.dedup();
    sqlx::query("select id from ledger_accounts where id = any($1) order by id for no key update")
        .bind(&touched)
        .execute(&mut *conn)
        .await?;
    sqlx::query(
        "update ledger_accounts a set balance_micros = a.balance_micros + d.delta
           from (select account_id, sum(delta)::bigint as delta
                   from (select unnest($1::bigint[]) as account_id, -unnest($3::bigint[]) as delta
                         union all
                         select unnest($2::bigint[]), unnest($3::bigint[])) moves
                  group by account_id) d
          where a.id = d.account_id",
    )
    .bind(&debits)
    .bind(&credits)
    .bind(&amounts)
    .execute(&mut *conn)
    .await?;
    sqlx::query(
        "insert into ledger_transfers (debit_account_id, credit_account_id, amount_micros, kind, reference)
         select * from unnest($1::bigint[], $2::bigint[], $3::bigint[], $4::text[], $5::text[])",
    )
    .bind(&debits)
    .bind(&credits)
    .bind(&amounts)
    .bind(&kinds)
    .bind(&references)
    .execute(conn)
    .await?;
    Ok(())
}
