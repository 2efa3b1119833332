//! Spins, the players' state they check and move (limits, last spin, seeds,
//! the day's totals), and the jackpots the slot feeds.

use chrono::{DateTime, NaiveDate, Utc};
use sqlx::PgConnection;

/// A player as a spin sees them, locked for the transaction.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct PlayerState {
    pub id: i64,
    pub daily_loss_limit_micros: Option<i64>,
    pub daily_deposit_limit_micros: Option<i64>,
    pub pending_daily_loss_limit_micros: Option<i64>,
    pub pending_daily_deposit_limit_micros: Option<i64>,
    pub pending_limits_from: Option<DateTime<Utc>>,
    pub self_excluded_until: Option<DateTime<Utc>>,
    pub last_spin_at: Option<DateTime<Utc>>,
    pub last_spin_interval_ms: Option<i64>,
    pub steady_spins: i32,
}

/// The limits in force at `now`: the pending ones once their cooling-off is over.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    pub daily_loss_micros: Option<i64>,
    pub daily_deposit_micros: Option<i64>,
}

impl PlayerState {
    pub fn limits_at(&self, now: DateTime<Utc>) -> Limits {
        match self.pending_limits_from {
            Some(from) if from <= now => Limits {
                daily_loss_micros: self.pending_daily_loss_limit_micros,
                daily_deposit_micros: self.pending_daily_deposit_limit_micros,
            },
            _ => Limits {
                daily_loss_micros: self.daily_loss_limit_micros,
                daily_deposit_micros: self.daily_deposit_limit_micros,
            },
        }
    }
}

pub(crate) const PLAYER_COLUMNS: &str = "id, daily_loss_limit_micros, daily_deposit_limit_micros,
    pending_daily_loss_limit_micros, pending_daily_deposit_limit_micros, pending_limits_from,
    self_excluded_until, last_spin_at, last_spin_interval_ms, steady_spins";

/// The database's clock (the transaction's start): the one clock every
/// limit, interval and day is measured by.
pub async fn now(conn: &mut PgConnection) -> Result<DateTime<Utc>, sqlx::Error> {
    sqlx::query_scalar("select now()").fetch_one(conn).await
}

#[derive(sqlx::FromRow)]
struct Locked {
    #[sqlx(flatten)]
    player: PlayerState,
    now: DateTime<Utc>,
}

/// Locks the players (in id order) and answers them with the database's clock.
pub async fn lock_players(
    conn: &mut PgConnection,
    ids: &[i64],
) -> Result<(Vec<PlayerState>, DateTime<Utc>), sqlx::Error> {
    if ids.is_empty() {
        return Ok((Vec::new(), now(conn).await?));
    }
    let rows: Vec<Locked> = sqlx::query_as(&format!(
        "select {PLAYER_COLUMNS}, now() as now from players where id = any($1) order by id for update"
    ))
    .bind(ids)
    .fetch_all(&mut *conn)
    .await?;
    let now = match rows.first() {
        Some(row) => row.now,
        None => now(conn).await?,
    };
    Ok((rows.into_iter().map(|row| row.player).collect(), now))
}

pub async fn lock_player(conn: &mut PgConnection, id: i64) -> Result<Option<PlayerState>, sqlx::Error> {
    sqlx::query_as(&format!("select {PLAYER_COLUMNS} from players where id = $1 for update"))
        .bind(id)
        .fetch_optional(conn)
        .await
}

/// A player's active provably-fair seed.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct Seed {
    pub id: i64,
    pub player_id: i64,
    pub server_seed: String,
    pub server_seed_hash: String,
    pub client_seed: String,
    pub next_nonce: i64,
}

pub async fn active_seeds(conn: &mut PgConnection, player_ids: &[i64]) -> Result<Vec<Seed>, sqlx::Error> {
    sqlx::query_as(
        "select id, player_id, server_seed, server_seed_hash, client_seed, next_nonce
           from player_seeds where player_id = any($1) and revealed_at is null",
    )
    .bind(player_ids)
    .fetch_all(conn)
    .await
}

