//! Contributions: one row per accepted bet, written a batch at a time.

use sqlx::PgConnection;

#[derive(Debug, Clone, sqlx::FromRow)]
pub struct StoredContribution {
    pub id: i64,
    pub jackpot_id: String,
    pub cycle_number: i64,
    pub idempotency_key: String,
    pub request_hash: Vec<u8>,
    pub bet_amount_micros: i64,
    pub amount_micros: i64,
    pub pool_share_micros: i64,
    pub reserve_share_micros: i64,
    pub overflow_micros: i64,
    pub value_after_micros: i64,
}

/// Contributions already stored under any of the (jackpot, key) pairs.
pub async fn find_by_keys(
    conn: &mut PgConnection,
    jackpot_ids: &[&str],
    keys: &[&str],
) -> Result<Vec<StoredContribution>, sqlx::Error> {
    sqlx::query_as(
        "select c.id, c.jackpot_id, c.cycle_number, c.idempotency_key, c.request_hash, c.bet_amount_micros,
                c.amount_micros, c.pool_share_micros, c.reserve_share_micros, c.overflow_micros,
                c.value_after_micros
           from jackpot_contributions c
           join unnest($1::text[], $2::text[]) as k(jackpot_id, idempotency_key)
             on c.jackpot_id = k.jackpot_id and c.idempotency_key = k.idempotency_key",
    )
    .bind(jackpot_ids)
    .bind(keys)
    .fetch_all(conn)
    .await
}

#[derive(Debug, Clone)]
pub struct NewContribution {
    pub jackpot_id: String,
    pub cycle_number: i64,
    pub game_id: String,
    pub player_id: String,
    pub idempotency_key: String,
    pub request_hash: Vec<u8>,
    pub bet_amount_micros: i64,
    pub amount_micros: i64,
    pub pool_share_micros: i64,
    pub reserve_share_micros: i64,
    pub overflow_micros: i64,
    pub value_after_micros: i64,
}

/// Inserts the rows in one statement; answers their ids in the order given.
pub async fn insert_many(
    conn: &mut PgConnection,
    batch_id: i64,
    rows: &[NewContribution],
) -> Result<Vec<i64>, sqlx::Error> {
    if rows.is_empty() {
        return Ok(Vec::new());
    }
    let column = |f: fn(&NewContribution) -> i64| rows.iter().map(f).collect::<Vec<i64>>();
    let text = |f: fn(&NewContribution) -> &str| rows.iter().map(f).collect::<Vec<&str>>();
    let hashes: Vec<&[u8]> = rows.iter().map(|r| r.request_hash.as_slice()).collect();
    let inserted: Vec<(i64, i64)> = sqlx::query_as(
        "with input as (
             select * from unnest($1::text[], $2::bigint[], $3::text[], $4::text[], $5::text[], $6::bytea[],
                                  $7::bigint[], $8::bigint[], $9::bigint[], $10::bigint[], $11::bigint[], $12::bigint[])
                      with ordinality
                      as t(jackpot_id, cycle_number, game_id, player_id, idempotency_key, request_hash,
                           bet_amount_micros, amount_micros, pool_share_micros, reserve_share_micros,
                           overflow_micros, value_after_micros, position)),
         inserted as (
             insert into jackpot_contributions (jackpot_id, cycle_number, game_id, player_id, idempotency_key,
                 request_hash, bet_amount_micros, amount_micros, pool_share_micros, reserve_share_micros,
                 overflow_micros, value_after_micros, batch_id)
             select jackpot_id, cycle_number, game_id, player_id, idempotency_key, request_hash,
                    bet_amount_micros, amount_micros, pool_share_micros, reserve_share_micros,
                    overflow_micros, value_after_micros, $13
               from input order by position
             returning id, jackpot_id, idempotency_key)
         select i.id, input.position from inserted i
           join input on input.jackpot_id = i.jackpot_id and input.idempotency_key = i.idempotency_key
          order by input.position",
    )
    .bind(text(|r| &r.jackpot_id))
    .bind(column(|r| r.cycle_number))
    .bind(text(|r| &r.game_id))
    .bind(text(|r| &r.player_id))
    .bind(text(|r| &r.idempotency_key))
    .bind(&hashes)
    .bind(column(|r| r.bet_amount_micros))
    .bind(column(|r| r.amount_micros))
    .bind(column(|r| r.pool_share_micros))
    .bind(column(|r| r.reserve_share_micros))
    .bind(column(|r| r.overflow_micros))
    .bind(column(|r| r.value_after_micros))
    .bind(batch_id)
    .fetch_all(conn)
    .await?;
    Ok(inserted.into_iter().map(|(id, _)| id).collect())
}

pub async fn next_batch_id(conn: &mut PgConnection) -> Result<i64, sqlx::Error> {
    sqlx::query_scalar("select nextval('jackpot_contribution_batches')").fetch_one(conn).await
}
