//! Spins, the players' state they check and move (limits, last spin, seeds,
//! the day's totals), and the jackpots the slot feeds.

use chrono::{DateTime, NaiveDate, Utc};
pub use domain::play::Day;
use domain::play::{LimitSchedule, Limits, Pace, Pending};
use serde_json::value::RawValue;
use sqlx::types::Json;
use sqlx::PgConnection;

use super::params::Params;

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

impl PlayerState {
    /// The player's limits as stored.
    pub fn limits(&self) -> LimitSchedule {
        LimitSchedule {
            current: Limits {
                daily_loss_micros: self.daily_loss_limit_micros,
                daily_deposit_micros: self.daily_deposit_limit_micros,
            },
            pending: self.pending_limits_from.map(|from| Pending {
                limits: Limits {
                    daily_loss_micros: self.pending_daily_loss_limit_micros,
                    daily_deposit_micros: self.pending_daily_deposit_limit_micros,
                },
                from,
            }),
            self_excluded_until: self.self_excluded_until,
        }
    }

    /// The pace of the player's spins as stored.
    pub fn pace(&self) -> Pace {
        Pace {
            last_spin_at: self.last_spin_at,
            last_interval_ms: self.last_spin_interval_ms,
            steady_spins: self.steady_spins,
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

/// The hash of the player's committed next server seed, if one is drawn.
pub async fn next_seed_hash(conn: &mut PgConnection, player_id: i64) -> Result<Option<String>, sqlx::Error> {
    sqlx::query_scalar("select server_seed_hash from player_next_seeds where player_id = $1")
        .bind(player_id)
        .fetch_optional(conn)
        .await
}

/// Commits `server_seed` as the player's next one (replacing none: the
/// caller took the previous one first, under the player's lock).
pub async fn commit_next_seed(
    conn: &mut PgConnection,
    player_id: i64,
    server_seed: &str,
) -> Result<String, sqlx::Error> {
    sqlx::query_scalar(
        "insert into player_next_seeds (player_id, server_seed, server_seed_hash) values ($1, $2, $3)
         returning server_seed_hash",
    )
    .bind(player_id)
    .bind(server_seed)
    .bind(domain::seeds::server_seed_hash(server_seed))
    .fetch_one(conn)
    .await
}

/// Takes the player's committed next server seed out, to make it the active one.
pub async fn take_next_seed(conn: &mut PgConnection, player_id: i64) -> Result<Option<String>, sqlx::Error> {
    sqlx::query_scalar("delete from player_next_seeds where player_id = $1 returning server_seed")
        .bind(player_id)
        .fetch_optional(conn)
        .await
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

/// What a spin batch reads of one (player, idempotency key) it was asked
/// for, once it holds the players' locks: the player's active seed, their
/// totals of the day, their wallet's balance (locked) and a spin stored
/// already under the key. See [`read_locked`].
#[derive(Debug, sqlx::FromRow)]
pub struct LockedRead {
    pub player_id: i64,
    pub idempotency_key: String,
    seed_id: Option<i64>,
    server_seed: Option<String>,
    server_seed_hash: Option<String>,
    client_seed: Option<String>,
    next_nonce: Option<i64>,
    spins: Option<i64>,
    bets_micros: Option<i64>,
    wins_micros: Option<i64>,
    deposits_micros: Option<i64>,
    pub wallet_id: i64,
    /// `None` only for a wallet that does not exist.
    pub balance_micros: Option<i64>,
    request_hash: Option<Vec<u8>>,
    receipt: Option<serde_json::Value>,
}

impl LockedRead {
    /// The player's active seed, if they have one.
    pub fn seed(&self) -> Option<Seed> {
        Some(Seed {
            id: self.seed_id?,
            player_id: self.player_id,
            server_seed: self.server_seed.clone()?,
            server_seed_hash: self.server_seed_hash.clone()?,
            client_seed: self.client_seed.clone()?,
            next_nonce: self.next_nonce?,
        })
    }

    /// The player's totals of the day (zero before their first spin of it).
    pub fn day(&self) -> Day {
        Day {
            spins: self.spins.unwrap_or(0),
            bets_micros: self.bets_micros.unwrap_or(0),
            wins_micros: self.wins_micros.unwrap_or(0),
            deposits_micros: self.deposits_micros.unwrap_or(0),
        }
    }

    /// The spin stored under the key: its request hash and receipt.
    pub fn stored(&mut self) -> Option<(Vec<u8>, serde_json::Value)> {
        Some((self.request_hash.take()?, self.receipt.take()?))
    }
}

/// Reads, for each (player, idempotency key, wallet) asked about, what
/// [`LockedRead`] holds, locking the wallets in id order; in one statement.
/// The caller holds the players' locks already, and everything that moves a
/// player's seeds, day totals or spins does so under that lock: this
/// statement's snapshot, taken after the lock was granted, so sees every such
/// change committed. (Reading them in the locking statement would not: a
/// statement that waits for a lock still reads the rows it joins as they were
/// when it started.) A wallet's lock may still wait, for a transaction that
/// moves a balance alone, and the locked row is then read as that one left it.
pub async fn read_locked(
    conn: &mut PgConnection,
    asked: &[(i64, &str, i64)],
    day: NaiveDate,
) -> Result<Vec<LockedRead>, sqlx::Error> {
    // Seeds, days and stored spins by lateral subqueries, which their
    // `limit` keeps from being merged into joins: index probes per (player,
    // key) pair, where a join could be planned as a scan of every player's.
    sqlx::query_as(
        "with wallets as materialized (
             select id, balance_micros from ledger_accounts where id = any($3) order by id for update)
         select k.player_id, k.idempotency_key,
                s.id as seed_id, s.server_seed, s.server_seed_hash, s.client_seed, s.next_nonce,
                d.spins, d.bets_micros, d.wins_micros, d.deposits_micros,
                k.wallet_id, w.balance_micros, st.request_hash, st.receipt
           from unnest($1::bigint[], $2::text[], $3::bigint[]) as k(player_id, idempotency_key, wallet_id)
           left join wallets w on w.id = k.wallet_id
           left join lateral (
                select id, server_seed, server_seed_hash, client_seed, next_nonce from player_seeds
                 where player_id = k.player_id and revealed_at is null
                 limit 1) s on true
           left join lateral (
                select spins, bets_micros, wins_micros, deposits_micros from player_days
                 where player_id = k.player_id and day = $4
                 limit 1) d on true
           left join lateral (
                select request_hash, receipt from spins x
                 where x.player_id = k.player_id and x.idempotency_key = k.idempotency_key
                 limit 1) st on true",
    )
    .bind(asked.iter().map(|a| a.0).collect::<Vec<_>>())
    .bind(asked.iter().map(|a| a.1).collect::<Vec<_>>())
    .bind(asked.iter().map(|a| a.2).collect::<Vec<_>>())
    .bind(day)
    .fetch_all(conn)
    .await
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
    pub receipt: Box<RawValue>,
}

/// Spins to insert, as statement parameters (see [`SpinColumns::cte`]).
pub struct SpinColumns {
    numbers: [Vec<i64>; 8],
    text: [Vec<String>; 4],
    hashes: Vec<Vec<u8>>,
    receipts: Vec<Json<Box<RawValue>>>,
}

impl SpinColumns {
    pub fn of(spins: Vec<NewSpin>) -> SpinColumns {
        let column = |f: fn(&NewSpin) -> i64| spins.iter().map(f).collect::<Vec<i64>>();
        let numbers = [
            column(|s| s.id),
            column(|s| s.player_id),
            column(|s| s.bet_micros),
            column(|s| s.win_micros),
            column(|s| s.jackpot_win_micros),
            column(|s| s.seed_id),
            column(|s| s.nonce),
            column(|s| s.balance_after_micros),
        ];
        // Stops as text ("{1,2,3,4,5}"): unnest cannot take an array of
        // arrays of different rows as one column otherwise.
        let stops =
            |s: &NewSpin| format!("{{{}}}", s.stops.iter().map(i32::to_string).collect::<Vec<_>>().join(","));
        let text = [
            spins.iter().map(|s| s.idempotency_key.clone()).collect(),
            spins.iter().map(|s| s.game_id.clone()).collect(),
            spins.iter().map(|s| s.currency.clone()).collect(),
            spins.iter().map(stops).collect(),
        ];
        let hashes = spins.iter().map(|s| s.request_hash.clone()).collect();
        SpinColumns { numbers, text, hashes, receipts: spins.into_iter().map(|s| Json(s.receipt)).collect() }
    }

    /// The common table expression `spun`, which inserts the spins, their
    /// values bound to `params`.
    pub fn cte(&self, params: &mut Params) -> String {
        let [id, player, bet, win, jackpot_win, seed, nonce, balance] =
            self.numbers.each_ref().map(|c| params.bind(c));
        let [key, game, currency, stops] = self.text.each_ref().map(|c| params.bind(c));
        let hash = params.bind(&self.hashes);
        let receipt = params.bind(&self.receipts);
        format!(
            "spun as (
                 insert into spins (id, player_id, bet_micros, win_micros, jackpot_win_micros, seed_id, nonce,
                                    balance_after_micros, idempotency_key, game_id, currency, stops, request_hash,
                                    receipt)
                 overriding system value
                 select id, player_id, bet, win, jackpot_win, seed, nonce, balance, key, game, currency,
                        stops::integer[], hash, receipt
                   from unnest({id}::bigint[], {player}::bigint[], {bet}::bigint[], {win}::bigint[],
                               {jackpot_win}::bigint[], {seed}::bigint[], {nonce}::bigint[], {balance}::bigint[],
                               {key}::text[], {game}::text[], {currency}::text[], {stops}::text[],
                               {hash}::bytea[], {receipt}::jsonb[])
                        as s(id, player_id, bet, win, jackpot_win, seed, nonce, balance, key, game, currency,
                             stops, hash, receipt)
                 returning 1)"
        )
    }
}

/// What to add to players' totals of one day, as statement parameters (see
/// [`DayColumns::cte`]).
pub struct DayColumns {
    day: NaiveDate,
    players: Vec<i64>,
    totals: [Vec<i64>; 4],
}

impl DayColumns {
    /// `added` with each player once.
    pub fn of(day: NaiveDate, added: &[(i64, Day)]) -> DayColumns {
        let totals = |f: fn(&Day) -> i64| added.iter().map(|(_, d)| f(d)).collect::<Vec<i64>>();
        DayColumns {
            day,
            players: added.iter().map(|(id, _)| *id).collect(),
            totals: [
                totals(|d| d.spins),
                totals(|d| d.bets_micros),
                totals(|d| d.wins_micros),
                totals(|d| d.deposits_micros),
            ],
        }
    }

    /// The common table expression `days`, which adds the totals (players in
    /// id order), its values bound to `params`.
    pub fn cte(&self, params: &mut Params) -> String {
        let day = params.bind(self.day);
        let players = params.bind(&self.players);
        let [spins, bets, wins, deposits] = self.totals.each_ref().map(|c| params.bind(c));
        format!(
            "days as (
                 insert into player_days as d (player_id, day, spins, bets_micros, wins_micros, deposits_micros)
                 select player_id, {day}, spins, bets, wins, deposits
                   from unnest({players}::bigint[], {spins}::bigint[], {bets}::bigint[], {wins}::bigint[],
                               {deposits}::bigint[])
                        as a(player_id, spins, bets, wins, deposits)
                  order by player_id
                 on conflict (player_id, day) do update
                    set spins = d.spins + excluded.spins, bets_micros = d.bets_micros + excluded.bets_micros,
                        wins_micros = d.wins_micros + excluded.wins_micros,
                        deposits_micros = d.deposits_micros + excluded.deposits_micros
                 returning 1)"
        )
    }
}

/// Inserts the spins (if any) and adds to the players' totals of the day, in
/// one statement, which appends `closing` (the batch's audit record) when
/// given: the transaction's last statement.
pub async fn record(
    conn: &mut PgConnection,
    spins: &SpinColumns,
    days: &DayColumns,
    closing: Option<&crate::audit::Entry>,
) -> Result<(), sqlx::Error> {
    let mut params = Params::new();
    let mut sql = format!("with {}, {}", spins.cte(&mut params), days.cte(&mut params));
    match closing {
        Some(entry) => {
            sql += &format!(
                ", {} select count(*)::int from closing",
                crate::audit::append_cte(&mut params, entry, None)
            );
        }
        None => sql += " select 1",
    }
    let (appended,) = sqlx::query_as_with::<_, (i32,), _>(&sql, params.finish()?).fetch_one(conn).await?;
    if appended != 1 {
        return Err(sqlx::Error::Protocol(format!("a spin batch appended {appended} audit records, not 1")));
    }
    Ok(())
}

/// Adds to players' totals of the day, alone (a deposit).
pub async fn add_to_days(conn: &mut PgConnection, days: &DayColumns) -> Result<(), sqlx::Error> {
    let mut params = Params::new();
    let sql = format!("with {} select 1", days.cte(&mut params));
    sqlx::query_as_with::<_, (i32,), _>(&sql, params.finish()?).fetch_one(conn).await.map(drop)
}

/// What a batch changes in a player's row.
pub struct PlayerUpdate {
    pub id: i64,
    pub last_spin_at: DateTime<Utc>,
    pub last_spin_interval_ms: Option<i64>,
    pub steady_spins: i32,
}

/// What a spin batch moves of its players, as statement parameters (see
/// [`PlayerMoves::ctes`]): their last spin and pace, their seeds' next
/// nonces, and flags for review.
pub struct PlayerMoves {
    ids: Vec<i64>,
    at: Vec<DateTime<Utc>>,
    intervals: Vec<Option<i64>>,
    steady: Vec<i32>,
    /// Seed ids and their next nonces.
    nonces: [Vec<i64>; 2],
    flagged: Vec<i64>,
    details: Vec<serde_json::Value>,
}

impl PlayerMoves {
    pub fn of(updates: &[PlayerUpdate], nonces: &[(i64, i64)], flags: Vec<(i64, serde_json::Value)>) -> Self {
        let (flagged, details) = flags.into_iter().unzip();
        PlayerMoves {
            ids: updates.iter().map(|u| u.id).collect(),
            at: updates.iter().map(|u| u.last_spin_at).collect(),
            intervals: updates.iter().map(|u| u.last_spin_interval_ms).collect(),
            steady: updates.iter().map(|u| u.steady_spins).collect(),
            nonces: [nonces.iter().map(|n| n.0).collect(), nonces.iter().map(|n| n.1).collect()],
            flagged,
            details,
        }
    }