/// Starts a new active seed for the player; the caller holds the player's
/// lock and has revealed the previous one.
pub async fn insert_seed(
    conn: &mut PgConnection,
    player_id: i64,
    server_seed: &str,
    client_seed: &str,
) -> Result<Seed, sqlx::Error> {
    sqlx::query_as(
        "insert into player_seeds (player_id, server_seed, server_seed_hash, client_seed)
         values ($1, $2, $3, $4)
         returning id, player_id, server_seed, server_seed_hash, client_seed, next_nonce",
    )
    .bind(player_id)
    .bind(server_seed)
    .bind(domain::seeds::server_seed_hash(server_seed))
    .bind(client_seed)
    .fetch_one(conn)
    .await
}

/// Reveals the player's active seed; answers it.
pub async fn reveal_seed(conn: &mut PgConnection, player_id: i64) -> Result<Option<Seed>, sqlx::Error> {
    sqlx::query_as(
        "update player_seeds set revealed_at = now() where player_id = $1 and revealed_at is null
         returning id, player_id, server_seed, server_seed_hash, client_seed, next_nonce",
    )
    .bind(player_id)
    .fetch_optional(conn)
    .await
}

/// Wallet balances, locked (in account id order).
pub async fn lock_balances(
    conn: &mut PgConnection,
    accounts: &[i64],
) -> Result<Vec<(i64, i64)>, sqlx::Error> {
    sqlx::query_as("select id, balance_micros from ledger_accounts where id = any($1) order by id for update")
        .bind(accounts)
        .fetch_all(conn)
        .await
}

/// One player's totals for one UTC day.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, sqlx::FromRow)]
pub struct Day {
    pub spins: i64,
    pub bets_micros: i64,
    pub wins_micros: i64,
    pub deposits_micros: i64,
}

impl Day {
    /// What the player lost that day: bets less wins, never below zero.
    pub fn lost_micros(&self) -> i64 {
        (self.bets_micros - self.wins_micros).max(0)
    }
}

pub async fn days(
    conn: &mut PgConnection,
    player_ids: &[i64],
    day: NaiveDate,
) -> Result<Vec<(i64, Day)>, sqlx::Error> {
    let rows: Vec<(i64, i64, i64, i64, i64)> = sqlx::query_as(
        "select player_id, spins, bets_micros, wins_micros, deposits_micros
           from player_days where player_id = any($1) and day = $2",
    )
    .bind(player_ids)
    .bind(day)
    .fetch_all(conn)
    .await?;
    Ok(rows
        .into_iter()
        .map(|(id, spins, bets_micros, wins_micros, deposits_micros)| {
            (id, Day { spins, bets_micros, wins_micros, deposits_micros })
        })
        .collect())
}

/// A spin stored under one of `keys`: its request hash and receipt.
pub struct StoredSpin {
    pub player_id: i64,
    pub idempotency_key: String,
    pub request_hash: Vec<u8>,
    pub receipt: serde_json::Value,
}

pub async fn stored(
    conn: &mut PgConnection,
    player_ids: &[i64],
    keys: &[&str],
) -> Result<Vec<StoredSpin>, sqlx::Error> {
    // One index probe per (player, key) pair: the lateral subquery, which
    // its `limit` keeps from being merged into a join, runs once per pair.
    // (Both columns as `= any` would probe every player with every key; a
    // join with the pairs unnested could be planned as a scan of every spin.)
    let rows: Vec<(i64, String, Vec<u8>, serde_json::Value)> = sqlx::query_as(
        "select s.player_id, s.idempotency_key, s.request_hash, s.receipt
           from unnest($1::bigint[], $2::text[]) as k(player_id, idempotency_key)
          cross join lateral (
                select player_id, idempotency_key, request_hash, receipt from spins
                 where player_id = k.player_id and idempotency_key = k.idempotency_key
                 limit 1) s",
    )
    .bind(player_ids)
    .bind(keys)
    .fetch_all(conn)
    .await?;
    Ok(rows
        .into_iter()
        .map(|(player_id, idempotency_key, request_hash, receipt)| StoredSpin {
            player_id,
            idempotency_key,
            request_hash,
            receipt,
        })
        .collect())
}

/// The jackpots a game's bets feed: every mega jackpot and those listing the
/// game, in the game's currency (paused ones too: the engine refuses those).
pub async fn jackpots_fed_by(
    conn: &mut PgConnection,
    game_id: &str,
    currency: &str,
) -> Result<Vec<String>, sqlx::Error> {
    sqlx::query_scalar(
        "select j.id from jackpots j
          where j.currency = $2
            and (j.tier = 'mega' or exists (select 1 from jackpot_games g where g.jackpot_id = j.id and g.game_id = $1))
          order by j.id",
    )
    .bind(game_id)
    .bind(currency)
    .fetch_all(conn)
    .await
}

