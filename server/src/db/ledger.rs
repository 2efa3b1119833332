//! The double-entry ledger: accounts with balances, and transfers between them.
//! A transfer debits one account and credits another by the same positive
//! amount; balances are credits minus debits, so all balances sum to zero.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use domain::money::{Amount, Currency};
use sqlx::{PgConnection, PgPool};

use super::params::Params;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum AccountKind {
    /// A Mini App player's wallet, owned by the player's id.
    PlayerWallet,
    /// An outside provider's player's wallet, owned `<provider>/<player>`.
    ExternalWallet,
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
            AccountKind::ExternalWallet => "external_wallet",
            AccountKind::JackpotPool => "jackpot_pool",
            AccountKind::JackpotReserve => "jackpot_reserve",
            AccountKind::House => "house",
            AccountKind::DepositsClearing => "deposits_clearing",
            AccountKind::GameClearing => "game_clearing",
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum TransferKind {
    ContributionPool,
    ContributionReserve,
    Award,
    SeedFromReserve,
    SeedFromHouse,
    AwardRollback,
    /// A spin's bet: wallet → the game's clearing account.
    Bet,
    /// A spin's win: the game's clearing account → wallet.
    Win,
    /// Demo credits: house → a new player's wallet.
    DemoCredit,
    /// A deposit: deposits clearing → wallet.
    Deposit,
}

impl TransferKind {
    pub const fn as_str(self) -> &'static str {
        match self {
            TransferKind::ContributionPool => "contribution_pool",
            TransferKind::ContributionReserve => "contribution_reserve",
            TransferKind::Award => "award",
            TransferKind::SeedFromReserve => "seed_from_reserve",
            TransferKind::SeedFromHouse => "seed_from_house",
            TransferKind::AwardRollback => "award_rollback",
            TransferKind::Bet => "bet",
            TransferKind::Win => "win",
            TransferKind::DemoCredit => "demo_credit",
            TransferKind::Deposit => "deposit",
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
/// Only committed ids are remembered, so no transaction can pick up an id
/// that another created and later rolled back: [`Accounts::id`] creates a
/// missing account in its own short transaction; [`Accounts::id_in`] creates
/// it inside the caller's (so an account exists only if what needed it
/// commits) and leaves it to a later read to remember.
#[derive(Clone)]
pub struct Accounts {
    db: PgPool,
    known: Arc<Mutex<Remembered<AccountKey>>>,
}

/// (kind, owner, currency): what names an account.
type AccountKey = (AccountKind, String, Currency);

/// The most account ids remembered in one generation (see [`Remembered`]).
const REMEMBERED_PER_GENERATION: usize = 32_768;

/// Ids remembered in two generations of at most `max` each: when the current
/// one is full it becomes the previous one (the one before is forgotten),
/// and a hit in the previous generation moves back into the current. The
/// ids in use stay remembered; memory stays bounded however many players
/// come and go.
struct Remembered<K> {
    current: HashMap<K, i64>,
    previous: HashMap<K, i64>,
    max: usize,
}

impl<K: std::hash::Hash + Eq + Clone> Remembered<K> {
    fn new(max: usize) -> Remembered<K> {
        Remembered { current: HashMap::new(), previous: HashMap::new(), max: max.max(1) }
    }

    fn get(&mut self, key: &K) -> Option<i64> {
        if let Some(id) = self.current.get(key) {
            return Some(*id);
        }
        let id = self.previous.remove(key)?;
        self.insert(key.clone(), id);
        Some(id)
    }

    fn insert(&mut self, key: K, id: i64) {
        if self.current.len() >= self.max && !self.current.contains_key(&key) {
            self.previous = std::mem::take(&mut self.current);
        }
        self.current.insert(key, id);
    }

    #[cfg(test)]
    fn len(&self) -> usize {
        self.current.len() + self.previous.len()
    }
}

impl Accounts {
    pub fn new(db: PgPool) -> Accounts {
        Accounts { db, known: Arc::new(Mutex::new(Remembered::new(REMEMBERED_PER_GENERATION))) }
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

    /// The account's id, read through `conn` (a transaction's connection),
    /// and created there if missing: it then exists only if the caller's
    /// transaction commits — a refused or failed request opens no account.
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
        // `ours`: created by this very transaction, so not committed yet.
        let existing: Option<(i64, bool)> = sqlx::query_as(
            "select id, coalesce(xmin = pg_current_xact_id_if_assigned()::xid, false)
               from ledger_accounts where kind = $1 and owner = $2 and currency = $3",
        )
        .bind(kind.as_str())
        .bind(owner)
        .bind(currency.as_str())
        .fetch_optional(&mut *conn)
        .await?;
        match existing {
            Some((id, false)) => {
                self.remember(kind, owner, currency, id);
                Ok(id)
            }
            Some((id, true)) => Ok(id),
            None => account(conn, kind, owner, currency).await,
        }
    }

    fn remembered(&self, kind: AccountKind, owner: &str, currency: Currency) -> Option<i64> {
        let mut known = self.known.lock().expect("the account cache is never poisoned");
        known.get(&(kind, owner.to_owned(), currency))
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

/// An account's balance, locked until the transaction ends: no other
/// transaction moves it before this one posts.
pub async fn lock_balance(conn: &mut PgConnection, account_id: i64) -> Result<Amount, sqlx::Error> {
    let micros: i64 =
        sqlx::query_scalar("select balance_micros from ledger_accounts where id = $1 for update")
            .bind(account_id)
            .fetch_one(conn)
            .await?;
    Ok(Amount::from_micros(micros))
}

/// Transfers between the same two accounts, of the same kind and for the same
/// reference, summed into one; zero amounts dropped (a transfer is a positive
/// movement). A batch of contributions so becomes one transfer per game,
/// jackpot and share, whose reference (`batch:<id>`) names the contribution
/// rows that make it up. Order is kept by first appearance.
pub fn consolidate(transfers: &[Transfer]) -> Vec<Transfer> {
    let mut summed: Vec<Transfer> = Vec::new();
    let mut index: HashMap<(i64, i64, TransferKind, &str), usize> = HashMap::new();
    for transfer in transfers.iter().filter(|t| t.amount.micros() > 0) {
        let key = (transfer.debit, transfer.credit, transfer.kind, transfer.reference.as_str());
        match index.get(&key) {
            Some(&at) => {
                let total = summed[at].amount.micros() + transfer.amount.micros();
                summed[at].amount = Amount::from_micros(total);
            }
            None => {
                index.insert(key, summed.len());
                summed.push(transfer.clone());
            }
        }
    }
    summed
}

/// `transfers` as the audit trail lists them (`detail.transfers`): as
/// [`consolidate`] posts them, each `[kind, debit account id, credit account
/// id, amount in micro-units, reference]`.
pub fn audit_list(transfers: &[Transfer]) -> serde_json::Value {
    consolidate(transfers)
        .iter()
        .map(|t| serde_json::json!([t.kind.as_str(), t.debit, t.credit, t.amount.micros(), t.reference]))
        .collect()
}

/// One posting as statement parameters: the transfers to record (debits,
/// credits, amounts, kinds, references) and the balances to move (accounts in
/// id order, each with its net delta).
pub struct Posting {
    debits: Vec<i64>,
    credits: Vec<i64>,
    amounts: Vec<i64>,
    kinds: Vec<&'static str>,
    references: Vec<String>,
    accounts: Vec<i64>,
    deltas: Vec<i64>,
}

impl Posting {
    /// `transfers` as they will be posted: call [`consolidate`] first.
    pub fn of(transfers: &[Transfer]) -> Posting {
        Posting::split(transfers, |_| true).0
    }

    /// `transfers` posted in two parts: the first records every transfer and
    /// moves the balances of the accounts `first` picks; the second moves the
    /// other balances and records nothing. Each part alone leaves the ledger
    /// unbalanced, so both go in one transaction. A transaction so moves the
    /// balances other transactions also move (a game's clearing account, the
    /// pools) in its last statement, and holds their locks only from there to
    /// its commit.
    pub fn split(transfers: &[Transfer], first: impl Fn(i64) -> bool) -> (Posting, Posting) {
        let mut deltas: std::collections::BTreeMap<i64, i64> = std::collections::BTreeMap::new();
        for transfer in transfers {
            *deltas.entry(transfer.debit).or_default() -= transfer.amount.micros();
            *deltas.entry(transfer.credit).or_default() += transfer.amount.micros();
        }
        let mut parts = [Posting::empty(), Posting::empty()];
        for (account, delta) in deltas {
            let part = &mut parts[usize::from(!first(account))];
            part.accounts.push(account);
            part.deltas.push(delta);
        }
        let [mut recorded, balances_only] = parts;
        recorded.debits = transfers.iter().map(|t| t.debit).collect();
        recorded.credits = transfers.iter().map(|t| t.credit).collect();
        recorded.amounts = transfers.iter().map(|t| t.amount.micros()).collect();
        recorded.kinds = transfers.iter().map(|t| t.kind.as_str()).collect();
        recorded.references = transfers.iter().map(|t| t.reference.clone()).collect();
        (recorded, balances_only)
    }

    fn empty() -> Posting {
        Posting {
            debits: Vec::new(),
            credits: Vec::new(),
            amounts: Vec::new(),
            kinds: Vec::new(),
            references: Vec::new(),
            accounts: Vec::new(),
            deltas: Vec::new(),
        }
    }

    /// The common table expressions that post this, its values bound to
    /// `params`: each account's balance moves by its delta (accounts in id
    /// order), and the transfers are inserted. For use inside a larger
    /// statement, so a transaction's writes can go to the database at once.
    pub fn ctes(&self, params: &mut Params) -> String {
        let accounts = params.bind(&self.accounts);
        let deltas = params.bind(&self.deltas);
        let debits = params.bind(&self.debits);
        let credits = params.bind(&self.credits);
        let amounts = params.bind(&self.amounts);
        let kinds = params.bind(&self.kinds);
        let references = params.bind(&self.references);
        format!(
            "balances as (
                 update ledger_accounts a set balance_micros = a.balance_micros + d.delta
                   from (select * from unnest({accounts}::bigint[], {deltas}::bigint[]) as d(account_id, delta)
                          order by account_id) d
                  where a.id = d.account_id
                 returning a.id),
             posted as (
                 insert into ledger_transfers (debit_account_id, credit_account_id, amount_micros, kind, reference)
                 select * from unnest({debits}::bigint[], {credits}::bigint[], {amounts}::bigint[],
                                      {kinds}::text[], {references}::text[])
                 returning id)"
        )
    }
}

/// Records the transfers and moves the balances, in one statement: see
/// [`consolidate`] and [`Posting::ctes`]. A caller posts all of a transaction's
/// transfers in one call, so each account's balance moves once.
pub async fn post(conn: &mut PgConnection, transfers: &[Transfer]) -> Result<(), sqlx::Error> {
    let transfers = consolidate(transfers);
    if transfers.is_empty() {
        return Ok(());
    }
    let mut params = Params::new();
    let sql =
        format!("with {} select (select count(*) from posted)", Posting::of(&transfers).ctes(&mut params));
    sqlx::query_as_with::<_, (i64,), _>(&sql, params.finish()?).fetch_one(conn).await.map(drop)
}

#[cfg(test)]
mod tests {
    use super::Remembered;

    #[test]
    fn remembered_ids_stay_bounded_and_keep_the_ones_in_use() {
        let mut known = Remembered::new(100);
        let pool = "pool".to_owned();
        known.insert(pool.clone(), 1);
        for n in 0..10_000i64 {
            known.insert(format!("player-{n}"), n);
            // The pool is used all along (every contribution books to it).
            if n % 50 == 0 {
                assert_eq!(known.get(&pool), Some(1), "after {n}");
            }
            assert!(known.len() <= 200, "{} remembered after {n}", known.len());
        }
        assert_eq!(known.get(&pool), Some(1));
        assert_eq!(known.get(&"player-0".to_owned()), None, "an id not used for long is forgotten");
        assert_eq!(known.get(&"player-9999".to_owned()), Some(9_999));
    }
}
