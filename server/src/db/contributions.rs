//! Contributions: one row per accepted bet, written a batch at a time.

use sqlx::PgConnection;

use super::params::Params;

/// A contribution row as stored: its id and what was inserted.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct StoredContribution {
    pub id: i64,
    #[sqlx(flatten)]
    pub row: NewContribution,
}

/// Contributions already stored under any of the (jackpot, origin, key) triples.
pub async fn find_by_keys(
    conn: &mut PgConnection,
    jackpot_ids: &[&str],
    origins: &[&str],
    keys: &[&str],
) -> Result<Vec<StoredContribution>, sqlx::Error> {
    sqlx::query_as(
        "select c.id, c.jackpot_id, c.cycle_number, c.game_id, c.player_id, c.origin, c.idempotency_key,
                c.request_hash, c.bet_amount_micros, c.amount_micros, c.pool_share_micros, c.reserve_share_micros,
                c.overflow_micros, c.value_after_micros, c.key_id, c.request_id
           from jackpot_contributions c
           join unnest($1::text[], $2::text[], $3::text[]) as k(jackpot_id, origin, idempotency_key)
             on c.jackpot_id = k.jackpot_id and c.origin = k.origin and c.idempotency_key = k.idempotency_key",
    )
    .bind(jackpot_ids)
    .bind(origins)
    .bind(keys)
    .fetch_all(conn)
    .await
}

#[derive(Debug, Clone, sqlx::FromRow)]
pub struct NewContribution {
    pub jackpot_id: String,
    pub cycle_number: i64,
    pub game_id: String,
    pub player_id: String,
    /// The namespace of the key and the player (see `engine::Origin`).
    pub origin: String,
    pub idempotency_key: String,
    pub request_hash: Vec<u8>,
    pub bet_amount_micros: i64,
    pub amount_micros: i64,
    pub pool_share_micros: i64,
    pub reserve_share_micros: i64,
    pub overflow_micros: i64,
    pub value_after_micros: i64,
    /// Who sent it: the signing key's id, and the request's `x-request-id`.
    pub key_id: Option<String>,
    pub request_id: Option<String>,
}

/// New contribution rows as statement parameters (see [`ContributionColumns::ctes`]).
pub struct ContributionColumns<'a> {
    batch_id: i64,
    text: [Vec<&'a str>; 5],
    who: [Vec<Option<&'a str>>; 2],
    hashes: Vec<&'a [u8]>,
    numbers: [Vec<i64>; 7],
}

impl<'a> ContributionColumns<'a> {
    pub fn of(batch_id: i64, rows: &'a [NewContribution]) -> ContributionColumns<'a> {
        let text = |f: fn(&NewContribution) -> &str| rows.iter().map(f).collect::<Vec<&str>>();
        let column = |f: fn(&NewContribution) -> i64| rows.iter().map(f).collect::<Vec<i64>>();
        ContributionColumns {
            batch_id,
            text: [
                text(|r| &r.jackpot_id),
                text(|r| &r.game_id),
                text(|r| &r.player_id),
                text(|r| &r.origin),
                text(|r| &r.idempotency_key),
            ],
            who: [
                rows.iter().map(|r| r.key_id.as_deref()).collect(),
                rows.iter().map(|r| r.request_id.as_deref()).collect(),
            ],
            hashes: rows.iter().map(|r| r.request_hash.as_slice()).collect(),
            numbers: [
                column(|r| r.cycle_number),
                column(|r| r.bet_amount_micros),
                column(|r| r.amount_micros),
                column(|r| r.pool_share_micros),
                column(|r| r.reserve_share_micros),
                column(|r| r.overflow_micros),
                column(|r| r.value_after_micros),
            ],
        }
    }

    /// The common table expressions that insert the rows, their values
    /// bound to `params`: `input` (with each row's `position`) and
    /// `inserted`. A row whose (jackpot, origin, idempotency key) is already
    /// stored is skipped, not an error: the caller finds it missing from `inserted`.
    pub fn ctes(&self, params: &mut Params) -> String {
        let [jackpots, games, players, origins, keys] = self.text.each_ref().map(|c| params.bind(c));
        let hashes = params.bind(&self.hashes);
        let [cycles, bets, amounts, pool_shares, reserve_shares, overflows, values] =
            self.numbers.each_ref().map(|c| params.bind(c));
        let [key_ids, request_ids] = self.who.each_ref().map(|c| params.bind(c));
        let batch = params.bind(self.batch_id);
        format!(
            "input as (
                 select * from unnest({jackpots}::text[], {games}::text[], {players}::text[], {origins}::text[],
                                      {keys}::text[],
                                      {hashes}::bytea[], {cycles}::bigint[], {bets}::bigint[], {amounts}::bigint[],
                                      {pool_shares}::bigint[], {reserve_shares}::bigint[], {overflows}::bigint[],
                                      {values}::bigint[], {key_ids}::text[], {request_ids}::text[])
                          with ordinality
                          as t(jackpot_id, game_id, player_id, origin, idempotency_key, request_hash, cycle_number,
                               bet_amount_micros, amount_micros, pool_share_micros, reserve_share_micros,
                               overflow_micros, value_after_micros, key_id, request_id, position)),
             inserted as (
                 insert into jackpot_contributions (jackpot_id, cycle_number, game_id, player_id, origin,
                     idempotency_key, request_hash, bet_amount_micros, amount_micros, pool_share_micros,
                     reserve_share_micros, overflow_micros, value_after_micros, key_id, request_id, batch_id)
                 select jackpot_id, cycle_number, game_id, player_id, origin, idempotency_key, request_hash,
                        bet_amount_micros, amount_micros, pool_share_micros, reserve_share_micros,
                        overflow_micros, value_after_micros, key_id, request_id, {batch}
                   from input order by position
                     on conflict (jackpot_id, origin, idempotency_key) do nothing
                 returning id, jackpot_id, origin, idempotency_key, key_id, request_id)"
        )
    }
}

/// What follows [`ContributionColumns::ctes`] to answer each row's id in input order, or
/// `None` where the key was already stored.
pub(crate) const INSERTED_IDS: &str = "select i.id from input
      left join inserted i on i.jackpot_id = input.jackpot_id and i.origin = input.origin
                          and i.idempotency_key = input.idempotency_key
     order by input.position";

/// Inserts the rows in one statement; answers their ids in the order given,
/// `None` for a row whose key was already stored (nothing else is skipped).
pub async fn insert_many(
    conn: &mut PgConnection,
    batch_id: i64,
    rows: &[NewContribution],
) -> Result<Vec<Option<i64>>, sqlx::Error> {
    if rows.is_empty() {
        return Ok(Vec::new());
    }
    let mut params = Params::new();
    let sql = format!("with {} {INSERTED_IDS}", ContributionColumns::of(batch_id, rows).ctes(&mut params));
    let ids: Vec<(Option<i64>,)> = sqlx::query_as_with(&sql, params.finish()?).fetch_all(conn).await?;
    Ok(ids.into_iter().map(|(id,)| id).collect())
}