/// A spin to insert.
pub struct NewSpin {
    pub id: i64,
    pub player_id: i64,
    pub idempotency_key: String,
    pub request_hash: Vec<u8>,
    pub game_id: String,
    pub currency: String,
    pub bet_micros: i64,
    pub win_micros: i64,
    pub jackpot_win_micros: i64,
    pub seed_id: i64,
    pub nonce: i64,
    pub stops: Vec<i32>,
    pub balance_after_micros: i64,
    pub receipt: serde_json::Value,
}

/// Inserts the spins (if any) and adds to the players' totals of `day` (the
/// jackpot wins, which are known only once the batch's contributions are
/// made), in one statement.
pub async fn record(
    conn: &mut PgConnection,
    spins: &[NewSpin],
    day: NaiveDate,
    added: &[(i64, Day)],
) -> Result<(), sqlx::Error> {
    let column = |f: fn(&NewSpin) -> i64| spins.iter().map(f).collect::<Vec<i64>>();
    // Stops as text ("{1,2,3,4,5}"): unnest cannot take an array of arrays of
    // different rows as one column otherwise.
    let stops: Vec<String> = spins
        .iter()
        .map(|s| format!("{{{}}}", s.stops.iter().map(i32::to_string).collect::<Vec<_>>().join(",")))
        .collect();
    sqlx::query(&format!(
        "with inserted as (
             insert into spins (id, player_id, idempotency_key, request_hash, game_id, currency, bet_micros,
                                win_micros, jackpot_win_micros, seed_id, nonce, stops, balance_after_micros, receipt)
             overriding system value
             select id, player_id, key, hash, game, currency, bet, win, jackpot_win, seed, nonce,
                    stops::integer[], balance, receipt
               from unnest($1::bigint[], $2::bigint[], $3::text[], $4::bytea[], $5::text[], $6::text[],
                           $7::bigint[], $8::bigint[], $9::bigint[], $10::bigint[], $11::bigint[], $12::text[],
                           $13::bigint[], $14::jsonb[])
                    as s(id, player_id, key, hash, game, currency, bet, win, jackpot_win, seed, nonce, stops,
                         balance, receipt)
             returning 1),
         days as ({})
         select (select count(*) from inserted), (select count(*) from days)",
        add_to_days(15)
    ))
    .bind(column(|s| s.id))
    .bind(column(|s| s.player_id))
    .bind(spins.iter().map(|s| s.idempotency_key.as_str()).collect::<Vec<_>>())
    .bind(spins.iter().map(|s| s.request_hash.as_slice()).collect::<Vec<_>>())
    .bind(spins.iter().map(|s| s.game_id.as_str()).collect::<Vec<_>>())
    .bind(spins.iter().map(|s| s.currency.as_str()).collect::<Vec<_>>())
    .bind(column(|s| s.bet_micros))
    .bind(column(|s| s.win_micros))
    .bind(column(|s| s.jackpot_win_micros))
    .bind(column(|s| s.seed_id))
    .bind(column(|s| s.nonce))
    .bind(stops)
    .bind(column(|s| s.balance_after_micros))
    .bind(spins.iter().map(|s| s.receipt.clone()).collect::<Vec<_>>())
    .bind_days(day, added)
    .execute(conn)
    .await
    .map(drop)
}

/// The statement that adds to players' totals of one day, bound at `$first`
/// (the day) and the five parameters after it (player ids, spins, bets, wins,
/// deposits), players in id order.
fn add_to_days(first: usize) -> String {
    let [day, players, spins, bets, wins, deposits] =
        [first, first + 1, first + 2, first + 3, first + 4, first + 5];
    format!(
        "insert into player_days as d (player_id, day, spins, bets_micros, wins_micros, deposits_micros)
         select player_id, ${day}, spins, bets, wins, deposits
           from unnest(${players}::bigint[], ${spins}::bigint[], ${bets}::bigint[], ${wins}::bigint[],
                       ${deposits}::bigint[])
                as a(player_id, spins, bets, wins, deposits)
          order by player_id
         on conflict (player_id, day) do update
            set spins = d.spins + excluded.spins, bets_micros = d.bets_micros + excluded.bets_micros,
                wins_micros = d.wins_micros + excluded.wins_micros,
                deposits_micros = d.deposits_micros + excluded.deposits_micros
         returning 1"
    )
}