    /// The common table expressions `moved`, `counted` and `flagged`, their
    /// values bound to `params`.
    pub fn ctes(&self, params: &mut Params) -> String {
        let ids = params.bind(&self.ids);
        let at = params.bind(&self.at);
        let intervals = params.bind(&self.intervals);
        let steady = params.bind(&self.steady);
        let [seeds, next] = self.nonces.each_ref().map(|c| params.bind(c));
        let flagged = params.bind(&self.flagged);
        let details = params.bind(&self.details);
        format!(
            "moved as (
                 update players p set last_spin_at = u.at, last_spin_interval_ms = u.interval, steady_spins = u.steady
                   from unnest({ids}::bigint[], {at}::timestamptz[], {intervals}::bigint[], {steady}::integer[])
                        as u(id, at, interval, steady)
                  where p.id = u.id
                 returning 1),
             counted as (
                 update player_seeds s set next_nonce = u.next
                   from unnest({seeds}::bigint[], {next}::bigint[]) as u(id, next) where s.id = u.id
                 returning 1),
             flagged as (
                 insert into player_flags (player_id, reason, detail)
                 select id, 'steady_intervals', detail from unnest({flagged}::bigint[], {details}::jsonb[]) as f(id, detail)
                 returning 1)"
        )
    }
}

/// Moves the players on and adds to their totals of the day (the spins' bets
/// and wins), in one statement: for a batch that takes the jackpots' locks,
/// before it does, so none of this lengthens the time those are held.
pub async fn advance_players(
    conn: &mut PgConnection,
    moves: &PlayerMoves,
    days: &DayColumns,
) -> Result<(), sqlx::Error> {
    let mut params = Params::new();
    let sql = format!("with {}, {} select 1", moves.ctes(&mut params), days.cte(&mut params));
    sqlx::query_as_with::<_, (i32,), _>(&sql, params.finish()?).fetch_one(conn).await.map(drop)
}

/// All a chained spin batch writes of its own — its players moved, its spins
/// and the day's totals — for the statement that writes its contributions
/// (see [`crate::db::batches::Rider`]).
pub struct SpinBatchRows {
    pub moves: PlayerMoves,
    pub spins: SpinColumns,
    pub days: DayColumns,
}

impl crate::db::batches::Rider for SpinBatchRows {
    fn ctes(&self, params: &mut Params) -> String {
        format!("{}, {}, {},", self.moves.ctes(params), self.spins.cte(params), self.days.cte(params))
    }
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