type Query<'q> = sqlx::query::Query<'q, sqlx::Postgres, sqlx::postgres::PgArguments>;

/// Binds the parameters of [`add_to_days`].
trait BindDays {
    fn bind_days(self, day: NaiveDate, added: &[(i64, Day)]) -> Self;
}

impl BindDays for Query<'_> {
    fn bind_days(self, day: NaiveDate, added: &[(i64, Day)]) -> Self {
        let totals = |f: fn(&Day) -> i64| added.iter().map(|(_, d)| f(d)).collect::<Vec<i64>>();
        self.bind(day)
            .bind(added.iter().map(|(id, _)| *id).collect::<Vec<_>>())
            .bind(totals(|d| d.spins))
            .bind(totals(|d| d.bets_micros))
            .bind(totals(|d| d.wins_micros))
            .bind(totals(|d| d.deposits_micros))
    }
}

/// What a batch changes in a player's row.
pub struct PlayerUpdate {
    pub id: i64,
    pub last_spin_at: DateTime<Utc>,
    pub last_spin_interval_ms: Option<i64>,
    pub steady_spins: i32,
}

/// Moves the players on in one statement: their last spin and pace, their
/// seeds' next nonces, flags for review, and their totals of `day` (the
/// spins' bets and wins). It runs before the batch takes the jackpots'
/// locks, so none of this lengthens the time those are held.
pub async fn advance_players(
    conn: &mut PgConnection,
    updates: &[PlayerUpdate],
    nonces: &[(i64, i64)],
    flags: &[(i64, serde_json::Value)],
    day: NaiveDate,
    added: &[(i64, Day)],
) -> Result<(), sqlx::Error> {
    sqlx::query(&format!(
        "with moved as (
             update players p set last_spin_at = u.at, last_spin_interval_ms = u.interval, steady_spins = u.steady
               from unnest($1::bigint[], $2::timestamptz[], $3::bigint[], $4::integer[])
                    as u(id, at, interval, steady)
              where p.id = u.id
             returning 1),
         counted as (
             update player_seeds s set next_nonce = u.next
               from unnest($5::bigint[], $6::bigint[]) as u(id, next) where s.id = u.id
             returning 1),
         flagged as (
             insert into player_flags (player_id, reason, detail)
             select id, 'steady_intervals', detail from unnest($7::bigint[], $8::jsonb[]) as f(id, detail)
             returning 1),
         days as ({})
         select (select count(*) from moved), (select count(*) from counted), (select count(*) from flagged),
                (select count(*) from days)",
        add_to_days(9)
    ),
    )
    .bind(updates.iter().map(|u| u.id).collect::<Vec<_>>())
    .bind(updates.iter().map(|u| u.last_spin_at).collect::<Vec<_>>())
    .bind(updates.iter().map(|u| u.last_spin_interval_ms).collect::<Vec<_>>())
    .bind(updates.iter().map(|u| u.steady_spins).collect::<Vec<_>>())
    .bind(nonces.iter().map(|s| s.0).collect::<Vec<_>>())
    .bind(nonces.iter().map(|s| s.1).collect::<Vec<_>>())
    .bind(flags.iter().map(|f| f.0).collect::<Vec<_>>())
    .bind(flags.iter().map(|f| f.1.clone()).collect::<Vec<_>>())
    .bind_days(day, added)
    .execute(conn)
    .await
    .map(drop)
}

/// A recorded spin, for the fairness check.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct SpinRecord {
    pub id: i64,
    pub player_id: i64,
    pub seed_id: i64,
    pub nonce: i64,
    pub stops: Vec<i32>,
    pub client_seed: String,
    pub server_seed: String,
    pub server_seed_hash: String,
    pub revealed: bool,
}

pub async fn get(conn: &mut PgConnection, id: i64) -> Result<Option<SpinRecord>, sqlx::Error> {
    sqlx::query_as(
        "select s.id, s.player_id, s.seed_id, s.nonce, s.stops, k.client_seed, k.server_seed,
                k.server_seed_hash, k.revealed_at is not null as revealed
           from spins s join player_seeds k on k.id = s.seed_id where s.id = $1",
    )
    .bind(id)
    .fetch_optional(conn)
    .await
}
